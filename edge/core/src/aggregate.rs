//! Hourly aggregates in store-local time, sealed once no open visit can change them.
//!
//! A visit counts in the local hour it started. An hour is sealed when the watermark passes
//! hour end + visit timeout: by then every visit that was short enough to still be open has
//! closed. A longer visit that started in a sealed hour closes later and produces a new
//! revision of that hour's record — the full totals again, never a silent edit — so the cloud
//! can upsert by (hour, revision).
//!
//! An hour a step of the input's clock touched is flagged (`clock_step`) in its record: its
//! totals hold visits stamped by a clock that was replaced, or visits from both sides of the
//! step. Flagging an hour that was already sealed seals it again as a new revision.
//!
//! The fragments of one counting group (a randomized MAC rotating during one visit) are merged
//! into one visit in the hour the group started, exactly as the day report merges them, so the
//! hourly records and the report count the same visitors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::ClockStep;
use crate::params::DEFINITIONS_VERSION;
use crate::session::{Visit, VisitClass, MAX_REWIND_MS};
use crate::time::LocalClock;
use crate::ZoneId;

const HOUR_MS: i64 = 3_600_000;
/// Sealed, unchanged hours are forgotten after this long (input time); late visits older than
/// that can no longer arrive because the sessionizer rejects sightings that late.
pub(crate) const KEEP_MS: i64 = 48 * HOUR_MS;

/// Dwell bucket edges (ms): under 5 min, 5–30 min, 30–60 min, 1–5 h, 5–8 h, 8 h+.
pub const DWELL_BUCKET_EDGES_MS: [i64; 5] = [
    5 * 60_000,
    30 * 60_000,
    60 * 60_000,
    5 * HOUR_MS,
    8 * HOUR_MS,
];

/// Names of the dwell buckets, in order.
pub const DWELL_BUCKET_NAMES: [&str; 6] = [
    "under_5m",
    "from_5m_to_30m",
    "from_30m_to_1h",
    "from_1h_to_5h",
    "from_5h_to_8h",
    "over_8h",
];

/// The bucket a dwell falls in.
pub fn dwell_bucket(dwell_ms: i64) -> usize {
    DWELL_BUCKET_EDGES_MS
        .iter()
        .position(|&edge| dwell_ms < edge)
        .unwrap_or(DWELL_BUCKET_EDGES_MS.len())
}

/// Totals of one hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourStats {
    /// Visitors who arrived in the hour.
    pub visitors: u32,
    /// Passers-by first seen in the hour.
    pub passersby: u32,
    /// Staff visits that started in the hour.
    pub staff: u32,
    /// Visitors with a randomized MAC.
    pub randomized_visitors: u32,
    /// Sum of visitor dwell, ms.
    pub visitor_dwell_ms: i64,
    /// Visitors per dwell bucket ([`DWELL_BUCKET_NAMES`]).
    pub dwell_buckets: [u32; 6],
    /// Visitors who stayed in each zone (index = zone id).
    pub zone_visits: Vec<u32>,
    /// Visitor dwell per zone, ms.
    pub zone_dwell_ms: Vec<i64>,
    /// Zone-to-zone moves of visitors: (from, to, count), sorted by (from, to).
    pub transitions: Vec<(ZoneId, ZoneId, u32)>,
}

impl HourStats {
    fn add(&mut self, v: &Visit) {
        match v.class {
            VisitClass::Passerby => self.passersby += 1,
            VisitClass::Staff => self.staff += 1,
            VisitClass::Visitor => {
                self.visitors += 1;
                self.randomized_visitors += u32::from(v.randomized);
                self.visitor_dwell_ms += v.dwell_ms();
                if let Some(b) = self.dwell_buckets.get_mut(dwell_bucket(v.dwell_ms())) {
                    *b += 1;
                }
                let mut seen: Vec<ZoneId> = Vec::new();
                for d in &v.path {
                    let z = usize::from(d.zone);
                    if self.zone_visits.len() <= z {
                        self.zone_visits.resize(z + 1, 0);
                        self.zone_dwell_ms.resize(z + 1, 0);
                    }
                    if !seen.contains(&d.zone) {
                        seen.push(d.zone);
                        if let Some(c) = self.zone_visits.get_mut(z) {
                            *c += 1;
                        }
                    }
                    if let Some(c) = self.zone_dwell_ms.get_mut(z) {
                        *c += d.ms;
                    }
                }
                for w in v.path.windows(2) {
                    if let [a, b] = w {
                        let key = (a.zone, b.zone);
                        match self.transitions.binary_search_by_key(&key, |t| (t.0, t.1)) {
                            Ok(i) => {
                                if let Some(t) = self.transitions.get_mut(i) {
                                    t.2 += 1;
                                }
                            }
                            Err(i) => self.transitions.insert(i, (a.zone, b.zone, 1)),
                        }
                    }
                }
            }
        }
    }
}

