//! MQTT management through a real Mosquitto broker: the running agent publishes its retained
//! status (online at start, republished after the broker restarts, offline from the agent
//! itself on SIGTERM and from the broker's Last Will after `kill -9`), telemetry with the
//! documented fields, alert events raised once and cleared, and answers commands once per
//! request id. Bad requests (malformed JSON, no id, oversized, unknown command, bad fields) get
//! an error reply and are counted; another gateway's command topic is never answered.
//!
//! Mosquitto is required (`scripts/test.sh` installs it). The test side uses rumqttc's blocking
//! client, subscribed to everything under `storeedge/`.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use edge_e2e::mosquitto::{free_port, Broker, Msg, Watcher};
use edge_e2e::Agent;
use serde_json::{json, Value};

const STORE: &str = "mgmt-store";
const GATEWAY: &str = "gw-1";
const ROOT: &str = "storeedge/mgmt-store/gw-1/";
const KEEP_ALIVE_S: u64 = 5;
const LIMIT: Duration = Duration::from_secs(30);

/// Writes a counter-only gateway config (`extra_sources` added) with `[mqtt]` at `broker`
/// (`mqtt_extra` may end with `[mqtt.tls]`).
fn write_config(d: &Path, broker: &str, mqtt_extra: &str, extra_sources: &str) -> PathBuf {
    std::fs::write(
        d.join("secrets.toml"),
        "device_key_secret = \"11111111111111111111111111111111\"\n",
    )
    .unwrap();
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nstore_id = \"{STORE}\"\ngateway_id = \"{GATEWAY}\"\ntimezone = \"UTC\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [mqtt]\nbroker = \"{broker}\"\nkeep_alive = \"{KEEP_ALIVE_S}s\"\n\
             telemetry_interval = \"1s\"\n{mqtt_extra}\n\
             [[sources.counter]]\nname = \"counter-main\"\nprofile = \"counter/xovis-pc2s-v5\"\n\
             door = \"main\"\nlisten = \"127.0.0.1:0\"\n\n{extra_sources}"
        ),
    )
    .unwrap();
    config
}

fn no_panic(agent: &Agent) {
    let log = agent.log_lines();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "the agent panicked:\n{}",
        log.join("\n")
    );
}

fn wait_log(agent: &Agent, pattern: &str, limit: Duration) -> String {
    agent.wait_for_log(pattern, limit).unwrap_or_else(|| {
        panic!(
            "no log line with {pattern:?}; log:\n{}",
            agent.log_lines().join("\n")
        )
    })
}

fn online(v: &Value) -> bool {
    v["online"] == json!(true)
}

