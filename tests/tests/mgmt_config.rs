//! Config push over MQTT through a real Mosquitto broker: a fleet publishes a whole config file
//! with a version on `config/desired` and the running agent answers on the retained
//! `config/reported`.
//!
//! - A new source is started alone (`scope: "sources"`, the untouched counter keeps its
//!   listener); a global change restarts every source and the pipeline in-process
//!   (`scope: "all"`) while the MQTT session stays up. The status carries the running version,
//!   and the applied config is kept in `<data_dir>/config/applied.{toml,json}`.
//! - A changed Wi-Fi or portal source restarts alone too: it leaves the pipeline's merge at a
//!   checkpoint and joins again from its cursor, while the store, the open visits and the
//!   other sources stay; a changed zone list restarts the whole run.
//! - Schema errors and unknown keys are rejected as `bad_config` with the key named; a changed
//!   identity or `[mqtt]` table as `needs_local_change`; malformed JSON, an oversized payload
//!   and a missing version with their own codes. Nothing changes and nothing panics.
//! - A new source that fails within `apply_timeout` (a poller whose device refuses
//!   connections), or cannot start at all (its listen address is taken), is rolled back: the
//!   previous config keeps running and keeps taking pushes.
//! - Older and equal versions, and an exact repeat of a refused one, are ignored without a
//!   word on `config/reported`, only counted in the telemetry's `mgmt`.
//! - The `reload` and `flush` commands answer once per request id; after SIGTERM and a start
//!   with the same `--config` file the agent runs the applied fleet config; without a fleet
//!   config, `reload` picks up an edited config file.
//!
//! Mosquitto is required (`scripts/test.sh` installs it). The test side is rumqttc's blocking
//! client subscribed to everything under `storeedge/`; devices are plain HTTP requests to the
//! agent's counter listeners. Everything stays on 127.0.0.1.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edge_e2e::mosquitto::{free_port, refusing_port, Broker, Msg, Watcher};
use edge_e2e::Agent;
use serde_json::{json, Value};

const STORE: &str = "cfg-store";
const GATEWAY: &str = "gw-1";
const ROOT: &str = "storeedge/cfg-store/gw-1/";
const DESIRED: &str = "storeedge/cfg-store/gw-1/config/desired";
const REPORTED: &str = "config/reported";
const LIMIT: Duration = Duration::from_secs(45);
/// How long the test listens for a message that must not come.
const QUIET: Duration = Duration::from_secs(4);
const MAIN: &str = "counter-main";
const SIDE: &str = "counter-side";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hardware-profiles/counter/fixtures"
);

/// The fleet's side of config push and the commands the scenarios repeat, on the shared
/// watcher.
trait Fleet {
    /// The next message on `config/reported` after the first `skip`, whatever it says.
    fn next_reported(&self, skip: usize, what: &str) -> Value;
    /// Publishes `payload` on `config/desired` and returns the next `config/reported`.
    fn desire_raw(&self, payload: &[u8], retain: bool, what: &str) -> Value;
    /// Publishes config `text` as `version` and returns the `config/reported` answering it.
    fn desire(&self, version: u64, text: &str, retain: bool) -> Value;
    /// A status published now (`rebirth` with a fresh request id).
    fn fresh_status(&self, id: &str) -> Value;
    /// The names the `sources` command lists.
    fn source_names(&self, id: &str) -> Vec<String>;
    /// The management counters of the first telemetry message (after the first `skip`)
    /// whose `mgmt` passes `ok`.
    fn mgmt_when(&self, skip: usize, what: &str, ok: impl Fn(&Value) -> bool) -> Value;
}

impl Fleet for Watcher {
    fn next_reported(&self, skip: usize, what: &str) -> Value {
        self.wait_for(REPORTED, skip, what, |_| true).json()
    }

    fn desire_raw(&self, payload: &[u8], retain: bool, what: &str) -> Value {
        let n = self.on(REPORTED).len();
        self.publish(DESIRED, retain, payload);
        self.next_reported(n, what)
    }

    fn desire(&self, version: u64, text: &str, retain: bool) -> Value {
        let r = self.desire_raw(
            desired(version, text).as_bytes(),
            retain,
            &format!("the answer to desired version {version}"),
        );
        assert_eq!(r["version"], json!(version), "answers another version: {r}");
        r
    }

