//! Purchases read from the receipt printer line: stored with durability class "never dropped",
//! attributed to the visit of the member whose phone the receipt carries, and unparsed receipts
//! kept (phone-like digits masked) for the installer to fix the profile's rules.
//!
//! Attribution works from both sides, so the order in which receipts and visits reach the store
//! does not matter: a receipt looks for a stored visit of its person covering its time (± the
//! grace), and a newly stored visit takes the unattributed receipts of its person it covers.
//! A receipt usually comes first (the visit closes a visit-timeout after the shopper left); its
//! attribution then arrives as the next revision of the purchase record.

use edge_core::pos::{attribute, VisitSpan};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::StoreError;

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseItem {
    /// Article name as printed.
    pub name: String,
    /// Units.
    pub quantity: f64,
    /// Line amount, minor units.
    pub amount_minor: i64,
}

/// A parsed receipt, keyed: the member phone is already a person key.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseRow {
    /// `<source>:<transaction id>`.
    pub key: String,
    /// Source name.
    pub source: String,
    /// Transaction id as printed.
    pub transaction_id: String,
    /// Receipt time, UTC ms.
    pub time_ms: i64,
    /// Whether the time was printed on the receipt (else: when it arrived).
    pub time_from_receipt: bool,
    /// Store-local date of `time_ms`.
    pub local_date: String,
    /// Total, minor units.
    pub total_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Lines.
    pub items: Vec<PurchaseItem>,
    /// Payment method as printed.
    pub payment: Option<String>,
    /// Person key (hex) of the member phone.
    pub person_key: Option<String>,
    /// Tenant secret version of `person_key`.
    pub person_key_version: u32,
    /// QR payloads printed on the receipt.
    pub qr_codes: Vec<String>,
}

/// A receipt whose fields could not be extracted, kept for diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub struct UnparsedRow {
    /// Source name.
    pub source: String,
    /// Why (a stable reason, also counted).
    pub reason: String,
    /// When it arrived, UTC ms.
    pub received_ms: i64,
    /// Its text with every phone-like digit run masked.
    pub text: String,
}

/// One POS source's commit: what it read since the last one, and where it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct PosBatch {
    /// Source name.
    pub source: String,
    /// Parsed receipts.
    pub purchases: Vec<PurchaseRow>,
    /// Receipts that did not parse.
    pub unparsed: Vec<UnparsedRow>,
    /// The source's cursor after these receipts (replayed captures), committed with them.
    pub cursor: Option<super::Cursor>,
    /// The source's counters, absolute values.
    pub counters: Vec<(String, u64)>,
    /// Grace around a visit within which a receipt belongs to it, ms.
    pub grace_ms: i64,
    /// Wall-clock time of the commit, UTC ms.
    pub now_ms: i64,
    /// Return the stored bodies of the new purchases (for live events).
    pub want_bodies: bool,
}

/// What a POS commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosReceipt {
    /// Purchases stored.
    pub new: u64,
    /// Purchases already stored (a replayed capture).
    pub duplicate: u64,
    /// New purchases attributed to a visit at once.
    pub attributed: u64,
    /// JSON bodies of the new purchases, when asked for.
    pub bodies: Vec<String>,
}

