//! Presence bins and calibrations: each sealed bin is stored with the devices estimate and the
//! people figure of the calibration in force for it, as a new revision when anything changed
//! (late frames, or a calibration applied to bins already stored), and enters the outbox as a
//! `presence` record. Calibrations are versioned rows; a stored figure is never edited.

use edge_core::presence::{self, Calibration, CalibrationSource, PresenceBin, PresenceRecord};
use edge_core::LocalClock;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;

/// A record as sent: the stored record and its revision.
#[derive(Serialize)]
struct Sent<'a> {
    revision: u32,
    #[serde(flatten)]
    record: &'a PresenceRecord,
}

/// The outbox key of a bin: `<start_ms>` for the whole store, `<start_ms>/<zone>` for a zone.
pub fn record_key(r: &PresenceRecord) -> String {
    match &r.zone {
        Some(z) => format!("{}/{z}", r.start_ms),
        None => r.start_ms.to_string(),
    }
}

fn source_of(label: &str) -> CalibrationSource {
    match label {
        "door" => CalibrationSource::Door,
        "headcounts" => CalibrationSource::Headcounts,
        _ => CalibrationSource::Default,
    }
}

const CALIBRATION_COLUMNS: &str = "version, source, fitted_at_ms, samples, intercept, slope, \
     residual_sd, mean_devices, sxx, r, slope_tracked";

fn calibration_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Calibration> {
    Ok(Calibration {
        version: r.get(0)?,
        source: source_of(&r.get::<_, String>(1)?),
        fitted_at_ms: r.get(2)?,
        samples: r.get(3)?,
        intercept: r.get(4)?,
        slope: r.get(5)?,
        residual_sd: r.get(6)?,
        mean_devices: r.get(7)?,
        sxx: r.get(8)?,
        r: r.get(9)?,
        slope_tracked: r.get(10)?,
    })
}

/// The calibration in force for a bin starting at `start_ms`: the newest whose
/// `applies_from_ms` is not after it; the default when there is none.
pub fn calibration_at(conn: &Connection, start_ms: i64) -> Result<Calibration, StoreError> {
    let c = conn
        .query_row(
            &format!(
                "SELECT {CALIBRATION_COLUMNS} FROM calibrations WHERE applies_from_ms <= ?1
                 ORDER BY version DESC LIMIT 1"
            ),
            [start_ms],
            calibration_row,
        )
        .optional()
        .map_err(|e| StoreError::sqlite("reading the calibration", e))?;
    Ok(c.unwrap_or_else(Calibration::uncalibrated))
}

/// A calibration by version.
pub fn calibration(conn: &Connection, version: u32) -> Result<Option<Calibration>, StoreError> {
    conn.query_row(
        &format!("SELECT {CALIBRATION_COLUMNS} FROM calibrations WHERE version = ?1"),
        [version],
        calibration_row,
    )
    .optional()
    .map_err(|e| StoreError::sqlite("reading a calibration", e))
}

/// The newest calibration, if any.
pub fn newest_calibration(conn: &Connection) -> Result<Option<Calibration>, StoreError> {
    conn.query_row(
        &format!("SELECT {CALIBRATION_COLUMNS} FROM calibrations ORDER BY version DESC LIMIT 1"),
        [],
        calibration_row,
    )
    .optional()
    .map_err(|e| StoreError::sqlite("reading the newest calibration", e))
}

/// Stores `fitted` as the next calibration version, in force for bins from `applies_from_ms`;
/// gives the version.
pub fn save_calibration(
    tx: &rusqlite::Transaction<'_>,
    fitted: &Calibration,
    applies_from_ms: i64,
) -> Result<u32, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let version: u32 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM calibrations",
            [],
            |r| r.get(0),
        )
        .map_err(e("numbering a calibration"))?;
    tx.execute(
        &format!(
            "INSERT INTO calibrations ({CALIBRATION_COLUMNS}, applies_from_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            version,
            fitted.source.label(),
            fitted.fitted_at_ms,
            fitted.samples,
            fitted.intercept,
            fitted.slope,
            fitted.residual_sd,
            fitted.mean_devices,
            fitted.sxx,
            fitted.r,
            fitted.slope_tracked,
            applies_from_ms
        ],
    )
    .map_err(e("storing a calibration"))?;
    Ok(version)
}

