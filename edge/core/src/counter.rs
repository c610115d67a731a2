//! Door people-counters: what counters report becomes interval records, and interval records
//! become footfall per local hour, per door and per day, with occupancy.
//!
//! Counters report in two shapes. Interval counters push the ins and outs of one door line over
//! `[start, end)`. Cumulative counters report registers instead: Irisys registers only increase
//! and restart at 0 after a power loss, an AXIS live-sum gives running daily totals that restart
//! at local midnight, and a Modbus register wraps at its modulus. [`CounterTracker`] turns both
//! into [`CounterInterval`] records.
//!
//! A record's natural key is door:line:start. Pushers retry and devices retransmit, so the same
//! interval arriving again counts once; a corrected interval (same key, other counts) becomes a
//! new revision carrying the full counts, never a silent edit — the revision model of the hourly
//! aggregates ([`crate::aggregate`]). Whoever sums records keeps the newest revision of each key
//! ([`newest_revisions`]), as [`footfall_by_hour`] and [`day_totals`] do.
//!
//! Cumulative readings are differenced, reading to reading:
//! - The first reading of a line only sets the baseline: the people counted before it cannot be
//!   placed in time, so the first interval after a start is lost — unless the tracker was
//!   restored from a persisted state, which is why it is serde.
//! - A decrease is a reset (power loss): the reading itself is the people since the reset; what
//!   passed between the previous reading and the power loss is lost.
//! - A decrease on a register with a known wrap modulus is a wrap when the wrapped difference is
//!   plausible (at most half the modulus and within the line's rate bound), otherwise a reset.
//! - For a daily-restarting source (AXIS live-sum), a reading on a later local day than the
//!   previous one counts from local midnight; the people between the previous reading and
//!   midnight are lost. This is a scheduled restart, not counted as a reset.
//!
//! No rule ever produces a negative count or counts a register value twice.
//!
//! Footfall is the sum of the entries (ins) of the lines passed in: the caller passes the lines
//! that count the store's doors (a line counting passers-by outside is not footfall).

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::time::LocalClock;

const HOUR_MS: i64 = 3_600_000;
/// Longest interval accepted, and the longest gap over which cumulative readings are
/// differenced (a longer gap cannot be placed in time and only re-baselines the line).
const MAX_INTERVAL_MS: i64 = 24 * HOUR_MS;
/// Interval keys and register baselines are forgotten after this long (input time), like the
/// hourly aggregates' `KEEP_MS`. Inputs older than that are refused: their key may have been
/// forgotten, and a retransmission would count again.
const KEEP_MS: i64 = 48 * HOUR_MS;
/// An input may lie at most this far after it was received: a counter with a clock running ahead
/// must not push the horizon forward and make every real input too late.
const MAX_AHEAD_MS: i64 = 24 * HOUR_MS;
/// 2000-01-01T00:00:00Z: earlier times are an unset device clock.
const MIN_TIME_MS: i64 = 946_684_800_000;
/// 2100-01-01T00:00:00Z: later times are garbage, not a store's calendar.
const MAX_TIME_MS: i64 = 4_102_444_800_000;
/// Most people one line may count in one interval, however long.
const MAX_COUNT: u64 = 100_000;
/// Most people one line passes per second (generous for a wide mall entrance) …
const MAX_PER_SECOND: u64 = 10;
/// … plus this many, so short intervals are not judged on their rate alone.
const RATE_SLACK: u64 = 10;

/// What a counter source read, already attributed to a door and a counting line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CountInput {
    /// The ins and outs of a line over `[start_ms, end_ms)` (UTC ms).
    Interval {
        /// Door name, as configured.
        door: String,
        /// Counting line of the door, as configured.
        line: String,
        /// Interval start, UTC ms (part of the record's key).
        start_ms: i64,
        /// Interval end, UTC ms.
        end_ms: i64,
        /// People who entered.
        ins: u32,
        /// People who left.
        outs: u32,
    },
    /// Register values of a cumulative counter read at `at_ms`.
    Cumulative {
        /// Door name, as configured.
        door: String,
        /// Counting line of the door, as configured.
        line: String,
        /// When the registers were read, UTC ms.
        at_ms: i64,
        /// The entries register, when the source reports one.
        ins: Option<u64>,
        /// The exits register, when the source reports one.
        outs: Option<u64>,
        /// The registers' wrap modulus when known (e.g. 65536 for a 16-bit Modbus register).
        wrap: Option<u64>,
        /// The totals restart at the store's local midnight (AXIS live-sum).
        resets_daily: bool,
    },
}

impl CountInput {
    /// The input's time: an interval's end, a reading's time (UTC ms).
    pub fn time_ms(&self) -> i64 {
        match self {
            CountInput::Interval { end_ms, .. } => *end_ms,
            CountInput::Cumulative { at_ms, .. } => *at_ms,
        }
    }
}

/// A stored interval record: one revision of one door line's counts over `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterInterval {
    /// Door name.
    pub door: String,
    /// Counting line of the door.
    pub line: String,
    /// Interval start, UTC ms.
    pub start_ms: i64,
    /// Interval end, UTC ms.
    pub end_ms: i64,
    /// People who entered.
    pub ins: u32,
    /// People who left.
    pub outs: u32,
    /// 1 for the first record of the key, +1 whenever its end or counts change.
    pub revision: u32,
}

impl CounterInterval {
    /// The natural key, `door:line:start_ms`.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.door, self.line, self.start_ms)
    }
}

/// Why an input was refused. A refused input leaves the tracker as it was (a cumulative
/// reading refused as [`CounterError::TooManyCounts`] is only remembered as a suspect, see
/// [`CounterTracker::apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CounterError {
    /// The interval ends at or before its start.
    EmptyInterval {
        /// Start, UTC ms.
        start_ms: i64,
        /// End, UTC ms.
        end_ms: i64,
    },
    /// The interval is longer than 24 h.
    TooLong {
        /// Start, UTC ms.
        start_ms: i64,
        /// End, UTC ms.
        end_ms: i64,
    },
    /// A time before 2000 or after 2099 (an unset or broken device clock).
    TimeOutOfRange {
        /// The time, UTC ms.
        at_ms: i64,
    },
    /// A time more than a day after the input was received (a device clock running ahead).
    InFuture {
        /// The time, UTC ms.
        at_ms: i64,
        /// When the input was received, UTC ms.
        received_ms: i64,
    },
    /// A time older than the tracker remembers keys for (48 h before the latest input).
    TooLate {
        /// The time, UTC ms.
        at_ms: i64,
        /// The oldest time still accepted, UTC ms.
        horizon_ms: i64,
    },
    /// More people than a line can pass in the time (at most 10 a second plus 10, and never
    /// more than 100 000 per interval).
    TooManyCounts {
        /// The count (or register difference).
        count: u64,
        /// The most allowed for the interval's length.
        bound: u64,
    },
    /// A cumulative reading older than the line's last reading.
    OutOfOrder {
        /// The reading's time, UTC ms.
        at_ms: i64,
        /// The line's last reading, UTC ms.
        last_ms: i64,
    },
    /// A cumulative reading at the same time as the line's last one, with other values.
    ConflictingReading {
        /// The reading's time, UTC ms.
        at_ms: i64,
    },
    /// A cumulative reading with neither an ins nor an outs register.
    NoCounts,
    /// A register value at or above the configured wrap modulus.
    AboveWrap {
        /// The register value.
        value: u64,
        /// The wrap modulus.
        wrap: u64,
    },
}

