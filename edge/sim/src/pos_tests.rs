//! Tests of the POS receipt capture: read back only through edge-wire's ESC/POS decoder and
//! edge-core's extraction with the printer profile's own `[extract]` rules, as the agent reads
//! it, and checked against `truth.pos`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use edge_core::pos::{ExtractContext, ExtractRules, ExtractRulesRaw, Transaction};
use edge_core::{phone, LocalClock, PersonKeyer, Region, Secret};
use edge_wire::escpos::{Boundary, DecoderConfig, Encoding, RawReceipt, ReceiptDecoder};

use crate::portal_tests::mobile_digits;
use crate::pos::{decoder_config, width, CATALOGUE};
use crate::tests::{read_truth, small};
use crate::truth::{Purchase, Truth, VisitKind};
use crate::{generate, SimParams, COUNTER_MAIN_FILE, COUNTER_SIDE_FILE, POS_FILE, POS_PROFILE};

/// The simulated printer's hardware profile.
const PROFILE: &str = include_str!("../../../hardware-profiles/pos/xprinter-xp-58iih-gb18030.toml");
/// The profile's example receipt (the layout the simulator follows).
const FIXTURE: &str =
    include_str!("../../../hardware-profiles/pos/fixtures/xprinter-xp-58iih-gb18030.txt");
/// Printed columns of the paper.
const COLUMNS: usize = 32;

fn profile() -> toml::Value {
    toml::from_str(PROFILE).unwrap()
}

/// The profile's `[extract]` table, validated as the agent does.
fn rules() -> ExtractRules {
    let raw: ExtractRulesRaw = profile()["extract"].clone().try_into().unwrap();
    raw.validate().unwrap()
}

