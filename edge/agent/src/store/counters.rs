//! Door counter intervals: stored with the counter source's state (register baselines,
//! interval keys seen, sequence numbers) and cursor in one transaction, so a restart neither
//! loses an interval nor counts a retransmission twice; each new interval or revision enters
//! the outbox as a `counter` record.

use edge_core::counter::CounterInterval;
use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// One counter source's commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterBatch {
    /// Source name.
    pub source: String,
    /// New intervals and revisions, with the store-local date each counts on.
    pub intervals: Vec<(CounterInterval, String)>,
    /// The source's state after them (JSON), when it changed.
    pub state: Option<String>,
    /// The source's cursor after them (replayed files).
    pub cursor: Option<super::Cursor>,
    /// The source's counters, absolute values.
    pub counters: Vec<(String, u64)>,
    /// Wall-clock time of the commit, UTC ms.
    pub now_ms: i64,
}

/// What a counter commit stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterReceipt {
    /// Intervals (or revisions) stored.
    pub new: u64,
    /// Already stored (same key and revision).
    pub duplicate: u64,
}

fn body(iv: &CounterInterval, source: &str, local_date: &str) -> String {
    serde_json::json!({
        "interval_key": iv.key(),
        "door": iv.door,
        "source": source,
        "start_ms": iv.start_ms,
        "end_ms": iv.end_ms,
        "ins": iv.ins,
        "outs": iv.outs,
        "line": iv.line,
        "revision": iv.revision,
        "local_date": local_date,
        "definitions_version": edge_core::DEFINITIONS_VERSION,
    })
    .to_string()
}

/// Stores a counter batch in one transaction.
pub(super) fn commit(
    conn: &mut Connection,
    b: &CounterBatch,
) -> Result<CounterReceipt, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tx = conn.transaction().map_err(e("starting a counter commit"))?;
    let mut r = CounterReceipt::default();
    for (iv, local_date) in &b.intervals {
        let key = iv.key();
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO counter_intervals (interval_key, revision, source, door,
                   line, start_ms, end_ms, local_date, ins, outs, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    key,
                    iv.revision,
                    b.source,
                    iv.door,
                    iv.line,
                    iv.start_ms,
                    iv.end_ms,
                    local_date,
                    iv.ins,
                    iv.outs,
                    b.now_ms
                ],
            )
            .map_err(e("inserting a counter interval"))?;
        if n == 0 {
            r.duplicate += 1;
            continue;
        }
        r.new += 1;
        tx.execute(
            "INSERT INTO outbox (kind, record_key, revision, body, created_ms)
             VALUES ('counter', ?1, ?2, ?3, ?4)",
            params![key, iv.revision, body(iv, &b.source, local_date), b.now_ms],
        )
        .map_err(e("inserting a counter interval into the outbox"))?;
    }
    if let Some(state) = &b.state {
        tx.execute(
            "INSERT INTO counter_state (source, state, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
            params![b.source, state, b.now_ms],
        )
        .map_err(e("writing a counter source's state"))?;
    }
    if let Some(c) = &b.cursor {
        super::write_cursor(&tx, c, b.now_ms).map_err(e("writing a counter cursor"))?;
    }
    for (name, value) in &b.counters {
        super::write_counter(&tx, &b.source, name, *value)
            .map_err(e("writing counter source counters"))?;
    }
    tx.commit().map_err(e("committing counter intervals"))?;
    Ok(r)
}

/// The stored state of a counter source (JSON), if any.
pub(super) fn state(conn: &Connection, source: &str) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT state FROM counter_state WHERE source = ?1",
        [source],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| StoreError::sqlite("reading a counter source's state", e))
}

/// Every stored revision of the intervals counting on `local_date`.
pub(super) fn on(conn: &Connection, local_date: &str) -> Result<Vec<CounterInterval>, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut st = conn
        .prepare(
            "SELECT door, line, start_ms, end_ms, ins, outs, revision FROM counter_intervals
             WHERE local_date = ?1 ORDER BY start_ms, interval_key, revision",
        )
        .map_err(e("preparing the counter intervals of a day"))?;
    let rows = st
        .query_map([local_date], |r| {
            Ok(CounterInterval {
                door: r.get(0)?,
                line: r.get(1)?,
                start_ms: r.get(2)?,
                end_ms: r.get(3)?,
                ins: r.get(4)?,
                outs: r.get(5)?,
                revision: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading the counter intervals of a day"));
    rows
}

/// Whether any counter interval is stored.
pub(super) fn any(conn: &Connection) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM counter_intervals LIMIT 1", [], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(|e| StoreError::sqlite("probing counter intervals", e))
}

/// The latest store-local date with a counter interval.
pub(super) fn latest_date(conn: &Connection) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT max(local_date) FROM counter_intervals", [], |r| {
        r.get(0)
    })
    .map_err(|e| StoreError::sqlite("reading the latest counter date", e))
}
