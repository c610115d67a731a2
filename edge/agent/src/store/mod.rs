//! The SQLite store: one writer thread owns the read-write connection and applies batches in
//! transactions; readers open their own read-only connections (WAL lets them run alongside).
//!
//! Idempotence is by natural key: a visit is (device key, start), an hourly record is (hour,
//! revision). Replaying input after a crash re-produces the same keys, which are ignored, so
//! running twice over the same files never counts anything twice.

pub mod activity;
pub mod counters;
pub mod migrations;
pub mod presence;
pub mod purchases;

#[cfg(test)]
mod model_tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use edge_core::aggregate::HourRecord;
use edge_core::{snapshot, LocalClock, RawSighting, Sessionizer, Visit};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Database file name inside the data directory.
pub const DB_FILE: &str = "store-edge.db";
/// Commands queued for the writer before `commit` blocks (back-pressure on the pipeline).
const WRITER_QUEUE: usize = 8;

/// A store failure with what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A SQLite call failed.
    #[error("store: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A migration failed; the database stays at the previous version.
    #[error("store: migration {version} failed: {source}")]
    Migration {
        /// The migration.
        version: u32,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer store-edge.
    #[error("store: database schema version {found} is newer than this build supports ({supported}); upgrade store-edge")]
    TooNew {
        /// Version found.
        found: u32,
        /// Latest version this build knows.
        supported: u32,
    },
    /// The data directory could not be prepared.
    #[error("store: cannot prepare data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored row does not read back (hand-edited or damaged database).
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
    /// The writer thread is gone.
    #[error("store: writer thread has stopped")]
    Closed,
    /// The core snapshot could not be encoded.
    #[error("store: cannot encode the core snapshot: {0}")]
    Snapshot(std::io::Error),
}

impl StoreError {
    /// Whether the write failed for lack of space (a full disk or file system) or a device
    /// that failed to write: nothing was written, and the same write can succeed later.
    pub fn is_out_of_space(&self) -> bool {
        let source = match self {
            StoreError::Sqlite { source, .. } | StoreError::Migration { source, .. } => source,
            StoreError::DataDir { source, .. } => {
                return source.kind() == std::io::ErrorKind::StorageFull
            }
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
        )
    }
}

/// How the writer's writes are going, shared with telemetry and health snapshots.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Writes that failed for lack of space (see [`StoreError::is_out_of_space`]).
    out_of_space: AtomicU64,
    /// The latest write failed that way and none has succeeded since.
    failing: AtomicBool,
    /// The last prune could not bring the database under the budget: what is left is never
    /// dropped (aggregates, receipts, door counts).
    over_budget: AtomicBool,
}

impl WriteHealth {
    /// Writes that failed for lack of space since the store was opened.
    pub fn out_of_space(&self) -> u64 {
        self.out_of_space.load(Ordering::Relaxed)
    }

    /// Whether writes are failing for lack of space now.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Whether the database is over its budget with nothing left to drop.
    pub fn over_budget(&self) -> bool {
        self.over_budget.load(Ordering::Relaxed)
    }

    /// Notes how a write went, and passes its result on.
    fn noted<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match &r {
            Ok(_) => self.failing.store(false, Ordering::Relaxed),
            Err(e) if e.is_out_of_space() => {
                self.out_of_space.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "the store cannot write: out of space; what is not written is kept and retried");
                }
            }
            Err(_) => {}
        }
        r
    }
}

impl StoreError {
    pub(crate) fn sqlite(context: &str, source: rusqlite::Error) -> Self {
        StoreError::Sqlite {
            context: context.to_string(),
            source,
        }
    }
}

/// A source's committed cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Source name.
    pub source: String,
    /// Input identity (file fingerprint or interface).
    pub fingerprint: String,
    /// Records consumed.
    pub position: u64,
}

/// The core snapshot and the cursors it corresponds to.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The core itself, lent to the writer: it is encoded straight into the snapshot's blob
    /// (never whole in memory) and given back with the commit's [`Receipt`], or with the
    /// batch when the commit failed.
    pub core: Box<Sessionizer>,
    /// Watermark of the snapshot.
    pub watermark_ms: i64,
    /// Cursors of every source.
    pub cursors: Vec<Cursor>,
}

/// One transaction's worth of writes.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Closed visits, as the core emitted them.
    pub visits: Vec<Visit>,
    /// Sealed hours.
    pub hours: Vec<HourRecord>,
    /// Zone names by zone id (for visit paths and hourly zone totals).
    pub zones: Arc<[String]>,
    /// Version of the secret the visits' device keys were made with.
    pub key_version: u32,
    /// Version of the tenant secret person keys are made with.
    pub person_key_version: u32,
    /// Store clock (local dates of visits).
    pub clock: LocalClock,
    /// Snapshot + cursors, when due.
    pub checkpoint: Option<Checkpoint>,
    /// Counters: (source, name, value).
    pub counters: Vec<(String, String, u64)>,
    /// Wall-clock time of the commit, UTC ms (bookkeeping only).
    pub now_ms: i64,
    /// Return the stored bodies of the new visits in the receipt (for live events).
    pub want_bodies: bool,
    /// Device ↔ person bindings made by portal logins.
    pub bindings: Vec<Binding>,
    /// Grace around a visit within which a member's receipt belongs to it, ms.
    pub attribution_grace_ms: i64,
    /// Raw-sightings rows the core gave out (one per bin, zone and device; split rows merge).
    pub sightings: Vec<RawSighting>,
    /// Presence bins sealed (or revised) by the core.
    pub presence: Vec<edge_core::presence::PresenceBin>,
    /// A door counter is configured: refit the door calibration on each new local date.
    pub door_calibration: bool,
}

/// A device ↔ person binding of the identity graph, as a login made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The device.
    pub device: edge_core::DeviceKey,
    /// The person.
    pub person: edge_core::person::PersonKey,
    /// Version of the tenant secret of the person key.
    pub key_version: u32,
    /// When the login was, UTC ms.
    pub seen_ms: i64,
}

impl Batch {
    /// An empty batch for a store with `zones`.
    pub fn new(zones: Arc<[String]>, key_version: u32, clock: LocalClock) -> Batch {
        Batch {
            visits: Vec::new(),
            hours: Vec::new(),
            zones,
            key_version,
            person_key_version: 0,
            clock,
            checkpoint: None,
            counters: Vec::new(),
            now_ms: 0,
            want_bodies: false,
            bindings: Vec::new(),
            attribution_grace_ms: edge_core::pos::DEFAULT_ATTRIBUTION_GRACE_MS,
            sightings: Vec::new(),
            presence: Vec::new(),
            door_calibration: false,
        }
    }

    /// Adds what `newer` carries to this batch, which could not be written: its visits,
    /// hours, bindings and sightings after these; its checkpoint, counters and time instead
    /// of these (the newer checkpoint's core has seen everything both carry).
    pub fn absorb(&mut self, newer: Batch) {
        self.visits.extend(newer.visits);
        self.hours.extend(newer.hours);
        self.bindings.extend(newer.bindings);
        self.sightings.extend(newer.sightings);
        self.presence.extend(newer.presence);
        self.door_calibration |= newer.door_calibration;
        if newer.checkpoint.is_some() {
            self.checkpoint = newer.checkpoint;
        }
        if !newer.counters.is_empty() {
            self.counters = newer.counters;
        }
        self.now_ms = newer.now_ms;
        self.want_bodies |= newer.want_bodies;
    }
}

fn zone_name(zones: &[String], z: u8) -> String {
    zones
        .get(usize::from(z))
        .cloned()
        .unwrap_or_else(|| format!("zone-{z}"))
}

/// What a commit changed.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// The core its checkpoint lent, given back.
    pub core: Option<Box<Sessionizer>>,
    /// New visits stored.
    pub visits_new: u64,
    /// Visits already present (replayed input).
    pub visits_duplicate: u64,
    /// Hourly records stored.
    pub hours_new: u64,
    /// Presence bins (or revisions) stored.
    pub presence_new: u64,
    /// Door calibrations fitted (their versions).
    pub calibrations: Vec<u32>,
    /// JSON bodies (records.proto `Visit`) of the new visits, when the batch asked for them.
    pub visit_bodies: Vec<String>,
    /// Waiting purchases the new visits took (new revisions of them).
    pub purchases_attributed: u64,
}

/// A webhook login as journaled: keys only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Source name.
    pub source: String,
    /// Login time, UTC ms.
    pub ts_ms: i64,
    /// Device key, hex.
    pub device_key: String,
    /// Person key, hex.
    pub person_key: String,
    /// Tenant secret version.
    pub key_version: u32,
    /// `start`, `interim` or `stop`.
    pub event: String,
}

/// Stores the checkpoint's core snapshot: a zero blob of its length, then the encoding
/// written into it piece by piece. Encoded into a buffer first, a busy store's snapshot (15 MB
/// with a hundred thousand devices open) was every checkpoint's peak of memory.
fn write_snapshot(
    tx: &rusqlite::Transaction<'_>,
    cp: &Checkpoint,
    now_ms: i64,
) -> Result<(), StoreError> {
    let len = snapshot::encoded_len(&cp.core);
    tx.execute(
        "INSERT INTO core_snapshot (id, watermark_ms, updated_ms, body)
         VALUES (1, ?1, ?2, zeroblob(?3))
         ON CONFLICT (id) DO UPDATE SET watermark_ms = excluded.watermark_ms,
           updated_ms = excluded.updated_ms, body = excluded.body",
        params![
            cp.watermark_ms,
            now_ms,
            i64::try_from(len).unwrap_or(i64::MAX)
        ],
    )
    .map_err(|e| StoreError::sqlite("writing core snapshot", e))?;
    let blob = tx
        .blob_open(rusqlite::MAIN_DB, "core_snapshot", "body", 1, false)
        .map_err(|e| StoreError::sqlite("opening core snapshot blob", e))?;
    // postcard writes a few bytes at a time; the buffer turns that into large blob writes.
    // The blob has exactly the encoding's length: a write past its end fails (write_all),
    // so a short blob is an error, never a truncated snapshot.
    let mut w = std::io::BufWriter::with_capacity(SNAPSHOT_WRITE_BUF, blob);
    snapshot::encode_to(&cp.core, &mut w)
        .and_then(|()| std::io::Write::flush(&mut w))
        .map_err(snapshot_write_error)
}

