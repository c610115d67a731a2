//! Tests of multi-day periods (returning shoppers) and of rotating randomized MACs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use edge_wire::ieee80211::FrameKind;
use edge_wire::portal::detail::AcctStatus;
use edge_wire::MacAddr;

use crate::portal_tests::{mobile_digits, read_binauth, read_detail};
use crate::tests::{assert_truth_close, date, read_pcap, read_truth, small};
use crate::truth::{PathStep, RepeatClass, Truth, Visit, VisitKind};
use crate::{generate, SimParams};

/// FNV-1a 64 of `bytes` (a stable fingerprint for the golden test; no hashing crate needed).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fields a truth visit had before periods and MAC rotation, in their order then.
#[derive(serde::Serialize, serde::Deserialize)]
struct VisitBeforePeriods {
    mac: String,
    kind: VisitKind,
    randomized: bool,
    connected: bool,
    phone: Option<String>,
    login: Option<f64>,
    start: f64,
    end: f64,
    inside_secs: f64,
    path: Vec<PathStep>,
}

/// With the default `days`, `return_share` and `mac_rotation_secs`, every file but
/// `truth.json` is byte-identical to what the simulator wrote before periods and MAC rotation
/// existed, and `truth.visits` holds the same visits (the new fields aside). The hashes were
/// taken from the simulator before that change. If a deliberate change of the simulation
/// breaks this test, take the new hashes from its failure message.
#[test]
fn default_output_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(5)).write(dir.path()).unwrap().truth;
    let expected: [(&str, u64); 8] = [
        ("config.toml", 0x0542_a5cd_bd5f_2905),
        ("portal-binauth.log", 0xd381_a853_03bb_3270),
        ("portal-detail", 0x33b3_af8b_12fa_aac6),
        ("secrets.toml", 0x1869_856c_3e20_0df5),
        ("wifi-apparel.pcap", 0xa946_619c_2fa2_944c),
        ("wifi-checkout.pcap", 0xd5f5_1394_962d_d21b),
        ("wifi-entrance.pcap", 0xed7a_9adc_8e8a_75a4),
        ("visits", 0x5476_190a_3999_2427),
    ];
    let actual: Vec<(&str, u64)> = expected
        .iter()
        .map(|&(name, _)| {
            let bytes = if name == "visits" {
                let old: Vec<VisitBeforePeriods> =
                    serde_json::from_value(serde_json::to_value(&truth.visits).unwrap()).unwrap();
                serde_json::to_vec_pretty(&old).unwrap()
            } else {
                std::fs::read(dir.path().join(name)).unwrap()
            };
            (name, fnv64(&bytes))
        })
        .collect();
    assert_eq!(actual, expected, "actual hashes: {actual:#x?}");
    // The new fields of a one-day period.
    assert_eq!(truth.period_days, ["2025-03-14"]);
    assert_eq!(truth.period_visits, truth.visits);
    for v in &truth.visits {
        assert_eq!(v.day, "2025-03-14");
        assert_eq!(v.macs, std::slice::from_ref(&v.mac));
        assert_eq!(v.person.is_some(), v.repeat.is_some());
        if v.person.is_some() {
            assert_eq!(v.repeat.as_deref(), Some("first"));
        }
    }
}

/// Three days, many connected visitors, 30 % returning shoppers.
fn three_days(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.days = 3;
    p.visitors = 50;
    p.passersby = 40;
    p.connected_share = 0.6;
    p
}

/// A person's visits, by start.
fn by_person(truth: &Truth) -> BTreeMap<u32, Vec<&Visit>> {
    let mut out: BTreeMap<u32, Vec<&Visit>> = BTreeMap::new();
    for v in &truth.period_visits {
        if let Some(p) = v.person {
            out.entry(p).or_default().push(v);
        }
    }
    out
}