    fn fresh_status(&self, id: &str) -> Value {
        let n = self.on("status").len();
        let r = self.command("rebirth", json!({ "id": id }));
        assert_eq!(r["ok"], true, "{r}");
        self.wait_for("status", n, "the rebirth status", online)
            .json()
    }

    fn source_names(&self, id: &str) -> Vec<String> {
        let r = self.command("sources", json!({ "id": id }));
        assert_eq!(r["ok"], true, "{r}");
        r["result"]["sources"]
            .as_array()
            .unwrap_or_else(|| panic!("no sources in {r}"))
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()
    }

    fn mgmt_when(&self, skip: usize, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.wait_for("telemetry", skip, what, |t| ok(&t["mgmt"]))
            .json()["mgmt"]
            .clone()
    }
}

/// The fleet's watcher: subscribed to everything, topics relative to this gateway's root.
fn watcher(port: u16, id: &str) -> Watcher {
    Watcher::start_with_limit(port, id, ROOT, LIMIT)
}

fn online(v: &Value) -> bool {
    v["online"] == json!(true)
}

/// A management counter, 0 when absent.
fn mgmt_count(m: &Value, name: &str) -> u64 {
    m[name].as_u64().unwrap_or(0)
}

/// The `config/desired` payload of `text` as `version`.
fn desired(version: u64, text: &str) -> String {
    json!({ "version": version, "config": text }).to_string()
}

/// One gateway's config text: the file's identity, storage and `[mqtt]` tables (`global` is
/// inserted before `[mqtt]`), the push counter `counter-main` on `127.0.0.1:0`, then
/// `sources` (more `[[sources.counter]]` tables).
fn config_text(broker_port: u16, gateway: &str, global: &str, sources: &str) -> String {
    format!(
        "[store]\nstore_id = \"{STORE}\"\ngateway_id = \"{gateway}\"\ntimezone = \"UTC\"\n\n\
         [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
         [storage]\ndata_dir = \"data\"\n\n\
         [sync]\nlisten = \"127.0.0.1:0\"\n\n\
         {global}\
         [mqtt]\nbroker = \"127.0.0.1:{broker_port}\"\nkeep_alive = \"5s\"\n\
         telemetry_interval = \"1s\"\napply_timeout = \"3s\"\n\n\
         [[sources.counter]]\nname = \"{MAIN}\"\nprofile = \"counter/xovis-pc2s-v5\"\n\
         door = \"main\"\nlisten = \"127.0.0.1:0\"\n\n\
         {sources}"
    )
}

/// The Irisys push counter `counter-side` on its own listener at 127.0.0.1:`port` (`extra`
/// lines added to its table).
fn side_counter(port: u16, extra: &str) -> String {
    format!(
        "[[sources.counter]]\nname = \"{SIDE}\"\nprofile = \"counter/irisys-vector-4d\"\n\
         door = \"side\"\nlisten = \"127.0.0.1:{port}\"\nlines = [\"Line 1\"]\n{extra}\n"
    )
}

/// One test's world: a broker, the fleet's watcher, and a running agent started on
/// `config.toml` in a temporary directory.
///
/// Fields drop in order: the agent first, the directory last.
struct Gateway {
    agent: Agent,
    w: Watcher,
    _broker: Broker,
    dir: tempfile::TempDir,
    broker_port: u16,
    /// The agent's config file.
    config: PathBuf,
}

impl Gateway {
    /// Starts a broker, a watcher, and an agent on the file config (`counter-main` only);
    /// waits for the agent's online status with no config version.
    fn start(watcher_id: &str) -> Gateway {
        Gateway::start_with(watcher_id, "", |_| String::new())
    }

