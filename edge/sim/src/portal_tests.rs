//! Tests of the captive-portal login files, read back only through edge-wire's parsers.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use edge_wire::portal::binauth::{self, BinauthRepr};
use edge_wire::portal::detail::{self, AccountingRepr, AcctStatus};
use edge_wire::portal::format_ctime;
use edge_wire::MacAddr;

use crate::tests::{read_truth, small};
use crate::truth::{Truth, Visit};
use crate::{generate, SimParams, BINAUTH_FILE, DETAIL_FILE};

/// A small day in which every long-enough visitor logs in (many logins, still quick).
fn all_connected(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.visitors = 60;
    p.connected_share = 1.0;
    p
}

/// The 11 national digits of a mainland mobile as typed, after stripping spaces and dashes
/// and a leading `+86` or `0086`; `None` if that leaves no `1[3-9]` + 9 digits.
pub(crate) fn mobile_digits(typed: &str) -> Option<String> {
    let s: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let s = s
        .strip_prefix("+86")
        .or_else(|| s.strip_prefix("0086"))
        .unwrap_or(&s);
    let b = s.as_bytes();
    (b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit))
    .then(|| s.to_string())
}

/// Digits of a truth phone (`+86` + 11 digits).
fn truth_digits(v: &Visit) -> String {
    let phone = v.phone.as_deref().unwrap();
    phone.strip_prefix("+86").unwrap().to_string()
}

/// Every record of a detail file: parsed ones with their header, and the number rejected.
pub(crate) fn read_detail(path: &Path) -> (Vec<(String, AccountingRepr)>, u32) {
    let bytes = std::fs::read(path).unwrap();
    let (mut at, mut out, mut bad) = (0, Vec::new(), 0);
    loop {
        match detail::next_record(&bytes[at..]) {
            Ok(None) => break,
            Ok(Some((rec, n))) => {
                out.push((rec.header.clone(), AccountingRepr::parse(&rec).unwrap()));
                at += n;
            }
            Err(e) => {
                bad += 1;
                at += e.skip();
            }
        }
    }
    // Nothing left over: the file ends with a complete record.
    assert!(bytes[at..].iter().all(u8::is_ascii_whitespace));
    (out, bad)
}

