//! Clock faults of a live capture: telling a frame time that can be trusted from one stamped by
//! a clock that was never set, or that was just stepped.
//!
//! A store gateway has no real-time clock: it boots at 1970 until NTP sets the time, and NTP
//! may later step the clock (by an hour, after a wrong time zone or a stale fake-hwclock). A
//! live capture stamps frames with that clock, so the faults arrive as frame times. The
//! [`ClockGuard`] of one capture host's clock is fed pairs of (frame time, monotonic receive
//! time): the monotonic clock never jumps, so a change of `frame time − receive time` larger
//! than [`STEP_TOLERANCE_MS`] between two frames is a step of the wall clock, not time passing.
//!
//! Several captures may share one clock (a gateway's own interfaces) and so one guard; their
//! frames reach it interleaved, so a frame stamped just before a step may arrive after another
//! capture's first frame stamped after it. For [`STEP_GRACE_MS`] after a step, a frame on the
//! replaced clock is [`ClockVerdict::Lagging`] (to be moved to the new clock), not a step back.
//!
//! Nothing here reads a clock: the monotonic times come in with the frames (the agent measures
//! them when it receives a frame), so the classification is a pure function of its inputs.
//! Replayed files have no receive times and are never judged: their timestamps are what
//! they are.

use serde::{Deserialize, Serialize};

/// 2024-01-01T00:00:00Z. A frame stamped earlier was stamped by a clock that has not been set
/// since boot (it counts from 1970); no capture this software reads can be that old.
pub const MIN_SANE_MS: i64 = 1_704_067_200_000;

/// How far the wall clock may drift from the monotonic clock between two frames before the
/// difference is a step. NTP slews small errors at most 0.5 ms/s, and a frame waits in capture
/// buffers for well under a second; a minute is far above both and far below the steps that
/// misfile data (a time zone hour, a stale boot time).
pub const STEP_TOLERANCE_MS: i64 = 60_000;

/// How long (monotonic time) after a step a frame still stamped by the replaced clock is taken
/// for one that was captured before the step and received late, rather than for a step back.
/// Captures deliver what they read within a second.
pub const STEP_GRACE_MS: i64 = 10_000;

/// The farthest back a step is taken as a correction. NTP corrects a wrong time zone or a stale
/// boot time by hours; a clock that jumps back further than a day is broken (a dead RTC battery,
/// a mistyped `date`), and what it stamps cannot be filed: the hours it names were sealed and
/// pruned long ago. The core rewinds no further ([`crate::session::MAX_REWIND_MS`]).
pub const MAX_STEP_BACK_MS: i64 = 24 * 3_600_000;

/// What one frame time says about the clock that stamped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    /// Before [`MIN_SANE_MS`]: the clock has not been set since boot.
    Unset,
    /// The first sane time the guard sees: from now on the clock's relation to monotonic time
    /// is known, so frames held while it was unset can be given real times
    /// ([`ClockGuard::wall_at`]).
    Set,
    /// Consistent with the frames before it.
    Ok,
    /// The clock jumped by `by_ms` (positive: forward) since the previous frame, beyond what
    /// the monotonic time between them explains.
    Step {
        /// Size of the jump, ms.
        by_ms: i64,
    },
    /// Stamped by the clock a step just replaced (received within [`STEP_GRACE_MS`] of the
    /// step, consistent with the old clock): captured before the step, received after it.
    /// Adding `by_ms` puts it on the new clock.
    Lagging {
        /// What to add to the frame time, ms (the step's size).
        by_ms: i64,
    },
    /// The clock reads more than [`MAX_STEP_BACK_MS`] behind the time the guard keeps: it
    /// broke. The guard keeps the time it had (advanced by monotonic time) until the clock
    /// comes back to it; adding `by_ms` puts the frame there. `first`: the frame that showed
    /// the break (the step to count and log).
    Distrusted {
        /// What to add to the frame time, ms (how far the clock is behind).
        by_ms: i64,
        /// Whether this frame is the first one stamped by the broken clock.
        first: bool,
    },
    /// The first frame after a break whose time agrees with the time the guard kept again.
    Recovered,
}

