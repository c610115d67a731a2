//! People-counter door feeds of the simulated store: who walks through which door when, and the
//! two replay files the door counters' HTTP pushes make — one push body per line, built by
//! edge-wire's counter emitter ([`edge_wire::counter::emit`]).
//!
//! The store has two customer doors, each with a counter:
//!
//! | door | source / profile | file | dialect | every | line |
//! |---|---|---|---|---|---|
//! | `main` | [`COUNTER_MAIN_NAME`], [`COUNTER_MAIN_PROFILE`] | [`COUNTER_MAIN_FILE`] | Xovis PC2S firmware 5 `logics_data` (`xovis-v5`) | 1 min | logic [`XOVIS_LOGIC`], counts `fw` = in, `bw` = out |
//! | `side` | [`COUNTER_SIDE_NAME`], [`COUNTER_SIDE_PROFILE`] | [`COUNTER_SIDE_FILE`] | Irisys Vector 4D `CountLogs` (`irisys`) | 5 min | [`IRISYS_LINE`]: registers `Line 1 In` (`RegisterId` 0) and `Line 1 Out` (1) |
//!
//! Staff come and go through the staff entrance at the back, which has no counter: they are
//! never counted. Passers-by stay on the street.
//!
//! [`plan`] draws everything from its own ChaCha stream, after the frames, the portal logins
//! and the receipts (door times follow the visits and the walk-in sales), so adding the
//! counters leaves every other output of a seed unchanged. [`write()`] turns the plan into the
//! two files and their truth; it draws nothing. On every day of the period, in day order:
//! - every visitor device's presence (visits and short visits; one person however often its
//!   MAC rotates) enters at the start of its first zone stay and leaves at the end of its last,
//!   both cut to the whole second;
//! - every walk-in purchase is one person: in U(2, 20) minutes before the sale (not before
//!   opening), out U(1, 5) minutes after it;
//! - `round(n × s / (1 − s))` people without a detectable phone, for `n` people above and
//!   `s` = [`SimParams::undetected_share`], arrive uniformly over the opening hours (the last
//!   20 minutes before closing excepted, as visitors) and stay U(3, 40) minutes.
//!
//! Each person uses one door both ways: the side door with probability [`SIDE_DOOR_SHARE`].
//!
//! The counters push only while the store is open, from [`WINDOW_BEFORE_OPEN_MS`] before
//! opening until [`WINDOW_AFTER_CLOSE_MS`] after closing or after the day's last exit, whichever
//! is later (days whose windows touch are one window), windows on 5-minute UTC boundaries. In a
//! window:
//! - the Xovis sensor pushes every minute the interval `[t, t + 60 s)` (zero counts included),
//!   local times in the store's offset, `package_info {agent_id: XOVIS_AGENT_ID, id}` with
//!   `id` counting up by 1 per push over the whole period from a seeded start. A crossing at
//!   `c` belongs to the interval holding `c`. [`DUPLICATES`] pushes with people in them are
//!   retransmitted: the identical body appears again 2–6 lines later;
//! - the Irisys counter logs every 5 minutes, the window's end included, its running registers:
//!   everyone who crossed before the log's `Timestamp`. The registers start from seeded
//!   totals of earlier trading; `LogEntryId` counts up by 1 per log over the period (the log
//!   store survives power loss). On the first day of the period the counter loses power for
//!   40 s, 5 s after a log: the first log from a moment drawn 40–70 % into the opening hours
//!   on after which nobody crosses the side door for those 45 s (see [`pick_reset`]). Its
//!   registers restart from 0, so the next log holds the people since the restart and the true
//!   footfall stays exactly recoverable (a decrease is a reset, the new value counts since
//!   it). Each body is the emitter's, with `LogEntryId` set (the emitter numbers entries from
//!   1 per body).
//!
//! Nights have no pushes; the Xovis sequence and the Irisys log ids simply continue the next
//! morning, and the registers still hold the evening's totals.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use edge_wire::counter::{emit, Dialect, ParseContext, Push, Reading};
use rand::seq::index;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::params::{SimParams, MAX_UNDETECTED_SHARE};
use crate::plan::{Plan, Role, SEC};
use crate::pos::Pos;
use crate::run::Seen;
use crate::truth::{
    CounterDayTruth, CounterTruth, DoorDayTruth, DoorTruth, DuplicateTruth, PeopleTruth,
    RegisterLogTruth, ResetTruth,
};