/// Every line of a BinAuth log: parsed ones and the number rejected.
pub(crate) fn read_binauth(path: &Path) -> (Vec<BinauthRepr>, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'));
    let (mut out, mut bad) = (Vec::new(), 0);
    for line in text.lines() {
        match binauth::parse_line(line) {
            Ok(r) => out.push(r),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

/// Store-local naive seconds of `unix_s` in the truth's zone.
fn local_naive(truth: &Truth, unix_s: i64) -> i64 {
    let tz: chrono_tz::Tz = truth.timezone.parse().unwrap();
    DateTime::<Utc>::from_timestamp(unix_s, 0)
        .unwrap()
        .with_timezone(&tz)
        .naive_local()
        .and_utc()
        .timestamp()
}

#[test]
fn portal_files_are_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let wa = generate(&all_connected(8)).write(a.path()).unwrap();
    generate(&all_connected(8)).write(b.path()).unwrap();
    generate(&all_connected(9)).write(c.path()).unwrap();
    assert_eq!(wa.portal_detail_path, a.path().join(DETAIL_FILE));
    assert_eq!(wa.portal_binauth_path, a.path().join(BINAUTH_FILE));
    for name in [DETAIL_FILE, BINAUTH_FILE] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        let z = std::fs::read(c.path().join(name)).unwrap();
        assert!(!x.is_empty());
        assert!(x == y, "{name} differs between identical runs");
        assert!(x != z, "{name} identical for different seeds");
    }
}

#[test]
fn detail_file_has_one_start_per_connected_visit() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(&all_connected(31)).write(dir.path()).unwrap();
    let truth = read_truth(dir.path());
    let pt = &truth.portal;
    assert_eq!(pt.detail_path, DETAIL_FILE);
    let connected: Vec<&Visit> = truth.visits.iter().filter(|v| v.connected).collect();
    assert!(connected.len() >= 30, "{}", connected.len());
    assert_eq!(pt.logins as usize, connected.len());

    let (records, malformed) = read_detail(&written.portal_detail_path);
    assert_eq!(malformed, pt.malformed_detail);
    assert_eq!(records.len() as u32 + malformed, pt.detail_records);
    assert_eq!(
        pt.detail_records,
        2 * pt.logins + pt.interims + pt.injected_bad_detail
    );
    assert_eq!(
        pt.injected_bad_detail,
        pt.malformed_detail + pt.invalid_phones_detail + pt.accounting_on_detail
    );
    assert_eq!(
        (
            pt.malformed_detail,
            pt.invalid_phones_detail,
            pt.accounting_on_detail
        ),
        (1, 1, 1)
    );

    // Time order; header, Event-Timestamp and Timestamp agree (store-local vs Unix).
    let mut last = i64::MIN;
    for (header, r) in &records {
        let t = r.time_s.unwrap();
        assert!(t >= last, "records out of order at {header}");
        last = t;
        let naive = local_naive(&truth, t);
        assert_eq!(header, &format_ctime(naive));
        assert_eq!(r.header_time_local, Some(naive));
        assert_eq!(r.event_time_local, Some((naive, "CST".to_string())));
    }

    let mut by_mac: HashMap<MacAddr, Vec<&AccountingRepr>> = HashMap::new();
    let mut accounting_on = 0;
    for (_, r) in &records {
        match r.calling_station {
            Some(mac) => by_mac.entry(mac).or_default().push(r),
            None => {
                assert_eq!(r.status, AcctStatus::Other("Accounting-On".into()));
                assert_eq!(r.user_name, None);
                accounting_on += 1;
            }
        }
    }
    assert_eq!(accounting_on, pt.accounting_on_detail);

    let mut interims = 0;
    for v in &truth.visits {
        let mac: MacAddr = v.mac.parse().unwrap();
        let recs = by_mac.remove(&mac).unwrap_or_default();
        if !v.connected {
            assert!(recs.is_empty(), "{} logged in but is not connected", v.mac);
            assert_eq!((&v.phone, v.login), (&None, None));
            continue;
        }
        let login = v.login.unwrap();
        let of = |s: AcctStatus| recs.iter().filter(move |r| r.status == s);
        let starts: Vec<_> = of(AcctStatus::Start).collect();
        assert_eq!(starts.len(), 1, "{}", v.mac);
        let start = starts[0];
        assert_eq!(start.time_s, Some(login as i64));
        let typed = start.user_name.as_deref().unwrap();
        assert_eq!(mobile_digits(typed), Some(truth_digits(v)), "{typed}");
        let stops: Vec<_> = of(AcctStatus::Stop).collect();
        assert_eq!(stops.len(), 1);
        let stop_s = stops[0].time_s.unwrap() as f64;
        assert!(stop_s >= v.end + 29.999 && stop_s <= v.end + 31.0, "{v:?}");
        let n_interim = of(AcctStatus::InterimUpdate).count();
        interims += n_interim;
        assert_eq!(n_interim == 1, login + 300.0 <= v.end, "{v:?}");
        for r in &recs {
            assert_eq!(r.user_name.as_deref(), Some(typed));
            assert_eq!(r.session_id, start.session_id);
        }
        assert_eq!(recs.len(), 2 + n_interim);
    }
    assert_eq!(interims as u32, pt.interims);

    // What is left belongs to no simulated device: the invalid number.
    let strangers: Vec<_> = by_mac.values().flatten().collect();
    assert_eq!(strangers.len() as u32, pt.invalid_phones_detail);
    for r in strangers {
        assert_eq!(r.status, AcctStatus::Start);
        assert_eq!(mobile_digits(r.user_name.as_deref().unwrap()), None);
    }
}

