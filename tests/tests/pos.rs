//! POS receipts through the real binary:
//!
//! * receipts made by an independent ESC/POS generator — python-escpos (PyPI), driven by
//!   `tests/python/pos_fixtures.py` for each printer profile (GB18030 with a QR code and a
//!   barcode, Big5, CP858) — replayed from a capture file: every transaction, every total to
//!   the cent, every item, payment, QR payload and member phone (as a person key) as expected;
//! * a serial tap through a real pseudo-terminal pair (socat) opened with the profile's serial
//!   settings, where the port disappears mid-receipt and comes back: the receipt completely
//!   received before is stored, the cut-short one is counted as unparsed, the next one after
//!   the reconnect is stored;
//! * bad input (garbage, a wrong baud rate's noise, a truncated receipt, a receipt with no
//!   total): counted by reason, never a panic, the receipts around it still read, and unparsed
//!   receipts kept with phone-like digits masked.
//!
//! python-escpos and socat are required: `scripts/test.sh` installs them (the Python package
//! into a virtual environment named by `STORE_EDGE_ESCPOS_PYTHON`).

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use edge_core::person::PersonKeyer;
use edge_core::phone::{normalize, Region};
use edge_core::Secret;
use edge_e2e::{open_db, path_str, run_once, Agent};
use edge_wire::escpos::{Encoding, ReceiptBuilder};

const DEVICE_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const TENANT_SECRET: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A store directory with secrets and a config whose only source is `pos_table`.
fn store_dir(d: &Path, tz: &str, pos_table: &str, extra: &str) -> PathBuf {
    std::fs::write(
        d.join("secrets.toml"),
        format!("device_key_secret = \"{DEVICE_SECRET}\"\ntenant_secret = \"{TENANT_SECRET}\"\n"),
    )
    .unwrap();
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nstore_id = \"pos-store\"\ngateway_id = \"gw-1\"\ntimezone = \"{tz}\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"200ms\"\n\n\
             {extra}\n\
             [[sources.pos]]\nname = \"till-1\"\n{pos_table}\n"
        ),
    )
    .unwrap();
    config
}

/// Stored purchases as their JSON bodies, by transaction id.
fn purchases(data: &Path) -> Vec<serde_json::Value> {
    let db = open_db(data);
    let mut st = db
        .prepare("SELECT body FROM purchases ORDER BY time_ms")
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|b| serde_json::from_str(&b.unwrap()).unwrap())
        .collect()
}

fn counter(data: &Path, name: &str) -> u64 {
    edge_e2e::counter(data, "till-1", name)
}

fn escpos_python() -> PathBuf {
    let py = std::env::var_os("STORE_EDGE_ESCPOS_PYTHON").unwrap_or_else(|| {
        panic!(
            "STORE_EDGE_ESCPOS_PYTHON is not set: run the tests with scripts/test.sh, which \
             installs python-escpos into a virtual environment and names its python"
        )
    });
    PathBuf::from(py)
}