/// The blob's own failures (a full disk among them) stay SQLite errors, so the committer still
/// tells "out of space" from a fault; anything else is the encoding's.
fn snapshot_write_error(e: std::io::Error) -> StoreError {
    match e.downcast::<rusqlite::Error>() {
        Ok(sq) => StoreError::sqlite("writing core snapshot blob", sq),
        Err(e) => StoreError::Snapshot(e),
    }
}

/// Bytes per write into the snapshot's blob.
const SNAPSHOT_WRITE_BUF: usize = 64 * 1024;

/// Writes (inserts or moves) a source's cursor inside `tx`.
pub(crate) fn write_cursor(
    tx: &rusqlite::Transaction<'_>,
    c: &Cursor,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO source_checkpoints (source, fingerprint, position, updated_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source) DO UPDATE SET fingerprint = excluded.fingerprint,
           position = excluded.position, updated_ms = excluded.updated_ms",
        params![c.source, c.fingerprint, c.position as i64, now_ms],
    )
}

/// Writes a source's counter `name` (absolute value) inside `tx`.
pub(crate) fn write_counter(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    name: &str,
    value: u64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO counters (source, name, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, name) DO UPDATE SET value = excluded.value",
        params![source, name, value as i64],
    )
}

/// Time since the previous visit of the same person or device, as records.proto names it.
pub fn repeat_class(previous_end_ms: Option<i64>, start_ms: i64) -> &'static str {
    const DAY: i64 = 86_400_000;
    match previous_end_ms.map(|e| start_ms.saturating_sub(e)) {
        None => "first",
        Some(gap) if gap <= DAY => "within_1d",
        Some(gap) if gap <= 7 * DAY => "within_7d",
        Some(gap) if gap <= 30 * DAY => "within_30d",
        Some(_) => "older",
    }
}

enum Cmd {
    Commit(Box<Batch>, SyncSender<Result<Receipt, CommitFailed>>),
    SetMeta(Vec<(String, String)>, SyncSender<Result<(), StoreError>>),
    Ack(i64, i64, SyncSender<Result<i64, StoreError>>),
    Prune(PrunePolicy, SyncSender<Result<PruneReport, StoreError>>),
    Health(i64, String, SyncSender<Result<bool, StoreError>>),
    Journal(JournalEntry, SyncSender<Result<i64, StoreError>>),
    Pos(
        Box<purchases::PosBatch>,
        SyncSender<Result<purchases::PosReceipt, StoreError>>,
    ),
    Counter(
        Box<counters::CounterBatch>,
        SyncSender<Result<counters::CounterReceipt, StoreError>>,
    ),
    CounterState(String, SyncSender<Result<Option<String>, StoreError>>),
    /// Test hook: runs a closure on the writer's connection, on the writer thread.
    #[cfg(test)]
    WithWriter(
        Box<dyn FnOnce(&mut Connection) + Send>,
        SyncSender<Result<(), StoreError>>,
    ),
    /// Test hook: stops the writer as a killed process would, without the clean-shutdown
    /// epilogue.
    #[cfg(test)]
    Kill(SyncSender<Result<(), StoreError>>),
}

/// A commit that failed, with the batch it did not write (so it can be tried again).
#[derive(Debug)]
pub struct CommitFailed {
    /// Why.
    pub error: StoreError,
    /// The batch, unwritten (`None` when it never reached the writer).
    pub batch: Option<Box<Batch>>,
}

/// What pruning may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Acknowledged records committed before this (Unix ms) are removed, with their rows.
    pub acked_before_ms: i64,
    /// Raw sightings of minutes before this (Unix ms) are removed.
    pub raw_before_ms: i64,
    /// Bytes of live database pages allowed; above it records go, in the drop order.
    pub budget_bytes: u64,
}

/// What pruning removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Acknowledged records removed (retention or budget).
    pub acked: u64,
    /// Unacknowledged records dropped for the budget, by kind.
    pub dropped_unacked: Vec<(String, u64)>,
    /// Live bytes after pruning.
    pub live_bytes: u64,
    /// Raw sightings removed (retention or budget).
    pub sightings: u64,
    /// Still over the budget with nothing left that may be dropped.
    pub over_budget: bool,
}

/// Handle to the writer thread.
pub struct Store {
    tx: Option<SyncSender<Cmd>>,
    join: Option<JoinHandle<()>>,
    path: PathBuf,
    health: Arc<WriteHealth>,
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| StoreError::sqlite("configuring connection", e))
}

/// Opens (creating if needed) the database in `data_dir`, migrates it and starts the writer.
pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source: e,
    })?;
    let path = data_dir.join(DB_FILE);
    let mut conn =
        Connection::open(&path).map_err(|e| StoreError::sqlite("opening database", e))?;
    configure(&conn)?;
    migrations::migrate(&mut conn)?;
    // Were the epoch lost with the records this run serves, the next start would keep (or
    // renumber to) it and issue their seqs again, past which served cursors have moved.
    durably(&mut conn, |c| {
        start_epoch(c, chrono::Utc::now().timestamp_millis())
    })?;
    let (tx, rx) = sync_channel(WRITER_QUEUE);
    let health = Arc::new(WriteHealth::default());
    let h = health.clone();
    let join = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer(conn, rx, &h))
        .map_err(|e| StoreError::DataDir {
            path: path.clone(),
            source: e,
        })?;
    Ok(Store {
        tx: Some(tx),
        join: Some(join),
        path,
        health,
    })
}

/// Opens an existing database in `data_dir` for one short write from outside the agent (a
/// calibration): configured like the writer's, migrated, no epoch and no writer thread.
pub(crate) fn open_existing(data_dir: &Path) -> Result<Connection, StoreError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::DataDir {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no store-edge database here",
            ),
        });
    }
    let mut conn =
        Connection::open(&path).map_err(|e| StoreError::sqlite("opening database", e))?;
    configure(&conn)?;
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