impl CounterError {
    /// snake_case counter name, e.g. `"out_of_order"`.
    pub fn reason(&self) -> &'static str {
        match self {
            CounterError::EmptyInterval { .. } => "empty_interval",
            CounterError::TooLong { .. } => "too_long",
            CounterError::TimeOutOfRange { .. } => "time_out_of_range",
            CounterError::InFuture { .. } => "in_future",
            CounterError::TooLate { .. } => "too_late",
            CounterError::TooManyCounts { .. } => "too_many_counts",
            CounterError::OutOfOrder { .. } => "out_of_order",
            CounterError::ConflictingReading { .. } => "conflicting_reading",
            CounterError::NoCounts => "no_counts",
            CounterError::AboveWrap { .. } => "above_wrap",
        }
    }
}

impl fmt::Display for CounterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterError::EmptyInterval { start_ms, end_ms } => {
                write!(
                    f,
                    "counter interval ends ({end_ms}) at or before its start ({start_ms})"
                )
            }
            CounterError::TooLong { start_ms, end_ms } => {
                write!(
                    f,
                    "counter interval {start_ms}..{end_ms} is longer than 24 h"
                )
            }
            CounterError::TimeOutOfRange { at_ms } => {
                write!(f, "counter time {at_ms} is before 2000 or after 2099")
            }
            CounterError::InFuture { at_ms, received_ms } => write!(
                f,
                "counter time {at_ms} is more than a day after it was received ({received_ms})"
            ),
            CounterError::TooLate { at_ms, horizon_ms } => write!(
                f,
                "counter time {at_ms} is older than the oldest time remembered ({horizon_ms})"
            ),
            CounterError::TooManyCounts { count, bound } => {
                write!(
                    f,
                    "counter count {count} is more than {bound} for the interval"
                )
            }
            CounterError::OutOfOrder { at_ms, last_ms } => write!(
                f,
                "cumulative reading at {at_ms} is older than the line's last reading ({last_ms})"
            ),
            CounterError::ConflictingReading { at_ms } => write!(
                f,
                "cumulative reading at {at_ms} has other values than the last reading at that time"
            ),
            CounterError::NoCounts => f.write_str("cumulative reading has no ins or outs"),
            CounterError::AboveWrap { value, wrap } => {
                write!(
                    f,
                    "register value {value} is not below the wrap modulus {wrap}"
                )
            }
        }
    }
}

impl std::error::Error for CounterError {}

/// What one input produced, and what was noticed on the way (for the agent's counters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Records produced: none (duplicate, baseline, refused) or one.
    pub intervals: Vec<CounterInterval>,
    /// The input repeated what was already recorded, and counted nothing.
    pub duplicate: bool,
    /// Registers found reset (a decrease that is no wrap, or a confirmed jump).
    pub resets: u32,
    /// Registers found wrapped.
    pub wraps: u32,
    /// A cumulative reading only set the line's baseline (first reading, or the previous one
    /// was more than 24 h earlier).
    pub baselined: bool,
    /// A new interval key older than the newest one of its line (accepted: it has its own key;
    /// an hour already reported may have changed).
    pub out_of_order: bool,
    /// Why the input was refused, if it was.
    pub rejected: Option<CounterError>,
}

/// A register's value and when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Register {
    value: u64,
    at_ms: i64,
}

/// One cumulative reading as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Reading {
    at_ms: i64,
    ins: Option<u64>,
    outs: Option<u64>,
}

/// The last recorded counts of one interval key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    end_ms: i64,
    ins: u32,
    outs: u32,
    revision: u32,
}

/// What readings are differenced against. Registers are kept apart because a source may omit
/// one in a reading; the omitted register keeps its older baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Baseline {
    /// The last reading accepted (the start of the next interval).
    last: Option<Reading>,
    ins: Option<Register>,
    outs: Option<Register>,
}

impl Baseline {
    /// The baseline a suspect reading would have set.
    fn rebased(&self, s: &Reading) -> Baseline {
        let reg = |v: Option<u64>| {
            v.map(|value| Register {
                value,
                at_ms: s.at_ms,
            })
        };
        Baseline {
            last: Some(*s),
            ins: reg(s.ins).or(self.ins),
            outs: reg(s.outs).or(self.outs),
        }
    }
}

/// State of one door line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LineState {
    base: Baseline,
    /// A reading refused for an implausible difference. If the next reading differences
    /// plausibly against it, the jump was real (a swapped device, a cleared register) and the
    /// line re-bases on it; a one-off glitch is forgotten by the next good reading.
    suspect: Option<Reading>,
    /// Recorded intervals by start (ms).
    seen: BTreeMap<i64, Seen>,
}

impl LineState {
    fn forget_before(&mut self, cutoff_ms: i64) {
        self.seen = self.seen.split_off(&cutoff_ms);
        let old = |t: i64| t < cutoff_ms;
        if self.base.last.is_some_and(|r| old(r.at_ms)) {
            self.base.last = None;
        }
        if self.base.ins.is_some_and(|r| old(r.at_ms)) {
            self.base.ins = None;
        }
        if self.base.outs.is_some_and(|r| old(r.at_ms)) {
            self.base.outs = None;
        }
        if self.suspect.is_some_and(|r| old(r.at_ms)) {
            self.suspect = None;
        }
    }

    fn is_empty(&self) -> bool {
        self == &LineState::default()
    }

    /// Records an interval under its key: a new key is revision 1, changed counts a new
    /// revision, the same counts again a duplicate.
    fn record(&mut self, door: &str, line: &str, start_ms: i64, s: Seen, out: &mut Applied) {
        let revision = match self.seen.get(&start_ms) {
            Some(prev) if (prev.end_ms, prev.ins, prev.outs) == (s.end_ms, s.ins, s.outs) => {
                out.duplicate = true;
                return;
            }
            Some(prev) => prev.revision.saturating_add(1),
            None => 1,
        };
        self.seen.insert(start_ms, Seen { revision, ..s });
        out.intervals.push(CounterInterval {
            door: door.to_string(),
            line: line.to_string(),
            start_ms,
            end_ms: s.end_ms,
            ins: s.ins,
            outs: s.outs,
            revision,
        });
    }
}

/// How the source's registers behave.
#[derive(Debug, Clone, Copy)]
struct RegisterKind {
    wrap: Option<u64>,
    resets_daily: bool,
}

/// What differencing one register gave.
#[derive(Debug, Clone, Copy, Default)]
struct Diff {
    count: u64,
    reset: bool,
    wrap: bool,
    /// Local midnight, when the count runs from there (daily restart).
    since_ms: Option<i64>,
}