/// Stores records (each a new revision unless the newest stored one says the same) and queues
/// them in the outbox; gives how many were new.
pub fn store_records(
    tx: &rusqlite::Transaction<'_>,
    records: &[PresenceRecord],
    now_ms: i64,
) -> Result<u64, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut newest = tx
        .prepare_cached(
            "SELECT revision, body FROM presence_bins WHERE start_ms = ?1 AND zone = ?2
             ORDER BY revision DESC LIMIT 1",
        )
        .map_err(e("preparing a presence lookup"))?;
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO presence_bins (start_ms, zone, revision, local_date, body, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(e("preparing a presence insert"))?;
    let mut outbox = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO outbox (kind, record_key, revision, body, created_ms)
             VALUES ('presence', ?1, ?2, ?3, ?4)",
        )
        .map_err(e("preparing a presence outbox insert"))?;
    let mut new = 0;
    for rec in records {
        let zone = rec.zone.clone().unwrap_or_default();
        let body = serde_json::to_string(rec)
            .map_err(|err| StoreError::Corrupt(format!("encoding a presence record: {err}")))?;
        let last: Option<(u32, String)> = newest
            .query_row(params![rec.start_ms, zone], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(e("reading the newest presence revision"))?;
        // A replay after a crash seals the same bin again: nothing new to say.
        if last.as_ref().is_some_and(|(_, b)| *b == body) {
            continue;
        }
        let revision = last.map_or(1, |(r, _)| r + 1);
        ins.execute(params![
            rec.start_ms,
            zone,
            revision,
            rec.local_date,
            body,
            now_ms
        ])
        .map_err(e("inserting a presence bin"))?;
        let sent = serde_json::to_string(&Sent {
            revision,
            record: rec,
        })
        .map_err(|err| StoreError::Corrupt(format!("encoding a presence record: {err}")))?;
        outbox
            .execute(params![record_key(rec), revision, sent, now_ms])
            .map_err(e("inserting a presence bin into the outbox"))?;
        new += 1;
    }
    Ok(new)
}

/// The records of bins the core sealed, with the calibration in force for each.
pub fn records_of(
    conn: &Connection,
    bins: &[PresenceBin],
    zones: &[String],
    clock: &LocalClock,
) -> Result<Vec<PresenceRecord>, StoreError> {
    let mut out = Vec::with_capacity(bins.len());
    for b in bins {
        let cal = calibration_at(conn, b.start_ms)?;
        let zone = b.zone.map(|z| {
            zones
                .get(usize::from(z))
                .cloned()
                .unwrap_or_else(|| format!("zone-{z}"))
        });
        out.push(PresenceRecord::new(b, zone, clock, &cal));
    }
    Ok(out)
}

/// The newest revision of every presence bin of a store-local date.
pub fn on_date(conn: &Connection, local_date: &str) -> Result<Vec<PresenceRecord>, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut st = conn
        .prepare(
            "SELECT p.body FROM presence_bins p
             WHERE p.local_date = ?1 AND p.revision = (
               SELECT MAX(q.revision) FROM presence_bins q
               WHERE q.start_ms = p.start_ms AND q.zone = p.zone)
             ORDER BY p.start_ms, p.zone",
        )
        .map_err(e("reading presence bins"))?;
    let rows = st
        .query_map([local_date], |r| r.get::<_, String>(0))
        .map_err(e("reading presence bins"))?;
    let mut out = Vec::new();
    for body in rows {
        let body = body.map_err(e("reading presence bins"))?;
        // Written by `store_records` from the same type.
        let rec: PresenceRecord = serde_json::from_str(&body)
            .map_err(|err| StoreError::Corrupt(format!("a stored presence record: {err}")))?;
        out.push(rec);
    }
    Ok(out)
}

