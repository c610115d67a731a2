//! Ground truth of a simulated day: the `truth.json` schema shared with the tests of other crates.
//!
//! Everything here is plain serde data so that `serde_json::from_reader` on a written
//! `truth.json` gives back exactly what the simulator wrote.

use serde::{Deserialize, Serialize};

/// The whole `truth.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Seed the day was generated from.
    pub seed: u64,
    /// Main (scored) day, `YYYY-MM-DD` in the store's timezone.
    pub date: String,
    /// IANA timezone name of the store.
    pub timezone: String,
    /// Zone names in sniffer order (index 0 is the entrance).
    pub zones: Vec<String>,
    /// One entry per written pcap file.
    pub files: Vec<FileTruth>,
    /// Device populations as requested by the parameters (devices, not visits).
    pub totals: Totals,
    /// One entry per device that has at least one clean frame on the main day,
    /// sorted by `start`, then `mac`.
    pub visits: Vec<Visit>,
}

/// What one pcap file contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTruth {
    /// Zone whose sniffer wrote the file.
    pub zone: String,
    /// Path relative to the output directory.
    pub path: String,
    /// Number of pcap records in the file (all days, beacons and injected bad frames included).
    pub frames: u64,
    /// Deliberately bad or ignorable records inside `frames`.
    pub injected: Injected,
}

/// Counts of records a correct pipeline must drop or ignore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    /// Records whose radiotap Flags carry `BAD_FCS`.
    pub bad_fcs_flag: u64,
    /// Records cut short (`incl_len` smaller than the real frame).
    pub truncated: u64,
    /// Records on an FCS-at-end sniffer whose FCS does not match (flag not set).
    pub fcs_mismatch: u64,
    /// AP beacon records.
    pub beacons: u64,
}

/// Device populations of the main day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Devices generated as visitors (short visits included).
    pub visitors: u32,
    /// Devices generated as passers-by on the street.
    pub passersby: u32,
    /// Staff devices.
    pub staff: u32,
}

/// Truth kind of a visit, by the agent's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VisitKind {
    /// Inside dwell of at least 5 minutes.
    Visitor,
    /// Never inside, or inside for less than 5 minutes.
    Passerby,
    /// A staff device (present on most days for most of the opening hours).
    Staff,
}

/// One device's presence on the main day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Truth kind.
    pub kind: VisitKind,
    /// Whether the MAC is a locally administered random one.
    pub randomized: bool,
    /// Whether the device associated to the store AP.
    pub connected: bool,
    /// Unix seconds of the first clean frame written for the device (any sniffer).
    pub start: f64,
    /// Unix seconds of the last clean frame written for the device.
    pub end: f64,
    /// Planned time inside the store, seconds (sum of `path`).
    pub inside_secs: f64,
    /// Planned zone stays in order.
    pub path: Vec<PathStep>,
}

/// One stay in a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStep {
    /// Zone name.
    pub zone: String,
    /// Planned stay length, seconds.
    pub secs: f64,
}

impl Truth {
    /// Visits of one kind.
    pub fn visits_of(&self, kind: VisitKind) -> impl Iterator<Item = &Visit> + '_ {
        self.visits.iter().filter(move |v| v.kind == kind)
    }
}
