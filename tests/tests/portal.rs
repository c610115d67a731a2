//! Captive-portal logins against the real agent: a FreeRADIUS `detail` file and an openNDS
//! BinAuth log followed like `tail -F` (appends, rotation, restart from the checkpoint), and the
//! webhook called over real HTTP (good, unauthenticated, oversized and malformed requests).
//! Logins bind devices to person keys; bad records are counted by reason; no raw phone number
//! or MAC reaches the data directory.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use edge_core::person::PersonKeyer;
use edge_core::phone::{normalize, Region};
use edge_core::{DeviceKeyer, Secret};
use edge_e2e::{counters, open_db, Agent};
use edge_wire::pcap::Writer;
use edge_wire::portal::binauth::BinauthRepr;
use edge_wire::portal::detail::{AccountingRepr, AcctStatus};
use edge_wire::MacAddr;

const DEVICE_SECRET: &str = "11111111111111111111111111111111";
const TENANT_SECRET: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const HOOK_TOKEN: &str = "portal-hook-token-0123456789";

/// (MAC, phone as the portal wrote it, E.164).
const A: ([u8; 6], &str, &str) = (
    [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0a],
    "138-1234-5678",
    "+8613812345678",
);
const B: ([u8; 6], &str, &str) = (
    [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0b],
    "+86 139 1234 5678",
    "+8613912345678",
);
const C: ([u8; 6], &str, &str) = (
    [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0c],
    "0086 137 0000 1111",
    "+8613700001111",
);
const D: ([u8; 6], &str, &str) = (
    [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0d],
    "13600002222",
    "+8613600002222",
);
const E: ([u8; 6], &str, &str) = (
    [0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0e],
    "135 0000 3333",
    "+8613500003333",
);
/// A landline: refused, never stored.
const LANDLINE: &str = "010-12345678";

fn probe(mac: [u8; 6], rssi: i8) -> Vec<u8> {
    let mut f = vec![0x00, 0x00, 0x09, 0x00, 0x20, 0x00, 0x00, 0x00, rssi as u8];
    f.extend_from_slice(&[0x40, 0x00, 0x00, 0x00]);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x04, 0x0b, 0x16]);
    f
}

fn start_record(mac: [u8; 6], phone: &str, t_s: i64, mac_text: &str) -> Vec<u8> {
    let _ = mac;
    let r = AccountingRepr {
        status: AcctStatus::Start,
        user_name: Some(phone.to_string()),
        calling_station: MacAddr::parse_any(mac_text),
        session_id: Some(format!("{t_s:x}")),
        time_s: Some(t_s),
        event_time_local: None,
        header_time_local: None,
    };
    let mut out = Vec::new();
    r.emit("Fri Nov 20 10:15:00 2026", &mut out);
    out
}

fn http(port: u16, token: Option<&str>, body: &str) -> u16 {
    let auth = token.map(|t| format!("Bearer {t}"));
    edge_e2e::http_request(port, "POST", "/login", auth.as_deref(), body.as_bytes()).0
}

/// The port the agent's portal webhook logged.
fn webhook_port(agent: &Agent) -> u16 {
    agent
        .wait_for_log("portal webhook listening", Duration::from_secs(10))
        .and_then(|l| edge_e2e::logged_port(&l))
        .expect("webhook port logged")
}

fn bindings(data: &Path) -> Vec<(String, String)> {
    let db = open_db(data);
    let mut st = db
        .prepare("SELECT device_key, person_key FROM device_persons ORDER BY device_key")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<(String, String)>, _>>()
        .unwrap();
    rows
}

fn counter(data: &Path, source: &str, name: &str) -> u64 {
    counters(data, source)
        .into_iter()
        .find(|(k, _)| k == name)
        .map_or(0, |(_, v)| v)
}

