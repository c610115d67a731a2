//! Writes one simulated day: `simulate DIR [SEED] [VISITORS] [ZONES] [OPEN_HOURS]`.
//! Used to measure time and peak memory of large runs (e.g. under `/usr/bin/time -v`).

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: simulate DIR [SEED] [VISITORS] [ZONES] [OPEN_HOURS]")?,
    );
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    let visitors: u32 = args.next().map_or(Ok(300), |s| s.parse())?;
    let zones: u8 = args.next().map_or(Ok(3), |s| s.parse())?;
    let date = chrono::NaiveDate::from_ymd_opt(2025, 3, 14).ok_or("bad date")?;
    let mut params = edge_sim::SimParams::new(seed, date, visitors, zones);
    if let Some(h) = args.next() {
        params.open_hours = h.parse()?;
    }
    params.validate()?;
    let t0 = Instant::now();
    let day = edge_sim::generate(&params);
    let planned = t0.elapsed();
    let written = day.write(&dir)?;
    let total = t0.elapsed();
    for f in &written.files {
        println!("{}: {} frames", f.path.display(), f.frames);
    }
    println!(
        "visits in truth: {}; plan {:.2?}, total {:.2?}",
        written.truth.visits.len(),
        planned,
        total
    );
    Ok(())
}
