//! The metric definitions' thresholds (design §6), with their defaults and validation.
//!
//! Every number that decides what counts as a sighting, a visit, a visitor, a zone change or a
//! staff member lives here, so a report can say which definitions produced it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Version of the metric definitions; stored with every visit and aggregate. Bump it whenever
/// the meaning of a stored number changes.
///
/// 2: a randomized MAC that only probed is a visit only when sequence continuity links it to
/// another fragment (two populations: tracked devices, and presence estimated per bin).
/// 3: people present are fitted through the origin, a slope per population, on the mean of a
/// bin and the one before it.
pub const DEFINITIONS_VERSION: u32 = 3;

/// Thresholds of the metric definitions. Durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricParams {
    /// Gap after which a device's next sighting starts a new visit.
    pub visit_timeout_ms: i64,
    /// Sightings weaker than this are ignored entirely (dBm).
    pub ignore_below_dbm: i8,
    /// A device whose strongest smoothed signal is at least this is inside the store (dBm).
    pub inside_dbm: i8,
    /// Inside-dwell from which a visit is a visitor rather than a passerby.
    pub min_visit_dwell_ms: i64,
    /// Hours on one day from which a device counts that day towards the staff rule.
    pub staff_min_hours: f64,
    /// Days (within the window) a device must reach `staff_min_hours` to be staff.
    pub staff_min_days: u32,
    /// Length of the staff rule's window in days (including the visit's day).
    pub staff_window_days: u32,
    /// Exponential smoothing weight of a new RSSI reading per zone (0 < α ≤ 1).
    pub zone_smoothing: f32,
    /// How much stronger (dB) another zone must be before a device changes zone.
    pub zone_hysteresis_db: f32,
    /// A zone's reading older than this no longer competes in zone assignment.
    pub zone_stale_ms: i64,
    /// Zone stays shorter than this are folded into their neighbours in the path.
    pub min_zone_dwell_ms: i64,
}

/// Default visit timeout: 15 minutes.
pub const DEFAULT_VISIT_TIMEOUT_MS: i64 = 15 * 60_000;
/// Default ignore threshold: −90 dBm.
pub const DEFAULT_IGNORE_BELOW_DBM: i8 = -90;
/// Default inside threshold: −70 dBm.
pub const DEFAULT_INSIDE_DBM: i8 = -70;
/// Default minimum inside-dwell of a visitor: 5 minutes.
pub const DEFAULT_MIN_VISIT_DWELL_MS: i64 = 5 * 60_000;
/// Default staff rule: 6 hours a day …
pub const DEFAULT_STAFF_MIN_HOURS: f64 = 6.0;
/// … on 3 days …
pub const DEFAULT_STAFF_MIN_DAYS: u32 = 3;
/// … of the last 7.
pub const DEFAULT_STAFF_WINDOW_DAYS: u32 = 7;
/// Default smoothing weight of a new reading.
pub const DEFAULT_ZONE_SMOOTHING: f32 = 0.5;
/// Default zone hysteresis: 4 dB.
pub const DEFAULT_ZONE_HYSTERESIS_DB: f32 = 4.0;
/// Default staleness of a zone reading: 90 s (a phone probes every 20–60 s).
pub const DEFAULT_ZONE_STALE_MS: i64 = 90_000;
/// Default shortest zone stay kept in a path: 30 s.
pub const DEFAULT_MIN_ZONE_DWELL_MS: i64 = 30_000;

impl Default for MetricParams {
    fn default() -> Self {
        MetricParams {
            visit_timeout_ms: DEFAULT_VISIT_TIMEOUT_MS,
            ignore_below_dbm: DEFAULT_IGNORE_BELOW_DBM,
            inside_dbm: DEFAULT_INSIDE_DBM,
            min_visit_dwell_ms: DEFAULT_MIN_VISIT_DWELL_MS,
            staff_min_hours: DEFAULT_STAFF_MIN_HOURS,
            staff_min_days: DEFAULT_STAFF_MIN_DAYS,
            staff_window_days: DEFAULT_STAFF_WINDOW_DAYS,
            zone_smoothing: DEFAULT_ZONE_SMOOTHING,
            zone_hysteresis_db: DEFAULT_ZONE_HYSTERESIS_DB,
            zone_stale_ms: DEFAULT_ZONE_STALE_MS,
            min_zone_dwell_ms: DEFAULT_MIN_ZONE_DWELL_MS,
        }
    }
}

/// A threshold that is out of range, named by its field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParamError {
    /// The offending field, as named in `[metrics]`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ParamError {}

impl MetricParams {
    /// Checks every threshold; the first problem found is returned with its field name.
    pub fn validate(&self) -> Result<(), ParamError> {
        let err = |field, reason: &str| {
            Err(ParamError {
                field,
                reason: reason.to_string(),
            })
        };
        if self.visit_timeout_ms < 10_000 || self.visit_timeout_ms > 6 * 3_600_000 {
            return err("visit_timeout", "must be between 10s and 6h");
        }
        if self.ignore_below_dbm > -20 {
            return err("ignore_below_dbm", "must be -20 dBm or lower");
        }
        if self.inside_dbm <= self.ignore_below_dbm {
            return err(
                "inside_dbm",
                "must be stronger (greater) than ignore_below_dbm",
            );
        }
        if self.min_visit_dwell_ms < 0 || self.min_visit_dwell_ms > 24 * 3_600_000 {
            return err("min_visit_dwell", "must be between 0 and 24h");
        }
        if !(self.staff_min_hours > 0.0 && self.staff_min_hours <= 24.0) {
            return err("staff_min_hours", "must be in (0, 24]");
        }
        if self.staff_window_days == 0 || self.staff_window_days > 60 {
            return err("staff_window_days", "must be between 1 and 60");
        }
        if self.staff_min_days == 0 || self.staff_min_days > self.staff_window_days {
            return err("staff_min_days", "must be between 1 and staff_window_days");
        }
        if !(self.zone_smoothing > 0.0 && self.zone_smoothing <= 1.0) {
            return err("zone_smoothing", "must be in (0, 1]");
        }
        if !(self.zone_hysteresis_db >= 0.0 && self.zone_hysteresis_db <= 40.0) {
            return err("zone_hysteresis_db", "must be between 0 and 40 dB");
        }
        if self.zone_stale_ms < 1_000 || self.zone_stale_ms > self.visit_timeout_ms {
            return err("zone_stale", "must be between 1s and visit_timeout");
        }
        if self.min_zone_dwell_ms < 0 || self.min_zone_dwell_ms > 3_600_000 {
            return err("min_zone_dwell", "must be between 0 and 1h");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(MetricParams::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_names_its_field() {
        type Edit = fn(&mut MetricParams);
        let table: [(Edit, &str); 8] = [
            (|p| p.visit_timeout_ms = 0, "visit_timeout"),
            (|p| p.ignore_below_dbm = 0, "ignore_below_dbm"),
            (|p| p.inside_dbm = -95, "inside_dbm"),
            (|p| p.staff_min_hours = 0.0, "staff_min_hours"),
            (|p| p.staff_min_days = 9, "staff_min_days"),
            (|p| p.zone_smoothing = 1.5, "zone_smoothing"),
            (|p| p.zone_stale_ms = 0, "zone_stale"),
            (|p| p.min_zone_dwell_ms = -1, "min_zone_dwell"),
        ];
        for (edit, field) in table {
            let mut p = MetricParams::default();
            edit(&mut p);
            assert_eq!(p.validate().map_err(|e| e.field), Err(field));
        }
    }
}