/// A step of the clock that stamps the input, as the core needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStep {
    /// What the old clock read at the moment of the step, UTC ms.
    pub from_ms: i64,
    /// What the new clock read at that moment, UTC ms.
    pub to_ms: i64,
}

impl ClockStep {
    /// Size of the step (positive: forward), ms.
    pub fn by_ms(&self) -> i64 {
        self.to_ms.saturating_sub(self.from_ms)
    }
}

/// Follows one capture host's wall clock against the monotonic clock of the receiving process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockGuard {
    /// `frame time − monotonic receive time` of the newest sane frame: the wall clock's reading
    /// at monotonic time 0. `None` until the first sane frame.
    offset_ms: Option<i64>,
    /// The last step: (offset of the replaced clock, monotonic time of the step).
    replaced: Option<(i64, i64)>,
    /// The clock broke ([`ClockVerdict::Distrusted`]): `offset_ms` is the kept time, not the
    /// clock's.
    broken: bool,
}

impl ClockGuard {
    /// A guard that has seen nothing yet.
    pub fn new() -> Self {
        ClockGuard::default()
    }

    /// Judges a frame stamped `ts_ms` and received at monotonic `mono_ms`. Frames must come in
    /// the order they were received. A step moves the guard to the new clock (NTP's step is a
    /// correction: the new time is the one to trust), except a step back further than
    /// [`MAX_STEP_BACK_MS`]: that clock is broken and its frames are moved to the time the
    /// guard kept ([`ClockVerdict::Distrusted`]) until it agrees with that time again.
    pub fn classify(&mut self, ts_ms: i64, mono_ms: i64) -> ClockVerdict {
        if ts_ms < MIN_SANE_MS {
            return ClockVerdict::Unset;
        }
        let offset = ts_ms.saturating_sub(mono_ms);
        let Some(current) = self.offset_ms else {
            self.offset_ms = Some(offset);
            return ClockVerdict::Set;
        };
        let by_ms = offset.saturating_sub(current);
        if by_ms.abs() <= STEP_TOLERANCE_MS {
            // The newest offset is kept, so the slow drift NTP slews away never adds up to a
            // false step.
            self.offset_ms = Some(offset);
            if self.broken {
                self.broken = false;
                return ClockVerdict::Recovered;
            }
            return ClockVerdict::Ok;
        }
        if by_ms < -MAX_STEP_BACK_MS {
            let first = !self.broken;
            self.broken = true;
            return ClockVerdict::Distrusted {
                by_ms: by_ms.saturating_neg(),
                first,
            };
        }
        // A step from the kept time (the broken clock stepped again, near it): the clock is
        // trusted again from here.
        self.broken = false;
        if let Some((old, at)) = self.replaced {
            let recent = mono_ms.saturating_sub(at) <= STEP_GRACE_MS;
            if recent && offset.saturating_sub(old).abs() <= STEP_TOLERANCE_MS {
                return ClockVerdict::Lagging {
                    by_ms: current.saturating_sub(offset),
                };
            }
        }
        self.replaced = Some((current, mono_ms));
        self.offset_ms = Some(offset);
        ClockVerdict::Step { by_ms }
    }

    /// Takes the clock for broken from now on, `by_ms` behind the time to keep: for a first
    /// frame after a restart that reads further back than [`MAX_STEP_BACK_MS`] before what was
    /// already processed (the relation to monotonic time is lost with the process, so the kept
    /// time resumes where processing stopped). No-op before the clock is set.
    pub fn distrust(&mut self, by_ms: i64) {
        if let Some(o) = self.offset_ms {
            self.offset_ms = Some(o.saturating_add(by_ms));
            self.broken = true;
        }
    }

    /// Whether the clock is taken for broken ([`ClockVerdict::Distrusted`]).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether a sane time has been seen.
    pub fn is_set(&self) -> bool {
        self.offset_ms.is_some()
    }

