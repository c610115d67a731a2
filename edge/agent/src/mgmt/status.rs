//! The retained `status` document and the per-source states it carries.
//!
//! A source's state is judged from its counters between two telemetry ticks, so it needs no
//! hook inside the sources:
//! - `starting`: not judged yet (before the first tick);
//! - `up`: it read something or succeeded (a connection, a poll answered) since the last tick,
//!   or did so last and has not failed since;
//! - `failing`: its failure counters (`read_errors`, `mqtt_errors`, `poll_errors_*`,
//!   `open_failures`, `disconnects`, `modbus_timeouts`, …) moved and nothing succeeded; it
//!   stays `failing` until something succeeds again;
//! - `idle`: it has neither read nor failed since it started (a push listener nobody pushed to);
//! - `silent`: a live radio (`interface = …`) that captured no frame over a whole tick — a
//!   monitor-mode adapter always hears beacons, so silence means the capture is gone.
//!
//! `failing` and `silent` are "down" (the `source_down` alert). Rejected payloads are bad input,
//! not a failure of the source.

use std::collections::BTreeMap;

use serde::Serialize;

/// What a source is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not judged yet.
    Starting,
    /// Reading (or last succeeded).
    Up,
    /// Neither read nor failed yet.
    Idle,
    /// Failing since its last success.
    Failing,
    /// A live radio that captured nothing over a tick.
    Silent,
}

impl SourceState {
    /// Whether the state counts as down.
    pub fn is_down(self) -> bool {
        matches!(self, SourceState::Failing | SourceState::Silent)
    }

    /// The state's name, as published.
    pub fn label(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Up => "up",
            SourceState::Idle => "idle",
            SourceState::Failing => "failing",
            SourceState::Silent => "silent",
        }
    }
}

/// One source as the status document shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// `wifi`, `portal`, `pos` or `counter`.
    pub kind: String,
    /// Its state.
    pub state: SourceState,
}

/// Counters that show a source read something.
const READ_COUNTERS: [&str; 4] = ["frames_read", "records_read", "bytes_read", "payloads_read"];

/// Counters that show a source succeeded at something other than reading.
const SUCCESS_COUNTERS: [&str; 5] = [
    "mqtt_connects",
    "reconnects",
    "connections",
    "readings",
    "intervals",
];

/// Whether the counter `name` counts a failure of the source (not of its input).
pub fn is_failure_counter(name: &str) -> bool {
    matches!(
        name,
        "read_errors"
            | "mqtt_errors"
            | "mqtt_subscribe_refused"
            | "open_failures"
            | "disconnects"
            | "printer_unreachable"
            | "printer_write_errors"
            | "accept_errors"
            | "store_errors"
            | "modbus_timeouts"
            | "modbus_missed_polls"
    ) || name.starts_with("poll_errors_")
}

/// Whether the counter `name` is an error or a rejection, by reason (telemetry's `errors`).
pub fn is_error_counter(name: &str) -> bool {
    is_failure_counter(name)
        || name.starts_with("rejected_")
        || name.starts_with("refused_")
        || name.starts_with("modbus_exceptions_")
        || name.starts_with("modbus_bad_")
        || name.ends_with("_errors")
}

/// Counter increases between two looks (a counter that went down counts 0).
pub fn deltas(
    before: &BTreeMap<String, u64>,
    now: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// The state after a tick in which the counters moved by `delta`.
pub fn judge(
    previous: SourceState,
    delta: &BTreeMap<String, u64>,
    live_radio: bool,
) -> SourceState {
    let moved = |names: &[&str]| names.iter().any(|n| delta.get(*n).is_some_and(|v| *v > 0));
    let failed = delta.iter().any(|(k, v)| *v > 0 && is_failure_counter(k));
    if live_radio {
        return if moved(&["frames_read"]) {
            SourceState::Up
        } else if failed {
            SourceState::Failing
        } else {
            SourceState::Silent
        };
    }
    let poll_errors: u64 = delta
        .iter()
        .filter(|(k, _)| k.starts_with("poll_errors_"))
        .map(|(_, v)| *v)
        .sum();
    let answered_polls = delta.get("polls").copied().unwrap_or(0) > poll_errors;
    if moved(&READ_COUNTERS) || moved(&SUCCESS_COUNTERS) || answered_polls {
        SourceState::Up
    } else if failed {
        SourceState::Failing
    } else {
        match previous {
            SourceState::Up | SourceState::Failing => previous,
            SourceState::Starting | SourceState::Idle | SourceState::Silent => SourceState::Idle,
        }
    }
}

/// What the status document says besides the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// Agent version.
    pub version: String,
    /// Process start, UTC ms.
    pub started_ms: i64,
    /// Version of the config applied through `config/desired`; `None` for a config that only
    /// came from the file.
    pub config_version: Option<u64>,
    /// Store id.
    pub store_id: String,
    /// Gateway id.
    pub gateway_id: String,
}

