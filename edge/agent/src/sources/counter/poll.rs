//! Counter transport: HTTP pollers (AXIS live-sum, Hikvision counting search).
//!
//! Owns the poll loop of an `http-poll` counter source: every interval (the first poll right
//! away) it asks the device — a GET, or a POST of the profile's body template with the query
//! window filled in — answers the device's authentication challenge (HTTP Digest per RFC
//! 7616/2617, or Basic), parses the reply in the profile's dialect and commits the readings
//! through [`CounterContext`].
//!
//! What repeats is harmless by design: AXIS live-sum answers are cumulative daily totals that
//! the core differences, and a Hikvision search asks for the whole lookback window every time
//! so intervals missed while the device was unreachable are fetched again; those already
//! stored are recognised by the core and counted as `duplicates`.
//!
//! Counters: `polls` (every finished attempt), `poll_errors_<reason>` (`connect`, `timeout`, `io`,
//! `http_<status>`, `auth`, `too_large`, `store`, `config`), `rejected_<parse reason>`. After
//! repeated failures the wait between polls doubles, up to ten intervals, and returns to the
//! interval after a success. Credentials never reach a log line.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_util::sync::CancellationToken;

use super::config::Credentials;
use super::ingest::{CounterContext, Outcome};
use crate::config::counter_profile::{CounterTransport, PollProfile};

/// The longest wait between polls, in intervals, however long the device has been failing.
const MAX_BACKOFF_INTERVALS: u32 = 10;

/// Largest body read from a 401 answer before retrying with credentials (it is discarded).
const MAX_CHALLENGE_BODY: usize = 64 * 1024;

/// Polls `url` every `interval` until cancelled.
pub async fn run(
    ctx: Arc<CounterContext>,
    url: String,
    interval: Duration,
    cancel: CancellationToken,
) {
    let shown = redact_url(&url);
    let profile = match &ctx.src.profile.transport {
        CounterTransport::Poll(p) => p.clone(),
        // run.rs only starts this task for poll profiles; anything else is a wiring bug that
        // must not take the agent down.
        _ => {
            tracing::error!(source = %ctx.src.name, "counter poller started for a profile that is not http-poll");
            return;
        }
    };
    let mut poller = match Poller::new(ctx.clone(), profile, &url) {
        Ok(p) => p,
        Err(e) => {
            ctx.stats.count("poll_errors_config", 1);
            tracing::error!(source = %ctx.src.name, url = %shown, error = %e, "counter poller cannot start");
            save_counters(&ctx).await;
            cancel.cancelled().await;
            return;
        }
    };
    tracing::info!(source = %ctx.src.name, url = %shown, interval = ?interval, "counter poller started");
    let mut failures: u32 = 0;
    let mut last_reason: Option<String> = None;
    let mut answered = false;
    loop {
        let now = Utc::now();
        // Only the request is abandoned on cancel: the commit below is short and is awaited so
        // that nothing is written behind the store's back once the task has ended.
        let fetched = tokio::select! {
            _ = cancel.cancelled() => break,
            r = poller.fetch(now) => r,
        };
        let result = match fetched {
            Ok(body) => ingest(&ctx, poller.profile.dialect, body, now.timestamp_millis()).await,
            Err(e) => Err(e),
        };
        // `polls` is counted once the attempt has its outcome, and after its error counter:
        // a reader of the counters (status, `run --check`, the apply judge) then never sees
        // more polls than outcomes, so a poll in flight does not pass for an answered one.
        match result {
            Ok(out) => {
                ctx.stats.count("polls", 1);
                if failures > 0 {
                    tracing::info!(source = %ctx.src.name, url = %shown, failures, "counter device answers again");
                } else if !answered {
                    tracing::info!(source = %ctx.src.name, url = %shown, stored = out.stored, "counter device answered");
                }
                answered = true;
                tracing::debug!(source = %ctx.src.name, stored = out.stored, duplicates = out.duplicates, refused = ?out.refused, "counter poll");
                failures = 0;
                last_reason = None;
            }
            Err(e) => {
                let reason = e.reason();
                ctx.stats.count(&e.counter(), 1);
                ctx.stats.count("polls", 1);
                failures = failures.saturating_add(1);
                // One warning per streak and reason: a device that is down for a day must not
                // fill the log with one line per poll.
                if last_reason.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(source = %ctx.src.name, url = %shown, reason = %reason, error = %e, failures, "counter poll failed");
                } else {
                    tracing::debug!(source = %ctx.src.name, reason = %reason, error = %e, failures, "counter poll failed again");
                }
                last_reason = Some(reason);
                save_counters(&ctx).await;
            }
        }
        let wait = backoff(interval, failures);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    save_counters(&ctx).await;
    tracing::info!(source = %ctx.src.name, "counter poller stopped");
}