/// What differencing a whole reading gave: `None` registers only set their baseline.
#[derive(Debug, Clone, Copy)]
struct Step {
    start_ms: Option<i64>,
    ins: Option<Diff>,
    outs: Option<Diff>,
}

/// The most people a line may count in `ms`.
fn bound(ms: i64) -> u64 {
    let ms = u64::try_from(ms).unwrap_or(0);
    (RATE_SLACK + ms.saturating_mul(MAX_PER_SECOND) / 1000).min(MAX_COUNT)
}

fn plausible(count: u64, ms: i64) -> Result<u64, CounterError> {
    let bound = bound(ms);
    if count > bound {
        return Err(CounterError::TooManyCounts { count, bound });
    }
    Ok(count)
}

/// Differences one register from `prev` to `now` read at `at_ms` (after `prev.at_ms`).
fn diff(
    prev: Option<Register>,
    now: Option<u64>,
    at_ms: i64,
    kind: RegisterKind,
    clock: &LocalClock,
) -> Result<Option<Diff>, CounterError> {
    let (Some(prev), Some(now)) = (prev, now) else {
        return Ok(None);
    };
    let elapsed = at_ms - prev.at_ms;
    if elapsed > MAX_INTERVAL_MS {
        return Ok(None);
    }
    if kind.resets_daily && clock.date(prev.at_ms) != clock.date(at_ms) {
        // The total restarted at midnight, whatever it was before: it is the day's count so far.
        let midnight = clock.day_start(clock.date(at_ms));
        let count = plausible(now, at_ms - midnight)?;
        return Ok(Some(Diff {
            count,
            since_ms: Some(midnight),
            ..Diff::default()
        }));
    }
    if now >= prev.value {
        let count = plausible(now - prev.value, elapsed)?;
        return Ok(Some(Diff {
            count,
            ..Diff::default()
        }));
    }
    if let Some(m) = kind.wrap {
        let wrapped = m
            .checked_sub(prev.value)
            .filter(|&up| up > 0)
            .and_then(|up| up.checked_add(now));
        // Half the modulus, as in serial-number arithmetic: a longer way round is likelier a
        // reset to a small value than a wrap.
        if let Some(count) = wrapped.filter(|&w| w <= m / 2 && w <= bound(elapsed)) {
            return Ok(Some(Diff {
                count,
                wrap: true,
                ..Diff::default()
            }));
        }
    }
    let count = plausible(now, elapsed)?;
    Ok(Some(Diff {
        count,
        reset: true,
        ..Diff::default()
    }))
}

/// Differences a reading against a baseline.
fn step(
    base: &Baseline,
    r: &Reading,
    kind: RegisterKind,
    clock: &LocalClock,
) -> Result<Step, CounterError> {
    let ins = diff(base.ins, r.ins, r.at_ms, kind, clock)?;
    let outs = diff(base.outs, r.outs, r.at_ms, kind, clock)?;
    let since = [ins, outs]
        .iter()
        .flatten()
        .filter_map(|d| d.since_ms)
        .max();
    let start_ms = match (base.last, ins.or(outs)) {
        (Some(last), Some(_)) => Some(match since {
            // A reading exactly at midnight keeps the previous start: an interval must not be
            // empty.
            Some(s) if s < r.at_ms => s.max(last.at_ms),
            _ => last.at_ms,
        }),
        _ => None,
    };
    Ok(Step {
        start_ms,
        ins,
        outs,
    })
}

/// Turns counter inputs into interval records: deduplicates and revises intervals by key, and
/// differences cumulative registers. Persist it (serde) so a restart neither loses the
/// baselines nor counts a retransmission again.
///
/// Memory is bounded: keys and baselines older than 48 h of input time are forgotten, and
/// inputs that old are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterTracker {
    /// Line states by door, then line (nested string maps so the state is also valid JSON).
    doors: BTreeMap<String, BTreeMap<String, LineState>>,
    /// The latest input time accepted (an interval's end, a reading's time).
    latest_ms: Option<i64>,
}

impl CounterTracker {
    /// An empty tracker: no baselines, no keys.
    pub fn new() -> Self {
        CounterTracker::default()
    }

    /// Applies one input. The clock is the store's, passed per call like
    /// [`crate::Aggregator::add`], so the persisted state does not depend on configuration.
    /// `received_ms` is when the agent received the input (UTC ms, like
    /// [`crate::ExtractContext::received_ms`]); inputs more than a day after it are refused.
    /// It is the reference for "future" rather than the latest input, because after an outage
    /// longer than a day every new input lies more than a day past the latest one.
    ///
    /// A refused input changes nothing, with one exception: a cumulative reading refused as
    /// [`CounterError::TooManyCounts`] is remembered as a suspect, so that a real jump (a
    /// swapped device) is confirmed by the next reading instead of wedging the line.
    pub fn apply(&mut self, input: &CountInput, clock: &LocalClock, received_ms: i64) -> Applied {
        let mut out = Applied::default();
        let done = match input {
            CountInput::Interval {
                door,
                line,
                start_ms,
                end_ms,
                ins,
                outs,
            } => self.interval(
                door,
                line,
                (*start_ms, *end_ms),
                (*ins, *outs),
                received_ms,
                &mut out,
            ),
            CountInput::Cumulative {
                door,
                line,
                at_ms,
                ins,
                outs,
                wrap,
                resets_daily,
            } => {
                let r = Reading {
                    at_ms: *at_ms,
                    ins: *ins,
                    outs: *outs,
                };
                let kind = RegisterKind {
                    wrap: *wrap,
                    resets_daily: *resets_daily,
                };
                self.cumulative((door, line), r, kind, clock, received_ms, &mut out)
            }
        };
        if let Err(e) = done {
            out = Applied {
                rejected: Some(e),
                ..Applied::default()
            };
        }
        out
    }

    fn check_time(&self, at_ms: i64, received_ms: i64) -> Result<(), CounterError> {
        if !(MIN_TIME_MS..MAX_TIME_MS).contains(&at_ms) {
            return Err(CounterError::TimeOutOfRange { at_ms });
        }
        if at_ms > received_ms.saturating_add(MAX_AHEAD_MS) {
            return Err(CounterError::InFuture { at_ms, received_ms });
        }
        if let Some(latest_ms) = self.latest_ms {
            let horizon_ms = latest_ms - KEEP_MS;
            if at_ms < horizon_ms {
                return Err(CounterError::TooLate { at_ms, horizon_ms });
            }
        }
        Ok(())
    }

