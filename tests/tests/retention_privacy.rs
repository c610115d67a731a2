//! Privacy canaries after retention: a simulated day (Wi-Fi, portal logins, POS receipts with
//! member phones, door counters) runs through the service, the reference cloud client pulls
//! and acknowledges everything, retention removes the acknowledged records, and then no MAC
//! address and no phone number of the day is in any byte of the data directory (database, WAL,
//! shared memory, journals), and the database passes `PRAGMA integrity_check`.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use edge_e2e::{count, open_db, path_str, read_truth, simulate, store_edge, Agent};

#[test]
fn no_personal_data_anywhere_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let mut p = edge_sim::SimParams::new(41, date, 70, 2);
    p.history_days = 1;
    let w = simulate(dir.path(), &p);
    // Retention: acknowledged records go one second after their commit, checked every second.
    let mut config = std::fs::read_to_string(&w.config_path).unwrap().replace(
        "[storage]\n",
        "[storage]\naggregate_retention = \"1s\"\nprune_interval = \"1s\"\n",
    );
    config.push_str("\n[sync]\nlisten = \"127.0.0.1:0\"\n");
    assert!(config.contains("aggregate_retention"), "{config}");
    std::fs::write(&w.config_path, config).unwrap();
    let data = dir.path().join("data");

    let agent = Agent::start(&w.config_path);
    let before = count(&data, "outbox");
    assert!(before > 100, "only {before} records stored");
    // The reference cloud client pulls everything and acknowledges it.
    let out = dir.path().join("records.jsonl");
    let pulled = store_edge(&[
        "pull",
        "--endpoint",
        &agent.endpoint,
        "--out",
        path_str(&out),
    ]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let lines = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert!(lines >= before, "pulled {lines} of {before} records");
    // Retention runs on its own; wait until the acknowledged records are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = count(&data, "outbox");
        if left < before / 10 {
            println!(
                "outbox: {before} records stored, {lines} pulled, {left} left after retention"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention left {left} of {before} records:\n{}",
            agent.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    agent.stop_cleanly();

    let db = open_db(&data);
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(db);
    let truth = read_truth(&w.truth_path);
    assert!(truth.visits.iter().any(|v| v.phone.is_some()));
    assert!(truth.pos.purchases.iter().any(|p| p.member_phone.is_some()));
    let read = edge_e2e::assert_no_personal_data(&data, &truth);
    println!(
        "{} MACs and the day's phone numbers absent from {read} bytes of {}",
        truth.visits.len(),
        data.display()
    );
}