/// Replay file of the main door's Xovis pushes.
pub const COUNTER_MAIN_FILE: &str = "counter-main.jsonl";
/// Hardware profile of the main door's counter, as `config.toml` names it.
pub const COUNTER_MAIN_PROFILE: &str = "counter/xovis-pc2s-v5";
/// Source name of the main door's counter in `config.toml`.
pub const COUNTER_MAIN_NAME: &str = "door-main";
/// Replay file of the side door's Irisys pushes.
pub const COUNTER_SIDE_FILE: &str = "counter-side.jsonl";
/// Hardware profile of the side door's counter, as `config.toml` names it.
pub const COUNTER_SIDE_PROFILE: &str = "counter/irisys-vector-4d";
/// Source name of the side door's counter in `config.toml`.
pub const COUNTER_SIDE_NAME: &str = "door-side";
/// The Xovis logic (counting line) over the main door.
pub const XOVIS_LOGIC: &str = "Entrance";
/// The Xovis count name of people coming in.
pub const XOVIS_IN: &str = "fw";
/// The Xovis count name of people going out.
pub const XOVIS_OUT: &str = "bw";
/// The Xovis sensor's `serial_number`.
pub const XOVIS_DEVICE: &str = "XOVIS-PC2S-00001F3C";
/// The Xovis push agent's `agent_id`.
pub const XOVIS_AGENT_ID: u64 = 1001;
/// The Irisys line: its registers are `Line 1 In` and `Line 1 Out`.
pub const IRISYS_LINE: &str = "Line 1";
/// The Irisys counter's `FriendlyDeviceSerial`.
pub const IRISYS_DEVICE: &str = "V4D-17020025";
/// Share of people who use the side door (both ways).
pub const SIDE_DOOR_SHARE: f64 = 0.25;
/// Xovis pushes retransmitted (fewer if the feed has fewer pushes with people in them).
pub const DUPLICATES: usize = 3;

/// Xovis push interval, ms.
const XOVIS_EVERY_MS: i64 = 60_000;
/// Irisys log interval, ms; the push windows are aligned to it.
const IRISYS_EVERY_MS: i64 = 300_000;
/// The counters push from this long before opening, ms.
pub const WINDOW_BEFORE_OPEN_MS: i64 = 30 * 60_000;
/// … until at least this long after closing, ms.
pub const WINDOW_AFTER_CLOSE_MS: i64 = 30 * 60_000;
/// A walk-in buyer comes in this long before the sale, seconds.
const WALKIN_BEFORE_SALE_S: (i64, i64) = (120, 1200);
/// … and leaves this long after it, seconds.
const WALKIN_AFTER_SALE_S: (i64, i64) = (60, 300);
/// Time inside of people without a detectable phone, seconds.
const UNDETECTED_DWELL_S: (i64, i64) = (180, 2400);
/// Nobody arrives in the last 20 minutes before closing (as visitors), ms.
const LAST_ARRIVAL_BEFORE_CLOSE_MS: i64 = 20 * 60_000;
/// A retransmission comes this many pushes after its original (inclusive).
const DUPLICATE_DELAY: (usize, usize) = (2, 6);
/// The side counter loses power this long after its log, ms …
const RESET_LOST_AFTER_LOG_MS: i64 = 5_000;
/// … and counts again this long later, ms.
const RESET_OUTAGE_MS: i64 = 40_000;
/// The power loss comes after a log this far into the first day's opening hours (share).
const RESET_AT_SHARE: (f64, f64) = (0.4, 0.7);

/// A door with a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Door {
    Main,
    Side,
}

impl Door {
    /// Both doors, in truth order.
    const ALL: [Door; 2] = [Door::Main, Door::Side];

    /// The door's name in `config.toml` and the truth.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Door::Main => "main",
            Door::Side => "side",
        }
    }

    fn index(self) -> usize {
        match self {
            Door::Main => 0,
            Door::Side => 1,
        }
    }
}

/// Who a person at the door is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A visitor device's presence of truth kind visitor.
    Visitor,
    /// A short visit (truth kind passerby, with a person).
    ShortVisit,
    /// A visitor device without any clean frame (in no truth visit).
    UnseenVisitor,
    /// A walk-in buyer.
    Walkin,
    /// Nobody the Wi-Fi or the till knows.
    Undetected,
}