    fn interval(
        &mut self,
        door: &str,
        line: &str,
        (start_ms, end_ms): (i64, i64),
        (ins, outs): (u32, u32),
        received_ms: i64,
        out: &mut Applied,
    ) -> Result<(), CounterError> {
        if end_ms <= start_ms {
            return Err(CounterError::EmptyInterval { start_ms, end_ms });
        }
        // Saturating: the times are not range-checked yet.
        if end_ms.saturating_sub(start_ms) > MAX_INTERVAL_MS {
            return Err(CounterError::TooLong { start_ms, end_ms });
        }
        self.check_time(start_ms, received_ms)?;
        self.check_time(end_ms, received_ms)?;
        plausible(u64::from(ins.max(outs)), end_ms - start_ms)?;
        let state = self
            .doors
            .entry(door.to_string())
            .or_default()
            .entry(line.to_string())
            .or_default();
        out.out_of_order = !state.seen.contains_key(&start_ms)
            && state
                .seen
                .keys()
                .next_back()
                .is_some_and(|&newest| start_ms < newest);
        let seen = Seen {
            end_ms,
            ins,
            outs,
            revision: 0,
        };
        state.record(door, line, start_ms, seen, out);
        self.advance(end_ms);
        Ok(())
    }

    fn cumulative(
        &mut self,
        (door, line): (&str, &str),
        r: Reading,
        kind: RegisterKind,
        clock: &LocalClock,
        received_ms: i64,
        out: &mut Applied,
    ) -> Result<(), CounterError> {
        if r.ins.is_none() && r.outs.is_none() {
            return Err(CounterError::NoCounts);
        }
        if let Some(wrap) = kind.wrap {
            if let Some(value) = [r.ins, r.outs].into_iter().flatten().find(|&v| v >= wrap) {
                return Err(CounterError::AboveWrap { value, wrap });
            }
        }
        self.check_time(r.at_ms, received_ms)?;
        let state = self.doors.get(door).and_then(|l| l.get(line));
        let base = state.map(|s| s.base).unwrap_or_default();
        if let Some(last) = base.last {
            if r.at_ms == last.at_ms {
                if (r.ins, r.outs) == (last.ins, last.outs) {
                    out.duplicate = true;
                    return Ok(());
                }
                return Err(CounterError::ConflictingReading { at_ms: r.at_ms });
            }
            if r.at_ms < last.at_ms {
                return Err(CounterError::OutOfOrder {
                    at_ms: r.at_ms,
                    last_ms: last.at_ms,
                });
            }
        }
        let suspect = state.and_then(|s| s.suspect);
        let (base, st, jumped) = match step(&base, &r, kind, clock) {
            Ok(st) => (base, st, false),
            Err(e) => {
                let confirmed = suspect.filter(|s| s.at_ms < r.at_ms).and_then(|s| {
                    let rebased = base.rebased(&s);
                    step(&rebased, &r, kind, clock).ok().map(|st| (rebased, st))
                });
                let Some((rebased, st)) = confirmed else {
                    self.doors
                        .entry(door.to_string())
                        .or_default()
                        .entry(line.to_string())
                        .or_default()
                        .suspect = Some(r);
                    return Err(e);
                };
                (rebased, st, true)
            }
        };
        let state = self
            .doors
            .entry(door.to_string())
            .or_default()
            .entry(line.to_string())
            .or_default();
        let reg = |v: Option<u64>| {
            v.map(|value| Register {
                value,
                at_ms: r.at_ms,
            })
        };
        state.base = Baseline {
            last: Some(r),
            ins: reg(r.ins).or(base.ins),
            outs: reg(r.outs).or(base.outs),
        };
        state.suspect = None;
        let diffs = [st.ins, st.outs];
        out.resets = diffs.iter().flatten().filter(|d| d.reset).count() as u32 + u32::from(jumped);
        out.wraps = diffs.iter().flatten().filter(|d| d.wrap).count() as u32;
        match st.start_ms {
            Some(start_ms) => {
                // Bounded by MAX_COUNT, so the conversions never saturate.
                let count = |d: Option<Diff>| u32::try_from(d.map_or(0, |d| d.count));
                let seen = Seen {
                    end_ms: r.at_ms,
                    ins: count(st.ins).unwrap_or(u32::MAX),
                    outs: count(st.outs).unwrap_or(u32::MAX),
                    revision: 0,
                };
                state.record(door, line, start_ms, seen, out);
            }
            None => out.baselined = true,
        }
        self.advance(r.at_ms);
        Ok(())
    }

    /// Moves the latest input time forward and forgets what is older than the horizon.
    fn advance(&mut self, at_ms: i64) {
        if self.latest_ms.is_some_and(|l| l >= at_ms) {
            return;
        }
        self.latest_ms = Some(at_ms);
        let cutoff = at_ms - KEEP_MS;
        for lines in self.doors.values_mut() {
            for state in lines.values_mut() {
                state.forget_before(cutoff);
            }
            lines.retain(|_, s| !s.is_empty());
        }
        self.doors.retain(|_, lines| !lines.is_empty());
    }
}

/// The newest revision of each key (door, line, start), ordered by key.
pub fn newest_revisions(intervals: &[CounterInterval]) -> Vec<&CounterInterval> {
    let mut newest: BTreeMap<(&str, &str, i64), &CounterInterval> = BTreeMap::new();
    for iv in intervals {
        let slot = newest
            .entry((iv.door.as_str(), iv.line.as_str(), iv.start_ms))
            .or_insert(iv);
        if iv.revision > slot.revision {
            *slot = iv;
        }
    }
    newest.into_values().collect()
}

/// Newest revisions whose start falls on the local `date`.
fn of_day<'a>(
    intervals: &'a [CounterInterval],
    clock: &LocalClock,
    date: NaiveDate,
) -> impl Iterator<Item = &'a CounterInterval> {
    let clock = *clock;
    newest_revisions(intervals)
        .into_iter()
        .filter(move |iv| clock.date(iv.start_ms) == date)
}

/// (ins, outs) per local hour of `date`, from the newest revision of each key.
///
/// An interval counts wholly in the hour its start falls in: counters push 1–15 min intervals
/// aligned to the hour, so splitting by time would only invent fractions. On the day clocks go
/// back, the repeated local hour holds both of its real hours; on the day they go forward, the
/// skipped hour is absent.
pub fn footfall_by_hour(
    intervals: &[CounterInterval],
    clock: &LocalClock,
    date: NaiveDate,
) -> BTreeMap<u32, (u64, u64)> {
    let mut hours: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for iv in of_day(intervals, clock, date) {
        let h = hours.entry(clock.hour(iv.start_ms)).or_default();
        h.0 += u64::from(iv.ins);
        h.1 += u64::from(iv.outs);
    }
    hours
}

/// Door totals of one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Entries over all doors.
    pub footfall: u64,
    /// Exits over all doors.
    pub outs: u64,
    /// Highest occupancy reached.
    pub peak_occupancy: u64,
    /// Occupancy after the day's last interval.
    pub occupancy_at_close: u64,
    /// (ins, outs) per door.
    pub by_door: BTreeMap<String, (u64, u64)>,
}