/// A sealed hour: one revision of one hour's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourRecord {
    /// UTC ms at which the local hour starts (the record's natural key).
    pub hour_start_ms: i64,
    /// 1 for the first seal, +1 for every later change.
    pub revision: u32,
    /// Local date, `YYYY-MM-DD`.
    pub local_date: String,
    /// Local hour, 0–23.
    pub local_hour: u32,
    /// Metric definitions version.
    pub definitions_version: u32,
    /// The totals.
    pub stats: HourStats,
    /// A step of the input's clock touched the hour (see [`Aggregator::flag_step`]): some of
    /// its totals were stamped by a clock that was replaced, so they may belong to another
    /// hour. A data-quality flag: the totals are what was seen, nothing was moved.
    pub clock_step: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HourSlot {
    /// Totals of the visits that belong to no counting group.
    stats: HourStats,
    /// Counting groups that started in the hour, their fragments merged into one visit.
    groups: BTreeMap<String, Visit>,
    revision: u32,
    dirty: bool,
    local_date: String,
    local_hour: u32,
    /// See [`HourRecord::clock_step`].
    clock_step: bool,
}

/// Accumulates closed visits into hours and seals them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregator {
    timeout_ms: i64,
    min_dwell_ms: i64,
    hours: BTreeMap<i64, HourSlot>,
    #[serde(skip)]
    sealed: Vec<HourRecord>,
}

impl Aggregator {
    /// An empty aggregator for the given visit timeout and visitor dwell threshold (which
    /// decides whether merged group fragments make a visitor).
    pub fn new(timeout_ms: i64, min_dwell_ms: i64) -> Self {
        Aggregator {
            timeout_ms,
            min_dwell_ms,
            hours: BTreeMap::new(),
            sealed: Vec::new(),
        }
    }

    pub(crate) fn set_params(&mut self, timeout_ms: i64, min_dwell_ms: i64) {
        self.timeout_ms = timeout_ms;
        self.min_dwell_ms = min_dwell_ms;
    }

    /// Adds a closed visit to the hour it started in; a later fragment of a counting group
    /// goes into the group's merged visit, in the hour the group started.
    pub fn add(&mut self, v: &Visit, clock: &LocalClock) {
        if let Some(g) = &v.group {
            // Groups live at most a few visit timeouts, so only the last few hours can hold it.
            let held = self.hours.values_mut().rev().find_map(|slot| {
                slot.groups
                    .get_mut(g)
                    .map(|m| (m, &mut slot.dirty, &mut slot.clock_step))
            });
            if let Some((merged, dirty, clock_step)) = held {
                merge_fragment(merged, v, self.min_dwell_ms);
                *dirty = true;
                *clock_step |= v.clock_step;
                return;
            }
        }
        let slot = self.slot(v.start_ms, clock);
        slot.clock_step |= v.clock_step;
        match &v.group {
            Some(g) => {
                slot.groups.insert(g.clone(), v.clone());
            }
            None => slot.stats.add(v),
        }
        slot.dirty = true;
    }

    /// The slot of the hour containing `ts_ms`, created empty if needed.
    fn slot(&mut self, ts_ms: i64, clock: &LocalClock) -> &mut HourSlot {
        self.hours
            .entry(clock.hour_start(ts_ms))
            .or_insert_with(|| HourSlot {
                local_date: clock.date(ts_ms).to_string(),
                local_hour: clock.hour(ts_ms),
                ..HourSlot::default()
            })
    }