/// One person's visit, as the doors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entrant {
    pub kind: Kind,
    pub door: Door,
    /// Unix ms (whole seconds) of the entry.
    pub in_ms: i64,
    /// Unix ms (whole seconds) of the exit, after `in_ms`.
    pub out_ms: i64,
}

/// One crossing of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Crossing {
    pub at_ms: i64,
    pub door: Door,
    /// Coming in (else going out).
    pub inward: bool,
}

/// One minute of the main door: `[start_ms, start_ms + 60 s)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interval {
    pub start_ms: i64,
    pub ins: u32,
    pub outs: u32,
}

/// One log of the side door's registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Log {
    pub at_ms: i64,
    pub ins: u64,
    pub outs: u64,
}

/// The side counter's power loss, right after log `after_log`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reset {
    pub after_log: usize,
    pub lost_ms: i64,
    pub back_ms: i64,
}

/// Both feeds of the period, ready to be written.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    /// Everyone who came in, by business day, in draw order.
    pub entrants: Vec<Entrant>,
    /// Every crossing, sorted.
    pub crossings: Vec<Crossing>,
    /// Business days of the period, oldest first.
    pub days: Vec<NaiveDate>,
    /// The main door's pushes, in time order.
    pub intervals: Vec<Interval>,
    /// `package_info.id` of the first push.
    pub first_sequence: u64,
    /// Retransmissions: (index of the original, index of the push after which the copy is
    /// written), by original.
    pub duplicates: Vec<(usize, usize)>,
    /// The side door's logs, in time order.
    pub logs: Vec<Log>,
    /// `LogEntryId` of the first log.
    pub first_log_id: u64,
    pub reset: Option<Reset>,
}

/// `t` rounded down to a multiple of `step` (both ms).
fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// `t` rounded up to a multiple of `step` (both ms).
fn ceil_to(t: i64, step: i64) -> i64 {
    -floor_to(-t, step)
}

/// Unix ms of the whole second holding `t_us`.
fn whole_second_ms(t_us: i64) -> i64 {
    t_us.div_euclid(SEC) * 1000
}

fn draw_door(rng: &mut ChaCha8Rng) -> Door {
    if rng.gen_bool(SIDE_DOOR_SHARE) {
        Door::Side
    } else {
        Door::Main
    }
}

/// A uniform whole number of seconds in `lo..=hi`, as ms.
fn draw_secs_ms(rng: &mut ChaCha8Rng, (lo, hi): (i64, i64)) -> i64 {
    rng.gen_range(lo..=hi) * 1000
}