    /// [`Gateway::start`] with `secrets` added to the secrets file and the file config's
    /// extra `sources`, made from the broker's port, in the test's directory.
    fn start_with(
        watcher_id: &str,
        secrets: &str,
        sources: impl FnOnce(&std::path::Path) -> String,
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let broker_port = free_port();
        let broker = Broker::start(d, broker_port);
        std::fs::write(
            d.join("secrets.toml"),
            format!("device_key_secret = \"11111111111111111111111111111111\"\n{secrets}"),
        )
        .unwrap();
        let config = d.join("config.toml");
        let sources = sources(d);
        std::fs::write(&config, config_text(broker_port, GATEWAY, "", &sources)).unwrap();
        let w = watcher(broker_port, watcher_id);
        let agent = Agent::start_live(&config);
        let s = w.wait_for("status", 0, "the online status", online).json();
        assert_eq!(s["config_version"], Value::Null, "before any push: {s}");
        Gateway {
            agent,
            w,
            _broker: broker,
            dir,
            broker_port,
            config,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// This gateway's config text (see [`config_text`]).
    fn text(&self, global: &str, sources: &str) -> String {
        config_text(self.broker_port, GATEWAY, global, sources)
    }

    /// The current port of `source`'s counter listener (the newest listener logged with it).
    fn listener_port(&self, source: &str) -> u16 {
        let tag = format!("({source},");
        let deadline = Instant::now() + LIMIT;
        loop {
            let port = self
                .agent
                .log_lines()
                .iter()
                .rev()
                .find(|l| l.contains("counter listener") && l.contains(&tag))
                .and_then(|l| edge_e2e::logged_port(l));
            if let Some(p) = port {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "no counter listener logged for {source}; log:\n{}",
                self.agent.log_lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `<data_dir>/config/applied.json`, parsed.
    fn applied_json(&self) -> Value {
        let p = self.data().join("config/applied.json");
        let text =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", p.display()))
    }

    /// `<data_dir>/config/applied.toml`.
    fn applied_toml(&self) -> String {
        let p = self.data().join("config/applied.toml");
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    /// Pushes `text` as version 2 and checks it was applied. Retained, as a fleet publishes
    /// it: whenever the agent subscribes it gets it. Good versions stay retained; refused
    /// ones and junk are published without retain, so the retained desired is always the
    /// newest good one (after a restart it equals the running version and is ignored).
    fn push_v2(&self, text: &str) {
        let r = self.w.desire(2, text, true);
        assert_applied(&r, 2, "sources");
        assert_eq!(r["restarted"], json!([SIDE]), "only the new counter: {r}");
    }

    /// The running config is still version `version` with both counters.
    fn assert_unchanged(&self, version: u64, id: &str) {
        let s = self.w.fresh_status(&format!("{id}-status"));
        assert_eq!(s["config_version"], json!(version), "{s}");
        let names = self.w.source_names(&format!("{id}-sources"));
        for name in [MAIN, SIDE] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        assert_eq!(self.applied_json()["version"], json!(version));
    }

    fn no_panic(&self) {
        let log = self.agent.log_lines();
        assert!(
            !log.iter().any(|l| l.contains("panicked")),
            "the agent panicked:\n{}",
            log.join("\n")
        );
    }
}

fn assert_applied(r: &Value, version: u64, scope: &str) {
    assert_eq!(
        (r["result"].clone(), r["scope"].clone()),
        (json!("applied"), json!(scope)),
        "{r}"
    );
    assert_eq!(r["version"], json!(version), "{r}");
    assert_eq!(r["running_version"], json!(version), "{r}");
    assert!(r["at_ms"].as_i64().unwrap_or(0) > 1_700_000_000_000, "{r}");
    assert!(r["restarted"].is_array(), "{r}");
}

fn assert_rejected(r: &Value, error: &str, running: Value) {
    assert_eq!(
        (r["result"].clone(), r["error"].clone()),
        (json!("rejected"), json!(error)),
        "{r}"
    );
    assert_eq!(r["running_version"], running, "{r}");
    assert!(
        r["reason"].as_str().is_some_and(|s| !s.trim().is_empty()),
        "a rejection says why: {r}"
    );
    assert!(r["at_ms"].as_i64().unwrap_or(0) > 1_700_000_000_000, "{r}");
}

fn restarted(r: &Value) -> Vec<String> {
    r["restarted"]
        .as_array()
        .unwrap_or_else(|| panic!("no restarted list: {r}"))
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Sends one HTTP POST to 127.0.0.1:`port`; gives the status and the response body.
fn post(port: u16, path: &str, body: &[u8]) -> (u16, String) {
    edge_e2e::http_request(port, "POST", path, None, body)
}

/// A Xovis push (the fixture) to `counter-main` on `port` is taken.
fn xovis_push_taken(port: u16) {
    let body = std::fs::read(format!("{FIXTURES}/xovis-v5.json")).unwrap();
    let (status, resp) = post(port, "/counter/xovis", &body);
    assert_eq!(status, 200, "counter-main refused a push: {resp}");
}

/// An Irisys count log (cumulative registers) to `counter-side` on `port` is taken.
fn irisys_push_taken(port: u16, id: u64, ins: u64, outs: u64) {
    let at = chrono::Utc::now() - chrono::Duration::seconds(600)
        + chrono::Duration::seconds(i64::try_from(id).unwrap() * 60);
    let body = format!(
        r#"{{"CountLogs":[{{"LogEntryId":{id},"Timestamp":"{}","Counts":[{{"Name":"Line 1 In","RegisterId":0,"Value":{ins}}},{{"Name":"Line 1 Out","RegisterId":1,"Value":{outs}}}]}}],"FriendlyDeviceSerial":"V4D-17020025"}}"#,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (status, resp) = post(port, "/counter/irisys", body.as_bytes());
    assert_eq!(status, 200, "counter-side refused a push: {resp}");
}

/// Scenarios: the file config runs (no version); v2 adds a counter alone; schema errors,
/// unknown keys, local changes and bad payloads are rejected with their codes and change
/// nothing.
#[test]
fn pushed_configs_are_applied_or_rejected_with_a_reason() {
    let g = Gateway::start("cfg-apply-watcher");
    let w = &g.w;
    let main_port = g.listener_port(MAIN);
    xovis_push_taken(main_port);

    // v2: the same config plus a second push counter on its own listener, retained as a fleet
    // publishes it. Only the new counter starts; counter-main keeps its listener.
    let side_port = free_port();
    let v2 = g.text("", &side_counter(side_port, ""));
    g.push_v2(&v2);
    let s = w.wait_for("status", 0, "the status of version 2", |v| {
        online(v) && v["config_version"] == json!(2)
    });
    println!("status after v2: {}", s.json());
    let names = w.source_names("s-1");
    assert!(
        names.iter().any(|n| n == MAIN) && names.iter().any(|n| n == SIDE),
        "{names:?}"
    );
    assert_eq!(g.applied_toml(), v2, "applied.toml is the pushed text");
    assert_eq!(g.applied_json()["version"], json!(2));
    xovis_push_taken(main_port);
    irisys_push_taken(side_port, 1, 100, 90);
    irisys_push_taken(side_port, 2, 104, 93);

    // v3: a string where a number goes.
    let r = w.desire(
        3,
        &g.text("", &side_counter(side_port, "max_body = \"lots\"")),
        false,
    );
    assert_rejected(&r, "bad_config", json!(2));
    g.assert_unchanged(2, "v3");

    // v4: a misspelt key in the second counter table: the reason names it.
    let r = w.desire(
        4,
        &g.text("", &side_counter(side_port, "intervall = \"5m\"")),
        false,
    );
    assert_rejected(&r, "bad_config", json!(2));
    assert!(
        r["reason"].as_str().unwrap().contains("intervall"),
        "the reason names the key: {r}"
    );
    g.assert_unchanged(2, "v4");

    // v5: another gateway id; v6: another [mqtt] table. Only a local change may do that.
    let other_gw = config_text(g.broker_port, "gw-2", "", &side_counter(side_port, ""));
    let r = w.desire(5, &other_gw, false);
    assert_rejected(&r, "needs_local_change", json!(2));
    let other_mqtt = v2.replace("telemetry_interval = \"1s\"", "telemetry_interval = \"2s\"");
    assert_ne!(other_mqtt, v2);
    let r = w.desire(6, &other_mqtt, false);
    assert_rejected(&r, "needs_local_change", json!(2));
    g.assert_unchanged(2, "v6");

    // Bad payloads, each with its code.
    let r = w.desire_raw(
        br#"{"version": 7, "config": "[store]\n"#,
        false,
        "the answer to malformed JSON",
    );
    assert_rejected(&r, "malformed_json", json!(2));
    let big = desired(7, &format!("{v2}\n# {}\n", "x".repeat(200 * 1024)));
    assert!(big.len() > 200 * 1024);
    let r = w.desire_raw(big.as_bytes(), false, "the answer to 200 KiB");
    assert_rejected(&r, "too_large", json!(2));
    let r = w.desire_raw(
        json!({ "config": v2 }).to_string().as_bytes(),
        false,
        "the answer to a desired config without a version",
    );
    assert_rejected(&r, "missing_version", json!(2));
    assert_eq!(r["version"], Value::Null, "{r}");
    let r = w.desire_raw(
        json!({ "version": "7", "config": v2 })
            .to_string()
            .as_bytes(),
        false,
        "the answer to a version that is not a number",
    );
    assert_rejected(&r, "missing_version", json!(2));
    g.assert_unchanged(2, "junk");
    assert_eq!(g.applied_toml(), v2, "applied.toml untouched");
    // The retained answer is the last one.
    let last = watcher(g.broker_port, "cfg-apply-watcher-2");
    let retained = last.next_reported(0, "the retained config/reported");
    assert_eq!(retained, r, "the last answer is retained");
    xovis_push_taken(main_port);
    irisys_push_taken(side_port, 3, 110, 95);
    g.no_panic();
}

/// Scenarios: a new poller that never reaches its device and a counter whose listen address
/// is taken are rolled back; older, equal and repeated versions are ignored and counted.
#[test]
fn failed_sources_roll_back_and_old_versions_are_ignored() {
    let g = Gateway::start("cfg-rollback-watcher");
    let w = &g.w;
    let side_port = free_port();
    let side = side_counter(side_port, "");
    let v2 = g.text("", &side);
    g.push_v2(&v2);
    assert_eq!(g.applied_json()["version"], json!(2));

    // v3: an AXIS poller whose device refuses connections: it counts poll errors, never
    // succeeds, and is judged within apply_timeout (3 s).
    let (_held, closed) = refusing_port();
    let poller = format!(
        "[[sources.counter]]\nname = \"counter-rear-poll\"\nprofile = \"counter/axis-people-counter\"\n\
         door = \"rear\"\nurl = \"http://127.0.0.1:{closed}\"\ninterval = \"1s\"\n\n"
    );
    let v3 = g.text("", &format!("{side}{poller}"));
    let v3_payload = desired(3, &v3);
    let r = w.desire_raw(v3_payload.as_bytes(), false, "the answer to v3");
    assert_eq!(
        (
            r["version"].clone(),
            r["result"].clone(),
            r["error"].clone()
        ),
        (json!(3), json!("rolled_back"), json!("source_failed")),
        "{r}"
    );
    assert_eq!(r["running_version"], json!(2), "{r}");
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("counter-rear-poll")),
        "the reason names the source: {r}"
    );
    let names = w.source_names("rb-1");
    assert!(
        !names.iter().any(|n| n == "counter-rear-poll"),
        "the poller still runs: {names:?}"
    );
    g.assert_unchanged(2, "v3");
    xovis_push_taken(g.listener_port(MAIN));
    irisys_push_taken(side_port, 1, 10, 5);

    // v4: a counter whose listen address someone else holds: it cannot start at all.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!(
        "[[sources.counter]]\nname = \"counter-busy\"\nprofile = \"counter/irisys-vector-4d\"\n\
         door = \"busy\"\nlisten = \"{}\"\n\n",
        held.local_addr().unwrap()
    );
    let r = w.desire(4, &g.text("", &format!("{side}{busy}")), false);
    assert_eq!(
        (r["result"].clone(), r["error"].clone()),
        (json!("rolled_back"), json!("start_failed")),
        "{r}"
    );
    assert_eq!(r["running_version"], json!(2), "{r}");
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("counter-busy")),
        "the reason names the source: {r}"
    );
    let names = w.source_names("rb-2");
    assert!(!names.iter().any(|n| n == "counter-busy"), "{names:?}");
    g.assert_unchanged(2, "v4");
    xovis_push_taken(g.listener_port(MAIN));
    irisys_push_taken(side_port, 2, 12, 6);
    drop(held);

    // Older (v1) and equal (v2) versions, and v3 again byte for byte: ignored, only counted.
    let n = w.on(REPORTED).len();
    let t = w.on("telemetry").len();
    let sent = Instant::now();
    w.publish(DESIRED, false, desired(1, &v2).as_bytes());
    w.publish(DESIRED, false, desired(2, &v2).as_bytes());
    w.publish(DESIRED, false, v3_payload.as_bytes());
    let m = w.mgmt_when(t, "the ignored versions counted", |m| {
        mgmt_count(m, "config_ignored_stale") >= 2 && mgmt_count(m, "config_ignored_repeat") >= 1
    });
    println!("management counters after the ignored versions: {m}");
    std::thread::sleep(QUIET.saturating_sub(sent.elapsed()));
    let extra: Vec<Value> = w.on(REPORTED).iter().skip(n).map(Msg::json).collect();
    assert!(
        extra.is_empty(),
        "ignored versions were answered: {extra:?}"
    );
    // And in order: the next answer on config/reported is the one to the next message.
    let r = w.desire_raw(b"{\"version\": ", false, "the answer to malformed JSON");
    assert_rejected(&r, "malformed_json", json!(2));
    g.assert_unchanged(2, "ignored");
    g.no_panic();
}

/// Scenarios: a global change restarts everything in-process; `reload` and `flush` answer
/// once per request id; after a restart the agent runs the applied fleet config.
#[test]
fn global_changes_commands_and_a_restart_keep_the_fleet_config() {
    let mut g = Gateway::start("cfg-global-watcher");
    let side_port = free_port();
    let side = side_counter(side_port, "");
    g.push_v2(&g.text("", &side));

    // v3 changes a metric threshold: every source and the pipeline restart, MQTT stays up.
    let log_mark = g.agent.log_lines().len();
    let v3 = g.text("[metrics]\nstaff_min_days = 4\n\n", &side);
    let r = g.w.desire(3, &v3, true);
    assert_applied(&r, 3, "all");
    let names = restarted(&r);
    for name in [MAIN, SIDE] {
        assert!(names.iter().any(|n| n == name), "{name} not restarted: {r}");
    }
    let w = &g.w;
    w.wait_for("status", 0, "the status of version 3", |v| {
        online(v) && v["config_version"] == json!(3)
    });
    let names = w.source_names("g-1");
    for name in [MAIN, SIDE] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    assert_eq!(g.applied_toml(), v3);
    assert_eq!(g.applied_json()["version"], json!(3));
    assert!(
        !g.agent.log_lines()[log_mark..]
            .iter()
            .any(|l| l.contains("management MQTT connection failed")),
        "the MQTT session dropped during the apply"
    );
    xovis_push_taken(g.listener_port(MAIN));
    irisys_push_taken(side_port, 1, 50, 40);

    // reload: the applied fleet config again, nothing changed.
    let r = w.command("reload", json!({"id": "reload-1"}));
    assert_eq!(r["ok"], true, "{r}");
    let res = &r["result"];
    assert_eq!(
        (res["result"].clone(), res["version"].clone()),
        (json!("applied"), json!(3)),
        "{r}"
    );
    assert_eq!(
        (res["scope"].clone(), res["restarted"].clone()),
        (json!("none"), json!([])),
        "nothing changed on disk: {r}"
    );

    // flush, then the same request id again: answered again, executed once.
    let t = w.on("telemetry").len();
    let before = w.mgmt_when(t, "telemetry after the reload", |_| true);
    let r = w.command("flush", json!({"id": "flush-1"}));
    assert_eq!(r["ok"], true, "{r}");
    let res = &r["result"];
    assert_eq!(res["checkpoint"], true, "{r}");
    assert!(
        res["visits"].is_u64() && res["hours"].is_u64(),
        "flush says what it sealed: {r}"
    );
    let again = w.command("flush", json!({"id": "flush-1"}));
    assert_eq!(again, r, "a repeated id gets the same reply");
    let t = w.on("telemetry").len();
    let after = w.mgmt_when(t, "telemetry after the repeated flush", |m| {
        mgmt_count(m, "commands_repeated") > mgmt_count(&before, "commands_repeated")
    });
    assert_eq!(
        mgmt_count(&after, "commands_executed"),
        mgmt_count(&before, "commands_executed") + 1,
        "flush-1 executed once: before {before}, after {after}"
    );

    // SIGTERM, then a start with the same --config file: the applied v3 runs (the file has
    // no counter-side), and the retained desired v3 is not applied again.
    let n_status = w.on("status").len();
    let n_reported = w.on(REPORTED).len();
    g.agent.terminate();
    assert!(
        g.agent.wait_exit(LIMIT).is_some_and(|s| s.success()),
        "clean exit; log:\n{}",
        g.agent.log_lines().join("\n")
    );
    g.no_panic();
    g.agent = Agent::start_live(&g.config);
    let w = &g.w;
    let s = w
        .wait_for("status", n_status, "online after the restart", online)
        .json();
    assert_eq!(s["config_version"], json!(3), "{s}");
    let names = w.source_names("g-2");
    for name in [MAIN, SIDE] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    irisys_push_taken(side_port, 2, 55, 41);
    xovis_push_taken(g.listener_port(MAIN));
    let t = w.on("telemetry").len();
    let m = w.mgmt_when(t, "the retained v3 counted as stale", |m| {
        mgmt_count(m, "config_ignored_stale") >= 1
    });
    println!("management counters after the restart: {m}");
    let extra: Vec<Value> = w
        .on(REPORTED)
        .iter()
        .skip(n_reported)
        .map(Msg::json)
        .collect();
    assert!(
        extra.is_empty(),
        "answered the retained v3 again: {extra:?}"
    );
    assert_eq!(g.w.fresh_status("g-3")["config_version"], json!(3));
    g.no_panic();
}

/// Scenario: without a fleet config, `reload` applies the edited config file.
#[test]
fn reload_picks_up_an_edited_config_file() {
    let g = Gateway::start("cfg-reload-watcher");
    let w = &g.w;
    let names = w.source_names("f-1");
    assert!(!names.iter().any(|n| n == SIDE), "{names:?}");
    let side_port = free_port();
    std::fs::write(&g.config, g.text("", &side_counter(side_port, ""))).unwrap();
    let r = w.command("reload", json!({"id": "reload-file-1"}));
    assert_eq!(r["ok"], true, "{r}");
    let res = &r["result"];
    assert_eq!(res["result"], "applied", "{r}");
    assert_eq!(res["scope"], "sources", "{r}");
    assert_eq!(restarted(res), vec![SIDE.to_string()], "{r}");
    let names = w.source_names("f-2");
    for name in [MAIN, SIDE] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    irisys_push_taken(side_port, 1, 7, 3);
    xovis_push_taken(g.listener_port(MAIN));
    let s = w.fresh_status("f-3");
    assert_eq!(s["config_version"], Value::Null, "no fleet version: {s}");
    g.no_panic();
}

/// The tenant secret portal logins are keyed with.
const TENANT: &str = "tenant_secret = \"22222222222222222222222222222222\"\n";
const HOOK: &str = "hook-a";
const RADIO: &str = "door-radio";
/// Probe requests in the Wi-Fi replay.
const PROBES: u64 = 60;

/// `door-radio` replaying `wifi.pcap` in `zone` (`extra` lines added), and the webhook portal
/// `hook-a` on 127.0.0.1:`hook_port` taking `token`.
fn lane_sources(zone: &str, extra: &str, hook_port: u16, token: &str) -> String {
    format!(
        "[[sources.wifi]]\nname = \"{RADIO}\"\nzone = \"{zone}\"\npcap = \"wifi.pcap\"\n{extra}\n\
         [[sources.portal]]\nname = \"{HOOK}\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:{hook_port}\"\n\
         [[sources.portal.tokens]]\nname = \"fleet\"\ntoken = \"{token}\"\n\n"
    )
}

/// A pcap of `PROBES` probe requests from two phones over the last ten minutes.
fn write_probes(path: &std::path::Path) {
    let mut w =
        edge_wire::pcap::Writer::new(std::fs::File::create(path).unwrap(), 127, 512).unwrap();
    let t0 = chrono::Utc::now().timestamp() - 600;
    for i in 0..PROBES {
        let mac = [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0a + (i % 2) as u8];
        let mut f = vec![
            0x00,
            0x00,
            0x09,
            0x00,
            0x20,
            0x00,
            0x00,
            0x00,
            (-50i8) as u8,
        ];
        f.extend_from_slice(&[0x40, 0x00, 0x00, 0x00]);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&mac);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x04, 0x0b, 0x16]);
        let at = t0 + i64::try_from(i).unwrap() * 10;
        w.write_packet(at * 1_000_000, &f).unwrap();
    }
    w.flush().unwrap();
}