    /// Flags the hours a step of the input's clock touched. Forward, the hour the old clock
    /// stopped in and the hour the new one starts in (the hours between were skipped: nothing
    /// is filed in them). Back, every hour from the new reading to the old one: the new clock
    /// files into them again, beside what the old clock filed there. An hour with nothing in
    /// it gets a record of its own, so the flag reaches the cloud; one already sealed gets a
    /// new revision. At most `MAX_REWIND_MS` worth of hours are flagged back from the old
    /// reading (the sessionizer rewinds no further).
    pub fn flag_step(&mut self, step: ClockStep, clock: &LocalClock) {
        let flag = |agg: &mut Self, ts: i64| {
            let slot = agg.slot(ts, clock);
            if !slot.clock_step {
                slot.clock_step = true;
                slot.dirty = true;
            }
        };
        if step.to_ms >= step.from_ms {
            flag(self, step.from_ms);
            flag(self, step.to_ms);
            return;
        }
        let from = step.from_ms;
        let mut t = step.to_ms.max(from.saturating_sub(MAX_REWIND_MS));
        while t <= from {
            flag(self, t);
            // The next local hour's start (DST-safe: computed from the local clock).
            t = clock.hour_start(t).saturating_add(HOUR_MS);
        }
    }

    /// Seals every changed hour whose end + visit timeout is at or before the watermark.
    pub fn seal(&mut self, watermark_ms: i64) {
        for (&start, slot) in self.hours.iter_mut() {
            if start + HOUR_MS + self.timeout_ms > watermark_ms {
                break;
            }
            if slot.dirty {
                Self::emit(&mut self.sealed, start, slot);
            }
        }
        self.hours
            .retain(|&start, slot| slot.dirty || start + HOUR_MS + KEEP_MS > watermark_ms);
    }

    /// Seals every changed hour (end of input).
    pub fn seal_all(&mut self) {
        for (&start, slot) in self.hours.iter_mut() {
            if slot.dirty {
                Self::emit(&mut self.sealed, start, slot);
            }
        }
    }

    fn emit(out: &mut Vec<HourRecord>, start: i64, slot: &mut HourSlot) {
        slot.revision += 1;
        slot.dirty = false;
        let mut stats = slot.stats.clone();
        for merged in slot.groups.values() {
            stats.add(merged);
        }
        out.push(HourRecord {
            hour_start_ms: start,
            revision: slot.revision,
            local_date: slot.local_date.clone(),
            local_hour: slot.local_hour,
            definitions_version: DEFINITIONS_VERSION,
            stats,
            clock_step: slot.clock_step,
        });
    }

    /// Takes the records sealed since the last call.
    pub fn drain_sealed(&mut self) -> Vec<HourRecord> {
        std::mem::take(&mut self.sealed)
    }
}