/// Plans both feeds (see the module doc). `params` must be clamped (as [`crate::generate`]
/// does).
pub(crate) fn plan(
    plan: &Plan,
    seen: &Seen,
    pos: &Pos,
    params: &SimParams,
    rng: &mut ChaCha8Rng,
) -> Counter {
    let share = if params.undetected_share.is_nan() {
        0.0
    } else {
        params.undetected_share.clamp(0.0, MAX_UNDETECTED_SHARE)
    };
    let mut entrants = Vec::new();
    let mut days = Vec::new();
    let mut windows: Vec<(i64, i64)> = Vec::new();
    let all = plan.days.iter().zip(&seen.days);
    for (day, day_seen) in all.filter(|(day, _)| day.period) {
        days.push(day.date);
        let first = entrants.len();
        let (open_us, close_us) = params.open_close_us(day.date);
        let (open_ms, close_ms) = (open_us / 1000, close_us / 1000);
        for (i, p) in day.presences.iter().enumerate() {
            let kind = match p.role {
                Role::Visitor => Kind::Visitor,
                Role::ShortVisit => Kind::ShortVisit,
                Role::Passerby | Role::Staff | Role::Fixed => continue,
            };
            let kind = if day_seen.first_us[i] > day_seen.last_us[i] {
                Kind::UnseenVisitor
            } else {
                kind
            };
            entrants.push(Entrant {
                kind,
                door: draw_door(rng),
                in_ms: whole_second_ms(p.start_us),
                out_ms: whole_second_ms(p.end_us),
            });
        }
        let walkins = pos.sales.iter().filter(|s| s.date == day.date);
        for sale in walkins.filter(|s| s.visit.is_none()) {
            let door = draw_door(rng);
            let sale_ms = sale.time_s * 1000;
            let before = draw_secs_ms(rng, WALKIN_BEFORE_SALE_S);
            let after = draw_secs_ms(rng, WALKIN_AFTER_SALE_S);
            entrants.push(Entrant {
                kind: Kind::Walkin,
                door,
                // Sales are within the opening hours, so the entry is never after the sale.
                in_ms: (sale_ms - before).max(open_ms).min(sale_ms),
                out_ms: sale_ms + after,
            });
        }
        let detected = (entrants.len() - first) as f64;
        let undetected = (detected * share / (1.0 - share)).round() as usize;
        let (open_s, close_s) = (open_ms / 1000, close_ms / 1000);
        let last_arrival_s = (close_s - LAST_ARRIVAL_BEFORE_CLOSE_MS / 1000).max(open_s + 60);
        for _ in 0..undetected {
            let door = draw_door(rng);
            let in_ms = rng.gen_range(open_s..last_arrival_s) * 1000;
            let dwell = draw_secs_ms(rng, UNDETECTED_DWELL_S);
            entrants.push(Entrant {
                kind: Kind::Undetected,
                door,
                in_ms,
                out_ms: in_ms + dwell,
            });
        }
        let last_out = entrants[first..].iter().map(|e| e.out_ms).max();
        // Everyone of the day enters at or after opening, so the window holds their entries;
        // it ends after the last exit.
        let end = (close_ms + WINDOW_AFTER_CLOSE_MS).max(last_out.map_or(0, |t| t + 1));
        windows.push((
            floor_to(open_ms - WINDOW_BEFORE_OPEN_MS, IRISYS_EVERY_MS),
            ceil_to(end, IRISYS_EVERY_MS),
        ));
    }
    let mut crossings: Vec<Crossing> = entrants
        .iter()
        .flat_map(|e| {
            [
                Crossing {
                    at_ms: e.in_ms,
                    door: e.door,
                    inward: true,
                },
                Crossing {
                    at_ms: e.out_ms,
                    door: e.door,
                    inward: false,
                },
            ]
        })
        .collect();
    crossings.sort();
    let windows = merge(windows);

    let first_sequence = rng.gen_range(1..=90_000u64);
    let first_log_id = rng.gen_range(100_000..=900_000u64);
    let base_ins = rng.gen_range(10_000..=80_000u64);
    let base_outs = base_ins - rng.gen_range(0..=25u64);

    let main_ins = of_door(&crossings, Door::Main, Some(true));
    let main_outs = of_door(&crossings, Door::Main, Some(false));
    let mut intervals = Vec::new();
    for &(start, end) in &windows {
        let mut t = start;
        while t < end {
            let next = t + XOVIS_EVERY_MS;
            intervals.push(Interval {
                start_ms: t,
                ins: count_in(&main_ins, t, next) as u32,
                outs: count_in(&main_outs, t, next) as u32,
            });
            t = next;
        }
    }
    let duplicates = pick_duplicates(&intervals, rng);

    let side = of_door(&crossings, Door::Side, None);
    let side_ins = of_door(&crossings, Door::Side, Some(true));
    let side_outs = of_door(&crossings, Door::Side, Some(false));
    let mut log_times = Vec::new();
    for &(start, end) in &windows {
        let mut t = start;
        while t <= end {
            log_times.push(t);
            t += IRISYS_EVERY_MS;
        }
    }
    let reset = days
        .first()
        .and_then(|&d| pick_reset(params, d, &log_times, &side, rng));
    // Running totals: everyone before `t`, from the base, or since the reset.
    let before = |list: &[i64], t: i64| list.partition_point(|&c| c < t) as u64;
    let logs = log_times
        .iter()
        .enumerate()
        .map(|(k, &t)| match reset {
            Some(r) if k > r.after_log => {
                // Nobody crossed between the last log and the restart, so counting from that
                // log is counting from the restart.
                let from = log_times[r.after_log];
                Log {
                    at_ms: t,
                    ins: before(&side_ins, t) - before(&side_ins, from),
                    outs: before(&side_outs, t) - before(&side_outs, from),
                }
            }
            _ => Log {
                at_ms: t,
                ins: base_ins + before(&side_ins, t),
                outs: base_outs + before(&side_outs, t),
            },
        })
        .collect();
    Counter {
        entrants,
        crossings,
        days,
        intervals,
        first_sequence,
        duplicates,
        logs,
        first_log_id,
        reset,
    }
}

