//! Telemetry and alerts: every `telemetry_interval` the management task samples the gateway
//! (the same figures as the health snapshot the cloud pulls, plus the age of the newest receipt
//! and counter interval), judges each source's state, and turns what changed into alert events.
//!
//! # Telemetry (`telemetry`, not retained)
//! `at_ms`, `uptime_s`, `frames_per_s` (Wi-Fi frames read per second since the last message),
//! `capture_drops` (Wi-Fi frames lost to a full pipeline or libpcap's buffer or driver, since
//! counting began) and `capture_drops_new` (since the last message), `open_visits`,
//! `outbox_records`, `outbox_unacked`, `dropped_unacked` (records dropped for the disk budget
//! before the cloud acknowledged them, by kind), `database_bytes`, `free_disk_bytes`,
//! `last_receipt_age_s` and `last_counter_interval_age_s` (null when there is none),
//! `store_write_failures` (writes that failed for lack of space since the start),
//! `store_write_failing`, `over_budget`,
//! `errors` (every source's error and rejection counters added up by reason), `mgmt` (the
//! management channel's own counters, e.g. `mqtt_rejected_malformed_json`), `sources` (name,
//! kind, state) and `alerts` (the active ones).
//!
//! # Alerts (`events`, not retained)
//! Each is raised once per episode and cleared (`<event>_cleared`) when the episode ends:
//! - `source_down`: a source's state became `failing` or `silent` (see [`super::status`]);
//!   cleared when it is `up` or `idle` again.
//! - `disk_low`: free space on the data directory's file system fell below `low_disk_bytes`;
//!   cleared when it is back above that plus 10 % (so a value hovering at the threshold does
//!   not flap).
//! - `store_write_failing`: the store's writes fail for lack of space (a full disk); what was
//!   not written is held in memory and written when space is back, which clears it.
//! - `over_budget`: the database is over `storage.max_bytes` with nothing left that may be
//!   dropped (only aggregates, receipts and door counts); cleared once it is under again.
//! - `counter_silent`: a live counter source stored no interval ending within the last
//!   `counter_silence`, while the store is open. The agent has no opening-hours data of its
//!   own, so "open" is `[mqtt] opening_hours` (store-local) when set, and always otherwise.
//!   The silence is counted from the newest of: the counter's last interval end, the agent's
//!   start, and the start of today's opening hours (a counter that pauses at night gets
//!   `counter_silence` after opening to report). Cleared when the counter stores an interval
//!   ending within `counter_silence` again — also outside opening hours.
//! - `clock_unset`: a live Wi-Fi source received frames stamped before 2024 since the last look
//!   (the capture host's clock has not been set since boot: no real-time clock, NTP not
//!   synchronised); the agent holds them until the clock is set. Cleared when frames arrive
//!   again and none of them is unset.
//! - `clock_step`: a live Wi-Fi source's clock stepped (`clock_steps` moved) since the last
//!   look: visits open at the step ended there and the hours it touched are flagged. Kept for
//!   [`CLOCK_STEP_ALERT_MS`] after the last step the monitor saw, then cleared.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use edge_proto::v1 as pb;
use serde_json::{json, Value};

use super::config::OpeningHours;
use super::status::{deltas, is_error_counter, judge, SourceState, SourceStatus};
use crate::store::activity::Activity;

/// Wi-Fi counters of frames lost before they were read.
const CAPTURE_DROP_COUNTERS: [&str; 3] =
    ["backpressure_dropped", "pcap_dropped", "pcap_if_dropped"];

/// How long the `clock_step` alert stays raised after the monitor last saw a step: about the
/// hours the step flagged.
pub const CLOCK_STEP_ALERT_MS: i64 = 3_600_000;

/// One source's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCounters {
    /// Source name.
    pub name: String,
    /// Source kind.
    pub kind: String,
    /// Counter values.
    pub counters: BTreeMap<String, u64>,
}

/// A live counter source watched for silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterWatch {
    /// Source name.
    pub name: String,
    /// Its door.
    pub door: String,
}

