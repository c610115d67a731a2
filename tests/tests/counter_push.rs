//! Door counters pushing to the running agent over real HTTP: every push dialect (Xovis v5 and
//! legacy, Brickstream, Irisys, Hikvision event XML and multipart) on one listener, told apart
//! by path; Bearer and Basic auth; a repeated push counted once; Xovis sequence gaps; an Irisys
//! register reset; and bad input — malformed JSON/XML, wrong types, the wrong dialect, unknown
//! paths, missing credentials, oversized bodies — answered with a reason, counted, and never
//! changing a count. The report's footfall is the sum of what was pushed.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use edge_e2e::{counter, open_db, Agent};

const TOKEN: &str = "xovis-push-token-0123456789";
const BRICK_USER: &str = "brick";
const BRICK_PASSWORD: &str = "brick-password-0123456789";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hardware-profiles/counter/fixtures"
);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

/// Sends one request; gives the status and the body.
fn request(port: u16, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
    edge_e2e::http_request(port, method, path, auth, body)
}

fn post(port: u16, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
    request(port, "POST", path, auth, body)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn basic(user: &str, password: &str) -> String {
    // RFC 4648 base64 of "user:password".
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
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
    format!("Basic {out}")
}

/// The port the agent's counter listener logged.
fn listener_port(agent: &Agent) -> u16 {
    agent
        .wait_for_log("counter listener", Duration::from_secs(20))
        .and_then(|l| edge_e2e::logged_port(&l))
        .expect("counter listener port logged")
}

/// (ins, outs) stored for `door`, newest revision of each interval.
fn door_sums(data: &Path, door: &str) -> (u64, u64) {
    let db = open_db(data);
    db.query_row(
        "SELECT COALESCE(sum(ins), 0), COALESCE(sum(outs), 0) FROM counter_intervals c
         WHERE door = ?1 AND revision = (SELECT max(revision) FROM counter_intervals d
           WHERE d.interval_key = c.interval_key)",
        [door],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

fn irisys(id: u64, at: &str, ins: u64, outs: u64) -> Vec<u8> {
    format!(
        r#"{{"CountLogs":[{{"LogEntryId":{id},"Timestamp":"{at}","Counts":[{{"Name":"Line 1 In","RegisterId":0,"Value":{ins}}},{{"Name":"Line 1 Out","RegisterId":1,"Value":{outs}}},{{"Name":"Dwell","RegisterId":3,"Value":5}}]}}],"FriendlyDeviceSerial":"V4D-17020025"}}"#
    )
    .into_bytes()
}

#[test]
fn every_push_dialect_over_real_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sources = [
        ("xovis", "counter/xovis-pc2s-v5", "main", format!("[[sources.counter.tokens]]\nname = \"xovis\"\ntoken = \"{TOKEN}\"\n")),
        ("legacy", "counter/xovis-pc2-legacy", "legacy", String::new()),
        ("brick", "counter/brickstream-3d", "brick", format!("[[sources.counter.users]]\nname = \"{BRICK_USER}\"\ntoken = \"{BRICK_PASSWORD}\"\n")),
        ("iris", "counter/irisys-vector-4d", "iris", "lines = [\"Line 1\"]\nmax_body = 2048\n".to_string()),
        ("hik", "counter/hikvision-ds-2cd6825g0-event", "hik", String::new()),
    ];
    std::fs::write(
        d.join("secrets.toml"),
        "device_key_secret = \"11111111111111111111111111111111\"\n",
    )
    .unwrap();
    let mut config = String::from(
        "[store]\nstore_id = \"counter-store\"\ngateway_id = \"gw-1\"\ntimezone = \"Asia/Shanghai\"\n\n\
         [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
         [storage]\ndata_dir = \"data\"\n\n\
         [sync]\nlisten = \"127.0.0.1:0\"\n\n",
    );
    for (name, profile, door, extra) in &sources {
        config.push_str(&format!(
            "[[sources.counter]]\nname = \"{name}\"\nprofile = \"{profile}\"\ndoor = \"{door}\"\nlisten = \"127.0.0.1:0\"\n{extra}\n"
        ));
    }
    std::fs::write(d.join("config.toml"), config).unwrap();
    let data = d.join("data");
    let mut agent = Agent::start_live(&d.join("config.toml"));
    let port = listener_port(&agent);

    // Good pushes, one per dialect (fixture numbers: see hardware-profiles/counter/fixtures).
    let (status, body) = post(
        port,
        "/counter/xovis",
        Some(&bearer()),
        &fixture("xovis-v5.json"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"stored\":6"), "{body}");
    let (status, body) = post(
        port,
        "/counter/xovis-legacy",
        None,
        &fixture("xovis-legacy.json"),
    );
    assert_eq!(status, 200, "{body}");
    let brick = basic(BRICK_USER, BRICK_PASSWORD);
    let (status, body) = post(
        port,
        "/counter/brickstream",
        Some(&brick),
        &fixture("brickstream.xml"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        port,
        "/counter/hikvision",
        None,
        &fixture("hikvision-event-multipart.txt"),
    );
    assert_eq!(status, 200, "{body}");
    // Irisys: cumulative registers, one log per push (the first only sets the baseline).
    for (id, at, ins, outs) in [
        (1, "2024-05-01T02:00:00Z", 100, 90),
        (2, "2024-05-01T02:05:00Z", 112, 96),
        (3, "2024-05-01T02:10:00Z", 120, 101),
        // Power loss: the registers restart from 0; 4 in and 2 out since.
        (4, "2024-05-01T02:15:00Z", 4, 2),
        (5, "2024-05-01T02:20:00Z", 9, 6),
    ] {
        let (status, body) = post(port, "/counter/irisys", None, &irisys(id, at, ins, outs));
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(door_sums(&data, "main"), (13, 11));
    assert_eq!(door_sums(&data, "legacy"), (43, 40));
    assert_eq!(door_sums(&data, "brick"), (10, 13));
    assert_eq!(door_sums(&data, "hik"), (14, 9));
    // 20 + 4 + 5 in, 11 + 2 + 4 out: the reset neither went negative nor counted 120 again.
    assert_eq!(door_sums(&data, "iris"), (29, 17));
    assert_eq!(
        counter(&data, "iris", "resets"),
        2,
        "in and out registers reset"
    );

    // Live data: COUNT events carry a counter's running value; the first one is the baseline,
    // the next one a minute later adds 7 entries.
    let live = fixture("xovis-v5-live.json");
    let (status, body) = post(port, "/counter/xovis", Some(&bearer()), &live);
    assert_eq!(status, 200, "{body}");
    let next = String::from_utf8(live)
        .unwrap()
        .replace("90210", "90211")
        .replace("1714529701250", "1714529761250")
        .replace("\"counter_value\": 118", "\"counter_value\": 125");
    assert!(
        next.contains("125") && next.contains("90211"),
        "live fixture changed"
    );
    let (status, body) = post(port, "/counter/xovis", Some(&bearer()), next.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(door_sums(&data, "main"), (20, 11));

    // The same push again (a device retrying): 200, nothing stored, counted as duplicates.
    let (status, body) = post(
        port,
        "/counter/xovis",
        Some(&bearer()),
        &fixture("xovis-v5.json"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"stored\":0") && body.contains("\"duplicates\":6"),
        "{body}"
    );
    assert_eq!(door_sums(&data, "main"), (20, 11));
    // A later push (an hour later) whose sequence id skipped two: a gap of 2 lost pushes.
    let later = String::from_utf8(fixture("xovis-v5.json"))
        .unwrap()
        .replace("\"id\": 4711", "\"id\": 4714")
        .replace("\"id\":4711", "\"id\":4714")
        .replace("10:1", "11:1");
    assert!(later.contains("4714"), "fixture sequence id not found");
    let (status, body) = post(port, "/counter/xovis", Some(&bearer()), later.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(door_sums(&data, "main"), (33, 22));

    // Bad input: answered with a reason, counted, no count changed.
    let before: Vec<(u64, u64)> = ["main", "legacy", "brick", "iris", "hik"]
        .iter()
        .map(|door| door_sums(&data, door))
        .collect();
    let cases: Vec<(&str, Option<String>, Vec<u8>, u16, &str)> = vec![
        (
            "/counter/xovis",
            None,
            fixture("xovis-v5.json"),
            401,
            "unauthenticated",
        ),
        (
            "/counter/xovis",
            Some("Bearer wrong-token-0123456789".into()),
            fixture("xovis-v5.json"),
            401,
            "unauthenticated",
        ),
        (
            "/counter/brickstream",
            Some(basic(BRICK_USER, "wrong-password-012345")),
            fixture("brickstream.xml"),
            401,
            "unauthenticated",
        ),
        (
            "/counter/brickstream",
            Some(basic("mallory", BRICK_PASSWORD)),
            fixture("brickstream.xml"),
            401,
            "unauthenticated",
        ),
        (
            "/counter/xovis",
            Some(bearer()),
            b"{\"logics_data\": {".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "/counter/xovis-legacy",
            None,
            b"{\"content\": {\"element\": \"twelve\"}}".to_vec(),
            400,
            "\"error\"",
        ),
        // The wrong dialect on a path: XML where JSON is expected and the reverse.
        (
            "/counter/irisys",
            None,
            fixture("brickstream.xml"),
            400,
            "malformed_json",
        ),
        (
            "/counter/brickstream",
            Some(brick.clone()),
            fixture("irisys.json"),
            400,
            "malformed_xml",
        ),
        (
            "/counter/hikvision",
            None,
            b"<EventNotificationAlert><peopleCounting>".to_vec(),
            400,
            "malformed_xml",
        ),
        (
            "/counter/nobody",
            None,
            fixture("irisys.json"),
            404,
            "unknown_path",
        ),
        ("/counter/irisys", None, vec![b' '; 4096], 413, "too_large"),
    ];
    for (path, auth, body, want, reason) in &cases {
        let (status, text) = post(port, path, auth.as_deref(), body);
        assert_eq!(status, *want, "{path}: {text}");
        assert!(text.contains(reason), "{path}: {text}");
    }
    let (status, _) = request(port, "GET", "/counter/irisys", None, b"");
    assert_eq!(status, 405);
    let after: Vec<(u64, u64)> = ["main", "legacy", "brick", "iris", "hik"]
        .iter()
        .map(|door| door_sums(&data, door))
        .collect();
    assert_eq!(after, before, "bad input changed a count");

    agent.terminate();
    agent
        .wait_exit(Duration::from_secs(30))
        .expect("agent stops");
    let log = agent.log_lines().join("\n");
    assert!(!log.contains("panicked"), "{log}");

    // Counters persisted at shutdown.
    assert_eq!(counter(&data, "xovis", "sequence_gaps"), 1);
    assert_eq!(counter(&data, "xovis", "sequence_missing"), 2);
    assert_eq!(counter(&data, "xovis", "duplicates"), 6);
    assert!(counter(&data, "xovis", "rejected_unauthenticated") >= 2);
    assert_eq!(counter(&data, "xovis", "rejected_malformed_json"), 1);
    assert_eq!(counter(&data, "brick", "rejected_unauthenticated"), 2);
    assert_eq!(counter(&data, "brick", "rejected_malformed_xml"), 1);
    assert_eq!(counter(&data, "iris", "rejected_too_large"), 1);
    assert!(
        counter(&data, "legacy", "rejected_wrong_type")
            + counter(&data, "legacy", "rejected_missing_field")
            >= 1,
        "legacy counters: {:?}",
        edge_e2e::counters(&data, "legacy")
    );

    // The report's footfall is every door's entries on the fixtures' date.
    let report = edge_e2e::report_json(&data, "2024-05-01");
    let (ins, _) = ["main", "legacy", "brick", "iris", "hik"]
        .iter()
        .map(|door| door_sums(&data, door))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(report["footfall"].as_u64(), Some(ins), "{report}");
    assert_eq!(
        report["doors"].as_array().map(Vec::len),
        Some(5),
        "{report}"
    );
}
