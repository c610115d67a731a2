//! Identity over several days: a 3-day simulated period in which shoppers return, some logging
//! in to the store Wi-Fi each time, replayed through the real binary. Every identified visitor
//! (a stored visit carrying a person key) is matched to its true visit by device key and time,
//! and its repeat-visit class is scored against the simulator's truth.
//!
//! Two truths are printed. The simulator's own counts every earlier visit of the person; some
//! of those were made with a randomized MAC that never logged in, which nothing may link to a
//! person (randomized MACs are never an identity beyond one visit). The linkable truth counts
//! only earlier visits a gateway could tie to the person — ones with a login, or with the same
//! MAC — and is the one held to ≥ 95 %.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use edge_e2e::{open_db, read_truth, run_once, simulate, Keys};
use edge_sim::truth::VisitKind;

#[test]
fn repeat_classes_of_identified_visitors_match_the_truth_over_three_days() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut params = edge_sim::SimParams::new(23, date, 150, 2);
    params.days = 3;
    let w = simulate(dir.path(), &params);
    run_once(&w.config_path);
    let truth = read_truth(&w.truth_path);
    let mut keys = Keys::from_secrets_file(&w.secrets_path).unwrap();

    let db = open_db(&dir.path().join("data"));
    let mut st = db
        .prepare(
            "SELECT device_key, start_ms, end_ms, repeat_class FROM visits
             WHERE person_key IS NOT NULL AND class = 'visitor'",
        )
        .unwrap();
    type Stored = (String, i64, i64, String);
    let identified: Vec<Stored> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut by_device: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for s in &identified {
        by_device.entry(s.0.as_str()).or_default().push(s);
    }

    // (truth class, measured class) → count, over identified visitors matched to the truth.
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let (mut matched, mut right, mut right_raw) = (0usize, 0usize, 0usize);
    for t in truth
        .period_visits
        .iter()
        .filter(|v| v.kind == VisitKind::Visitor)
    {
        let Some(want) = &t.repeat else { continue };
        let (start, end) = ((t.start * 1000.0) as i64, (t.end * 1000.0) as i64);
        let key = keys.key_hex(&t.mac, start).unwrap();
        let Some(s) = by_device.get(key.as_str()).and_then(|rows| {
            rows.iter()
                .filter(|s| s.2.min(end) >= s.1.max(start))
                .max_by_key(|s| s.2.min(end) - s.1.max(start))
        }) else {
            continue;
        };
        matched += 1;
        right_raw += usize::from(&s.3 == want);
        // The person's latest earlier visit that a gateway could link to them.
        let linkable_end = truth
            .period_visits
            .iter()
            .filter(|p| p.person == t.person && p.end <= t.start)
            .filter(|p| p.phone.is_some() || p.mac == t.mac)
            .map(|p| p.end)
            .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))));
        let want = repeat_class(linkable_end, t.start);
        right += usize::from(s.3 == want);
        *confusion
            .entry((want.to_string(), s.3.clone()))
            .or_default() += 1;
    }
    let returning = truth
        .period_visits
        .iter()
        .filter(|v| v.repeat.as_deref().is_some_and(|r| r != "first"))
        .count();
    println!(
        "3-day identity, seed 23: {} identified visitors stored, {matched} matched to a true visit; \
         repeat class right for {right} ({:.1} %) against the linkable truth, {right_raw} ({:.1} %) \
         against the simulator's full truth; {returning} true returns in the period",
        identified.len(),
        right as f64 * 100.0 / matched.max(1) as f64,
        right_raw as f64 * 100.0 / matched.max(1) as f64
    );
    for ((t, m), n) in &confusion {
        println!("  truth {t:>10} → measured {m:>10}: {n}");
    }
    assert!(
        matched >= 40,
        "too few identified visitors to mean anything: {matched}"
    );
    assert!(
        confusion.keys().any(|(t, m)| t != "first" && t == m),
        "no returning visitor was recognised"
    );
    assert!(
        right as f64 >= 0.95 * matched as f64,
        "repeat classes right for {right} of {matched}"
    );
}

/// The agent's repeat classes (`store::repeat_class`), from the previous visit's end.
fn repeat_class(previous_end_s: Option<f64>, start_s: f64) -> &'static str {
    const DAY: f64 = 86_400.0;
    match previous_end_s.map(|e| start_s - e) {
        None => "first",
        Some(gap) if gap <= DAY => "within_1d",
        Some(gap) if gap <= 7.0 * DAY => "within_7d",
        Some(gap) if gap <= 30.0 * DAY => "within_30d",
        Some(_) => "older",
    }
}
