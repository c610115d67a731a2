//! Zone assignment for one device across several sniffers.
//!
//! Each sniffer covers one zone. A device is in the zone whose sniffer hears it strongest after
//! exponential smoothing, and it only moves to another zone when that zone is stronger by the
//! hysteresis margin (or the current zone stopped hearing it), so RSSI noise does not make paths
//! flicker between neighbours. Consecutive stays in one zone collapse; stays shorter than the
//! minimum zone dwell fold into their neighbours.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::params::MetricParams;
use crate::ZoneId;

/// Longest raw zone-change list kept per visit before the oldest changes are folded together;
/// bounds memory for a device that sits on a zone border all day.
const MAX_SEGMENTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Reading {
    smoothed: f32,
    last_ms: i64,
}

const NEVER: i64 = i64::MIN;

/// One stay in a zone: where, and for how long (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneDwell {
    /// The zone.
    pub zone: ZoneId,
    /// Time spent there, in milliseconds.
    pub ms: i64,
}

/// The zone state of one device during one visit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ZoneTracker {
    /// Per-zone smoothed signal, by zone id. Inline for zones 0 and 1: one tracker lives in
    /// every open visit, and a heap allocation per device costs a cache miss per frame; with
    /// a hundred thousand devices open (a mall's one or two sniffers) each inline reading is
    /// 1.6 MB, while a store with more zones has far fewer devices.
    readings: SmallVec<[Reading; 2]>,
    current: Option<ZoneId>,
    /// Zone changes: (zone, time the device entered it). Inline for the common short paths.
    segments: SmallVec<[(ZoneId, i64); 2]>,
}

impl ZoneTracker {
    /// Feeds one sighting heard by the sniffer of `zone`.
    pub fn observe(&mut self, zone: ZoneId, rssi_dbm: i8, ts_ms: i64, p: &MetricParams) {
        let idx = usize::from(zone);
        if self.readings.len() <= idx {
            self.readings.resize(
                idx + 1,
                Reading {
                    smoothed: 0.0,
                    last_ms: NEVER,
                },
            );
        }
        let rssi = f32::from(rssi_dbm);
        if let Some(r) = self.readings.get_mut(idx) {
            if r.last_ms == NEVER || ts_ms.saturating_sub(r.last_ms) > p.zone_stale_ms {
                r.smoothed = rssi;
            } else {
                r.smoothed += p.zone_smoothing * (rssi - r.smoothed);
            }
            r.last_ms = r.last_ms.max(ts_ms);
        }
        let Some(best) = self.best(ts_ms, p) else {
            return;
        };
        match self.current {
            None => self.enter(best, ts_ms),
            Some(cur) if cur != best => {
                let cur_reading = self.readings.get(usize::from(cur)).copied();
                let best_reading = self.readings.get(usize::from(best)).copied();
                match (cur_reading, best_reading) {
                    // The current zone stopped hearing the device: it left when last heard there.
                    (Some(c), _) if !fresh(&c, ts_ms, p) => self.enter(best, c.last_ms),
                    (Some(c), Some(b)) if b.smoothed >= c.smoothed + p.zone_hysteresis_db => {
                        self.enter(best, ts_ms)
                    }
                    (None, _) => self.enter(best, ts_ms),
                    _ => {}
                }
            }
            Some(_) => {}
        }
    }

    fn enter(&mut self, zone: ZoneId, ts_ms: i64) {
        // Keep changes in time order even when a handover is back-dated.
        let ts_ms = self.segments.last().map_or(ts_ms, |s| ts_ms.max(s.1));
        self.current = Some(zone);
        if self.segments.len() >= MAX_SEGMENTS {
            // Drop the oldest change: its time goes to the stay before it.
            self.segments.remove(1);
        }
        self.segments.push((zone, ts_ms));
    }

    /// The freshest-strongest zone at `ts_ms` (ties go to the lower zone id).
    fn best(&self, ts_ms: i64, p: &MetricParams) -> Option<ZoneId> {
        let mut best: Option<(ZoneId, f32)> = None;
        for (i, r) in self.readings.iter().enumerate() {
            if !fresh(r, ts_ms, p) {
                continue;
            }
            if best.is_none_or(|(_, s)| r.smoothed > s) {
                best = Some((i as ZoneId, r.smoothed));
            }
        }
        best.map(|(z, _)| z)
    }

    /// The strongest smoothed signal among zones that heard the device recently.
    pub fn strongest(&self, ts_ms: i64, p: &MetricParams) -> Option<f32> {
        self.readings
            .iter()
            .filter(|r| fresh(r, ts_ms, p))
            .map(|r| r.smoothed)
            .reduce(f32::max)
    }

    /// The zone the device is in now.
    pub fn current(&self) -> Option<ZoneId> {
        self.current
    }

    /// The visit's path up to `end_ms`: consecutive repeats collapsed, short stays folded.
    pub fn path(&self, end_ms: i64, p: &MetricParams) -> Vec<ZoneDwell> {
        let mut raw: Vec<ZoneDwell> = Vec::with_capacity(self.segments.len());
        for (i, &(zone, start)) in self.segments.iter().enumerate() {
            let stop = self.segments.get(i + 1).map_or(end_ms, |s| s.1).max(start);
            raw.push(ZoneDwell {
                zone,
                ms: stop - start,
            });
        }
        fold_path(&raw, p.min_zone_dwell_ms)
    }
}