#[test]
fn portal_logins_bind_devices_and_bad_input_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("secrets.toml"),
        format!("device_key_secret = \"{DEVICE_SECRET}\"\ntenant_secret = \"{TENANT_SECRET}\"\n"),
    )
    .unwrap();
    let now_s = chrono::Utc::now().timestamp();
    // The files start with a visit half an hour ago (replayed at start); the later logins
    // happen now, live. With a 10 s visit timeout every visit closes while the agent runs.
    let t0 = now_s - 1800;
    let mut w = Writer::new(
        std::fs::File::create(d.join("wifi.pcap")).unwrap(),
        127,
        512,
    )
    .unwrap();
    for i in 0..120 {
        for dev in [A.0, B.0] {
            w.write_packet((t0 + i * 5) * 1_000_000, &probe(dev, -50))
                .unwrap();
        }
    }
    w.flush().unwrap();
    drop(w);
    // The detail file: A's login, a malformed record, a landline, an Accounting-On.
    let mut detail = start_record(A.0, A.1, t0 + 60, "00-1A-2B-00-00-0A");
    detail.extend_from_slice(b"Fri Nov 20 10:16:00 2026\n\tAcct-Status-Type Start\n\n");
    detail.extend_from_slice(&start_record(A.0, LANDLINE, t0 + 70, "00:1a:2b:00:00:0a"));
    detail.extend_from_slice(b"Fri Nov 20 10:17:00 2026\n\tAcct-Status-Type = Accounting-On\n\tTimestamp = 1795132800\n\n");
    std::fs::write(d.join("detail"), &detail).unwrap();
    // The openNDS log: B's login (phone in the FAS's custom string), and a broken line.
    let b_line = BinauthRepr::new("client_auth", MacAddr(B.0))
        .with("bytes_incoming", "0")
        .with("bytes_outgoing", "0")
        .with("session_start", &(t0 + 120).to_string())
        .with("session_end", "0")
        .with("token", "abc123")
        .with("custom", &format!("phone={}", B.1))
        .emit();
    std::fs::write(
        d.join("binauth.log"),
        format!("{b_line}\nthis is not a binauth line\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("config.toml"),
        format!(
            "[store]\nstore_id = \"portal-store\"\ngateway_id = \"gw-1\"\ntimezone = \"Asia/Shanghai\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\nstaff_phones_file = \"staff.txt\"\n\n\
             [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"200ms\"\n\n\
             [metrics]\nvisit_timeout = \"10s\"\nzone_stale = \"5s\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [[sources.wifi]]\nzone = \"entrance\"\npcap = \"wifi.pcap\"\n\n\
             [[sources.portal]]\nname = \"radius\"\nformat = \"freeradius-detail\"\npath = \"detail\"\n\n\
             [[sources.portal]]\nname = \"nds\"\nformat = \"opennds-binauth\"\npath = \"binauth.log\"\nphone_field = \"custom.phone\"\n\n\
             [[sources.portal]]\nname = \"hook\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 1024\n\
             [[sources.portal.tokens]]\nname = \"portal\"\ntoken = \"{HOOK_TOKEN}\"\n"
        ),
    )
    .unwrap();
    // E works here: the staff list names E's number (hashed when loaded).
    std::fs::write(d.join("staff.txt"), "# staff phones\n135-0000-3333\n").unwrap();
    let config = d.join("config.toml");
    let data = d.join("data");

    let mut agent = Agent::start_live(&config);
    let port = webhook_port(&agent);

    // The webhook: one good login, then every kind of refusal.
    let c_time = chrono::Utc::now().timestamp();
    let good = format!(
        "{{\"mac\":\"00-1a-2b-00-00-0c\",\"phone\":\"{}\",\"event\":\"login\",\"time\":{c_time}}}",
        C.1
    );
    assert_eq!(http(port, Some(HOOK_TOKEN), &good), 202);
    assert_eq!(http(port, None, &good), 401);
    assert_eq!(http(port, Some("wrong-token-0123456789abc"), &good), 401);
    assert_eq!(http(port, Some(HOOK_TOKEN), &"x".repeat(4096)), 413);
    assert_eq!(http(port, Some(HOOK_TOKEN), "{\"mac\": 12"), 400);
    assert_eq!(
        http(
            port,
            Some(HOOK_TOKEN),
            "{\"mac\":\"nope\",\"phone\":\"13812345678\"}"
        ),
        400
    );
    assert_eq!(
        http(
            port,
            Some(HOOK_TOKEN),
            &format!("{{\"mac\":\"00:1a:2b:00:00:0f\",\"phone\":\"{LANDLINE}\"}}")
        ),
        400
    );

    // The detail file grows, then is rotated (renamed, a new one started).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("detail"))
        .unwrap();
    let d_time = chrono::Utc::now().timestamp();
    f.write_all(&start_record(D.0, D.1, d_time, "001a.2b00.000d"))
        .unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(800));
    std::fs::rename(d.join("detail"), d.join("detail.1")).unwrap();
    let e_time = chrono::Utc::now().timestamp();
    std::fs::write(
        d.join("detail"),
        start_record(E.0, E.1, e_time, "00:1A:2B:00:00:0E"),
    )
    .unwrap();

    // Device keys and person keys as the agent must compute them.
    let device_secret = Secret::new(hex::decode(DEVICE_SECRET).unwrap(), 1);
    let persons = PersonKeyer::new(&Secret::new(hex::decode(TENANT_SECRET).unwrap(), 1));
    let mut devices = DeviceKeyer::new(&device_secret, edge_e2e::DEFAULT_ROTATION_MS, 16);
    let mac_u64 = |m: [u8; 6]| m.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let mut want: Vec<(String, String)> = [
        (A, t0 + 60),
        (B, t0 + 120),
        (C, c_time),
        (D, d_time),
        (E, e_time),
    ]
    .iter()
    .map(|((mac, _, e164), at)| {
        let e = normalize(e164, Region::by_code("CN").unwrap()).unwrap();
        (
            devices.key(mac_u64(*mac), at * 1000).to_hex(),
            persons.key(&e).to_hex(),
        )
    })
    .collect();
    for (n, (dk, _)) in ["A", "B", "C", "D", "E"].iter().zip(&want) {
        println!("{n} = {dk}");
    }
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bindings(&data) != want {
        assert!(
            Instant::now() < deadline,
            "bindings {:?}, want {want:?}; counters radius {:?} nds {:?} hook {:?}; log {:?}",
            bindings(&data),
            counters(&data, "radius"),
            counters(&data, "nds"),
            counters(&data, "hook"),
            agent.log_lines(),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every login's visit closes connected, carrying the person: A's and B's Wi-Fi visits,
    // and the login-only visits of C, D and E (E's a staff visit).
    let staff_device = devices.key(mac_u64(E.0), e_time * 1000).to_hex();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let db = open_db(&data);
        let mut st = db
            .prepare("SELECT device_key, person_key, class FROM visits WHERE connected = 1")
            .unwrap();
        let got: Vec<(String, Option<String>, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let all = want.iter().all(|(device, person)| {
            let class = if device == &staff_device {
                "staff"
            } else {
                "visitor"
            };
            got.iter()
                .any(|(d, p, c)| d == device && p.as_deref() == Some(person.as_str()) && c == class)
        });
        if all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connected visits {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    agent.terminate();
    let status = agent
        .wait_exit(Duration::from_secs(20))
        .expect("agent stopped");
    assert!(status.success());
    // Nor does any log line carry a raw phone number or MAC.
    let log = agent.log_lines().join("\n").to_lowercase();
    for (mac, raw, e164) in [A, B, C, D, E] {
        assert!(
            !log.contains(&raw.to_lowercase()) && !log.contains(e164),
            "phone in the log"
        );
        assert!(
            !log.contains(&MacAddr(mac).to_string().to_lowercase()),
            "MAC in the log"
        );
    }
    assert!(!log.contains("12345678"), "landline in the log");

    // Refusals, counted by source and reason.
    let table = [
        ("radius", "rejected_malformed_record", 1),
        ("radius", "rejected_phone_not_mobile", 1),
        ("radius", "ignored_other_status", 1),
        ("radius", "logins", 3),
        ("nds", "rejected_malformed_record", 1),
        ("nds", "logins", 1),
        ("hook", "logins", 1),
        ("hook", "rejected_unauthenticated", 2),
        ("hook", "rejected_too_large", 1),
        ("hook", "rejected_malformed_record", 1),
        ("hook", "rejected_no_mac", 1),
        ("hook", "rejected_phone_not_mobile", 1),
    ];
    for (source, name, want) in table {
        assert_eq!(counter(&data, source, name), want, "{source} {name}");
    }
    let read_before = counter(&data, "radius", "records_read");

    // A restart resumes from the committed offsets: nothing is read twice. And a webhook
    // login answered 202 survives a kill -9 right after the answer.
    let agent = Agent::start_live(&config);
    let f_time = chrono::Utc::now().timestamp();
    let f =
        format!("{{\"mac\":\"00:1a:2b:00:00:1f\",\"phone\":\"13400004444\",\"time\":{f_time}}}");
    assert_eq!(http(webhook_port(&agent), Some(HOOK_TOKEN), &f), 202);
    agent.kill9();
    let f_device = devices
        .key(mac_u64([0x00, 0x1a, 0x2b, 0x00, 0x00, 0x1f]), f_time * 1000)
        .to_hex();
    let mut agent = Agent::start_live(&config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bindings(&data).iter().any(|(d, _)| d == &f_device) {
        assert!(Instant::now() < deadline, "the journaled login was lost");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "webhook login after kill -9: {}",
        if agent
            .log_lines()
            .iter()
            .any(|l| l.contains("journaled logins replayed"))
        {
            "replayed from the journal"
        } else {
            "committed before the kill"
        }
    );
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(20)).unwrap().success());
    assert_eq!(counter(&data, "radius", "records_read"), read_before);
    assert_eq!(counter(&data, "nds", "logins"), 1);

    // No raw phone number (in any spelling) and no raw MAC is anywhere in the data directory.
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(&data).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for (mac, raw, e164) in [A, B, C, D, E] {
        let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
        for needle in [raw.to_string(), e164.to_string(), digits[2..].to_string()] {
            assert!(
                !text.contains(&needle.to_lowercase()),
                "phone {needle:?} on disk"
            );
        }
        assert!(!bytes.windows(6).any(|w| w == mac), "binary MAC on disk");
        let colon = MacAddr(mac).to_string().to_lowercase();
        assert!(!text.contains(&colon), "MAC {colon} on disk");
    }
    assert!(!text.contains("12345678"), "landline on disk");
}
