//! Door counters publishing over MQTT through a real Mosquitto broker to the running agent:
//! a Milesight VS133 behind a LoRaWAN gateway (base64 TLV running totals in a JSON envelope)
//! and a bridge publishing JSON interval counts, each its own `[[sources.counter]]`.
//!
//! Running totals are differenced (the first uplink sets the baseline, a drop is a reset
//! counting from zero), JSON intervals are stored exactly and a repeated one counts once, bad
//! payloads (malformed JSON, wrong types, bad base64) are counted by reason and change no
//! count, messages on another gateway's or an unrelated topic never reach a source, and after
//! the broker is killed and started again the agent reconnects, subscribes again and stores
//! what is published next; messages published while the agent is stopped reach it when it
//! starts again (persistent sessions), differenced against the stored baselines. The agent
//! never panics.
//!
//! Mosquitto is required (`scripts/test.sh` installs it); the publisher is a minimal MQTT 3.1.1
//! client over a plain `TcpStream` (CONNECT, PUBLISH QoS 1, PUBACK, DISCONNECT).

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use edge_e2e::mosquitto::{free_port, Broker};
use edge_e2e::{counter, open_db, Agent};

const MAIN: &str = "door-main";
const SIDE: &str = "door-side";
const MAIN_TOPIC: &str = "milesight/uplink/gw-main";
const OTHER_GATEWAY_TOPIC: &str = "milesight/uplink/gw-other";
const SIDE_TOPIC: &str = "counters/bridge-1/interval";
const UNRELATED_TOPIC: &str = "counters/bridge-1/status";

/// An MQTT packet: fixed header byte, remaining length (variable-length integer), body.
fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Publishes `payload` to `topic` with QoS 1 and waits for the broker's PUBACK.
fn publish(port: u16, topic: &str, payload: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // CONNECT: protocol "MQTT" level 4 (3.1.1), clean session, keep-alive 30 s.
    let mut connect = Vec::new();
    put_str(&mut connect, "MQTT");
    connect.extend_from_slice(&[4, 0x02]);
    connect.extend_from_slice(&30u16.to_be_bytes());
    put_str(&mut connect, "counter-mqtt-test-publisher");
    s.write_all(&packet(0x10, &connect)).unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
    // PUBLISH, QoS 1, packet id 1.
    let mut body = Vec::new();
    put_str(&mut body, topic);
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(payload);
    s.write_all(&packet(0x32, &body)).unwrap();
    let mut puback = [0u8; 4];
    s.read_exact(&mut puback).unwrap();
    assert_eq!(puback, [0x40, 0x02, 0x00, 0x01], "PUBACK of packet 1");
    s.write_all(&[0xE0, 0x00]).unwrap();
}

/// RFC 4648 base64, as a LoRaWAN network server writes `data`.
fn base64(raw: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A gateway's uplink message: battery 90 %, line 1 running totals and period counts, as
/// VS133 TLV records (channel, type, little-endian data) in base64 under "data".
fn uplink(fcnt: u32, ins: u32, outs: u32) -> Vec<u8> {
    let mut tlv = vec![0x01, 0x75, 0x5A, 0x03, 0xD2];
    tlv.extend_from_slice(&ins.to_le_bytes());
    tlv.extend_from_slice(&[0x04, 0xD2]);
    tlv.extend_from_slice(&outs.to_le_bytes());
    tlv.extend_from_slice(&[0x05, 0xCC, 0x01, 0x00, 0x01, 0x00]);
    serde_json::json!({
        "applicationID": "1",
        "deviceName": "VS133 main door",
        "devEUI": "24e1240000000133",
        "fCnt": fcnt,
        "fPort": 85,
        "data": base64(&tlv),
    })
    .to_string()
    .into_bytes()
}

/// A bridge's interval message.
fn interval(start_ms: i64, minutes: i64, ins: u32, outs: u32) -> Vec<u8> {
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    };
    serde_json::json!({
        "device": "bridge-1",
        "line": "entrance",
        "from": t(start_ms),
        "to": t(start_ms + minutes * 60_000),
        "counts": {"in": ins, "out": outs},
    })
    .to_string()
    .into_bytes()
}

