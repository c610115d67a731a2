//! The counter push listener: one HTTP server per configured address, each path belonging to
//! one counter source, whose profile names the payload dialect.
//!
//! A push is answered only after its intervals are committed: `200` with what was stored,
//! `400` with a reason for a payload that cannot be read (retrying it would not help), `401`
//! without valid credentials, `404` for a path no counter owns, `413` over the source's body
//! limit, `503` when the store failed (the device retries; nothing of the push was applied).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use edge_wire::counter::Dialect;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ingest::{CounterContext, IngestError};
use crate::stats::SourceStats;
use crate::sync::config::find_token;

/// One path of a listener.
struct Route {
    ctx: Arc<CounterContext>,
    dialect: Dialect,
}

struct Shared {
    routes: HashMap<String, Route>,
    /// Requests that reached no source (unknown path), counted on the listener.
    stats: Arc<SourceStats>,
}

fn reply(status: StatusCode, reason: &str, detail: &str) -> Response {
    let body = serde_json::json!({ "error": reason, "detail": detail }).to_string() + "\n";
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether the request carries credentials the source accepts.
fn authorized(ctx: &CounterContext, headers: &HeaderMap) -> bool {
    let src = &ctx.src;
    if src.tokens.is_empty() && src.users.is_empty() {
        return true;
    }
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return find_token(&src.tokens, token.trim()).is_some();
    }
    if let Some(b64) = auth.strip_prefix("Basic ") {
        let Ok(raw) = edge_wire::milesight::decode_base64(b64.trim()) else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(&raw) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        // Compared in constant time by find_token; the user must match the password's entry.
        return find_token(&src.users, password).is_some_and(|t| t.name == user);
    }
    false
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(route) = s.routes.get(uri.path()) else {
        s.stats.count("rejected_unknown_path", 1);
        return reply(
            StatusCode::NOT_FOUND,
            "unknown_path",
            "no counter receives pushes on this path",
        );
    };
    let ctx = route.ctx.clone();
    let stats = &ctx.stats;
    if !authorized(&ctx, &headers) {
        stats.count("rejected_unauthenticated", 1);
        let mut r = reply(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or wrong credentials",
        );
        if !ctx.src.users.is_empty() {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"store-edge\""),
            );
        }
        return r;
    }
    if method != Method::POST && method != Method::PUT {
        stats.count("rejected_method", 1);
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "counters push with POST",
        );
    }
    let limit = ctx.src.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        stats.count("rejected_too_large", 1);
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body limit is {limit} bytes"),
        );
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            stats.count("rejected_too_large", 1);
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("the body limit is {limit} bytes (or the body was cut short)"),
            );
        }
    };
    stats
        .frames_read
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dialect = route.dialect;
    let received = chrono::Utc::now().timestamp_millis();
    let work = ctx.clone();
    let done =
        tokio::task::spawn_blocking(move || work.ingest_body(dialect, &bytes, received, None))
            .await;
    match done {
        Ok(Ok(out)) => {
            let body = serde_json::json!({
                "stored": out.stored,
                "duplicates": out.duplicates,
                "refused": out.refused,
                "other_lines": out.other_lines,
            })
            .to_string()
                + "\n";
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Ok(Err(IngestError::Payload(e))) => {
            // Counted as rejected_<reason> by ingest_body; the detail names field and place.
            tracing::debug!(source = %ctx.src.name, error = %e, "counter push rejected");
            reply(StatusCode::BAD_REQUEST, e.reason(), &e.to_string())
        }
        Ok(Err(e)) => {
            tracing::warn!(source = %ctx.src.name, error = %e, "counter push not stored");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "not stored; retry shortly",
            )
        }
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the push was not processed",
        ),
    }
}

/// Binds one listener at `addr` serving `sources` (each with its path and dialect) until
/// `cancel`. Returns the bound address and the listener's own counters.
pub async fn spawn(
    addr: SocketAddr,
    sources: Vec<(String, Dialect, Arc<CounterContext>)>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<(SocketAddr, Arc<SourceStats>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the counter listener to {addr}"))?;
    let bound = listener.local_addr()?;
    crate::listen::register_own(bound);
    let stats = SourceStats::of_kind(&format!("counter-listener {bound}"), "counter");
    let names: Vec<String> = sources
        .iter()
        .map(|(p, d, c)| format!("{p} ({}, {d})", c.src.name))
        .collect();
    let shared = Arc::new(Shared {
        routes: sources
            .into_iter()
            .map(|(path, dialect, ctx)| (path, Route { ctx, dialect }))
            .collect(),
        stats: stats.clone(),
    });
    // Every path goes through `handle`, which knows the routes (and answers unknown ones).
    let app = Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(shared);
    tracing::info!(addr = %bound, paths = ?names, "counter listener");
    tracker.spawn(crate::listen::serve_http(
        listener,
        app,
        crate::listen::HTTP_LIMITS,
        stats.clone(),
        "counter listener",
        cancel,
        tracker.clone(),
    ));
    Ok((bound, stats))
}
