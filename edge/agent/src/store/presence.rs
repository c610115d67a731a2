//! Presence bins and calibrations: each sealed bin is stored with the devices estimate and the
//! people figure of the calibration in force for it, as a new revision when anything changed
//! (late frames, or a calibration applied to bins already stored), and enters the outbox as a
//! `presence` record. Calibrations are versioned rows; a stored figure is never edited.

use edge_core::presence::{Calibration, CalibrationSource, PresenceBin, PresenceRecord};
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
     residual_sd, mean_devices, sxx, r";

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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
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
}