    /// What the (current) wall clock read, or will read, at monotonic time `mono_ms` (while it
    /// is broken, the time the guard keeps); `None` until the clock has been set.
    pub fn wall_at(&self, mono_ms: i64) -> Option<i64> {
        self.offset_ms.map(|o| o.saturating_add(mono_ms))
    }
}

/// How far after the gateway's clock an input (a portal login, a receipt, a count) may be
/// stamped. A device's clock drifts or is set by hand, so a few minutes ahead is normal; an
/// hour ahead is a wrong time zone or a forged time, and such a time, taken as a watermark,
/// would hold every later input back until it came true.
pub const MAX_AHEAD_MS: i64 = 60 * 60_000;

/// How far before the gateway's clock a live input may be stamped: a portal or a device that
/// was cut off delivers what it queued when it is back, for a few days at most. Replayed files
/// are not judged on this (their age is what it is).
pub const MAX_BEHIND_LIVE_MS: i64 = 7 * 24 * 60 * 60_000;

/// Why an input's time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputTimeError {
    /// Before [`MIN_SANE_MS`]: stamped by a clock that was never set (or a forged time).
    Unset,
    /// More than [`MAX_AHEAD_MS`] after the gateway's clock.
    Ahead,
    /// A live input more than [`MAX_BEHIND_LIVE_MS`] before the gateway's clock.
    Behind,
}

impl InputTimeError {
    /// The reason, as counters and error replies name it.
    pub fn reason(self) -> &'static str {
        match self {
            InputTimeError::Unset => "time_unset",
            InputTimeError::Ahead => "time_ahead",
            InputTimeError::Behind => "time_behind",
        }
    }

    /// What a sender is told (names the bound, never the time it sent).
    pub fn detail(self) -> &'static str {
        match self {
            InputTimeError::Unset => "`time` is before 2024: the sender's clock is not set",
            InputTimeError::Ahead => "`time` is more than an hour after the gateway's clock",
            InputTimeError::Behind => "`time` is more than 7 days before the gateway's clock",
        }
    }
}