/// Re-issues the newest revision of every bin from `from_ms` on with the calibration now in
/// force for it: a bin whose people figure changes gets its next revision. Gives how many.
pub fn recalibrate_from(
    tx: &rusqlite::Transaction<'_>,
    from_ms: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let bodies: Vec<String> = {
        let mut st = tx
            .prepare(
                "SELECT p.body FROM presence_bins p
                 WHERE p.start_ms >= ?1 AND p.revision = (
                   SELECT MAX(q.revision) FROM presence_bins q
                   WHERE q.start_ms = p.start_ms AND q.zone = p.zone)",
            )
            .map_err(e("reading presence bins to recalibrate"))?;
        let rows = st
            .query_map([from_ms], |r| r.get::<_, String>(0))
            .map_err(e("reading presence bins to recalibrate"))?;
        rows.collect::<Result<_, _>>()
            .map_err(e("reading presence bins to recalibrate"))?
    };
    let mut records = Vec::with_capacity(bodies.len());
    for body in bodies {
        let mut rec: PresenceRecord = serde_json::from_str(&body)
            .map_err(|err| StoreError::Corrupt(format!("a stored presence record: {err}")))?;
        rec.calibrate(&calibration_at(tx, rec.start_ms)?);
        records.push(rec);
    }
    store_records(tx, &records, now_ms)
}

/// The newest revision of every bin starting in `[from_ms, to_ms)` of one scope (`None`:
/// the whole store), in time order.
pub fn records_between(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    zone: Option<&str>,
) -> Result<Vec<PresenceRecord>, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut st = conn
        .prepare(
            "SELECT p.body FROM presence_bins p
             WHERE p.start_ms >= ?1 AND p.start_ms < ?2 AND p.zone = ?3 AND p.revision = (
               SELECT MAX(q.revision) FROM presence_bins q
               WHERE q.start_ms = p.start_ms AND q.zone = p.zone)
             ORDER BY p.start_ms",
        )
        .map_err(e("reading presence bins"))?;
    let rows = st
        .query_map(params![from_ms, to_ms, zone.unwrap_or_default()], |r| {
            r.get::<_, String>(0)
        })
        .map_err(e("reading presence bins"))?;
    let mut out = Vec::new();
    for body in rows {
        let body = body.map_err(e("reading presence bins"))?;
        out.push(
            serde_json::from_str(&body)
                .map_err(|err| StoreError::Corrupt(format!("a stored presence record: {err}")))?,
        );
    }
    Ok(out)
}

/// Days of door counts and presence a door calibration is fitted on.
pub const DOOR_FIT_DAYS: i64 = 14;

/// Meta key: the store-local date a door calibration was last tried for, and the counter
/// intervals it saw (`<date> <n>`; `<date> fitted` once it was made).
const DOOR_TRIED: &str = "door_calibration_tried";

/// What a door refit did.
#[derive(Debug, Clone, PartialEq)]
pub enum DoorRefit {
    /// A calibration was stored as this version, in force from the date's midnight.
    Fitted(u32),
    /// The samples did not make a fit (the reason); the calibration in force stays.
    Refused(presence::FitError),
    /// Nothing to do: fitted already for the date, no new counts since the last try, or head
    /// counts rule this store.
    Skipped,
}