/// Totals of the local `date` from the newest revision of each key (interval start on `date`).
///
/// Occupancy is [`occupancy_series`]'s.
pub fn day_totals(intervals: &[CounterInterval], clock: &LocalClock, date: NaiveDate) -> DayCounts {
    let mut day = DayCounts::default();
    for iv in of_day(intervals, clock, date) {
        day.footfall += u64::from(iv.ins);
        day.outs += u64::from(iv.outs);
        let door = day.by_door.entry(iv.door.clone()).or_default();
        door.0 += u64::from(iv.ins);
        door.1 += u64::from(iv.outs);
    }
    let series = occupancy_series(intervals, clock, date);
    day.peak_occupancy = series.iter().map(|o| o.1).max().unwrap_or(0);
    day.occupancy_at_close = series.last().map_or(0, |o| o.1);
    day
}

/// People inside over the local `date`: (instant, occupancy from then on), one step per
/// interval start, from the newest revision of each key (interval start on `date`).
///
/// Occupancy starts at 0 at local midnight and runs as ins − outs, floored at 0 (a counter that
/// missed entries must not leave the store with negative people). The intervals of all doors
/// that start at the same instant are netted before the floor applies, since their order within
/// the instant is unknown; the occupancy is therefore resolved to the intervals' length, and a
/// step is taken at the interval's end (when its counts are complete).
pub fn occupancy_series(
    intervals: &[CounterInterval],
    clock: &LocalClock,
    date: NaiveDate,
) -> Vec<(i64, u64)> {
    let mut net_by_start: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for iv in of_day(intervals, clock, date) {
        let e = net_by_start.entry(iv.start_ms).or_insert((0, iv.end_ms));
        e.0 += i64::from(iv.ins) - i64::from(iv.outs);
        e.1 = e.1.max(iv.end_ms);
    }
    let mut occupancy: i64 = 0;
    net_by_start
        .values()
        .map(|&(net, end_ms)| {
            occupancy = (occupancy + net).max(0);
            (end_ms, occupancy.unsigned_abs())
        })
        .collect()
}