#[test]
fn several_days_with_returning_shoppers() {
    let dir = tempfile::tempdir().unwrap();
    let params = three_days(51);
    let written = generate(&params).write(dir.path()).unwrap();
    let truth = read_truth(dir.path());
    assert_truth_close(&truth, &written.truth);
    let days = ["2025-03-12", "2025-03-13", "2025-03-14"];
    assert_eq!(truth.period_days, days);
    assert_eq!(truth.date, "2025-03-14");
    // `visits` is the main day of `period_visits`; both sorted by start, then MAC.
    let main: Vec<Visit> = truth.visits_on(&truth.date).cloned().collect();
    assert_eq!(truth.visits, main);
    for list in [&truth.visits, &truth.period_visits] {
        assert!(list
            .windows(2)
            .all(|w| (w[0].start, &w[0].mac) <= (w[1].start, &w[1].mac)));
    }

    // Every day has visitors, passers-by and staff, on that local day.
    let tz: chrono_tz::Tz = truth.timezone.parse().unwrap();
    for day in days {
        let of = |k: VisitKind| truth.visits_on(day).filter(|v| v.kind == k).count();
        assert!(of(VisitKind::Visitor) >= 40, "{day}");
        assert!(of(VisitKind::Passerby) >= 30, "{day}");
        assert_eq!(of(VisitKind::Staff), params.staff as usize, "{day}");
        for v in truth.visits_on(day) {
            let local = chrono::DateTime::from_timestamp(v.start as i64, 0)
                .unwrap()
                .with_timezone(&tz);
            assert_eq!(local.format("%Y-%m-%d").to_string(), day);
        }
    }
    // Persons: every visitor device (short visits too), nobody else.
    for v in &truth.period_visits {
        match v.kind {
            VisitKind::Visitor => assert!(v.person.is_some()),
            VisitKind::Staff => assert!(v.person.is_none()),
            VisitKind::Passerby => assert_eq!(v.person.is_some(), v.inside_secs > 0.0),
        }
        assert_eq!(v.person.is_some(), v.repeat.is_some());
        assert_eq!(
            v.macs,
            std::slice::from_ref(&v.mac),
            "no rotation asked for"
        );
    }

    // Repeat classes follow from the end of the person's previous visit.
    let persons = by_person(&truth);
    let mut classes: HashMap<&str, usize> = HashMap::new();
    for visits in persons.values() {
        let mut previous_end = None;
        for v in visits {
            let class = RepeatClass::of(previous_end, v.start).as_str();
            assert_eq!(v.repeat.as_deref(), Some(class), "{v:?}");
            *classes.entry(class).or_default() += 1;
            previous_end = Some(v.end);
        }
    }
    // Gaps vary: the next day (mostly within 24 h of the previous end) and two days later.
    assert!(
        classes["within_1d"] > 0 && classes["within_7d"] > 0,
        "{classes:?}"
    );
    // About 30 % of the later days' visitors are returning (15 of 50, minus the odd device
    // that was never captured).
    for day in &days[1..] {
        let returning = truth
            .visits_on(day)
            .filter(|v| v.repeat.as_deref().is_some_and(|r| r != "first"))
            .count();
        assert!((13..=15).contains(&returning), "{day}: {returning}");
    }
    assert!(truth
        .visits_on(days[0])
        .all(|v| v.repeat.as_deref().is_none_or(|r| r == "first")));

    // Returning persons keep their phone and device; only a randomized phone that probes
    // without connecting shows a new MAC.
    let mut phone_owner: HashMap<&str, u32> = HashMap::new();
    let (mut kept_phone, mut new_probe_mac, mut kept_network_mac) = (0, 0, 0);
    for (person, visits) in &persons {
        let phones: HashSet<&str> = visits.iter().filter_map(|v| v.phone.as_deref()).collect();
        assert!(phones.len() <= 1, "person {person}: {phones:?}");
        if let Some(phone) = phones.iter().next() {
            assert_eq!(*phone_owner.entry(phone).or_insert(*person), *person);
            if visits.iter().filter(|v| v.connected).count() > 1 {
                kept_phone += 1;
            }
        }
        for v in visits {
            assert_eq!(v.connected, v.phone.is_some());
            assert_eq!(v.randomized, visits[0].randomized, "same device");
        }
        for (i, v) in visits.iter().enumerate().skip(1) {
            let earlier = &visits[..i];
            if !v.randomized {
                assert_eq!(v.mac, visits[0].mac);
            } else if v.connected {
                if let Some(c) = earlier.iter().find(|e| e.connected) {
                    assert_eq!(v.mac, c.mac, "per-network MAC");
                    kept_network_mac += 1;
                }
            } else {
                assert!(earlier.iter().all(|e| e.mac != v.mac), "{v:?}");
                new_probe_mac += 1;
            }
        }
    }
    assert!(
        kept_phone > 0 && new_probe_mac > 0,
        "{kept_phone} {new_probe_mac}"
    );
    assert!(kept_network_mac > 0);

    // The portal files hold the logins of all days: one Start and one client_auth per
    // connected visit, at its login time, with its MAC and phone.
    let connected: Vec<&Visit> = truth.period_visits.iter().filter(|v| v.connected).collect();
    assert_eq!(truth.portal.logins as usize, connected.len());
    for day in days {
        assert!(connected.iter().filter(|v| v.day == day).count() >= 15);
    }
    let (records, malformed) = read_detail(&written.portal_detail_path);
    assert_eq!(
        records.len() as u32 + malformed,
        truth.portal.detail_records
    );
    let mut starts: HashMap<(MacAddr, i64), String> = HashMap::new();
    for (_, r) in &records {
        if r.status == AcctStatus::Start {
            let key = (r.calling_station.unwrap(), r.time_s.unwrap());
            assert!(starts.insert(key, r.user_name.clone().unwrap()).is_none());
        }
    }
    for v in &connected {
        let key = (v.mac.parse().unwrap(), v.login.unwrap() as i64);
        let typed = starts.remove(&key).unwrap_or_else(|| panic!("{v:?}"));
        let phone = v.phone.as_deref().unwrap();
        assert_eq!(mobile_digits(&typed).as_deref(), phone.strip_prefix("+86"));
    }
    assert_eq!(starts.len() as u32, truth.portal.invalid_phones_detail);
    let (lines, bad) = read_binauth(&written.portal_binauth_path);
    let auths: HashSet<(MacAddr, i64)> = lines
        .iter()
        .filter(|l| l.method == "client_auth")
        .map(|l| (l.client_mac, l.session_start.unwrap()))
        .collect();
    assert_eq!(lines.len() as u32 + bad, truth.portal.binauth_lines);
    for v in &connected {
        assert!(auths.contains(&(v.mac.parse().unwrap(), v.login.unwrap() as i64)));
    }
    assert_eq!(auths.len(), connected.len() + 1, "+1 invalid phone");
}

