//! What every listener of the agent shares so that no peer can starve it: connection caps (in
//! total and per peer address), an idle timeout on every accepted socket, and the hardened
//! HTTP/1 serving of the portal webhook and the counter push listener (a deadline for the
//! request head, one for the whole request including its body, and a graceful stop).
//!
//! The caps sit well below systemd's default of 1,024 descriptors: the webhook, the counter
//! listener, the POS passthrough and the pull API together cannot use up the descriptors the
//! store and the sources need. A connection over a cap is closed at once and counted
//! (`connections_refused`), a socket that goes quiet is closed and counted
//! (`connections_timed_out`): half-open connections (slowloris) cost a slot for at most the
//! idle timeout, and nothing else.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::SourceStats;

/// How one listener limits its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; one more is closed at once.
    pub max_connections: usize,
    /// Connections open at once from one peer address.
    pub max_per_peer: usize,
    /// Longest a socket may go without a byte read or written before it is closed.
    pub idle_timeout: Duration,
    /// Longest the head of an HTTP request may take to arrive (HTTP listeners only).
    pub header_timeout: Duration,
    /// Longest one HTTP request may take, body included, before it is answered 408.
    pub request_timeout: Duration,
}

/// The limits of the webhook and the counter push listener: a portal or a door counter sends
/// a small request every few seconds at most, from one or a few addresses.
pub const HTTP_LIMITS: Limits = Limits {
    max_connections: 128,
    max_per_peer: 32,
    idle_timeout: Duration::from_secs(20),
    header_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(15),
};

/// The addresses the agent's own listeners are bound to (the pull API, webhooks, the counter
/// listener, passthroughs), for [`is_own_listener`].
static OWN: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

/// Records that one of the agent's listeners is bound to `addr`.
pub fn register_own(addr: SocketAddr) {
    let mut own = OWN.lock().unwrap_or_else(|p| p.into_inner());
    if !own.contains(&addr) {
        // Listeners restarted by config changes bind anew; the oldest addresses go first.
        if own.len() >= 64 {
            own.remove(0);
        }
        own.push(addr);
    }
}

/// Whether a connection from `local` to `peer` reaches one of the agent's own listeners: the
/// peer is this host (it has the connection's local address, as every connection to itself
/// does) and its port is one a listener of the agent is bound to. A passthrough that would
/// relay to it is refused, whatever its config said (a listener on port 0 has its port only
/// once bound).
pub fn is_own_listener(local: SocketAddr, peer: SocketAddr) -> bool {
    let own = OWN.lock().unwrap_or_else(|p| p.into_inner());
    (peer.ip() == local.ip() || peer.ip().is_loopback())
        && own.iter().any(|a| {
            a.port() == peer.port()
                && (a.ip() == peer.ip() || a.ip().is_unspecified() || peer.ip().is_loopback())
        })
}

/// How long a stop waits for HTTP connections to finish their request.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of descriptors, say) before the next one, so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connection slots: a total cap and a cap per peer address. The map holds at most
/// `max_connections` entries (one per peer with an open connection).
#[derive(Debug)]
pub struct Slots {
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener is at `max_connections`.
    Full,
    /// This peer is at `max_per_peer`.
    PeerFull,
}

impl Refused {
    /// The counter it is counted under.
    pub fn counter(self) -> &'static str {
        match self {
            Refused::Full => "connections_refused",
            Refused::PeerFull => "connections_refused_peer",
        }
    }
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    peer: IpAddr,
}