/// The occupancy of a [`occupancy_series`] at `at_ms`: the last step at or before it; `None`
/// before the first step or more than `max_gap_ms` after the last (the counter went silent).
pub fn occupancy_at(series: &[(i64, u64)], at_ms: i64, max_gap_ms: i64) -> Option<u64> {
    let i = series.partition_point(|s| s.0 <= at_ms);
    let (t, occ) = *series.get(i.checked_sub(1)?)?;
    (at_ms - t <= max_gap_ms).then_some(occ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    const MIN: i64 = 60_000;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    /// Applies an input received at its own time.
    fn apply(t: &mut CounterTracker, input: &CountInput, c: &LocalClock) -> Applied {
        t.apply(input, c, input.time_ms())
    }

    fn clock(tz: &str) -> LocalClock {
        LocalClock::new(tz.parse().unwrap())
    }

    fn iv(door: &str, start_ms: i64, len_min: i64, ins: u32, outs: u32) -> CountInput {
        CountInput::Interval {
            door: door.to_string(),
            line: "main".to_string(),
            start_ms,
            end_ms: start_ms + len_min * MIN,
            ins,
            outs,
        }
    }

    fn cum(
        at_ms: i64,
        ins: Option<u64>,
        outs: Option<u64>,
        wrap: Option<u64>,
        daily: bool,
    ) -> CountInput {
        CountInput::Cumulative {
            door: "front".to_string(),
            line: "main".to_string(),
            at_ms,
            ins,
            outs,
            wrap,
            resets_daily: daily,
        }
    }

    fn rec(
        door: &str,
        start: &str,
        len_min: i64,
        ins: u32,
        outs: u32,
        revision: u32,
    ) -> CounterInterval {
        let start_ms = ms(start);
        CounterInterval {
            door: door.to_string(),
            line: "main".to_string(),
            start_ms,
            end_ms: start_ms + len_min * MIN,
            ins,
            outs,
            revision,
        }
    }

    #[test]
    fn interval_pushes_count_once_and_corrections_are_revisions() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        let t1 = t0 + 15 * MIN;
        // (input, produced (start, ins, outs, revision), duplicate, out_of_order)
        let table = [
            (iv("front", t1, 15, 7, 2), Some((t1, 7, 2, 1)), false, false),
            (iv("front", t1, 15, 7, 2), None, true, false),
            (iv("front", t1, 15, 9, 2), Some((t1, 9, 2, 2)), false, false),
            (iv("front", t1, 15, 9, 2), None, true, false),
            // A late interval has its own key: accepted, flagged.
            (iv("front", t0, 15, 4, 0), Some((t0, 4, 0, 1)), false, true),
            // Another door's interval with the same start is another key.
            (iv("back", t1, 15, 1, 1), Some((t1, 1, 1, 1)), false, false),
            // A stale retransmission after a correction: the newest arrival wins.
            (iv("front", t1, 15, 7, 2), Some((t1, 7, 2, 3)), false, false),
            // A changed end is a change of the record too.
            (iv("front", t1, 14, 7, 2), Some((t1, 7, 2, 4)), false, false),
        ];
        let mut t = CounterTracker::new();
        for (i, (input, produced, duplicate, out_of_order)) in table.into_iter().enumerate() {
            let a = apply(&mut t, &input, &c);
            assert_eq!(a.rejected, None, "row {i}");
            let got: Vec<_> = a
                .intervals
                .iter()
                .map(|r| (r.start_ms, r.ins, r.outs, r.revision))
                .collect();
            assert_eq!(got, produced.into_iter().collect::<Vec<_>>(), "row {i}");
            assert_eq!(
                (a.duplicate, a.out_of_order),
                (duplicate, out_of_order),
                "row {i}"
            );
        }
        assert_eq!(
            rec("front", "2026-11-20T09:15:00Z", 15, 0, 0, 1).key(),
            "front:main:1795166100000"
        );
    }

    /// A cumulative scenario: (name, tz, wrap, resets_daily, readings as (time, ins), expected
    /// per reading: the interval (start, end, ins) or None, then total resets and wraps).
    type Scenario = (
        &'static str,
        &'static str,
        Option<u64>,
        bool,
        Vec<(&'static str, u64)>,
        Vec<Option<(&'static str, &'static str, u32)>>,
        u32,
        u32,
    );

    #[test]
    fn cumulative_registers_difference_resets_wraps_and_daily_restarts() {
        let table: Vec<Scenario> = vec![
            (
                "irisys power loss",
                "UTC",
                None,
                false,
                vec![
                    ("2026-11-20T09:00:00Z", 100),
                    ("2026-11-20T09:01:00Z", 130),
                    ("2026-11-20T09:02:00Z", 5),
                    ("2026-11-20T09:03:00Z", 20),
                ],
                vec![
                    None,
                    Some(("2026-11-20T09:00:00Z", "2026-11-20T09:01:00Z", 30)),
                    Some(("2026-11-20T09:01:00Z", "2026-11-20T09:02:00Z", 5)),
                    Some(("2026-11-20T09:02:00Z", "2026-11-20T09:03:00Z", 15)),
                ],
                1,
                0,
            ),
            (
                "modbus wrap",
                "UTC",
                Some(65_536),
                false,
                vec![
                    ("2026-11-20T09:00:00Z", 65_530),
                    ("2026-11-20T09:01:00Z", 4),
                ],
                vec![
                    None,
                    Some(("2026-11-20T09:00:00Z", "2026-11-20T09:01:00Z", 10)),
                ],
                0,
                1,
            ),
            (
                "wrap too fast for a door is a reset",
                "UTC",
                Some(65_536),
                false,
                vec![
                    ("2026-11-20T09:00:00Z", 40_000),
                    ("2026-11-20T09:01:00Z", 7),
                ],
                vec![
                    None,
                    Some(("2026-11-20T09:00:00Z", "2026-11-20T09:01:00Z", 7)),
                ],
                1,
                0,
            ),
            (
                "wrap over half the modulus is a reset",
                "UTC",
                Some(65_536),
                false,
                vec![
                    ("2026-11-20T00:00:00Z", 30_000),
                    ("2026-11-20T20:00:00Z", 10),
                ],
                vec![
                    None,
                    Some(("2026-11-20T00:00:00Z", "2026-11-20T20:00:00Z", 10)),
                ],
                1,
                0,
            ),
            (
                "axis live-sum restarts at Shanghai midnight",
                "Asia/Shanghai",
                None,
                true,
                vec![
                    ("2026-11-20T15:50:00Z", 780),
                    ("2026-11-20T15:59:00Z", 800),
                    ("2026-11-20T16:10:00Z", 12),
                    ("2026-11-20T16:20:00Z", 30),
                    // A decrease within the day is a power loss, not the daily restart.
                    ("2026-11-20T16:30:00Z", 4),
                ],
                vec![
                    None,
                    Some(("2026-11-20T15:50:00Z", "2026-11-20T15:59:00Z", 20)),
                    // Counted from local midnight (16:00Z), on the new day.
                    Some(("2026-11-20T16:00:00Z", "2026-11-20T16:10:00Z", 12)),
                    Some(("2026-11-20T16:10:00Z", "2026-11-20T16:20:00Z", 18)),
                    Some(("2026-11-20T16:20:00Z", "2026-11-20T16:30:00Z", 4)),
                ],
                1,
                0,
            ),
            (
                "axis total that grew across midnight still restarted",
                "Asia/Shanghai",
                None,
                true,
                vec![("2026-11-20T15:58:00Z", 3), ("2026-11-20T16:05:00Z", 9)],
                vec![
                    None,
                    Some(("2026-11-20T16:00:00Z", "2026-11-20T16:05:00Z", 9)),
                ],
                0,
                0,
            ),
            (
                "a gap over 24 h only re-baselines",
                "UTC",
                None,
                false,
                vec![
                    ("2026-11-20T09:00:00Z", 100),
                    ("2026-11-21T09:00:01Z", 900),
                    ("2026-11-21T09:01:00Z", 905),
                ],
                vec![
                    None,
                    None,
                    Some(("2026-11-21T09:00:01Z", "2026-11-21T09:01:00Z", 5)),
                ],
                0,
                0,
            ),
        ];
        for (name, tz, wrap, daily, readings, expected, resets, wraps) in table {
            let c = clock(tz);
            let mut t = CounterTracker::new();
            let (mut total_resets, mut total_wraps) = (0, 0);
            for (i, ((at, ins), want)) in readings.iter().zip(&expected).enumerate() {
                let a = apply(&mut t, &cum(ms(at), Some(*ins), Some(0), wrap, daily), &c);
                assert_eq!(a.rejected, None, "{name} #{i}");
                let got: Vec<_> = a
                    .intervals
                    .iter()
                    .map(|r| (r.start_ms, r.end_ms, r.ins, r.outs, r.revision))
                    .collect();
                let want: Vec<_> = want
                    .iter()
                    .map(|(s, e, n)| (ms(s), ms(e), *n, 0, 1))
                    .collect();
                assert_eq!(got, want, "{name} #{i}");
                assert_eq!(a.baselined, got.is_empty(), "{name} #{i}");
                total_resets += a.resets;
                total_wraps += a.wraps;
            }
            assert_eq!((total_resets, total_wraps), (resets, wraps), "{name}");
        }
    }

    #[test]
    fn registers_missing_from_a_reading_keep_their_baseline() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        let mut t = CounterTracker::new();
        // (reading, produced (ins, outs))
        let table = [
            (cum(t0, Some(10), Some(3), None, false), None),
            (cum(t0 + MIN, Some(12), None, None, false), Some((2, 0))),
            // Outs are differenced against 3, read two minutes earlier: nothing lost or doubled.
            (
                cum(t0 + 2 * MIN, Some(12), Some(8), None, false),
                Some((0, 5)),
            ),
            (cum(t0 + 3 * MIN, None, Some(9), None, false), Some((0, 1))),
        ];
        for (i, (input, produced)) in table.into_iter().enumerate() {
            let a = apply(&mut t, &input, &c);
            let got: Vec<_> = a.intervals.iter().map(|r| (r.ins, r.outs)).collect();
            assert_eq!(got, produced.into_iter().collect::<Vec<_>>(), "row {i}");
        }
    }

    #[test]
    fn cumulative_duplicates_out_of_order_and_conflicts_change_nothing() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        let mut t = CounterTracker::new();
        assert!(apply(&mut t, &cum(t0, Some(100), None, None, false), &c).baselined);
        assert_eq!(
            apply(&mut t, &cum(t0 + MIN, Some(110), None, None, false), &c)
                .intervals
                .len(),
            1
        );
        let before = t.clone();
        // (reading, duplicate, rejection reason)
        let table = [
            (cum(t0 + MIN, Some(110), None, None, false), true, None),
            (
                cum(t0 + MIN, Some(111), None, None, false),
                false,
                Some("conflicting_reading"),
            ),
            (
                cum(t0 + 30_000, Some(105), None, None, false),
                false,
                Some("out_of_order"),
            ),
            (
                cum(t0 - MIN, Some(90), None, None, false),
                false,
                Some("out_of_order"),
            ),
        ];
        for (i, (input, duplicate, reason)) in table.into_iter().enumerate() {
            let a = apply(&mut t, &input, &c);
            assert!(a.intervals.is_empty(), "row {i}");
            assert_eq!(a.duplicate, duplicate, "row {i}");
            assert_eq!(
                a.rejected.as_ref().map(CounterError::reason),
                reason,
                "row {i}"
            );
            assert_eq!(t, before, "row {i}");
        }
        let a = apply(&mut t, &cum(t0 + 2 * MIN, Some(115), None, None, false), &c);
        assert_eq!(a.intervals[0].ins, 5);
    }

    #[test]
    fn bad_inputs_are_rejected_without_touching_state() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        // Everything is received at 09:15.
        let now = t0 + 15 * MIN;
        let mut t = CounterTracker::new();
        t.apply(&iv("front", t0, 15, 5, 5), &c, now);
        t.apply(&cum(t0, Some(100), Some(50), Some(65_536), false), &c, now);
        let before = t.clone();
        let day = 24 * 60;
        let table = [
            (iv("front", t0, 0, 1, 1), "empty_interval"),
            (iv("front", t0, -5, 1, 1), "empty_interval"),
            (iv("front", t0, day + 1, 1, 1), "too_long"),
            (iv("front", i64::MIN, 15, 1, 1), "time_out_of_range"),
            (
                CountInput::Interval {
                    door: "front".to_string(),
                    line: "main".to_string(),
                    start_ms: i64::MIN,
                    end_ms: i64::MAX,
                    ins: 0,
                    outs: 0,
                },
                "too_long",
            ),
            (iv("front", t0, day, 100_001, 0), "too_many_counts"),
            // 10 a second plus 10: at most 610 in a minute.
            (iv("front", t0, 1, 611, 0), "too_many_counts"),
            (
                iv("front", ms("1999-12-31T23:00:00Z"), 15, 1, 1),
                "time_out_of_range",
            ),
            (
                iv("front", ms("2100-01-01T00:00:00Z"), 15, 1, 1),
                "time_out_of_range",
            ),
            // A device clock a day and a minute ahead.
            (iv("front", t0 + 24 * 60 * MIN, 16, 1, 1), "in_future"),
            (iv("front", t0 - 49 * 60 * MIN, 15, 1, 1), "too_late"),
            (cum(t0 + MIN, None, None, None, false), "no_counts"),
            (
                cum(t0 + MIN, Some(70_000), Some(50), Some(65_536), false),
                "above_wrap",
            ),
            (
                cum(t0 + 25 * 60 * MIN, Some(101), None, None, false),
                "in_future",
            ),
        ];
        for (input, reason) in table {
            let a = t.apply(&input, &c, now);
            assert_eq!(
                a.rejected.as_ref().map(CounterError::reason),
                Some(reason),
                "{input:?}"
            );
            assert!(a.intervals.is_empty(), "{input:?}");
            assert!(!a.rejected.unwrap().to_string().is_empty());
            assert_eq!(t, before, "{input:?}");
        }
        // The bounds themselves are accepted.
        for input in [
            iv("side", t0, day, 100_000, 0),
            iv("side", t0 + MIN, 1, 610, 610),
            iv("side", t0 + 24 * 60 * MIN, 15, 1, 1),
        ] {
            let a = t.apply(&input, &c, now);
            assert_eq!((a.rejected, a.intervals.len()), (None, 1), "{input:?}");
        }
    }

    #[test]
    fn implausible_jumps_are_suspect_until_confirmed() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        // (name, register values a minute apart, per reading: produced ins or rejection reason,
        // resets)
        let table: [(&str, Vec<u64>, Vec<Result<Option<u32>, &str>>, u32); 2] = [
            (
                "one glitch is dropped, the register is not counted twice",
                vec![500, 900_000, 505, 510],
                vec![Ok(None), Err("too_many_counts"), Ok(Some(5)), Ok(Some(5))],
                0,
            ),
            (
                "a swapped device re-bases on the confirmed jump",
                vec![100, 2_000_000, 2_000_010, 2_000_012],
                vec![Ok(None), Err("too_many_counts"), Ok(Some(10)), Ok(Some(2))],
                1,
            ),
        ];
        for (name, values, want, resets) in table {
            let mut t = CounterTracker::new();
            let mut total_resets = 0;
            for (i, (v, want)) in values.iter().zip(want).enumerate() {
                let at = t0 + i as i64 * MIN;
                let a = apply(&mut t, &cum(at, Some(*v), None, None, false), &c);
                total_resets += a.resets;
                let got = match a.rejected {
                    Some(e) => Err(e.reason()),
                    None => Ok(a.intervals.first().map(|r| r.ins)),
                };
                assert_eq!(got, want, "{name} #{i}");
            }
            assert_eq!(total_resets, resets, "{name}");
        }
    }

    #[test]
    fn keys_beyond_the_horizon_are_forgotten_and_their_inputs_refused() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        let mut t = CounterTracker::new();
        for h in 0..72 {
            let a = apply(&mut t, &iv("front", t0 + h * 60 * MIN, 60, 1, 0), &c);
            assert_eq!(a.intervals.len(), 1);
        }
        let lines = &t.doors["front"];
        let seen = &lines["main"].seen;
        // Latest end is t0 + 72 h; keys from t0 + 24 h on are kept.
        assert_eq!(seen.len(), 48);
        assert_eq!(seen.keys().next(), Some(&(t0 + 24 * 60 * MIN)));
        // A retransmission of a forgotten key must not count again: refused.
        let a = apply(&mut t, &iv("front", t0, 60, 1, 0), &c);
        assert_eq!(a.rejected.map(|e| e.reason()), Some("too_late"));
        // After a week's outage the tracker takes input again and forgets the old keys.
        let later = t0 + 7 * 24 * 60 * MIN;
        let a = apply(&mut t, &iv("front", later, 15, 3, 0), &c);
        assert_eq!((a.rejected, a.intervals.len()), (None, 1));
        assert_eq!(t.doors["front"]["main"].seen.len(), 1);
    }

    #[test]
    fn serde_round_trip_mid_stream_continues_identically() {
        let c = clock("Asia/Shanghai");
        let t0 = ms("2026-11-20T15:40:00Z");
        let inputs: Vec<CountInput> = (0..12)
            .flat_map(|i| {
                let at = t0 + i * 5 * MIN;
                [
                    iv("back", at, 5, (i % 4) as u32, (i % 3) as u32),
                    // The previous interval again: repeated on even steps, corrected on odd.
                    iv(
                        "back",
                        at - 5 * MIN,
                        5,
                        ((i + 3) % 4 + i % 2) as u32,
                        ((i + 2) % 3) as u32,
                    ),
                    // Wraps at 64; restarts at Shanghai midnight (16:00Z, read exactly then).
                    cum(
                        at,
                        Some((i as u64 * 15) % 64),
                        Some(i as u64),
                        Some(64),
                        true,
                    ),
                ]
            })
            .collect();
        let run = |t: &mut CounterTracker, inputs: &[CountInput]| -> Vec<Applied> {
            inputs.iter().map(|i| apply(t, i, &c)).collect()
        };
        let mut whole = CounterTracker::new();
        let all = run(&mut whole, &inputs);
        // The stream exercises revisions, duplicates, wraps and a suspect reading (the total
        // read exactly at midnight is still the old day's).
        assert!(all.iter().any(|a| a.wraps > 0) && all.iter().any(|a| a.duplicate));
        assert!(all
            .iter()
            .any(|a| a.intervals.iter().any(|r| r.revision > 1)));
        assert_eq!(
            all.iter()
                .filter_map(|a| a.rejected.as_ref())
                .map(CounterError::reason)
                .collect::<Vec<_>>(),
            ["too_many_counts"]
        );
        for split in 0..=inputs.len() {
            let mut first = CounterTracker::new();
            let mut got = run(&mut first, &inputs[..split]);
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: CounterTracker = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first, "json split {split}");
            let bytes = postcard::to_allocvec(&first).unwrap();
            assert_eq!(
                postcard::from_bytes::<CounterTracker>(&bytes).unwrap(),
                first
            );
            got.extend(run(&mut restored, &inputs[split..]));
            assert_eq!(got, all, "split {split}");
            assert_eq!(restored, whole, "split {split}");
        }
    }

    #[test]
    fn footfall_by_hour_takes_newest_revisions_of_the_local_day() {
        let c = clock("Asia/Shanghai");
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let intervals = [
            // 2026-11-20 23:45 local: the day before.
            rec("front", "2026-11-20T15:45:00Z", 15, 50, 0, 1),
            // 00:00–00:15 local, revised: only revision 2 counts, whatever the order.
            rec("front", "2026-11-20T16:00:00Z", 15, 9, 1, 2),
            rec("front", "2026-11-20T16:00:00Z", 15, 4, 1, 1),
            rec("back", "2026-11-20T16:00:00Z", 15, 2, 0, 1),
            // 00:55–01:10 local: counts in hour 0, where it starts.
            rec("front", "2026-11-20T16:55:00Z", 15, 3, 3, 1),
            // 10:00 local.
            rec("front", "2026-11-21T02:00:00Z", 15, 20, 11, 1),
        ];
        let got = footfall_by_hour(&intervals, &c, date);
        let want = BTreeMap::from([(0, (14, 4)), (10, (20, 11))]);
        assert_eq!(got, want);
        assert_eq!(newest_revisions(&intervals).len(), 5);
    }

    #[test]
    fn day_totals_floor_occupancy_at_zero() {
        let c = clock("UTC");
        let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        // (name, intervals, footfall, outs, peak, at close)
        let table = [
            (
                "exits before entries do not make negative people",
                vec![
                    rec("front", "2026-11-20T08:00:00Z", 15, 0, 5, 1),
                    rec("front", "2026-11-20T09:00:00Z", 15, 10, 2, 1),
                    rec("front", "2026-11-20T10:00:00Z", 15, 3, 20, 1),
                    rec("front", "2026-11-20T11:00:00Z", 15, 4, 1, 1),
                ],
                17,
                28,
                8,
                3,
            ),
            (
                "doors at the same instant are netted before the floor",
                vec![
                    rec("front", "2026-11-20T09:00:00Z", 15, 0, 5, 1),
                    rec("back", "2026-11-20T09:00:00Z", 15, 5, 0, 1),
                    rec("back", "2026-11-20T09:15:00Z", 15, 2, 0, 1),
                ],
                7,
                5,
                2,
                2,
            ),
            (
                "only the newest revision and the day count",
                vec![
                    rec("front", "2026-11-19T23:45:00Z", 15, 40, 0, 1),
                    rec("front", "2026-11-20T09:00:00Z", 15, 100, 0, 1),
                    rec("front", "2026-11-20T09:00:00Z", 15, 6, 1, 2),
                ],
                6,
                1,
                5,
                5,
            ),
            ("no intervals", vec![], 0, 0, 0, 0),
        ];
        for (name, intervals, footfall, outs, peak, close) in table.clone() {
            let d = day_totals(&intervals, &c, date);
            assert_eq!(
                (d.footfall, d.outs, d.peak_occupancy, d.occupancy_at_close),
                (footfall, outs, peak, close),
                "{name}"
            );
            let door_ins: u64 = d.by_door.values().map(|v| v.0).sum();
            assert_eq!(door_ins, footfall, "{name}");
        }
        let d = day_totals(&table[1].1, &c, date);
        assert_eq!(
            d.by_door,
            BTreeMap::from([("back".to_string(), (7, 0)), ("front".to_string(), (0, 5))])
        );
    }

    #[test]
    fn hours_on_dst_days_in_berlin() {
        let c = clock("Europe/Berlin");
        // (date, intervals, (local hour, ins))
        let table = [
            (
                // Clocks go forward at 02:00 local (01:00Z): there is no hour 2.
                "2026-03-29",
                vec![
                    rec("front", "2026-03-29T00:30:00Z", 15, 1, 0, 1),
                    rec("front", "2026-03-29T01:00:00Z", 15, 2, 0, 1),
                    rec("front", "2026-03-29T01:30:00Z", 15, 3, 0, 1),
                ],
                vec![(1, 1), (3, 5)],
            ),
            (
                // Clocks go back at 03:00 local (01:00Z): hour 2 happens twice.
                "2026-10-25",
                vec![
                    rec("front", "2026-10-24T22:30:00Z", 15, 7, 0, 1),
                    rec("front", "2026-10-25T00:30:00Z", 15, 1, 0, 1),
                    rec("front", "2026-10-25T01:30:00Z", 15, 2, 0, 1),
                    rec("front", "2026-10-25T02:30:00Z", 15, 4, 0, 1),
                ],
                vec![(0, 7), (2, 3), (3, 4)],
            ),
        ];
        for (date, intervals, want) in table {
            let date: NaiveDate = date.parse().unwrap();
            let got: Vec<(u32, u64)> = footfall_by_hour(&intervals, &c, date)
                .into_iter()
                .map(|(h, (ins, _))| (h, ins))
                .collect();
            assert_eq!(got, want, "{date}");
        }
    }

    #[test]
    fn occupancy_steps_at_interval_ends_and_is_read_at_instants() {
        let c = clock("UTC");
        let t0 = ms("2026-11-20T09:00:00Z");
        let ivs: Vec<CounterInterval> = [
            ("a", 0, 5, 0),
            ("b", 0, 2, 1),
            ("a", 15, 1, 4),
            ("a", 30, 0, 9),
        ]
        .iter()
        .map(|&(door, m, ins, outs)| CounterInterval {
            door: door.to_string(),
            line: "main".to_string(),
            start_ms: t0 + m * MIN,
            end_ms: t0 + (m + 15) * MIN,
            ins,
            outs,
            revision: 1,
        })
        .collect();
        let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let s = occupancy_series(&ivs, &c, date);
        // 5+2−1 = 6; 6+1−4 = 3; 3−9 floored at 0.
        assert_eq!(
            s,
            vec![(t0 + 15 * MIN, 6), (t0 + 30 * MIN, 3), (t0 + 45 * MIN, 0)]
        );
        let day = day_totals(&ivs, &c, date);
        assert_eq!((day.peak_occupancy, day.occupancy_at_close), (6, 0));
        let gap = 20 * MIN;
        for (at, want) in [
            (t0, None),
            (t0 + 15 * MIN - 1, None),
            (t0 + 15 * MIN, Some(6)),
            (t0 + 29 * MIN, Some(6)),
            (t0 + 40 * MIN, Some(3)),
            (t0 + 65 * MIN, Some(0)),
            (t0 + 66 * MIN, None),
        ] {
            assert_eq!(
                occupancy_at(&s, at, gap),
                want,
                "at +{} min",
                (at - t0) / MIN
            );
        }
    }
}