/// Judges an input's time `at_ms` against the gateway's clock `received_ms` (both UTC ms), the
/// one rule for every source: never before 2024, never more than [`MAX_AHEAD_MS`] ahead, and
/// for `live` inputs (received as they happen: a webhook, a push) never more than
/// [`MAX_BEHIND_LIVE_MS`] behind. A refused input must not be stored, nor move a cursor or a
/// watermark.
pub fn judge_input_time(at_ms: i64, received_ms: i64, live: bool) -> Result<(), InputTimeError> {
    if at_ms < MIN_SANE_MS {
        return Err(InputTimeError::Unset);
    }
    if at_ms > received_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(InputTimeError::Ahead);
    }
    if live && at_ms < received_ms.saturating_sub(MAX_BEHIND_LIVE_MS) {
        return Err(InputTimeError::Behind);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_times_are_judged_against_the_gateway_clock() {
        let now = 1_795_000_000_000; // 2026-11-19
        let min = 60_000;
        let table: &[(i64, bool, Result<(), InputTimeError>)] = &[
            (now, true, Ok(())),
            (now + 59 * min, true, Ok(())),
            (now + 61 * min, true, Err(InputTimeError::Ahead)),
            (now + 61 * min, false, Err(InputTimeError::Ahead)),
            // 9999-12-31T23:59:59Z, and the extremes: never wrapped, never taken.
            (253_402_300_799_000, true, Err(InputTimeError::Ahead)),
            (i64::MAX, false, Err(InputTimeError::Ahead)),
            (i64::MIN, true, Err(InputTimeError::Unset)),
            (0, false, Err(InputTimeError::Unset)),
            (MIN_SANE_MS - 1, false, Err(InputTimeError::Unset)),
            (now - 6 * 24 * 60 * min, true, Ok(())),
            (now - 8 * 24 * 60 * min, true, Err(InputTimeError::Behind)),
            // A replayed file is as old as it is.
            (now - 300 * 24 * 60 * min, false, Ok(())),
        ];
        for &(at, live, want) in table {
            assert_eq!(judge_input_time(at, now, live), want, "{at} live={live}");
        }
        // The gateway's own clock at an extreme does not overflow either.
        assert_eq!(
            judge_input_time(now, i64::MAX, true),
            Err(InputTimeError::Behind)
        );
        assert_eq!(
            judge_input_time(now, i64::MIN, true),
            Err(InputTimeError::Ahead)
        );
    }

    const T: i64 = 1_795_000_000_000; // 2026-11-18
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// (frame time, receive time) sequences and the verdict of each frame.
    #[test]
    fn classifies_unset_set_ok_and_steps() {
        use ClockVerdict::*;
        let table: &[(&str, &[(i64, i64)], &[ClockVerdict])] = &[
            (
                "a sane clock throughout",
                &[(T, 1_000), (T + 500, 1_500), (T + 10_000, 11_000)],
                &[Set, Ok, Ok],
            ),
            (
                "boot at 1970, then NTP sets the clock",
                &[
                    (10_000, 10_000),
                    (10_500, 10_500),
                    (T, 11_000),
                    (T + 500, 11_500),
                ],
                &[Unset, Unset, Set, Ok],
            ),
            (
                "negative times are unset too",
                &[(-5, 1), (MIN_SANE_MS - 1, 2), (MIN_SANE_MS, 3)],
                &[Unset, Unset, Set],
            ),
            (
                "+1 h step",
                &[
                    (T, 1_000),
                    (T + 500, 1_500),
                    (T + HOUR + 1_000, 2_000),
                    (T + HOUR + 1_500, 2_500),
                ],
                &[Set, Ok, Step { by_ms: HOUR }, Ok],
            ),
            (
                "-1 h step",
                &[
                    (T, 1_000),
                    (T + 500, 1_500),
                    (T - HOUR + 1_000, 2_000),
                    (T - HOUR + 1_500, 2_500),
                ],
                &[Set, Ok, Step { by_ms: -HOUR }, Ok],
            ),
            (
                "a step during a quiet hour is still seen: the monotonic gap is two hours",
                &[(T, 1_000), (T + HOUR, 2 * HOUR + 1_000)],
                &[Set, Step { by_ms: -HOUR }],
            ),
            (
                "a long quiet gap is time passing, not a step",
                &[(T, 1_000), (T + 5 * HOUR, 5 * HOUR + 1_000)],
                &[Set, Ok],
            ),
            (
                "drift and delays within the tolerance",
                // The second frame waited 30 s in a buffer, the third none.
                &[(T, 1_000), (T + 1_000, 32_000), (T + 3_000, 4_000)],
                &[Set, Ok, Ok],
            ),
            (
                "just beyond the tolerance",
                &[(T, 1_000), (T + 1_000 + STEP_TOLERANCE_MS + 1, 2_000)],
                &[
                    Set,
                    Step {
                        by_ms: STEP_TOLERANCE_MS + 1,
                    },
                ],
            ),
            (
                "a frame of another capture of the same clock, stamped before the step",
                &[
                    (T, 1_000),
                    (T - HOUR + 1_000, 2_000),
                    (T + 1_100, 2_100),
                    (T - HOUR + 1_200, 2_200),
                ],
                &[Set, Step { by_ms: -HOUR }, Lagging { by_ms: -HOUR }, Ok],
            ),
            (
                "the old clock again after the grace: a step back to it",
                &[
                    (T, 1_000),
                    (T - HOUR + 1_000, 2_000),
                    (T + 2_000 + STEP_GRACE_MS, 3_000 + STEP_GRACE_MS),
                ],
                &[Set, Step { by_ms: -HOUR }, Step { by_ms: HOUR }],
            ),
            (
                "a step back of 400 days is a broken clock: its frames keep the time, until it is back",
                &[
                    (T, 1_000),
                    (T - 400 * DAY + 1_000, 2_000),
                    (T - 400 * DAY + 2_000, 3_000),
                    (T + 3_000, 4_000),
                    (T + 4_000, 5_000),
                ],
                &[
                    Set,
                    Distrusted {
                        by_ms: 400 * DAY,
                        first: true,
                    },
                    Distrusted {
                        by_ms: 400 * DAY,
                        first: false,
                    },
                    Recovered,
                    Ok,
                ],
            ),
            (
                "a day back is still a correction; just beyond it is not",
                &[
                    (T, 1_000),
                    (T - MAX_STEP_BACK_MS + 1_000, 2_000),
                    (T - 2 * MAX_STEP_BACK_MS + 1_000, 3_000),
                ],
                &[
                    Set,
                    Step {
                        by_ms: -MAX_STEP_BACK_MS,
                    },
                    Distrusted {
                        by_ms: MAX_STEP_BACK_MS + 1_000,
                        first: true,
                    },
                ],
            ),
            (
                "a broken clock stepped to an hour before the kept time: a step from the kept time",
                &[
                    (T, 1_000),
                    (T - 400 * DAY + 1_000, 2_000),
                    (T - HOUR + 2_000, 3_000),
                    (T - HOUR + 3_000, 4_000),
                ],
                &[
                    Set,
                    Distrusted {
                        by_ms: 400 * DAY,
                        first: true,
                    },
                    Step { by_ms: -HOUR },
                    Ok,
                ],
            ),
            (
                "forward by 400 days is a correction (a Pi's fake-hwclock after months off)",
                &[(T - 400 * DAY, 1_000), (T + 1_000, 2_000)],
                &[Set, Step { by_ms: 400 * DAY }],
            ),
            (
                "the clock falls back to 1970 after being set: unset again, the relation is kept",
                &[(T, 1_000), (3_000, 3_000), (T + 3_000, 4_000)],
                &[Set, Unset, Ok],
            ),
        ];
        for (name, frames, want) in table {
            let mut g = ClockGuard::new();
            let got: Vec<ClockVerdict> = frames.iter().map(|&(ts, m)| g.classify(ts, m)).collect();
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn wall_at_follows_the_newest_clock() {
        let mut g = ClockGuard::new();
        assert_eq!(g.wall_at(5_000), None);
        assert!(!g.is_set());
        g.classify(20_000, 20_000);
        assert_eq!(g.wall_at(5_000), None, "an unset time says nothing");
        g.classify(T, 30_000);
        assert!(g.is_set());
        // Frames held while unset, received 10 s and 2 s before the first sane one.
        assert_eq!(g.wall_at(20_000), Some(T - 10_000));
        assert_eq!(g.wall_at(28_000), Some(T - 2_000));
        g.classify(T - HOUR + 1_000, 31_000);
        assert_eq!(
            g.wall_at(32_000),
            Some(T - HOUR + 2_000),
            "after a step: the new clock"
        );
    }

    #[test]
    fn a_broken_clock_keeps_the_time_it_had() {
        let mut g = ClockGuard::new();
        g.classify(T, 1_000);
        g.classify(T - 400 * DAY + 1_000, 2_000);
        assert!(g.is_broken());
        assert_eq!(g.wall_at(10_000), Some(T + 9_000), "the kept time runs on");
        g.classify(T + 11_000, 12_000);
        assert!(!g.is_broken());
        // After a restart: the first frame reads 400 days before what was processed.
        let mut g = ClockGuard::new();
        g.distrust(HOUR);
        assert!(!g.is_broken(), "nothing to keep before the clock is set");
        g.classify(T - 400 * DAY, 1_000);
        g.distrust(400 * DAY);
        assert!(g.is_broken());
        assert_eq!(g.wall_at(2_000), Some(T + 1_000));
        assert_eq!(
            g.classify(T - 400 * DAY + 2_000, 3_000),
            ClockVerdict::Distrusted {
                by_ms: 400 * DAY,
                first: false
            }
        );
    }

    #[test]
    fn step_size() {
        let s = ClockStep {
            from_ms: T,
            to_ms: T - HOUR,
        };
        assert_eq!(s.by_ms(), -HOUR);
    }
}