/// Refits the door calibration for the store-local `date`: on the [`DOOR_FIT_DAYS`] days
/// before it (never on the date itself, whose bins it judges), whole-store bins against the
/// counters' occupancy, once the counts have reached the date (so those days are complete).
/// Stored in force from the date's midnight, and the date's bins stored
/// before it get their people figure (new revisions); earlier dates keep theirs. Tried again
/// for the date only when counter intervals were added meanwhile (counts can arrive after
/// the date's first bins), never again once made. Skipped while the newest calibration is from
/// head counts (an installer's counts rule until the next `calibrate`).
pub fn door_refit(
    tx: &rusqlite::Transaction<'_>,
    clock: &LocalClock,
    date: chrono::NaiveDate,
    now_ms: i64,
) -> Result<DoorRefit, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tried: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [DOOR_TRIED], |r| {
            r.get(0)
        })
        .optional()
        .map_err(e("reading the door calibration date"))?;
    let first = date - chrono::Duration::days(DOOR_FIT_DAYS);
    let intervals: i64 = tx
        .query_row(
            "SELECT count(*) FROM counter_intervals WHERE local_date >= ?1 AND local_date < ?2",
            params![first.to_string(), date.to_string()],
            |r| r.get(0),
        )
        .map_err(e("counting counter intervals"))?;
    let key = date.to_string();
    // The counts of the days before are complete once one of the date itself is in (counters
    // deliver in order); fitting earlier would lock in a fit on part of them.
    let reached: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM counter_intervals WHERE local_date >= ?1 LIMIT 1",
            [&key],
            |r| r.get(0),
        )
        .optional()
        .map_err(e("checking the counts have reached the date"))?;
    if reached.is_none() {
        return Ok(DoorRefit::Skipped);
    }
    let seen = format!("{key} {intervals}");
    if let Some(t) = &tried {
        let (d, what) = t.split_once(' ').unwrap_or((t.as_str(), ""));
        if d > key.as_str() || (d == key && (what == "fitted" || *t == seen)) {
            return Ok(DoorRefit::Skipped);
        }
    }
    let mark = |tx: &rusqlite::Transaction<'_>, v: &str| {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![DOOR_TRIED, v],
        )
        .map(|_| ())
        .map_err(e("writing the door calibration date"))
    };
    mark(tx, &seen)?;
    if newest_calibration(tx)?.is_some_and(|c| c.source == CalibrationSource::Headcounts) {
        return Ok(DoorRefit::Skipped);
    }
    let midnight = clock.day_start(date);
    let mut occupancy = Vec::new();
    for back in (1..=DOOR_FIT_DAYS).rev() {
        let day = date - chrono::Duration::days(back);
        let ivs = super::counters::on(tx, &day.to_string())?;
        occupancy.extend(edge_core::counter::occupancy_series(&ivs, clock, day));
    }
    let records = records_between(tx, clock.day_start(first), midnight, None)?;
    let samples = presence::door_samples(&records, &occupancy);
    match Calibration::fit(
        &presence::points(&samples),
        CalibrationSource::Door,
        0,
        now_ms,
    ) {
        Ok(fit) => {
            let v = save_calibration(tx, &fit, midnight)?;
            recalibrate_from(tx, midnight, now_ms)?;
            mark(tx, &format!("{key} fitted"))?;
            Ok(DoorRefit::Fitted(v))
        }
        Err(why) => Ok(DoorRefit::Refused(why)),
    }
}

/// [`door_refit`] for the date of the newest stored presence bin, in the store's time zone
/// (meta `timezone`), after counter intervals were stored; nothing before any bin or zone.
pub fn door_refit_after_counts(
    conn: &mut Connection,
    now_ms: i64,
) -> Result<DoorRefit, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tz: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'timezone'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(e("reading the time zone"))?;
    let Some(tz) = tz.and_then(|t| t.parse::<chrono_tz::Tz>().ok()) else {
        return Ok(DoorRefit::Skipped);
    };
    let newest: Option<i64> = conn
        .query_row("SELECT MAX(start_ms) FROM presence_bins", [], |r| r.get(0))
        .map_err(e("reading the newest presence bin"))?;
    let Some(newest) = newest else {
        return Ok(DoorRefit::Skipped);
    };
    let clock = LocalClock::new(tz);
    let tx = conn
        .transaction()
        .map_err(e("starting a door calibration"))?;
    let r = door_refit(&tx, &clock, clock.date(newest), now_ms)?;
    tx.commit().map_err(e("committing a door calibration"))?;
    Ok(r)
}

/// Stores a calibration fitted elsewhere (head counts) in force from `applies_from_ms`, and
/// gives every bin stored from then on its people figure as a new revision; in one
/// transaction on `data_dir`'s database (the agent may be running: SQLite serializes the
/// writers, and the agent reads the calibration in force at each commit). Gives the version
/// and how many bins were re-issued.
pub fn store_calibration(
    data_dir: &std::path::Path,
    fitted: &Calibration,
    applies_from_ms: i64,
    now_ms: i64,
) -> Result<(u32, u64), StoreError> {
    let mut conn = super::open_existing(data_dir)?;
    let tx = conn
        .transaction()
        .map_err(|err| StoreError::sqlite("starting a calibration", err))?;
    let version = save_calibration(&tx, fitted, applies_from_ms)?;
    let reissued = recalibrate_from(&tx, applies_from_ms, now_ms)?;
    tx.commit()
        .map_err(|err| StoreError::sqlite("committing a calibration", err))?;
    Ok((version, reissued))
}

