//! Numbered schema migrations. `PRAGMA user_version` records the last one applied; each runs
//! in its own transaction, so a crash mid-upgrade leaves the previous version intact.

use rusqlite::Connection;

use super::StoreError;

/// (version, SQL). Append only: never edit a released migration, add a new one.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Closed visits. The raw MAC is never stored: device_key is the keyed HMAC.
CREATE TABLE visits (
    id                  INTEGER PRIMARY KEY,
    visit_key           TEXT NOT NULL UNIQUE,      -- device key hex ':' start ms
    device_key          TEXT NOT NULL,
    key_version         INTEGER NOT NULL,
    start_ms            INTEGER NOT NULL,
    end_ms              INTEGER NOT NULL,
    local_date          TEXT NOT NULL,             -- store-local date of start
    dwell_ms            INTEGER NOT NULL,
    inside_ms           INTEGER NOT NULL,
    class               TEXT NOT NULL CHECK (class IN ('visitor', 'passerby', 'staff')),
    randomized          INTEGER NOT NULL,
    associated          INTEGER NOT NULL,
    sightings           INTEGER NOT NULL,
    path                TEXT NOT NULL,             -- JSON [{"zone": name, "ms": dwell}]
    definitions_version INTEGER NOT NULL,
    created_ms          INTEGER NOT NULL
);
CREATE INDEX visits_by_date ON visits (local_date);

-- Sealed hourly aggregates; a later change is a new revision, never an update.
CREATE TABLE hourly_aggregates (
    hour_start_ms       INTEGER NOT NULL,
    revision            INTEGER NOT NULL,
    local_date          TEXT NOT NULL,
    local_hour          INTEGER NOT NULL,
    definitions_version INTEGER NOT NULL,
    body                TEXT NOT NULL,             -- JSON totals, zone names resolved
    created_ms          INTEGER NOT NULL,
    PRIMARY KEY (hour_start_ms, revision)
);

