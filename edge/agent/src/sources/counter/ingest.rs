//! What every counter transport shares: a payload becomes readings (the dialect's parser),
//! readings of the door's lines become core inputs, the core tracker turns them into interval
//! records (repeats counted once, registers differenced, resets and wraps detected), and the
//! records are committed together with the tracker's state and the source's cursor.
//!
//! A commit that fails leaves the tracker as it was before the payload, so the device's retry
//! (a push answered 503, the next poll, the replay after a restart) is applied afresh rather
//! than recognised as a repeat of something never stored.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{Offset, TimeZone};
use edge_core::counter::{CountInput, CounterTracker};
use edge_core::LocalClock;
use edge_wire::counter::{self as wire, Dialect, ParseContext, Push, Reading};
use serde::{Deserialize, Serialize};

use super::config::CounterSource;
use crate::stats::SourceStats;
use crate::store::counters::CounterBatch;
use crate::store::{Cursor, Store};

/// The largest step of a push sequence number taken for lost pushes: about 69 days of
/// one-minute pushes. A larger step either way is a reset, a replaced device or a forged
/// number (`sequence_jumps`).
pub const MAX_SEQUENCE_GAP: u64 = 100_000;

/// A counter source's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// Interval keys seen and register baselines.
    pub tracker: CounterTracker,
    /// Xovis v5 `package_info.id` last seen, by agent id.
    #[serde(default)]
    pub sequences: BTreeMap<String, u64>,
}

/// What one payload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Interval records (or revisions) stored.
    pub stored: u64,
    /// Readings that repeated what was already recorded.
    pub duplicates: u64,
    /// Readings the tracker refused, by reason.
    pub refused: Vec<&'static str>,
    /// Readings of lines that do not count this door.
    pub other_lines: u64,
}

/// The core inputs of one payload, applied in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Inputs of this source's door.
    pub inputs: Vec<CountInput>,
    /// When the payload arrived (a replay passes the payload's own time).
    pub received_ms: i64,
    /// A pusher's (agent, sequence id), for gap detection.
    pub sequence: Option<(String, u64)>,
    /// Envelopes the payload held that carry no counts (`connection_test`, …).
    pub ignored: Vec<&'static str>,
    /// Readings of lines that do not count this door.
    pub other_lines: u64,
}

/// Why a payload was not taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum IngestError {
    /// The payload cannot be read (the sender should not repeat it as it is).
    Payload(wire::CounterError),
    /// The store failed: nothing was applied, the sender should retry.
    Store(crate::store::StoreError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Payload(e) => write!(f, "{e}"),
            IngestError::Store(e) => write!(f, "cannot store the counts: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// What turning a payload into core inputs needs: the source (profile, door, lines) and the
/// store's clock, without the store, so that decoding can run on its own (the fuzz targets
/// do).
#[derive(Debug, Clone, Copy)]
pub struct Decoder<'a> {
    /// The source.
    pub src: &'a CounterSource,
    /// The store's clock.
    pub clock: &'a LocalClock,
}

impl Decoder<'_> {
    /// The parse context: the store's UTC offset at `at_ms` and the profile's labels.
    pub fn parse_context(&self, at_ms: i64) -> ParseContext {
        let offset = chrono::DateTime::from_timestamp_millis(at_ms)
            .map(|t| {
                self.clock
                    .tz()
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc()
            })
            .unwrap_or(0);
        ParseContext {
            utc_offset_s: offset,
            direction_in: self.src.profile.direction_in.clone(),
            direction_out: self.src.profile.direction_out.clone(),
        }
    }

    /// The group of core inputs a parsed push stands for.
    pub fn push_group(&self, push: &Push, received_ms: i64) -> Group {
        let daily = matches!(
            self.src.profile.transport,
            crate::config::counter_profile::CounterTransport::Poll(ref p) if p.dialect == Dialect::AxisLiveSum
        );
        let mut g = Group {
            received_ms,
            sequence: push.sequence.map(|(a, i)| (a.to_string(), i)),
            ignored: push.ignored.clone(),
            ..Group::default()
        };
        for r in &push.readings {
            if self.src.counts_line(r.line()) {
                g.inputs.push(self.input(r, daily, None));
            } else {
                g.other_lines += 1;
            }
        }
        g
    }

    /// The core input of a reading of this source's door. `wrap` is the registers' modulus
    /// when known; `daily` marks totals that restart at local midnight.
    pub fn input(&self, r: &Reading, daily: bool, wrap: Option<u64>) -> CountInput {
        match r {
            Reading::Interval {
                line,
                start_ms,
                end_ms,
                ins,
                outs,
            } => CountInput::Interval {
                door: self.src.door.clone(),
                line: line.clone(),
                start_ms: *start_ms,
                end_ms: *end_ms,
                ins: *ins,
                outs: *outs,
            },
            Reading::Cumulative {
                line,
                at_ms,
                ins,
                outs,
            } => CountInput::Cumulative {
                door: self.src.door.clone(),
                line: line.clone(),
                at_ms: *at_ms,
                ins: *ins,
                outs: *outs,
                wrap,
                resets_daily: daily,
            },
        }
    }
}