#[test]
fn status_commands_and_telemetry_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut broker = Broker::start(d, port);
    let config = write_config(d, &format!("127.0.0.1:{port}"), "low_disk_bytes = 1\n", "");
    let mut agent = Agent::start_live(&config);
    wait_log(&agent, "management MQTT subscribed", LIMIT);

    // A subscriber that comes later still sees the gateway online: the status is retained.
    let w = Watcher::start(port, "mgmt-test-watcher", ROOT);
    let status = w.wait_for("status", 0, "the retained status", online);
    assert!(status.retain, "status is retained");
    let s = status.json();
    assert_eq!(s["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        (s["store_id"].clone(), s["gateway_id"].clone()),
        (json!(STORE), json!(GATEWAY))
    );
    assert!(s["started_ms"].as_i64().unwrap() > 1_700_000_000_000, "{s}");
    assert_eq!(s["config_version"], Value::Null);
    let sources = s["sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .any(|x| x["name"] == "counter-main" && x["kind"] == "counter"),
        "{s}"
    );

    // Telemetry, every second, with every documented field.
    let t = w.wait_for("telemetry", 0, "telemetry", |_| true).json();
    for field in [
        "at_ms",
        "uptime_s",
        "frames_per_s",
        "capture_drops",
        "capture_drops_new",
        "open_visits",
        "outbox_records",
        "outbox_unacked",
        "dropped_unacked",
        "database_bytes",
        "free_disk_bytes",
        "last_receipt_age_s",
        "last_counter_interval_age_s",
        "errors",
        "mgmt",
        "sources",
        "alerts",
    ] {
        assert!(t.get(field).is_some(), "telemetry lacks {field}: {t}");
    }
    assert!(t["database_bytes"].as_u64().unwrap() > 0, "{t}");
    assert!(t["free_disk_bytes"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["last_receipt_age_s"], Value::Null, "no receipt yet");
    assert_eq!(t["alerts"], json!([]), "{t}");
    // The first tick judged the sources (nobody pushed: idle) and republished the status.
    w.wait_for("status", 0, "the judged status", |v| {
        online(v)
            && v["sources"]
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["state"] == "idle"))
    });

    // ping and sources.
    let r = w.command("ping", json!({"id": "p-1"}));
    assert_eq!(
        (r["ok"].clone(), r["result"]["pong"].clone()),
        (json!(true), json!(true)),
        "{r}"
    );
    let again = w.command("ping", json!({"id": "p-1"}));
    assert_eq!(
        again, r,
        "a repeated id gets the same reply (same at_ms: not executed again)"
    );
    let r = w.command("sources", json!({"id": "s-1"}));
    let main = r["result"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "counter-main")
        .cloned()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(main["kind"], "counter");
    assert_eq!(main["state"], "idle");
    assert_eq!(main["counters"]["payloads_read"], 0, "{main}");

    // rebirth republishes the status once per request id.
    let before = w.on("status").len();
    let r = w.command("rebirth", json!({"id": "r-1"}));
    assert_eq!(r["ok"], true, "{r}");
    w.wait_for("status", before, "the rebirth status", online);
    let again = w.command("rebirth", json!({"id": "r-1"}));
    assert_eq!(again, r);
    // The reply follows the status it caused on the same connection: had the repeat
    // executed, its status would be here by now.
    assert_eq!(
        w.on("status").len(),
        before + 1,
        "rebirth r-1 executed once"
    );
    let r = w.command("rebirth", json!({"id": "r-2"}));
    assert_eq!(r["ok"], true, "{r}");
    w.wait_for("status", before + 1, "the second rebirth", online);

    // Bad input: an error reply with a reason, counted; never a panic.
    let err = |name: &str, payload: &[u8]| {
        let topic = format!("cmd/{name}/reply");
        let n = w.on(&topic).len();
        w.publish(&format!("{ROOT}cmd/{name}"), false, payload);
        w.wait_for(&topic, n, "an error reply", |v| v["ok"] == json!(false))
            .json()
    };
    let r = err("ping", b"{\"id\": \"m-1\", ");
    assert_eq!(
        (r["id"].clone(), r["reason"].clone()),
        (Value::Null, json!("malformed_json")),
        "{r}"
    );
    let r = err("ping", b"{\"hello\": 1}");
    assert_eq!(r["reason"], "missing_id", "{r}");
    let big = format!(r#"{{"id": "big-1", "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let r = err("ping", big.as_bytes());
    assert_eq!(r["reason"], "too_large", "{r}");
    let r = w.command("reboot", json!({"id": "u-1"}));
    assert_eq!(
        (r["ok"].clone(), r["reason"].clone()),
        (json!(false), json!("unknown_command")),
        "{r}"
    );
    let r = w.command("set-log-level", json!({"id": "l-1", "level": "loud"}));
    assert_eq!(r["reason"], "bad_request", "{r}");
    // The pipeline seals what it can now; a reload of an unchanged file changes nothing.
    let r = w.command("flush", json!({"id": "flush-1"}));
    assert_eq!(
        (r["ok"].clone(), r["result"]["checkpoint"].clone()),
        (json!(true), json!(true)),
        "{r}"
    );
    let r = w.command("reload", json!({"id": "reload-1"}));
    assert_eq!(
        (r["result"]["result"].clone(), r["result"]["scope"].clone()),
        (json!("applied"), json!("none")),
        "{r}"
    );
    // Another gateway's command topic: not this agent's business, never answered.
    w.publish(
        "storeedge/mgmt-store/gw-2/cmd/ping",
        false,
        br#"{"id": "other-1"}"#,
    );
    w.command("ping", json!({"id": "p-after-other"}));
    assert!(
        !w.all().iter().any(|m| m
            .topic
            .starts_with("storeedge/mgmt-store/gw-2/cmd/ping/reply")),
        "another gateway's command was answered"
    );

    // set-log-level changes the filter at run time.
    assert!(
        !agent.log_lines().iter().any(|l| l.contains("DEBUG")),
        "debug lines before the change"
    );
    let r = w.command("set-log-level", json!({"id": "l-2", "level": "debug"}));
    assert_eq!(r["result"]["filter"], "info,edge_agent=debug", "{r}");
    w.command("ping", json!({"id": "p-2"}));
    wait_log(
        &agent,
        "management command executed",
        Duration::from_secs(10),
    );
    let r = w.command("set-log-level", json!({"id": "l-3", "filter": "info"}));
    assert_eq!(r["ok"], true, "{r}");

    // Every rejection is counted in the telemetry.
    let n = w.on("telemetry").len();
    let t = w
        .wait_for("telemetry", n, "telemetry with the counters", |v| {
            v["mgmt"]["mqtt_rejected_bad_request"] == json!(1)
        })
        .json();
    let m = &t["mgmt"];
    for (name, want) in [
        ("mqtt_rejected_malformed_json", 1),
        ("mqtt_rejected_missing_id", 1),
        ("mqtt_rejected_too_large", 1),
        ("mqtt_rejected_unknown_command", 1),
        ("mqtt_rejected_bad_request", 1),
        ("commands_repeated", 2),
    ] {
        assert_eq!(m[name], want, "{name}: {t}");
    }
    println!("management counters after the bad input: {m}");

    // The broker crashes and comes back without its retained messages: the agent reconnects
    // and publishes its status again.
    broker.kill();
    wait_log(&agent, "management MQTT connection failed", LIMIT);
    let restarted = Instant::now();
    let _broker = Broker::start(d, port);
    let fresh = Watcher::start(port, "mgmt-test-watcher-2", ROOT);
    let s = fresh.wait_for("status", 0, "the status after the broker restart", online);
    println!(
        "status republished {:.1} s after the broker restarted",
        (s.at - restarted).as_secs_f64()
    );
    let r = fresh.command("ping", json!({"id": "p-3"}));
    assert_eq!(r["ok"], true, "commands work after the reconnection: {r}");
    drop(w);

    // SIGTERM: the agent publishes the offline status itself before it disconnects.
    let n = fresh.on("status").len();
    agent.terminate();
    let off = fresh.wait_for("status", n, "the shutdown status", |v| {
        v["online"] == json!(false)
    });
    assert_eq!(off.json()["reason"], "shutdown", "{}", off.json());
    assert!(
        agent.wait_exit(LIMIT).is_some_and(|s| s.success()),
        "clean exit; log:\n{}",
        agent.log_lines().join("\n")
    );
    wait_log(&agent, "offline_published=true", Duration::from_secs(1));
    no_panic(&agent);
    // And it stays there for whoever looks next.
    let last = Watcher::start(port, "mgmt-test-watcher-3", ROOT);
    let s = last.wait_for("status", 0, "the retained offline status", |_| true);
    assert!(s.retain);
    assert_eq!(
        (s.json()["online"].clone(), s.json()["reason"].clone()),
        (json!(false), json!("shutdown"))
    );
}

