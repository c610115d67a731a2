//! TCP 9100 passthrough for network receipt printers, which cannot be tapped with a Y-cable:
//! the POS prints to the gateway, the gateway forwards every byte to the real printer (and the
//! printer's status replies back), and decodes a copy.
//!
//! The printer's availability is mirrored, not hidden: when it cannot be reached the POS
//! connection is closed, so the POS shows the same "printer offline" it would without us. Bytes
//! are forwarded before they are decoded, so storing receipts never delays printing.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::source::PosContext;
use crate::listen::{accept_loop, Limits, Slots};
use edge_wire::escpos::{RawReceipt, ReceiptDecoder};

/// How long connecting to the printer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Receipts waiting for the store, for all connections of a passthrough. The copy loop never
/// waits on the store (printing comes first): while the store cannot write (a full disk) the
/// receipts wait here, and beyond this many one is dropped and counted (`receipts_dropped`;
/// it was printed).
const RECEIPT_QUEUE: usize = 4096;

/// Binds the passthrough's listener (so a bad address fails the start) and serves it until
/// cancelled.
pub async fn spawn(
    ctx: PosContext,
    listen: std::net::SocketAddr,
    forward: String,
    max_connections: usize,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("source {}: cannot listen on {listen}: {e}", ctx.src.name))?;
    let local = listener.local_addr()?;
    crate::listen::register_own(local);
    tracing::info!(source = %ctx.src.name, listen = %local, printer = %forward, "POS passthrough listening");
    // One committer for the source, on a blocking thread: a connection hands its receipts
    // over and ends when the POS disconnects, whatever the store is doing.
    let (tx, mut rx) = mpsc::channel::<RawReceipt>(RECEIPT_QUEUE);
    {
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        tracker.spawn_blocking(move || {
            while let Some(r) = rx.blocking_recv() {
                let mut batch = vec![r];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let _ = ctx.commit(&batch, None, &cancel);
            }
        });
    }
    let t = tracker.clone();
    tracker.spawn(serve(
        ctx,
        listener,
        forward,
        max_connections,
        tx,
        cancel,
        t,
    ));
    Ok(local)
}

async fn serve(
    ctx: PosContext,
    listener: TcpListener,
    forward: String,
    max_connections: usize,
    receipts: mpsc::Sender<RawReceipt>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    // The POS is one address: the per-peer cap is the listener's own.
    let slots = Slots::new(Limits {
        max_connections,
        max_per_peer: max_connections,
        idle_timeout: ctx.src.idle_timeout,
        ..crate::listen::HTTP_LIMITS
    });
    let (c, t, stop) = (ctx.clone(), tracker.clone(), cancel.clone());
    accept_loop(
        listener,
        slots,
        ctx.stats.clone(),
        "POS passthrough",
        cancel,
        tracker,
        move |pos, _peer, slot| {
            let (ctx, forward, cancel, t) = (c.clone(), forward.clone(), stop.clone(), t.clone());
            let receipts = receipts.clone();
            async move {
                connection(ctx, pos, &forward, receipts, cancel, &t).await;
                drop(slot);
            }
        },
    )
    .await;
    let _ = tokio::task::spawn_blocking(move || ctx.save_counters()).await;
}

/// Forwards one POS connection to the printer and decodes what the POS sends.
async fn connection(
    ctx: PosContext,
    mut pos: TcpStream,
    forward: &str,
    receipts: mpsc::Sender<RawReceipt>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let printer = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(forward)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            ctx.stats.count("printer_unreachable", 1);
            tracing::warn!(source = %ctx.src.name, printer = %forward, error = %e, "printer unreachable; closing the POS connection");
            let _ = pos.shutdown().await;
            return;
        }
        Err(_) => {
            ctx.stats.count("printer_unreachable", 1);
            tracing::warn!(source = %ctx.src.name, printer = %forward, "printer did not answer in time; closing the POS connection");
            let _ = pos.shutdown().await;
            return;
        }
    };
    // Never a relay to the agent's own listeners (around their tokens), whatever the config
    // named: the printer's address is checked once connected.
    if let (Ok(l), Ok(p)) = (printer.local_addr(), printer.peer_addr()) {
        if crate::listen::is_own_listener(l, p) {
            ctx.stats.count("relay_refused", 1);
            tracing::warn!(source = %ctx.src.name, "the passthrough's printer address is one of the agent's own listeners; connection refused");
            let _ = pos.shutdown().await;
            return;
        }
    }
    ctx.stats.count("connections", 1);
    let (mut pos_rd, mut pos_wr) = pos.into_split();
    let (mut pr_rd, mut pr_wr) = printer.into_split();
    // Printer → POS: status replies (DLE EOT answers, paper-out) go back untouched.
    let back = tracker.spawn(async move {
        let _ = tokio::io::copy(&mut pr_rd, &mut pos_wr).await;
        let _ = pos_wr.shutdown().await;
    });
    let mut dec = ReceiptDecoder::new(ctx.src.profile.decoder.clone());
    let gap = ctx.src.idle_gap;
    let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
    // A POS that sends nothing for the idle timeout is gone or stalled: its slot is freed.
    let idle_limit = ctx.src.idle_timeout;
    let mut last_byte = tokio::time::Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(gap.min(idle_limit), pos_rd.read(&mut buf)) => r,
        };
        match read {
            Err(_) => {
                if let Some(r) = dec.idle(chrono::Utc::now().timestamp_millis(), gap_ms) {
                    out.push(r);
                }
                if last_byte.elapsed() >= idle_limit {
                    ctx.stats.count("connections_timed_out", 1);
                    tracing::debug!(source = %ctx.src.name, "POS connection idle; closed");
                    break;
                }
            }
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                last_byte = tokio::time::Instant::now();
                let chunk = buf.get(..n).unwrap_or_default();
                if let Err(e) = pr_wr.write_all(chunk).await {
                    ctx.stats.count("printer_write_errors", 1);
                    tracing::warn!(source = %ctx.src.name, error = %e, "printer connection lost mid-stream");
                    // Still decode what the POS sent: it believes it printed.
                }
                ctx.stats
                    .frames_read
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                dec.push(chunk, chrono::Utc::now().timestamp_millis(), &mut out);
            }
            Ok(Err(e)) => {
                ctx.stats
                    .read_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(source = %ctx.src.name, error = %e, "POS connection error");
                break;
            }
        }
        hand_over(&ctx, &receipts, &mut out);
    }
    if let Some(r) = dec.finish() {
        out.push(r);
    }
    hand_over(&ctx, &receipts, &mut out);
    let _ = pr_wr.shutdown().await;
    back.abort();
}

/// Gives decoded receipts to the source's committer without waiting: a full queue (the store
/// has not written for RECEIPT_QUEUE receipts) drops one and counts it.
fn hand_over(ctx: &PosContext, to: &mpsc::Sender<RawReceipt>, out: &mut Vec<RawReceipt>) {
    for r in out.drain(..) {
        if let Err(mpsc::error::TrySendError::Full(_)) = to.try_send(r) {
            ctx.stats.count("receipts_dropped", 1);
            tracing::warn!(source = %ctx.src.name, "the receipt queue is full (the store is not writing); a receipt was dropped");
        }
    }
}