/// Everything a counter source's loops need.
pub struct CounterContext {
    /// The source.
    pub src: CounterSource,
    /// The store's clock.
    pub clock: LocalClock,
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<SourceStats>,
    state: Mutex<SourceState>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl CounterContext {
    /// A context starting from the source's committed state (or an empty one).
    pub fn new(
        src: CounterSource,
        clock: LocalClock,
        store: Arc<Store>,
        stats: Arc<SourceStats>,
    ) -> Arc<CounterContext> {
        let state = match store.counter_state(&src.name) {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(source = %src.name, error = %e, "counter state unreadable; baselines start over");
                SourceState::default()
            }),
            Ok(None) => SourceState::default(),
            Err(e) => {
                tracing::warn!(source = %src.name, error = %e, "cannot read the counter state; baselines start over");
                SourceState::default()
            }
        };
        Arc::new(CounterContext {
            src,
            clock,
            store,
            stats,
            state: Mutex::new(state),
        })
    }

    /// Decoding with this source and clock.
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder {
            src: &self.src,
            clock: &self.clock,
        }
    }

    /// The parse context: the store's UTC offset at `at_ms` and the profile's labels.
    pub fn parse_context(&self, at_ms: i64) -> ParseContext {
        self.decoder().parse_context(at_ms)
    }

    /// Parses `body` in `dialect` and ingests it. Payload errors are counted as
    /// `rejected_<reason>`.
    pub fn ingest_body(
        &self,
        dialect: Dialect,
        body: &[u8],
        received_ms: i64,
        cursor: Option<Cursor>,
    ) -> Result<Outcome, IngestError> {
        let push = match wire::parse(dialect, body, &self.parse_context(received_ms)) {
            Ok(p) => p,
            Err(e) => {
                self.stats.count(&format!("rejected_{}", e.reason()), 1);
                // The cursor still moves past an unreadable line of a replayed file.
                if let Some(c) = cursor {
                    self.commit_groups(Vec::new(), Some(c))
                        .map_err(IngestError::Store)?;
                }
                return Err(IngestError::Payload(e));
            }
        };
        self.ingest_push(&push, received_ms, cursor)
            .map_err(IngestError::Store)
    }

    /// Ingests a parsed push: checks its sequence number and commits its readings.
    pub fn ingest_push(
        &self,
        push: &Push,
        received_ms: i64,
        cursor: Option<Cursor>,
    ) -> Result<Outcome, crate::store::StoreError> {
        let group = self.push_group(push, received_ms);
        self.commit_groups(vec![group], cursor)
    }

    /// The group of core inputs a parsed push stands for.
    pub fn push_group(&self, push: &Push, received_ms: i64) -> Group {
        self.decoder().push_group(push, received_ms)
    }

    /// Applies `inputs` (already of this door) and commits what they produced.
    pub fn commit_inputs(
        &self,
        inputs: Vec<CountInput>,
        received_ms: i64,
        cursor: Option<Cursor>,
    ) -> Result<Outcome, crate::store::StoreError> {
        let group = Group {
            inputs,
            received_ms,
            ..Group::default()
        };
        self.commit_groups(vec![group], cursor)
    }

    /// Applies the groups in order and commits what they produced with the new state,
    /// `cursor` and the counters, in one transaction. On a store error the state is rolled
    /// back and nothing is counted.
    pub fn commit_groups(
        &self,
        groups: Vec<Group>,
        cursor: Option<Cursor>,
    ) -> Result<Outcome, crate::store::StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let before = state.clone();
        let mut out = Outcome::default();
        let mut intervals = Vec::new();
        let mut tally: BTreeMap<String, u64> = BTreeMap::new();
        let mut bump = |k: &str, n: u64| {
            if n > 0 {
                *tally.entry(k.to_string()).or_default() += n;
            }
        };
        for g in &groups {
            for what in &g.ignored {
                bump(&format!("ignored_{what}"), 1);
            }
            bump("other_lines", g.other_lines);
            out.other_lines += g.other_lines;
            if let Some((agent, id)) = &g.sequence {
                let id = *id;
                let mut rebase = false;
                match state.sequences.get(agent) {
                    // Further than any outage explains (or back by as much): the device was
                    // reset or replaced, or the number is forged. Counting it as missing pushes
                    // would be nonsense, and keeping the old number would take every later
                    // push for a repeat: the sequence starts again from this push.
                    Some(&last) if id.abs_diff(last) > MAX_SEQUENCE_GAP => {
                        bump("sequence_jumps", 1);
                        rebase = true;
                        tracing::warn!(source = %self.src.name, agent = %agent, last, id, "counter push sequence jumped: following the new numbers");
                    }
                    Some(&last) if id > last.saturating_add(1) => {
                        bump("sequence_gaps", 1);
                        bump(
                            "sequence_missing",
                            id.saturating_sub(last).saturating_sub(1),
                        );
                        tracing::warn!(source = %self.src.name, agent = %agent, last, id, "counter push sequence gap: pushes were lost");
                    }
                    Some(&last) if id <= last => bump("sequence_repeats", 1),
                    _ => {}
                }
                let last = state.sequences.entry(agent.clone()).or_insert(id);
                *last = if rebase { id } else { (*last).max(id) };
            }
            for input in &g.inputs {
                let a = state.tracker.apply(input, &self.clock, g.received_ms);
                bump("readings", 1);
                if a.duplicate {
                    out.duplicates += 1;
                    bump("duplicates", 1);
                }
                bump("resets", u64::from(a.resets));
                bump("wraps", u64::from(a.wraps));
                bump("baselined", u64::from(a.baselined));
                bump("out_of_order", u64::from(a.out_of_order));
                if let Some(e) = &a.rejected {
                    bump(&format!("refused_{}", e.reason()), 1);
                    out.refused.push(e.reason());
                    tracing::debug!(source = %self.src.name, error = %e, "counter reading refused");
                }
                // A running total that did not move says nothing a record would: polled
                // registers (every few seconds) would otherwise store a zero row per poll.
                let cumulative = matches!(input, CountInput::Cumulative { .. });
                for iv in a.intervals {
                    if cumulative && iv.ins == 0 && iv.outs == 0 && iv.revision == 0 {
                        bump("quiet_readings", 1);
                        continue;
                    }
                    let date = self.clock.date(iv.start_ms).to_string();
                    intervals.push((iv, date));
                }
            }
        }
        bump("intervals", intervals.len() as u64);
        let changed = *state != before;
        if intervals.is_empty() && !changed && cursor.is_none() && tally.is_empty() {
            return Ok(out);
        }
        let state_json = if changed {
            match serde_json::to_string(&*state) {
                Ok(j) => Some(j),
                Err(e) => {
                    *state = before;
                    return Err(crate::store::StoreError::Corrupt(format!(
                        "counter state does not serialize: {e}"
                    )));
                }
            }
        } else {
            None
        };
        // Counters go in with the batch; they reach the live stats only once it is committed,
        // so a failed commit that the device retries is not counted twice.
        let mut counters = self.stats.values();
        for (k, n) in &tally {
            match counters.iter_mut().find(|(name, _)| name == k) {
                Some((_, v)) => *v += n,
                None => counters.push((k.clone(), *n)),
            }
        }
        let batch = CounterBatch {
            source: self.src.name.clone(),
            intervals,
            state: state_json,
            cursor,
            counters,
            now_ms: now_ms(),
        };
        match self.store.counter(batch) {
            Ok(r) => {
                for (k, n) in &tally {
                    self.stats.count(k, *n);
                }
                out.stored = r.new;
                Ok(out)
            }
            Err(e) => {
                *state = before;
                tracing::warn!(source = %self.src.name, error = %e, "counter intervals not stored; the device's retry will be applied afresh");
                Err(e)
            }
        }
    }

    /// Stores the source's counters alone (at shutdown, or after counting a refused request).
    pub fn save_counters(&self) {
        let batch = CounterBatch {
            source: self.src.name.clone(),
            intervals: Vec::new(),
            state: None,
            cursor: None,
            counters: self.stats.values(),
            now_ms: now_ms(),
        };
        if let Err(e) = self.store.counter(batch) {
            tracing::warn!(source = %self.src.name, error = %e, "cannot store the source's counters");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::counter_profile::resolve_counter;
    use crate::config::FileReads;
    use crate::sources::counter::config::CounterInput;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hardware-profiles/counter"
    );

    fn source(profile: &str, lines: Option<Vec<String>>) -> CounterSource {
        let p = resolve_counter(profile, std::path::Path::new(FIXTURES), FileReads::Disk).unwrap();
        CounterSource {
            name: "c1".into(),
            profile: Arc::new(p),
            door: "main".into(),
            lines,
            input: CounterInput::File("x".into()),
            tokens: Vec::new(),
            users: Vec::new(),
            max_body: wire::MAX_BODY,
            credentials: None,
            gateway_id: "gw-1".into(),
        }
    }

    /// (ins, outs, intervals) stored in the data dir, newest revisions.
    fn stored(dir: &std::path::Path) -> (u64, u64, usize) {
        let r = crate::store::Reader::open(dir).unwrap();
        let mut ivs = Vec::new();
        for d in ["2024-04-30", "2024-05-01", "2024-05-02"] {
            ivs.extend(r.counter_intervals_on(d).unwrap());
        }
        let newest = edge_core::counter::newest_revisions(&ivs);
        (
            newest.iter().map(|i| u64::from(i.ins)).sum(),
            newest.iter().map(|i| u64::from(i.outs)).sum(),
            newest.len(),
        )
    }

    /// Every HTTP profile decodes its dialect's fixture into the intervals the fixture holds
    /// (checked against the numbers in the files), and a repeated push counts once.
    #[test]
    fn each_http_profile_decodes_its_fixture_into_stored_intervals() {
        let table: [(&str, &str, Option<&[&str]>, (u64, u64, usize)); 9] = [
            ("counter/xovis-pc2s-v5", "xovis-v5.json", None, (13, 11, 6)),
            (
                "counter/xovis-pc2s-v5",
                "xovis-v5.json",
                Some(&["Entrance"]),
                (10, 8, 3),
            ),
            (
                "counter/xovis-pc2-legacy",
                "xovis-legacy.json",
                None,
                (43, 40, 6),
            ),
            (
                "counter/brickstream-3d",
                "brickstream.xml",
                None,
                (10, 13, 6),
            ),
            // Line 1 121/97 → 140/118 → 152/131; the staff door register stays at 8.
            (
                "counter/irisys-vector-4d",
                "irisys.json",
                Some(&["Line 1"]),
                (31, 34, 2),
            ),
            (
                "counter/hikvision-ds-2cd6825g0-event",
                "hikvision-event.xml",
                None,
                (14, 9, 1),
            ),
            (
                "counter/hikvision-ds-2cd6825g0-event",
                "hikvision-event-multipart.txt",
                None,
                (14, 9, 1),
            ),
            (
                "counter/hikvision-ds-2cd6825g0-search",
                "hikvision-search.xml",
                None,
                (32, 20, 4),
            ),
            // One running total: only a baseline.
            (
                "counter/axis-people-counter",
                "axis-live-sum.json",
                None,
                (0, 0, 0),
            ),
        ];
        for (profile, fixture, lines, want) in table {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(crate::store::open(dir.path()).unwrap());
            let src = source(
                profile,
                lines.map(|l| l.iter().map(|s| s.to_string()).collect()),
            );
            let ctx = CounterContext::new(
                src,
                LocalClock::new(chrono_tz::Asia::Shanghai),
                store.clone(),
                SourceStats::of_kind("c1", "counter"),
            );
            let dialect = super::super::file::dialect_of(&ctx).unwrap();
            let body = std::fs::read(format!("{FIXTURES}/fixtures/{fixture}")).unwrap();
            let received = 1_714_531_600_000;
            let first = ctx
                .ingest_body(dialect, &body, received, None)
                .unwrap_or_else(|e| panic!("{profile} {fixture}: {e}"));
            assert_eq!(first.stored as usize, want.2, "{profile} {fixture}");
            let again = ctx.ingest_body(dialect, &body, received, None).unwrap();
            assert_eq!(
                again.stored, 0,
                "{profile} {fixture}: repeated push stored again"
            );
            drop(ctx);
            drop(store);
            assert_eq!(stored(dir.path()), want, "{profile} {fixture}");
        }
    }

    /// The state (baselines) survives a restart: the reading after it is differenced against
    /// the one before, and a bad payload changes nothing.
    #[test]
    fn state_survives_a_restart_and_bad_payloads_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let clock = LocalClock::new(chrono_tz::UTC);
        let body = |at: &str, ins: u64, outs: u64| {
            format!(
                r#"{{"CountLogs":[{{"LogEntryId":1,"Timestamp":"{at}","Counts":[{{"Name":"Line 1 In","RegisterId":0,"Value":{ins}}},{{"Name":"Line 1 Out","RegisterId":1,"Value":{outs}}}]}}],"FriendlyDeviceSerial":"V"}}"#
            )
        };
        let received = 1_714_540_000_000;
        {
            let store = Arc::new(crate::store::open(dir.path()).unwrap());
            let ctx = CounterContext::new(
                source("counter/irisys-vector-4d", None),
                clock,
                store,
                SourceStats::of_kind("c1", "counter"),
            );
            ctx.ingest_body(
                Dialect::Irisys,
                body("2024-05-01T02:00:00Z", 100, 50).as_bytes(),
                received,
                None,
            )
            .unwrap();
            let bad = ctx.ingest_body(Dialect::Irisys, b"{\"CountLogs\": [", received, None);
            assert!(matches!(bad, Err(IngestError::Payload(_))));
            assert_eq!(
                ctx.stats
                    .values()
                    .iter()
                    .find(|(k, _)| k.starts_with("rejected_"))
                    .map(|(_, v)| *v),
                Some(1)
            );
        }
        let store = Arc::new(crate::store::open(dir.path()).unwrap());
        let ctx = CounterContext::new(
            source("counter/irisys-vector-4d", None),
            clock,
            store.clone(),
            SourceStats::of_kind("c1", "counter"),
        );
        // After the restart: +7/+3, then a power loss (registers back to 2/1): +2/+1.
        ctx.ingest_body(
            Dialect::Irisys,
            body("2024-05-01T02:05:00Z", 107, 53).as_bytes(),
            received,
            None,
        )
        .unwrap();
        ctx.ingest_body(
            Dialect::Irisys,
            body("2024-05-01T02:10:00Z", 2, 1).as_bytes(),
            received,
            None,
        )
        .unwrap();
        // Both registers (in and out) were found reset.
        let resets = ctx
            .stats
            .values()
            .into_iter()
            .find(|(k, _)| k == "resets")
            .map(|(_, v)| v);
        assert_eq!(resets, Some(2));
        drop(ctx);
        drop(store);
        assert_eq!(stored(dir.path()), (9, 4, 2));
    }
}
