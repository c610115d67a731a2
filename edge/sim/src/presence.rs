//! Presence truth: who was inside the store, and in which zone, during each minute of the main
//! day ([`PresenceMinute`] documents the fields).
//!
//! Counted from the plan (planned entry, zone stays and exit), not from frames: a phone is
//! present while its shopper is inside, whether or not it transmitted in that minute. Nothing
//! here draws randomness, and it reads only the plan and what was written of it (not the
//! receipts or the door feeds), so adding it changed no other output and the POS and counter
//! parameters leave it alone.

use crate::params::SimParams;
use crate::plan::{Plan, Role, MIN};
use crate::run::Seen;
use crate::truth::PresenceMinute;

/// Index of each count in a cell.
const PEOPLE: usize = 0;
const DEVICES: usize = 1;
const STAFF: usize = 2;
const FIXED: usize = 3;

/// Per-minute counts: `cells[minute index × (1 + zones) + 0]` is the store, `+ 1 + z` zone `z`.
struct Grid {
    first_minute: i64,
    minutes: usize,
    width: usize,
    cells: Vec<[u32; 4]>,
}

impl Grid {
    /// Minute indices (from `first_minute`) overlapped by `[start_us, end_us)`.
    fn span(&self, start_us: i64, end_us: i64) -> std::ops::Range<usize> {
        if end_us <= start_us {
            return 0..0;
        }
        let clamp = |m: i64| usize::try_from(m - self.first_minute).unwrap_or(0);
        let lo = clamp(start_us.div_euclid(MIN));
        let hi = clamp((end_us - 1).div_euclid(MIN) + 1).min(self.minutes);
        lo.min(hi)..hi
    }

    fn add(&mut self, minute: usize, column: usize, field: usize) {
        self.cells[minute * self.width + column][field] += 1;
    }
}

/// The main day's presence per minute, store first then every zone, for every minute from the
/// earlier of opening and the first arrival inside to the later of closing and the last
/// departure. Empty if the plan has no main day.
pub(crate) fn minutes(plan: &Plan, seen: &Seen, params: &SimParams) -> Vec<PresenceMinute> {
    let Some((d, day)) = plan.days.iter().enumerate().find(|(_, d)| d.main) else {
        return Vec::new();
    };
    let Some(day_seen) = seen.days.get(d) else {
        return Vec::new();
    };
    let zones = params.zone_names();
    let (open, close) = params.open_close_us(day.date);

    // Who is inside when: (start, end, field, presence index).
    let mut spans: Vec<(i64, i64, usize, usize)> = Vec::new();
    for (i, p) in day.presences.iter().enumerate() {
        let field = match p.role {
            Role::Visitor | Role::ShortVisit => PEOPLE,
            Role::Staff => STAFF,
            Role::Fixed => FIXED,
            Role::Passerby => continue,
        };
        let stays = p.stays(&day.stays);
        if let (Some(first), Some(last)) = (stays.first(), stays.last()) {
            spans.push((first.start_us, last.end_us, field, i));
        }
    }
    let lo = spans
        .iter()
        .map(|s| s.0)
        .min()
        .map_or(open, |t| t.min(open));
    let hi = spans
        .iter()
        .map(|s| s.1)
        .max()
        .map_or(close, |t| t.max(close));
    let first_minute = lo.div_euclid(MIN);
    let minutes = usize::try_from((hi - 1).div_euclid(MIN) - first_minute + 1).unwrap_or(0);
    let width = 1 + zones.len();
    let mut grid = Grid {
        first_minute,
        minutes,
        width,
        cells: vec![[0; 4]; minutes * width],
    };

    for &(start, end, field, i) in &spans {
        let captured = day_seen.first_us[i] <= day_seen.last_us[i];
        for m in grid.span(start, end) {
            grid.add(m, 0, field);
            if field == PEOPLE && captured {
                grid.add(m, 0, DEVICES);
            }
        }
        // Per zone: each minute once per presence, even if it comes back to a zone.
        let mut last_counted: Vec<Option<usize>> = vec![None; zones.len()];
        for s in day.presences[i].stays(&day.stays) {
            let z = usize::from(s.zone);
            if z >= zones.len() {
                continue;
            }
            for m in grid.span(s.start_us, s.end_us) {
                if last_counted[z].is_some_and(|l| l >= m) {
                    continue;
                }
                last_counted[z] = Some(m);
                grid.add(m, 1 + z, field);
                if field == PEOPLE && captured {
                    grid.add(m, 1 + z, DEVICES);
                }
            }
        }
    }

    let mut out = Vec::with_capacity(grid.cells.len());
    for m in 0..minutes {
        let minute = (first_minute + m as i64) * (MIN / crate::plan::SEC);
        for column in 0..width {
            let c = grid.cells[m * width + column];
            out.push(PresenceMinute {
                minute,
                zone: column.checked_sub(1).map(|z| zones[z].to_string()),
                people: c[PEOPLE],
                devices: c[DEVICES],
                staff: c[STAFF],
                fixed: c[FIXED],
            });
        }
    }
    out
}