#[test]
fn binauth_log_has_one_client_auth_per_connected_visit() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(&all_connected(31)).write(dir.path()).unwrap();
    let truth = written.truth;
    let pt = &truth.portal;
    assert_eq!(pt.binauth_path, BINAUTH_FILE);
    let (lines, malformed) = read_binauth(&written.portal_binauth_path);
    assert_eq!(malformed, pt.malformed_binauth);
    assert_eq!(lines.len() as u32 + malformed, pt.binauth_lines);
    assert_eq!(pt.binauth_lines, 2 * pt.logins + pt.injected_bad_binauth);
    assert_eq!(
        pt.injected_bad_binauth,
        pt.malformed_binauth + pt.invalid_phones_binauth
    );
    assert_eq!((pt.malformed_binauth, pt.invalid_phones_binauth), (1, 1));

    let mut last = i64::MIN;
    let mut by_mac: HashMap<MacAddr, Vec<&BinauthRepr>> = HashMap::new();
    for l in &lines {
        let date = l.date_local.unwrap();
        assert!(date >= last, "lines out of order");
        last = date;
        // The FAS's payload is url-encoded in the file and decodes to `phone=<as typed>`.
        assert!(l.get("custom").unwrap().starts_with("phone="));
        by_mac.entry(l.client_mac).or_default().push(l);
    }
    for v in &truth.visits {
        let mac: MacAddr = v.mac.parse().unwrap();
        let recs = by_mac.remove(&mac).unwrap_or_default();
        if !v.connected {
            assert!(recs.is_empty(), "{}", v.mac);
            continue;
        }
        let login = v.login.unwrap() as i64;
        assert_eq!(recs.len(), 2, "{}", v.mac);
        let (auth, deauth) = (recs[0], recs[1]);
        assert_eq!(auth.method, "client_auth");
        assert_eq!(auth.session_start, Some(login));
        assert_eq!(auth.date_local, Some(local_naive(&truth, login)));
        let typed = auth.field("custom.phone").unwrap();
        assert_eq!(mobile_digits(&typed), Some(truth_digits(v)), "{typed}");
        assert_eq!(deauth.method, "client_deauth");
        assert_eq!(deauth.session_start, Some(login));
        let end = deauth.session_end.unwrap();
        assert_eq!(deauth.date_local, Some(local_naive(&truth, end)));
        assert!(end as f64 >= v.end + 29.999 && end as f64 <= v.end + 31.0);
        assert_eq!(deauth.field("custom.phone"), Some(typed));
        assert_eq!(deauth.get("token"), auth.get("token"));
    }
    let strangers: Vec<_> = by_mac.values().flatten().collect();
    assert_eq!(strangers.len() as u32, pt.invalid_phones_binauth);
    for r in strangers {
        assert_eq!(r.method, "client_auth");
        assert_eq!(mobile_digits(&r.field("custom.phone").unwrap()), None);
    }
}

#[test]
fn logins_lie_within_the_visit() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = all_connected(41);
    params.zones = 4;
    let truth = generate(&params).write(dir.path()).unwrap().truth;
    let mut checked = 0;
    for v in truth.visits.iter().filter(|v| v.connected) {
        let login = v.login.unwrap();
        assert_eq!(login.fract(), 0.0, "whole seconds");
        assert!(v.start <= login && login <= v.end, "{v:?}");
        // U(1, 4) minutes after the first clean frame (rounded up to the second) …
        assert!(login <= v.start + 241.0, "{v:?}");
        if v.end - v.start >= 121.0 {
            assert!(login >= v.start + 60.0, "{v:?}");
            // … and at least a minute before the last one.
            assert!(login <= v.end - 59.0, "{v:?}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked}");
}

#[test]
fn phones_are_unique_mainland_mobiles_in_varied_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(&all_connected(31)).write(dir.path()).unwrap();
    let truth = written.truth;
    let mut phones = HashSet::new();
    for v in &truth.visits {
        match &v.phone {
            None => assert!(!v.connected),
            Some(p) => {
                assert!(v.connected);
                let digits = p.strip_prefix("+86").unwrap();
                assert_eq!(mobile_digits(digits).as_deref(), Some(digits), "{p}");
                assert!(phones.insert(p.clone()), "{p} used twice");
            }
        }
    }
    // Spellings as real NASes and shoppers write them.
    let (records, _) = read_detail(&written.portal_detail_path);
    let starts: Vec<&AccountingRepr> = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.status == AcctStatus::Start)
        .collect();
    let user = |f: &dyn Fn(&str) -> bool| {
        starts
            .iter()
            .filter(|r| r.user_name.as_deref().is_some_and(f))
            .count()
    };
    let plain = user(&|u| u.len() == 11 && u.bytes().all(|b| b.is_ascii_digit()));
    let plus = user(&|u| u.starts_with("+86 ") && u.len() == 17);
    let zeros = user(&|u| u.starts_with("0086-") && u.len() == 18);
    let dashed = user(&|u| u.len() == 13 && u.matches('-').count() == 2);
    assert!(plain > starts.len() / 2, "{plain} of {}", starts.len());
    assert!(
        plus > 0 && zeros > 0 && dashed > 0,
        "{plus} {zeros} {dashed}"
    );
    assert_eq!(
        plain + plus + zeros + dashed + 1,
        starts.len(),
        "+1 landline"
    );

    let text = std::fs::read_to_string(&written.portal_detail_path).unwrap();
    let macs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("\tCalling-Station-Id = \""))
        .collect();
    let colons = macs.iter().filter(|m| m.contains(':')).count();
    let dashes = macs
        .iter()
        .filter(|m| m.contains('-') && !m.bytes().any(|b| b.is_ascii_lowercase()))
        .count();
    assert_eq!(colons + dashes, macs.len());
    assert!(dashes > colons && colons > 0, "{dashes} {colons}");
    assert!(macs
        .iter()
        .filter(|m| m.contains(':'))
        .all(|m| !m.bytes().any(|b| b.is_ascii_uppercase())));
}