/// A portal login of the phone with MAC `…:0{last}` through `hook-a`; the HTTP status.
fn login(port: u16, token: &str, last: u8) -> u16 {
    let body = format!(
        "{{\"mac\":\"00:1a:2b:00:00:{last:02x}\",\"phone\":\"+861370000{last:04}\",\"event\":\"login\",\"time\":{}}}",
        chrono::Utc::now().timestamp()
    );
    let auth = format!("Bearer {token}");
    edge_e2e::http_request(port, "POST", "/login", Some(&auth), body.as_bytes()).0
}

/// Scenarios: a changed portal webhook and a changed Wi-Fi source restart alone while the
/// store, the pipeline and the counters keep running; the Wi-Fi replay resumes from its cursor
/// (nothing read twice); logins before and after the change are all bound; a changed zone
/// list restarts the whole run.
#[test]
fn wifi_and_portal_changes_restart_only_those_sources() {
    let (token_a, token_b) = (
        "fleet-token-aaaaaaaaaaaaaaaaaaaa",
        "fleet-token-bbbbbbbbbbbbbbbbbbbb",
    );
    let hook_port = free_port();
    let gw = Gateway::start_with("lanes-watcher", TENANT, |d| {
        write_probes(&d.join("wifi.pcap"));
        lane_sources("entrance", "", hook_port, token_a)
    });
    let main_port = gw.listener_port(MAIN);
    let store_opens = || {
        gw.agent
            .log_lines()
            .iter()
            .filter(|l| l.contains("store open"))
            .count()
    };
    assert_eq!(store_opens(), 1);
    let frames_read = |id: &str| -> u64 {
        let r = gw.w.command("sources", json!({ "id": id }));
        r["result"]["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == RADIO))
            .and_then(|s| s["counters"]["frames_read"].as_u64())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + LIMIT;
    let mut polls = 0;
    while frames_read(&format!("read-{polls}")) < PROBES {
        polls += 1;
        assert!(Instant::now() < deadline, "the replay did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(frames_read("read-before"), PROBES);
    assert_eq!(login(hook_port, token_a, 10), 202);

    // v2: the webhook takes another token. Only it restarts.
    let v2 = gw.text("", &lane_sources("entrance", "", hook_port, token_b));
    let r = gw.w.desire(2, &v2, true);
    assert_applied(&r, 2, "sources");
    assert_eq!(restarted(&r), [HOOK], "only the webhook: {r}");
    assert_eq!(
        login(hook_port, token_a, 11),
        401,
        "the old token still works"
    );
    assert_eq!(login(hook_port, token_b, 11), 202);
    assert_eq!(gw.listener_port(MAIN), main_port);
    xovis_push_taken(main_port);

    // v3: the Wi-Fi source's table changes (its zone does not). It restarts alone and resumes
    // at the end of its file: the restored counter does not double.
    let v3 = gw.text(
        "",
        &lane_sources("entrance", "snaplen = 256\n", hook_port, token_b),
    );
    let r = gw.w.desire(3, &v3, true);
    assert_applied(&r, 3, "sources");
    assert_eq!(restarted(&r), [RADIO], "only the radio: {r}");
    assert!(
        gw.agent
            .wait_for_log("source joined the merge", Duration::from_secs(1))
            .is_some(),
        "no lane change logged"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(frames_read("read-after"), PROBES, "the replay started over");
    assert_eq!(
        store_opens(),
        1,
        "the store was reopened: the whole run restarted"
    );
    assert_eq!(login(hook_port, token_b, 12), 202);

    // Every login, before and after both changes, is bound to its device.
    let deadline = Instant::now() + LIMIT;
    loop {
        let bound = edge_e2e::count(&gw.data(), "device_persons");
        if bound == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bound} of 3 logins bound; log:\n{}",
            gw.agent.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // v4: a new zone changes the zone list the pipeline labels visits with: the whole run
    // restarts.
    let v4 = gw.text("", &lane_sources("checkout", "", hook_port, token_b));
    let r = gw.w.desire(4, &v4, true);
    assert_applied(&r, 4, "all");
    assert_eq!(store_opens(), 2);
    assert_eq!(login(hook_port, token_b, 13), 202);
    gw.no_panic();
}
