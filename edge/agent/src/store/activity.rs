//! When the store last heard from its tills and door counters: the newest receipt time and the
//! newest counter interval end (overall and per counter source), for the management channel's
//! telemetry and its `counter_silent` alert.
//!
//! Both look only at the newest store-local date and the day before it (through the tables'
//! date indexes), so they stay cheap however much history is kept; a source whose newest
//! interval is older than that is reported as having none.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

/// The newest receipt and counter interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Time of the newest receipt, UTC ms.
    pub last_receipt_ms: Option<i64>,
    /// End of the newest counter interval, UTC ms.
    pub last_interval_end_ms: Option<i64>,
    /// Per counter source: the end of its newest interval, UTC ms.
    pub interval_end_by_source: Vec<(String, i64)>,
}

/// Reads the newest receipt time and counter interval ends.
pub(super) fn latest(conn: &Connection) -> Result<Activity, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let last_receipt_ms: Option<i64> = conn
        .query_row(
            "SELECT MAX(time_ms) FROM purchases
             WHERE local_date >= date((SELECT MAX(local_date) FROM purchases), '-1 day')",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(e("reading the newest receipt"))?
        .flatten();
    let mut st = conn
        .prepare(
            "SELECT source, MAX(end_ms) FROM counter_intervals
             WHERE local_date >= date((SELECT MAX(local_date) FROM counter_intervals), '-1 day')
             GROUP BY source ORDER BY source",
        )
        .map_err(e("reading the newest counter intervals"))?;
    let interval_end_by_source: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(e("reading the newest counter intervals"))?
        .collect::<Result<_, _>>()
        .map_err(e("reading the newest counter intervals"))?;
    Ok(Activity {
        last_receipt_ms,
        last_interval_end_ms: interval_end_by_source.iter().map(|(_, t)| *t).max(),
        interval_end_by_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_receipt_and_intervals() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE purchases (time_ms INTEGER, local_date TEXT);
             CREATE TABLE counter_intervals (source TEXT, end_ms INTEGER, local_date TEXT);",
        )
        .unwrap();
        assert_eq!(latest(&conn).unwrap(), Activity::default());
        conn.execute_batch(
            "INSERT INTO purchases VALUES (100, '2026-11-19'), (300, '2026-11-20'), (200, '2026-11-20');
             INSERT INTO counter_intervals VALUES ('a', 50, '2026-11-01'), ('b', 900, '2026-11-20'),
               ('b', 800, '2026-11-20'), ('c', 700, '2026-11-19');",
        )
        .unwrap();
        assert_eq!(
            latest(&conn).unwrap(),
            Activity {
                last_receipt_ms: Some(300),
                last_interval_end_ms: Some(900),
                interval_end_by_source: vec![("b".into(), 900), ("c".into(), 700)],
            }
        );
    }
}
