//! The POS source's run loops — a serial tap (reconnecting with backoff when the adapter goes
//! away), a capture file (resumed from its committed byte offset), a TCP passthrough in front of
//! a network printer — and what they share: receipts decoded from the byte stream, fields
//! extracted by the profile's rules, the member phone turned into a person key at once, and
//! every receipt committed (`synchronous=FULL`) before the source moves on.
//!
//! A receipt whose fields cannot be extracted is counted under `unparsed_<reason>` and kept
//! with its phone-like digit runs masked; the stream goes on at the next receipt boundary.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use edge_core::person::PersonKeyer;
use edge_core::phone::Region;
use edge_core::pos::{ExtractContext, Transaction};
use edge_core::LocalClock;
use edge_proto::v1 as pb;
use edge_wire::escpos::{RawReceipt, ReceiptDecoder};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::config::PosSource;
use crate::stats::SourceStats;
use crate::store::purchases::{PosBatch, PurchaseItem, PurchaseRow, UnparsedRow};
use crate::store::{Cursor, Store};
use crate::sync::live::{self, LiveHub};

/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;
/// Receipts of a replayed capture committed per transaction.
const FILE_BATCH: usize = 256;
/// A serial read returns after this long without data, to check the idle gap and shutdown.
const SERIAL_POLL: Duration = Duration::from_millis(200);
/// Reconnect backoff of a serial port that went away: from this …
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// … doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A failed commit is retried this often (the receipts stay in memory meanwhile).
const COMMIT_RETRY: Duration = Duration::from_secs(1);

/// What every POS loop needs to turn receipts into stored purchases.
#[derive(Clone)]
pub struct PosContext {
    /// The source.
    pub src: PosSource,
    /// Member phone → person key.
    pub persons: Arc<PersonKeyer>,
    /// Region of numbers printed without a country code.
    pub region: Region,
    /// Store clock (receipts print local time).
    pub clock: LocalClock,
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<SourceStats>,
    /// Attribution grace, ms.
    pub grace_ms: i64,
    /// Live `purchase` events, when serving.
    pub hub: Option<Arc<LiveHub>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Replaces every digit of a phone-like run (7 or more digits, possibly split by single
/// spaces, dashes or dots, or led by `+`) with `*`, so kept receipt text cannot carry a phone
/// number. Dates (`2026-11-20`, `2026/11/20`) and times (`14:03:11`) are left readable: they
/// break runs instead of joining them.
pub fn mask_phone_like(text: &str) -> String {
    static KEEP: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let keep = KEEP.get_or_init(|| {
        regex::Regex::new(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}:\d{2}(:\d{2})?\b").ok()
    });
    // Byte ranges of dates and times, which stay as they are.
    let kept: Vec<(usize, usize)> = keep
        .as_ref()
        .map(|re| re.find_iter(text).map(|m| (m.start(), m.end())).collect())
        .unwrap_or_default();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let protected = |k: usize| {
        chars
            .get(k)
            .is_some_and(|(b, _)| kept.iter().any(|(s, e)| (*s..*e).contains(b)))
    };
    let digit_at =
        |k: usize| chars.get(k).is_some_and(|(_, c)| c.is_ascii_digit()) && !protected(k);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&(_, c)) = chars.get(i) {
        if !(digit_at(i) || (c == '+' && digit_at(i + 1))) {
            out.push(c);
            i += 1;
            continue;
        }
        // The run: digits, a leading '+', and single separators between digits.
        let mut j = i;
        let mut digits = 0;
        while let Some(&(_, d)) = chars.get(j) {
            if digit_at(j) {
                digits += 1;
                j += 1;
            } else if (d == '+' && j == i)
                || (j > i && [' ', '-', '.'].contains(&d) && digit_at(j + 1))
            {
                j += 1;
            } else {
                break;
            }
        }
        for &(_, d) in chars.get(i..j).unwrap_or_default() {
            out.push(if digits >= 7 && d.is_ascii_digit() {
                '*'
            } else {
                d
            });
        }
        i = j;
    }
    out
}

impl PosContext {
    /// Extracts a receipt: a purchase row, or an unparsed row with its reason.
    fn extract(&self, r: &RawReceipt) -> Result<PurchaseRow, UnparsedRow> {
        let ctx = ExtractContext {
            keyer: &self.persons,
            region: self.region,
            clock: &self.clock,
            received_ms: r.last_ms,
        };
        match self.src.profile.rules.extract(&r.lines, &ctx) {
            Ok(t) => Ok(self.row(t, r)),
            Err(e) => Err(UnparsedRow {
                source: self.src.name.clone(),
                reason: e.reason().to_string(),
                received_ms: r.last_ms,
                text: mask_phone_like(&r.lines.join("\n")),
            }),
        }
    }