impl Store {
    /// Sends a command to the writer and waits for its reply.
    fn call<T>(
        &self,
        cmd: impl FnOnce(SyncSender<Result<T, StoreError>>) -> Cmd,
    ) -> Result<T, StoreError> {
        let (reply, answer) = sync_channel(1);
        self.tx
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(cmd(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the writes are going.
    pub fn write_health(&self) -> Arc<WriteHealth> {
        self.health.clone()
    }

    /// Applies a batch in one transaction and waits for the commit.
    #[cfg(test)]
    pub fn commit(&self, batch: Batch) -> Result<Receipt, StoreError> {
        self.try_commit(batch).map_err(|f| f.error)
    }

    /// [`Store::commit`], giving the batch back when it was not written.
    pub fn try_commit(&self, batch: Batch) -> Result<Receipt, CommitFailed> {
        let closed = || CommitFailed {
            error: StoreError::Closed,
            batch: None,
        };
        let (reply, answer) = sync_channel(1);
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        tx.send(Cmd::Commit(Box::new(batch), reply))
            .map_err(|_| closed())?;
        answer.recv().map_err(|_| closed())?
    }

    /// Sets meta keys (store identity, zones, configured sources).
    pub fn set_meta(&self, kv: Vec<(String, String)>) -> Result<(), StoreError> {
        self.call(|reply| Cmd::SetMeta(kv, reply))
    }

    /// Records that the cloud has stored every outbox record up to `seq`; returns the acked
    /// seq afterwards. Never moves back: an older ack changes nothing.
    pub fn ack(&self, seq: i64, now_ms: i64) -> Result<i64, StoreError> {
        self.call(|reply| Cmd::Ack(seq, now_ms, reply))
    }

    /// Removes what the retention policy and the disk budget say must go (see the module's
    /// private `fn prune`, which runs on the store thread).
    pub fn prune(&self, policy: PrunePolicy) -> Result<PruneReport, StoreError> {
        self.call(|reply| Cmd::Prune(policy, reply))
    }

    /// Stores a gateway health snapshot (records.proto `HealthSnapshot` as JSON) taken at
    /// `taken_ms` and queues it for the cloud; false if one with that time exists already.
    pub fn health(&self, taken_ms: i64, body: String) -> Result<bool, StoreError> {
        self.call(|reply| Cmd::Health(taken_ms, body, reply))
    }

    /// Journals a webhook login durably (synchronous=FULL) and returns its journal id.
    pub fn journal(&self, entry: JournalEntry) -> Result<i64, StoreError> {
        self.call(|reply| Cmd::Journal(entry, reply))
    }

    /// Stores a POS source's receipts and cursor; returns once they are on disk
    /// (`synchronous=FULL`).
    pub fn pos(&self, batch: purchases::PosBatch) -> Result<purchases::PosReceipt, StoreError> {
        self.call(|reply| Cmd::Pos(Box::new(batch), reply))
    }

    /// Commits a counter source's intervals with its state, cursor and counters.
    pub fn counter(
        &self,
        batch: counters::CounterBatch,
    ) -> Result<counters::CounterReceipt, StoreError> {
        self.call(|reply| Cmd::Counter(Box::new(batch), reply))
    }

    /// The committed state (JSON) of counter source `source`, if any.
    pub fn counter_state(&self, source: &str) -> Result<Option<String>, StoreError> {
        self.call(|reply| Cmd::CounterState(source.to_string(), reply))
    }

    /// Stops the writer after the queued commands and waits for it (dropping the last handle
    /// does the same).
    #[cfg(test)]
    pub fn close(mut self) {
        self.shutdown();
    }

    /// Test hook: runs `f` on the writer's connection between two commands (e.g. to cap the
    /// database's pages and make writes fail with SQLITE_FULL).
    #[cfg(test)]
    pub fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = sync_channel(1);
        self.call(|reply| {
            Cmd::WithWriter(
                Box::new(move |conn| {
                    let _ = tx.send(f(conn));
                }),
                reply,
            )
        })?;
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// Test hook: ends the run as a killed process would: no clean-shutdown mark and no
    /// checkpoint, so the committed tail stays in the WAL for the next open to recover. Unlike
    /// leaking the handle (`std::mem::forget`), it leaves no thread or descriptors behind.
    #[cfg(test)]
    pub fn kill(mut self) {
        let _ = self.call(Cmd::Kill);
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer(mut conn: Connection, rx: Receiver<Cmd>, health: &WriteHealth) {
    // Every write's outcome is noted (a success clears "failing"); reads are not.
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Commit(mut batch, reply) => {
                let r = match health.noted(apply(&mut conn, &batch)) {
                    Ok(mut receipt) => {
                        receipt.core = batch.checkpoint.take().map(|cp| cp.core);
                        Ok(receipt)
                    }
                    Err(error) => Err(CommitFailed {
                        error,
                        batch: Some(batch),
                    }),
                };
                let _ = reply.send(r);
            }
            Cmd::SetMeta(kv, reply) => {
                let r = (|| {
                    let tx = conn
                        .transaction()
                        .map_err(|e| StoreError::sqlite("meta transaction", e))?;
                    for (k, v) in &kv {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, ?2)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            params![k, v],
                        )
                        .map_err(|e| StoreError::sqlite("writing meta", e))?;
                    }
                    tx.commit()
                        .map_err(|e| StoreError::sqlite("committing meta", e))
                })();
                let _ = reply.send(health.noted(r));
            }
            Cmd::Prune(policy, reply) => {
                // A drop undone by a power loss would bring back records that cursors served
                // meanwhile have passed: they would be neither served nor counted.
                let r = durably(&mut conn, |c| prune(c, policy));
                if let Ok(report) = &r {
                    health
                        .over_budget
                        .store(report.over_budget, Ordering::Relaxed);
                }
                let _ = reply.send(health.noted(r));
            }
            Cmd::Journal(entry, reply) => {
                let _ = reply.send(health.noted(journal(&mut conn, &entry)));
            }
            Cmd::Pos(batch, reply) => {
                let _ = reply.send(health.noted(purchases::commit(&mut conn, &batch)));
            }
            Cmd::Counter(batch, reply) => {
                let r = counters::commit(&mut conn, &batch);
                let added = matches!(r, Ok(c) if c.new > 0);
                let _ = reply.send(health.noted(r));
                if added {
                    // Counts can come after the presence bins they calibrate.
                    match presence::door_refit_after_counts(&mut conn, batch.now_ms) {
                        Ok(presence::DoorRefit::Fitted(v)) => tracing::info!(
                            version = v,
                            "presence calibrated from the door counter's occupancy of the days before"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "door calibration not refitted"),
                    }
                }
            }
            Cmd::CounterState(source, reply) => {
                let _ = reply.send(counters::state(&conn, &source));
            }
            Cmd::Health(taken_ms, body, reply) => {
                let _ = reply.send(health.noted(store_health(&mut conn, taken_ms, &body)));
            }
            #[cfg(test)]
            Cmd::WithWriter(f, reply) => {
                f(&mut conn);
                let _ = reply.send(Ok(()));
            }
            #[cfg(test)]
            Cmd::Kill(reply) => {
                let r = conn
                    .set_db_config(
                        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                        true,
                    )
                    .map(|_| ())
                    .map_err(|e| StoreError::sqlite("disabling the checkpoint on close", e));
                let _ = reply.send(r);
                return;
            }

            Cmd::Ack(seq, now_ms, reply) => {
                let r = conn
                    .execute(
                        "UPDATE sync_state SET acked_seq = ?1, updated_ms = ?2
                         WHERE id = 1 AND acked_seq < ?1",
                        params![seq, now_ms],
                    )
                    .and_then(|_| {
                        conn.query_row("SELECT acked_seq FROM sync_state WHERE id = 1", [], |r| {
                            r.get(0)
                        })
                    })
                    .map_err(|e| StoreError::sqlite("recording an ack", e));
                let _ = reply.send(health.noted(r));
            }
        }
    }
    // Leave a clean WAL behind on shutdown, then mark the shutdown clean: the next start keeps
    // the outbox epoch.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    let _ = conn.execute(
        "INSERT INTO meta (key, value) VALUES ('clean_shutdown', '1')
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [],
    );
}

/// Runs `f` with its commits waiting for the disk (`synchronous = FULL`): for changes a power
/// loss must not undo once records have been served after them (with `NORMAL`, the WAL tail
/// since the last checkpoint may go). Then checkpoints what it can without waiting for readers,
/// so that they are in the database file itself (best effort: FULL has made them durable).
fn durably<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(|e| StoreError::sqlite("raising durability", e))?;
    let r = f(conn);
    let _ = conn.execute_batch("PRAGMA synchronous = NORMAL;");
    if r.is_ok() {
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
    }
    r
}

/// Logins are never dropped: this commit waits for the disk (FULL), unlike the batched ones.
fn journal(conn: &mut Connection, e: &JournalEntry) -> Result<i64, StoreError> {
    let err = |ctx: &'static str| move |x| StoreError::sqlite(ctx, x);
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(err("raising durability for a login"))?;
    let r = conn
        .execute(
            "INSERT INTO login_journal (source, ts_ms, device_key, person_key, key_version, event)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.source,
                e.ts_ms,
                e.device_key,
                e.person_key,
                e.key_version,
                e.event
            ],
        )
        .map(|_| conn.last_insert_rowid())
        .map_err(err("journaling a login"));
    let _ = conn.execute_batch("PRAGMA synchronous = NORMAL;");
    r
}

fn store_health(conn: &mut Connection, taken_ms: i64, body: &str) -> Result<bool, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tx = conn
        .transaction()
        .map_err(e("starting a health snapshot"))?;
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO health_snapshots (taken_ms, body) VALUES (?1, ?2)",
            params![taken_ms, body],
        )
        .map_err(e("inserting a health snapshot"))?;
    if n > 0 {
        tx.execute(
            "INSERT INTO outbox (kind, record_key, revision, body, created_ms)
             VALUES ('health', ?1, 0, ?2, ?3)",
            params![taken_ms.to_string(), body, taken_ms],
        )
        .map_err(e("inserting a health snapshot into the outbox"))?;
    }
    tx.commit().map_err(e("committing a health snapshot"))?;
    Ok(n > 0)
}

/// Bytes of database pages in use (free pages are reused, so they do not count).
fn live_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let q = |p: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite("reading page counts", e))
    };
    let used = q("page_count")? - q("freelist_count")?;
    Ok(u64::try_from(used * q("page_size")?).unwrap_or(0))
}

/// Records removed per transaction while over budget.
const PRUNE_STEP: i64 = 2000;

/// Deletes outbox rows `seqs` and the visits and hourly rows they carry.
fn delete_records(
    tx: &rusqlite::Transaction<'_>,
    where_sql: &str,
    p: &[&dyn rusqlite::ToSql],
) -> Result<u64, StoreError> {
    let e = |err| StoreError::sqlite("pruning records", err);
    tx.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (seq INTEGER PRIMARY KEY, kind TEXT, record_key TEXT, revision INTEGER)", [])
        .map_err(e)?;
    tx.execute("DELETE FROM doomed", []).map_err(e)?;
    tx.execute(
        &format!("INSERT INTO doomed SELECT seq, kind, record_key, revision FROM outbox WHERE {where_sql}"),
        p,
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM visits WHERE visit_key IN (SELECT record_key FROM doomed WHERE kind = 'visit')",
        [],
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM purchases WHERE purchase_key IN (SELECT record_key FROM doomed WHERE kind = 'purchase')
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'purchase'
             AND o.record_key = purchases.purchase_key AND o.seq NOT IN (SELECT seq FROM doomed))",
        [],
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM counter_intervals WHERE EXISTS (SELECT 1 FROM doomed d WHERE d.kind = 'counter'
           AND d.record_key = counter_intervals.interval_key AND d.revision = counter_intervals.revision)",
        [],
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM health_snapshots WHERE CAST(taken_ms AS TEXT) IN
           (SELECT record_key FROM doomed WHERE kind = 'health')",
        [],
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM hourly_aggregates WHERE EXISTS (SELECT 1 FROM doomed d WHERE d.kind = 'hourly'
           AND d.record_key = CAST(hourly_aggregates.hour_start_ms AS TEXT) AND d.revision = hourly_aggregates.revision)",
        [],
    )
    .map_err(e)?;
    tx.execute(
        "DELETE FROM presence_bins WHERE EXISTS (SELECT 1 FROM doomed d WHERE d.kind = 'presence'
           AND d.record_key = CASE WHEN presence_bins.zone = '' THEN CAST(presence_bins.start_ms AS TEXT)
             ELSE CAST(presence_bins.start_ms AS TEXT) || '/' || presence_bins.zone END
           AND d.revision = presence_bins.revision)",
        [],
    )
    .map_err(e)?;
    let n = tx
        .execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM doomed)",
            [],
        )
        .map_err(e)?;
    Ok(n as u64)
}