/// What the monitor needs to know about the gateway.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Process start, UTC ms.
    pub started_ms: i64,
    /// `disk_low` threshold.
    pub low_disk_bytes: u64,
    /// `counter_silent` threshold, ms.
    pub counter_silence_ms: i64,
    /// Opening hours of `counter_silent`.
    pub opening_hours: Option<OpeningHours>,
    /// Store time zone.
    pub timezone: Tz,
    /// Names of the live Wi-Fi radios.
    pub live_radios: BTreeSet<String>,
    /// Live counter sources.
    pub live_counters: Vec<CounterWatch>,
}

/// One look at the gateway.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When, UTC ms.
    pub at_ms: i64,
    /// Every source's counters.
    pub sources: Vec<SourceCounters>,
    /// Visits open in the core.
    pub open_visits: u64,
    /// Records in the outbox.
    pub outbox_records: u64,
    /// Records not yet acknowledged.
    pub outbox_unacked: u64,
    /// Unacknowledged records dropped for the disk budget, by kind.
    pub dropped_unacked: BTreeMap<String, u64>,
    /// Database and WAL size.
    pub database_bytes: u64,
    /// Free space on the data directory's file system.
    pub free_disk_bytes: u64,
    /// Newest receipt and counter intervals.
    pub activity: Activity,
    /// Store writes failed for lack of space since the start.
    pub store_write_failures: u64,
    /// Store writes fail now.
    pub store_write_failing: bool,
    /// Over `storage.max_bytes` with nothing left to drop.
    pub over_budget: bool,
}

impl Sample {
    /// A sample from a health snapshot and the store's activity.
    pub fn from_health(h: pb::HealthSnapshot, activity: Activity) -> Sample {
        Sample {
            at_ms: h.taken_ms,
            sources: h
                .sources
                .into_iter()
                .map(|s| SourceCounters {
                    name: s.name,
                    kind: s.kind,
                    counters: s.counters.into_iter().map(|c| (c.name, c.value)).collect(),
                })
                .collect(),
            open_visits: h.open_visits,
            outbox_records: h.outbox_records,
            outbox_unacked: h.outbox_unacked,
            dropped_unacked: h
                .dropped_unacked
                .into_iter()
                .map(|c| (c.name, c.value))
                .collect(),
            database_bytes: h.database_bytes,
            free_disk_bytes: h.free_disk_bytes,
            activity,
            store_write_failures: h.store_write_failures,
            store_write_failing: h.store_write_failing,
            over_budget: h.over_budget,
        }
    }
}

/// What one look produced.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The telemetry message.
    pub telemetry: Value,
    /// Alert events raised or cleared.
    pub events: Vec<Value>,
    /// The sources' states now.
    pub sources: Vec<SourceStatus>,
}

/// Keeps what the previous look saw: counters (for rates and states) and active alerts.
#[derive(Debug)]
pub struct Monitor {
    settings: MonitorSettings,
    prev: BTreeMap<String, BTreeMap<String, u64>>,
    prev_at_ms: i64,
    states: BTreeMap<String, SourceState>,
    active: BTreeSet<String>,
    /// When the monitor last saw each source's clock step.
    last_step_ms: BTreeMap<String, i64>,
}

fn sum(c: &BTreeMap<String, u64>, names: &[&str]) -> u64 {
    names.iter().filter_map(|n| c.get(*n)).sum()
}

fn age_s(now_ms: i64, t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!((now_ms - t).max(0) as f64 / 1000.0))
}

/// Start (UTC ms) of the opening period `now_ms` is in; `None` when the store is closed.
pub fn opening_start_ms(h: &OpeningHours, tz: Tz, now_ms: i64) -> Option<i64> {
    let now = DateTime::from_timestamp_millis(now_ms)?.with_timezone(&tz);
    let t = now.time();
    if !h.contains(t) {
        return None;
    }
    let mut date = now.date_naive();
    if h.close.is_some_and(|c| c <= h.open && t < c) {
        // After midnight in hours that span it: the period began yesterday.
        date = date.pred_opt()?;
    }
    // A start inside a daylight-saving gap does not exist: count from now.
    Some(
        tz.from_local_datetime(&date.and_time(h.open))
            .earliest()
            .map_or(now_ms, |d| d.timestamp_millis()),
    )
}