/// The visit (key) of `person` that [`edge_core::pos::attribute`] gives `time_ms` to, among
/// the person's stored visits within `grace_ms` of it.
fn best_visit(
    tx: &Transaction<'_>,
    person: &str,
    time_ms: i64,
    grace_ms: i64,
) -> Result<Option<String>, StoreError> {
    let mut st = tx
        .prepare_cached(
            "SELECT visit_key, start_ms, end_ms FROM visits
             WHERE person_key = ?1 AND start_ms <= ?2 + ?3 AND end_ms >= ?2 - ?3",
        )
        .map_err(|e| StoreError::sqlite("preparing visit lookup for a purchase", e))?;
    let rows: Vec<(String, i64, i64)> = st
        .query_map(params![person, time_ms, grace_ms.max(0)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sqlite("looking up visits for a purchase", e))?;
    let spans: Vec<VisitSpan> = rows
        .iter()
        .map(|&(_, start_ms, end_ms)| VisitSpan { start_ms, end_ms })
        .collect();
    Ok(attribute(time_ms, grace_ms, &spans).and_then(|i| rows.into_iter().nth(i).map(|r| r.0)))
}

fn purchase_json(p: &PurchaseRow, attributed: Option<&str>) -> String {
    serde_json::json!({
        "purchase_key": p.key,
        "source": p.source,
        "transaction_id": p.transaction_id,
        "time_ms": p.time_ms,
        "total_minor": p.total_minor,
        "currency": p.currency,
        "items": p.items.iter().map(|i| serde_json::json!({
            "name": i.name,
            "quantity": i.quantity,
            "amount_minor": i.amount_minor,
        })).collect::<Vec<_>>(),
        "payment": p.payment.clone().unwrap_or_default(),
        "person_key": p.person_key.clone().unwrap_or_default(),
        "attributed_visit_key": attributed.unwrap_or_default(),
        "definitions_version": edge_core::DEFINITIONS_VERSION,
        "qr_codes": p.qr_codes,
        "time_from_receipt": p.time_from_receipt,
        "person_key_version": if p.person_key.is_some() { p.person_key_version } else { 0 },
    })
    .to_string()
}

/// Stores a POS batch in one transaction that waits for the disk (`synchronous=FULL`):
/// receipts are never dropped, and the source's cursor moves only with them.
pub(super) fn commit(conn: &mut Connection, b: &PosBatch) -> Result<PosReceipt, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(e("raising durability for receipts"))?;
    let r = commit_inner(conn, b);
    let _ = conn.execute_batch("PRAGMA synchronous = NORMAL;");
    r
}

fn commit_inner(conn: &mut Connection, b: &PosBatch) -> Result<PosReceipt, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let tx = conn.transaction().map_err(e("starting a POS commit"))?;
    let mut r = PosReceipt::default();
    for p in &b.purchases {
        let attributed = match &p.person_key {
            Some(person) => best_visit(&tx, person, p.time_ms, b.grace_ms)?,
            None => None,
        };
        let body = purchase_json(p, attributed.as_deref());
        let items: f64 = p.items.iter().map(|i| i.quantity).sum();
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO purchases (purchase_key, source, transaction_id, time_ms,
                   local_date, total_minor, currency, items, person_key, attributed_visit,
                   revision, body, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12)",
                params![
                    p.key,
                    p.source,
                    p.transaction_id,
                    p.time_ms,
                    p.local_date,
                    p.total_minor,
                    p.currency,
                    items,
                    p.person_key,
                    attributed,
                    body,
                    b.now_ms
                ],
            )
            .map_err(e("inserting a purchase"))?;
        if n == 0 {
            r.duplicate += 1;
            continue;
        }
        r.new += 1;
        r.attributed += u64::from(attributed.is_some());
        tx.execute(
            "INSERT INTO outbox (kind, record_key, revision, body, created_ms)
             VALUES ('purchase', ?1, 0, ?2, ?3)",
            params![p.key, body, b.now_ms],
        )
        .map_err(e("inserting a purchase into the outbox"))?;
        if b.want_bodies {
            r.bodies.push(body);
        }
    }
    for u in &b.unparsed {
        tx.execute(
            "INSERT INTO unparsed_receipts (source, reason, received_ms, text) VALUES (?1, ?2, ?3, ?4)",
            params![u.source, u.reason, u.received_ms, u.text],
        )
        .map_err(e("keeping an unparsed receipt"))?;
    }
    if let Some(c) = &b.cursor {
        super::write_cursor(&tx, c, b.now_ms).map_err(e("writing a POS cursor"))?;
    }
    for (name, value) in &b.counters {
        super::write_counter(&tx, &b.source, name, *value).map_err(e("writing POS counters"))?;
    }
    tx.commit().map_err(e("committing receipts"))?;
    Ok(r)
}

