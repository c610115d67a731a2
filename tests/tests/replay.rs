//! Replay durability: running twice counts nothing twice, a kill at any moment followed by a
//! rerun stores exactly what one clean run stores, and pcapng replays like pcap.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use edge_e2e::{bin, count, path_str, run_once, simulate, visits};
use edge_wire::pcap::Records;

fn small_day(dir: &Path, seed: u64) -> edge_sim::Written {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut p = edge_sim::SimParams::new(seed, date, 120, 3);
    p.history_days = 1;
    simulate(dir, &p)
}

#[test]
fn running_twice_over_the_same_files_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_day(dir.path(), 11);
    let data = dir.path().join("data");
    run_once(&w.config_path);
    let first = visits(&data);
    let (hours, outbox) = (count(&data, "hourly_aggregates"), count(&data, "outbox"));
    assert!(first.len() > 100, "only {} visits", first.len());

    let out = run_once(&w.config_path);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(" 0 visits stored"),
        "second run stored something: {summary}"
    );
    assert_eq!(visits(&data), first);
    assert_eq!(count(&data, "hourly_aggregates"), hours);
    assert_eq!(count(&data, "outbox"), outbox);
}

/// Sets short commit and checkpoint intervals so a kill lands between checkpoints.
fn with_fast_checkpoints(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replace(
        "data_dir = \"data\"",
        "data_dir = \"data\"\ncommit_interval = \"50ms\"\ncheckpoint_interval = \"120ms\"",
    );
    std::fs::write(config, text).unwrap();
}

#[test]
fn a_kill_at_any_moment_then_a_rerun_stores_exactly_one_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_day(dir.path(), 12);
    with_fast_checkpoints(&w.config_path);
    run_once(&w.config_path);
    let clean = visits(&dir.path().join("data"));
    let clean_hours = count(&dir.path().join("data"), "hourly_aggregates");

    let mut killed_mid_run = 0;
    for delay_ms in [150u64, 300, 450, 700] {
        let data = dir.path().join("data");
        std::fs::remove_dir_all(&data).unwrap();
        let mut child = Command::new(bin())
            .args(["run", "--config", path_str(&w.config_path), "--once"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
            child.kill().unwrap(); // SIGKILL: no chance to commit anything more
        }
        child.wait().unwrap();
        // A kill can land before the first migration committed: a database without tables.
        let migrated = data.join("store-edge.db").exists()
            && edge_e2e::open_db(&data)
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'visits'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                == 1;
        let partial = if migrated { visits(&data).len() } else { 0 };
        run_once(&w.config_path);
        println!(
            "killed after {delay_ms} ms with {partial} visits committed; rerun: {} visits",
            visits(&data).len()
        );
        assert_eq!(visits(&data), clean, "kill after {delay_ms} ms");
        assert_eq!(count(&data, "hourly_aggregates"), clean_hours);
    }
    assert!(killed_mid_run > 0, "every run finished before its kill");
}

#[test]
fn sigterm_commits_and_a_rerun_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_day(dir.path(), 13);
    with_fast_checkpoints(&w.config_path);
    run_once(&w.config_path);
    let clean = visits(&dir.path().join("data"));
    let data = dir.path().join("data");
    std::fs::remove_dir_all(&data).unwrap();

    let child = Command::new(bin())
        .args(["run", "--config", path_str(&w.config_path), "--once"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    edge_e2e::assert_no_panic(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_once(&w.config_path);
    assert_eq!(visits(&data), clean);
}

#[test]
fn pcapng_replays_like_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_day(dir.path(), 14);
    run_once(&w.config_path);
    let from_pcap = visits(&dir.path().join("data"));

    // Rewrite every capture as pcapng and point a second config at those.
    let ng = dir.path().join("ng");
    std::fs::create_dir(&ng).unwrap();
    let mut config = std::fs::read_to_string(&w.config_path).unwrap();
    for f in &w.files {
        let bytes = std::fs::read(&f.path).unwrap();
        let (hdr, records) = Records::new(&bytes).unwrap();
        let name = f
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".pcap", ".pcapng");
        let out = std::fs::File::create(ng.join(&name)).unwrap();
        let mut wr = edge_wire::pcapng::Writer::new(out, hdr.linktype, 65_535).unwrap();
        for r in records {
            let r = r.unwrap();
            wr.write_packet(r.header.ts_micros(hdr.nanosecond), r.data)
                .unwrap();
        }
        wr.flush().unwrap();
        let old = f.path.file_name().unwrap().to_str().unwrap();
        config = config.replace(&format!("\"{old}\""), &format!("\"{name}\""));
    }
    std::fs::write(ng.join("config.toml"), &config).unwrap();
    std::fs::copy(&w.secrets_path, ng.join("secrets.toml")).unwrap();
    std::fs::copy(&w.portal_detail_path, ng.join(edge_sim::DETAIL_FILE)).unwrap();
    std::fs::copy(&w.pos_path, ng.join(edge_sim::POS_FILE)).unwrap();
    for f in [edge_sim::COUNTER_MAIN_FILE, edge_sim::COUNTER_SIDE_FILE] {
        std::fs::copy(dir.path().join(f), ng.join(f)).unwrap();
    }
    run_once(&ng.join("config.toml"));
    assert_eq!(visits(&ng.join("data")), from_pcap);
}