impl Monitor {
    /// A monitor whose first look compares with `baseline` (taken at `at_ms`).
    pub fn new(settings: MonitorSettings, baseline: Vec<SourceCounters>, at_ms: i64) -> Monitor {
        let states = baseline
            .iter()
            .map(|s| (s.name.clone(), SourceState::Starting))
            .collect();
        Monitor {
            prev: baseline.into_iter().map(|s| (s.name, s.counters)).collect(),
            prev_at_ms: at_ms,
            states,
            active: BTreeSet::new(),
            last_step_ms: BTreeMap::new(),
            settings,
        }
    }

    /// Follows a config change: which sources are live radios and live counters.
    pub fn watch(&mut self, live_radios: BTreeSet<String>, live_counters: Vec<CounterWatch>) {
        self.settings.live_radios = live_radios;
        self.settings.live_counters = live_counters;
    }

    /// Flips alert `key` on or off; `true` when it changed.
    fn flip(&mut self, key: String, on: bool) -> bool {
        if on {
            self.active.insert(key)
        } else {
            self.active.remove(&key)
        }
    }

    /// The clock alerts of a Wi-Fi source whose counters moved by `delta` since the last look.
    fn clock_alerts(
        &mut self,
        now: i64,
        src: &SourceCounters,
        delta: &BTreeMap<String, u64>,
        events: &mut Vec<Value>,
    ) {
        let moved = |k: &str| delta.get(k).copied().unwrap_or(0);
        let total = |k: &str| src.counters.get(k).copied().unwrap_or(0);
        let unset = moved("clock_unset_frames");
        let key = format!("clock_unset:{}", src.name);
        if unset > 0 && self.flip(key.clone(), true) {
            events.push(json!({
                "event": "clock_unset", "at_ms": now, "source": src.name,
                "unset_frames": unset, "held_dropped": total("clock_unset_dropped"),
            }));
        } else if unset == 0 && moved("frames_read") > 0 && self.flip(key, false) {
            events.push(json!({
                "event": "clock_unset_cleared", "at_ms": now, "source": src.name,
                "restamped_frames": total("clock_restamped_frames"),
                "held_dropped": total("clock_unset_dropped"),
            }));
        }
        let key = format!("clock_step:{}", src.name);
        if moved("clock_steps") > 0 {
            self.last_step_ms.insert(src.name.clone(), now);
            if self.flip(key, true) {
                events.push(json!({
                    "event": "clock_step", "at_ms": now, "source": src.name,
                    "steps": total("clock_steps"),
                }));
            }
        } else if self
            .last_step_ms
            .get(&src.name)
            .is_some_and(|t| now.saturating_sub(*t) >= CLOCK_STEP_ALERT_MS)
            && self.flip(key, false)
        {
            self.last_step_ms.remove(&src.name);
            events.push(json!({
                "event": "clock_step_cleared", "at_ms": now, "source": src.name,
                "steps": total("clock_steps"),
            }));
        }
    }