-- Where each source has been read up to, committed with the core snapshot that saw it.
CREATE TABLE source_checkpoints (
    source        TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    position      INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE core_snapshot (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    watermark_ms  INTEGER NOT NULL,
    body          BLOB NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE counters (
    source  TEXT NOT NULL,
    name    TEXT NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (source, name)
);

-- Append-only outbox served to the cloud; (kind, record_key, revision) is the record identity.
-- A record enters it in the same transaction as its first insert into its own table (whose
-- unique key refuses a second copy), so no unique index is kept here: one over random device
-- keys would rewrite pages all over the index at every commit.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    record_key  TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
"#,
    ),
    (
        2,
        r#"
-- Outbox epochs: a new one starts whenever the outbox tail may have been lost (the previous
-- run did not shut down cleanly). Cursors name their epoch; `start_seq` is the last outbox seq
-- that survived into the epoch, which is where a cursor of an older epoch resumes at the latest.
CREATE TABLE outbox_epochs (
    epoch       INTEGER PRIMARY KEY,
    start_seq   INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    reason      TEXT NOT NULL
);

-- What the cloud has acknowledged: every outbox record with seq <= acked_seq.
CREATE TABLE sync_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    acked_seq   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
INSERT INTO sync_state (id, acked_seq, updated_ms) VALUES (1, 0, 0);
"#,
    ),
    (
        3,
        r#"
-- Records dropped before the cloud acknowledged them (disk budget), by kind. Never silent.
CREATE TABLE drops (
    kind    TEXT PRIMARY KEY,
    count   INTEGER NOT NULL
);
-- Pruning looks visits up by the outbox's record keys.
CREATE INDEX outbox_by_kind_seq ON outbox (kind, seq);
"#,
    ),
    (
        4,
        r#"
-- Identity graph: which person (keyed hash of a phone number) a device (keyed hash of a MAC)
-- belongs to. Written by portal logins and member receipts; read when visits are stored and
-- when a live arrival is announced. Neither side is ever raw.
CREATE TABLE device_persons (
    device_key     TEXT PRIMARY KEY,
    person_key     TEXT NOT NULL,
    key_version    INTEGER NOT NULL,           -- version of the tenant secret
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL
);
CREATE INDEX device_persons_by_person ON device_persons (person_key);

ALTER TABLE visits ADD COLUMN person_key TEXT;
ALTER TABLE visits ADD COLUMN connected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visits ADD COLUMN repeat_class TEXT NOT NULL DEFAULT 'first';
-- Repeat classes by person look up the person's previous visit (only identified visits).
CREATE INDEX visits_by_person ON visits (person_key, start_ms) WHERE person_key IS NOT NULL;

-- Gateway health snapshots served to the cloud (kind "health" in the outbox).
CREATE TABLE health_snapshots (
    taken_ms    INTEGER PRIMARY KEY,
    body        TEXT NOT NULL
);
"#,
    ),
    (
        5,
        r#"
-- Counting group of randomized, probe-only MACs: one device's visits under MAC rotation share
-- the visit key of the first. For counting visitors only.
ALTER TABLE visits ADD COLUMN count_group TEXT;

-- Webhook logins, committed (synchronous=FULL) before the portal gets its answer and read again
-- after a restart from the source's cursor (the journal id). Keyed: no raw MAC or phone.
CREATE TABLE login_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    ts_ms        INTEGER NOT NULL,
    device_key   TEXT NOT NULL,
    person_key   TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    event        TEXT NOT NULL
);
"#,
    ),
    (
        6,
        r#"
-- POS transactions read from the receipt printer line. Never dropped for the disk budget;
-- removed only once the cloud acknowledged every revision and retention passed. The member
-- phone is only a person key.
CREATE TABLE purchases (
    purchase_key     TEXT PRIMARY KEY,           -- <source>:<transaction id>
    source           TEXT NOT NULL,
    transaction_id   TEXT NOT NULL,
    time_ms          INTEGER NOT NULL,
    local_date       TEXT NOT NULL,
    total_minor      INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    items            REAL NOT NULL,              -- units sold
    person_key       TEXT,
    attributed_visit TEXT,
    revision         INTEGER NOT NULL,
    body             TEXT NOT NULL,              -- JSON, records.proto Purchase
    created_ms       INTEGER NOT NULL
);
CREATE INDEX purchases_by_date ON purchases (local_date);
CREATE INDEX purchases_by_person ON purchases (person_key, time_ms) WHERE person_key IS NOT NULL;

-- Receipts whose fields the profile's rules could not extract, with phone-like digit runs
-- masked: kept for the installer to fix the rules, and counted.
CREATE TABLE unparsed_receipts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    text         TEXT NOT NULL
);
"#,
    ),
    (
        7,
        r#"
-- Door counter intervals: the people one counting line of a door saw in [start_ms, end_ms).
-- A corrected interval is the next revision with full counts; readers keep the newest.
-- Aggregates: never dropped for the disk budget, removed once acknowledged and past retention.
CREATE TABLE counter_intervals (
    interval_key  TEXT NOT NULL,                 -- <door>:<line>:<start_ms>
    revision      INTEGER NOT NULL,
    source        TEXT NOT NULL,
    door          TEXT NOT NULL,
    line          TEXT NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    local_date    TEXT NOT NULL,                 -- store-local date of start_ms
    ins           INTEGER NOT NULL,
    outs          INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (interval_key, revision)
);
CREATE INDEX counter_intervals_by_date ON counter_intervals (local_date);

-- Per counter source: register baselines, interval keys seen, sequence numbers (JSON),
-- committed together with the intervals they produced.
CREATE TABLE counter_state (
    source      TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);
"#,
    ),
    (
        8,
        r#"
-- Raw Wi-Fi sightings, one row per minute, zone and device (keyed device only, never a MAC):
-- what visits are made of, kept `storage.raw_retention` for diagnosis. The first records to
-- go, oldest first, when the database is over `storage.max_bytes`; never sent to the cloud.
-- Times are min/max so a replay after a crash rewrites a row to the same values.
CREATE TABLE sightings (
    minute_ms   INTEGER NOT NULL,
    zone        INTEGER NOT NULL,
    device_key  BLOB NOT NULL,  -- the 16 key bytes (hex elsewhere; this table is the big one)
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    best_rssi   INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, zone, device_key)
) WITHOUT ROWID;
"#,
    ),
    (
        9,
        r#"
-- Devices and people present per 10-minute bin, for the whole store (zone '') and per zone.
-- Revisions: late frames, or a calibration applied to bins already stored, add the next one;
-- a sent revision is never edited. `body` is the record without its revision.
CREATE TABLE presence_bins (
    start_ms    INTEGER NOT NULL,
    zone        TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    local_date  TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (start_ms, zone, revision)
);
CREATE INDEX presence_bins_by_date ON presence_bins (local_date);

-- Calibrations of devices present into people present, versioned. A bin takes the newest
-- one whose `applies_from_ms` is not after the bin's start.
CREATE TABLE calibrations (
    version          INTEGER PRIMARY KEY,
    source           TEXT NOT NULL,     -- 'door' or 'headcounts'
    fitted_at_ms     INTEGER NOT NULL,
    applies_from_ms  INTEGER NOT NULL,
    samples          INTEGER NOT NULL,
    intercept        REAL NOT NULL,     -- people = intercept + slope × devices
    slope            REAL NOT NULL,
    residual_sd      REAL NOT NULL,
    mean_devices     REAL NOT NULL,
    sxx              REAL NOT NULL,
    r                REAL NOT NULL
);
"#,
    ),
    (
        10,
        r#"
-- Two populations: people = slope_tracked × tracked devices + slope × estimated devices
-- (intercept 0). NULL in calibrations fitted before: people = intercept + slope × devices.
ALTER TABLE calibrations ADD COLUMN slope_tracked REAL;
"#,
    ),
    (
        11,
        r#"
-- Raw sightings per 10-minute bin instead of per minute: a tenth of the rows for a shopper who
-- stays, the same facts (first and last sighting, strongest signal, and in `minutes` a bit per
-- minute of the bin in which the device was heard). Rows of version 8 are folded in.
CREATE TABLE sightings_bins (
    bin_ms      INTEGER NOT NULL,  -- start of the 10-minute bin, UTC ms
    zone        INTEGER NOT NULL,
    device_key  BLOB NOT NULL,     -- the 16 key bytes (never a MAC)
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    best_rssi   INTEGER NOT NULL,
    minutes     INTEGER NOT NULL,  -- bit i: heard in minute i of the bin
    PRIMARY KEY (bin_ms, zone, device_key)
) WITHOUT ROWID;
INSERT INTO sightings_bins
    SELECT minute_ms - minute_ms % 600000, zone, device_key, MIN(first_ms), MAX(last_ms),
           MAX(best_rssi), SUM(DISTINCT 1 << ((minute_ms % 600000) / 60000))
    FROM sightings GROUP BY minute_ms - minute_ms % 600000, zone, device_key;
DROP TABLE sightings;
ALTER TABLE sightings_bins RENAME TO sightings;
"#,
    ),
    (
        12,
        r#"
-- The core snapshot's body is the last column: a checkpoint inserts zeroblob(N) (SQLite
-- writes a trailing zero blob without building it in memory) and then writes the body into
-- it in place, instead of SQLite copying a snapshot of megabytes twice.
CREATE TABLE core_snapshot_v12 (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    watermark_ms  INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    body          BLOB NOT NULL
);
INSERT INTO core_snapshot_v12 SELECT id, watermark_ms, updated_ms, body FROM core_snapshot;
DROP TABLE core_snapshot;
ALTER TABLE core_snapshot_v12 RENAME TO core_snapshot;
"#,
    ),
];