/// A decoder configuration read from the profile's `[decode]` table.
fn profile_decoder_config() -> DecoderConfig {
    let p = profile();
    let d = &p["decode"];
    let enc = |key: &str| Encoding::from_name(d[key].as_str().unwrap()).unwrap();
    let code_tables = d["code_tables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(n, e)| {
            (
                n.parse().unwrap(),
                Encoding::from_name(e.as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    DecoderConfig {
        encoding: enc("encoding"),
        code_tables,
        double_byte: Some(enc("double_byte")),
        starts_double_byte: d["starts_double_byte"].as_bool().unwrap(),
        boundary_on_init: d["boundary_on_init"].as_bool().unwrap(),
        boundary_on_drawer_kick: d["boundary_on_drawer_kick"].as_bool().unwrap(),
        ..DecoderConfig::new(Encoding::Cp437)
    }
}

/// Every receipt of a capture, fed in 997-byte chunks (serial reads split anywhere).
fn decode(bytes: &[u8]) -> Vec<RawReceipt> {
    let mut dec = ReceiptDecoder::new(profile_decoder_config());
    let mut out = Vec::new();
    for chunk in bytes.chunks(997) {
        dec.push(chunk, 0, &mut out);
    }
    out.extend(dec.finish());
    out
}

fn keyer() -> PersonKeyer {
    PersonKeyer::new(&Secret::new(vec![7; 32], 1))
}

fn cn() -> Region {
    Region::by_code("CN").unwrap()
}

/// The transaction the agent would read from one receipt.
fn extract(rules: &ExtractRules, r: &RawReceipt, truth: &Truth) -> Transaction {
    let keyer = keyer();
    let clock = LocalClock::new(truth.timezone.parse().unwrap());
    let ctx = ExtractContext {
        keyer: &keyer,
        region: cn(),
        clock: &clock,
        // Received after every simulated day (2100-01-01): a printed time is never ahead of
        // the gateway's clock, so it is taken.
        received_ms: 4_102_444_800_000,
    };
    rules.extract(&r.lines, &ctx).unwrap()
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// Store-local printed time of a truth time.
fn printed_time(truth: &Truth, t: f64) -> String {
    let tz: chrono_tz::Tz = truth.timezone.parse().unwrap();
    chrono::DateTime::from_timestamp(t as i64, 0)
        .unwrap()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A period where many buy, most log in and every logged-in buyer prints their phone.
fn members(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.visitors = 60;
    p.connected_share = 0.8;
    p.purchase_share = 1.0;
    p.member_phone_share = 1.0;
    p
}

/// Three days with returning shoppers and rotating MACs.
fn three_days(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.days = 3;
    p.visitors = 50;
    p.passersby = 40;
    p.connected_share = 0.6;
    p.mac_rotation_secs = Some(300);
    p
}

/// The parameter sets most tests run over: (name, params, expect receipts).
fn cases() -> Vec<(&'static str, SimParams, bool)> {
    let mut walkins = small(13);
    walkins.purchase_share = 0.0;
    walkins.walkin_purchases_per_hour = 12.0;
    let mut none = small(14);
    none.purchase_share = 0.0;
    none.walkin_purchases_per_hour = 0.0;
    vec![
        ("defaults", small(5), true),
        ("three days", three_days(61), true),
        ("members", members(31), true),
        ("walk-ins only", walkins, true),
        ("no sales", none, false),
    ]
}

/// Writes `params` into a fresh directory; returns it and the truth read back from disk.
fn run(params: &SimParams) -> (tempfile::TempDir, Truth) {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(params).write(dir.path()).unwrap();
    assert_eq!(written.pos_path, dir.path().join(POS_FILE));
    assert_eq!(
        written.truth.pos.receipts,
        written.truth.pos.purchases.len() as u32
    );
    // The truth as a reader of `truth.json` sees it (serde_json's float parsing may differ in
    // the last bit from the written values; compare read values with read values).
    let truth = read_truth(dir.path());
    (dir, truth)
}

#[test]
fn decoder_config_matches_the_profile() {
    assert_eq!(decoder_config(), profile_decoder_config());
    assert_eq!(profile()["extract"]["currency"].as_str(), Some("CNY"));
}

/// The agent's reading of every receipt is exactly the truth's purchase.
#[test]
fn capture_decodes_into_the_truth_purchases() {
    let rules = rules();
    let keyer = keyer();
    for (name, params, expect) in cases() {
        let (dir, truth) = run(&params);
        let pt = &truth.pos;
        assert_eq!(
            (pt.path.as_str(), pt.currency.as_str()),
            (POS_FILE, "CNY"),
            "{name}"
        );
        let bytes = std::fs::read(dir.path().join(POS_FILE)).unwrap();
        let receipts = decode(&bytes);
        assert_eq!(receipts.len() as u32, pt.receipts, "{name}");
        assert_eq!(receipts.len(), pt.purchases.len(), "{name}");
        assert_eq!(pt.receipts > 0, expect, "{name}: {} receipts", pt.receipts);
        for (r, p) in receipts.iter().zip(&pt.purchases) {
            let at = format!("{name}: {}", p.txn_id);
            assert_eq!(r.boundary, Boundary::Cut, "{at}");
            assert_eq!(r.issues, Default::default(), "{at}");
            let t = extract(&rules, r, &truth);
            assert_eq!(t.txn_id, p.txn_id, "{at}");
            assert!(t.time_from_receipt, "{at}");
            assert_eq!(t.time_ms, p.time as i64 * 1000, "{at}");
            assert_eq!(t.total_minor, p.total_minor, "{at}");
            assert_eq!(t.currency, "CNY");
            let items: Vec<_> = t
                .items
                .iter()
                .map(|i| (i.name.as_str(), i.qty, i.unit_minor, i.amount_minor))
                .collect();
            let expected: Vec<_> = p
                .items
                .iter()
                .map(|i| (i.name.as_str(), i.qty, Some(i.unit_minor), i.amount_minor))
                .collect();
            assert_eq!(items, expected, "{at}");
            let items_sum: i64 = p.items.iter().map(|i| i.amount_minor).sum();
            assert_eq!(t.items_total_mismatch, items_sum != p.total_minor, "{at}");
            assert_eq!(t.payment.as_deref(), Some(p.payment.as_str()), "{at}");
            // A member phone is keyed exactly when the truth has one, to that phone's key.
            let key = p
                .member_phone
                .as_deref()
                .map(|ph| keyer.key(&phone::normalize(ph, cn()).unwrap()));
            assert_eq!(t.person, key, "{at}");
            assert_eq!(t.phone_issue, None, "{at}");
            let member_lines = r.lines.iter().filter(|l| l.starts_with("会员手机")).count();
            assert_eq!(member_lines, usize::from(p.member_phone.is_some()), "{at}");

            // The raw text as the profile's regexes expect it.
            let text = r.text();
            assert!(text.contains(&format!("流水号：{}", p.txn_id)), "{at}");
            let time = printed_time(&truth, p.time);
            assert!(text.contains(&format!("交易时间：{time}")), "{at}");
            assert!(
                text.contains(&format!("应付金额：{}", yuan(p.total_minor))),
                "{at}"
            );
            for line in &r.lines {
                assert!(width(line) <= COLUMNS, "{at}: {line:?} too wide");
            }
            // QR code (e-fapiao link) and CODE128 barcode of the id.
            assert_eq!(r.barcodes, [format!("{{B{}", p.txn_id)], "{at}");
            assert_eq!(r.qr.len(), 1, "{at}");
            assert!(r.qr[0].contains(&format!("no={}&", p.txn_id)), "{at}");
            assert!(
                r.qr[0].contains(&format!("amt={}&", yuan(p.total_minor))),
                "{at}"
            );
            // The drawer opens for cash only.
            let raw = &bytes[r.start_offset as usize..r.end_offset as usize];
            let kicks = raw.windows(3).filter(|w| w == b"\x1bp\x00").count();
            assert_eq!(kicks, usize::from(p.payment == "现金"), "{at}");
            assert!(raw.starts_with(b"\x1b@\x1c&"), "{at}");
        }
    }
}

/// The fixed lines of the fixture's layout are printed as they are there.
#[test]
fn receipts_follow_the_fixture_layout() {
    let (dir, truth) = run(&members(31));
    let bytes = std::fs::read(dir.path().join(POS_FILE)).unwrap();
    let fixture: Vec<&str> = FIXTURE.lines().collect();
    let header = &fixture[..6];
    let items_header = fixture.iter().find(|l| l.starts_with("品名")).unwrap();
    let receipts = decode(&bytes);
    assert!(!receipts.is_empty());
    for (r, p) in receipts.iter().zip(&truth.pos.purchases) {
        assert_eq!(&r.lines[..6], header, "{}", p.txn_id);
        assert_eq!(r.lines[6], format!("流水号：{}", p.txn_id));
        assert!(r.lines.iter().any(|l| l == items_header));
        // Item names each on their own line, followed by the qty/unit/amount line.
        for item in &p.items {
            let i = r.lines.iter().position(|l| *l == item.name).unwrap();
            let next: Vec<&str> = r.lines[i + 1].split_whitespace().collect();
            let qty = item.qty.to_string();
            let (unit, amount) = (yuan(item.unit_minor), yuan(item.amount_minor));
            assert_eq!(next, [qty.as_str(), unit.as_str(), amount.as_str()]);
        }
    }
    // Every catalogue name fits one line.
    for (name, unit) in CATALOGUE {
        assert!(width(name) <= COLUMNS && unit > 0, "{name}");
    }
}

/// The truth adds up and every purchase sits where the module doc says.
#[test]
fn pos_truth_is_consistent() {
    for (name, params, _) in cases() {
        let (_dir, truth) = run(&params);
        let pt = &truth.pos;
        assert_eq!(pt.receipts as usize, pt.purchases.len(), "{name}");
        let sum: i64 = pt.purchases.iter().map(|p| p.total_minor).sum();
        assert_eq!(pt.sales_minor, sum, "{name}");
        let days: Vec<&str> = pt.days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(days, truth.period_days, "{name}");
        for d in &pt.days {
            let of_day: Vec<&Purchase> = truth.purchases_on(&d.day).collect();
            assert_eq!(d.receipts as usize, of_day.len(), "{name} {}", d.day);
            let sum: i64 = of_day.iter().map(|p| p.total_minor).sum();
            assert_eq!(d.sales_minor, sum, "{name} {}", d.day);
        }
        assert_eq!(pt.days.iter().map(|d| d.receipts).sum::<u32>(), pt.receipts);

        let visits: HashMap<(&str, u64), _> = truth
            .period_visits
            .iter()
            .map(|v| ((v.mac.as_str(), v.start.to_bits()), v))
            .collect();
        let visit_phones: HashSet<&str> = truth
            .period_visits
            .iter()
            .filter_map(|v| v.phone.as_deref())
            .collect();
        let mut ids = HashSet::new();
        let mut bought = HashSet::new();
        let mut serials: HashMap<&str, u32> = HashMap::new();
        let mut last = f64::MIN;
        for p in &pt.purchases {
            let at = format!("{name}: {}", p.txn_id);
            assert!(p.time >= last && p.time.fract() == 0.0, "{at}");
            last = p.time;
            assert!(ids.insert(p.txn_id.clone()), "{at}: duplicate id");
            // `1` + business day + the day's serial, in time order from 0001.
            let ymd = p.day.replace('-', "");
            let serial = p.txn_id.strip_prefix(&format!("1{ymd}")).unwrap();
            assert!(serial.len() >= 4 && serial.bytes().all(|b| b.is_ascii_digit()));
            let n = serials.entry(p.day.as_str()).or_insert(0);
            *n += 1;
            assert_eq!(serial.parse::<u32>().unwrap(), *n, "{at}");
            assert!(!p.items.is_empty() && p.items.len() <= 6, "{at}");
            let names: HashSet<&str> = p.items.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(names.len(), p.items.len(), "{at}: repeated product");
            for i in &p.items {
                assert!((1..=3).contains(&i.qty), "{at}");
                assert_eq!(i.amount_minor, i.unit_minor * i64::from(i.qty), "{at}");
                assert!(CATALOGUE.contains(&(i.name.as_str(), i.unit_minor)), "{at}");
            }
            let items_sum: i64 = p.items.iter().map(|i| i.amount_minor).sum();
            assert!(p.total_minor > 0 && p.total_minor <= items_sum, "{at}");
            if p.total_minor < items_sum {
                assert!(p.member_phone.is_some(), "{at}: discount without member");
            }
            assert!(
                ["微信支付", "支付宝", "现金", "银联卡"].contains(&p.payment.as_str()),
                "{at}"
            );
            if let Some(ph) = &p.member_phone {
                let digits = ph.strip_prefix("+86").unwrap();
                assert_eq!(mobile_digits(digits).as_deref(), Some(digits), "{at}");
            }
            match &p.visit {
                Some(vr) => {
                    let v = visits[&(vr.mac.as_str(), vr.start.to_bits())];
                    assert_eq!(v.kind, VisitKind::Visitor, "{at}");
                    assert_eq!(v.day, p.day, "{at}");
                    assert!(
                        bought.insert((&v.mac, v.start.to_bits())),
                        "{at}: bought twice"
                    );
                    // Second half of the visit, at least 1 minute before its end.
                    assert!(p.time >= v.start + (v.end - v.start) / 2.0 - 1e-6, "{at}");
                    assert!(p.time <= v.end - 60.0 + 1e-6, "{at}");
                    if p.member_phone.is_some() {
                        assert_eq!(p.member_phone, v.phone, "{at}");
                    }
                }
                None => {
                    // A walk-in: inside opening hours; a member number nobody logged in with.
                    if let Some(ph) = &p.member_phone {
                        assert!(!visit_phones.contains(ph.as_str()), "{at}");
                    }
                    let local = printed_time(&truth, p.time);
                    let hour: u32 = local[11..13].parse().unwrap();
                    let open = params.open_hour..params.open_hour + params.open_hours;
                    assert!(open.contains(&hour), "{at}: {local}");
                }
            }
        }
        // Walk-in numbers are all different.
        let walkin_phones: Vec<&String> = pt
            .purchases
            .iter()
            .filter(|p| p.visit.is_none())
            .filter_map(|p| p.member_phone.as_ref())
            .collect();
        let distinct: HashSet<_> = walkin_phones.iter().collect();
        assert_eq!(distinct.len(), walkin_phones.len(), "{name}");
    }
}

/// Shares over a larger period land near their parameters.
#[test]
fn shares_follow_the_params() {
    let mut p = small(77);
    p.days = 3;
    p.visitors = 120;
    p.passersby = 20;
    p.zones = 1;
    p.connected_share = 0.5;
    p.walkin_purchases_per_hour = 30.0;
    let (_dir, truth) = run(&p);
    let pt = &truth.pos;
    let visitor_visits = truth
        .period_visits
        .iter()
        .filter(|v| v.kind == VisitKind::Visitor)
        .count() as f64;
    let (from_visits, walkins): (Vec<&Purchase>, Vec<&Purchase>) =
        pt.purchases.iter().partition(|p| p.visit.is_some());
    let share = from_visits.len() as f64 / visitor_visits;
    assert!((0.25..=0.45).contains(&share), "purchase share {share}");
    let phone_of: HashMap<(&str, u64), Option<&str>> = truth
        .period_visits
        .iter()
        .map(|v| ((v.mac.as_str(), v.start.to_bits()), v.phone.as_deref()))
        .collect();
    let logged_in: Vec<&&Purchase> = from_visits
        .iter()
        .filter(|p| {
            let vr = p.visit.as_ref().unwrap();
            phone_of[&(vr.mac.as_str(), vr.start.to_bits())].is_some()
        })
        .collect();
    assert!(logged_in.len() >= 30, "{}", logged_in.len());
    let members = logged_in
        .iter()
        .filter(|p| p.member_phone.is_some())
        .count();
    let share = members as f64 / logged_in.len() as f64;
    assert!((0.4..=0.8).contains(&share), "member phone share {share}");
    // 30 an hour over 3 days of 2 hours: 180 expected (Poisson, sd ≈ 13).
    assert!((130..=230).contains(&walkins.len()), "{}", walkins.len());
    let share =
        walkins.iter().filter(|p| p.member_phone.is_some()).count() as f64 / walkins.len() as f64;
    assert!(
        (0.22..=0.45).contains(&share),
        "walk-in member share {share}"
    );
    let cash = pt.purchases.iter().filter(|p| p.payment == "现金").count() as f64
        / pt.purchases.len() as f64;
    assert!((0.05..=0.2).contains(&cash), "cash share {cash}");
    for method in ["微信支付", "支付宝", "现金", "银联卡"] {
        assert!(pt.purchases.iter().any(|p| p.payment == method), "{method}");
    }
    assert!(pt.purchases.iter().any(|p| p.items.len() >= 4));
}

#[test]
fn capture_is_deterministic() {
    for (name, params, expect) in cases() {
        let mut other = params.clone();
        other.seed += 1000;
        let (a, ta) = run(&params);
        let (b, tb) = run(&params);
        let (c, tc) = run(&other);
        let read = |d: &Path| std::fs::read(d.join(POS_FILE)).unwrap();
        assert!(
            read(a.path()) == read(b.path()),
            "{name}: differs between runs"
        );
        assert_eq!(ta.pos, tb.pos, "{name}");
        if expect {
            assert!(
                read(a.path()) != read(c.path()),
                "{name}: same for other seed"
            );
            assert_ne!(ta.pos, tc.pos, "{name}");
        } else {
            assert!(read(a.path()).is_empty() && read(c.path()).is_empty());
        }
    }
}

/// FNV-1a 64 (as period_tests' golden test).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Every output but the capture, `truth.json` and `config.toml` is byte-identical to what the
/// simulator wrote before receipts existed (hashes of `small(5)` taken then, the same as in
/// period_tests), and `config.toml` is the old one plus the `[[sources.pos]]` table.
#[test]
fn receipts_leave_the_old_outputs_unchanged() {
    let (dir, _) = run(&small(5));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let expected: [(&str, u64); 6] = [
        ("portal-binauth.log", 0xd381_a853_03bb_3270),
        ("portal-detail", 0x33b3_af8b_12fa_aac6),
        ("secrets.toml", 0x1869_856c_3e20_0df5),
        ("wifi-apparel.pcap", 0xa946_619c_2fa2_944c),
        ("wifi-checkout.pcap", 0xd5f5_1394_962d_d21b),
        ("wifi-entrance.pcap", 0xed7a_9adc_8e8a_75a4),
    ];
    let actual: Vec<(&str, u64)> = expected
        .iter()
        .map(|&(name, _)| (name, fnv64(&read(name))))
        .collect();
    assert_eq!(actual, expected, "actual hashes: {actual:#x?}");
    let config = String::from_utf8(read("config.toml")).unwrap();
    // The counter tables came later (counter_tests checks them).
    let config = config.replacen(crate::counter_tests::COUNTER_TABLES, "", 1);
    let table = format!(
        "\n[[sources.pos]]\nname = \"pos\"\nprofile = \"{POS_PROFILE}\"\nfile = \"{POS_FILE}\"\n"
    );
    assert_eq!(config.matches(&table).count(), 1);
    let old = config.replacen(&table, "", 1);
    assert_eq!(fnv64(old.as_bytes()), 0x9366_6f86_7829_fe38);
}

/// Whatever the POS parameters, nothing else changes: same pcaps, portal files, config,
/// secrets, and the same truth outside `pos` — but for the door counters, which count the
/// walk-in buyers (counter_tests checks them).
#[test]
fn pos_params_change_only_the_capture() {
    let base = three_days(61);
    let mut off = base.clone();
    off.purchase_share = 0.0;
    off.walkin_purchases_per_hour = 0.0;
    let mut busy = base.clone();
    busy.purchase_share = 1.0;
    busy.member_phone_share = 0.3;
    busy.walkin_purchases_per_hour = 40.0;
    let (a, ta) = run(&base);
    let names: Vec<String> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            ![POS_FILE, "truth.json", COUNTER_MAIN_FILE, COUNTER_SIDE_FILE].contains(&n.as_str())
        })
        .collect();
    assert_eq!(names.len(), 3 + 4, "{names:?}"); // 3 pcaps, portal ×2, config, secrets
    let mut captures = vec![std::fs::read(a.path().join(POS_FILE)).unwrap()];
    for params in [off, busy] {
        let (b, tb) = run(&params);
        for name in &names {
            let x = std::fs::read(a.path().join(name)).unwrap();
            let y = std::fs::read(b.path().join(name)).unwrap();
            assert!(x == y, "{name} changed with the POS params");
        }
        let strip = |t: &Truth| Truth {
            pos: Default::default(),
            counter: Default::default(),
            ..t.clone()
        };
        assert_eq!(strip(&ta), strip(&tb));
        captures.push(std::fs::read(b.path().join(POS_FILE)).unwrap());
    }
    assert!(captures[1].is_empty());
    assert!(captures[0] != captures[2] && !captures[2].is_empty());
}

#[test]
fn config_reads_the_capture() {
    let (dir, _) = run(&small(5));
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let config: toml::Value = toml::from_str(&text).unwrap();
    let pos = config["sources"]["pos"].as_array().unwrap();
    assert_eq!(pos.len(), 1);
    let table = pos[0].as_table().unwrap();
    let keys: Vec<&str> = table.keys().map(String::as_str).collect();
    assert_eq!(keys, ["file", "name", "profile"]);
    assert_eq!(table["name"].as_str(), Some("pos"));
    assert_eq!(table["profile"].as_str(), Some(POS_PROFILE));
    assert_eq!(table["file"].as_str(), Some(POS_FILE));
    assert!(dir.path().join(POS_FILE).is_file());
    // The profile id names the profile file.
    let stem = POS_PROFILE.strip_prefix("pos/").unwrap();
    assert!(PROFILE.contains("model = \"XP-58IIH\"") && stem.contains("58iih"));
}

#[test]
fn validate_and_clamp_the_pos_params() {
    let p = small(1);
    assert_eq!(
        (
            p.purchase_share,
            p.member_phone_share,
            p.walkin_purchases_per_hour
        ),
        (0.35, 0.6, 2.0)
    );
    assert!(p.validate().is_ok());
    type Set = fn(&mut SimParams, f64);
    let set_purchase: Set = |p, v| p.purchase_share = v;
    let set_member: Set = |p, v| p.member_phone_share = v;
    let set_walkin: Set = |p, v| p.walkin_purchases_per_hour = v;
    // (field, setter, value, accepted, clamped value)
    let table: [(&str, Set, f64, bool, f64); 12] = [
        ("purchase_share", set_purchase, 0.0, true, 0.0),
        ("purchase_share", set_purchase, 1.0, true, 1.0),
        ("purchase_share", set_purchase, 1.5, false, 1.0),
        ("purchase_share", set_purchase, f64::NAN, false, 0.0),
        ("member_phone_share", set_member, -0.1, false, 0.0),
        ("member_phone_share", set_member, 0.5, true, 0.5),
        ("member_phone_share", set_member, f64::NAN, false, 0.0),
        ("walkin_purchases_per_hour", set_walkin, 0.0, true, 0.0),
        ("walkin_purchases_per_hour", set_walkin, 120.0, true, 120.0),
        ("walkin_purchases_per_hour", set_walkin, 121.0, false, 120.0),
        ("walkin_purchases_per_hour", set_walkin, -1.0, false, 0.0),
        (
            "walkin_purchases_per_hour",
            set_walkin,
            f64::NAN,
            false,
            0.0,
        ),
    ];
    for (field, set, value, ok, clamped) in table {
        let mut q = small(1);
        set(&mut q, value);
        match q.validate() {
            Ok(()) => assert!(ok, "{field} = {value} accepted"),
            Err(e) => assert!(!ok && e.contains(field), "{field} = {value}: {e}"),
        }
        let day = generate(&q);
        let got = match field {
            "purchase_share" => day.params().purchase_share,
            "member_phone_share" => day.params().member_phone_share,
            _ => day.params().walkin_purchases_per_hour,
        };
        assert_eq!(got, clamped, "{field} = {value}");
    }
    let mut q = small(1);
    q.walkin_purchases_per_hour = f64::INFINITY;
    assert!(q.validate().is_err());
    assert_eq!(generate(&q).params().walkin_purchases_per_hour, 120.0);
}