    /// Judges `s` against the previous look; `mgmt` are the management channel's counters.
    pub fn observe(&mut self, s: &Sample, mgmt: &BTreeMap<String, u64>) -> Observation {
        let now = s.at_ms;
        let mut events = Vec::new();
        let mut sources = Vec::new();
        let (mut frames, mut drops, mut drops_new) = (0u64, 0u64, 0u64);
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for src in &s.sources {
            let empty = BTreeMap::new();
            let before = self.prev.get(&src.name).unwrap_or(&empty);
            let delta = deltas(before, &src.counters);
            let radio = self.settings.live_radios.contains(&src.name);
            let previous = self
                .states
                .get(&src.name)
                .copied()
                .unwrap_or(SourceState::Starting);
            let state = judge(previous, &delta, radio);
            if src.kind == "wifi" {
                frames += delta.get("frames_read").copied().unwrap_or(0);
                drops += sum(&src.counters, &CAPTURE_DROP_COUNTERS);
                drops_new += sum(&delta, &CAPTURE_DROP_COUNTERS);
            }
            for (k, v) in &src.counters {
                if *v > 0 && is_error_counter(k) {
                    *errors.entry(k.clone()).or_default() += v;
                }
            }
            if self.flip(format!("source_down:{}", src.name), state.is_down()) {
                let event = if state.is_down() {
                    "source_down"
                } else {
                    "source_down_cleared"
                };
                events.push(json!({
                    "event": event, "at_ms": now, "source": src.name, "kind": src.kind,
                    "state": state.label(),
                }));
            }
            if src.kind == "wifi" {
                self.clock_alerts(now, src, &delta, &mut events);
            }
            self.states.insert(src.name.clone(), state);
            self.prev.insert(src.name.clone(), src.counters.clone());
            sources.push(SourceStatus {
                name: src.name.clone(),
                kind: src.kind.clone(),
                state,
            });
        }

        let threshold = self.settings.low_disk_bytes;
        let low = s.free_disk_bytes < threshold;
        let recovered = s.free_disk_bytes >= threshold.saturating_add(threshold / 10);
        let disk_active = self.active.contains("disk_low");
        if (low && !disk_active) || (recovered && disk_active) {
            self.flip("disk_low".to_string(), low);
            events.push(json!({
                "event": if low { "disk_low" } else { "disk_low_cleared" },
                "at_ms": now, "free_disk_bytes": s.free_disk_bytes, "threshold_bytes": threshold,
            }));
        }

        for (alert, on) in [
            ("store_write_failing", s.store_write_failing),
            ("over_budget", s.over_budget),
        ] {
            if self.flip(alert.to_string(), on) {
                let event = if on {
                    alert.to_string()
                } else {
                    format!("{alert}_cleared")
                };
                events.push(json!({
                    "event": event, "at_ms": now, "database_bytes": s.database_bytes,
                    "free_disk_bytes": s.free_disk_bytes,
                    "store_write_failures": s.store_write_failures,
                }));
            }
        }

        let silence = self.settings.counter_silence_ms;
        let opening = match &self.settings.opening_hours {
            None => Some(i64::MIN),
            Some(h) => opening_start_ms(h, self.settings.timezone, now),
        };
        for c in self.settings.live_counters.clone() {
            let last = s
                .activity
                .interval_end_by_source
                .iter()
                .find(|(n, _)| *n == c.name)
                .map(|(_, t)| *t);
            let key = format!("counter_silent:{}", c.name);
            let active = self.active.contains(&key);
            if !active {
                let Some(open_since) = opening else { continue };
                let since = last
                    .unwrap_or(i64::MIN)
                    .max(self.settings.started_ms)
                    .max(open_since);
                if now.saturating_sub(since) > silence {
                    self.flip(key, true);
                    events.push(json!({
                        "event": "counter_silent", "at_ms": now, "source": c.name,
                        "door": c.door, "last_interval_end_ms": last,
                        "silent_for_s": (now - since) as f64 / 1000.0,
                    }));
                }
            } else if last.is_some_and(|t| now.saturating_sub(t) <= silence) {
                self.flip(key, false);
                events.push(json!({
                    "event": "counter_silent_cleared", "at_ms": now, "source": c.name,
                    "door": c.door, "last_interval_end_ms": last,
                }));
            }
        }

        let secs = (now - self.prev_at_ms).max(1) as f64 / 1000.0;
        self.prev_at_ms = now;
        let telemetry = json!({
            "at_ms": now,
            "uptime_s": (now - self.settings.started_ms).max(0) / 1000,
            "frames_per_s": frames as f64 / secs,
            "capture_drops": drops,
            "capture_drops_new": drops_new,
            "open_visits": s.open_visits,
            "outbox_records": s.outbox_records,
            "outbox_unacked": s.outbox_unacked,
            "dropped_unacked": s.dropped_unacked,
            "database_bytes": s.database_bytes,
            "free_disk_bytes": s.free_disk_bytes,
            "store_write_failures": s.store_write_failures,
            "store_write_failing": s.store_write_failing,
            "over_budget": s.over_budget,
            "last_receipt_age_s": age_s(now, s.activity.last_receipt_ms),
            "last_counter_interval_age_s": age_s(now, s.activity.last_interval_end_ms),
            "errors": errors,
            "mgmt": mgmt,
            "sources": sources,
            "alerts": self.active,
        });
        Observation {
            telemetry,
            events,
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_000_000_000;

    fn counters(kv: &[(&str, u64)]) -> BTreeMap<String, u64> {
        kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn src(name: &str, kind: &str, kv: &[(&str, u64)]) -> SourceCounters {
        SourceCounters {
            name: name.into(),
            kind: kind.into(),
            counters: counters(kv),
        }
    }

    fn settings() -> MonitorSettings {
        MonitorSettings {
            started_ms: T0,
            low_disk_bytes: 1_000,
            counter_silence_ms: 60_000,
            opening_hours: None,
            timezone: chrono_tz::UTC,
            live_radios: ["radio".to_string()].into(),
            live_counters: vec![CounterWatch {
                name: "door".into(),
                door: "main".into(),
            }],
        }
    }

    fn names(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let name = e["event"].as_str().unwrap_or("");
                match e["source"].as_str() {
                    Some(s) => format!("{name}:{s}"),
                    None => name.to_string(),
                }
            })
            .collect()
    }

    /// The telemetry message has every documented field, with rates over the interval.
    #[test]
    fn telemetry_shape() {
        let base = vec![
            src(
                "radio",
                "wifi",
                &[("frames_read", 1_000), ("pcap_dropped", 2)],
            ),
            src("door", "counter", &[("payloads_read", 0)]),
        ];
        let mut m = Monitor::new(settings(), base, T0);
        let s = Sample {
            at_ms: T0 + 10_000,
            sources: vec![
                src(
                    "radio",
                    "wifi",
                    &[
                        ("frames_read", 1_500),
                        ("pcap_dropped", 3),
                        ("read_errors", 1),
                    ],
                ),
                src(
                    "door",
                    "counter",
                    &[("payloads_read", 2), ("rejected_malformed_json", 4)],
                ),
            ],
            open_visits: 7,
            outbox_records: 40,
            outbox_unacked: 12,
            dropped_unacked: counters(&[("visit", 1)]),
            database_bytes: 4096,
            free_disk_bytes: 1 << 30,
            store_write_failures: 0,
            store_write_failing: false,
            over_budget: false,
            activity: Activity {
                last_receipt_ms: Some(T0 + 4_000),
                last_interval_end_ms: Some(T0 + 9_000),
                interval_end_by_source: vec![("door".into(), T0 + 9_000)],
            },
        };
        let o = m.observe(&s, &counters(&[("mqtt_rejected_malformed_json", 1)]));
        assert_eq!(
            o.telemetry,
            json!({
                "at_ms": T0 + 10_000, "uptime_s": 10, "frames_per_s": 50.0,
                "capture_drops": 3, "capture_drops_new": 1, "open_visits": 7,
                "outbox_records": 40, "outbox_unacked": 12, "dropped_unacked": {"visit": 1},
                "database_bytes": 4096, "free_disk_bytes": 1u64 << 30,
                "store_write_failures": 0, "store_write_failing": false, "over_budget": false,
                "last_receipt_age_s": 6.0, "last_counter_interval_age_s": 1.0,
                "errors": {"read_errors": 1, "rejected_malformed_json": 4},
                "mgmt": {"mqtt_rejected_malformed_json": 1},
                "sources": [
                    {"name": "radio", "kind": "wifi", "state": "up"},
                    {"name": "door", "kind": "counter", "state": "up"},
                ],
                "alerts": [],
            })
        );
        assert!(o.events.is_empty());
        // Nothing stored yet: ages are null.
        let o = m.observe(
            &Sample {
                at_ms: T0 + 20_000,
                free_disk_bytes: 1 << 30,
                ..Sample::default()
            },
            &BTreeMap::new(),
        );
        assert_eq!(o.telemetry["last_receipt_age_s"], Value::Null);
        assert_eq!(o.telemetry["last_counter_interval_age_s"], Value::Null);
    }

    /// A full disk and an unmeetable budget are alerts, raised once and cleared once.
    #[test]
    fn store_alerts_follow_the_store() {
        let mut m = Monitor::new(settings(), Vec::new(), T0);
        let look = |m: &mut Monitor, at: i64, failing: bool, over: bool| {
            let s = Sample {
                at_ms: T0 + at,
                free_disk_bytes: 1 << 30,
                store_write_failures: u64::from(failing) * 3,
                store_write_failing: failing,
                over_budget: over,
                ..Sample::default()
            };
            let o = m.observe(&s, &BTreeMap::new());
            let events: Vec<String> = o
                .events
                .iter()
                .filter_map(|e| e["event"].as_str().map(str::to_string))
                .collect();
            (events, o.telemetry["alerts"].clone())
        };
        let cases: &[(i64, bool, bool, &[&str], Value)] = &[
            (1_000, false, false, &[], json!([])),
            (
                2_000,
                true,
                false,
                &["store_write_failing"],
                json!(["store_write_failing"]),
            ),
            (
                3_000,
                true,
                true,
                &["over_budget"],
                json!(["over_budget", "store_write_failing"]),
            ),
            (
                4_000,
                true,
                true,
                &[],
                json!(["over_budget", "store_write_failing"]),
            ),
            (
                5_000,
                false,
                true,
                &["store_write_failing_cleared"],
                json!(["over_budget"]),
            ),
            (6_000, false, false, &["over_budget_cleared"], json!([])),
        ];
        for (at, failing, over, events, alerts) in cases {
            let (ev, al) = look(&mut m, *at, *failing, *over);
            assert_eq!(ev, *events, "at {at}");
            assert_eq!(al, *alerts, "at {at}");
        }
    }

    /// Each alert is raised once per episode and cleared once when it ends.
    #[test]
    fn alerts_are_raised_once_and_cleared() {
        let base = vec![
            src("radio", "wifi", &[("frames_read", 0)]),
            src("mq", "counter", &[("mqtt_errors", 0), ("mqtt_connects", 0)]),
        ];
        let mut m = Monitor::new(settings(), base, T0);
        let mut look =
            |at: i64, radio: u64, errors: u64, connects: u64, free: u64, end: Option<i64>| {
                let s = Sample {
                    at_ms: T0 + at,
                    sources: vec![
                        src("radio", "wifi", &[("frames_read", radio)]),
                        src(
                            "mq",
                            "counter",
                            &[("mqtt_errors", errors), ("mqtt_connects", connects)],
                        ),
                    ],
                    free_disk_bytes: free,
                    activity: Activity {
                        interval_end_by_source: end
                            .map(|e| ("door".to_string(), T0 + e))
                            .into_iter()
                            .collect(),
                        ..Activity::default()
                    },
                    ..Sample::default()
                };
                let o = m.observe(&s, &BTreeMap::new());
                (names(&o.events), o.telemetry["alerts"].clone())
            };
        // Radio hears frames, the MQTT counter cannot connect, the disk is nearly full.
        let (ev, alerts) = look(10_000, 100, 1, 0, 500, None);
        assert_eq!(ev, ["source_down:mq", "disk_low"]);
        assert_eq!(alerts, json!(["disk_low", "source_down:mq"]));
        // Still failing, still full: nothing new. The door counter has been silent 70 s.
        let (ev, _) = look(70_000, 200, 3, 0, 900, None);
        assert_eq!(ev, ["counter_silent:door"]);
        // The radio goes quiet; disk freed but within the 10 % margin; broker back.
        let (ev, _) = look(80_000, 200, 3, 1, 1_050, Some(75_000));
        assert_eq!(
            ev,
            [
                "source_down:radio",
                "source_down_cleared:mq",
                "counter_silent_cleared:door"
            ]
        );
        let (ev, alerts) = look(90_000, 300, 3, 1, 1_100, Some(85_000));
        assert_eq!(ev, ["source_down_cleared:radio", "disk_low_cleared"]);
        assert_eq!(alerts, json!([]));
        // Silent again for longer than the threshold: a new episode.
        let (ev, _) = look(150_000, 400, 3, 1, 1_100, Some(85_000));
        assert_eq!(ev, ["counter_silent:door"]);
    }

    /// `clock_unset` while frames arrive stamped 1970, cleared once frames arrive with a set
    /// clock; `clock_step` raised by a step and kept an hour after the last one. (A capture
    /// streamed into a pipe: not a live radio, so a quiet look is not `source_down`.)
    #[test]
    fn clock_alerts_are_raised_once_and_cleared() {
        let base = vec![src("capture", "wifi", &[("frames_read", 0)])];
        let mut st = settings();
        st.live_counters.clear();
        let mut m = Monitor::new(st, base, T0);
        let mut look = |at: i64, kv: &[(&str, u64)]| {
            let s = Sample {
                at_ms: T0 + at,
                sources: vec![src("capture", "wifi", kv)],
                free_disk_bytes: 1 << 30,
                ..Sample::default()
            };
            let o = m.observe(&s, &BTreeMap::new());
            (names(&o.events), o.telemetry["alerts"].clone(), o.events)
        };
        // Booted at 1970: frames arrive unset.
        let (ev, alerts, events) = look(10_000, &[("frames_read", 10), ("clock_unset_frames", 10)]);
        assert_eq!(ev, ["clock_unset:capture"]);
        assert_eq!(alerts, json!(["clock_unset:capture"]));
        assert_eq!(events[0]["unset_frames"], 10);
        // Still unset: nothing new.
        let (ev, _, _) = look(20_000, &[("frames_read", 20), ("clock_unset_frames", 20)]);
        assert!(ev.is_empty());
        // No frames at all (a pipe whose writer paused): nothing is known, the alert stays.
        let (ev, _, _) = look(30_000, &[("frames_read", 20), ("clock_unset_frames", 20)]);
        assert!(ev.is_empty());
        // NTP set the clock: the held frames were re-stamped, new frames are sane.
        let set = [
            ("frames_read", 30),
            ("clock_unset_frames", 20),
            ("clock_restamped_frames", 20),
        ];
        let (ev, alerts, events) = look(40_000, &set);
        assert_eq!(ev, ["clock_unset_cleared:capture"]);
        assert_eq!(alerts, json!([]));
        assert_eq!(events[0]["restamped_frames"], 20);
        // A step: raised once, kept while steps keep coming and for an hour after the last.
        let stepped = |frames: u64, steps: u64| {
            [
                ("frames_read", frames),
                ("clock_unset_frames", 20),
                ("clock_restamped_frames", 20),
                ("clock_steps", steps),
            ]
        };
        let (ev, alerts, _) = look(50_000, &stepped(40, 1));
        assert_eq!(ev, ["clock_step:capture"]);
        assert_eq!(alerts, json!(["clock_step:capture"]));
        let (ev, _, _) = look(60_000 + CLOCK_STEP_ALERT_MS / 2, &stepped(50, 2));
        assert!(ev.is_empty(), "a second step in the episode: {ev:?}");
        let (ev, _, _) = look(60_000 + CLOCK_STEP_ALERT_MS, &stepped(60, 2));
        assert!(
            ev.is_empty(),
            "an hour after the first step, not after the last"
        );
        let (ev, alerts, _) = look(60_000 + CLOCK_STEP_ALERT_MS * 3 / 2, &stepped(70, 2));
        assert_eq!(ev, ["clock_step_cleared:capture"]);
        assert_eq!(alerts, json!([]));
        let (ev, _, _) = look(70_000 + CLOCK_STEP_ALERT_MS * 2, &stepped(80, 2));
        assert!(ev.is_empty());
    }

    /// With opening hours, silence is only an alert while the store is open, and counts from
    /// the opening.
    #[test]
    fn counter_silence_respects_opening_hours() {
        let hours = OpeningHours::parse("09:00-21:00").unwrap();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(
            opening_start_ms(&hours, tz, at("2026-11-20T08:59:00+08:00")),
            None
        );
        assert_eq!(
            opening_start_ms(&hours, tz, at("2026-11-20T12:00:00+08:00")),
            Some(at("2026-11-20T09:00:00+08:00"))
        );
        let night = OpeningHours::parse("22:00-06:00").unwrap();
        assert_eq!(
            opening_start_ms(&night, tz, at("2026-11-21T02:00:00+08:00")),
            Some(at("2026-11-20T22:00:00+08:00"))
        );

        let mut s = settings();
        s.started_ms = at("2026-11-19T12:00:00+08:00");
        s.opening_hours = Some(hours);
        s.timezone = tz;
        s.counter_silence_ms = 30 * 60_000;
        let mut m = Monitor::new(s, Vec::new(), at("2026-11-19T12:00:00+08:00"));
        let last = at("2026-11-19T20:55:00+08:00");
        let mut look = |now: &str| {
            let s = Sample {
                at_ms: at(now),
                free_disk_bytes: 1 << 30,
                activity: Activity {
                    interval_end_by_source: vec![("door".into(), last)],
                    ..Activity::default()
                },
                ..Sample::default()
            };
            names(&m.observe(&s, &BTreeMap::new()).events)
        };
        // Closed at night: no alert however long the silence.
        assert!(look("2026-11-20T03:00:00+08:00").is_empty());
        // Opening at 09:00: the counter has 30 minutes to report.
        assert!(look("2026-11-20T09:20:00+08:00").is_empty());
        assert_eq!(look("2026-11-20T09:31:00+08:00"), ["counter_silent:door"]);
    }
}
