//! The pull API (design §8): the cloud pulls outbox records with a cursor and acks them, over
//! gRPC with bearer tokens and optional (m)TLS, plus `grpc.health.v1` and server reflection.

pub mod config;
pub mod cursor;
pub mod live;
pub mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use edge_proto::v1::sync_server::SyncServer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::listen::{Idle, Limits, Slots};
use crate::store::{Reader, Store};
use config::{SyncConfig, Token};
use service::{ClientName, SyncService};

/// Name under which health reports the Sync service.
pub const SERVICE_NAME: &str = "storeedge.v1.Sync";
/// How often health re-checks that the store can be read.
const HEALTH_PROBE: Duration = Duration::from_secs(1);

/// Checks `authorization: Bearer <token>` against the configured tokens (none configured:
/// everyone is "anonymous") and records the client's name.
fn authorize(tokens: &[Token], mut req: Request<()>) -> Result<Request<()>, Status> {
    if tokens.is_empty() {
        return Ok(req);
    }
    let given = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
    let name = config::find_token(tokens, given)
        .map(|t| t.name.clone())
        .ok_or_else(|| Status::unauthenticated("unknown token"))?;
    req.extensions_mut().insert(ClientName(name));
    Ok(req)
}

/// Binds the listener (so a busy port fails here, not later) and serves until `cancel` on
/// `tracker`. Returns the bound address.
pub async fn spawn(
    cfg: &SyncConfig,
    data_dir: PathBuf,
    store: Arc<Store>,
    live: Arc<live::LiveHub>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the pull API to {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    crate::listen::register_own(addr);

    let (health, health_svc) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(edge_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building gRPC reflection")?;

    let tokens = Arc::new(cfg.tokens.clone());
    let svc = SyncService::new(data_dir.clone(), store, live, cancel.clone());
    let sync_tokens = tokens.clone();
    let sync = SyncServer::with_interceptor(svc, move |req| authorize(&sync_tokens, req));

    // HTTP/2 keep-alive finds dead peers; the stream caps bound what one connection (and one
    // client that opens many) can hold; tcp keep-alive catches half-open sockets.
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize);
    if let Some(tls) = &cfg.tls {
        let mut t =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            t = t.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(t)
            .context("configuring TLS for the pull API")?;
    }
    // Health and reflection: open on loopback (local probes), behind the tokens elsewhere.
    let open = cfg.listen.ip().is_loopback();
    let (t1, t2) = (tokens.clone(), tokens);
    let router = builder
        .add_optional_service(open.then_some(health_svc.clone()))
        .add_optional_service((!open).then(|| {
            tonic::service::interceptor::InterceptedService::new(health_svc, move |req| {
                authorize(&t1, req)
            })
        }))
        .add_optional_service(open.then_some(reflection.clone()))
        .add_optional_service((!open).then(|| {
            tonic::service::interceptor::InterceptedService::new(reflection, move |req| {
                authorize(&t2, req)
            })
        }))
        .add_service(sync);

    // Health: SERVING while the store can be read, NOT_SERVING otherwise.
    let probe_cancel = cancel.clone();
    tracker.spawn(async move {
        let mut last = None;
        loop {
            let dir = data_dir.clone();
            let ok = tokio::task::spawn_blocking(move || {
                Reader::open(&dir).and_then(|r| r.outbox_state()).is_ok()
            })
            .await
            .unwrap_or(false);
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if last != Some(ok) {
                health.set_service_status(SERVICE_NAME, status).await;
                health.set_service_status("", status).await;
                if !ok {
                    tracing::warn!("store unreadable: pull API reports NOT_SERVING");
                }
                last = Some(ok);
            }
            tokio::select! {
                _ = probe_cancel.cancelled() => break,
                _ = tokio::time::sleep(HEALTH_PROBE) => {}
            }
        }
    });

    tracing::info!(%addr, tls = cfg.tls.is_some(), tokens = cfg.tokens.len(), "pull API listening");
    // Connections are admitted under the caps and closed after IDLE without a byte (keep-alive
    // pings count, so a quiet subscriber stays).
    let (conn_tx, conn_rx) =
        tokio::sync::mpsc::channel::<std::io::Result<Idle<tokio::net::TcpStream>>>(16);
    let stats = crate::stats::SourceStats::of_kind("pull API", "sync");
    tracker.spawn(crate::listen::accept_loop(
        listener,
        Slots::new(GRPC_LIMITS),
        stats,
        "pull API",
        cancel.clone(),
        tracker.clone(),
        move |stream, _peer, slot| {
            let tx = conn_tx.clone();
            async move {
                let conn = Idle::with_slot(stream, GRPC_LIMITS.idle_timeout, slot);
                let _ = tx.send(Ok(conn)).await;
            }
        },
    ));
    tracker.spawn(async move {
        let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "pull API stopped");
        }
    });
    Ok(addr)
}

/// How often the pull API pings an HTTP/2 peer, and how long it waits for the answer.
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams one HTTP/2 connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 16;
/// The pull API's connection caps; the idle timeout is longer than the keep-alive interval.
const GRPC_LIMITS: Limits = Limits {
    max_connections: 64,
    max_per_peer: 16,
    idle_timeout: Duration::from_secs(75),
    header_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(15),
};

/// An admitted pull API connection is the socket with its idle timeout and its slot.
impl tonic::transport::server::Connected for Idle<tokio::net::TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<Token> {
        vec![
            Token {
                name: "cloud".into(),
                secret: "0123456789abcdef-cloud".into(),
            },
            Token {
                name: "backup".into(),
                secret: "0123456789abcdef-backup".into(),
            },
        ]
    }

    fn req(auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(a) = auth {
            r.metadata_mut().insert("authorization", a.parse().unwrap());
        }
        r
    }

    #[test]
    fn bearer_tokens_table() {
        let t = tokens();
        let table: [(Option<&str>, Result<&str, tonic::Code>); 5] = [
            (Some("Bearer 0123456789abcdef-cloud"), Ok("cloud")),
            (Some("Bearer 0123456789abcdef-backup"), Ok("backup")),
            (
                Some("Bearer 0123456789abcdef-clouD"),
                Err(tonic::Code::Unauthenticated),
            ),
            (
                Some("0123456789abcdef-cloud"),
                Err(tonic::Code::Unauthenticated),
            ),
            (None, Err(tonic::Code::Unauthenticated)),
        ];
        for (auth, want) in table {
            match (authorize(&t, req(auth)), want) {
                (Ok(r), Ok(name)) => {
                    assert_eq!(r.extensions().get::<ClientName>().unwrap().0, name)
                }
                (Err(s), Err(code)) => assert_eq!(s.code(), code, "{auth:?}"),
                (got, want) => panic!("{auth:?}: {got:?} vs {want:?}"),
            }
        }
        // No tokens configured: everyone passes, anonymously.
        assert!(authorize(&[], req(None)).is_ok());
    }
}