/// Retention and the disk budget (`storage.max_bytes`), in the design's order: acknowledged
/// records past retention and raw sightings past `raw_retention`; then, while the live pages
/// exceed the budget, acknowledged records oldest first, raw sightings oldest first,
/// unacknowledged health snapshots, and unacknowledged visits oldest first. Hourly aggregates,
/// receipts and door counts are never dropped for the budget: when only they are left, the
/// report says `over_budget`.
/// Every drop of something the cloud has not acknowledged (or never gets, like sightings) is
/// counted in `drops`, which `GetInfo`, health snapshots and telemetry report.
fn prune(conn: &mut Connection, policy: PrunePolicy) -> Result<PruneReport, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut report = PruneReport::default();
    // Journaled webhook logins the pipeline has committed past are no longer needed.
    conn.execute(
        "DELETE FROM login_journal WHERE id <= COALESCE((SELECT position FROM source_checkpoints c
           WHERE c.source = login_journal.source AND c.fingerprint = 'webhook-journal'), 0)",
        [],
    )
    .map_err(e("pruning the login journal"))?;
    // Unparsed receipts are for diagnosis only: they go with the retention of acked records.
    conn.execute(
        "DELETE FROM unparsed_receipts WHERE received_ms < ?1",
        [policy.acked_before_ms],
    )
    .map_err(e("pruning unparsed receipts"))?;
    let acked: i64 = conn
        .query_row("SELECT acked_seq FROM sync_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(e("reading acks"))?;
    {
        let tx = conn.transaction().map_err(e("starting retention"))?;
        report.acked += delete_records(
            &tx,
            "seq <= ?1 AND created_ms < ?2",
            &[&acked, &policy.acked_before_ms],
        )?;
        tx.commit().map_err(e("committing retention"))?;
    }
    report.sightings += conn
        .execute(
            "DELETE FROM sightings WHERE bin_ms + 600000 <= ?1",
            [policy.raw_before_ms],
        )
        .map_err(e("removing old sightings"))? as u64;
    // `None`: raw sightings, oldest first (not outbox records).
    let steps: [(&str, Option<&str>); 4] = [
        ("", Some("seq <= ?1 ORDER BY seq LIMIT ?2")),
        ("sighting", None),
        (
            "health",
            Some("seq > ?1 AND kind = 'health' ORDER BY seq LIMIT ?2"),
        ),
        (
            "visit",
            Some("seq > ?1 AND kind = 'visit' ORDER BY seq LIMIT ?2"),
        ),
    ];
    for (kind, where_sql) in steps {
        while live_bytes(conn)? > policy.budget_bytes {
            let tx = conn.transaction().map_err(e("starting a budget drop"))?;
            let n = match where_sql {
                Some(w) => delete_records(&tx, w, &[&acked, &PRUNE_STEP])?,
                None => tx
                    .execute(
                        "DELETE FROM sightings WHERE (bin_ms, zone, device_key) IN
                           (SELECT bin_ms, zone, device_key FROM sightings
                            ORDER BY bin_ms LIMIT ?1)",
                        [PRUNE_STEP],
                    )
                    .map_err(e("dropping sightings"))? as u64,
            };
            if n > 0 && !kind.is_empty() {
                tx.execute(
                    "INSERT INTO drops (kind, count) VALUES (?1, ?2)
                     ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count",
                    params![kind, n as i64],
                )
                .map_err(e("counting drops"))?;
            }
            tx.commit().map_err(e("committing a budget drop"))?;
            if n == 0 {
                break;
            }
            if kind.is_empty() {
                report.acked += n;
            } else if where_sql.is_none() {
                report.sightings += n;
            } else {
                tracing::warn!(
                    kind,
                    records = n,
                    budget = policy.budget_bytes,
                    "disk budget exceeded: dropped records the cloud has not acknowledged"
                );
                match report.dropped_unacked.iter_mut().find(|(k, _)| k == kind) {
                    Some((_, c)) => *c += n,
                    None => report.dropped_unacked.push((kind.to_string(), n)),
                }
            }
        }
    }
    report.live_bytes = live_bytes(conn)?;
    report.over_budget = report.live_bytes > policy.budget_bytes;
    if report.over_budget {
        tracing::warn!(
            live_bytes = report.live_bytes,
            budget = policy.budget_bytes,
            "over the disk budget with only aggregates, receipts and door counts left; they are kept"
        );
    }
    Ok(report)
}

/// Starts the outbox epoch of this run: the first one for a new database, a new one if the
/// previous run did not shut down cleanly (its last commits may not have reached the disk, so
/// records it served may be gone and their seqs reused). Also gives the database its random
/// outbox id, which cursors carry so that a cursor of another gateway or database is refused.
fn start_epoch(conn: &mut Connection, now_ms: i64) -> Result<(), StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tx = conn.transaction().map_err(e("starting the epoch check"))?;
    let id: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'outbox_id'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(e("reading the outbox id"))?;
    if id.is_none() {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('outbox_id', ?1)",
            [hex::encode(rand::random::<[u8; 8]>())],
        )
        .map_err(e("writing the outbox id"))?;
    }
    let clean: bool = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'clean_shutdown'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(e("reading the shutdown flag"))?
        .is_some_and(|v| v == "1");
    let last: Option<i64> = tx
        .query_row("SELECT max(epoch) FROM outbox_epochs", [], |r| r.get(0))
        .map_err(e("reading the epoch"))?;
    let head: i64 = tx
        .query_row(OUTBOX_HEAD, [], |r| r.get(0))
        .map_err(e("reading the outbox head"))?;
    let new = match last {
        None => Some((1, "new database")),
        Some(n) if !clean => Some((n + 1, "previous run did not shut down cleanly")),
        Some(_) => None,
    };
    if let Some((epoch, reason)) = new {
        tx.execute(
            "INSERT INTO outbox_epochs (epoch, start_seq, started_ms, reason) VALUES (?1, ?2, ?3, ?4)",
            params![epoch, head, now_ms, reason],
        )
        .map_err(e("starting an epoch"))?;
        // Acks past the surviving tail named records that may be gone.
        tx.execute(
            "UPDATE sync_state SET acked_seq = min(acked_seq, ?1) WHERE id = 1",
            [head],
        )
        .map_err(e("clamping the ack"))?;
        if epoch > 1 {
            tracing::warn!(
                epoch,
                start_seq = head,
                reason,
                "new outbox epoch: pulling clients resume from the surviving tail"
            );
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('clean_shutdown', '0')
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [],
    )
    .map_err(e("clearing the shutdown flag"))?;
    tx.commit().map_err(e("committing the epoch"))
}

/// The outbox's head: the highest seq ever issued (AUTOINCREMENT's counter, in the same
/// transactions as the records), not the highest held. Retention and the disk budget may have
/// removed the newest records after a client pulled them; its cursor must stay acceptable (an
/// ack at it is not "past the head"), and a new epoch need not send it back.
const OUTBOX_HEAD: &str = "SELECT max(
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
    COALESCE((SELECT max(seq) FROM outbox), 0))";

/// Path element as stored: zone name and dwell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStep {
    /// Zone name.
    pub zone: String,
    /// Dwell in the zone, ms.
    pub ms: i64,
}

/// What the store knows about a visit's person and history when it stores it.
struct VisitContext<'a> {
    person_key: Option<&'a str>,
    repeat: &'static str,
    connected: bool,
}

fn visit_json(v: &Visit, b: &Batch, cx: &VisitContext<'_>) -> (String, String) {
    let path: Vec<PathStep> = v
        .path
        .iter()
        .map(|d| PathStep {
            zone: zone_name(&b.zones, d.zone),
            ms: d.ms,
        })
        .collect();
    let path_json = serde_json::to_string(&path).unwrap_or_else(|_| "[]".into());
    let body = serde_json::json!({
        "visit_key": v.natural_key(),
        "device_key": v.device.to_hex(),
        "key_version": b.key_version,
        "start_ms": v.start_ms,
        "end_ms": v.end_ms,
        "dwell_ms": v.dwell_ms(),
        "inside_ms": v.inside_ms,
        "class": v.class.as_str(),
        "randomized": v.randomized,
        "associated": v.associated,
        "path": path,
        "definitions_version": edge_core::DEFINITIONS_VERSION,
        "person_key": cx.person_key.unwrap_or_default(),
        "connected": cx.connected,
        "count_group": v.group.clone().unwrap_or_default(),
        "sightings": v.sightings,
        "person_key_version": if cx.person_key.is_some() { b.person_key_version } else { 0 },
        "repeat": cx.repeat,
        "clock_step": v.clock_step,
    });
    (path_json, body.to_string())
}

fn hour_json(h: &HourRecord, zones: &[String]) -> String {
    let zone_name = |z: u8| {
        zones
            .get(usize::from(z))
            .cloned()
            .unwrap_or_else(|| format!("zone-{z}"))
    };
    let s = &h.stats;
    let zone_stats: Vec<serde_json::Value> = s
        .zone_visits
        .iter()
        .enumerate()
        .map(|(i, visits)| {
            serde_json::json!({
                "zone": zone_name(i as u8),
                "visits": visits,
                "dwell_ms": s.zone_dwell_ms.get(i).copied().unwrap_or(0),
            })
        })
        .collect();
    let transitions: Vec<serde_json::Value> = s
        .transitions
        .iter()
        .map(
            |(a, b, n)| serde_json::json!({"from": zone_name(*a), "to": zone_name(*b), "count": n}),
        )
        .collect();
    serde_json::json!({
        "hour_start_ms": h.hour_start_ms,
        "revision": h.revision,
        "local_date": h.local_date,
        "local_hour": h.local_hour,
        "definitions_version": h.definitions_version,
        "visitors": s.visitors,
        "passersby": s.passersby,
        "staff": s.staff,
        "randomized_visitors": s.randomized_visitors,
        "visitor_dwell_ms": s.visitor_dwell_ms,
        "dwell_buckets": edge_core::aggregate::DWELL_BUCKET_NAMES
            .iter()
            .zip(s.dwell_buckets)
            .map(|(name, n)| ((*name).to_string(), serde_json::Value::from(n)))
            .collect::<serde_json::Map<_, _>>(),
        "zones": zone_stats,
        "transitions": transitions,
        "clock_step": h.clock_step,
    })
    .to_string()
}