#[test]
fn returning_persons_keep_their_phone_across_many_days() {
    // Two weeks, everyone long enough connected: gaps up to weeks, a phone per person.
    let dir = tempfile::tempdir().unwrap();
    let mut p = small(52);
    p.days = 14;
    p.visitors = 20;
    p.passersby = 5;
    p.open_hours = 1;
    p.connected_share = 1.0;
    p.return_share = 0.5;
    let truth = generate(&p).write(dir.path()).unwrap().truth;
    assert_eq!(truth.period_days.len(), 14);
    assert_eq!(truth.period_days.last(), Some(&truth.date));
    let mut classes = HashSet::new();
    for visits in by_person(&truth).values() {
        let phones: HashSet<_> = visits.iter().filter_map(|v| v.phone.as_ref()).collect();
        assert!(phones.len() <= 1);
        classes.extend(visits.iter().map(|v| v.repeat.clone().unwrap()));
    }
    for c in ["first", "within_1d", "within_7d", "within_30d"] {
        assert!(classes.contains(c), "{c} missing: {classes:?}");
    }
    let phones: HashSet<_> = truth
        .period_visits
        .iter()
        .filter_map(|v| v.phone.as_ref())
        .collect();
    let persons: HashSet<_> = truth
        .period_visits
        .iter()
        .filter(|v| v.connected)
        .map(|v| v.person.unwrap())
        .collect();
    assert_eq!(phones.len(), persons.len(), "one phone per person");
}

#[test]
fn periods_and_rotation_are_deterministic() {
    let mut p = three_days(61);
    p.mac_rotation_secs = Some(300);
    let mut q = p.clone();
    q.seed = 62;
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&p).write(a.path()).unwrap();
    generate(&p).write(b.path()).unwrap();
    generate(&q).write(c.path()).unwrap();
    for name in [
        "wifi-entrance.pcap",
        "wifi-apparel.pcap",
        "wifi-checkout.pcap",
        "truth.json",
        "portal-detail",
        "portal-binauth.log",
    ] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        let z = std::fs::read(c.path().join(name)).unwrap();
        assert!(x == y, "{name} differs between identical runs");
        assert!(x != z, "{name} identical for different seeds");
    }
    // Changing `return_share` alone changes the period.
    let mut r = p.clone();
    r.return_share = 0.6;
    let d = tempfile::tempdir().unwrap();
    generate(&r).write(d.path()).unwrap();
    assert_ne!(
        std::fs::read(d.path().join("truth.json")).unwrap(),
        std::fs::read(a.path().join("truth.json")).unwrap()
    );
}

