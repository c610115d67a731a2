//! Accuracy against the simulator's ground truth: a 3-zone day with at least 300 true visitors
//! (330 planned; the simulator makes some of them too short to count as visitors) replayed
//! through the real binary, each stored visit matched to its true visit by device key.
//!
//! Targets: visitors and passers-by (the report's: tracked devices plus the estimate of the
//! untracked from presence) within ±5 % of truth, median dwell error ≤ 1 minute (against
//! the first-to-last clean frame of each true visit, and against its planned time in the store),
//! and the exact zone path for ≥ 90 % of visitors. The measured figures are printed (run with
//! `--nocapture` to see them).

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use edge_core::person::PersonKeyer;
use edge_core::phone::{normalize, Region};
use edge_core::Secret;
use edge_e2e::{median, read_truth, run_once, simulate, visits, Keys, Row};
use edge_sim::truth::VisitKind;

fn within(measured: usize, truth: usize, tolerance: f64) -> bool {
    (measured as f64 - truth as f64).abs() <= truth as f64 * tolerance
}

#[test]
fn visits_dwell_and_paths_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let params = edge_sim::SimParams::new(7, date, 330, 3);
    let w = simulate(dir.path(), &params);
    run_once(&w.config_path);

    let truth = read_truth(&w.truth_path);
    let mut keys = Keys::from_secrets_file(&w.secrets_path).unwrap();
    let stored = visits(&dir.path().join("data"));
    let clock = edge_core::LocalClock::new(params.timezone);
    let on_day: Vec<&Row> = stored
        .iter()
        .filter(|r| clock.date(r.start_ms) == date)
        .collect();
    let mut by_device: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in &on_day {
        by_device.entry(r.device_key.as_str()).or_default().push(r);
    }

    let n = |kind: VisitKind| truth.visits_of(kind).count();
    let m = |class: &str| on_day.iter().filter(|r| r.class == class).count();
    let (tv, tp, ts) = (
        n(VisitKind::Visitor),
        n(VisitKind::Passerby),
        n(VisitKind::Staff),
    );
    // Visitors and passers-by as the report gives them: tracked devices plus the estimate of
    // the untracked ones from presence.
    let report = edge_e2e::report_json(&dir.path().join("data"), "2026-11-20");
    let (mv, mp, ms) = (
        report["visitors"].as_u64().unwrap() as usize,
        report["passersby"].as_u64().unwrap() as usize,
        m("staff"),
    );
    assert_eq!(
        report["visitors_tracked"].as_u64().unwrap() as usize,
        m("visitor"),
        "the report's tracked visitors are the stored visits"
    );
    assert!(
        tv >= 300,
        "the day must have at least 300 true visitors, has {tv}"
    );

    // Per true visitor: the stored visit of the same device that overlaps it most.
    let mut dwell_truth = Vec::new();
    let mut dwell_measured = Vec::new();
    let mut dwell_errors = Vec::new();
    // The plan's time in the store, which the frames only sample (phones are silent between
    // probe bursts, so the first and last frames fall inside the planned stay).
    let mut dwell_planned = Vec::new();
    let mut planned_errors = Vec::new();
    let (mut matched, mut path_exact, mut class_right) = (0usize, 0usize, 0usize);
    for t in truth.visits_of(VisitKind::Visitor) {
        let (start, end) = ((t.start * 1000.0) as i64, (t.end * 1000.0) as i64);
        let key = keys.key_hex(&t.mac, start).unwrap();
        let best = by_device.get(key.as_str()).and_then(|rows| {
            rows.iter()
                .map(|r| (r.end_ms.min(end) - r.start_ms.max(start), *r))
                .filter(|(overlap, _)| *overlap >= 0)
                .max_by_key(|(overlap, _)| *overlap)
                .map(|(_, r)| r)
        });
        let truth_dwell = (t.end - t.start) / 60.0;
        dwell_truth.push(truth_dwell);
        let Some(r) = best else { continue };
        matched += 1;
        class_right += usize::from(r.class == "visitor");
        let got = (r.end_ms - r.start_ms) as f64 / 60_000.0;
        dwell_measured.push(got);
        dwell_errors.push((got - truth_dwell).abs());
        dwell_planned.push(t.inside_secs / 60.0);
        planned_errors.push((got - t.inside_secs / 60.0).abs());
        let truth_path: Vec<&str> = t.path.iter().map(|s| s.zone.as_str()).collect();
        path_exact += usize::from(r.path.iter().map(String::as_str).eq(truth_path));
    }
    let median_truth = median(&dwell_truth).unwrap();
    let median_measured = median(&dwell_measured).unwrap();
    let median_abs_error = median(&dwell_errors).unwrap();
    let path_share = path_exact as f64 / tv as f64;
    let median_planned = median(&dwell_planned).unwrap();
    let median_planned_error = median(&planned_errors).unwrap();

    println!("accuracy on seed 7, {date}, 3 zones:");
    println!(
        "  visitors   truth {tv:4}  measured {mv:4}  ({:+.1} %)",
        pct(mv, tv)
    );
    println!(
        "  passers-by truth {tp:4}  measured {mp:4}  ({:+.1} %)",
        pct(mp, tp)
    );
    println!(
        "  (tracked {} + estimated {} visitors, tracked {} + estimated {} passers-by)",
        report["visitors_tracked"],
        report["visitors_estimated"],
        report["passersby_tracked"],
        report["passersby_estimated"]
    );
    println!("  staff      truth {ts:4}  measured {ms:4}");
    println!(
        "  true visitors matched to a stored visit: {matched}/{tv}, classed visitor: {class_right}"
    );
    println!(
        "  median dwell: truth {median_truth:.2} min, measured {median_measured:.2} min, \
         difference {:.2} min; median per-visit error {median_abs_error:.2} min",
        (median_measured - median_truth).abs()
    );
    println!(
        "  against the planned time in the store: planned median {median_planned:.2} min, \
         difference {:.2} min; median per-visit error {median_planned_error:.2} min",
        (median_measured - median_planned).abs()
    );
    println!(
        "  exact zone path: {path_exact}/{tv} = {:.1} %",
        path_share * 100.0
    );

    assert!(tv >= 200 && ts > 0, "the day is too small to mean anything");
    assert!(within(mv, tv, 0.05), "visitors {mv} vs truth {tv}");
    assert!(within(mp, tp, 0.05), "passers-by {mp} vs truth {tp}");
    assert!((median_measured - median_truth).abs() <= 1.0);
    assert!(median_abs_error <= 1.0);
    assert!((median_measured - median_planned).abs() <= 1.0);
    assert!(median_planned_error <= 1.0);
    assert!(path_share >= 0.90, "exact paths {path_share:.3}");

    // Portal logins: the connected visitors the report counts, and the person each login named.
    let secrets: toml::Value =
        toml::from_str(&std::fs::read_to_string(&w.secrets_path).unwrap()).unwrap();
    let tenant = hex::decode(secrets["tenant_secret"].as_str().unwrap()).unwrap();
    let persons = PersonKeyer::new(&Secret::new(tenant, 1));
    let cn = Region::by_code("CN").unwrap();
    let connected_truth = truth
        .visits_of(VisitKind::Visitor)
        .filter(|v| v.phone.is_some())
        .count();
    let connected = report["connected"].as_u64().unwrap() as usize;
    let db = edge_e2e::open_db(&dir.path().join("data"));
    let (mut right_person, mut with_phone) = (0usize, 0usize);
    for t in truth.visits_of(VisitKind::Visitor) {
        let Some(phone) = &t.phone else { continue };
        with_phone += 1;
        let start = (t.start * 1000.0) as i64;
        let key = keys.key_hex(&t.mac, start).unwrap();
        let want = persons.key(&normalize(phone, cn).unwrap()).to_hex();
        let got: Option<String> = db
            .query_row(
                "SELECT person_key FROM visits WHERE device_key = ?1 AND connected = 1
                 ORDER BY abs(start_ms - ?2) LIMIT 1",
                rusqlite::params![key, start],
                |r| r.get(0),
            )
            .ok()
            .flatten();
        right_person += usize::from(got.as_deref() == Some(want.as_str()));
    }
    println!(
        "  connected (portal logins): truth {connected_truth}, measured {connected} ({:+.1} %); \
         person key right for {right_person}/{with_phone}",
        pct(connected, connected_truth)
    );
    assert!(connected_truth > 20, "too few logins to mean anything");
    assert!(
        within(connected, connected_truth, 0.02),
        "connected {connected} vs {connected_truth}"
    );
    assert_eq!(right_person, with_phone);
}

