//! The command line as a user meets it: `demo`, `simulate`, `run`, `report --json`,
//! `profiles check`, and the errors bad configs and bad profiles give.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use edge_e2e::{path_str, run_once, store_edge};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn simulate_cli(dir: &Path) {
    let out = store_edge(&[
        "simulate",
        "--out",
        path_str(dir),
        "--seed",
        "5",
        "--visitors",
        "80",
        "--zones",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn demo_prints_a_day_report_and_exits_with_exit() {
    let out = store_edge(&["demo", "--exit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    edge_e2e::assert_no_panic(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "day report",
        "Visitors",
        "Passers-by",
        "Top paths",
        "entrance",
        "Transactions",
        "Items per basket",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn report_json_has_every_field_and_nulls_for_missing_sources() {
    let dir = tempfile::tempdir().unwrap();
    simulate_cli(dir.path());
    for f in [
        "config.toml",
        "secrets.toml",
        "truth.json",
        "wifi-entrance.pcap",
    ] {
        assert!(dir.path().join(f).exists(), "simulate did not write {f}");
    }
    run_once(&dir.path().join("config.toml"));
    let data = dir.path().join("data");
    let out = store_edge(&["report", "--data-dir", path_str(&data), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["date"], "2026-11-20");
    let visitors = r["visitors"].as_u64().unwrap();
    let passersby = r["passersby"].as_u64().unwrap();
    assert!(visitors > 40 && passersby > 40, "{r}");
    let capture = r["capture_rate"].as_f64().unwrap();
    assert!((capture - visitors as f64 / (visitors + passersby) as f64).abs() < 1e-9);
    // The simulated door counters give footfall, and what divides by it.
    let truth = edge_e2e::read_truth(&dir.path().join("truth.json"));
    let doors = truth
        .counter
        .days
        .iter()
        .find(|d| d.day == "2026-11-20")
        .unwrap();
    let footfall = r["footfall"].as_u64().unwrap();
    assert_eq!(footfall, u64::from(doors.footfall), "{r}");
    let ratio = r["wifi_detection_ratio"].as_f64().unwrap();
    assert!(
        (ratio - visitors as f64 / footfall as f64).abs() < 1e-9,
        "{r}"
    );
    let conversion = r["conversion"].as_f64().unwrap();
    assert!(
        (conversion - r["transactions"].as_u64().unwrap() as f64 / footfall as f64).abs() < 1e-9,
        "{r}"
    );
    let day = truth
        .pos
        .days
        .iter()
        .find(|d| d.day == "2026-11-20")
        .unwrap();
    assert_eq!(r["transactions"], u64::from(day.receipts), "{r}");
    assert_eq!(r["sales_minor"], day.sales_minor, "{r}");
    let sales = r["sales"].as_f64().unwrap();
    assert!((sales - day.sales_minor as f64 / 100.0).abs() < 1e-6, "{r}");
    for k in ["atv", "items_per_basket"] {
        assert!(r[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {r}");
    }
    assert!(r["attributed_purchases"].as_u64().is_some(), "{r}");
    let connected = r["connected"].as_u64().unwrap();
    let identified = r["identified_visitors"].as_u64().unwrap();
    assert!(
        connected > 0 && connected <= identified && identified <= visitors,
        "{r}"
    );
    let buckets = r["dwell_buckets"].as_object().unwrap();
    let in_buckets: u64 = buckets.values().map(|v| v.as_u64().unwrap()).sum();
    // Dwell is measured on the visits followed (simulate's default phone mix is the realistic
    // one: most phones are estimated, not followed).
    let tracked = r["visitors_tracked"].as_u64().unwrap();
    assert!(tracked > 0 && tracked < visitors, "{r}");
    assert_eq!(in_buckets, tracked);
    let zones = r["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 2);
    assert_eq!(zones[0]["zone"], "entrance");
    assert!(zones[0]["visits"].as_u64().unwrap() > 0);
    let paths = r["top_paths"].as_array().unwrap();
    assert!(!paths.is_empty());
    assert!(!paths[0]["path"].as_array().unwrap().is_empty());
    assert!(paths[0]["visits"].as_u64().unwrap() >= 1);

    // The table form and an explicit date work too; a date with no data gives zeros, not an error.
    let out = store_edge(&["report", "--data-dir", path_str(&data)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Capture rate"));
    let out = store_edge(&[
        "report",
        "--data-dir",
        path_str(&data),
        "--date",
        "2026-01-01",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["visitors"], 0);

    // A window of hours: its table names the window; a bad window is refused by name.
    let out = store_edge(&["report", "--data-dir", path_str(&data), "--hours", "10-11"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("10:00–11:59"));
    let out = store_edge(&["report", "--data-dir", path_str(&data), "--hours", "12-9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"12-9\" is not an hour"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_configs_fail_naming_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    simulate_cli(dir.path());
    let good = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let cases = [
        (
            format!("{good}\n[metrics]\nvisit_timeot = \"10m\"\n"),
            "metrics.visit_timeot",
            "unknown field",
        ),
        (
            format!("{good}\n[metrics]\nvisit_timeout = \"ten minutes\"\n"),
            "metrics.visit_timeout",
            "ten minutes",
        ),
        (
            format!("{good}\n[metrics]\ninside_dbm = -95\n"),
            "metrics.inside_dbm",
            "",
        ),
        (
            good.replace("timezone = ", "timezone = \"Nowhere/Town\"\n#"),
            "store.timezone",
            "Nowhere/Town",
        ),
        (
            good.replacen("pcap = ", "interface = \"mon0\"\npcap = ", 1),
            "sources.wifi[0]",
            "exactly one of",
        ),
        (
            good.replacen(
                "pcap = \"wifi-entrance.pcap\"",
                "pcap = \"wifi-entrance.pcap\"\nprofile = \"wifi/no-such-adapter\"",
                1,
            ),
            "sources.wifi[0].profile",
            "no-such-adapter",
        ),
    ];
    for (i, (text, key, reason)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = store_edge(&["run", "--config", path_str(&path), "--once"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "case {i} was accepted");
        assert!(err.contains(path_str(&path)), "case {i}: no file in {err}");
        assert!(err.contains(key), "case {i}: no key {key} in {err}");
        assert!(
            err.contains(reason),
            "case {i}: no reason {reason:?} in {err}"
        );
        assert!(
            !dir.path().join("data").exists(),
            "a bad config must not touch the store"
        );
    }
    let missing = dir.path().join("missing.toml");
    let out = store_edge(&["run", "--config", path_str(&missing)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn run_once_refuses_live_sources_and_report_needs_a_store() {
    let dir = tempfile::tempdir().unwrap();
    simulate_cli(dir.path());
    let good = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let live = good.replacen("pcap = \"wifi-entrance.pcap\"", "interface = \"mon0\"", 1);
    let path = dir.path().join("live.toml");
    std::fs::write(&path, live).unwrap();
    let out = store_edge(&["run", "--config", path_str(&path), "--once"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--once"), "{}", stderr(&out));

    let piped = good.replacen("pcap = \"wifi-entrance.pcap\"", "pipe = \"ap.pcap\"", 1);
    std::fs::write(&path, piped).unwrap();
    let out = store_edge(&["run", "--config", path_str(&path), "--once"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("captures live"), "{}", stderr(&out));

    let out = store_edge(&["report", "--data-dir", path_str(&dir.path().join("nope"))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn profiles_check_accepts_the_repo_profiles_and_names_bad_keys() {
    let out = store_edge(&["profiles", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wifi/alfa-awus036acm"));

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware-profiles/wifi");
    let files: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["profiles", "check"];
    args.extend(files.iter().map(String::as_str));
    let out = store_edge(&args);
    assert!(out.status.success(), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo.join("alfa-awus036acm.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text.replace("channels = [", "channels = [999, ")).unwrap();
    let out = store_edge(&["profiles", "check", path_str(&bad)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("channels") && err.contains("999"), "{err}");
}

/// `run --check` on an installer's config: every source's state over a short window; exit 1
/// naming the sources that are down (a counter whose device refuses connections), exit 0 when
/// every source is up or idle (a push counter nobody pushed to yet).
#[test]
fn run_check_names_the_sources_that_are_down() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("secrets.toml"),
        "device_key_secret = \"11111111111111111111111111111111\"\n",
    )
    .unwrap();
    // A port that refuses connections for the whole test.
    let (_held, closed) = edge_e2e::mosquitto::refusing_port();
    let base = "[store]\nstore_id = \"s\"\ngateway_id = \"gw\"\ntimezone = \"UTC\"\n\
                [privacy]\nsecrets_file = \"secrets.toml\"\n[storage]\ndata_dir = \"data\"\n\
                [sync]\nlisten = \"127.0.0.1:0\"\n\
                [[sources.counter]]\nname = \"door-main\"\nprofile = \"counter/xovis-pc2s-v5\"\n\
                door = \"main\"\nlisten = \"127.0.0.1:0\"\n";
    let good = d.path().join("good.toml");
    std::fs::write(&good, base).unwrap();
    let out = store_edge(&[
        "run",
        "--config",
        path_str(&good),
        "--check",
        "--check-for",
        "2s",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("door-main") && l.contains("idle")),
        "{text}"
    );
    let bad = d.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "{base}[[sources.counter]]\nname = \"door-side\"\nprofile = \"counter/axis-people-counter\"\n\
             door = \"side\"\nurl = \"http://127.0.0.1:{closed}\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    let out = store_edge(&[
        "run",
        "--config",
        path_str(&bad),
        "--check",
        "--check-for",
        "3s",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    let side = text
        .lines()
        .find(|l| l.starts_with("door-side"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        side.contains("failing") && side.contains("poll_errors_connect"),
        "{side}"
    );
    assert!(
        stderr(&out).contains("1 source(s) down: door-side"),
        "{}",
        stderr(&out)
    );
    edge_e2e::assert_no_panic(&out);
}

/// People inside (visitors between their first and last frame) at `t`, Unix seconds.
fn inside_at(truth: &edge_sim::truth::Truth, t: f64) -> usize {
    truth
        .period_visits
        .iter()
        .filter(|v| v.kind == edge_sim::truth::VisitKind::Visitor && v.start <= t && t < v.end)
        .count()
}

#[test]
fn calibrate_fits_head_counts_stores_a_version_and_refuses_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut p = edge_sim::SimParams::new(11, date, 120, 2);
    p.days = 2;
    let w = edge_e2e::simulate(dir.path(), &p);
    run_once(&w.config_path);
    let data = dir.path().join("data");
    let truth = edge_e2e::read_truth(&w.truth_path);
    let tz: chrono_tz::Tz = truth.timezone.parse().unwrap();
    let config = path_str(&w.config_path);

    // Before: the sim's door counter calibrates the second day from the first.
    let before = edge_e2e::report_json(&data, "2026-11-20");
    assert_eq!(
        before["calibration"]["source"], "door",
        "{}",
        before["calibration"]
    );
    let bins = before["presence"].as_array().unwrap();
    // Bins of the day in which the sniffers heard anything, for the store and two zones.
    assert!(
        bins.len() > 100 && bins.len() <= 144 * 3,
        "{} bins",
        bins.len()
    );
    assert!(bins
        .iter()
        .all(|b| b["start"].as_str().unwrap().starts_with("2026-11-20T")));
    for key in [
        "start",
        "minutes",
        "zone",
        "devices",
        "devices_low",
        "devices_high",
        "people",
        "people_low",
        "people_high",
    ] {
        assert!(bins[0].get(key).is_some(), "presence bin lacks {key}");
    }

    // Head counts of both days, every 20 minutes of the open hours, from the truth.
    let mut csv = String::from("time,people\n");
    for day in [19, 20] {
        for m in (9 * 60..20 * 60).step_by(20) {
            let local = chrono::NaiveDate::from_ymd_opt(2026, 11, day)
                .unwrap()
                .and_hms_opt(m / 60, m % 60, 0)
                .unwrap();
            let t = chrono::TimeZone::from_local_datetime(&tz, &local)
                .unwrap()
                .timestamp() as f64;
            csv += &format!(
                "{},{}\n",
                local.format("%Y-%m-%d %H:%M"),
                inside_at(&truth, t)
            );
        }
    }
    let heads = dir.path().join("heads.csv");
    std::fs::write(&heads, &csv).unwrap();

    // A dry run stores nothing.
    let out = store_edge(&[
        "calibrate",
        "--config",
        config,
        "--headcounts",
        path_str(&heads),
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run: nothing stored"), "{text}");
    assert!(text.contains("held out"), "{text}");
    assert_eq!(
        edge_e2e::report_json(&data, "2026-11-20")["calibration"],
        before["calibration"]
    );

    let out = store_edge(&[
        "calibrate",
        "--config",
        config,
        "--headcounts",
        path_str(&heads),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("calibrate: {fit}");
    assert!(fit["samples"].as_u64().unwrap() > 50, "{fit}");
    assert_eq!(fit["days"], 2);
    let version = fit["version"].as_u64().unwrap();
    assert!(fit["reissued"].as_u64().unwrap() >= 2 * 144, "{fit}");
    // The legacy phone mix: every phone keeps a MAC for its visit, so people follow the tracked
    // devices (and the fit goes through the origin).
    assert!(fit["fit"]["slope_tracked"].as_f64().unwrap() > 0.0, "{fit}");
    assert!(fit["fit"]["slope"].as_f64().unwrap() >= 0.0, "{fit}");
    assert_eq!(fit["fit"]["intercept"].as_f64(), Some(0.0), "{fit}");
    assert!(fit["held_out"]["samples"].as_u64().unwrap() > 0, "{fit}");

    let after = edge_e2e::report_json(&data, "2026-11-20");
    assert_eq!(after["calibration"]["source"], "headcounts");
    assert_eq!(after["calibration"]["version"].as_u64(), Some(version));
    assert_eq!(after["calibration"]["samples"], fit["samples"]);
    for b in after["presence"].as_array().unwrap() {
        let (p, lo, hi) = (
            b["people"].as_f64().unwrap(),
            b["people_low"].as_f64().unwrap(),
            b["people_high"].as_f64().unwrap(),
        );
        assert!(lo <= p && p <= hi && lo >= 0.0, "{b}");
    }
    let text = String::from_utf8_lossy(
        &store_edge(&[
            "report",
            "--data-dir",
            path_str(&data),
            "--date",
            "2026-11-20",
        ])
        .stdout,
    )
    .into_owned();
    assert!(text.contains("Present per hour"), "{text}");
    assert!(text.contains("headcounts"), "{text}");

    // Counts that cannot make a fit are refused with the reason; the calibration stays.
    let flat = dir.path().join("flat.csv");
    let mut lines = String::new();
    for m in (10 * 60..12 * 60).step_by(15) {
        lines += &format!("2026-11-20 {:02}:{:02},5\n", m / 60, m % 60);
    }
    std::fs::write(&flat, lines).unwrap();
    let out = store_edge(&[
        "calibrate",
        "--config",
        config,
        "--headcounts",
        path_str(&flat),
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refused: no variance"), "{text}");
    assert!(text.contains("the calibration in force stays"), "{text}");
    assert!(
        stderr(&out).contains("calibration refused: no_variance"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        edge_e2e::report_json(&data, "2026-11-20")["calibration"]["version"].as_u64(),
        Some(version)
    );

    // A bad file names line, column and reason.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "time,people\n2026-11-20 10:00,3\n2026-11-20 10:20,three\n",
    )
    .unwrap();
    let out = store_edge(&[
        "calibrate",
        "--config",
        config,
        "--headcounts",
        path_str(&bad),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad.csv:3: column people: not a non-negative number"),
        "{}",
        stderr(&out)
    );
}