#[test]
fn receipts_from_python_escpos_are_parsed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("generated");
    let out = Command::new(escpos_python())
        .arg(repo().join("tests/python/pos_fixtures.py"))
        .arg(&gen)
        .output()
        .expect("running tests/python/pos_fixtures.py");
    assert!(
        out.status.success(),
        "python-escpos generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keyer = PersonKeyer::new(&Secret::new(hex::decode(TENANT_SECRET).unwrap(), 1));
    let mut checked = 0;
    for model in [
        "xprinter-xp-58iih-gb18030",
        "epson-tm-t82iii-big5",
        "epson-tm-t88v-cp858",
    ] {
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(gen.join(format!("{model}.expected.json"))).unwrap(),
        )
        .unwrap();
        let receipts = expected["receipts"].as_array().unwrap();
        let tz: chrono_tz::Tz = receipts[0]["time_zone"].as_str().unwrap().parse().unwrap();
        let d = dir.path().join(model);
        std::fs::create_dir_all(&d).unwrap();
        let config = store_dir(
            &d,
            tz.name(),
            &format!(
                "profile = \"pos/{model}\"\nfile = \"{}\"\n",
                path_str(&gen.join(format!("{model}.bin")))
            ),
            "",
        );
        run_once(&config);
        let data = d.join("data");
        let got = purchases(&data);
        assert_eq!(got.len(), receipts.len(), "{model}: {got:#?}");
        for (want, p) in receipts.iter().zip(&got) {
            let id = want["transaction_id"].as_str().unwrap();
            assert_eq!(p["transaction_id"], id, "{model}");
            assert_eq!(p["purchase_key"], format!("till-1:{id}"));
            assert_eq!(p["total_minor"], want["total_minor"], "{model} {id} total");
            assert_eq!(p["currency"], want["currency"], "{model} {id}");
            let local = chrono::NaiveDateTime::parse_from_str(
                want["local_time"].as_str().unwrap(),
                "%Y-%m-%d %H:%M:%S",
            )
            .unwrap();
            let utc = tz.from_local_datetime(&local).earliest().unwrap();
            assert_eq!(p["time_ms"], utc.timestamp_millis(), "{model} {id} time");
            assert_eq!(p["time_from_receipt"], true);
            let items: Vec<(String, f64, i64)> = p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["quantity"].as_f64().unwrap(),
                        i["amount_minor"].as_i64().unwrap(),
                    )
                })
                .collect();
            let want_items: Vec<(String, f64, i64)> = want["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["qty"].as_f64().unwrap(),
                        i["amount_minor"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(items, want_items, "{model} {id} items");
            assert_eq!(p["payment"], want["payment"], "{model} {id} payment");
            assert_eq!(p["qr_codes"], want["qr"], "{model} {id} QR payloads");
            match want["member_phone"].as_str().unwrap() {
                "present" => {
                    // The printed number, keyed with the tenant secret: nothing else.
                    let phone = want["member_phone_number"].as_str().unwrap();
                    let key = keyer.key(&normalize(phone, Region::by_code("CN").unwrap()).unwrap());
                    assert_eq!(p["person_key"], key.to_hex(), "{model} {id}");
                }
                _ => assert_eq!(p["person_key"], "", "{model} {id}"),
            }
            checked += 1;
        }
        assert_eq!(counter(&data, "receipts"), receipts.len() as u64, "{model}");
        assert_eq!(edge_e2e::count(&data, "unparsed_receipts"), 0, "{model}");
        // Replaying the same capture again stores nothing twice (the cursor, and the keys).
        run_once(&config);
        assert_eq!(purchases(&data).len(), receipts.len(), "{model} replay");
        // The report knows the day's receipts.
        let date = tz
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(
                    receipts[0]["local_time"].as_str().unwrap(),
                    "%Y-%m-%d %H:%M:%S",
                )
                .unwrap(),
            )
            .earliest()
            .unwrap()
            .date_naive()
            .to_string();
        let r = edge_e2e::report_json(&data, &date);
        let total: i64 = receipts
            .iter()
            .map(|r| r["total_minor"].as_i64().unwrap())
            .sum();
        assert_eq!(r["transactions"], receipts.len() as u64, "{model}: {r}");
        assert_eq!(r["sales_minor"], total, "{model}: {r}");
        assert!(r["conversion"].is_null(), "no door counter: {r}");
    }
    assert_eq!(checked, 6);
}

/// A pseudo-terminal pair made by socat: the agent opens `tap`, the test writes into `feed`.
struct PtyPair {
    child: Child,
    tap: PathBuf,
    feed: PathBuf,
}