fn pct(measured: usize, truth: usize) -> f64 {
    (measured as f64 - truth as f64) / truth as f64 * 100.0
}

#[test]
fn visitors_with_rotating_randomized_macs_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut params = edge_sim::SimParams::new(9, date, 330, 3);
    params.randomized_share = 0.3;
    params.mac_rotation_secs = Some(300);
    let w = simulate(dir.path(), &params);
    run_once(&w.config_path);
    let truth = read_truth(&w.truth_path);
    let report = edge_e2e::report_json(&dir.path().join("data"), "2026-11-20");
    let tv = truth.visits_of(VisitKind::Visitor).count();
    let rotating = truth
        .visits_of(VisitKind::Visitor)
        .filter(|v| v.macs.len() > 1)
        .count();
    let visitors = report["visitors"].as_u64().unwrap() as usize;
    let naive = report["visitors_naive"].as_u64().unwrap() as usize;
    let share = report["randomized_sightings_share"].as_f64().unwrap();
    let true_share = truth.totals.randomized_sightings_share;
    println!(
        "rotating MACs (seed 9, 30 % randomized, rotation ~300 s): truth {tv} visitors \
         ({rotating} of them rotating), measured {visitors} ({:+.1} %), naive {naive} ({:+.1} %); \
         randomized sightings {:.1} % (truth {:.1} %)",
        pct(visitors, tv),
        pct(naive, tv),
        share * 100.0,
        true_share * 100.0
    );
    let connected_truth = truth
        .visits_of(VisitKind::Visitor)
        .filter(|v| v.phone.is_some())
        .count();
    let connected = report["connected"].as_u64().unwrap() as usize;
    println!("  connected: truth {connected_truth}, measured {connected}");
    assert!(within(connected, connected_truth, 0.02));
    assert!(
        rotating > 30,
        "too few rotating visitors to mean anything: {rotating}"
    );
    assert!(
        within(visitors, tv, 0.10),
        "visitors {visitors} vs truth {tv}"
    );
    assert!(
        (share - true_share).abs() < 0.02,
        "randomized share {share} vs {true_share}"
    );

    // The hourly aggregates served to the cloud count each rotating device once too: the
    // newest revision of every hour says what the report's hours say (tracked).
    let db = edge_e2e::open_db(&dir.path().join("data"));
    let mut st = db
        .prepare(
            "SELECT local_hour, body FROM hourly_aggregates h WHERE local_date = '2026-11-20' \
             AND revision = (SELECT MAX(revision) FROM hourly_aggregates \
                             WHERE hour_start_ms = h.hour_start_ms) ORDER BY hour_start_ms",
        )
        .unwrap();
    let from_aggregates: Vec<(u64, u64, u64)> = st
        .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (hour, body) = r.unwrap();
            let b: serde_json::Value = serde_json::from_str(&body).unwrap();
            (
                hour,
                b["visitors"].as_u64().unwrap(),
                b["passersby"].as_u64().unwrap(),
            )
        })
        .filter(|&(_, v, p)| v + p > 0)
        .collect();
    let from_report: Vec<(u64, u64, u64)> = report["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["hour"].as_u64().unwrap(),
                h["visitors"].as_u64().unwrap(),
                h["passersby"].as_u64().unwrap(),
            )
        })
        .filter(|&(_, v, p)| v + p > 0)
        .collect();
    // The aggregates hold the tracked devices; the report's hourly rows give the estimate of
    // the untracked beside them.
    let aggregate_visitors: u64 = from_aggregates.iter().map(|h| h.1).sum();
    assert_eq!(
        Some(aggregate_visitors),
        report["visitors_tracked"].as_u64()
    );
    assert_eq!(from_aggregates, from_report);
}