fn apply(conn: &mut Connection, b: &Batch) -> Result<Receipt, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tx = conn.transaction().map_err(e("starting commit"))?;
    let mut r = Receipt::default();
    for bd in &b.bindings {
        // A device logs in as one person at a time: a later login as someone else rebinds it.
        tx.execute(
            "INSERT INTO device_persons (device_key, person_key, key_version, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (device_key) DO UPDATE SET
               first_seen_ms = CASE WHEN person_key = excluded.person_key
                                    THEN min(first_seen_ms, excluded.first_seen_ms)
                                    ELSE excluded.first_seen_ms END,
               person_key = excluded.person_key,
               key_version = excluded.key_version,
               last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            params![bd.device.to_hex(), bd.person.to_hex(), bd.key_version, bd.seen_ms],
        )
        .map_err(e("writing a device-person binding"))?;
    }
    if !b.sightings.is_empty() {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO sightings (bin_ms, zone, device_key, first_ms, last_ms, best_rssi,
                                        minutes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (bin_ms, zone, device_key) DO UPDATE SET
                   first_ms = min(first_ms, excluded.first_ms),
                   last_ms = max(last_ms, excluded.last_ms),
                   best_rssi = max(best_rssi, excluded.best_rssi),
                   minutes = minutes | excluded.minutes",
            )
            .map_err(e("preparing a sighting insert"))?;
        for sg in &b.sightings {
            ins.execute(params![
                sg.bin_ms,
                sg.zone,
                &sg.device.0[..],
                sg.first_ms,
                sg.last_ms,
                sg.best_rssi,
                sg.minutes
            ])
            .map_err(e("writing a sighting"))?;
        }
    }
    {
        let mut ins_visit = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO visits (visit_key, device_key, key_version, start_ms, end_ms,
                   local_date, dwell_ms, inside_ms, class, randomized, associated, sightings, path,
                   definitions_version, created_ms, person_key, repeat_class, connected, count_group)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )
            .map_err(e("preparing visit insert"))?;
        let mut ins_outbox = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox (kind, record_key, revision, body, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(e("preparing outbox insert"))?;
        let mut person_of = tx
            .prepare_cached(
                "SELECT person_key FROM device_persons WHERE device_key = ?1 AND first_seen_ms <= ?2",
            )
            .map_err(e("preparing person lookup"))?;
        // The device's earlier visits are a range of the unique visit-key index
        // (`<device key>:<start>`, and ';' follows ':'), so no index over device keys is kept.
        let mut prev_by_device = tx
            .prepare_cached(
                "SELECT max(end_ms) FROM visits
                 WHERE visit_key > ?1 || ':' AND visit_key < ?1 || ';' AND end_ms <= ?2",
            )
            .map_err(e("preparing device history lookup"))?;
        let mut prev_by_person = tx
            .prepare_cached("SELECT max(end_ms) FROM visits WHERE person_key = ?1 AND end_ms <= ?2")
            .map_err(e("preparing person history lookup"))?;
        let mut devices_of = tx
            .prepare_cached(
                "SELECT device_key FROM device_persons WHERE person_key = ?1 AND first_seen_ms <= ?2",
            )
            .map_err(e("preparing person devices lookup"))?;
        let mut with_person: Vec<(String, i64, i64)> = Vec::new();
        for v in &b.visits {
            let key = v.natural_key();
            let device_hex = v.device.to_hex();
            // The person the visit's own login named, else the one the device is bound to.
            let person: Option<String> = match v.person {
                Some(p) => Some(p.to_hex()),
                // Only a binding made by the end of the visit: what was known then, whatever
                // the order in which later logins and this visit reach the store.
                None => person_of
                    .query_row(params![device_hex, v.end_ms], |r| r.get(0))
                    .optional()
                    .map_err(e("looking up the device's person"))?,
            };
            let history = e("looking up the previous visit");
            let mut previous: Option<i64> = prev_by_device
                .query_row(params![device_hex, v.start_ms], |r| r.get(0))
                .map_err(history)?;
            // A person's history is every visit stored with their key, and every visit of
            // each device bound to them (visits from before the binding have no key).
            if let Some(p) = &person {
                let by_person: Option<i64> = prev_by_person
                    .query_row(params![p, v.start_ms], |r| r.get(0))
                    .map_err(history)?;
                previous = previous.max(by_person);
                let devices: Vec<String> = devices_of
                    .query_map(params![p, v.end_ms], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(history)?;
                for d in devices.iter().filter(|d| **d != device_hex) {
                    let by_device: Option<i64> = prev_by_device
                        .query_row(params![d, v.start_ms], |r| r.get(0))
                        .map_err(history)?;
                    previous = previous.max(by_device);
                }
            }
            let cx = VisitContext {
                person_key: person.as_deref(),
                repeat: repeat_class(previous, v.start_ms),
                connected: v.connected,
            };
            let (path, body) = visit_json(v, b, &cx);
            let local_date = b.clock.date(v.start_ms).to_string();
            let n = ins_visit
                .execute(params![
                    key,
                    v.device.to_hex(),
                    b.key_version,
                    v.start_ms,
                    v.end_ms,
                    local_date,
                    v.dwell_ms(),
                    v.inside_ms,
                    v.class.as_str(),
                    v.randomized,
                    v.associated,
                    v.sightings,
                    path,
                    edge_core::DEFINITIONS_VERSION,
                    b.now_ms,
                    cx.person_key,
                    cx.repeat,
                    cx.connected,
                    v.group
                ])
                .map_err(e("inserting visit"))?;
            if n == 0 {
                r.visits_duplicate += 1;
                continue;
            }
            r.visits_new += 1;
            if let Some(p) = cx.person_key {
                with_person.push((p.to_string(), v.start_ms, v.end_ms));
            }
            ins_outbox
                .execute(params!["visit", key, 0, body, b.now_ms])
                .map_err(e("inserting visit into outbox"))?;
            if b.want_bodies {
                r.visit_bodies.push(body);
            }
        }
        r.purchases_attributed =
            purchases::attribute_new_visits(&tx, &with_person, b.attribution_grace_ms, b.now_ms)?;
        let mut ins_hour = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO hourly_aggregates (hour_start_ms, revision, local_date,
                   local_hour, definitions_version, body, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(e("preparing hour insert"))?;
        for h in &b.hours {
            let body = hour_json(h, &b.zones);
            let n = ins_hour
                .execute(params![
                    h.hour_start_ms,
                    h.revision,
                    h.local_date,
                    h.local_hour,
                    h.definitions_version,
                    body,
                    b.now_ms
                ])
                .map_err(e("inserting hourly aggregate"))?;
            if n > 0 {
                r.hours_new += 1;
                ins_outbox
                    .execute(params![
                        "hourly",
                        h.hour_start_ms.to_string(),
                        h.revision,
                        body,
                        b.now_ms
                    ])
                    .map_err(e("inserting hour into outbox"))?;
            }
        }
        if !b.presence.is_empty() {
            let records = presence::records_of(&tx, &b.presence, &b.zones, &b.clock)?;
            r.presence_new += presence::store_records(&tx, &records, b.now_ms)?;
            if b.door_calibration {
                // Each new local date refits from the days before it, once those are stored
                // (this batch may hold a day's last bins and the next day's first).
                let dates: std::collections::BTreeSet<chrono::NaiveDate> = b
                    .presence
                    .iter()
                    .map(|p| b.clock.date(p.start_ms))
                    .collect();
                for date in dates {
                    if let presence::DoorRefit::Fitted(v) =
                        presence::door_refit(&tx, &b.clock, date, b.now_ms)?
                    {
                        r.calibrations.push(v);
                    }
                }
            }
        }
    }
    if let Some(cp) = &b.checkpoint {
        write_snapshot(&tx, cp, b.now_ms)?;
        for c in &cp.cursors {
            write_cursor(&tx, c, b.now_ms).map_err(e("writing source cursor"))?;
        }
    }
    for (source, name, value) in &b.counters {
        write_counter(&tx, source, name, *value).map_err(e("writing counters"))?;
    }
    tx.commit().map_err(e("committing"))?;
    Ok(r)
}

/// A read-only connection for reports and start-up state.
pub struct Reader {
    conn: Connection,
}

/// The outbox's committed sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxState {
    /// Random id of this database's outbox (hex), carried by cursors.
    pub outbox_id: String,
    /// (epoch, start seq), oldest first; the last is current.
    pub epochs: Vec<(u64, i64)>,
    /// Lowest seq held (1 when empty).
    pub first_seq: i64,
    /// Highest seq ever committed, also when that record is gone (retention, the disk
    /// budget); 0 for a new outbox.
    pub head_seq: i64,
    /// Records held.
    pub records: u64,
    /// Every record up to this seq is acknowledged.
    pub acked_seq: i64,
    /// Records after `acked_seq`.
    pub unacked: u64,
}

impl OutboxState {
    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epochs.last().map_or(1, |e| e.0)
    }
}

/// One outbox record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Outbox position.
    pub seq: i64,
    /// "visit", "hourly", ...
    pub kind: String,
    /// Natural key within the kind.
    pub record_key: String,
    /// Revision of the record.
    pub revision: u32,
    /// JSON body in the shape of `records.proto`.
    pub body: String,
    /// Commit time, Unix ms.
    pub created_ms: i64,
}

