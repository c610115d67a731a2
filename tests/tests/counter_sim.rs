//! The simulated door counters through the real agent: a Xovis v5 push recording (main door,
//! with retransmitted pushes) and an Irisys register recording (side door, with a power-loss
//! reset) replayed over several days give the true footfall per day, door and hour; a second
//! replay adds nothing; the report divides by footfall.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use edge_e2e::{counter, read_truth, report_json, run_once, simulate};

#[test]
fn simulated_days_give_the_true_footfall() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = edge_sim::SimParams::new(
        31,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        160,
        2,
    );
    params.days = 3;
    let written = simulate(dir.path(), &params);
    let truth = read_truth(&written.truth_path);
    let c = &truth.counter;
    assert!(c.footfall > 0 && c.duplicated_pushes > 0 && c.reset.is_some());
    let config = dir.path().join("config.toml");
    run_once(&config);
    let data = dir.path().join("data");

    for day in &c.days {
        let r = report_json(&data, &day.day);
        println!(
            "{}: footfall {} (truth {}), doors {}, detection ratio {}, conversion {}",
            day.day,
            r["footfall"],
            day.footfall,
            r["doors"],
            r["wifi_detection_ratio"],
            r["conversion"]
        );
        assert_eq!(
            r["footfall"].as_u64(),
            Some(u64::from(day.footfall)),
            "{}: {r}",
            day.day
        );
        assert_eq!(
            r["exits"].as_u64(),
            Some(u64::from(day.outs)),
            "{}",
            day.day
        );
        let doors: Vec<(String, u64, u64)> = r["doors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["door"].as_str().unwrap().to_string(),
                    d["ins"].as_u64().unwrap(),
                    d["outs"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, u64, u64)> = day
            .doors
            .iter()
            .filter(|d| d.ins > 0 || d.outs > 0)
            .map(|d| (d.door.clone(), u64::from(d.ins), u64::from(d.outs)))
            .collect();
        assert_eq!(doors, want, "{}", day.day);
        // Every hour's entries.
        for h in r["hourly"].as_array().unwrap() {
            let hour = h["hour"].as_u64().unwrap() as usize;
            assert_eq!(
                h["footfall"].as_u64(),
                Some(u64::from(day.hours[hour])),
                "{} hour {hour}",
                day.day
            );
        }
        let hours_with_people = day.hours.iter().filter(|n| **n > 0).count();
        let reported = r["hourly"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["footfall"].as_u64().unwrap_or(0) > 0)
            .count();
        assert_eq!(reported, hours_with_people, "{}", day.day);
        if day.footfall > 0 {
            let visitors = r["visitors"].as_u64().unwrap() as f64;
            let ratio = r["wifi_detection_ratio"].as_f64().unwrap();
            assert!((ratio - visitors / f64::from(day.footfall)).abs() < 1e-9);
            assert!(
                ratio > 0.3 && ratio < 1.0,
                "{}: detection ratio {ratio}",
                day.day
            );
            assert!(r["peak_occupancy"].as_u64().unwrap() > 0);
        }
    }
    // Retransmitted pushes counted once; the side counter's reset seen on both registers.
    assert_eq!(
        counter(&data, "door-main", "duplicates"),
        u64::from(c.duplicated_pushes)
    );
    assert_eq!(counter(&data, "door-side", "resets"), 2);
    assert_eq!(counter(&data, "door-main", "sequence_gaps"), 0);
    let rejected: u64 = edge_e2e::counters(&data, "door-main")
        .iter()
        .chain(edge_e2e::counters(&data, "door-side").iter())
        .filter(|(k, _)| k.starts_with("rejected_") || k.starts_with("refused_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rejected, 0);

    // A second replay resumes at the cursors: nothing is added.
    let before = edge_e2e::count(&data, "counter_intervals");
    run_once(&config);
    assert_eq!(edge_e2e::count(&data, "counter_intervals"), before);
    let first = &c.days[0];
    let r = report_json(&data, &first.day);
    assert_eq!(r["footfall"].as_u64(), Some(u64::from(first.footfall)));
}