/// Stores the source's counters (blocking store call, off the async workers).
async fn save_counters(ctx: &Arc<CounterContext>) {
    let c = ctx.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || c.save_counters()).await {
        tracing::warn!(source = %ctx.src.name, error = %e, "saving the counter source's counters did not finish");
    }
}

/// Parses a reply and commits its readings. Parse errors are counted as `rejected_<reason>`.
async fn ingest(
    ctx: &Arc<CounterContext>,
    dialect: edge_wire::counter::Dialect,
    body: Bytes,
    received_ms: i64,
) -> Result<Outcome, PollError> {
    let c = ctx.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<Outcome, PollError> {
        let push = match edge_wire::counter::parse(dialect, &body, &c.parse_context(received_ms)) {
            Ok(p) => p,
            Err(e) => return Err(PollError::Payload(e)),
        };
        let group = c.push_group(&push, received_ms);
        let empty = group.inputs.is_empty() && group.other_lines == 0 && group.ignored.is_empty();
        if empty {
            // Nothing to commit (a search with no intervals yet): store the poll counters alone.
            c.save_counters();
            return Ok(Outcome::default());
        }
        c.commit_groups(vec![group], None)
            .map_err(|e| PollError::Store(e.to_string()))
    })
    .await;
    match done {
        Ok(r) => r,
        Err(e) => Err(PollError::Store(format!("the commit task failed: {e}"))),
    }
}

/// The wait before the next poll after `failures` failures in a row: the interval, doubling
/// from the second failure on, at most `MAX_BACKOFF_INTERVALS` (10) intervals.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    let factor = (1u32 << doublings).min(MAX_BACKOFF_INTERVALS);
    interval.saturating_mul(factor)
}

/// Fills a POST body template: `{start}`/`{end}` become the local ISO 8601 times (with the
/// store zone's offset) of the window `[start, end]`, `{start_utc}`/`{end_utc}` the UTC ones.
pub fn fill_template(template: &str, start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> String {
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let utc = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    template
        .replace("{start_utc}", &utc(start))
        .replace("{end_utc}", &utc(end))
        .replace("{start}", &local(start))
        .replace("{end}", &local(end))
}

/// The URL as it may be logged: any `user:password@` part removed.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// Why a poll failed.
#[derive(Debug)]
enum PollError {
    /// The device could not be reached.
    Connect(String),
    /// No complete answer within the profile's timeout.
    Timeout(Duration),
    /// The connection failed during the exchange.
    Io(String),
    /// The device answered with an error status.
    Http(StatusCode),
    /// Authentication failed or is impossible.
    Auth(String),
    /// The answer is over the body limit.
    TooLarge,
    /// The answer cannot be read in the profile's dialect.
    Payload(edge_wire::counter::CounterError),
    /// The store failed; the next poll asks again.
    Store(String),
}

impl PollError {
    /// Stable reason for counters and logs.
    fn reason(&self) -> String {
        match self {
            PollError::Connect(_) => "connect".into(),
            PollError::Timeout(_) => "timeout".into(),
            PollError::Io(_) => "io".into(),
            PollError::Http(s) => format!("http_{}", s.as_u16()),
            PollError::Auth(_) => "auth".into(),
            PollError::TooLarge => "too_large".into(),
            PollError::Payload(e) => e.reason().into(),
            PollError::Store(_) => "store".into(),
        }
    }

    /// The counter this failure adds to.
    fn counter(&self) -> String {
        match self {
            PollError::Payload(e) => format!("rejected_{}", e.reason()),
            other => format!("poll_errors_{}", other.reason()),
        }
    }
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Connect(e) => write!(f, "cannot connect: {e}"),
            PollError::Timeout(t) => write!(f, "no complete answer within {t:?}"),
            PollError::Io(e) => write!(f, "request failed: {e}"),
            PollError::Http(s) => write!(f, "the device answered {s}"),
            PollError::Auth(e) => write!(f, "authentication failed: {e}"),
            PollError::TooLarge => write!(
                f,
                "the answer is over {} bytes",
                edge_wire::counter::MAX_BODY
            ),
            PollError::Payload(e) => write!(f, "unreadable answer: {e}"),
            PollError::Store(e) => write!(f, "cannot store the counts: {e}"),
        }
    }
}