impl super::Reader {
    /// The newest revision of every presence bin of a store-local date.
    pub fn presence_on(&self, local_date: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        on_date(&self.conn, local_date)
    }

    /// A calibration by version (0: the default).
    pub fn calibration(&self, version: u32) -> Result<Option<Calibration>, StoreError> {
        if version == 0 {
            return Ok(Some(Calibration::uncalibrated()));
        }
        calibration(&self.conn, version)
    }

    /// The newest calibration, if any.
    pub fn newest_calibration(&self) -> Result<Option<Calibration>, StoreError> {
        newest_calibration(&self.conn)
    }

    /// [`records_between`].
    pub fn presence_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        zone: Option<&str>,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        records_between(&self.conn, from_ms, to_ms, zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, Batch, Reader};
    use std::sync::Arc;

    /// 2026-11-20T00:00:00Z.
    const T0: i64 = 1_795_132_800_000;
    const DAY: i64 = 86_400_000;

    fn clock() -> LocalClock {
        LocalClock::new(chrono_tz::UTC)
    }

    /// Fit points of (estimated devices, people), no tracked devices.
    fn points(pairs: &[(f64, f64)]) -> Vec<presence::FitPoint> {
        pairs
            .iter()
            .map(|&(estimated, people)| presence::FitPoint {
                tracked: 0.0,
                estimated,
                people,
                group: 0,
            })
            .collect()
    }

    /// A whole-store bin heard throughout with `classes` untracked classes.
    fn bin(start_ms: i64, classes: u32) -> PresenceBin {
        PresenceBin {
            start_ms,
            zone: None,
            revision: 0,
            minutes_heard: 10,
            classes,
            class_minutes: f64::from(classes),
            scans: classes * 10,
            macs: classes * 20,
            tracked: 0.0,
            tracked_distinct: 0,
            outside_class_minutes: 0.0,
            previous: None,
        }
    }

    fn batch(bins: Vec<PresenceBin>, door: bool) -> Batch {
        Batch {
            presence: bins,
            door_calibration: door,
            now_ms: 7,
            ..Batch::new(Arc::from(vec!["entrance".to_string()]), 1, clock())
        }
    }

    fn outbox_revisions(dir: &std::path::Path) -> Vec<(String, u32)> {
        let c = Connection::open(dir.join(crate::store::DB_FILE)).unwrap();
        let mut st = c
            .prepare("SELECT record_key, revision FROM outbox WHERE kind = 'presence' ORDER BY seq")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    }