/// The schema version this build writes.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies every migration newer than the database's version.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    let current: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| StoreError::sqlite("reading schema version", e))?;
    if current > latest() {
        return Err(StoreError::TooNew {
            found: current,
            supported: latest(),
        });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::sqlite("starting migration", e))?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migration { version, source: e })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| StoreError::Migration { version, source: e })?;
        tx.commit()
            .map_err(|e| StoreError::Migration { version, source: e })?;
    }
    Ok(latest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0 as usize, i + 1);
        }
    }

    #[test]
    fn fresh_database_migrates_and_reopening_is_a_no_op() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c).unwrap(), latest());
        assert_eq!(migrate(&mut c).unwrap(), latest());
        let tables: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('visits', 'hourly_aggregates', 'source_checkpoints', 'outbox')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 4);
    }

    #[test]
    fn each_step_upgrades_from_the_previous_version() {
        // Apply migrations one at a time, as a gateway upgraded release by release would.
        let mut c = Connection::open_in_memory().unwrap();
        for &(v, sql) in MIGRATIONS {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", v).unwrap();
            let got: u32 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(got, v);
        }
        assert_eq!(migrate(&mut c).unwrap(), latest());
    }

    /// A database migrated step by step up to `version`, as a gateway of that release left it.
    fn at_version(version: u32) -> Connection {
        let c = Connection::open_in_memory().unwrap();
        for &(v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", v).unwrap();
        }
        c
    }

    /// Version 12 moves the core snapshot's body to the last column and keeps the stored one.
    #[test]
    fn the_stored_core_snapshot_survives_its_column_move() {
        let mut c = at_version(11);
        let body: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        c.execute(
            "INSERT INTO core_snapshot (id, watermark_ms, body, updated_ms) VALUES (1, 42, ?1, 7)",
            [&body],
        )
        .unwrap();
        assert_eq!(migrate(&mut c).unwrap(), latest());
        let got: (i64, i64, Vec<u8>) = c
            .query_row(
                "SELECT watermark_ms, updated_ms, body FROM core_snapshot WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(got, (42, 7, body));
    }

    /// Version 11 folds the per-minute raw sightings of version 8 into 10-minute rows, and a
    /// calibration of version 9 keeps its old form (no tracked slope).
    #[test]
    fn raw_sightings_fold_into_bins_and_old_calibrations_keep_their_form() {
        let mut c = at_version(9);
        let key = [7u8; 16];
        for (minute, first, last, rssi) in [
            (600_000, 601_000, 602_000, -80),
            (660_000, 661_000, 700_000, -60),
            (1_200_000, 1_201_000, 1_201_000, -70),
        ] {
            c.execute(
                "INSERT INTO sightings VALUES (?1, 0, ?2, ?3, ?4, ?5)",
                rusqlite::params![minute, &key[..], first, last, rssi],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO calibrations VALUES (1, 'door', 5, 0, 40, 1.5, 0.8, 1.0, 3.0, 90.0, 0.9)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut c).unwrap(), latest());
        let mut st = c
            .prepare("SELECT bin_ms, first_ms, last_ms, best_rssi, minutes FROM sightings ORDER BY bin_ms")
            .unwrap();
        let rows: Vec<(i64, i64, i64, i64, i64)> = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (600_000, 601_000, 700_000, -60, 0b11),
                (1_200_000, 1_201_000, 1_201_000, -70, 0b1),
            ]
        );
        let slope_tracked: Option<f64> = c
            .query_row("SELECT slope_tracked FROM calibrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(slope_tracked, None);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", latest() + 1).unwrap();
        assert!(matches!(migrate(&mut c), Err(StoreError::TooNew { .. })));
    }
}