/// An error with its causes, for logs (hyper's own message names only the kind).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    // Bounded: error chains are short, but a cycle must not loop forever.
    for _ in 0..8 {
        let Some(c) = cur else { break };
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// How the device wants to be authenticated, as learnt from its last challenge.
#[derive(Debug, Clone)]
enum Auth {
    /// No challenge seen yet (or the last one was refused).
    None,
    /// Basic: the password is sent with every request.
    Basic,
    /// Digest: the challenge is reused with a growing nonce count until the device asks anew.
    Digest {
        challenge: digest::Challenge,
        nc: u32,
    },
}

/// One source's HTTP client and authentication state.
struct Poller {
    ctx: Arc<CounterContext>,
    profile: PollProfile,
    uri: Uri,
    /// Path and query, as the Digest `uri` parameter names the request target.
    target: String,
    client: Client<HttpConnector, Full<Bytes>>,
    auth: Auth,
    warned_basic: bool,
}

impl Poller {
    fn new(ctx: Arc<CounterContext>, profile: PollProfile, url: &str) -> Result<Poller, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("the device URL is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("the device URL must start with http://".into());
        }
        let authority = uri
            .authority()
            .ok_or_else(|| "the device URL has no host".to_string())?;
        if authority.as_str().contains('@') {
            // The Host header would carry them; credentials belong in username/password.
            return Err(
                "credentials in the URL are not used: set `username` and `password`".into(),
            );
        }
        let target = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(profile.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            // A kept-alive connection serves the retry after a challenge and close polls; the
            // devices drop idle ones themselves after a while.
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Poller {
            ctx,
            profile,
            uri,
            target,
            client,
            auth: Auth::None,
            warned_basic: false,
        })
    }

    fn method(&self) -> Method {
        if self.profile.post {
            Method::POST
        } else {
            Method::GET
        }
    }

    /// The request body of a poll at `now` (empty for a GET).
    fn body(&self, now: DateTime<Utc>) -> String {
        let Some(template) = &self.profile.body else {
            return String::new();
        };
        // The devices' query times are whole seconds.
        let end = now.with_nanosecond(0).unwrap_or(now);
        let lookback = chrono::Duration::from_std(self.profile.lookback)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        fill_template(template, end - lookback, end, self.ctx.clock.tz())
    }

    /// Asks the device once (answering one authentication challenge) and returns the body
    /// of a successful answer.
    async fn fetch(&mut self, now: DateTime<Utc>) -> Result<Bytes, PollError> {
        let timeout = self.profile.timeout;
        match tokio::time::timeout(timeout, self.exchange(now)).await {
            Ok(r) => r,
            Err(_) => Err(PollError::Timeout(timeout)),
        }
    }

    async fn exchange(&mut self, now: DateTime<Utc>) -> Result<Bytes, PollError> {
        let body = self.body(now);
        // The first request carries what the last challenge asked for (nothing before the
        // first one); a 401 answer brings a fresh challenge that the second request answers.
        // A 401 to that is a refusal.
        for attempt in 0..2 {
            let req = self.request(&body)?;
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    PollError::Connect(chain(&e))
                } else {
                    PollError::Io(chain(&e))
                }
            })?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                let headers = resp.headers().clone();
                drain(resp).await;
                if attempt == 1 {
                    self.auth = Auth::None;
                    return Err(PollError::Auth(
                        "the device refused the configured user and password".into(),
                    ));
                }
                self.learn(&headers)?;
                continue;
            }
            if !resp.status().is_success() {
                let status = resp.status();
                drain(resp).await;
                return Err(PollError::Http(status));
            }
            return read_body(resp).await;
        }
        // The loop returns on its second pass; kept for the compiler.
        Err(PollError::Auth(
            "the device asked for credentials twice".into(),
        ))
    }

    /// Takes the challenge of a 401 answer.
    fn learn(&mut self, headers: &HeaderMap) -> Result<(), PollError> {
        if self.ctx.src.credentials.is_none() {
            return Err(PollError::Auth(
                "the device asks for credentials: set `username` and `password`".into(),
            ));
        }
        let values: Vec<&str> = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        match digest::choose(&values) {
            Some(digest::Scheme::Digest(challenge)) => {
                self.auth = Auth::Digest { challenge, nc: 0 };
                Ok(())
            }
            Some(digest::Scheme::Basic) => {
                if !self.warned_basic {
                    self.warned_basic = true;
                    tracing::warn!(source = %self.ctx.src.name, "the counter device asks for Basic authentication: its password crosses the network readable");
                }
                self.auth = Auth::Basic;
                Ok(())
            }
            None => Err(PollError::Auth(
                "the device asks for an authentication scheme the agent does not speak (Digest MD5/SHA-256 or Basic)".into(),
            )),
        }
    }

    /// The next request, with credentials as the last challenge asked.
    fn request(&mut self, body: &str) -> Result<Request<Full<Bytes>>, PollError> {
        let method = self.method();
        let mut b = Request::builder()
            .method(method.clone())
            .uri(self.uri.clone())
            .header(
                header::USER_AGENT,
                concat!("store-edge/", env!("CARGO_PKG_VERSION")),
            );
        if self.profile.post {
            b = b.header(header::CONTENT_TYPE, self.profile.content_type.as_str());
        }
        if let Some(value) = self.authorization(&method, body) {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                PollError::Auth("the user name cannot be sent in an HTTP header".into())
            })?;
            v.set_sensitive(true);
            b = b.header(header::AUTHORIZATION, v);
        }
        b.body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| PollError::Io(format!("cannot build the request: {e}")))
    }

    fn authorization(&mut self, method: &Method, body: &str) -> Option<String> {
        let creds: &Credentials = self.ctx.src.credentials.as_ref()?;
        match &mut self.auth {
            Auth::None => None,
            Auth::Basic => Some(basic(creds)),
            Auth::Digest { challenge, nc } => {
                *nc = nc.wrapping_add(1).max(1);
                let cnonce = hex::encode(rand::random::<[u8; 16]>());
                Some(challenge.authorization(
                    creds,
                    method.as_str(),
                    &self.target,
                    body.as_bytes(),
                    *nc,
                    &cnonce,
                ))
            }
        }
    }
}

