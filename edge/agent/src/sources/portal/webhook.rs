//! The portal webhook: `POST /login` (or `/`) with JSON `{mac, phone, event, time}`, bearer
//! token auth, a body size limit, and `400` with a reason for anything it cannot use.
//!
//! The login is keyed here (device key, person key) before it goes anywhere; the raw MAC and
//! phone number are dropped with the request. A request is answered `202` once the login is
//! queued for the pipeline, `503` when the queue is full (the portal retries).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::PortalSource;
use super::source::{Keying, RawLogin};
use crate::sources::{Frame, Login, LoginEvent, SourceMsg};
use crate::stats::SourceStats;
use crate::store::{JournalEntry, Store};
use crate::sync::config::{find_token, Token};
use edge_core::person::PersonKey;

/// The request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// Client MAC, any common spelling.
    mac: String,
    /// Phone number as entered.
    phone: String,
    /// `login`/`start`, `interim`, or `logout`/`stop` (default `login`).
    #[serde(default)]
    event: Option<String>,
    /// When: RFC 3339 text, or Unix seconds or milliseconds; default: now.
    #[serde(default)]
    time: Option<serde_json::Value>,
}

struct Shared {
    name: String,
    tokens: Vec<Token>,
    keying: Mutex<Keying>,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    /// Journal id of the latest login accepted (the source's position).
    accepted: Mutex<u64>,
    store: Arc<Store>,
}

fn reject(
    s: &Shared,
    status: StatusCode,
    reason: &'static str,
    detail: String,
) -> (StatusCode, String) {
    s.stats.count(&format!("rejected_{reason}"), 1);
    (
        status,
        format!(
            "{{\"error\":\"{reason}\",\"detail\":{}}}\n",
            serde_json::Value::from(detail)
        ),
    )
}

/// What is wrong with a body that is not a login, without quoting it.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io | Category::Eof => "the body ends before the JSON does",
        Category::Syntax => "the body is not valid JSON",
        Category::Data => {
            "a field is missing or has the wrong type (`mac`, `phone`: strings; `time`: a number or an RFC 3339 string)"
        }
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

fn parse_time(v: Option<&serde_json::Value>) -> Result<i64, String> {
    let now = chrono::Utc::now().timestamp_millis();
    match v {
        None | Some(serde_json::Value::Null) => Ok(now),
        Some(serde_json::Value::Number(n)) => {
            let x = n.as_i64().ok_or("`time` must be an integer")?;
            // Seconds until the year 2286, milliseconds after; a negative time is no time.
            if x < 0 {
                return Err("`time` must not be negative".into());
            }
            Ok(if x < 10_000_000_000 { x * 1000 } else { x })
        }
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| "`time` is not RFC 3339 (e.g. 2026-11-20T10:15:00+08:00)".to_string()),
        Some(_) => Err("`time` must be a string or a number".into()),
    }
}

async fn login(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if !s.tokens.is_empty() {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| find_token(&s.tokens, g).is_some());
        if !ok {
            return reject(
                &s,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing or unknown bearer token".into(),
            );
        }
    }
    s.stats.frames_read.fetch_add(1, Ordering::Relaxed);
    let body: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        // serde's own message can quote a value ("invalid type: integer `139…`"): the reply
        // names the kind of problem and where, never what was sent.
        Err(e) => {
            return reject(
                &s,
                StatusCode::BAD_REQUEST,
                "malformed_record",
                json_problem(&e),
            )
        }
    };
    let Some(mac) = edge_wire::MacAddr::parse_any(body.mac.trim()) else {
        return reject(
            &s,
            StatusCode::BAD_REQUEST,
            "no_mac",
            "`mac` is not a MAC address".into(),
        );
    };
    let event = match body.event.as_deref().unwrap_or("login") {
        "login" | "start" => LoginEvent::Start,
        "interim" => LoginEvent::Interim,
        "logout" | "stop" => LoginEvent::Stop,
        _ => {
            return reject(
                &s,
                StatusCode::BAD_REQUEST,
                "bad_event",
                "`event` must be login, interim or logout".into(),
            )
        }
    };
    let ts_ms = match parse_time(body.time.as_ref()) {
        Ok(t) => t,
        Err(e) => return reject(&s, StatusCode::BAD_REQUEST, "no_time", e),
    };
    // A login stamped far from the gateway's clock is refused before it is journaled: taken,
    // its time would become the source's watermark and hold every later login back.
    if let Err(e) = edge_core::judge_input_time(ts_ms, chrono::Utc::now().timestamp_millis(), true)
    {
        return reject(&s, StatusCode::BAD_REQUEST, e.reason(), e.detail().into());
    }
    let raw = RawLogin {
        ts_ms,
        mac,
        phone: body.phone,
        event,
    };
    let keyed = match s.keying.lock() {
        Ok(mut k) => k.key(&raw, &s.stats),
        Err(_) => None,
    };
    drop(raw);
    let Some(l) = keyed else {
        // Counted by reason in `key`.
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"invalid_phone\",\"detail\":\"`phone` is not a valid mobile number\"}\n"
                .into(),
        );
    };
    // Journal (durably) and queue under one lock, so journal ids reach the pipeline in order
    // and its cursor never passes a login it has not seen.
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut last = shared.accepted.lock().map_err(|_| "lock")?;
        let id = shared
            .store
            .journal(JournalEntry {
                source: shared.name.clone(),
                ts_ms,
                device_key: l.device.to_hex(),
                person_key: l.person.to_hex(),
                key_version: l.person_key_version,
                event: event_name(l.event).into(),
            })
            .map_err(|_| "journal")?;
        let id = u64::try_from(id).unwrap_or(0);
        *last = id;
        // Waits when the pipeline is behind (a login is never dropped once journaled).
        shared
            .tx
            .send(login_msg(ts_ms, l, id))
            .map_err(|_| "stopping")?;
        Ok::<(), &'static str>(())
    })
    .await;
    match done {
        Ok(Ok(())) => {
            s.stats.sightings.fetch_add(1, Ordering::Relaxed);
            (StatusCode::ACCEPTED, "{\"accepted\":true}\n".into())
        }
        Ok(Err(what)) => {
            tracing::warn!(source = %s.name, what, "login not accepted");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"error\":\"unavailable\",\"detail\":\"retry shortly\"}\n".into(),
            )
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    }
}