/// The realistic 2026 mix (`PhoneMix::Realistic`): phones that draw a MAC per scan are never
/// stored as visits and are measured as presence; the tracked ones (global and stable MACs,
/// connected phones) keep the dwell and path accuracy of the legacy day; devices present per
/// 10 minutes follow the truth. The visitors target (±10 %) is bench/realistic.sh's.
#[test]
fn realistic_phones_are_presence_and_tracked_visits_stay_accurate() {
    use edge_sim::truth::Behaviour;
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut params = edge_sim::SimParams::new(7, date, 330, 3);
    params.phone_mix = edge_sim::PhoneMix::Realistic;
    let w = simulate(dir.path(), &params);
    run_once(&w.config_path);
    let truth = read_truth(&w.truth_path);
    let data = dir.path().join("data");
    let mut keys = Keys::from_secrets_file(&w.secrets_path).unwrap();
    let stored = visits(&data);
    let db = edge_e2e::open_db(&data);
    let one_scan: i64 = db
        .query_row(
            "SELECT count(*) FROM visits WHERE randomized = 1 AND associated = 0
             AND connected = 0 AND end_ms - start_ms < 10000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(one_scan, 0, "one-scan randomized MACs stored as visits");

    // Tracked truth visitors: a stable identity on the air.
    let mut by_device: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in &stored {
        by_device.entry(r.device_key.as_str()).or_default().push(r);
    }
    let (mut n, mut matched, mut path_exact) = (0usize, 0usize, 0usize);
    let mut errors = Vec::new();
    for t in truth.visits_of(VisitKind::Visitor) {
        let stable = matches!(
            t.behaviour_class(),
            Behaviour::Global | Behaviour::StableRandom
        );
        if !(stable || t.connected) {
            continue;
        }
        n += 1;
        let (start, end) = ((t.start * 1000.0) as i64, (t.end * 1000.0) as i64);
        let key = keys.key_hex(&t.mac, start).unwrap();
        let best = by_device.get(key.as_str()).and_then(|rows| {
            rows.iter()
                .map(|r| (r.end_ms.min(end) - r.start_ms.max(start), *r))
                .filter(|(overlap, _)| *overlap >= 0)
                .max_by_key(|(overlap, _)| *overlap)
                .map(|(_, r)| r)
        });
        let Some(r) = best else { continue };
        matched += 1;
        errors.push(((r.end_ms - r.start_ms) as f64 / 60_000.0 - (t.end - t.start) / 60.0).abs());
        let truth_path: Vec<&str> = t.path.iter().map(|s| s.zone.as_str()).collect();
        path_exact += usize::from(r.path.iter().map(String::as_str).eq(truth_path));
    }
    let median_error = median(&errors).unwrap();
    let report = edge_e2e::report_json(&data, "2026-11-20");
    println!(
        "realistic mix, seed 7: {matched}/{n} tracked visitors matched, median dwell error \
         {median_error:.2} min, exact path {path_exact}/{n}; report visitors {} = tracked {} + \
         estimated {}",
        report["visitors"], report["visitors_tracked"], report["visitors_estimated"]
    );
    assert!(n > 50, "too few tracked visitors to mean anything: {n}");
    assert!(matched as f64 >= 0.95 * n as f64, "{matched}/{n} matched");
    assert!(median_error <= 1.0, "median dwell error {median_error}");
    assert!(
        path_exact as f64 >= 0.90 * n as f64,
        "exact paths {path_exact}/{n}"
    );
    let tracked = report["visitors_tracked"].as_u64().unwrap();
    let estimated = report["visitors_estimated"].as_f64().unwrap();
    assert!(estimated > 0.0, "the per-scan phones are estimated");
    assert_eq!(
        report["visitors"].as_u64().unwrap(),
        tracked + estimated.round() as u64
    );

    // Devices present per 10 minutes (whole store) against the truth's phones present.
    let mut truth_bins: HashMap<i64, f64> = HashMap::new();
    for p in truth.presence.iter().filter(|p| p.zone.is_none()) {
        *truth_bins.entry(p.minute / 600 * 600).or_default() += f64::from(p.devices) / 10.0;
    }
    let got: HashMap<i64, f64> = report["presence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["zone"].is_null())
        .map(|b| {
            let start = chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap())
                .unwrap()
                .timestamp();
            (start, b["devices"].as_f64().unwrap())
        })
        .collect();
    let peak = truth_bins.values().copied().fold(0.0, f64::max);
    let mae = truth_bins
        .iter()
        .map(|(b, y)| (got.get(b).copied().unwrap_or(0.0) - y).abs())
        .sum::<f64>()
        / truth_bins.len() as f64;
    println!("  devices present per 10 minutes: MAE {mae:.2}, peak {peak:.1}");
    assert!(mae <= 0.15 * peak, "devices MAE {mae:.2} vs peak {peak:.1}");
}