#[test]
fn kill_9_and_a_frozen_agent_leave_the_last_will() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let _broker = Broker::start(d, port);
    let config = write_config(d, &format!("127.0.0.1:{port}"), "", "");
    let agent = Agent::start_live(&config);
    wait_log(&agent, "management MQTT subscribed", LIMIT);
    let w = Watcher::start(port, "mgmt-lwt-watcher", ROOT);
    w.wait_for("status", 0, "online", online);

    // A frozen agent (SIGSTOP) keeps its TCP connection open but sends nothing: only the
    // keep-alive can tell. MQTT gives the broker 1.5 × keep-alive after the last packet;
    // mosquitto 2.0 checks keep-alives coarsely (a silent raw client with a 2 s keep-alive is
    // dropped after about 7 s), so the time is printed, not held to 1.5 × keep-alive.
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &agent.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    let n = w.on("status").len();
    let stopped = Instant::now();
    signal("-STOP");
    let will = w.wait_for("status", n, "the Last Will of a frozen agent", |v| {
        v["online"] == json!(false)
    });
    let latency = will.at - stopped;
    signal("-CONT");
    println!(
        "offline status {:.0} ms after SIGSTOP (keep-alive {KEEP_ALIVE_S} s)",
        latency.as_secs_f64() * 1000.0
    );
    assert_eq!(will.json()["reason"], "connection_lost", "{}", will.json());
    // Thawed, the agent finds its connection closed, reconnects and is online again.
    w.wait_for("status", n + 1, "online after the thaw", online);

    let n = w.on("status").len();
    let killed = Instant::now();
    agent.kill9();
    let will = w.wait_for("status", n, "the Last Will", |v| {
        v["online"] == json!(false)
    });
    let latency = will.at - killed;
    println!(
        "offline status {:.0} ms after kill -9 (keep-alive {KEEP_ALIVE_S} s)",
        latency.as_secs_f64() * 1000.0
    );
    assert_eq!(will.json()["reason"], "connection_lost", "{}", will.json());
    assert!(
        latency < Duration::from_millis(1500 * KEEP_ALIVE_S),
        "the Last Will took {latency:?}"
    );
    let fresh = Watcher::start(port, "mgmt-lwt-watcher-2", ROOT);
    let s = fresh.wait_for("status", 0, "the retained Last Will", |_| true);
    assert!(s.retain);
    assert_eq!(s.json()["online"], false);
}