fn event_name(e: LoginEvent) -> &'static str {
    match e {
        LoginEvent::Start => "start",
        LoginEvent::Interim => "interim",
        LoginEvent::Stop => "stop",
    }
}

/// The pipeline message of journal entry `id` (its cursor after it is `id`).
fn login_msg(ts_ms: i64, l: Login, id: u64) -> SourceMsg {
    SourceMsg::Batch {
        frames: vec![Frame::login(ts_ms, id.saturating_sub(1))],
        logins: vec![l],
        watermark_ms: ts_ms,
        position: id,
        received: None,
    }
}

/// Journaled logins after the committed cursor `after`: sent before anything new, so a login
/// answered 202 just before a crash still reaches its visit.
fn replay(
    data_dir: &std::path::Path,
    name: &str,
    after: u64,
    tx: &SyncSender<SourceMsg>,
) -> anyhow::Result<u64> {
    let reader = crate::store::Reader::open(data_dir)?;
    let mut last = after;
    let now = chrono::Utc::now().timestamp_millis();
    for (id, e) in reader.journal_after(name, i64::try_from(after).unwrap_or(i64::MAX))? {
        // Journaled by an older version that did not judge times: a login stamped far in the
        // future is skipped here, not replayed into a watermark at every start.
        if let Err(why) = edge_core::judge_input_time(e.ts_ms, now, false) {
            tracing::warn!(source = %name, reason = why.reason(), "journaled login skipped");
            last = u64::try_from(id).unwrap_or(last);
            continue;
        }
        let (Some(device), Some(person)) = (
            hex_key::<16>(&e.device_key),
            PersonKey::from_hex(&e.person_key),
        ) else {
            continue;
        };
        let event = match e.event.as_str() {
            "interim" => LoginEvent::Interim,
            "stop" => LoginEvent::Stop,
            _ => LoginEvent::Start,
        };
        let id = u64::try_from(id).unwrap_or(0);
        let l = Login {
            device: edge_core::DeviceKey(device),
            person,
            person_key_version: e.key_version,
            event,
        };
        if tx.send(login_msg(e.ts_ms, l, id)).is_err() {
            break;
        }
        last = id;
    }
    Ok(last)
}

fn hex_key<const N: usize>(s: &str) -> Option<[u8; N]> {
    hex::decode(s).ok()?.try_into().ok()
}

async fn count_refusals(
    State(s): State<Arc<Shared>>,
    resp: axum::response::Response,
) -> axum::response::Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        s.stats.count("rejected_too_large", 1);
    }
    resp
}

/// Binds the webhook and serves it until `cancel`. A heartbeat keeps the pipeline's merge
/// moving while no logins come. Returns the bound address.
#[allow(clippy::too_many_arguments)]
pub async fn spawn(
    src: &PortalSource,
    addr: SocketAddr,
    keying: Keying,
    store: Arc<Store>,
    start: u64,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding portal webhook {} to {addr}", src.name))?;
    let bound = listener.local_addr()?;
    crate::listen::register_own(bound);
    let shared = Arc::new(Shared {
        name: src.name.clone(),
        tokens: src.tokens.clone(),
        keying: Mutex::new(keying),
        tx: tx.clone(),
        stats,
        accepted: Mutex::new(start),
        store: store.clone(),
    });
    // Logins journaled but not yet committed by the pipeline when the agent last stopped go
    // first; new requests wait on the lock meanwhile.
    let (replayer, data_dir) = (
        shared.clone(),
        store.path().parent().map(std::path::Path::to_path_buf),
    );
    tracker.spawn_blocking(move || {
        let Ok(mut last) = replayer.accepted.lock() else { return };
        let Some(dir) = data_dir else { return };
        match replay(&dir, &replayer.name, *last, &replayer.tx) {
            Ok(n) => {
                if n > *last {
                    tracing::info!(source = %replayer.name, logins = n - *last, "journaled logins replayed");
                }
                *last = n;
            }
            Err(e) => tracing::error!(source = %replayer.name, error = %format!("{e:#}"), "cannot replay the login journal"),
        }
    });
    let app = Router::new()
        .route("/", post(login))
        .route("/login", post(login))
        .layer(DefaultBodyLimit::max(src.max_body_bytes))
        // The body limit answers 413 before the handler runs: count those here.
        .layer(axum::middleware::map_response_with_state(
            shared.clone(),
            count_refusals,
        ))
        .with_state(shared.clone());
    tracing::info!(source = %src.name, addr = %bound, "portal webhook listening");
    tracker.spawn(crate::listen::serve_http(
        listener,
        app,
        crate::listen::HTTP_LIMITS,
        shared.stats.clone(),
        "portal webhook",
        cancel.clone(),
        tracker.clone(),
    ));
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let position = shared.accepted.lock().map(|p| *p).unwrap_or(0);
            let msg = SourceMsg::Batch {
                frames: Vec::new(),
                logins: Vec::new(),
                watermark_ms: chrono::Utc::now().timestamp_millis() - 2000,
                position,
                received: None,
            };
            if let Err(TrySendError::Disconnected(_)) = tx.try_send(msg) {
                break;
            }
        }
    });
    Ok(bound)
}