/// Windows sorted by start, overlapping or touching ones joined.
fn merge(mut windows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    windows.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Sorted times of the crossings of `door` (only one direction if `inward` is set).
fn of_door(crossings: &[Crossing], door: Door, inward: Option<bool>) -> Vec<i64> {
    crossings
        .iter()
        .filter(|c| c.door == door && inward.is_none_or(|i| i == c.inward))
        .map(|c| c.at_ms)
        .collect()
}

/// How many of the sorted `times` lie in `[from, to)`.
fn count_in(times: &[i64], from: i64, to: i64) -> usize {
    times.partition_point(|&t| t < to) - times.partition_point(|&t| t < from)
}

/// Picks [`DUPLICATES`] pushes with people in them (any pushes if too few have) and where their
/// copies go.
fn pick_duplicates(intervals: &[Interval], rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let busy: Vec<usize> = (0..intervals.len())
        .filter(|&i| intervals[i].ins + intervals[i].outs > 0)
        .collect();
    let pool: Vec<usize> = if busy.len() >= DUPLICATES {
        busy
    } else {
        (0..intervals.len()).collect()
    };
    let mut picked: Vec<usize> = index::sample(rng, pool.len(), DUPLICATES.min(pool.len()))
        .into_iter()
        .map(|k| pool[k])
        .collect();
    picked.sort_unstable();
    picked
        .into_iter()
        .map(|i| {
            let delay = crate::draw_usize(rng, DUPLICATE_DELAY.0, DUPLICATE_DELAY.1);
            (i, (i + delay).min(intervals.len().saturating_sub(1)))
        })
        .collect()
}

/// The side counter's power loss on `day` (the period's first), after the first log from a
/// moment drawn 40–70 % into the opening hours until closing that is followed by another log
/// 5 minutes later and by [`RESET_LOST_AFTER_LOG_MS`] + [`RESET_OUTAGE_MS`] without side-door
/// crossings. If no log qualifies, the quietest of them (the longest time to the next crossing
/// or log) takes a shorter outage within its quiet time: power lost after a quarter of it, back
/// after half. `None` if every such log has a crossing at its very time.
pub(crate) fn pick_reset(
    params: &SimParams,
    day: NaiveDate,
    log_times: &[i64],
    side: &[i64],
    rng: &mut ChaCha8Rng,
) -> Option<Reset> {
    let (open_us, close_us) = params.open_close_us(day);
    let (open_ms, close_ms) = (open_us / 1000, close_us / 1000);
    let at = rng.gen_range(RESET_AT_SHARE.0..RESET_AT_SHARE.1);
    let target = open_ms + ((close_ms - open_ms) as f64 * at) as i64;
    // (log index, ms from the log to the next side crossing or the next log).
    let candidates = log_times
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] >= target && w[0] < close_ms && w[1] - w[0] == IRISYS_EVERY_MS)
        .map(|(k, w)| {
            let next = side.partition_point(|&c| c < w[0]);
            let quiet = side.get(next).map_or(w[1], |&c| c.min(w[1])) - w[0];
            (k, quiet)
        });
    let mut best: Option<(usize, i64)> = None;
    for (k, quiet) in candidates {
        if quiet >= RESET_LOST_AFTER_LOG_MS + RESET_OUTAGE_MS {
            let lost_ms = log_times[k] + RESET_LOST_AFTER_LOG_MS;
            return Some(Reset {
                after_log: k,
                lost_ms,
                back_ms: lost_ms + RESET_OUTAGE_MS,
            });
        }
        if best.is_none_or(|(_, q)| quiet > q) {
            best = Some((k, quiet));
        }
    }
    // Crossings are on whole seconds, so a quiet time is 0 or at least 1000 ms.
    let (k, quiet) = best.filter(|&(_, q)| q >= 2)?;
    Some(Reset {
        after_log: k,
        lost_ms: log_times[k] + quiet / 4,
        back_ms: log_times[k] + quiet / 2,
    })
}