#[test]
fn injected_bad_records_are_what_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(&small(12)).write(dir.path()).unwrap();
    let text = std::fs::read_to_string(&written.portal_detail_path).unwrap();
    // The malformed record: an attribute line without `=`.
    let no_eq: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('\t') && !l.contains('='))
        .collect();
    assert_eq!(no_eq.len(), 1, "{no_eq:?}");
    assert!(no_eq[0].starts_with("\tUser-Name \""));
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut errors = Vec::new();
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        match detail::next_record(rest) {
            Ok(Some((_, n))) => at += n,
            Ok(None) => break,
            Err(e) => {
                errors.push(e.clone());
                at += e.skip();
            }
        }
    }
    assert_eq!(errors.len(), 1);
    assert!(matches!(
        errors[0],
        detail::DetailError::MalformedLine { .. }
    ));
    assert!(text.contains("\tUser-Name = \"010-"));
    assert_eq!(text.matches("Acct-Status-Type = Accounting-On").count(), 1);

    let log = std::fs::read_to_string(&written.portal_binauth_path).unwrap();
    let broken: Vec<&str> = log
        .lines()
        .filter(|l| binauth::parse_line(l).is_err())
        .collect();
    assert_eq!(broken.len(), 1);
    assert!(matches!(
        binauth::parse_line(broken[0]),
        Err(binauth::BinauthError::BadField {
            field: "clientmac",
            ..
        })
    ));
    // With no connected visitor at all, the injected records are still there.
    let empty = tempfile::tempdir().unwrap();
    let mut p = small(12);
    p.connected_share = 0.0;
    let w = generate(&p).write(empty.path()).unwrap();
    let pt = &w.truth.portal;
    assert_eq!((pt.logins, pt.detail_records, pt.binauth_lines), (0, 3, 2));
    assert!(w.truth.visits.iter().all(|v| v.phone.is_none()));
}

#[test]
fn truth_without_portal_fields_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(3)).write(dir.path()).unwrap().truth;
    let mut json = serde_json::to_value(&truth).unwrap();
    json.as_object_mut().unwrap().remove("portal");
    for v in json["visits"].as_array_mut().unwrap() {
        let v = v.as_object_mut().unwrap();
        v.remove("phone");
        v.remove("login");
    }
    let old: Truth = serde_json::from_value(json).unwrap();
    assert_eq!(old.portal, Default::default());
    assert!(old
        .visits
        .iter()
        .all(|v| v.phone.is_none() && v.login.is_none()));
    assert_eq!(old.visits.len(), truth.visits.len());
}
