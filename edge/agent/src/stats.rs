//! Counters of what each source read, skipped and dropped.
//!
//! Every frame that does not become a sighting is counted under a reason, so an installer can
//! tell a mis-tuned adapter from a quiet store. Counters are plain atomics updated on the hot
//! path and read by the pipeline when it commits them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use edge_wire::presence::Skip;

/// Named counters of one source.
#[derive(Debug)]
pub struct SourceStats {
    /// Source name.
    pub name: String,
    /// Records read from the capture.
    pub frames_read: AtomicU64,
    /// Frames that became sightings.
    pub sightings: AtomicU64,
    /// Frames skipped, per [`Skip`] reason (index into `Skip::ALL`).
    pub skipped: Vec<AtomicU64>,
    /// Frames dropped because the pipeline's channel was full (live capture only).
    pub backpressure_dropped: AtomicU64,
    /// Capture files that could not be opened or read to the end.
    pub read_errors: AtomicU64,
    /// libpcap: packets received by the filter.
    pub pcap_received: AtomicU64,
    /// libpcap: packets dropped because the buffer was full.
    pub pcap_dropped: AtomicU64,
    /// libpcap: packets dropped by the interface or driver.
    pub pcap_if_dropped: AtomicU64,
    /// Failed channel changes.
    pub hop_errors: AtomicU64,
    /// Live frames stamped before the capture host's clock was set (before 2024: it counted
    /// from 1970), held until it was set.
    pub clock_unset_frames: AtomicU64,
    /// Frames given other times than their stamps: held frames once the clock was set (by
    /// their receive times), and frames stamped by a clock that had just stepped that were
    /// not merged yet (moved to the new clock).
    pub clock_restamped_frames: AtomicU64,
    /// Held frames dropped because the clock stayed unset longer than the hold buffer lasts.
    pub clock_unset_dropped: AtomicU64,
    /// Steps of the capture host's clock (beyond the step tolerance) seen on this source.
    pub clock_steps: AtomicU64,
    /// Sightings the core refused as too late to place (older than its watermark by more than
    /// the visit timeout).
    pub too_late: AtomicU64,
    /// Source kind: `"wifi"` or `"portal"`.
    pub kind: &'static str,
    /// Counters by name for low-rate reasons (portal records rejected, by reason).
    extra: Mutex<BTreeMap<String, u64>>,
}

impl SourceStats {
    /// Zeroed counters for the Wi-Fi source `name`.
    pub fn new(name: &str) -> Arc<Self> {
        SourceStats::of_kind(name, "wifi")
    }

    /// Zeroed counters for a source of `kind`.
    pub fn of_kind(name: &str, kind: &'static str) -> Arc<Self> {
        Arc::new(SourceStats {
            kind,
            extra: Mutex::new(BTreeMap::new()),
            name: name.to_string(),
            frames_read: AtomicU64::new(0),
            sightings: AtomicU64::new(0),
            skipped: Skip::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            backpressure_dropped: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
            pcap_received: AtomicU64::new(0),
            pcap_dropped: AtomicU64::new(0),
            pcap_if_dropped: AtomicU64::new(0),
            hop_errors: AtomicU64::new(0),
            clock_unset_frames: AtomicU64::new(0),
            clock_restamped_frames: AtomicU64::new(0),
            clock_unset_dropped: AtomicU64::new(0),
            clock_steps: AtomicU64::new(0),
            too_late: AtomicU64::new(0),
        })
    }

    /// Counts a skipped frame.
    pub fn skip(&self, reason: Skip) {
        if let Some(i) = Skip::ALL.iter().position(|s| *s == reason) {
            if let Some(c) = self.skipped.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds `n` to the named counter (low-rate events only: it takes a lock).
    pub fn count(&self, name: &str, n: u64) {
        if let Ok(mut m) = self.extra.lock() {
            *m.entry(name.to_string()).or_default() += n;
        }
    }

    /// All counters as (name, value), skip reasons as `skipped_<reason>`.
    pub fn values(&self) -> Vec<(String, u64)> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let extra: Vec<(String, u64)> = self
            .extra
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        if self.kind == "pos" {
            let mut v = vec![
                ("bytes_read".to_string(), get(&self.frames_read)),
                ("receipts".to_string(), get(&self.sightings)),
                ("read_errors".to_string(), get(&self.read_errors)),
            ];
            v.extend(extra);
            return v;
        }
        if self.kind == "counter" {
            let mut v = vec![
                ("payloads_read".to_string(), get(&self.frames_read)),
                ("read_errors".to_string(), get(&self.read_errors)),
            ];
            v.extend(extra);
            return v;
        }
        if self.kind == "portal" {
            let mut v = vec![
                ("records_read".to_string(), get(&self.frames_read)),
                ("logins".to_string(), get(&self.sightings)),
                ("read_errors".to_string(), get(&self.read_errors)),
                (
                    "backpressure_dropped".to_string(),
                    get(&self.backpressure_dropped),
                ),
            ];
            v.extend(extra);
            return v;
        }
        let mut v = vec![
            ("frames_read".to_string(), get(&self.frames_read)),
            ("sightings".to_string(), get(&self.sightings)),
            (
                "backpressure_dropped".to_string(),
                get(&self.backpressure_dropped),
            ),
            ("read_errors".to_string(), get(&self.read_errors)),
            ("pcap_received".to_string(), get(&self.pcap_received)),
            ("pcap_dropped".to_string(), get(&self.pcap_dropped)),
            ("pcap_if_dropped".to_string(), get(&self.pcap_if_dropped)),
            ("hop_errors".to_string(), get(&self.hop_errors)),
            ("too_late".to_string(), get(&self.too_late)),
            (
                "clock_unset_frames".to_string(),
                get(&self.clock_unset_frames),
            ),
            (
                "clock_restamped_frames".to_string(),
                get(&self.clock_restamped_frames),
            ),
            (
                "clock_unset_dropped".to_string(),
                get(&self.clock_unset_dropped),
            ),
            ("clock_steps".to_string(), get(&self.clock_steps)),
        ];
        for (s, c) in Skip::ALL.iter().zip(&self.skipped) {
            v.push((format!("skipped_{}", s.label()), get(c)));
        }
        v.extend(extra);
        v
    }

    /// Sets counters from stored values (cumulative across runs).
    pub fn restore(&self, values: &[(String, u64)]) {
        for (name, value) in values {
            let slot = match name.as_str() {
                "frames_read" | "records_read" | "bytes_read" | "payloads_read" => {
                    Some(&self.frames_read)
                }
                "sightings" | "logins" | "receipts" => Some(&self.sightings),
                "backpressure_dropped" => Some(&self.backpressure_dropped),
                "read_errors" => Some(&self.read_errors),
                "hop_errors" => Some(&self.hop_errors),
                "too_late" => Some(&self.too_late),
                "clock_unset_frames" => Some(&self.clock_unset_frames),
                "clock_restamped_frames" => Some(&self.clock_restamped_frames),
                "clock_unset_dropped" => Some(&self.clock_unset_dropped),
                "clock_steps" => Some(&self.clock_steps),
                other => other.strip_prefix("skipped_").and_then(|r| {
                    Skip::ALL
                        .iter()
                        .position(|s| s.label() == r)
                        .and_then(|i| self.skipped.get(i))
                }),
            };
            if let Some(slot) = slot {
                slot.store(*value, Ordering::Relaxed);
            } else if name.starts_with("rejected_") || self.kind == "pos" || self.kind == "counter"
            {
                if let Ok(mut m) = self.extra.lock() {
                    m.insert(name.clone(), *value);
                }
            }
        }
    }

    /// Sum of all skip counters.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}