/// A visit row as read back.
#[derive(Debug, Clone)]
pub struct VisitRow {
    /// Class name.
    pub class: String,
    /// Start, UTC ms.
    pub start_ms: i64,
    /// Dwell, ms.
    pub dwell_ms: i64,
    /// Path.
    pub path: Vec<PathStep>,
    /// The device is bound to a person.
    pub identified: bool,
    /// Logged in to the store Wi-Fi during the visit.
    pub connected: bool,
    /// Counting group (randomized, probe-only MACs).
    pub group: Option<String>,
    /// Inside time, ms.
    pub inside_ms: i64,
    /// Sightings.
    pub sightings: u32,
    /// Randomized MAC.
    pub randomized: bool,
}

impl Reader {
    /// Journaled logins of `source` after journal id `after`, oldest first.
    pub fn journal_after(
        &self,
        source: &str,
        after: i64,
    ) -> Result<Vec<(i64, JournalEntry)>, StoreError> {
        let e = |err| StoreError::sqlite("reading the login journal", err);
        let mut st = self
            .conn
            .prepare(
                "SELECT id, ts_ms, device_key, person_key, key_version, event FROM login_journal
                 WHERE source = ?1 AND id > ?2 ORDER BY id",
            )
            .map_err(e)?;
        let rows = st
            .query_map(params![source, after], |r| {
                Ok((
                    r.get(0)?,
                    JournalEntry {
                        source: source.to_string(),
                        ts_ms: r.get(1)?,
                        device_key: r.get(2)?,
                        person_key: r.get(3)?,
                        key_version: r.get(4)?,
                        event: r.get(5)?,
                    },
                ))
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// Every device ↔ person binding: (device key, person key), hex.
    pub fn bindings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let e = |err| StoreError::sqlite("reading bindings", err);
        let mut st = self
            .conn
            .prepare("SELECT device_key, person_key FROM device_persons")
            .map_err(e)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// Bytes of the database file and its WAL.
    pub fn database_bytes(&self) -> u64 {
        let main = self.conn.path().map(PathBuf::from);
        main.map_or(0, |p| {
            let wal = PathBuf::from(format!("{}-wal", p.display()));
            [p, wal]
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        })
    }

    /// Opens `data_dir`'s database read-only. It must exist.
    pub fn open(data_dir: &Path) -> Result<Reader, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::DataDir {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no store-edge database here",
                ),
            });
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::sqlite("opening database read-only", e))?;
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite("reading schema version", e))?;
        if version > migrations::latest() {
            return Err(StoreError::TooNew {
                found: version,
                supported: migrations::latest(),
            });
        }
        Ok(Reader { conn })
    }

    /// The POS figures of `local_date`, counting receipts whose time passes `keep`.
    pub fn pos_day(
        &self,
        local_date: &str,
        keep: &dyn Fn(i64) -> bool,
    ) -> Result<purchases::PosDay, StoreError> {
        purchases::day(&self.conn, local_date, keep)
    }

    /// Whether any purchase is stored.
    pub fn has_purchases(&self) -> Result<bool, StoreError> {
        purchases::any(&self.conn)
    }

    /// Every stored revision of the counter intervals counting on `local_date`.
    pub fn counter_intervals_on(
        &self,
        local_date: &str,
    ) -> Result<Vec<edge_core::counter::CounterInterval>, StoreError> {
        counters::on(&self.conn, local_date)
    }

    /// The latest store-local date with a counter interval.
    pub fn counter_latest_date(&self) -> Result<Option<String>, StoreError> {
        counters::latest_date(&self.conn)
    }

    /// The newest receipt time and counter interval ends.
    pub fn activity(&self) -> Result<activity::Activity, StoreError> {
        activity::latest(&self.conn)
    }

    /// Whether any counter interval is stored.
    pub fn has_counter_intervals(&self) -> Result<bool, StoreError> {
        counters::any(&self.conn)
    }

    /// A meta value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::sqlite("reading meta", e))
    }

    /// The stored core snapshot, if any: (watermark, bytes).
    pub fn snapshot(&self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT watermark_ms, body FROM core_snapshot WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| StoreError::sqlite("reading core snapshot", e))
    }

    /// Every committed cursor.
    pub fn cursors(&self) -> Result<Vec<Cursor>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT source, fingerprint, position FROM source_checkpoints ORDER BY source")
            .map_err(|e| StoreError::sqlite("reading cursors", e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Cursor {
                    source: r.get(0)?,
                    fingerprint: r.get(1)?,
                    position: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(|e| StoreError::sqlite("reading cursors", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::sqlite("reading cursors", e))
    }

    /// Stored counters: (source, name, value).
    pub fn counters(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT source, name, value FROM counters ORDER BY source, name")
            .map_err(|e| StoreError::sqlite("reading counters", e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(|e| StoreError::sqlite("reading counters", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::sqlite("reading counters", e))
    }

    /// Visits that started on a local date.
    pub fn visits_on(&self, local_date: &str) -> Result<Vec<VisitRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT class, start_ms, dwell_ms, path, person_key IS NOT NULL, connected,
                   count_group, inside_ms, sightings, randomized
                 FROM visits WHERE local_date = ?1 ORDER BY start_ms, visit_key",
            )
            .map_err(|e| StoreError::sqlite("reading visits", e))?;
        let rows = st
            .query_map([local_date], |r| {
                let path: String = r.get(3)?;
                Ok(VisitRow {
                    class: r.get(0)?,
                    start_ms: r.get(1)?,
                    dwell_ms: r.get(2)?,
                    path: serde_json::from_str(&path).unwrap_or_default(),
                    identified: r.get(4)?,
                    connected: r.get(5)?,
                    group: r.get(6)?,
                    inside_ms: r.get(7)?,
                    sightings: r.get(8)?,
                    randomized: r.get(9)?,
                })
            })
            .map_err(|e| StoreError::sqlite("reading visits", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::sqlite("reading visits", e))
    }

    /// Local hours of a local date whose hourly record (any revision) is flagged `clock_step`:
    /// a step of the gateway's clock touched them.
    pub fn clock_step_hours(&self, local_date: &str) -> Result<Vec<u8>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT local_hour FROM hourly_aggregates
                 WHERE local_date = ?1 AND json_extract(body, '$.clock_step') = 1
                 ORDER BY local_hour",
            )
            .map_err(|e| StoreError::sqlite("reading hourly records", e))?;
        let rows = st
            .query_map([local_date], |r| r.get::<_, u8>(0))
            .map_err(|e| StoreError::sqlite("reading hourly records", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::sqlite("reading hourly records", e))
    }

    /// The latest local date with a visitor or an hour of whole-store presence (phones that
    /// randomize per scan are only presence), else with any visit, else with a receipt.
    pub fn latest_date(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(
                    (SELECT max(d) FROM (
                        SELECT max(local_date) AS d FROM visits WHERE class = 'visitor'
                        UNION ALL
                        SELECT local_date FROM presence_bins WHERE zone = ''
                        GROUP BY local_date HAVING count(DISTINCT start_ms) >= 6)),
                    (SELECT max(local_date) FROM visits),
                    (SELECT max(local_date) FROM purchases))",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::sqlite("finding the latest date", e))
    }

    /// The outbox's sync state as committed: id, epochs, bounds and acks.
    pub fn outbox_state(&self) -> Result<OutboxState, StoreError> {
        let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
        let outbox_id = self.meta("outbox_id")?.unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT epoch, start_seq FROM outbox_epochs ORDER BY epoch")
            .map_err(e("reading epochs"))?;
        let epochs = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<(u64, i64)>, _>>())
            .map_err(e("reading epochs"))?;
        let (first_seq, head_seq, records): (i64, i64, u64) = self
            .conn
            .query_row(
                &format!("SELECT COALESCE(min(seq), 1), ({OUTBOX_HEAD}), count(*) FROM outbox"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
            )
            .map_err(e("reading outbox bounds"))?;
        let acked_seq: i64 = self
            .conn
            .query_row("SELECT acked_seq FROM sync_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(e("reading acks"))?;
        let unacked: u64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM outbox WHERE seq > ?1",
                [acked_seq],
                |r| r.get::<_, i64>(0),
            )
            .map_err(e("counting unacked records"))? as u64;
        Ok(OutboxState {
            outbox_id,
            epochs,
            first_seq,
            head_seq,
            records,
            acked_seq,
            unacked,
        })
    }

    /// Unacknowledged records dropped for the disk budget, by kind.
    pub fn drops(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, count FROM drops ORDER BY kind")
            .map_err(|e| StoreError::sqlite("reading drops", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sqlite("reading drops", e))
    }

    /// Up to `limit` outbox records with seq > `after` and at most `upto`, oldest first, only
    /// of `kinds` when it is not empty.
    pub fn outbox_page(
        &self,
        after: i64,
        upto: i64,
        limit: usize,
        kinds: &[String],
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let e = |err| StoreError::sqlite("reading the outbox", err);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, kind, record_key, revision, body, created_ms FROM outbox
                 WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(e)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last = after;
        // Filtering in Rust keeps one query plan (seq range scan) for every filter.
        while out.len() < limit && last < upto {
            let rows = stmt
                .query_map(params![last, upto, 1024], |r| {
                    Ok(OutboxRecord {
                        seq: r.get(0)?,
                        kind: r.get(1)?,
                        record_key: r.get(2)?,
                        revision: r.get(3)?,
                        body: r.get(4)?,
                        created_ms: r.get(5)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(e)?;
            let Some(tail) = rows.last() else { break };
            last = tail.seq;
            for r in rows {
                if out.len() == limit {
                    break;
                }
                if kinds.is_empty() || kinds.contains(&r.kind) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Number of rows in a table (for tests and status).
    pub fn count(&self, table: &str) -> Result<u64, StoreError> {
        let allowed = [
            "visits",
            "hourly_aggregates",
            "outbox",
            "source_checkpoints",
            "health_snapshots",
            "sightings",
        ];
        if !allowed.contains(&table) {
            return Ok(0);
        }
        self.conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| StoreError::sqlite("counting rows", e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use edge_core::aggregate::HourStats;
    use edge_core::{DeviceKey, VisitClass, ZoneDwell};

    /// 2026-11-20T00:00:00Z.
    const T0: i64 = 1_795_132_800_000;

    fn empty_batch() -> Batch {
        Batch::new(
            vec!["entrance".to_string(), "checkout".to_string()].into(),
            1,
            LocalClock::new(chrono_tz::UTC),
        )
    }

    /// A 10-minute visit of device `dev` through both zones (shared with the model test).
    pub(super) fn visit(dev: u8, start_ms: i64) -> Visit {
        Visit {
            device: DeviceKey([dev; 16]),
            start_ms,
            end_ms: start_ms + 600_000,
            inside_ms: 600_000,
            sightings: 12,
            class: VisitClass::Visitor,
            randomized: false,
            associated: false,
            path: vec![
                ZoneDwell {
                    zone: 0,
                    ms: 400_000,
                },
                ZoneDwell {
                    zone: 1,
                    ms: 200_000,
                },
            ],
            person: None,
            connected: false,
            fingerprint: 0,
            first_seq: None,
            last_seq: None,
            group: None,
            clock_step: false,
        }
    }

    fn hour(rev: u32) -> HourRecord {
        HourRecord {
            hour_start_ms: T0 + 9 * 3_600_000,
            revision: rev,
            local_date: "2026-11-20".into(),
            local_hour: 9,
            definitions_version: 1,
            stats: HourStats::default(),
            clock_step: false,
        }
    }

    /// A core that has seen `devices` devices, all still open (one probe each, 0.1 s apart).
    pub(crate) fn core(devices: u32) -> Sessionizer {
        let mut core = Sessionizer::new(
            edge_core::MetricParams::default(),
            LocalClock::new(chrono_tz::UTC),
        );
        for i in 0..devices {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&i.to_be_bytes());
            core.observe(&edge_core::Sighting {
                ts_ms: T0 + i64::from(i) * 100,
                device: DeviceKey(key),
                zone: 0,
                rssi_dbm: -50,
                kind: edge_core::SightingKind::Probe,
                randomized: false,
                fingerprint: 7,
                seq: Some(1),
            });
        }
        core
    }

    fn checkpoint(pos: u64) -> Checkpoint {
        Checkpoint {
            core: Box::new(core(0)),
            watermark_ms: 42,
            cursors: vec![Cursor {
                source: "entrance".into(),
                fingerprint: "f".into(),
                position: pos,
            }],
        }
    }

    /// A checkpoint's core is encoded piecewise into a blob of its length: a large one (more
    /// than the write buffer), then a smaller one over it, read back byte for byte as
    /// `snapshot::encode` gives them; the core comes back with the receipt.
    #[test]
    fn a_checkpoint_stores_its_snapshot_whole_and_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        for devices in [5_000, 3] {
            let lent = core(devices);
            let expected = snapshot::encode(&lent);
            let r = store
                .commit(Batch {
                    checkpoint: Some(Checkpoint {
                        core: Box::new(lent),
                        ..checkpoint(10)
                    }),
                    ..empty_batch()
                })
                .unwrap();
            let back = r.core.expect("the lent core comes back");
            assert_eq!(back.open_count(), devices as usize);
            assert_eq!(snapshot::encode(&back), expected);
            let rd = Reader::open(dir.path()).unwrap();
            assert_eq!(rd.snapshot().unwrap(), Some((42, expected)));
        }
        assert!(snapshot::encoded_len(&core(5_000)) > SNAPSHOT_WRITE_BUF);
        store.close();
    }

    #[test]
    fn replayed_visits_and_hours_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let batch = Batch {
            visits: vec![visit(1, T0 + 1_000), visit(2, T0 + 1_000)],
            hours: vec![hour(1)],
            checkpoint: Some(checkpoint(10)),
            counters: vec![("entrance".into(), "frames_read".into(), 10)],
            now_ms: 5,
            ..empty_batch()
        };
        // (new, duplicate, hours, presence, calibrations + bodies, purchases attributed)
        let counts = |r: &Receipt| {
            (
                r.visits_new,
                r.visits_duplicate,
                r.hours_new,
                r.presence_new,
                r.calibrations.len() + r.visit_bodies.len(),
                r.purchases_attributed,
            )
        };
        let r = store.commit(batch.clone()).unwrap();
        assert_eq!(counts(&r), (2, 0, 1, 0, 0, 0));
        let r = store.commit(batch).unwrap();
        assert_eq!(counts(&r), (0, 2, 0, 0, 0, 0));
        // A later revision of the same hour is a new record, not an edit.
        let r = store
            .commit(Batch {
                hours: vec![hour(2)],
                ..empty_batch()
            })
            .unwrap();
        assert_eq!(r.hours_new, 1);
        store.close();

        let rd = Reader::open(dir.path()).unwrap();
        assert_eq!(rd.count("visits").unwrap(), 2);
        assert_eq!(rd.count("hourly_aggregates").unwrap(), 2);
        // 2 visits + 2 hour revisions, each once.
        assert_eq!(rd.count("outbox").unwrap(), 4);
        let rows = rd.visits_on("2026-11-20").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].dwell_ms, 600_000);
        assert_eq!(
            rows[0].path,
            vec![
                PathStep {
                    zone: "entrance".into(),
                    ms: 400_000
                },
                PathStep {
                    zone: "checkout".into(),
                    ms: 200_000
                }
            ]
        );
        assert_eq!(rd.latest_date().unwrap().as_deref(), Some("2026-11-20"));
    }

    #[test]
    fn visits_carry_their_person_and_repeat_class() {
        const H: i64 = 3_600_000;
        const D: i64 = 24 * H;
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        // Devices 2 and 3 belong to one person (as a portal login would record).
        let seed = Connection::open(dir.path().join(DB_FILE)).unwrap();
        for dev in [2u8, 3] {
            seed.execute(
                "INSERT INTO device_persons VALUES (?1, 'p1', 1, 0, 0)",
                [DeviceKey([dev; 16]).to_hex()],
            )
            .unwrap();
        }
        assert_eq!(
            Reader::open(dir.path()).unwrap().bindings().unwrap().len(),
            2
        );
        // (device, start) → (person, repeat), committed one batch after another.
        let table: [((u8, i64), (&str, &str)); 8] = [
            ((1, T0), ("", "first")),
            ((1, T0 + 2 * H), ("", "within_1d")),
            ((1, T0 + 5 * D), ("", "within_7d")),
            ((1, T0 + 40 * D), ("", "older")),
            ((2, T0), ("p1", "first")),
            // The person's other device, overlapping that visit: not a return.
            ((3, T0 + 60_000), ("p1", "first")),
            // Another device of the same person: repeat by person, not by device.
            ((3, T0 + 3 * D), ("p1", "within_7d")),
            ((2, T0 + 20 * D), ("p1", "within_30d")),
        ];
        for ((dev, start), (person, repeat)) in table {
            let r = store
                .commit(Batch {
                    visits: vec![visit(dev, start)],
                    want_bodies: true,
                    ..empty_batch()
                })
                .unwrap();
            assert_eq!(r.visit_bodies.len(), 1);
            let v: serde_json::Value = serde_json::from_str(&r.visit_bodies[0]).unwrap();
            assert_eq!(v["person_key"], person, "{dev} at {start}");
            assert_eq!(v["repeat"], repeat, "{dev} at {start}");
            assert_eq!(v["connected"], false);
        }
        // A device's visits from before it was bound count for its person afterwards.
        let one = |dev: u8, start: i64| {
            let r = store
                .commit(Batch {
                    visits: vec![visit(dev, start)],
                    want_bodies: true,
                    ..empty_batch()
                })
                .unwrap();
            serde_json::from_str::<serde_json::Value>(&r.visit_bodies[0]).unwrap()
        };
        assert_eq!(one(5, T0 + 21 * D)["person_key"], "");
        seed.execute(
            "INSERT INTO device_persons VALUES (?1, 'p1', 1, 0, 0)",
            [DeviceKey([5; 16]).to_hex()],
        )
        .unwrap();
        let v = one(3, T0 + 21 * D + 2 * H);
        assert_eq!(
            (v["person_key"].as_str(), v["repeat"].as_str()),
            (Some("p1"), Some("within_1d"))
        );
        // Without the flag no bodies travel back.
        let r = store
            .commit(Batch {
                visits: vec![visit(9, T0)],
                ..empty_batch()
            })
            .unwrap();
        assert!(r.visit_bodies.is_empty() && r.visits_new == 1);
        // The stored columns agree with the bodies.
        let n: i64 = seed
            .query_row(
                "SELECT count(*) FROM visits WHERE person_key = 'p1' AND repeat_class != 'first'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn health_snapshots_enter_the_outbox_once_and_go_first_under_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store
            .commit(Batch {
                visits: vec![visit(1, T0)],
                ..empty_batch()
            })
            .unwrap();
        assert!(store.health(T0 + 5, "{}".into()).unwrap());
        assert!(!store.health(T0 + 5, "{}".into()).unwrap());
        assert!(store.health(T0 + 6, "{}".into()).unwrap());
        let rd = Reader::open(dir.path()).unwrap();
        assert_eq!(rd.count("health_snapshots").unwrap(), 2);
        let st = rd.outbox_state().unwrap();
        let page = rd
            .outbox_page(0, st.head_seq, 10, &["health".into()])
            .unwrap();
        let keys: Vec<&str> = page.iter().map(|r| r.record_key.as_str()).collect();
        assert_eq!(keys, [(T0 + 5).to_string(), (T0 + 6).to_string()]);
        drop(rd);
        // Over budget with nothing acked: health snapshots go before visits.
        let r = store
            .prune(PrunePolicy {
                raw_before_ms: 0,
                acked_before_ms: 0,
                budget_bytes: 0,
            })
            .unwrap();
        assert_eq!(r.dropped_unacked[0], ("health".to_string(), 2));
        let rd = Reader::open(dir.path()).unwrap();
        assert_eq!(rd.count("health_snapshots").unwrap(), 0);
        assert!(rd.drops().unwrap().contains(&("health".to_string(), 2)));
    }

    #[test]
    fn checkpoint_and_counters_are_read_back_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store
            .set_meta(vec![("zones".into(), "[\"entrance\"]".into())])
            .unwrap();
        for pos in [10, 20] {
            store
                .commit(Batch {
                    checkpoint: Some(checkpoint(pos)),
                    counters: vec![("entrance".into(), "frames_read".into(), pos)],
                    ..empty_batch()
                })
                .unwrap();
        }
        // A commit without a checkpoint leaves the cursor where the last checkpoint put it.
        store
            .commit(Batch {
                visits: vec![visit(3, T0 + 9)],
                ..empty_batch()
            })
            .unwrap();
        store.close();
        let store = open(dir.path()).unwrap();
        store.close();
        let rd = Reader::open(dir.path()).unwrap();
        assert_eq!(
            rd.snapshot().unwrap(),
            Some((42, snapshot::encode(&core(0))))
        );
        assert_eq!(rd.cursors().unwrap(), checkpoint(20).cursors);
        assert_eq!(
            rd.counters().unwrap(),
            vec![("entrance".to_string(), "frames_read".to_string(), 20)]
        );
        assert_eq!(rd.meta("zones").unwrap().as_deref(), Some("[\"entrance\"]"));
        assert_eq!(rd.meta("nope").unwrap(), None);
    }

    #[test]
    fn database_is_in_wal_mode_and_raw_macs_never_reach_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store
            .commit(Batch {
                visits: vec![visit(0xab, T0 + 1)],
                ..empty_batch()
            })
            .unwrap();
        store.close();
        let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let key: String = c
            .query_row("SELECT device_key FROM visits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(key, "ab".repeat(16));
    }

    #[test]
    fn epochs_follow_clean_and_unclean_shutdowns_and_acks_never_move_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = || Reader::open(dir.path()).unwrap().outbox_state().unwrap();
        let store = open(dir.path()).unwrap();
        let mut batch = empty_batch();
        batch.visits = (0..10).map(|i| visit(i, 1_000 * i64::from(i))).collect();
        store.commit(batch).unwrap();
        // (ack, acked afterwards): repeated and older acks change nothing.
        for (ack, want) in [(4, 4), (4, 4), (2, 4), (7, 7)] {
            assert_eq!(store.ack(ack, 1).unwrap(), want, "ack {ack}");
        }
        store.close();
        let s = state();
        assert_eq!(s.epochs, vec![(1, 0)]);
        assert_eq!(
            (s.head_seq, s.acked_seq, s.unacked, s.records),
            (10, 7, 3, 10)
        );
        assert_eq!(s.outbox_id.len(), 16);
        // A clean restart keeps the epoch and the id.
        open(dir.path()).unwrap().close();
        assert_eq!(state().epochs, vec![(1, 0)]);
        assert_eq!(state().outbox_id, s.outbox_id);
        // A run that never shut down (its handle leaked, as a killed process's would be)
        // leaves the next start a new epoch from the surviving head.
        std::mem::forget(open(dir.path()).unwrap());
        open(dir.path()).unwrap().close();
        assert_eq!(state().epochs, vec![(1, 0), (2, 10)]);
        assert_eq!(state().acked_seq, 7);
    }

    #[test]
    fn prune_follows_retention_then_the_budget_drop_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let rd = || Reader::open(dir.path()).unwrap();
        // Three commits: 300 visits at t=1000, 300 at t=2000, then an hour record.
        for (t, devs) in [(1_000, 0..150u8), (2_000, 150..255u8)] {
            let mut b = empty_batch();
            b.now_ms = t;
            b.visits = devs
                .flat_map(|d| [visit(d, 0), visit(d, 3_600_000)])
                .collect();
            store.commit(b).unwrap();
        }
        // An hourly record, and raw sightings of 40 devices in minutes 0..50 (two commits
        // of the same minutes: rows merge, first/last widen).
        let mut b = empty_batch();
        b.now_ms = 3_000;
        b.hours = vec![hour(1)];
        // Sightings of 40 devices in minutes 0..50 (five bins), one row per minute: the store
        // folds them into one row per bin, also across commits.
        let rows = |offset: i64| -> Vec<RawSighting> {
            (0..50i64)
                .flat_map(|m| {
                    (0..40u8).map(move |d| RawSighting {
                        bin_ms: m / 10 * edge_core::session::RAW_BIN_MS,
                        minutes: 1 << (m % 10),
                        zone: d % 2,
                        device: DeviceKey([d; 16]),
                        first_ms: m * 60_000 + 10_000 + offset,
                        last_ms: m * 60_000 + 20_000 + offset,
                        best_rssi: -70 + i8::try_from(offset / 1_000).unwrap(),
                    })
                })
                .collect()
        };
        b.sightings = rows(0);
        store.commit(b).unwrap();
        let mut b = empty_batch();
        b.sightings = rows(5_000);
        store.commit(b).unwrap();
        assert_eq!(rd().count("sightings").unwrap(), 200);
        let row: (i64, i64, i64, i64) = rusqlite::Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .query_row(
                "SELECT first_ms, last_ms, best_rssi, minutes FROM sightings WHERE bin_ms = 600000
                 AND device_key = ?1",
                [&DeviceKey([3; 16]).0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (610_000, 1_165_000, -65, 0x3ff));
        let total = rd().outbox_state().unwrap().records;
        assert_eq!(total, 300 + 210 + 1);
        store.ack(400, 5).unwrap();

        // Retention: acked and committed before 1500 → the first 300 go, with their visits;
        // sightings of bins ending by minute 10 go too.
        let r = store
            .prune(PrunePolicy {
                acked_before_ms: 1_500,
                raw_before_ms: 10 * 60_000,
                budget_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!((r.acked, r.dropped_unacked.clone()), (300, vec![]));
        assert_eq!((r.sightings, r.over_budget), (40, false));
        assert_eq!(rd().count("visits").unwrap(), 210);
        assert_eq!(rd().count("sightings").unwrap(), 160);
        assert_eq!(rd().outbox_state().unwrap().first_seq, 301);

        // A budget below what is left: acked records go first (301..=400), then raw
        // sightings, then unacked visits oldest first. The hourly record is never dropped:
        // the store stays over budget and says so.
        let r = store
            .prune(PrunePolicy {
                acked_before_ms: 0,
                raw_before_ms: 0,
                budget_bytes: 1,
            })
            .unwrap();
        assert_eq!(r.acked, 100);
        assert_eq!(r.sightings, 160);
        assert_eq!(r.dropped_unacked, vec![("visit".to_string(), 110)]);
        assert!(r.over_budget);
        assert!(store.write_health().over_budget());
        let st = rd().outbox_state().unwrap();
        assert_eq!(st.records, 1);
        assert_eq!(
            rd().drops().unwrap(),
            vec![("sighting".to_string(), 160), ("visit".to_string(), 110)]
        );
        assert_eq!(rd().count("visits").unwrap(), 0);
        assert_eq!(rd().count("sightings").unwrap(), 0);
        assert_eq!(rd().count("hourly_aggregates").unwrap(), 1);

        // A generous budget drops nothing more, and drops accumulate across runs only when
        // something is dropped.
        let mut b = empty_batch();
        b.visits = vec![visit(1, 9_000_000)];
        store.commit(b).unwrap();
        let r = store
            .prune(PrunePolicy {
                acked_before_ms: 0,
                raw_before_ms: 0,
                budget_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!(
            (r.acked, r.dropped_unacked.len(), r.over_budget),
            (0, 0, false)
        );
        assert!(!store.write_health().over_budget());
        assert_eq!(rd().outbox_state().unwrap().records, 2);
        store.close();
    }

    #[test]
    fn outbox_pages_filter_by_kind_and_stop_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let mut batch = empty_batch();
        batch.visits = (0..5).map(|i| visit(i, 1_000 * i64::from(i))).collect();
        batch.hours = vec![hour(1)];
        store.commit(batch).unwrap();
        store.close();
        let rd = Reader::open(dir.path()).unwrap();
        let seqs = |after, upto, limit, kinds: &[&str]| {
            let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            rd.outbox_page(after, upto, limit, &kinds)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(0, 6, 100, &[]), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(seqs(2, 6, 2, &[]), vec![3, 4]);
        assert_eq!(seqs(0, 4, 100, &[]), vec![1, 2, 3, 4]);
        assert_eq!(seqs(0, 6, 100, &["hourly"]), vec![6]);
        assert_eq!(seqs(0, 5, 100, &["hourly"]), Vec::<i64>::new());
    }

    #[test]
    fn reader_refuses_a_missing_database() {
        let dir = tempfile::tempdir().unwrap();
        let e = Reader::open(&dir.path().join("nothing")).err().unwrap();
        assert!(e.to_string().contains("nothing"), "{e}");
    }
}