/// Rotation only swaps MACs: the same visits, at the same times, with the same frames.
#[test]
fn rotation_changes_nothing_but_macs() {
    let plain = small(71);
    let mut rotating = plain.clone();
    rotating.mac_rotation_secs = Some(300);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let x = generate(&plain).write(a.path()).unwrap().truth;
    let y = generate(&rotating).write(b.path()).unwrap().truth;
    assert_eq!(x.files, y.files);
    assert_eq!(x.portal, y.portal);
    assert_eq!(x.totals, y.totals);
    assert_eq!(x.visits.len(), y.visits.len());
    let mut rotated = 0;
    for v in &y.visits {
        let u = x
            .visits
            .iter()
            .find(|u| (u.start, u.end) == (v.start, v.end) && u.path == v.path)
            .unwrap();
        assert_eq!(
            (u.kind, u.randomized, u.connected),
            (v.kind, v.randomized, v.connected)
        );
        assert_eq!((&u.phone, u.login, u.person), (&v.phone, v.login, v.person));
        if v.macs.len() > 1 {
            rotated += 1;
        } else if !v.randomized || v.connected {
            assert_eq!(u.mac, v.mac);
        }
    }
    assert!(rotated > 5, "{rotated}");
    for name in ["portal-detail", "portal-binauth.log"] {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap()
        );
    }
}

/// One clean client frame as the agent's parser sees it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    ts_us: i64,
    seq: u16,
    kind: FrameKind,
    fingerprint: Option<u32>,
}

/// Clean client frames of every sniffer, by transmitter MAC, in time order.
fn frames_by_mac(dir: &Path, truth: &Truth) -> HashMap<String, Vec<Frame>> {
    let mut out: HashMap<String, Vec<Frame>> = HashMap::new();
    for f in &truth.files {
        for r in read_pcap(&dir.join(&f.path)) {
            if r.data.len() < r.orig_len {
                continue;
            }
            if let Ok(p) = edge_wire::presence::parse(127, &r.data) {
                out.entry(p.mac.to_string()).or_default().push(Frame {
                    ts_us: r.ts_us,
                    seq: p.seq.unwrap(),
                    kind: p.kind,
                    fingerprint: p.fingerprint,
                });
            }
        }
    }
    for frames in out.values_mut() {
        frames.sort_by_key(|f| (f.ts_us, f.seq));
    }
    out
}

fn is_local(mac: &str) -> bool {
    u8::from_str_radix(&mac[..2], 16).unwrap() & 0x02 != 0
}