fn fresh(r: &Reading, ts_ms: i64, p: &MetricParams) -> bool {
    r.last_ms != NEVER && ts_ms.saturating_sub(r.last_ms) <= p.zone_stale_ms
}

/// Folds stays shorter than `min_ms` into the preceding stay (or the following one when it is
/// the first), then merges consecutive stays in the same zone. A path that is all short stays
/// keeps its longest one so every visit has at least one zone.
pub fn fold_path(raw: &[ZoneDwell], min_ms: i64) -> Vec<ZoneDwell> {
    let mut out: Vec<ZoneDwell> = Vec::with_capacity(raw.len());
    let mut carry = 0i64;
    for seg in raw {
        if seg.ms < min_ms {
            match out.last_mut() {
                Some(last) => last.ms += seg.ms,
                None => carry += seg.ms,
            }
            continue;
        }
        let ms = seg.ms + std::mem::take(&mut carry);
        match out.last_mut() {
            Some(last) if last.zone == seg.zone => last.ms += ms,
            _ => out.push(ZoneDwell { zone: seg.zone, ms }),
        }
    }
    if out.is_empty() {
        if let Some(longest) = raw.iter().max_by_key(|s| s.ms) {
            let total = raw.iter().map(|s| s.ms).sum();
            out.push(ZoneDwell {
                zone: longest.zone,
                ms: total,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zd(zone: ZoneId, secs: i64) -> ZoneDwell {
        ZoneDwell {
            zone,
            ms: secs * 1000,
        }
    }

    #[test]
    fn fold_path_table() {
        let table: Vec<(Vec<ZoneDwell>, Vec<ZoneDwell>)> = vec![
            (vec![], vec![]),
            (vec![zd(0, 10)], vec![zd(0, 10)]),
            (vec![zd(0, 100), zd(1, 200)], vec![zd(0, 100), zd(1, 200)]),
            // A 10 s blip into zone 1 is folded into zone 0 and the two zone-0 stays merge.
            (vec![zd(0, 100), zd(1, 10), zd(0, 50)], vec![zd(0, 160)]),
            // A short first stay is carried into the next.
            (vec![zd(2, 5), zd(0, 100)], vec![zd(0, 105)]),
            // All short: the longest zone keeps the whole time.
            (vec![zd(2, 5), zd(1, 20)], vec![zd(1, 25)]),
        ];
        for (raw, want) in table {
            assert_eq!(fold_path(&raw, 30_000), want, "{raw:?}");
        }
    }

    /// Feeds (time s, zone, rssi) readings and returns the zone path with dwell in seconds.
    fn run(readings: &[(i64, ZoneId, i8)], end_s: i64) -> Vec<(ZoneId, i64)> {
        let p = MetricParams::default();
        let mut t = ZoneTracker::default();
        for &(s, z, r) in readings {
            t.observe(z, r, s * 1000, &p);
        }
        t.path(end_s * 1000, &p)
            .into_iter()
            .map(|d| (d.zone, d.ms / 1000))
            .collect()
    }

    #[test]
    fn strongest_zone_with_hysteresis() {
        let table: Vec<(&str, Vec<(i64, ZoneId, i8)>, i64, Vec<(ZoneId, i64)>)> = vec![
            (
                "one zone",
                vec![(0, 0, -50), (30, 0, -52)],
                60,
                vec![(0, 60)],
            ),
            (
                "clear move",
                vec![
                    (0, 0, -45),
                    (0, 1, -60),
                    (60, 0, -47),
                    (60, 1, -61),
                    (120, 0, -62),
                    (120, 1, -44),
                    (180, 0, -63),
                    (180, 1, -46),
                ],
                240,
                // Smoothing lags one reading: at 120 s zone 1 leads by only 1.75 dB.
                vec![(0, 180), (1, 60)],
            ),
            (
                "noise within hysteresis does not flip",
                vec![
                    (0, 0, -50),
                    (0, 1, -52),
                    (30, 0, -52),
                    (30, 1, -49),
                    (60, 0, -50),
                    (60, 1, -51),
                ],
                90,
                vec![(0, 90)],
            ),
            (
                "current zone going silent hands over",
                vec![(0, 0, -50), (30, 0, -50), (60, 1, -75), (200, 1, -74)],
                230,
                vec![(0, 30), (1, 200)],
            ),
        ];
        for (name, readings, end, want) in table {
            assert_eq!(run(&readings, end), want, "{name}");
        }
    }

    #[test]
    fn segments_are_bounded() {
        let p = MetricParams {
            zone_hysteresis_db: 0.0,
            zone_smoothing: 1.0,
            ..MetricParams::default()
        };
        let mut t = ZoneTracker::default();
        for i in 0..1000i64 {
            let z = (i % 2) as ZoneId;
            t.observe(z, -40, i * 1000, &p);
            t.observe(1 - z, -60, i * 1000, &p);
        }
        assert!(t.segments.len() <= MAX_SEGMENTS);
        let total: i64 = t.path(1_000_000, &p).iter().map(|d| d.ms).sum();
        assert_eq!(total, 1_000_000);
    }
}