impl PtyPair {
    fn start(dir: &Path) -> PtyPair {
        let (tap, feed) = (dir.join("ttyPOS"), dir.join("ttyFEED"));
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", path_str(&tap)))
            .arg(format!("pty,raw,echo=0,link={}", path_str(&feed)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is required (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(tap.exists() && feed.exists()) {
            assert!(Instant::now() < deadline, "socat did not make its ptys");
            std::thread::sleep(Duration::from_millis(20));
        }
        PtyPair { child, tap, feed }
    }

    /// Writes `bytes` into the line in small pieces, as a serial line delivers them.
    fn send(&self, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.feed)
            .unwrap();
        for chunk in bytes.chunks(37) {
            f.write_all(chunk).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The cable is pulled: socat and its ptys go away.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.tap.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The receipts of a profile fixture, split at each cut (`GS V`), each with its cut.
fn fixture_receipts(model: &str) -> Vec<Vec<u8>> {
    let bytes =
        std::fs::read(repo().join(format!("hardware-profiles/pos/fixtures/{model}.bin"))).unwrap();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 0x1d && bytes[i + 1] == 0x56 {
            // GS V m (3 bytes) or GS V 65/66 n (4 bytes).
            let end = if matches!(bytes[i + 2], 65 | 66) {
                i + 4
            } else {
                i + 3
            };
            out.push(bytes[start..end.min(bytes.len())].to_vec());
            start = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_count(agent: &Agent, pattern: &str) -> usize {
    agent
        .log_lines()
        .iter()
        .filter(|l| l.contains(pattern))
        .count()
}

#[test]
fn serial_tap_through_a_pty_survives_the_port_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = "xprinter-xp-58iih-gb18030";
    let receipts = fixture_receipts(model);
    assert_eq!(receipts.len(), 2, "the fixture holds two receipts");
    let pty = PtyPair::start(d);
    let config = store_dir(
        d,
        "Asia/Shanghai",
        &format!(
            "profile = \"pos/{model}\"\nport = \"{}\"\nidle_gap = \"1s\"\n",
            path_str(&pty.tap)
        ),
        "[sync]\nlisten = \"127.0.0.1:0\"\n",
    );
    let data = d.join("data");
    let mut agent = Agent::start_live(&config);
    assert!(
        agent
            .wait_for_log("serial port open", Duration::from_secs(20))
            .is_some_and(|l| l.contains("baud=9600")),
        "the tap opens the port with the profile's settings: {:?}",
        agent.log_lines()
    );
    // Receipt 1 whole, then the first half of receipt 2 …
    pty.send(&receipts[0]);
    let half = receipts[1].len() / 2;
    pty.send(&receipts[1][..half]);
    wait_until(Duration::from_secs(20), "receipt 1 stored", || {
        purchases(&data).len() == 1
    });
    // … and the cable is pulled.
    pty.kill();
    wait_until(Duration::from_secs(20), "the agent to notice", || {
        log_count(&agent, "went away") + log_count(&agent, "hung up") >= 1
    });
    // The cut-short receipt ends at the idle gap while the port is away: counted, kept masked.
    wait_until(Duration::from_secs(20), "the cut-short receipt", || {
        edge_e2e::count(&data, "unparsed_receipts") == 1
    });
    let pty = PtyPair::start(d);
    wait_until(Duration::from_secs(30), "the port reopened", || {
        log_count(&agent, "serial port open") >= 2
    });
    pty.send(&receipts[1]);
    wait_until(Duration::from_secs(20), "receipt 2 stored", || {
        purchases(&data).len() == 2
    });
    agent.terminate();
    assert!(agent
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    let got = purchases(&data);
    let ids: Vec<&str> = got
        .iter()
        .map(|p| p["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1202603150317", "1202603150318"]);
    assert_eq!(got[0]["total_minor"], 4200);
    assert!(counter(&data, "reconnects") >= 1);
    assert!(counter(&data, "disconnects") >= 1);
    assert_eq!(counter(&data, "receipts"), 3);
    let unparsed_reasons: u64 = edge_e2e::counters(&data, "till-1")
        .iter()
        .filter(|(k, _)| k.starts_with("unparsed_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(unparsed_reasons, 1);
}

/// What a UART set to the wrong rate makes of `bytes`: the sender's 8N1 frames (LSB first)
/// at one bit per time unit, sampled by a receiver whose bits last `ratio` units (sender baud ÷
/// receiver baud): it waits for a start edge, samples the middle of each data bit, and hands
/// over the byte whatever the stop bit was (a framing error is not dropped by a tty in raw mode).
fn misclocked(bytes: &[u8], ratio: f64) -> Vec<u8> {
    let mut line: Vec<bool> = Vec::with_capacity(bytes.len() * 10);
    for b in bytes {
        line.push(false);
        line.extend((0..8).map(|i| b >> i & 1 == 1));
        line.push(true);
    }
    let level = |t: f64| line.get(t as usize).copied().unwrap_or(true);
    let end = line.len() as f64;
    let mut out = Vec::new();
    let mut t = 0.0;
    let step = ratio / 4.0;
    while t < end {
        // The receiver looks for the line going low, a quarter of its bit at a time.
        if level(t) {
            t += step;
            continue;
        }
        let byte = (0..8).fold(0u8, |acc, i| {
            acc | (u8::from(level(t + ratio * (1.5 + f64::from(i)))) << i)
        });
        out.push(byte);
        t += ratio * 9.5;
    }
    out
}

#[test]
fn a_wrong_baud_rate_is_garbage_that_is_counted_and_never_stored_as_a_purchase() {
    let model = "xprinter-xp-58iih-gb18030";
    let good = fixture_receipts(model);
    let all: Vec<u8> = good.concat();
    // The model itself: a receiver at the right rate reads the bytes back exactly.
    assert_eq!(misclocked(&all, 1.0), all);
    for (ratio, what) in [
        (0.5, "tap at 19200 on a 9600 line"),
        (2.0, "tap at 4800 on a 9600 line"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut capture = misclocked(&all, ratio);
        let noise_len = capture.len();
        // The installer fixes the rate: the next receipts arrive right.
        capture.extend_from_slice(&all);
        std::fs::write(d.join("capture.bin"), &capture).unwrap();
        let config = store_dir(
            d,
            "Asia/Shanghai",
            &format!("profile = \"pos/{model}\"\nfile = \"capture.bin\"\n"),
            "",
        );
        run_once(&config);
        let data = d.join("data");
        let ids: Vec<String> = purchases(&data)
            .iter()
            .map(|p| p["transaction_id"].as_str().unwrap().to_string())
            .collect();
        let counters = edge_e2e::counters(&data, "till-1");
        println!("{what}: {noise_len} bytes of noise; counters {counters:?}");
        // Only the receipts read at the right rate are purchases; the noise is counted.
        assert_eq!(ids, ["1202603150317", "1202603150318"], "{what}");
        let noise: u64 = counters
            .iter()
            .filter(|(k, _)| {
                k.starts_with("unparsed_")
                    || ["garbage_bytes", "undecodable_chars", "unknown_commands"]
                        .contains(&k.as_str())
            })
            .map(|(_, v)| v)
            .sum();
        assert!(noise > 0, "{what}: the noise left no trace in the counters");
    }
}

#[test]
fn bad_input_is_counted_and_the_stream_resynchronises() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = "xprinter-xp-58iih-gb18030";
    let good = fixture_receipts(model);
    let mut capture = Vec::new();
    // Noise first: what a wrong baud rate makes of a receipt (random high bytes, stray
    // escapes, a length field claiming megabytes), then a cut.
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        capture.push((x >> 24) as u8);
    }
    capture.extend_from_slice(&[0x1d, 0x76, 0x30, 0x00, 0xff, 0xff, 0xff, 0xff]);
    capture.extend_from_slice(&[0x1d, 0x56, 0x00]);
    capture.extend_from_slice(&good[0]);
    // A receipt with no total (same profile text, total line left out) and a member phone.
    let mut b = ReceiptBuilder::new(Encoding::Gb18030);
    b.init();
    for line in [
        "鲜丰便利",
        "流水号：1202603159999",
        "交易时间：2026-03-15 15:01:02",
        "品名          数量   单价   金额",
        "鲜肉大包",
        "                 2   3.50   7.00",
        "--------------------------------",
        "会员手机：13912345678",
    ] {
        b.line(line).unwrap();
    }
    b.cut(false);
    capture.extend_from_slice(&b.into_bytes());
    // A truncated receipt (its second half never came), then the good receipt 2.
    capture.extend_from_slice(&good[1][..good[1].len() / 2]);
    capture.extend_from_slice(&good[1]);
    std::fs::write(d.join("capture.bin"), &capture).unwrap();
    let config = store_dir(
        d,
        "Asia/Shanghai",
        &format!("profile = \"pos/{model}\"\nfile = \"capture.bin\"\n"),
        "",
    );
    run_once(&config);
    let data = d.join("data");
    let got = purchases(&data);
    let ids: Vec<&str> = got
        .iter()
        .map(|p| p["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1202603150317", "1202603150318"], "{got:#?}");
    let counters = edge_e2e::counters(&data, "till-1");
    println!("counters: {counters:?}");
    let get = |name: &str| {
        counters
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    };
    // The receipt without a total and the truncated one (its total was in the lost half).
    assert_eq!(get("unparsed_no_total"), 2, "{counters:?}");
    // The noise decodes to text without a transaction id (it holds stray boundaries, so it
    // may be more than one "receipt"), and is counted as such.
    assert!(get("unparsed_no_transaction_id") >= 1, "{counters:?}");
    assert!(get("garbage_bytes") > 0, "{counters:?}");
    let unparsed: u64 = counters
        .iter()
        .filter(|(k, _)| k.starts_with("unparsed_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(get("receipts"), 2 + unparsed, "{counters:?}");
    assert_eq!(edge_e2e::count(&data, "unparsed_receipts"), unparsed);
    // Unparsed receipts are kept, with the phone masked; no phone digits anywhere on disk.
    let db = open_db(&data);
    let texts: Vec<String> = db
        .prepare("SELECT text FROM unparsed_receipts")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("会员手机：***********")),
        "{texts:#?}"
    );
    drop(db);
    for f in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        for phone in ["13912345678", "13812345678"] {
            assert!(
                !bytes.windows(phone.len()).any(|w| w == phone.as_bytes()),
                "a raw member phone reached the data directory"
            );
        }
    }
}

#[test]
fn simulated_days_purchases_match_the_truth_and_members_join_their_visits() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    // Three days with many logged-in buyers, so enough member receipts are scored.
    let mut params = edge_sim::SimParams::new(7, date, 200, 3);
    params.days = 3;
    params.connected_share = 0.5;
    params.purchase_share = 0.5;
    params.member_phone_share = 0.9;
    let w = edge_e2e::simulate(dir.path(), &params);
    run_once(&w.config_path);
    let truth = edge_e2e::read_truth(&w.truth_path);
    let data = dir.path().join("data");
    assert_eq!(truth.pos.days.len(), 3);

    // Every day: transactions and sales equal to the truth, to the fen.
    for day in &truth.pos.days {
        let report = edge_e2e::report_json(&data, &day.day);
        assert!(day.receipts > 30, "too few receipts to mean anything");
        assert_eq!(report["transactions"], u64::from(day.receipts), "{report}");
        assert_eq!(report["sales_minor"], day.sales_minor, "{report}");
        assert_eq!(report["currency"], "CNY");
        let units: f64 = truth
            .purchases_on(&day.day)
            .flat_map(|p| p.items.iter())
            .map(|i| f64::from(i.qty))
            .sum();
        let ipb = report["items_per_basket"].as_f64().unwrap();
        assert!(
            (ipb - units / f64::from(day.receipts)).abs() < 1e-9,
            "{report}"
        );
        println!(
            "{}: {} receipts, sales {} fen (truth {} / {}), {} attributed to a visit",
            day.day,
            report["transactions"],
            report["sales_minor"],
            day.receipts,
            day.sales_minor,
            report["attributed_purchases"]
        );
    }

    // Receipts with a member phone: each joins the stored visit of its true visit.
    let mut keys = edge_e2e::Keys::from_secrets_file(&w.secrets_path).unwrap();
    let rows = edge_e2e::visits(&data);
    let stored = purchases(&data);
    assert_eq!(stored.len(), truth.pos.purchases.len());
    let attributed_of = |txn: &str| -> String {
        stored
            .iter()
            .find(|p| p["transaction_id"] == txn)
            .map(|p| p["attributed_visit_key"].as_str().unwrap().to_string())
            .expect("every receipt is stored")
    };
    let (mut members, mut right, mut walkins, mut walkins_unattributed) = (0, 0, 0, 0);
    let mut attributed_total = 0;
    for p in &truth.pos.purchases {
        let got = attributed_of(&p.txn_id);
        attributed_total += usize::from(!got.is_empty());
        if p.member_phone.is_none() {
            assert!(
                got.is_empty(),
                "{}: no member phone, yet attributed",
                p.txn_id
            );
            continue;
        }
        let Some(v) = &p.visit else {
            walkins += 1;
            walkins_unattributed += usize::from(got.is_empty());
            continue;
        };
        members += 1;
        let true_visit = truth
            .period_visits
            .iter()
            .find(|t| t.mac == v.mac && t.start == v.start)
            .unwrap();
        let (start, end) = (
            (true_visit.start * 1000.0) as i64,
            (true_visit.end * 1000.0) as i64,
        );
        let device = keys.key_hex(&v.mac, start).unwrap();
        // The stored visit of that device overlapping the true visit the most.
        let want = rows
            .iter()
            .filter(|r| r.device_key == device && r.end_ms.min(end) >= r.start_ms.max(start))
            .max_by_key(|r| r.end_ms.min(end) - r.start_ms.max(start))
            .map(|r| r.visit_key.clone());
        right += usize::from(want.is_some_and(|w| w == got));
    }
    let share = right as f64 / members.max(1) as f64;
    println!(
        "3 simulated days (seed 7): member receipts of visitors {members}, attributed to the \
         right visit {right} ({:.1} %); walk-in members {walkins}, left unattributed \
         {walkins_unattributed}",
        share * 100.0
    );
    assert!(members >= 40, "too few member receipts: {members}");
    assert!(
        share >= 0.95,
        "{right} of {members} member receipts attributed right"
    );
    assert_eq!(
        walkins, walkins_unattributed,
        "a walk-in member has no visit to join"
    );
    assert_eq!(attributed_total, right, "only right attributions were made");
}

#[test]
fn tcp_passthrough_forwards_every_byte_to_the_printer_and_stores_the_receipts() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = "epson-tm-t88v-cp858";
    let bytes =
        std::fs::read(repo().join(format!("hardware-profiles/pos/fixtures/{model}.bin"))).unwrap();
    // The network printer: takes everything and answers a status byte to each DLE EOT.
    let printer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let printer_addr = printer.local_addr().unwrap();
    let printed = std::thread::spawn(move || {
        let (mut c, _) = printer.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for w in buf[..n].windows(2) {
                if w == [0x10, 0x04] {
                    c.write_all(&[0x12]).unwrap();
                }
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let config = store_dir(
        d,
        "Europe/Berlin",
        &format!(
            "profile = \"pos/{model}\"\nlisten = \"127.0.0.1:0\"\nforward = \"{printer_addr}\"\n"
        ),
        "[sync]\nlisten = \"127.0.0.1:0\"\n",
    );
    let data = d.join("data");
    let mut agent = Agent::start_live(&config);
    let addr = edge_e2e::passthrough_addr(&agent);
    // The cloud listens for live purchases.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut events = rt.block_on(async {
        let mut c = edge_proto::v1::sync_client::SyncClient::connect(agent.endpoint.clone())
            .await
            .unwrap();
        c.subscribe(edge_proto::v1::SubscribeRequest {
            kinds: vec!["purchase".into()],
        })
        .await
        .unwrap()
        .into_inner()
    });
    // The till prints: both receipts, then a status query whose answer must come back.
    let mut pos = std::net::TcpStream::connect(&addr).unwrap();
    for chunk in bytes.chunks(100) {
        pos.write_all(chunk).unwrap();
    }
    pos.write_all(&[0x10, 0x04, 0x01]).unwrap();
    let mut status = [0u8; 1];
    pos.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    pos.read_exact(&mut status).unwrap();
    assert_eq!(
        status,
        [0x12],
        "the printer's status reply reaches the till"
    );
    drop(pos);
    let mut want = bytes.clone();
    want.extend_from_slice(&[0x10, 0x04, 0x01]);
    assert_eq!(
        printed.join().unwrap(),
        want,
        "the printer got every byte, in order"
    );
    wait_until(Duration::from_secs(20), "both receipts stored", || {
        purchases(&data).len() == 2
    });
    let got = purchases(&data);
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join(format!(
            "hardware-profiles/pos/fixtures/{model}.expected.json"
        )))
        .unwrap(),
    )
    .unwrap();
    for (p, want) in got.iter().zip(expected["receipts"].as_array().unwrap()) {
        assert_eq!(p["transaction_id"], want["transaction_id"]);
        assert_eq!(p["total_minor"], want["total_minor"]);
        // Each stored purchase was announced live, once committed.
        let ev = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), events.message()).await
            })
            .expect("a live purchase event")
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, "purchase");
        match ev.body {
            Some(edge_proto::v1::live_event::Body::Purchase(lp)) => {
                assert_eq!(lp.transaction_id, want["transaction_id"].as_str().unwrap());
                assert_eq!(serde_json::Value::from(lp.total_minor), want["total_minor"]);
            }
            other => panic!("not a purchase: {other:?}"),
        }
    }
    drop(events);
    // A printer that is off: the till's connection is closed, as without the gateway.
    let off = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let off_addr = off.local_addr().unwrap();
    drop(off);
    agent.terminate();
    assert!(agent
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    let config = store_dir(
        d,
        "Europe/Berlin",
        &format!("profile = \"pos/{model}\"\nlisten = \"127.0.0.1:0\"\nforward = \"{off_addr}\"\n"),
        "[sync]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut agent = Agent::start_live(&config);
    let addr = edge_e2e::passthrough_addr(&agent);
    let mut pos = std::net::TcpStream::connect(&addr).unwrap();
    pos.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let n = pos.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the till sees the printer offline");
    assert!(agent
        .wait_for_log("printer unreachable", Duration::from_secs(10))
        .is_some());
    agent.terminate();
    assert!(agent
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    assert_eq!(counter(&data, "printer_unreachable"), 1);
    assert_eq!(purchases(&data).len(), 2, "nothing was lost or doubled");
}