/// Folds a later fragment of a counting group into the group's merged visit: the span of
/// both, inside time and sightings summed, paths joined, and a visitor once either fragment
/// was one or the inside time together reaches the visitor threshold. The day report merges
/// the same way (`report::merge_groups`).
fn merge_fragment(m: &mut Visit, v: &Visit, min_dwell_ms: i64) {
    let end = m.end_ms.max(v.end_ms);
    m.start_ms = m.start_ms.min(v.start_ms);
    m.end_ms = end;
    m.inside_ms += v.inside_ms;
    m.sightings = m.sightings.saturating_add(v.sightings);
    m.clock_step |= v.clock_step;
    for d in &v.path {
        match m.path.last_mut() {
            Some(last) if last.zone == d.zone => last.ms += d.ms,
            _ => m.path.push(*d),
        }
    }
    let visitor = m.class == VisitClass::Visitor
        || v.class == VisitClass::Visitor
        || m.inside_ms >= min_dwell_ms;
    if m.class != VisitClass::Staff && visitor {
        m.class = VisitClass::Visitor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::DeviceKey;
    use crate::zones::ZoneDwell;

    const MIN: i64 = 60_000;

    fn visit(start_min: i64, dwell_min: i64, class: VisitClass) -> Visit {
        Visit {
            device: DeviceKey([start_min as u8; 16]),
            start_ms: start_min * MIN,
            end_ms: (start_min + dwell_min) * MIN,
            inside_ms: dwell_min * MIN,
            sightings: 10,
            class,
            randomized: false,
            associated: false,
            path: vec![
                ZoneDwell { zone: 0, ms: MIN },
                ZoneDwell {
                    zone: 1,
                    ms: (dwell_min - 1) * MIN,
                },
            ],
            person: None,
            connected: false,
            fingerprint: 0,
            first_seq: None,
            last_seq: None,
            group: None,
            clock_step: false,
        }
    }

    #[test]
    fn dwell_buckets() {
        let table = [
            (0, 0),
            (4 * MIN, 0),
            (5 * MIN, 1),
            (45 * MIN, 2),
            (2 * 60 * MIN, 3),
            (6 * 60 * MIN, 4),
            (9 * 60 * MIN, 5),
        ];
        for (dwell, bucket) in table {
            assert_eq!(dwell_bucket(dwell), bucket, "{dwell}");
        }
    }

    #[test]
    fn seals_after_hour_end_plus_timeout_and_revises_on_late_visits() {
        let clock = LocalClock::new(chrono_tz::UTC);
        let mut a = Aggregator::new(15 * MIN, 5 * MIN);
        a.add(&visit(10, 20, VisitClass::Visitor), &clock);
        a.add(&visit(20, 2, VisitClass::Passerby), &clock);
        a.seal(74 * MIN);
        assert!(a.drain_sealed().is_empty(), "not before 60 + 15 min");
        a.seal(75 * MIN);
        let sealed = a.drain_sealed();
        assert_eq!(sealed.len(), 1);
        let r = &sealed[0];
        assert_eq!((r.hour_start_ms, r.revision, r.local_hour), (0, 1, 0));
        assert_eq!((r.stats.visitors, r.stats.passersby), (1, 1));
        assert_eq!(r.stats.zone_visits, vec![1, 1]);
        assert_eq!(r.stats.transitions, vec![(0, 1, 1)]);
        a.seal(80 * MIN);
        assert!(
            a.drain_sealed().is_empty(),
            "unchanged hours are not re-sealed"
        );
        // A long visit that started at 00:30 closes at 03:00: revision 2 with full totals.
        a.add(&visit(30, 150, VisitClass::Visitor), &clock);
        a.seal(200 * MIN);
        let sealed = a.drain_sealed();
        assert_eq!(sealed.len(), 1);
        assert_eq!((sealed[0].revision, sealed[0].stats.visitors), (2, 2));
    }

    #[test]
    fn seal_all_flushes_open_hours() {
        let clock = LocalClock::new(chrono_tz::UTC);
        let mut a = Aggregator::new(15 * MIN, 5 * MIN);
        a.add(&visit(10, 20, VisitClass::Staff), &clock);
        a.add(&visit(70, 20, VisitClass::Visitor), &clock);
        a.seal_all();
        let s = a.drain_sealed();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].stats.staff, 1);
        assert_eq!(s[0].stats.visitors, 0);
    }

    #[test]
    fn fragments_of_a_counting_group_count_once_in_the_hour_it_started() {
        let clock = LocalClock::new(chrono_tz::UTC);
        let mut a = Aggregator::new(15 * MIN, 5 * MIN);
        // One rotating device: three 3-minute fragments (each too short for a visitor on its
        // own), the last in the next hour; and a lone ungrouped passer-by.
        let frag = |start: i64, group: &str| {
            let mut v = visit(start, 3, VisitClass::Passerby);
            v.inside_ms = 3 * MIN;
            v.randomized = true;
            v.group = Some(group.to_string());
            v
        };
        a.add(&frag(50, "g1"), &clock);
        a.add(&frag(54, "g1"), &clock);
        a.add(&frag(61, "g1"), &clock);
        a.add(&visit(20, 2, VisitClass::Passerby), &clock);
        a.seal_all();
        let s = a.drain_sealed();
        assert_eq!(s.len(), 1, "the third fragment joins hour 0: {s:?}");
        let st = &s[0].stats;
        assert_eq!((st.visitors, st.passersby), (1, 1));
        assert_eq!(st.randomized_visitors, 1);
        assert_eq!(st.visitor_dwell_ms, 14 * MIN, "span 00:50 to 01:04");
        assert_eq!(st.zone_visits, vec![1, 1]);
        // Zone 1 → zone 0 → zone 1 → zone 0 → zone 1 once the paths are joined.
        assert_eq!(st.transitions, vec![(0, 1, 3), (1, 0, 2)]);

        // A group that stays short stays one passer-by; a later fragment re-seals the hour.
        let mut a = Aggregator::new(15 * MIN, 5 * MIN);
        a.add(&frag(10, "g2"), &clock);
        a.seal(90 * MIN);
        let first = a.drain_sealed();
        assert_eq!((first[0].stats.visitors, first[0].stats.passersby), (0, 1));
        a.add(&frag(14, "g2"), &clock);
        a.seal(91 * MIN);
        let second = a.drain_sealed();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].revision, 2);
        assert_eq!(
            (second[0].stats.visitors, second[0].stats.passersby),
            (1, 0),
            "6 min inside together"
        );
    }
}
