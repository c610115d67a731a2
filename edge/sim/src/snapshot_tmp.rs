use crate::tests::{date, small};
use crate::{generate, SimParams};

pub(crate) fn configs() -> Vec<(&'static str, SimParams)> {
    let mut all = small(31);
    all.visitors = 60;
    all.connected_share = 1.0;
    let mut eight = SimParams::new(2, date(), 40, 8);
    eight.open_hours = 2;
    eight.history_days = 0;
    vec![
        ("small5", small(5)),
        ("default300", SimParams::new(1, date(), 300, 3)),
        ("allconn31", all),
        ("eight", eight),
    ]
}

#[test]
fn snapshot_write() {
    let root = std::path::Path::new(&std::env::var("SNAP_DIR").unwrap_or_default()).to_path_buf();
    if root.as_os_str().is_empty() {
        return;
    }
    for (name, p) in configs() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let w = generate(&p).write(&dir).unwrap();
        std::fs::write(dir.join("visits.json"), serde_json::to_string_pretty(&w.truth.visits).unwrap()).unwrap();
    }
}