    fn row(&self, t: Transaction, r: &RawReceipt) -> PurchaseRow {
        if let Some(issue) = t.phone_issue {
            self.stats.count(&format!("member_phone_{issue}"), 1);
        }
        if let Some(why) = t.time_refused {
            self.stats.count(&format!("printed_{why}"), 1);
        }
        PurchaseRow {
            key: format!("{}:{}", self.src.name, t.txn_id),
            source: self.src.name.clone(),
            local_date: self.clock.date(t.time_ms).to_string(),
            time_ms: t.time_ms,
            time_from_receipt: t.time_from_receipt,
            total_minor: t.total_minor,
            currency: t.currency,
            items: t
                .items
                .into_iter()
                .map(|i| PurchaseItem {
                    name: i.name,
                    quantity: f64::from(i.qty),
                    amount_minor: i.amount_minor,
                })
                .collect(),
            payment: t.payment,
            person_key: t.person.map(|p| p.to_hex()),
            person_key_version: self.persons.version(),
            qr_codes: r.qr.clone(),
            transaction_id: t.txn_id,
        }
    }

    /// Extracts and commits `receipts` (with the source's cursor, for a capture), retrying
    /// while the store fails and the source is not cancelled. Blocking.
    pub fn commit(
        &self,
        receipts: &[RawReceipt],
        cursor: Option<Cursor>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut purchases = Vec::new();
        let mut unparsed = Vec::new();
        for r in receipts {
            for (name, n) in [
                ("garbage_bytes", u64::from(r.issues.garbage_bytes)),
                ("unknown_commands", u64::from(r.issues.unknown_commands)),
                ("undecodable_chars", u64::from(r.issues.undecodable)),
                (
                    "unmapped_code_tables",
                    u64::from(r.issues.unmapped_code_tables),
                ),
            ] {
                if n > 0 {
                    self.stats.count(name, n);
                }
            }
            match self.extract(r) {
                Ok(p) => purchases.push(p),
                Err(u) => {
                    self.stats.count(&format!("unparsed_{}", u.reason), 1);
                    unparsed.push(u);
                }
            }
        }
        self.stats
            .sightings
            .fetch_add(receipts.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if purchases.is_empty() && unparsed.is_empty() && cursor.is_none() {
            return Ok(());
        }
        let want_bodies = self.hub.as_ref().is_some_and(|h| h.subscribers() > 0);
        let mut failures = 0u32;
        loop {
            let batch = PosBatch {
                source: self.src.name.clone(),
                purchases: purchases.clone(),
                unparsed: unparsed.clone(),
                cursor: cursor.clone(),
                counters: self.stats.values(),
                grace_ms: self.grace_ms,
                now_ms: now_ms(),
                want_bodies,
            };
            match self.store.pos(batch) {
                Ok(r) => {
                    if let Some(hub) = &self.hub {
                        for body in &r.bodies {
                            match serde_json::from_str::<pb::Purchase>(body) {
                                Ok(p) => hub.publish(live::purchase(p)),
                                Err(e) => {
                                    tracing::warn!(error = %e, "stored purchase body does not parse; no live event")
                                }
                            }
                        }
                    }
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::error!(source = %self.src.name, error = %e, receipts = receipts.len(), "cannot store receipts; retrying (they are kept in memory)");
                    }
                    if cancel.is_cancelled() {
                        return Err(e).context(format!(
                            "source {}: {} receipts not stored at shutdown",
                            self.src.name,
                            receipts.len()
                        ));
                    }
                    std::thread::sleep(COMMIT_RETRY);
                }
            }
        }
    }
}

impl PosContext {
    /// Stores the source's counters (at shutdown: a live line may have counted
    /// disconnects or refused connections since its last receipt).
    pub fn save_counters(&self) {
        let batch = PosBatch {
            source: self.src.name.clone(),
            purchases: Vec::new(),
            unparsed: Vec::new(),
            cursor: None,
            counters: self.stats.values(),
            grace_ms: self.grace_ms,
            now_ms: now_ms(),
            want_bodies: false,
        };
        if let Err(e) = self.store.pos(batch) {
            tracing::warn!(source = %self.src.name, error = %e, "cannot store the source's counters");
        }
    }
}

/// Identity of a capture file: a hash of its first 4 KiB (a new capture in the same place
/// starts over, an appended one resumes).
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(4096);
    f.by_ref().take(4096).read_to_end(&mut head)?;
    Ok(hex::encode(
        Sha256::digest(&head).get(..8).unwrap_or_default(),
    ))
}

