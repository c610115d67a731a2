//! `store-edge report`: reads a data directory and computes the report of one local date, or of
//! a window of its local hours.
//!
//! The numbers come from the committed visits (and the hourly records' clock-step flags), so
//! `report` may run while the agent is running (SQLite WAL lets a reader see the last commit
//! without blocking the writer).

use std::path::Path;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use chrono_tz::Tz;
use edge_core::counter;
use edge_core::report::{ConfiguredSources, DoorCounts, HourWindow, PosTotals, ReportVisit};
use edge_core::{DayReport, LocalClock, ReportInputs, VisitClass};

use crate::store::Reader;

/// The report and the store it is about.
pub struct Report {
    /// Store identifier from the data directory.
    pub store_id: String,
    /// The report.
    pub day: DayReport,
}

/// Computes the report for `date` (default: the latest date with visits), or for the local
/// hours `hours` of that date.
pub fn day_report(
    data_dir: &Path,
    date: Option<NaiveDate>,
    hours: Option<HourWindow>,
) -> anyhow::Result<Report> {
    let reader = Reader::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let tz: Tz = match reader.meta("timezone")? {
        Some(t) => t
            .parse()
            .map_err(|_| anyhow::anyhow!("the store's time zone {t:?} is not known"))?,
        None => bail!(
            "{} holds no store yet (run `store-edge run` first)",
            data_dir.display()
        ),
    };
    let store_id = reader.meta("store_id")?.unwrap_or_default();
    let zones: Vec<String> = reader
        .meta("zones")?
        .and_then(|z| serde_json::from_str(&z).ok())
        .unwrap_or_default();
    let sources: ConfiguredSources = reader
        .meta("sources")?
        .and_then(|z| serde_json::from_str(&z).ok())
        .unwrap_or_default();
    let date = match date {
        Some(d) => d,
        None => match reader.latest_date()? {
            Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .with_context(|| format!("stored date {d:?}"))?,
            None => match reader.counter_latest_date()? {
                Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .with_context(|| format!("stored date {d:?}"))?,
                None => bail!("no visits stored yet in {}", data_dir.display()),
            },
        },
    };
    let rows = reader.visits_on(&date.to_string())?;
    let visits: Vec<ReportVisit> = rows
        .iter()
        .filter_map(|r| {
            Some(ReportVisit {
                class: VisitClass::parse(&r.class)?,
                start_ms: r.start_ms,
                dwell_ms: r.dwell_ms,
                path: r.path.iter().map(|p| (p.zone.clone(), p.ms)).collect(),
                connected: r.connected,
                identified: r.identified,
                group: r.group.clone(),
                inside_ms: r.inside_ms,
                sightings: r.sightings,
                randomized: r.randomized,
            })
        })
        .collect();
    let clock = LocalClock::new(tz);
    // Receipts of the date (or window), when a POS source is configured or any were stored.
    let pos = if sources.pos || reader.has_purchases()? {
        let keep = |t: i64| hours.is_none_or(|w| w.contains(clock.hour(t)));
        let d = reader.pos_day(&date.to_string(), &keep)?;
        Some(PosTotals {
            transactions: d.transactions,
            sales_minor: d.sales_minor,
            minor_digits: reader
                .meta("pos_minor_digits")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
            currency: d.currency,
            items: d.items,
            attributed: d.attributed,
        })
    } else {
        None
    };
    // Door counts of the date (or window), when a counter is configured or any were stored.
    let doors = if sources.counter || reader.has_counter_intervals()? {
        let intervals = reader.counter_intervals_on(&date.to_string())?;
        let whole = counter::day_totals(&intervals, &clock, date);
        let in_window: Vec<_> = match hours {
            Some(w) => intervals
                .iter()
                .filter(|iv| w.contains(clock.hour(iv.start_ms)))
                .cloned()
                .collect(),
            None => intervals.clone(),
        };
        Some(DoorCounts {
            window: counter::day_totals(&in_window, &clock, date),
            peak_occupancy: whole.peak_occupancy,
            occupancy_at_close: whole.occupancy_at_close,
            by_hour: counter::footfall_by_hour(&intervals, &clock, date),
        })
    } else {
        None
    };
    let clock_step_hours = reader.clock_step_hours(&date.to_string())?;
    // Presence: the newest revision of each bin, and the calibration the newest of them used.
    let presence = reader.presence_on(&date.to_string())?;
    let calibration = match presence.iter().map(|r| r.calibration_version).max() {
        Some(v) => reader.calibration(v)?,
        None => reader.newest_calibration()?,
    };
    let inputs = ReportInputs {
        date,
        clock,
        visits: &visits,
        sources,
        doors,
        pos,
        hours,
        min_visit_dwell_ms: reader
            .meta("min_visit_dwell_ms")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(edge_core::params::DEFAULT_MIN_VISIT_DWELL_MS),
        clock_step_hours: &clock_step_hours,
        presence: &presence,
        calibration: calibration.as_ref(),
    };
    Ok(Report {
        store_id,
        day: DayReport::compute(&inputs, &zones),
    })
}