/// Why a status says offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// The Last Will: the broker lost the connection.
    ConnectionLost,
    /// A clean shutdown.
    Shutdown,
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    version: &'a str,
    started_ms: i64,
    config_version: Option<u64>,
    store_id: &'a str,
    gateway_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'a [SourceStatus]>,
}

/// The status document: online (with the sources), or offline with the reason. The Last Will
/// carries no time and no sources (it is fixed when the connection is made).
pub fn status_json(
    info: &StatusInfo,
    offline: Option<Offline>,
    sources: Option<&[SourceStatus]>,
    at_ms: Option<i64>,
) -> String {
    let doc = StatusDoc {
        online: offline.is_none(),
        reason: offline.map(|o| match o {
            Offline::ConnectionLost => "connection_lost",
            Offline::Shutdown => "shutdown",
        }),
        version: &info.version,
        started_ms: info.started_ms,
        config_version: info.config_version,
        store_id: &info.store_id,
        gateway_id: &info.gateway_id,
        at_ms,
        sources,
    };
    serde_json::to_string(&doc).unwrap_or_else(|_| "{\"online\":false}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn map(kv: &[(&str, u64)]) -> BTreeMap<String, u64> {
        kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn states_follow_the_counters() {
        use SourceState::*;
        let table: [(SourceState, &[(&str, u64)], bool, SourceState); 14] = [
            (Starting, &[], false, Idle),
            (Idle, &[("payloads_read", 0)], false, Idle),
            (Idle, &[("payloads_read", 3)], false, Up),
            (Up, &[], false, Up),
            (Up, &[("mqtt_errors", 1)], false, Failing),
            (Failing, &[], false, Failing),
            (Failing, &[("mqtt_connects", 1)], false, Up),
            (Up, &[("rejected_malformed_json", 4)], false, Up),
            (
                Idle,
                &[("polls", 2), ("poll_errors_connect", 2)],
                false,
                Failing,
            ),
            (
                Failing,
                &[("polls", 2), ("poll_errors_timeout", 1)],
                false,
                Up,
            ),
            (Up, &[("open_failures", 1), ("bytes_read", 10)], false, Up),
            (Starting, &[("frames_read", 500)], true, Up),
            (Up, &[("frames_read", 0)], true, Silent),
            (Up, &[("read_errors", 1)], true, Failing),
        ];
        for (before, delta, radio, want) in table {
            assert_eq!(
                judge(before, &map(delta), radio),
                want,
                "{before:?} {delta:?}"
            );
        }
        assert!(Failing.is_down() && Silent.is_down() && !Idle.is_down() && !Up.is_down());
    }

    #[test]
    fn deltas_never_go_negative() {
        let d = deltas(
            &map(&[("a", 5), ("b", 9)]),
            &map(&[("a", 7), ("b", 3), ("c", 1)]),
        );
        assert_eq!(d, map(&[("a", 2), ("b", 0), ("c", 1)]));
    }

    #[test]
    fn error_counters() {
        for name in [
            "read_errors",
            "poll_errors_http_401",
            "rejected_too_large",
            "refused_x",
            "modbus_timeouts",
            "modbus_crc_errors",
            "hop_errors",
        ] {
            assert!(is_error_counter(name), "{name}");
        }
        for name in [
            "frames_read",
            "intervals",
            "skipped_bad_fcs",
            "polls",
            "mqtt_connects",
        ] {
            assert!(!is_error_counter(name), "{name}");
        }
    }

    #[test]
    fn status_documents() {
        let info = StatusInfo {
            version: "0.1.0".into(),
            started_ms: 1_000,
            config_version: None,
            store_id: "s-1".into(),
            gateway_id: "gw-1".into(),
        };
        let sources = vec![SourceStatus {
            name: "counter-main".into(),
            kind: "counter".into(),
            state: SourceState::Idle,
        }];
        let online: Value =
            serde_json::from_str(&status_json(&info, None, Some(&sources), Some(2_000))).unwrap();
        assert_eq!(
            online,
            json!({
                "online": true, "version": "0.1.0", "started_ms": 1000, "config_version": null,
                "store_id": "s-1", "gateway_id": "gw-1", "at_ms": 2000,
                "sources": [{"name": "counter-main", "kind": "counter", "state": "idle"}]
            })
        );
        let will: Value = serde_json::from_str(&status_json(
            &info,
            Some(Offline::ConnectionLost),
            None,
            None,
        ))
        .unwrap();
        assert_eq!(
            will,
            json!({
                "online": false, "reason": "connection_lost", "version": "0.1.0",
                "started_ms": 1000, "config_version": null, "store_id": "s-1", "gateway_id": "gw-1"
            })
        );
        let bye: Value = serde_json::from_str(&status_json(
            &info,
            Some(Offline::Shutdown),
            Some(&sources),
            Some(3_000),
        ))
        .unwrap();
        assert_eq!(
            (bye["online"].clone(), bye["reason"].clone()),
            (json!(false), json!("shutdown"))
        );
    }
}