/// The port the agent's counter listener logged.
fn listener_port(agent: &Agent) -> u16 {
    edge_e2e::logged_port(&wait_log(agent, "counter listener", LIMIT))
        .expect("counter listener port logged")
}

/// Posts an Irisys count log (cumulative registers) at `at` to the agent's listener.
fn irisys(port: u16, id: u64, at: chrono::DateTime<chrono::Utc>, ins: u64, outs: u64) {
    use std::io::{Read, Write};
    let body = format!(
        r#"{{"CountLogs":[{{"LogEntryId":{id},"Timestamp":"{}","Counts":[{{"Name":"Line 1 In","RegisterId":0,"Value":{ins}}},{{"Name":"Line 1 Out","RegisterId":1,"Value":{outs}}}]}}],"FriendlyDeviceSerial":"V4D-17020025"}}"#,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /counter/irisys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[test]
fn alerts_are_raised_once_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let _broker = Broker::start(d, port);
    // A counter whose broker does not exist (down), a disk threshold no disk meets, and
    // counters that must report every 3 s.
    let dead = free_port();
    let config = write_config(
        d,
        &format!("127.0.0.1:{port}"),
        "low_disk_bytes = 1000000000000000000\ncounter_silence = \"3s\"\n",
        &format!(
            "[[sources.counter]]\nname = \"door-iris\"\nprofile = \"counter/irisys-vector-4d\"\n\
             door = \"side\"\nlisten = \"127.0.0.1:0\"\nlines = [\"Line 1\"]\n\n\
             [[sources.counter]]\nname = \"door-lift\"\nprofile = \"counter/milesight-vs133\"\n\
             door = \"lift\"\nbroker = \"127.0.0.1:{dead}\"\n"
        ),
    );
    let w = Watcher::start(port, "mgmt-alert-watcher", ROOT);
    let mut agent = Agent::start_live(&config);
    let http = listener_port(&agent);
    let event = |name: &'static str, source: Option<&'static str>| {
        move |v: &Value| v["event"] == name && source.is_none_or(|s| v["source"] == s)
    };
    let e = w
        .wait_for("events", 0, "disk_low", event("disk_low", None))
        .json();
    assert_eq!(
        e["threshold_bytes"],
        json!(1_000_000_000_000_000_000u64),
        "{e}"
    );
    w.wait_for(
        "events",
        0,
        "source_down",
        event("source_down", Some("door-lift")),
    );
    w.wait_for("status", 0, "the failing source in the status", |v| {
        v["sources"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["name"] == "door-lift" && x["state"] == "failing")
        })
    });
    w.wait_for(
        "events",
        0,
        "counter_silent",
        event("counter_silent", Some("door-iris")),
    );
    // The Irisys counter reports: the first log sets the baseline, the second stores an
    // interval ending now.
    let now = chrono::Utc::now();
    irisys(http, 1, now - chrono::Duration::seconds(60), 100, 90);
    irisys(http, 2, now, 104, 93);
    w.wait_for(
        "events",
        0,
        "counter_silent_cleared",
        event("counter_silent_cleared", Some("door-iris")),
    );
    let t = w
        .wait_for(
            "telemetry",
            0,
            "telemetry with the alert and the interval",
            |v| {
                v["alerts"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("disk_low")))
                    && v["last_counter_interval_age_s"].is_number()
            },
        )
        .json();
    assert!(t["errors"]["mqtt_errors"].as_u64().unwrap_or(0) >= 1, "{t}");
    // Several ticks later still one disk_low and one source_down: raised once per episode.
    let n = w.on("telemetry").len();
    w.wait_for("telemetry", n + 2, "two more ticks", |_| true);
    let count = |name: &str, source: Option<&str>| {
        w.on("events")
            .iter()
            .map(Msg::json)
            .filter(|v| v["event"] == name && source.is_none_or(|s| v["source"] == s))
            .count()
    };
    assert_eq!(count("disk_low", None), 1);
    assert_eq!(count("source_down", Some("door-lift")), 1);
    assert_eq!(count("source_down_cleared", Some("door-lift")), 0);
    let raised = w.on("events").iter().map(Msg::json).collect::<Vec<_>>();
    println!("alert events: {}", serde_json::to_string(&raised).unwrap());
    agent.terminate();
    assert!(agent.wait_exit(LIMIT).is_some_and(|s| s.success()));
    no_panic(&agent);
}

