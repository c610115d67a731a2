//! The staff rule: a device present at least `staff_min_hours` on at least `staff_min_days` of
//! the last `staff_window_days` local days is staff, and is kept out of visitor metrics.
//!
//! Only long visits can make a staff day, so only they are remembered: the tracker stays small
//! even with a hundred thousand passers-by.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::key::DeviceKey;
use crate::key::KeyHasher;
use crate::params::MetricParams;

/// Visits shorter than this (or than a whole staff day, if that is shorter) are not recorded: a
/// staff day is made of a few long stays (a shift, split by breaks), and forgetting shoppers'
/// visits keeps the tracker small with a hundred thousand devices in a day.
const MIN_RECORDED_MS: i64 = 60 * 60_000;

/// Per-device presence per local day, for long visits only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StaffTracker {
    presence: HashMap<DeviceKey, Vec<(i32, i64)>, KeyHasher>,
}

impl StaffTracker {
    /// Records a closed visit's presence per day (`parts` = (day index, ms)) and tells whether
    /// the device now qualifies as staff as of the visit's last day.
    pub fn record(&mut self, device: DeviceKey, parts: &[(i32, i64)], p: &MetricParams) -> bool {
        let Some(&(last_day, _)) = parts.last() else {
            return false;
        };
        let total: i64 = parts.iter().map(|x| x.1).sum();
        let need_ms = (p.staff_min_hours * 3_600_000.0) as i64;
        if total >= MIN_RECORDED_MS.min(need_ms) {
            let days = self.presence.entry(device).or_default();
            for &(day, ms) in parts {
                match days.iter_mut().find(|d| d.0 == day) {
                    Some(d) => d.1 += ms,
                    None => days.push((day, ms)),
                }
            }
            let oldest = last_day - p.staff_window_days as i32;
            days.retain(|d| d.0 > oldest);
        }
        self.is_staff(device, last_day, p)
    }

    /// Whether `device` meets the rule in the window ending on `day`.
    pub fn is_staff(&self, device: DeviceKey, day: i32, p: &MetricParams) -> bool {
        let need_ms = (p.staff_min_hours * 3_600_000.0) as i64;
        let window_start = day - p.staff_window_days as i32;
        self.presence.get(&device).is_some_and(|days| {
            days.iter()
                .filter(|d| d.0 > window_start && d.0 <= day && d.1 >= need_ms)
                .count()
                >= p.staff_min_days as usize
        })
    }

    /// Forgets devices with no day inside the window ending on `day`.
    pub fn prune(&mut self, day: i32, p: &MetricParams) {
        let oldest = day - p.staff_window_days as i32;
        self.presence
            .retain(|_, days| days.iter().any(|d| d.0 > oldest));
    }

    /// Devices remembered.
    pub fn len(&self) -> usize {
        self.presence.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.presence.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn staff_rule_table() {
        let p = MetricParams::default();
        let dev = DeviceKey([1; 16]);
        // (days with hours present, day of the check, staff?)
        let table: Vec<(&str, Vec<(i32, i64)>, bool)> = vec![
            ("one long day", vec![(10, 9 * H)], false),
            ("two long days", vec![(9, 9 * H), (10, 9 * H)], false),
            (
                "three long days",
                vec![(8, 7 * H), (9, 9 * H), (10, 6 * H)],
                true,
            ),
            (
                "three days, one short",
                vec![(8, 7 * H), (9, 5 * H), (10, 6 * H)],
                false,
            ),
            (
                "outside the window",
                vec![(1, 9 * H), (2, 9 * H), (10, 9 * H)],
                false,
            ),
            (
                "edge of the window",
                vec![(4, 9 * H), (5, 9 * H), (10, 9 * H)],
                true,
            ),
        ];
        for (name, days, want) in table {
            let mut t = StaffTracker::default();
            let mut got = false;
            for (day, ms) in days {
                got = t.record(dev, &[(day, ms)], &p);
            }
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn split_visits_on_one_day_add_up_and_short_visits_are_not_kept() {
        let p = MetricParams::default();
        let dev = DeviceKey([2; 16]);
        let mut t = StaffTracker::default();
        for day in 1..=3 {
            t.record(dev, &[(day, 3 * H)], &p);
            t.record(dev, &[(day, 3 * H + 1)], &p);
        }
        assert!(t.is_staff(dev, 3, &p));
        t.record(DeviceKey([3; 16]), &[(3, 60_000)], &p);
        assert_eq!(t.len(), 1);
        t.prune(20, &p);
        assert!(t.is_empty());
    }
}