    #[test]
    fn a_bin_is_stored_once_and_revised_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let r = store.commit(batch(vec![bin(T0, 2)], false)).unwrap();
        assert_eq!(r.presence_new, 1);
        // A replay seals the same bin again: nothing new.
        let r = store.commit(batch(vec![bin(T0, 2)], false)).unwrap();
        assert_eq!(r.presence_new, 0);
        // Late frames: a third class.
        let r = store.commit(batch(vec![bin(T0, 3)], false)).unwrap();
        assert_eq!(r.presence_new, 1);
        drop(store);
        assert_eq!(
            outbox_revisions(dir.path()),
            vec![(T0.to_string(), 1), (T0.to_string(), 2)]
        );
        let recs = Reader::open(dir.path())
            .unwrap()
            .presence_on("2026-11-20")
            .unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].classes, 3);
        assert_eq!(recs[0].people, None, "uncalibrated");
    }

    #[test]
    fn a_calibration_reissues_the_bins_from_its_first_day_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let bins = vec![bin(T0, 2), bin(T0 + DAY, 3), bin(T0 + DAY + 600_000, 5)];
        store.commit(batch(bins, false)).unwrap();
        drop(store);
        let fit = Calibration::fit(
            &points(&[
                (1.0, 1.0),
                (2.0, 2.0),
                (3.0, 2.5),
                (4.0, 4.5),
                (5.0, 5.0),
                (6.0, 6.0),
            ]),
            CalibrationSource::Headcounts,
            0,
            99,
        )
        .unwrap();
        let (v, n) = store_calibration(dir.path(), &fit, T0 + DAY, 100).unwrap();
        assert_eq!((v, n), (1, 2));
        let reader = Reader::open(dir.path()).unwrap();
        let day1 = reader.presence_on("2026-11-20").unwrap();
        let day2 = reader.presence_on("2026-11-21").unwrap();
        assert_eq!(day1[0].people, None, "before the calibration's first day");
        assert!(day2.iter().all(|r| r.people.is_some()
            && r.calibration == CalibrationSource::Headcounts
            && r.calibration_version == 1));
        assert_eq!(reader.newest_calibration().unwrap().unwrap().version, 1);
        // The first revisions are kept: the re-issue is revision 2 of the day-2 bins.
        let revs = outbox_revisions(dir.path());
        assert_eq!(revs.iter().filter(|r| r.1 == 2).count(), 2);
        assert_eq!(revs.len(), 5);
        // A bin sealed later takes the calibration in force.
        let store = open(dir.path()).unwrap();
        store
            .commit(batch(vec![bin(T0 + DAY + 1_200_000, 4)], false))
            .unwrap();
        drop(store);
        let day2 = Reader::open(dir.path())
            .unwrap()
            .presence_on("2026-11-21")
            .unwrap();
        assert_eq!(day2.len(), 3);
        assert!(day2.iter().all(|r| r.calibration_version == 1));
    }

    /// Stores one counter interval.
    fn count(c: &Connection, start_ms: i64, ins: u32, outs: u32) {
        c.execute(
            "INSERT INTO counter_intervals (interval_key, revision, source, door, line, start_ms,
               end_ms, local_date, ins, outs, created_ms)
             VALUES (?1, 1, 'door', 'front', 'main', ?2, ?3, ?4, ?5, ?6, 0)",
            params![
                format!("front:main:{start_ms}"),
                start_ms,
                start_ms + 600_000,
                clock().date(start_ms).to_string(),
                ins,
                outs
            ],
        )
        .unwrap();
    }

    #[test]
    fn the_door_calibration_is_fitted_on_the_days_before_once_per_date() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        // Day 1: people inside rise by one every 10 minutes from 10:00 to 11:00 (0 → 6) and
        // the untracked classes follow (about two devices a person).
        let c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        let ten = T0 + 10 * 3_600_000;
        let mut bins = Vec::new();
        for i in 0..7 {
            let start = ten + i * 600_000;
            // One entry in the 10 minutes before each bin: i + 1 inside at its middle.
            count(&c, start - 600_000, 1, 0);
            bins.push(bin(start, u32::try_from(i).unwrap() + 1));
        }
        drop(c);
        // Day 1 alone: nothing before it to fit on.
        let r = store.commit(batch(bins[..4].to_vec(), true)).unwrap();
        assert!(r.calibrations.is_empty());
        // Day 2's first bin before the counts have reached day 2: not tried yet.
        let r = store.commit(batch(vec![bin(T0 + DAY, 2)], true)).unwrap();
        assert!(r.calibrations.is_empty());
        // The counts reach day 2 while day 1's bins are only partly in: too few samples.
        let c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        count(&c, T0 + DAY, 0, 0);
        drop(c);
        let r = store
            .commit(batch(vec![bin(T0 + DAY + 600_000, 2)], true))
            .unwrap();
        assert!(r.calibrations.is_empty());
        // Nothing new: not tried again.
        let r = store
            .commit(batch(vec![bin(T0 + DAY + 1_200_000, 2)], true))
            .unwrap();
        assert!(r.calibrations.is_empty());
        // The rest of day 1 (bins and counts) arrives: fitted on day 1, in force from day 2's
        // midnight, day 2's earlier bins re-issued with people.
        let c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        count(&c, ten + 7 * 600_000, 0, 0);
        drop(c);
        store.commit(batch(bins[4..].to_vec(), true)).unwrap();
        let r = store
            .commit(batch(vec![bin(T0 + DAY + 1_800_000, 3)], true))
            .unwrap();
        assert_eq!(r.calibrations, vec![1]);
        // Made once per date.
        let c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        count(&c, ten + 8 * 600_000, 0, 0);
        drop(c);
        let r = store
            .commit(batch(vec![bin(T0 + DAY + 2_400_000, 3)], true))
            .unwrap();
        assert!(r.calibrations.is_empty());
        drop(store);
        let reader = Reader::open(dir.path()).unwrap();
        let cal = reader.newest_calibration().unwrap().unwrap();
        assert_eq!(cal.source, CalibrationSource::Door);
        assert_eq!(cal.samples, 7);
        assert!(cal.r > 0.99, "{cal:?}");
        let day1 = reader.presence_on("2026-11-20").unwrap();
        assert!(
            day1.iter().all(|r| r.people.is_none()),
            "day 1 judged by nothing fitted on it"
        );
        let day2 = reader.presence_on("2026-11-21").unwrap();
        assert!(day2
            .iter()
            .all(|r| r.people.is_some() && r.calibration == CalibrationSource::Door));
    }

    #[test]
    fn head_counts_rule_until_the_next_calibrate() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store.commit(batch(vec![bin(T0, 2)], false)).unwrap();
        drop(store);
        let fit = Calibration::fit(
            &points(&[
                (1.0, 1.0),
                (2.0, 2.0),
                (3.0, 2.5),
                (4.0, 4.5),
                (5.0, 5.0),
                (6.0, 6.0),
            ]),
            CalibrationSource::Headcounts,
            0,
            99,
        )
        .unwrap();
        store_calibration(dir.path(), &fit, T0, 100).unwrap();
        let mut c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        let tx = c.transaction().unwrap();
        let got = door_refit(&tx, &clock(), clock().date(T0 + DAY), 5).unwrap();
        assert_eq!(got, DoorRefit::Skipped);
    }

    #[test]
    fn counts_stored_after_the_bins_still_calibrate_the_date() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store
            .set_meta(vec![("timezone".into(), "UTC".into())])
            .unwrap();
        let ten = T0 + 10 * 3_600_000;
        let day1: Vec<PresenceBin> = (0..8)
            .map(|i| bin(ten + i * 600_000, i as u32 + 1))
            .collect();
        store.commit(batch(day1, true)).unwrap();
        let r = store.commit(batch(vec![bin(T0 + DAY, 2)], true)).unwrap();
        assert!(r.calibrations.is_empty(), "no counts yet");
        // Day 1's counts, and the first of day 2 (the counts have reached it).
        let intervals = (0..8)
            .map(|i| (ten + (i - 1) * 600_000, 1, "2026-11-20"))
            .chain([(T0 + DAY, 0, "2026-11-21")])
            .map(|(start_ms, ins, date)| {
                (
                    edge_core::counter::CounterInterval {
                        door: "front".into(),
                        line: "main".into(),
                        start_ms,
                        end_ms: start_ms + 600_000,
                        ins,
                        outs: 0,
                        revision: 1,
                    },
                    date.to_string(),
                )
            })
            .collect();
        store
            .counter(crate::store::counters::CounterBatch {
                source: "door".into(),
                intervals,
                state: None,
                cursor: None,
                counters: Vec::new(),
                now_ms: 9,
            })
            .unwrap();
        drop(store);
        let reader = Reader::open(dir.path()).unwrap();
        let cal = reader.newest_calibration().unwrap().unwrap();
        assert_eq!((cal.source, cal.samples), (CalibrationSource::Door, 8));
        let day2 = reader.presence_on("2026-11-21").unwrap();
        assert_eq!(
            day2[0].calibration_version, cal.version,
            "re-issued with people"
        );
        assert!(day2[0].people.is_some());
    }

    #[test]
    fn a_batch_with_a_days_last_bins_and_the_next_days_first_calibrates_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let c = Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        let ten = T0 + 10 * 3_600_000;
        let mut bins = Vec::new();
        for i in 0..7 {
            count(&c, ten + (i - 1) * 600_000, 1, 0);
            bins.push(bin(ten + i * 600_000, u32::try_from(i).unwrap() + 1));
        }
        count(&c, T0 + DAY, 0, 0);
        drop(c);
        bins.push(bin(T0 + DAY, 2));
        let r = store.commit(batch(bins, true)).unwrap();
        assert_eq!(r.calibrations, vec![1]);
        drop(store);
        let day2 = Reader::open(dir.path())
            .unwrap()
            .presence_on("2026-11-21")
            .unwrap();
        assert_eq!(day2[0].calibration_version, 1);
    }
}