/// (ins, outs, intervals) stored by `source`, newest revision of each interval.
fn sums(data: &Path, source: &str) -> (u64, u64, u64) {
    let db = open_db(data);
    db.query_row(
        "SELECT COALESCE(sum(ins), 0), COALESCE(sum(outs), 0), count(*) FROM counter_intervals c
         WHERE source = ?1 AND revision = (SELECT max(revision) FROM counter_intervals d
           WHERE d.interval_key = c.interval_key)",
        [source],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )
    .unwrap()
}

fn wait_until(agent: &Agent, limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; agent log:\n{}",
            agent.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Log lines of `source` containing `pattern`.
fn log_count(agent: &Agent, source: &str, pattern: &str) -> usize {
    let tag = format!("source={source}");
    agent
        .log_lines()
        .iter()
        .filter(|l| l.contains(pattern) && l.contains(&tag))
        .count()
}

#[test]
fn counters_over_mqtt_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut broker = Broker::start(d, port);
    std::fs::write(
        d.join("secrets.toml"),
        "device_key_secret = \"11111111111111111111111111111111\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("config.toml"),
        format!(
            "[store]\nstore_id = \"mqtt-store\"\ngateway_id = \"gw-1\"\ntimezone = \"UTC\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [[sources.counter]]\nname = \"{MAIN}\"\nprofile = \"counter/milesight-vs133\"\n\
             door = \"main\"\nbroker = \"127.0.0.1:{port}\"\ntopic = \"{MAIN_TOPIC}\"\n\n\
             [[sources.counter]]\nname = \"{SIDE}\"\nprofile = \"counter/mqtt-json-interval\"\n\
             door = \"side\"\nbroker = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let data = d.join("data");
    let mut agent = Agent::start_live(&d.join("config.toml"));
    let limit = Duration::from_secs(30);
    wait_until(&agent, limit, "both sources to subscribe", || {
        log_count(&agent, MAIN, "counter MQTT subscribed") == 1
            && log_count(&agent, SIDE, "counter MQTT subscribed") == 1
    });

    // Milesight: 72/60 sets the baseline, 80/65 counts 8/5.
    publish(port, MAIN_TOPIC, &uplink(1, 72, 60));
    wait_until(&agent, limit, "the baseline", || {
        counter(&data, MAIN, "baselined") == 1
    });
    assert_eq!(
        sums(&data, MAIN),
        (0, 0, 0),
        "the first uplink stores nothing"
    );
    publish(port, MAIN_TOPIC, &uplink(2, 80, 65));
    wait_until(&agent, limit, "the second uplink", || {
        counter(&data, MAIN, "readings") == 2
    });
    assert_eq!(sums(&data, MAIN), (8, 5, 1));
    // The counter restarts (power loss): 3/1 are the people since, not −77/−64.
    publish(port, MAIN_TOPIC, &uplink(3, 3, 1));
    wait_until(&agent, limit, "the reset uplink", || {
        counter(&data, MAIN, "readings") == 3
    });
    assert_eq!(sums(&data, MAIN), (11, 6, 2));
    assert_eq!(counter(&data, MAIN, "resets"), 2, "in and out both reset");

    // JSON intervals, one repeated.
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = now - now % 60_000 - 30 * 60_000;
    publish(port, SIDE_TOPIC, &interval(t0, 15, 14, 9));
    wait_until(&agent, limit, "the first interval", || {
        sums(&data, SIDE).2 == 1
    });
    publish(port, SIDE_TOPIC, &interval(t0, 15, 14, 9));
    wait_until(&agent, limit, "the repeat", || {
        counter(&data, SIDE, "duplicates") >= 1
    });
    publish(port, SIDE_TOPIC, &interval(t0 + 15 * 60_000, 15, 6, 4));
    wait_until(&agent, limit, "the second interval", || {
        sums(&data, SIDE).2 == 2
    });
    assert_eq!(sums(&data, SIDE), (20, 13, 2));

    // Another gateway's uplink and an unrelated topic: not subscribed, never seen. Published
    // before the bad messages below, which the broker delivers after them.
    publish(port, OTHER_GATEWAY_TOPIC, &uplink(9, 500, 400));
    publish(port, UNRELATED_TOPIC, &interval(t0, 15, 50, 50));

    // Bad payloads: counted by reason, nothing stored.
    publish(port, SIDE_TOPIC, b"{\"line\": \"entrance\", \"from\":");
    let mut wrong = serde_json::from_slice::<serde_json::Value>(&interval(t0, 15, 1, 1)).unwrap();
    wrong["counts"]["in"] = serde_json::json!("14");
    publish(port, SIDE_TOPIC, wrong.to_string().as_bytes());
    publish(
        port,
        MAIN_TOPIC,
        br#"{"devEUI": "24e1240000000133", "fPort": 85, "data": "A9JI!AAAB#I8AAAA"}"#,
    );
    wait_until(&agent, limit, "the bad payloads to be counted", || {
        counter(&data, SIDE, "rejected_malformed_json") == 1
            && counter(&data, SIDE, "rejected_wrong_type") == 1
            && counter(&data, MAIN, "rejected_bad_text") == 1
    });
    assert_eq!(sums(&data, MAIN), (11, 6, 2));
    assert_eq!(sums(&data, SIDE), (20, 13, 2));
    // Everything each source received: 3 uplinks + 1 bad; 3 intervals + 2 bad.
    assert_eq!(counter(&data, MAIN, "mqtt_messages"), 4);
    assert_eq!(counter(&data, SIDE, "mqtt_messages"), 5);
    assert_eq!(counter(&data, MAIN, "readings"), 3);

    // The broker crashes and comes back (no persistence: it forgot every session).
    broker.kill();
    wait_until(&agent, limit, "the agent to notice", || {
        log_count(&agent, MAIN, "counter MQTT connection failed") >= 1
            && log_count(&agent, SIDE, "counter MQTT connection failed") >= 1
    });
    let _broker = Broker::start(d, port);
    wait_until(
        &agent,
        Duration::from_secs(90),
        "both sources to subscribe again",
        || {
            log_count(&agent, MAIN, "counter MQTT subscribed") == 2
                && log_count(&agent, SIDE, "counter MQTT subscribed") == 2
        },
    );
    publish(port, MAIN_TOPIC, &uplink(4, 10, 5));
    publish(port, SIDE_TOPIC, &interval(t0 + 30 * 60_000, 1, 2, 1));
    wait_until(&agent, limit, "counts published after the restart", || {
        sums(&data, MAIN).2 == 3 && sums(&data, SIDE).2 == 3
    });
    // Differenced against the last uplink before the crash: 3/1 → 10/5.
    assert_eq!(sums(&data, MAIN), (18, 10, 3));
    assert_eq!(sums(&data, SIDE), (22, 14, 3));
    for source in [MAIN, SIDE] {
        assert!(counter(&data, source, "mqtt_connects") >= 2, "{source}");
        assert!(counter(&data, source, "mqtt_errors") >= 1, "{source}");
    }

    agent.terminate();
    assert!(
        agent
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "clean exit; log:\n{}",
        agent.log_lines().join("\n")
    );
    let log = agent.log_lines();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "the agent panicked:\n{}",
        log.join("\n")
    );
    for source in [MAIN, SIDE] {
        assert_eq!(
            log_count(&agent, source, "counter MQTT subscriber stopped"),
            1,
            "{source} stopped cleanly"
        );
    }

    // Published while the agent is down: the broker keeps them for its persistent sessions and
    // delivers them when it is back; the baselines were stored with the counts (10/5 → 12/6).
    publish(port, SIDE_TOPIC, &interval(t0 + 31 * 60_000, 1, 3, 0));
    publish(port, MAIN_TOPIC, &uplink(5, 12, 6));
    let mut agent = Agent::start_live(&d.join("config.toml"));
    wait_until(
        &agent,
        limit,
        "the messages queued while it was down",
        || sums(&data, MAIN).2 == 4 && sums(&data, SIDE).2 == 4,
    );
    assert_eq!(sums(&data, MAIN), (20, 11, 4));
    assert_eq!(sums(&data, SIDE), (25, 14, 4));
    agent.terminate();
    assert!(agent
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    let log = agent.log_lines();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "the agent panicked:\n{}",
        log.join("\n")
    );
}