/// The store's UTC offset at `ms`, seconds east.
fn offset_s(tz: Tz, ms: i64) -> i32 {
    let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    tz.offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The parse context of the simulated counters at `ms` (Xovis direction names, the store's
/// offset).
pub(crate) fn parse_context(tz: Tz, ms: i64) -> ParseContext {
    ParseContext {
        utc_offset_s: offset_s(tz, ms),
        direction_in: XOVIS_IN.to_owned(),
        direction_out: XOVIS_OUT.to_owned(),
    }
}

/// An emitter failure (a bug: every reading is one the dialect can say) as an I/O error.
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Fails unless `body` fits on one line of a replay file.
fn one_line(body: Vec<u8>) -> io::Result<Vec<u8>> {
    if body.contains(&b'\n') || body.contains(&b'\r') {
        return Err(invalid("a counter push body holds a line break"));
    }
    Ok(body)
}

/// The main door's push of interval `i`.
fn xovis_body(counter: &Counter, i: usize, tz: Tz) -> io::Result<Vec<u8>> {
    let iv = counter.intervals[i];
    let push = Push {
        device: XOVIS_DEVICE.to_owned(),
        readings: vec![Reading::Interval {
            line: XOVIS_LOGIC.to_owned(),
            start_ms: iv.start_ms,
            end_ms: iv.start_ms + XOVIS_EVERY_MS,
            ins: iv.ins,
            outs: iv.outs,
        }],
        sequence: Some((XOVIS_AGENT_ID, counter.first_sequence + i as u64)),
        ignored: vec![],
    };
    let body = emit(Dialect::XovisV5, &push, &parse_context(tz, iv.start_ms)).map_err(invalid)?;
    one_line(body)
}

/// The side door's push of log `k`.
fn irisys_body(counter: &Counter, k: usize, tz: Tz) -> io::Result<Vec<u8>> {
    let log = counter.logs[k];
    let push = Push {
        device: IRISYS_DEVICE.to_owned(),
        readings: vec![Reading::Cumulative {
            line: IRISYS_LINE.to_owned(),
            at_ms: log.at_ms,
            ins: Some(log.ins),
            outs: Some(log.outs),
        }],
        sequence: None,
        ignored: vec![],
    };
    let body = emit(Dialect::Irisys, &push, &parse_context(tz, log.at_ms)).map_err(invalid)?;
    // The emitter numbers log entries from 1 in each body; the device's ids run on.
    let mut v: serde_json::Value = serde_json::from_slice(&body).map_err(invalid)?;
    let slot = v
        .get_mut("CountLogs")
        .and_then(|logs| logs.get_mut(0))
        .and_then(|entry| entry.get_mut("LogEntryId"))
        .ok_or_else(|| invalid("an Irisys body without CountLogs[0].LogEntryId"))?;
    *slot = (counter.first_log_id + k as u64).into();
    one_line(serde_json::to_vec(&v).map_err(invalid)?)
}

/// Writes `lines` to `path`, one per line, and syncs it.
fn write_lines(path: &Path, lines: &[Vec<u8>]) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    for line in lines {
        w.write_all(line)?;
        w.write_all(b"\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Writes [`COUNTER_MAIN_FILE`] and [`COUNTER_SIDE_FILE`] into `dir`; returns their truth.
pub(crate) fn write(dir: &Path, counter: &Counter, tz: Tz) -> io::Result<CounterTruth> {
    // Main door: each push, then the copies due after it.
    let mut main_lines = Vec::with_capacity(counter.intervals.len() + counter.duplicates.len());
    let mut duplicates = Vec::with_capacity(counter.duplicates.len());
    let mut original_line = vec![0u32; counter.intervals.len()];
    for i in 0..counter.intervals.len() {
        main_lines.push(xovis_body(counter, i, tz)?);
        original_line[i] = main_lines.len() as u32;
        for &(orig, _) in counter.duplicates.iter().filter(|&&(_, after)| after == i) {
            let copy = main_lines[original_line[orig] as usize - 1].clone();
            main_lines.push(copy);
            let iv = counter.intervals[orig];
            duplicates.push(DuplicateTruth {
                door: Door::Main.name().to_string(),
                sequence_id: counter.first_sequence + orig as u64,
                line: original_line[orig],
                repeated_at_line: main_lines.len() as u32,
                start: iv.start_ms as f64 / 1000.0,
                ins: iv.ins,
                outs: iv.outs,
            });
        }
    }
    duplicates.sort_by_key(|d| d.line);
    write_lines(&dir.join(COUNTER_MAIN_FILE), &main_lines)?;

    let side_lines = (0..counter.logs.len())
        .map(|k| irisys_body(counter, k, tz))
        .collect::<io::Result<Vec<_>>>()?;
    write_lines(&dir.join(COUNTER_SIDE_FILE), &side_lines)?;

    let log_truth = |k: usize| {
        let log = counter.logs[k];
        RegisterLogTruth {
            log_entry_id: counter.first_log_id + k as u64,
            line: k as u32 + 1,
            time: (log.at_ms / 1000) as f64,
            ins: log.ins,
            outs: log.outs,
        }
    };
    let day_name = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let reset = counter.reset.map(|r| ResetTruth {
        door: Door::Side.name().to_string(),
        day: counter
            .days
            .first()
            .map(|&d| day_name(d))
            .unwrap_or_default(),
        last_log: log_truth(r.after_log),
        power_lost: r.lost_ms as f64 / 1000.0,
        power_back: r.back_ms as f64 / 1000.0,
        first_log: log_truth(r.after_log + 1),
    });

    let local = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
    };
    // Every day of the period, and any later day with crossings.
    let mut by_day: BTreeMap<NaiveDate, CounterDayTruth> = BTreeMap::new();
    let empty_day = |date: NaiveDate| CounterDayTruth {
        day: day_name(date),
        footfall: 0,
        outs: 0,
        doors: Door::ALL
            .iter()
            .map(|d| DoorDayTruth {
                door: d.name().to_string(),
                ins: 0,
                outs: 0,
            })
            .collect(),
        hours: vec![0; 24],
    };
    for &date in &counter.days {
        by_day.insert(date, empty_day(date));
    }
    for c in &counter.crossings {
        let t = local(c.at_ms);
        let date = t.date_naive();
        let day = by_day.entry(date).or_insert_with(|| empty_day(date));
        // `doors` has one entry per door, in `Door::ALL` order, and `hours` 24.
        if let Some(door) = day.doors.get_mut(c.door.index()) {
            if c.inward {
                door.ins += 1;
            } else {
                door.outs += 1;
            }
        }
        if c.inward {
            day.footfall += 1;
            if let Some(h) = day.hours.get_mut(t.hour() as usize) {
                *h += 1;
            }
        } else {
            day.outs += 1;
        }
    }
    let days: Vec<CounterDayTruth> = by_day.into_values().collect();

    let mut people = PeopleTruth::default();
    for e in &counter.entrants {
        let n = match e.kind {
            Kind::Visitor => &mut people.visitors,
            Kind::ShortVisit => &mut people.short_visits,
            Kind::UnseenVisitor => &mut people.unseen_visitors,
            Kind::Walkin => &mut people.walkins,
            Kind::Undetected => &mut people.undetected,
        };
        *n += 1;
    }
    let door_count = |door: Door, inward: bool| {
        counter
            .crossings
            .iter()
            .filter(|c| c.door == door && c.inward == inward)
            .count() as u32
    };
    let doors = vec![
        DoorTruth {
            door: Door::Main.name().to_string(),
            name: COUNTER_MAIN_NAME.to_string(),
            profile: COUNTER_MAIN_PROFILE.to_string(),
            dialect: Dialect::XovisV5.name().to_string(),
            path: COUNTER_MAIN_FILE.to_string(),
            device: XOVIS_DEVICE.to_string(),
            line: XOVIS_LOGIC.to_string(),
            pushes: main_lines.len() as u32,
            ins: door_count(Door::Main, true),
            outs: door_count(Door::Main, false),
        },
        DoorTruth {
            door: Door::Side.name().to_string(),
            name: COUNTER_SIDE_NAME.to_string(),
            profile: COUNTER_SIDE_PROFILE.to_string(),
            dialect: Dialect::Irisys.name().to_string(),
            path: COUNTER_SIDE_FILE.to_string(),
            device: IRISYS_DEVICE.to_string(),
            line: IRISYS_LINE.to_string(),
            pushes: side_lines.len() as u32,
            ins: door_count(Door::Side, true),
            outs: door_count(Door::Side, false),
        },
    ];
    Ok(CounterTruth {
        footfall: doors.iter().map(|d| d.ins).sum(),
        outs: doors.iter().map(|d| d.outs).sum(),
        doors,
        people,
        days,
        duplicated_pushes: duplicates.len() as u32,
        duplicates,
        reset,
    })
}