/// A test CA, and a server ("localhost") and a client certificate it signed: (CA, server
/// cert, server key, client cert, client key), PEM.
fn pki() -> [String; 5] {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "store-edge test fleet CA");
    let ca = p.self_signed(&key).unwrap().pem();
    let issuer = Issuer::new(p, key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf("localhost");
    let (client, client_key) = leaf("gw-1");
    [ca, server, server_key, client, client_key]
}

/// The agent reaches a broker that demands TLS, a client certificate and a password; the
/// operator's side (a plaintext listener of the same broker) sees its status and commands work.
#[test]
fn tls_with_a_client_certificate_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [ca, server, server_key, client, client_key] = pki();
    for (name, pem) in [
        ("ca.pem", &ca),
        ("server.pem", &server),
        ("server.key", &server_key),
        ("client.pem", &client),
        ("client.key", &client_key),
    ] {
        std::fs::write(d.join(name), pem).unwrap();
    }
    let passwd = d.join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args([GATEWAY, "fleet-password-0042"])
        .status()
        .expect("running mosquitto_passwd (installed with mosquitto)");
    assert!(made.success());
    std::fs::write(d.join("mqtt-password"), "fleet-password-0042\n").unwrap();
    let (tls_port, plain_port) = (free_port(), free_port());
    let p = |name: &str| d.join(name).display().to_string();
    let _broker = Broker::with_config(
        d,
        &format!(
            "per_listener_settings true\n\
             listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\nallow_anonymous false\npassword_file {}\n\
             listener {plain_port} 127.0.0.1\nallow_anonymous true\n",
            p("ca.pem"),
            p("server.pem"),
            p("server.key"),
            p("passwd"),
        ),
        tls_port,
    );
    let config = write_config(
        d,
        &format!("localhost:{tls_port}"),
        &format!(
            "username = \"{GATEWAY}\"\npassword_file = \"mqtt-password\"\n\
             [mqtt.tls]\nca_file = \"ca.pem\"\ncert_file = \"client.pem\"\nkey_file = \"client.key\"\n"
        ),
        "",
    );
    let mut agent = Agent::start_live(&config);
    wait_log(&agent, "tls=true", LIMIT);
    wait_log(&agent, "management MQTT subscribed", LIMIT);
    let w = Watcher::start(plain_port, "mgmt-tls-watcher", ROOT);
    let s = w.wait_for("status", 0, "the status over TLS", online);
    assert!(s.retain);
    let r = w.command("ping", json!({"id": "tls-1"}));
    assert_eq!(r["ok"], true, "{r}");
    agent.terminate();
    assert!(agent.wait_exit(LIMIT).is_some_and(|s| s.success()));
    wait_log(&agent, "offline_published=true", Duration::from_secs(1));
    no_panic(&agent);
    let log = agent.log_lines().join("\n");
    assert!(
        !log.contains("fleet-password-0042"),
        "the password was logged"
    );
}
