//! Fuzz target for the MQTT payloads the agent reads: every input goes through each decoder —
//! a management request (`cmd/<name>`: `commands::parse`, then `commands::command` for every
//! command name and an unknown one, and the replies they give), a `config/desired` envelope
//! (`commands::desired`, and the config text it carries through `config::parse_with`), and a
//! people counter's payload (`sources::counter::mqtt::decode`) under each kind of MQTT counter
//! profile: the Milesight VS133 (base64 TLV in a gateway's JSON, with a `lines` filter), raw or
//! text TLV, JSON interval counts, JSON running totals, and each HTTP dialect carried over MQTT.
//! Each gives a value or an error with a stable reason, never a panic; replies are JSON.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use edge_agent::config::{self, FileReads};
use edge_agent::mgmt::commands::{
    self, Command, MAX_CONFIG, MAX_FILTER, MAX_ID, MAX_PAYLOAD, REASONS,
};
use edge_agent::sources::counter::config::CounterSource;
use edge_agent::sources::counter::ingest::Decoder;
use edge_agent::sources::counter::mqtt;
use edge_core::counter::CountInput;
use edge_core::LocalClock;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// When the message "arrived": 2026-11-20T09:15:04Z.
const RECEIVED_MS: i64 = 1_795_252_504_000;

const STORE: &str =
    "[store]\nstore_id = \"fuzz\"\ngateway_id = \"gw-1\"\ntimezone = \"Europe/Berlin\"\n";

/// Counter profiles as `.toml` files (read through `FileReads::Given`), besides the embedded
/// `counter/milesight-vs133` and `counter/mqtt-json-interval`.
const RAW_MILESIGHT: &str =
    "kind = \"counter\"\nvendor = \"F\"\nmodel = \"F\"\ntransport = \"mqtt\"\n\
    dialect = \"milesight-tlv\"\n[mqtt]\ntopic = \"t/#\"\n";
const JSON_TOTALS: &str =
    "kind = \"counter\"\nvendor = \"F\"\nmodel = \"F\"\ntransport = \"mqtt\"\n\
    dialect = \"json\"\n[mqtt]\ntopic = \"t/#\"\n[mqtt.fields]\nline = \"sensor.line\"\n\
    time = \"ts\"\nins = \"counts.0.in\"\nouts = \"counts.0.out\"\ncumulative = true\n";
const DIALECTS: [&str; 5] = [
    "xovis-v5",
    "xovis-legacy",
    "brickstream",
    "irisys",
    "hikvision-event",
];

/// The counter sources decoded with, and the store's clock; built once.
fn sources() -> &'static (Vec<CounterSource>, LocalClock) {
    static SOURCES: OnceLock<(Vec<CounterSource>, LocalClock)> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let table = |name: &str, profile: &str, extra: &str| {
            format!(
                "[[sources.counter]]\nname = \"{name}\"\nprofile = \"{profile}\"\ndoor = \"main\"\n\
                 broker = \"127.0.0.1:1883\"\n{extra}"
            )
        };
        let mut sources = Vec::new();
        let mut add = |tables: String, file: &str| {
            let text = format!("{STORE}{tables}");
            let cfg = config::parse_with(
                &text,
                Path::new("/fuzz/etc/config.toml"),
                FileReads::Given(file.as_bytes()),
            )
            .unwrap_or_else(|e| panic!("the fuzz target's own config: {e}"));
            sources.extend(cfg.counter);
        };
        add(
            table(
                "vs133",
                "counter/milesight-vs133",
                "lines = [\"line1\", \"line3\"]\n",
            ) + &table("json-interval", "counter/mqtt-json-interval", ""),
            "",
        );
        add(table("tlv", "tlv.toml", ""), RAW_MILESIGHT);
        add(table("totals", "totals.toml", ""), JSON_TOTALS);
        for d in DIALECTS {
            let profile = format!(
                "kind = \"counter\"\nvendor = \"F\"\nmodel = \"F\"\ntransport = \"mqtt\"\n\
                 dialect = \"{d}\"\n[mqtt]\ntopic = \"t/#\"\n"
            );
            add(table(d, "dialect.toml", ""), &profile);
        }
        (sources, LocalClock::new(chrono_tz::Europe::Berlin))
    })
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok()
}

fn requests(payload: &[u8]) {
    let req = match commands::parse(payload) {
        Ok(r) => r,
        Err((id, rej)) => {
            assert!(REASONS.contains(&rej.reason), "{rej:?}");
            assert!(is_json(&commands::reply_err(id.as_deref(), &rej)));
            return;
        }
    };
    assert!(payload.len() <= MAX_PAYLOAD);
    assert!(!req.id.is_empty() && req.id.chars().count() <= MAX_ID);
    assert_eq!(
        req.fields.get("id").and_then(Value::as_str),
        Some(req.id.as_str())
    );
    for name in commands::COMMANDS.iter().copied().chain(["reboot", ""]) {
        match commands::command(name, &req) {
            Ok(Command::SetLogLevel(filter)) => {
                assert_eq!(name, "set-log-level");
                assert!(
                    !filter.is_empty() && filter.len() <= MAX_FILTER + 32,
                    "{filter:?}"
                );
                assert_eq!(filter, filter.trim());
            }
            Ok(_) => assert_ne!(name, "set-log-level"),
            Err(rej) => {
                assert!(REASONS.contains(&rej.reason), "{rej:?}");
                assert!(is_json(&commands::reply_err(Some(&req.id), &rej)));
            }
        }
    }
    assert!(is_json(&commands::reply_ok(&req.id, Value::Null)));
}

fn desired(payload: &[u8]) {
    match commands::desired(payload) {
        Ok((version, text)) => {
            assert!(payload.len() <= MAX_CONFIG);
            assert!((1..=1u64 << 53).contains(&version));
            // The supervisor parses the text as a whole config file next.
            let _ = config::parse_with(
                &text,
                Path::new("/fuzz/etc/config.toml"),
                FileReads::Given(b""),
            );
        }
        Err((version, rej)) => {
            assert!(REASONS.contains(&rej.reason), "{rej:?}");
            if let Some(v) = version {
                assert!((1..=1u64 << 53).contains(&v));
                assert_eq!(rej.reason, "missing_config");
            }
        }
    }
}

fn counters(payload: &[u8]) {
    let (sources, clock) = sources();
    for src in sources {
        let dec = Decoder { src, clock };
        match mqtt::decode(dec, payload, RECEIVED_MS) {
            Ok(g) => {
                assert_eq!(g.received_ms, RECEIVED_MS);
                for input in &g.inputs {
                    match input {
                        CountInput::Interval {
                            door,
                            line,
                            start_ms,
                            end_ms,
                            ..
                        } => {
                            assert_eq!(door, &src.door);
                            assert!(src.counts_line(line), "{line:?}");
                            assert!(start_ms < end_ms, "{input:?}");
                        }
                        CountInput::Cumulative { door, line, .. } => {
                            assert_eq!(door, &src.door);
                            assert!(src.counts_line(line), "{line:?}");
                        }
                    }
                }
            }
            Err(e) => {
                assert!(!e.reason().is_empty() && !e.detail.is_empty(), "{e:?}");
                let _ = e.to_string();
            }
        }
    }
}

fuzz_target!(|payload: &[u8]| {
    requests(payload);
    desired(payload);
    counters(payload);
});