/// Replays a capture file from `start` (a committed offset) to its end. Receipts carry the
/// file's modification time as their arrival time (a capture has no timing of its own).
pub fn replay_file(
    ctx: &PosContext,
    path: &Path,
    fingerprint: &str,
    start: u64,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("opening POS capture {}", path.display()))?;
    let len = f.metadata()?.len();
    let mtime_ms = f
        .metadata()?
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(now_ms, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let start = if start > len { 0 } else { start };
    f.seek(SeekFrom::Start(start))?;
    let mut dec = ReceiptDecoder::with_offset(ctx.src.profile.decoder.clone(), start);
    let mut buf = vec![0u8; CHUNK];
    let mut pending: Vec<RawReceipt> = Vec::new();
    let cursor = |dec: &ReceiptDecoder| Cursor {
        source: ctx.src.name.clone(),
        fingerprint: fingerprint.to_string(),
        position: dec.committed_offset(),
    };
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let n = match f.read(&mut buf) {
            Ok(0) => {
                if let Some(r) = dec.finish() {
                    pending.push(r);
                }
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                ctx.stats
                    .read_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        };
        ctx.stats
            .frames_read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        dec.push(buf.get(..n).unwrap_or_default(), mtime_ms, &mut pending);
        if pending.len() >= FILE_BATCH {
            ctx.commit(&pending, Some(cursor(&dec)), cancel)?;
            pending.clear();
        }
    }
    ctx.commit(&pending, Some(cursor(&dec)), cancel)?;
    Ok(())
}

/// Sleeps up to `d`, returning early (true) when cancelled. (Blocking source threads.)
pub(crate) fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if cancel.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    cancel.is_cancelled()
}

/// Reads a serial tap until cancelled. When the port goes away (USB unplug, cable pulled) it
/// is reopened with backoff; the decoder keeps its state, so a receipt completely received
/// before is never lost, and one cut short ends at the idle gap and is counted as unparsed.
pub fn read_serial(ctx: &PosContext, port: &Path, cancel: &CancellationToken) {
    let mut dec = ReceiptDecoder::new(ctx.src.profile.decoder.clone());
    let gap_ms = i64::try_from(ctx.src.idle_gap.as_millis()).unwrap_or(i64::MAX);
    let mut backoff = BACKOFF_MIN;
    let mut buf = vec![0u8; CHUNK];
    let mut out: Vec<RawReceipt> = Vec::new();
    let mut connected_once = false;
    let stats = &ctx.stats;
    'outer: while !cancel.is_cancelled() {
        let mut tty = match ctx.src.serial.open(port, ctx.src.serial.baud, SERIAL_POLL) {
            Ok(t) => t,
            Err(e) => {
                stats.count("open_failures", 1);
                if backoff == BACKOFF_MIN {
                    tracing::warn!(source = %ctx.src.name, port = %port.display(), error = %e, "cannot open the serial port; retrying with backoff");
                }
                // The idle gap still runs while the port is away.
                if let Some(r) = dec.idle(now_ms(), gap_ms) {
                    let _ = ctx.commit(&[r], None, cancel);
                }
                if sleep_or_cancel(backoff, cancel) {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if connected_once {
            stats.count("reconnects", 1);
        }
        connected_once = true;
        backoff = BACKOFF_MIN;
        tracing::info!(source = %ctx.src.name, port = %port.display(), baud = ctx.src.serial.baud, "serial port open");
        loop {
            if cancel.is_cancelled() {
                break 'outer;
            }
            match tty.read(&mut buf) {
                Ok(0) => {
                    // End of file on a tty: the other end hung up.
                    stats.count("disconnects", 1);
                    tracing::warn!(source = %ctx.src.name, "serial port hung up; reopening");
                    break;
                }
                Ok(n) => {
                    stats
                        .frames_read
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    dec.push(buf.get(..n).unwrap_or_default(), now_ms(), &mut out);
                    if !out.is_empty() {
                        let _ = ctx.commit(&out, None, cancel);
                        out.clear();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    if let Some(r) = dec.idle(now_ms(), gap_ms) {
                        let _ = ctx.commit(&[r], None, cancel);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    stats.count("disconnects", 1);
                    stats
                        .read_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(source = %ctx.src.name, error = %e, "serial port went away; reopening");
                    break;
                }
            }
        }
        drop(tty);
        // Give a re-plugged adapter a moment to settle.
        if sleep_or_cancel(BACKOFF_MIN, cancel) {
            break;
        }
    }
    // Shutdown: what was received of an unfinished receipt is kept (it ends here).
    if let Some(r) = dec.finish() {
        // Cancelled by now: one attempt, no retries.
        if let Err(e) = ctx.commit(&[r], None, cancel) {
            tracing::error!(error = %format!("{e:#}"), "last receipt not stored");
        }
    }
    ctx.save_counters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_like_runs_are_masked_and_short_numbers_kept() {
        let table = [
            ("会员: 13812345678", "会员: ***********"),
            ("Tel +86 138 1234 5678 ok", "Tel +** *** **** **** ok"),
            ("0086-138-1234-5678", "****-***-****-****"),
            ("TOTAL 12.50", "TOTAL 12.50"),
            ("Qty 3 x 4.99", "Qty 3 x 4.99"),
            ("2026-11-20 14:03:11", "2026-11-20 14:03:11"),
            ("No. 1234567", "No. *******"),
            ("a+b 12 345", "a+b 12 345"),
            (
                "2026/11/20 09:15 13812345678",
                "2026/11/20 09:15 ***********",
            ),
            ("", ""),
        ];
        for (text, want) in table {
            assert_eq!(mask_phone_like(text), want, "{text:?}");
        }
    }
}