/// Attributes the unattributed purchases of the persons of newly stored visits (inside the
/// visits' commit): each such purchase goes to its best covering visit, as a new revision.
pub(super) fn attribute_new_visits(
    tx: &Transaction<'_>,
    persons: &[(String, i64, i64)],
    grace_ms: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut n = 0;
    for (person, start, end) in persons {
        let waiting: Vec<(String, i64, i64, String)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT purchase_key, time_ms, revision, body FROM purchases
                     WHERE person_key = ?1 AND attributed_visit IS NULL
                       AND time_ms >= ?2 - ?4 AND time_ms <= ?3 + ?4",
                )
                .map_err(e("preparing the purchase lookup"))?;
            st.query_map(params![person, start, end, grace_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(e("looking up purchases of a visit's person"))?
        };
        for (key, time_ms, revision, body) in waiting {
            let Some(visit) = best_visit(tx, person, time_ms, grace_ms)? else {
                continue;
            };
            let mut v: serde_json::Value = serde_json::from_str(&body)
                .map_err(|err| StoreError::Corrupt(format!("purchase {key} body: {err}")))?;
            v["attributed_visit_key"] = serde_json::Value::String(visit.clone());
            let body = v.to_string();
            let revision = revision + 1;
            tx.execute(
                "UPDATE purchases SET attributed_visit = ?2, revision = ?3, body = ?4
                 WHERE purchase_key = ?1",
                params![key, visit, revision, body],
            )
            .map_err(e("attributing a purchase"))?;
            tx.execute(
                "INSERT INTO outbox (kind, record_key, revision, body, created_ms)
                 VALUES ('purchase', ?1, ?2, ?3, ?4)",
                params![key, revision, body, now_ms],
            )
            .map_err(e("inserting an attributed purchase into the outbox"))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The POS figures of one local date (or of some of its local hours).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PosDay {
    /// Receipts.
    pub transactions: u64,
    /// Sum of totals, minor units.
    pub sales_minor: i64,
    /// Units sold.
    pub items: f64,
    /// Receipts attributed to a visit.
    pub attributed: u64,
    /// Currency of the receipts (the most common one).
    pub currency: Option<String>,
}

/// Reads the POS figures of `local_date`, keeping receipts whose local hour passes `keep_hour`.
pub(super) fn day(
    conn: &Connection,
    local_date: &str,
    hour_of: &dyn Fn(i64) -> bool,
) -> Result<PosDay, StoreError> {
    let e = |ctx: &'static str| move |err| StoreError::sqlite(ctx, err);
    let mut st = conn
        .prepare(
            "SELECT time_ms, total_minor, items, attributed_visit IS NOT NULL, currency
             FROM purchases WHERE local_date = ?1",
        )
        .map_err(e("preparing the purchases of a day"))?;
    let rows: Vec<(i64, i64, f64, bool, String)> = st
        .query_map([local_date], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading the purchases of a day"))?;
    let mut d = PosDay::default();
    let mut currencies: std::collections::BTreeMap<String, u64> = Default::default();
    for (time_ms, total, items, attributed, currency) in rows {
        if !hour_of(time_ms) {
            continue;
        }
        d.transactions += 1;
        d.sales_minor += total;
        d.items += items;
        d.attributed += u64::from(attributed);
        *currencies.entry(currency).or_default() += 1;
    }
    d.currency = currencies
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c);
    Ok(d)
}

/// Whether any purchase is stored at all (the report shows POS figures only then, or when a
/// POS source is configured).
pub(super) fn any(conn: &Connection) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM purchases LIMIT 1", [], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(|e| StoreError::sqlite("probing purchases", e))
}
