//! Hourly aggregates in store-local time, sealed once no open visit can change them.
//!
//! A visit counts in the local hour it started. An hour is sealed when the watermark passes
//! hour end + visit timeout: by then every visit that was short enough to still be open has
//! closed. A longer visit that started in a sealed hour closes later and produces a new
//! revision of that hour's record — the full totals again, never a silent edit — so the cloud
//! can upsert by (hour, revision).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::params::DEFINITIONS_VERSION;
use crate::session::{Visit, VisitClass};
use crate::time::LocalClock;
use crate::ZoneId;

const HOUR_MS: i64 = 3_600_000;
/// Sealed, unchanged hours are forgotten after this long (input time); late visits older than
/// that can no longer arrive because the sessionizer rejects sightings that late.
const KEEP_MS: i64 = 48 * HOUR_MS;

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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HourSlot {
    stats: HourStats,
    revision: u32,
    dirty: bool,
    local_date: String,
    local_hour: u32,
}

/// Accumulates closed visits into hours and seals them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregator {
    timeout_ms: i64,
    hours: BTreeMap<i64, HourSlot>,
    #[serde(skip)]
    sealed: Vec<HourRecord>,
}

impl Aggregator {
    /// An empty aggregator for the given visit timeout.
    pub fn new(timeout_ms: i64) -> Self {
        Aggregator {
            timeout_ms,
            hours: BTreeMap::new(),
            sealed: Vec::new(),
        }
    }

    pub(crate) fn set_timeout(&mut self, timeout_ms: i64) {
        self.timeout_ms = timeout_ms;
    }

    /// Adds a closed visit to the hour it started in.
    pub fn add(&mut self, v: &Visit, clock: &LocalClock) {
        let start = clock.hour_start(v.start_ms);
        let slot = self.hours.entry(start).or_insert_with(|| HourSlot {
            local_date: clock.date(v.start_ms).to_string(),
            local_hour: clock.hour(v.start_ms),
            ..HourSlot::default()
        });
        slot.stats.add(v);
        slot.dirty = true;
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
        out.push(HourRecord {
            hour_start_ms: start,
            revision: slot.revision,
            local_date: slot.local_date.clone(),
            local_hour: slot.local_hour,
            definitions_version: DEFINITIONS_VERSION,
            stats: slot.stats.clone(),
        });
    }

    /// Takes the records sealed since the last call.
    pub fn drain_sealed(&mut self) -> Vec<HourRecord> {
        std::mem::take(&mut self.sealed)
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
        let mut a = Aggregator::new(15 * MIN);
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
        let mut a = Aggregator::new(15 * MIN);
        a.add(&visit(10, 20, VisitClass::Staff), &clock);
        a.add(&visit(70, 20, VisitClass::Visitor), &clock);
        a.seal_all();
        let s = a.drain_sealed();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].stats.staff, 1);
        assert_eq!(s[0].stats.visitors, 0);
    }
}