impl Slots {
    /// Empty slots under `limits`.
    pub fn new(limits: Limits) -> Arc<Slots> {
        Arc::new(Slots {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for a connection from `peer`, or says why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *open;
        if *total >= self.limits.max_connections {
            return Err(Refused::Full);
        }
        let n = per_peer.entry(peer).or_insert(0);
        if *n >= self.limits.max_per_peer {
            return Err(Refused::PeerFull);
        }
        *n += 1;
        *total += 1;
        Ok(Slot {
            slots: self.clone(),
            peer,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().map_or(0, |o| o.0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// A socket that fails with `TimedOut` once it has gone `limit` without a byte read or
/// written, in either direction (a slow peer that trickles a byte now and then keeps it open
/// only as long as the HTTP deadlines allow).
pub struct Idle<T> {
    inner: T,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    /// The connection's slot, freed with the socket (for servers that take the socket alone).
    _slot: Option<Slot>,
}

impl<T> Idle<T> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: T, limit: Duration) -> Idle<T> {
        Idle {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            _slot: None,
        }
    }

    /// [`Idle::new`], holding `slot` for as long as the socket lives.
    pub fn with_slot(inner: T, limit: Duration, slot: Slot) -> Idle<T> {
        Idle {
            _slot: Some(slot),
            ..Idle::new(inner, limit)
        }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn progress(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.limit);
    }

    /// What a read, write or flush of `inner` gives: done (the clock starts again), or while
    /// it is pending, an error once the limit has passed.
    fn judge<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.progress();
                Poll::Ready(r)
            }
            Poll::Pending if self.timer.as_mut().poll(cx).is_ready() => Poll::Ready(Err(
                io::Error::new(io::ErrorKind::TimedOut, "no data for the idle timeout"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.judge(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.judge(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.judge(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Accepts connections on `listener` until `cancel`, admitting each under `slots`; calls
/// `serve` for every admitted one (with its slot, to be held while it lasts). A failed accept
/// (out of descriptors) is counted (`accept_errors`) and retried after a pause.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    slots: Arc<Slots>,
    stats: Arc<SourceStats>,
    what: &'static str,
    cancel: CancellationToken,
    tracker: TaskTracker,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Slot) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // One warning per burst of refusals: an attack must not fill the log.
    let mut refused_since_log: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    stats.count("accept_errors", 1);
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        match slots.admit(peer.ip()) {
            Ok(slot) => {
                if refused_since_log > 0 {
                    tracing::warn!(
                        listener = what,
                        refused = refused_since_log,
                        "connections were refused at the connection caps"
                    );
                    refused_since_log = 0;
                }
                let _ = stream.set_nodelay(true);
                tracker.spawn(serve(stream, peer, slot));
            }
            Err(why) => {
                stats.count(why.counter(), 1);
                refused_since_log += 1;
                if refused_since_log == 1 {
                    tracing::warn!(
                        listener = what,
                        open = slots.open(),
                        "connection refused at the connection caps"
                    );
                }
                drop(stream);
            }
        }
    }
}

/// Serves `app` over HTTP/1.1 on `listener` under `limits` until `cancel`, then lets open
/// requests finish for a few seconds. Requests longer than `limits.request_timeout` (a body
/// trickled byte by byte, say) are answered 408 and counted (`requests_timed_out`).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<SourceStats>,
    what: &'static str,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let deadline = limits.request_timeout;
    let timed_stats = stats.clone();
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let stats = timed_stats.clone();
            async move {
                match tokio::time::timeout(deadline, next.run(req)).await {
                    Ok(resp) => resp,
                    Err(_) => {
                        stats.count("requests_timed_out", 1);
                        axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::REQUEST_TIMEOUT,
                            "the request took too long",
                        ))
                    }
                }
            }
        },
    ));
    let service = TowerToHyperService::new(app);
    let slots = Slots::new(limits);
    let conns = TaskTracker::new();
    let stop = cancel.clone();
    let (conn_tracker, conn_stats) = (conns.clone(), stats.clone());
    accept_loop(
        listener,
        slots,
        stats,
        what,
        cancel,
        tracker,
        move |stream, _peer, slot| {
            let service = service.clone();
            let stop = stop.clone();
            let stats = conn_stats.clone();
            let io = TokioIo::new(Idle::new(stream, limits.idle_timeout));
            let token = conn_tracker.token();
            async move {
                let _slot = slot;
                let _token = token;
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .max_buf_size(64 * 1024)
                    .serve_connection(io, service);
                tokio::pin!(conn);
                let result = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        match tokio::time::timeout(STOP_GRACE, conn.as_mut()).await {
                            Ok(r) => r,
                            Err(_) => return,
                        }
                    }
                };
                if let Err(e) = result {
                    if is_timeout(&e) {
                        stats.count("connections_timed_out", 1);
                    }
                    tracing::debug!(listener = what, error = %e, "HTTP connection ended with an error");
                }
            }
        },
    )
    .await;
    conns.close();
    let _ = tokio::time::timeout(STOP_GRACE, conns.wait()).await;
}

/// Whether a connection ended on one of our timeouts (idle, or the request head's).
fn is_timeout(e: &hyper::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_peer: usize) -> Limits {
        Limits {
            max_connections: total,
            max_per_peer: per_peer,
            ..HTTP_LIMITS
        }
    }

    #[test]
    fn slots_cap_the_total_and_each_peer_and_free_on_drop() {
        let slots = Slots::new(limits(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let a1 = slots.admit(a).unwrap();
        let a2 = slots.admit(a).unwrap();
        assert_eq!(slots.admit(a).unwrap_err(), Refused::PeerFull);
        let b1 = slots.admit(b).unwrap();
        assert_eq!(slots.admit(c).unwrap_err(), Refused::Full);
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert_eq!(slots.open(), 2);
        let c1 = slots.admit(c).unwrap();
        drop((a2, b1, c1));
        assert_eq!(slots.open(), 0);
        // Peers without connections leave the map: it never outgrows the open connections.
        assert!(slots.open.lock().unwrap().1.is_empty());
    }

    #[tokio::test]
    async fn an_idle_socket_times_out_and_progress_keeps_it_open() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(64);
        let mut idle = Idle::new(server, Duration::from_millis(200));
        let (_rd, mut wr) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(80)).await;
                wr.write_all(b"x").await.unwrap();
            }
            // Then silence, with the write half kept open.
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(wr);
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        let err = loop {
            match idle.read(&mut buf).await {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        // Five bytes 80 ms apart kept it open for 400 ms, longer than the limit.
        assert_eq!(got, b"xxxxx");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        writer.abort();
    }
}