#[test]
fn rotating_macs_follow_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = small(81);
    params.visitors = 60;
    params.randomized_share = 0.6;
    params.connected_share = 0.3;
    params.history_days = 0;
    params.days = 2;
    params.mac_rotation_secs = Some(300);
    let truth = generate(&params).write(dir.path()).unwrap().truth;
    let frames = frames_by_mac(dir.path(), &truth);

    let mut all_macs = HashSet::new();
    let mut probe_only_macs = HashSet::new();
    let (mut rotating, mut changes) = (0, 0);
    for v in &truth.period_visits {
        assert_eq!(v.mac, v.macs[0]);
        all_macs.extend(v.macs.iter().cloned());
        if !v.randomized || v.connected {
            assert_eq!(v.macs.len(), 1, "{v:?}");
            continue;
        }
        // Probe-only randomized MACs are fresh: used in one visit only, on any day.
        for m in &v.macs {
            assert!(is_local(m));
            assert!(probe_only_macs.insert(m.clone()), "{m} used by two visits");
        }
        // At most 1.2 × 300 s per MAC: a visit needs roughly that long per MAC it shows.
        assert!(
            v.end - v.start <= 360.0 * v.macs.len() as f64,
            "{} MACs over {} s",
            v.macs.len(),
            v.end - v.start
        );
        if v.macs.len() > 1 {
            rotating += 1;
            changes += v.macs.len() - 1;
        }
        // The device's frames, MAC by MAC, in the truth's order.
        let mut previous: Option<Frame> = None;
        let mut fingerprints = HashSet::new();
        for m in &v.macs {
            let fs = &frames[m];
            let (first, last) = (fs[0], fs[fs.len() - 1]);
            assert!(first.ts_us as f64 / 1e6 >= v.start - 1e-6);
            assert!(last.ts_us as f64 / 1e6 <= v.end + 1e-6);
            assert!(
                last.ts_us - first.ts_us <= 360_000_000,
                "{m} used for {} s",
                (last.ts_us - first.ts_us) / 1_000_000
            );
            if let Some(prev) = previous {
                assert!(first.ts_us > prev.ts_us, "{m} out of order");
                // The sequence counter runs on across the change (a few frames may be lost).
                let step = first.seq.wrapping_sub(prev.seq) & 0x0fff;
                assert!(
                    (1..=16).contains(&step),
                    "{m}: seq {} → {}",
                    prev.seq,
                    first.seq
                );
            }
            previous = Some(last);
            fingerprints.extend(
                fs.iter()
                    .filter(|f| f.kind == FrameKind::ProbeRequest)
                    .map(|f| f.fingerprint.unwrap()),
            );
        }
        assert_eq!(
            fingerprints.len(),
            1,
            "one IE fingerprint per device: {v:?}"
        );
    }
    assert!(rotating >= 20 && changes >= 40, "{rotating} {changes}");
    // Every MAC on the air is listed in the truth (MACs are unique, so the per-MAC checks
    // above cover every frame of every rotating device).
    for m in frames.keys() {
        assert!(all_macs.contains(m), "{m} not in truth");
    }

    // Sightings of the main day: clean client frames at or after its local midnight.
    let main_start = params.local_hour_us(params.date, 0);
    let (mut sightings, mut randomized) = (0u64, 0u64);
    for (m, fs) in &frames {
        let n = fs.iter().filter(|f| f.ts_us >= main_start).count() as u64;
        sightings += n;
        if is_local(m) {
            randomized += n;
        }
    }
    let t = truth.totals;
    assert_eq!(
        (t.sightings, t.randomized_sightings),
        (sightings, randomized)
    );
    let share = randomized as f64 / sightings as f64;
    assert!((t.randomized_sightings_share - share).abs() < 1e-9);
    assert!((0.2..0.8).contains(&share), "{share}");
}

#[test]
fn truth_without_period_fields_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(3)).write(dir.path()).unwrap().truth;
    let mut json = serde_json::to_value(&truth).unwrap();
    let doc = json.as_object_mut().unwrap();
    doc.remove("period_days");
    doc.remove("period_visits");
    let totals = doc["totals"].as_object_mut().unwrap();
    for k in [
        "sightings",
        "randomized_sightings",
        "randomized_sightings_share",
    ] {
        totals.remove(k);
    }
    for v in json["visits"].as_array_mut().unwrap() {
        let v = v.as_object_mut().unwrap();
        for k in ["day", "person", "repeat", "macs"] {
            v.remove(k);
        }
    }
    let old: Truth = serde_json::from_value(json).unwrap();
    assert!(old.period_visits.is_empty() && old.period_days.is_empty());
    assert_eq!(old.totals.sightings, 0);
    assert_eq!(old.visits.len(), truth.visits.len());
    assert!(old.visits.iter().all(|v| v.day.is_empty()
        && v.person.is_none()
        && v.repeat.is_none()
        && v.macs.is_empty()));
}

#[test]
fn validate_and_clamp_the_new_params() {
    let mut p = SimParams::new(1, date(), 10, 2);
    assert_eq!(
        (p.days, p.return_share, p.mac_rotation_secs),
        (1, 0.3, None)
    );
    assert!(p.validate().is_ok());
    p.days = 0;
    assert!(p.validate().unwrap_err().contains("days"));
    p.days = 2;
    p.return_share = 1.5;
    assert!(p.validate().unwrap_err().contains("return_share"));
    p.return_share = 0.3;
    p.mac_rotation_secs = Some(5);
    assert!(p.validate().unwrap_err().contains("mac_rotation_secs"));
    p.mac_rotation_secs = Some(300);
    assert!(p.validate().is_ok());
    // generate clamps instead.
    let mut q = p.clone();
    q.days = 0;
    q.return_share = f64::NAN;
    q.mac_rotation_secs = Some(1);
    let day = generate(&q);
    assert_eq!(day.params().days, 1);
    assert_eq!(day.params().return_share, 0.0);
    assert_eq!(
        day.params().mac_rotation_secs,
        Some(crate::MIN_MAC_ROTATION_SECS)
    );
}
