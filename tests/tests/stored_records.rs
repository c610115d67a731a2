//! What the agent writes to disk: outbox records match `proto/storeedge/v1/records.proto`
//! field for field, and no raw MAC address of the simulated day appears anywhere in the
//! database files, in any encoding.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use edge_e2e::{open_db, read_truth, run_once, simulate};

/// How a field is declared.
#[derive(Clone, Copy, PartialEq)]
enum Label {
    Single,
    Repeated,
    /// proto3 `optional`: absent or null when unset.
    Optional,
}

/// message name → (field name → (type name, label)).
type Schema = HashMap<String, HashMap<String, (String, Label)>>;

/// Reads the message declarations of a proto3 file (enough of the grammar for records.proto:
/// flat messages with scalar, message, repeated and optional fields).
fn parse_proto(text: &str) -> Schema {
    let mut schema = Schema::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap().trim();
        if let Some(rest) = line.strip_prefix("message ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            schema.insert(name.clone(), HashMap::new());
            current = Some(name);
        } else if line == "}" {
            current = None;
        } else if let (Some(msg), Some((decl, _number))) = (&current, line.split_once('=')) {
            let words: Vec<&str> = decl.split_whitespace().collect();
            let (label, ty, name) = match words.as_slice() {
                ["repeated", ty, name] => (Label::Repeated, *ty, *name),
                ["optional", ty, name] => (Label::Optional, *ty, *name),
                [ty, name] => (Label::Single, *ty, *name),
                other => panic!("unexpected field declaration {other:?}"),
            };
            schema
                .get_mut(msg)
                .unwrap()
                .insert(name.to_string(), (ty.to_string(), label));
        }
    }
    schema
}

/// Checks that `value` has exactly the fields of `message`, recursing into message fields.
fn check(schema: &Schema, message: &str, value: &serde_json::Value, at: &str) {
    let fields = schema
        .get(message)
        .unwrap_or_else(|| panic!("{at}: no message {message}"));
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object"));
    for key in obj.keys() {
        assert!(
            fields.contains_key(key),
            "{at}: stored key {key:?} is not a field of {message}"
        );
    }
    for (name, (ty, label)) in fields {
        let v = match obj.get(name) {
            Some(serde_json::Value::Null) | None if *label == Label::Optional => continue,
            Some(v) => v,
            None => panic!("{at}: {message}.{name} missing from the stored record"),
        };
        let repeated = *label == Label::Repeated;
        if schema.contains_key(ty) {
            if repeated {
                for (i, e) in v.as_array().unwrap().iter().enumerate() {
                    check(schema, ty, e, &format!("{at}.{name}[{i}]"));
                }
            } else {
                check(schema, ty, v, &format!("{at}.{name}"));
            }
        } else if repeated {
            assert!(v.is_array(), "{at}.{name}: expected an array");
        } else {
            let ok = match ty.as_str() {
                "string" => v.is_string(),
                "bool" => v.is_boolean(),
                "int64" => v.is_i64(),
                "uint64" => v.is_u64(),
                "double" => v.is_f64() || v.is_i64(),
                "uint32" => v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
                other => panic!("{at}.{name}: scalar type {other} not handled"),
            };
            assert!(ok, "{at}.{name}: {v} is not a {ty}");
        }
    }
}

#[test]
fn outbox_records_match_the_proto_and_no_raw_mac_reaches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut p = edge_sim::SimParams::new(31, date, 80, 3);
    p.history_days = 1;
    let w = simulate(dir.path(), &p);
    run_once(&w.config_path);
    let data = dir.path().join("data");

    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/storeedge/v1/records.proto");
    let schema = parse_proto(&std::fs::read_to_string(proto).unwrap());
    let db = open_db(&data);
    let mut st = db
        .prepare("SELECT kind, record_key, body FROM outbox ORDER BY seq")
        .unwrap();
    let rows: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for (kind, key, body) in &rows {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let message = match kind.as_str() {
            "visit" => "Visit",
            "hourly" => "HourlyAggregate",
            "purchase" => "Purchase",
            "counter" => "CounterInterval",
            "presence" => "Presence",
            other => panic!("unknown outbox kind {other}"),
        };
        check(&schema, message, &v, &format!("{kind} {key}"));
        *kinds.entry(kind.as_str()).or_default() += 1;
    }
    println!("outbox records checked against records.proto: {kinds:?}");
    assert!(kinds.get("visit").is_some_and(|&n| n > 100));
    assert!(kinds.get("hourly").is_some_and(|&n| n > 10));
    assert!(kinds.get("purchase").is_some_and(|&n| n > 10));
    assert!(kinds.get("counter").is_some_and(|&n| n > 100));
    // A day of 10-minute bins, whole store and zones.
    assert!(kinds.get("presence").is_some_and(|&n| n > 100));
    drop(st);
    drop(db);

    // Every byte the store wrote: the database, and its WAL and shared-memory files if any.
    let truth = read_truth(&w.truth_path);
    assert!(truth.visits.len() > 100);
    assert!(truth.pos.purchases.iter().any(|p| p.member_phone.is_some()));
    edge_e2e::assert_no_personal_data(&data, &truth);
}