/// Reads (and discards) a short answer so its connection can serve the next request.
async fn drain(resp: Response<Incoming>) {
    let _ = Limited::new(resp.into_body(), MAX_CHALLENGE_BODY)
        .collect()
        .await;
}

async fn read_body(resp: Response<Incoming>) -> Result<Bytes, PollError> {
    match Limited::new(resp.into_body(), edge_wire::counter::MAX_BODY)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(PollError::TooLarge),
        Err(e) => Err(PollError::Io(chain(&*e))),
    }
}

/// `Basic base64(user:password)` (RFC 7617).
fn basic(creds: &Credentials) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", creds.username, creds.password).as_bytes())
    )
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                // Six bits: always a valid index into the 64-entry alphabet.
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// HTTP Digest access authentication, client side (RFC 7616, compatible with RFC 2617 and
/// RFC 2069 servers): parsing `WWW-Authenticate` challenges and computing the answer.
pub mod digest {
    use md5::{Digest as _, Md5};
    use sha2::Sha256;

    use super::Credentials;

    /// Longest `WWW-Authenticate` value looked at; real challenges are a few hundred bytes.
    const MAX_CHALLENGE: usize = 4096;

    /// The hash of a Digest challenge.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Algorithm {
        /// `MD5` (also when the server names none).
        Md5,
        /// `MD5-sess`.
        Md5Sess,
        /// `SHA-256`.
        Sha256,
        /// `SHA-256-sess`.
        Sha256Sess,
    }

    impl Algorithm {
        fn from_token(t: &str) -> Option<Algorithm> {
            match t.to_ascii_uppercase().as_str() {
                "MD5" => Some(Algorithm::Md5),
                "MD5-SESS" => Some(Algorithm::Md5Sess),
                "SHA-256" => Some(Algorithm::Sha256),
                "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
                _ => None,
            }
        }

        fn sess(self) -> bool {
            matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
        }

        fn hash(self, data: &[u8]) -> String {
            match self {
                Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
                Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
            }
        }
    }

    /// Quality of protection chosen from the server's offer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Qop {
        /// None offered (RFC 2069 servers).
        None,
        /// `auth`.
        Auth,
        /// `auth-int` (only when `auth` is not offered).
        AuthInt,
    }

    /// A Digest challenge.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Challenge {
        /// `realm`.
        pub realm: String,
        /// `nonce`.
        pub nonce: String,
        /// `opaque`, echoed back.
        pub opaque: Option<String>,
        /// The hash.
        pub algorithm: Algorithm,
        /// The `algorithm` token as the server wrote it (absent: not echoed).
        pub algorithm_token: Option<String>,
        /// The protection used.
        pub qop: Qop,
        /// `stale=true`: the nonce expired, the credentials were fine.
        pub stale: bool,
    }

    /// A challenge the client can answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Scheme {
        /// Digest.
        Digest(Challenge),
        /// Basic.
        Basic,
    }

    /// Splits a `WWW-Authenticate` value into challenges: (scheme, parameters), parameter
    /// names lower-cased.
    pub fn challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
        if value.len() > MAX_CHALLENGE {
            return out;
        }
        let b = value.as_bytes();
        let mut i = 0;
        let is_delim = |c: u8| c.is_ascii_whitespace() || c == b',' || c == b'=' || c == b'"';
        while i < b.len() {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                i += 1;
            }
            let start = i;
            while i < b.len() && !is_delim(b[i]) {
                i += 1;
            }
            if start == i {
                // A stray '=' or '"': skip it rather than loop on it.
                i += 1;
                continue;
            }
            let token = &value[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                // A parameter of the current challenge.
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let mut v = String::new();
                if j < b.len() && b[j] == b'"' {
                    j += 1;
                    let mut escaped = false;
                    let mut closed = false;
                    for (k, c) in value[j..].char_indices() {
                        if escaped {
                            v.push(c);
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            j += k + 1;
                            closed = true;
                            break;
                        } else {
                            v.push(c);
                        }
                    }
                    if !closed {
                        j = b.len();
                    }
                } else {
                    let vs = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b',' {
                        j += 1;
                    }
                    v.push_str(&value[vs..j]);
                }
                if let Some((_, params)) = out.last_mut() {
                    params.push((token.to_ascii_lowercase(), v));
                }
                i = j;
            } else {
                out.push((token.to_string(), Vec::new()));
                i = j;
            }
        }
        out
    }

    fn digest_challenge(params: &[(String, String)]) -> Option<Challenge> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let realm = get("realm")?;
        let nonce = get("nonce")?;
        let algorithm_token = get("algorithm");
        let algorithm = match &algorithm_token {
            Some(t) => Algorithm::from_token(t)?,
            None => Algorithm::Md5,
        };
        let qop = match get("qop") {
            None => Qop::None,
            Some(q) => {
                let offered: Vec<String> = q
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect();
                if offered.iter().any(|s| s == "auth") {
                    Qop::Auth
                } else if offered.iter().any(|s| s == "auth-int") {
                    Qop::AuthInt
                } else {
                    return None;
                }
            }
        };
        Some(Challenge {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            algorithm_token,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The challenge to answer among the `WWW-Authenticate` values of a 401: Digest with
    /// SHA-256 before Digest with MD5 before Basic; `None` when none can be answered.
    pub fn choose(values: &[&str]) -> Option<Scheme> {
        let mut best: Option<(u8, Scheme)> = None;
        for v in values {
            for (scheme, params) in challenges(v) {
                let ranked = if scheme.eq_ignore_ascii_case("digest") {
                    digest_challenge(&params).map(|c| {
                        let rank = match c.algorithm {
                            Algorithm::Sha256 | Algorithm::Sha256Sess => 3,
                            Algorithm::Md5 | Algorithm::Md5Sess => 2,
                        };
                        (rank, Scheme::Digest(c))
                    })
                } else if scheme.eq_ignore_ascii_case("basic") {
                    Some((1, Scheme::Basic))
                } else {
                    None
                };
                if let Some((rank, s)) = ranked {
                    if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                        best = Some((rank, s));
                    }
                }
            }
        }
        best.map(|(_, s)| s)
    }

    fn quote(s: &str) -> String {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }

    impl Challenge {
        /// The `response` value for a request `method uri` (with `body`, used by
        /// `auth-int`), nonce count `nc` and client nonce `cnonce`.
        pub fn response(
            &self,
            creds: &Credentials,
            method: &str,
            uri: &str,
            body: &[u8],
            nc: u32,
            cnonce: &str,
        ) -> String {
            let h = |s: &str| self.algorithm.hash(s.as_bytes());
            let mut ha1 = h(&format!(
                "{}:{}:{}",
                creds.username, self.realm, creds.password
            ));
            if self.algorithm.sess() {
                ha1 = h(&format!("{ha1}:{}:{cnonce}", self.nonce));
            }
            let ha2 = match self.qop {
                Qop::AuthInt => h(&format!("{method}:{uri}:{}", self.algorithm.hash(body))),
                Qop::None | Qop::Auth => h(&format!("{method}:{uri}")),
            };
            match self.qop {
                Qop::None => h(&format!("{ha1}:{}:{ha2}", self.nonce)),
                Qop::Auth | Qop::AuthInt => {
                    let qop = if self.qop == Qop::Auth {
                        "auth"
                    } else {
                        "auth-int"
                    };
                    h(&format!(
                        "{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}",
                        self.nonce
                    ))
                }
            }
        }

        /// The `Authorization` header value answering this challenge.
        pub fn authorization(
            &self,
            creds: &Credentials,
            method: &str,
            uri: &str,
            body: &[u8],
            nc: u32,
            cnonce: &str,
        ) -> String {
            let response = self.response(creds, method, uri, body, nc, cnonce);
            let mut parts = vec![
                format!("username={}", quote(&creds.username)),
                format!("realm={}", quote(&self.realm)),
                format!("nonce={}", quote(&self.nonce)),
                format!("uri={}", quote(uri)),
            ];
            if let Some(a) = &self.algorithm_token {
                parts.push(format!("algorithm={a}"));
            }
            parts.push(format!("response=\"{response}\""));
            if let Some(o) = &self.opaque {
                parts.push(format!("opaque={}", quote(o)));
            }
            match self.qop {
                Qop::None => {}
                Qop::Auth | Qop::AuthInt => {
                    let qop = if self.qop == Qop::Auth {
                        "auth"
                    } else {
                        "auth-int"
                    };
                    parts.push(format!("qop={qop}"));
                    parts.push(format!("nc={nc:08x}"));
                    parts.push(format!("cnonce={}", quote(cnonce)));
                }
            }
            format!("Digest {}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::digest::{challenges, choose, Algorithm, Qop, Scheme};
    use super::*;
    use chrono::TimeZone;

    fn mufasa(password: &str) -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: password.into(),
        }
    }

    fn digest_of(header: &str) -> digest::Challenge {
        match choose(&[header]) {
            Some(Scheme::Digest(c)) => c,
            other => panic!("not a digest challenge: {other:?}"),
        }
    }

    #[test]
    fn rfc2617_worked_example() {
        // RFC 2617 §3.5.
        let c = digest_of(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.qop, Qop::Auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let creds = mufasa("Circle Of Life");
        let r = c.response(&creds, "GET", "/dir/index.html", b"", 1, "0a4f113b");
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let h = c.authorization(&creds, "GET", "/dir/index.html", b"", 1, "0a4f113b");
        assert_eq!(
            h,
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001, cnonce="0a4f113b""#
        );
        // A wrong password or another nonce count gives another response.
        assert_ne!(
            c.response(
                &mufasa("Circle of Life"),
                "GET",
                "/dir/index.html",
                b"",
                1,
                "0a4f113b"
            ),
            r
        );
        assert_ne!(
            c.response(&creds, "GET", "/dir/index.html", b"", 2, "0a4f113b"),
            r
        );
    }

    #[test]
    fn rfc7616_examples_md5_and_sha256() {
        // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
        let creds = mufasa("Circle of Life");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let offer = [
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        ];
        let sha = digest_of(offer[0]);
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        assert_eq!(
            sha.response(&creds, "GET", "/dir/index.html", b"", 1, cnonce),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let md5 = digest_of(offer[1]);
        assert_eq!(
            md5.response(&creds, "GET", "/dir/index.html", b"", 1, cnonce),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        // Offered both (in either order), SHA-256 is chosen.
        assert_eq!(
            choose(&[offer[1], offer[0]]),
            Some(Scheme::Digest(sha.clone()))
        );
        assert_eq!(choose(&[offer[0], offer[1]]), Some(Scheme::Digest(sha)));
        let header = md5.authorization(&creds, "GET", "/dir/index.html", b"", 1, cnonce);
        assert!(header.contains("algorithm=MD5,"), "{header}");
        assert!(header.contains("nc=00000001"), "{header}");
    }

    #[test]
    fn challenge_variants() {
        // RFC 2069 style: no qop, so the response has no nonce count.
        let c = digest_of(r#"Digest realm="x", nonce="n""#);
        assert_eq!(c.qop, Qop::None);
        let h = c.authorization(&mufasa("p"), "GET", "/", b"", 1, "c");
        assert!(!h.contains("qop=") && !h.contains("nc="), "{h}");
        let want = {
            use md5::{Digest as _, Md5};
            let ha1 = hex::encode(Md5::digest(b"Mufasa:x:p"));
            let ha2 = hex::encode(Md5::digest(b"GET:/"));
            hex::encode(Md5::digest(format!("{ha1}:n:{ha2}").as_bytes()))
        };
        assert_eq!(c.response(&mufasa("p"), "GET", "/", b"", 1, "c"), want);
        // auth-int only: the body is part of the hash.
        let i = digest_of(r#"Digest realm="x", nonce="n", qop="auth-int""#);
        assert_eq!(i.qop, Qop::AuthInt);
        assert_ne!(
            i.response(&mufasa("p"), "POST", "/", b"a", 1, "c"),
            i.response(&mufasa("p"), "POST", "/", b"b", 1, "c")
        );
        // Hikvision style: unquoted and upper-case tokens, stale flag, escapes.
        let h = digest_of(
            r#"Digest qop="auth", realm="IP Camera(C1234)", nonce="4e5468694d7a6b3a6233", stale="TRUE", algorithm=MD5"#,
        );
        assert!(h.stale);
        assert_eq!(h.realm, "IP Camera(C1234)");
        let e = digest_of(r#"Digest realm="a \"quoted\" realm", nonce=abc"#);
        assert_eq!(e.realm, r#"a "quoted" realm"#);
        assert_eq!(e.nonce, "abc");
        // Unknown algorithm or qop: not answerable; Basic is the fallback.
        assert_eq!(
            choose(&[r#"Digest realm="x", nonce="n", algorithm=SHA-512-256"#]),
            None
        );
        assert_eq!(choose(&[r#"Digest realm="x", nonce="n", qop="foo""#]), None);
        assert_eq!(choose(&[r#"Digest realm="x""#]), None);
        assert_eq!(
            choose(&[
                r#"Basic realm="cam""#,
                r#"Digest realm="x", nonce="n", algorithm=SHA-512-256"#
            ]),
            Some(Scheme::Basic)
        );
        assert_eq!(choose(&[r#"Negotiate"#, r#"Bearer realm="x""#]), None);
        // Two challenges in one value.
        let two = challenges(r#"Basic realm="a", Digest realm="b", nonce="n", qop=auth"#);
        assert_eq!(two.len(), 2);
        assert!(matches!(
            choose(&[r#"Basic realm="a", Digest realm="b", nonce="n", qop=auth"#]),
            Some(Scheme::Digest(_))
        ));
        // Garbage never panics.
        for g in [
            "",
            "=",
            "\"",
            "Digest =\"",
            "Digest realm=\"unterminated",
            ",,,",
            "Digest realm=ü, nonce=\"é\"",
        ] {
            let _ = choose(&[g]);
        }
        assert!(challenges(&"a".repeat(5000)).is_empty());
    }

    #[test]
    fn digest_quotes_user_names() {
        let c = digest_of(r#"Digest realm="r", nonce="n", qop=auth"#);
        let creds = Credentials {
            username: r#"we"ird\name"#.into(),
            password: "p".into(),
        };
        let h = c.authorization(&creds, "GET", "/", b"", 1, "c");
        assert!(h.starts_with(r#"Digest username="we\"ird\\name", "#), "{h}");
        // What a server parses back is the user name as configured.
        let back = challenges(&h);
        assert_eq!(
            back[0].1[0],
            ("username".to_string(), creds.username.clone())
        );
    }

    #[test]
    fn basic_header() {
        // RFC 7617 §2.
        let creds = Credentials {
            username: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(basic(&creds), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff, 0x00, 0x7f],
        ] {
            let enc = base64(data);
            assert_eq!(enc.len() % 4, 0);
            assert_eq!(
                edge_wire::milesight::decode_base64(&enc).unwrap(),
                data,
                "{enc}"
            );
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    }

    #[test]
    fn template_fills_local_and_utc_times() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let end = Utc.with_ymd_and_hms(2024, 5, 1, 1, 0, 0).unwrap();
        let start = end - chrono::Duration::hours(1);
        let t = "<s>{start}</s><e>{end}</e><su>{start_utc}</su><eu>{end_utc}</eu><x>{other}</x>";
        assert_eq!(
            fill_template(t, start, end, tz),
            "<s>2024-05-01T08:00:00+08:00</s><e>2024-05-01T09:00:00+08:00</e>\
             <su>2024-05-01T00:00:00Z</su><eu>2024-05-01T01:00:00Z</eu><x>{other}</x>"
        );
        // Western offsets and a DST change inside the window.
        let ny: Tz = "America/New_York".parse().unwrap();
        let end = Utc.with_ymd_and_hms(2024, 3, 10, 7, 30, 0).unwrap();
        let start = end - chrono::Duration::hours(1);
        assert_eq!(
            fill_template("{start} {end}", start, end, ny),
            "2024-03-10T01:30:00-05:00 2024-03-10T03:30:00-04:00"
        );
        // Both local times read back as the window.
        let filled = fill_template("{start}|{end}", start, end, ny);
        let (s, e) = filled.split_once('|').unwrap();
        assert_eq!(DateTime::parse_from_rfc3339(s).unwrap(), start);
        assert_eq!(DateTime::parse_from_rfc3339(e).unwrap(), end);
    }

    #[test]
    fn backoff_doubles_to_ten_intervals_and_resets() {
        let i = Duration::from_secs(60);
        let waits: Vec<u64> = (0..8).map(|f| backoff(i, f).as_secs() / 60).collect();
        assert_eq!(waits, [1, 1, 2, 4, 8, 10, 10, 10]);
        assert_eq!(backoff(i, u32::MAX), i * 10);
        assert_eq!(backoff(Duration::from_secs(1), 3), Duration::from_secs(4));
    }

    #[test]
    fn urls_are_logged_without_credentials() {
        assert_eq!(
            redact_url("http://admin:secret@192.0.2.20:8080/ISAPI/x?y=1"),
            "http://192.0.2.20:8080/ISAPI/x?y=1"
        );
        assert_eq!(redact_url("http://192.0.2.20/a"), "http://192.0.2.20/a");
        assert_eq!(redact_url("192.0.2.20"), "192.0.2.20");
    }

    #[test]
    fn error_counters() {
        assert_eq!(
            PollError::Http(StatusCode::INTERNAL_SERVER_ERROR).counter(),
            "poll_errors_http_500"
        );
        assert_eq!(PollError::Auth("x".into()).counter(), "poll_errors_auth");
        assert_eq!(
            PollError::Timeout(Duration::from_secs(1)).counter(),
            "poll_errors_timeout"
        );
        assert_eq!(
            PollError::Connect("x".into()).counter(),
            "poll_errors_connect"
        );
        let bad = edge_wire::counter::parse(
            edge_wire::counter::Dialect::AxisLiveSum,
            b"{",
            &edge_wire::counter::ParseContext::default(),
        )
        .unwrap_err();
        assert_eq!(PollError::Payload(bad).counter(), "rejected_malformed_json");
    }
}
