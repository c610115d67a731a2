//! Commands: `cmd/<name>` requests, their replies on `cmd/<name>/reply`, and the cache that
//! makes them idempotent by request id.
//!
//! A request is a JSON object with a string `id` (1–128 characters) and the command's own
//! fields; the reply is `{"id", "ok": true, "result": {…}}` or `{"id", "ok": false, "reason",
//! "error"}` with a stable `reason`: `too_large` (over 64 KiB), `malformed_json` (not JSON, or
//! not an object), `missing_id`, `unknown_command`, `bad_request` (a command's fields are
//! wrong), `not_supported`. When the id could not be read the reply's `id` is null.
//!
//! The last [`REPLY_CACHE`] replies are kept by (command, id): a request whose id is in the
//! cache is answered with the same reply again and not executed a second time.
//!
//! | command | fields | result |
//! |---|---|---|
//! | `ping` | – | `pong`, `at_ms`, `uptime_s`, `version` |
//! | `rebirth` | – | republishes the retained status; `republished: true` |
//! | `sources` | – | `sources`: name, kind, state and counters of each source |
//! | `set-log-level` | `level` (`trace`…`error`; `debug` and `trace` apply to the agent's own logs, other crates stay at `info`) or `filter` (any `EnvFilter` directive) | `filter` applied |
//! | `reload` | – | applies the config in force read again from disk (the fleet config last applied, else the `--config` file), like a push: `result`, `scope`, `restarted`, `version` … (see `supervise`) |
//! | `flush` | – | seals what can be sealed now: visits closed and hours complete at the sources' watermark are committed with a checkpoint; `visits`, `hours`, `checkpoint` |
//!
//! `reload` and `flush` take time: their reply is sent when they are done; a repeat of their
//! id meanwhile is not executed again, and is answered once with the others.
//!
//! # `config/desired`
//! `{"version": <1…2^53>, "config": "<the TOML text of a whole config file>"}`, at most
//! [`MAX_CONFIG`] bytes; see [`desired`].

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// Largest request payload read.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest `config/desired` payload read.
pub const MAX_CONFIG: usize = 128 * 1024;
/// Longest request id.
pub const MAX_ID: usize = 128;
/// Longest `set-log-level` filter.
pub const MAX_FILTER: usize = 512;
/// Replies remembered for repeated request ids.
pub const REPLY_CACHE: usize = 256;
/// The commands there are.
pub const COMMANDS: [&str; 6] = [
    "ping",
    "rebirth",
    "sources",
    "set-log-level",
    "reload",
    "flush",
];
/// The reasons this module's decoders reject a payload with (the agent adds `busy` and
/// `failed` when it cannot carry out a well-formed request).
pub const REASONS: [&str; 7] = [
    "too_large",
    "malformed_json",
    "missing_id",
    "missing_version",
    "missing_config",
    "unknown_command",
    "bad_request",
];
/// Levels `set-log-level` takes as `level`.
const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// Why a request was not executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable reason (counted as `mqtt_rejected_<reason>`).
    pub reason: &'static str,
    /// What is wrong (never quotes the payload).
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason`.
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// A request that has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Request id.
    pub id: String,
    /// All its fields (`id` included).
    pub fields: Map<String, Value>,
}

/// Reads a payload of at most `max` bytes that must be a JSON object (`what` names it).
fn json_object(payload: &[u8], max: usize, what: &str) -> Result<Map<String, Value>, Rejection> {
    if payload.len() > max {
        return Err(Rejection::new(
            "too_large",
            format!("{} bytes; {what} is at most {max} bytes", payload.len()),
        ));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        Rejection::new(
            "malformed_json",
            // serde_json's message may quote the input; only its position is kept.
            format!(
                "not JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(Rejection::new(
            "malformed_json",
            format!("{what} is a JSON object"),
        )),
    }
}

/// Reads a request payload. On error, the id too when it could be read.
pub fn parse(payload: &[u8]) -> Result<Request, (Option<String>, Rejection)> {
    let fields = json_object(payload, MAX_PAYLOAD, "a request").map_err(|r| (None, r))?;
    let id = match fields.get("id") {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ID => id.clone(),
        Some(Value::String(_)) => {
            return Err((
                None,
                Rejection::new("missing_id", format!("`id` must be 1–{MAX_ID} characters")),
            ))
        }
        Some(_) => return Err((None, Rejection::new("missing_id", "`id` must be a string"))),
        None => {
            return Err((
                None,
                Rejection::new("missing_id", "the request has no `id`"),
            ))
        }
    };
    Ok(Request { id, fields })
}

/// A `config/desired` payload: its version and config text. On error, the version too when
/// it could be read.
pub fn desired(payload: &[u8]) -> Result<(u64, String), (Option<u64>, Rejection)> {
    let fields = json_object(payload, MAX_CONFIG, "a pushed config").map_err(|r| (None, r))?;
    // JSON numbers are only exact up to 2^53.
    let version = match fields.get("version").and_then(Value::as_u64) {
        Some(v) if (1..=(1u64 << 53)).contains(&v) => v,
        _ => {
            return Err((
                None,
                Rejection::new(
                    "missing_version",
                    "`version` must be a whole number from 1 to 2^53",
                ),
            ))
        }
    };
    match fields.get("config") {
        Some(Value::String(text)) => Ok((version, text.clone())),
        _ => Err((
            Some(version),
            Rejection::new(
                "missing_config",
                "`config` must be the TOML text of a whole config file",
            ),
        )),
    }
}

/// A command to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Answer with the time and uptime.
    Ping,
    /// Republish the retained status.
    Rebirth,
    /// Per-source health.
    Sources,
    /// Change the log filter.
    SetLogLevel(String),
    /// Apply the config in force again from disk.
    Reload,
    /// Seal what can be sealed now.
    Flush,
}

/// The command `name` asks for with `req`.
pub fn command(name: &str, req: &Request) -> Result<Command, Rejection> {
    match name {
        "ping" => Ok(Command::Ping),
        "rebirth" => Ok(Command::Rebirth),
        "sources" => Ok(Command::Sources),
        "reload" => Ok(Command::Reload),
        "flush" => Ok(Command::Flush),
        "set-log-level" => {
            let level = req.fields.get("level");
            let filter = req.fields.get("filter");
            match (level, filter) {
                (Some(Value::String(l)), None) => {
                    let l = l.trim().to_ascii_lowercase();
                    if LEVELS.contains(&l.as_str()) {
                        Ok(Command::SetLogLevel(level_filter(&l)))
                    } else {
                        Err(Rejection::new(
                            "bad_request",
                            format!("`level` must be one of {}", LEVELS.join(", ")),
                        ))
                    }
                }
                (None, Some(Value::String(f))) if !f.trim().is_empty() && f.len() <= MAX_FILTER => {
                    Ok(Command::SetLogLevel(f.trim().to_string()))
                }
                (None, Some(_)) => Err(Rejection::new(
                    "bad_request",
                    format!("`filter` must be a directive of 1–{MAX_FILTER} characters, e.g. \"info,edge_agent=debug\""),
                )),
                _ => Err(Rejection::new(
                    "bad_request",
                    "give exactly one of `level` (a string) and `filter`",
                )),
            }
        }
        _ => Err(Rejection::new(
            "unknown_command",
            format!("unknown command; the commands are {}", COMMANDS.join(", ")),
        )),
    }
}

/// The filter of `level`: the agent's own logs at that level; other crates' at most `info`,
/// so that `debug` or `trace` never turn on a library's dumps of what it reads (a portal
/// webhook's body carries phone numbers). A `filter` request can still ask for anything.
fn level_filter(level: &str) -> String {
    match level {
        "debug" | "trace" => format!("info,{AGENT_TARGET}={level}"),
        other => other.to_string(),
    }
}

/// The tracing target (crate name) of the agent's own modules.
const AGENT_TARGET: &str = "edge_agent";

/// A successful reply.
pub fn reply_ok(id: &str, result: Value) -> String {
    json!({"id": id, "ok": true, "result": result}).to_string()
}

/// An error reply.
pub fn reply_err(id: Option<&str>, r: &Rejection) -> String {
    json!({"id": id, "ok": false, "reason": r.reason, "error": r.detail}).to_string()
}

/// The last replies by (command, id), oldest forgotten first.
#[derive(Debug)]
pub struct ReplyCache {
    cap: usize,
    order: VecDeque<(String, String)>,
    replies: HashMap<(String, String), String>,
}

impl ReplyCache {
    /// A cache of at most `cap` replies.
    pub fn new(cap: usize) -> ReplyCache {
        ReplyCache {
            cap: cap.max(1),
            order: VecDeque::new(),
            replies: HashMap::new(),
        }
    }

    /// The reply already given to (`name`, `id`).
    pub fn get(&self, name: &str, id: &str) -> Option<&str> {
        self.replies
            .get(&(name.to_string(), id.to_string()))
            .map(String::as_str)
    }

    /// Remembers the reply to (`name`, `id`).
    pub fn insert(&mut self, name: &str, id: &str, reply: String) {
        let key = (name.to_string(), id.to_string());
        if self.replies.insert(key.clone(), reply).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.replies.remove(&old);
            }
        }
    }

    /// Replies held (for the tests below).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.replies.len()
    }
}

/// Changes the process's log filter (installed by `main`).
pub type LogReloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_RELOADER: OnceLock<LogReloader> = OnceLock::new();

/// Installs the function `set-log-level` uses (once; later calls are ignored).
pub fn install_log_reloader(f: LogReloader) {
    let _ = LOG_RELOADER.set(f);
}

/// Applies `filter` through the installed reloader.
pub fn reload_log(filter: &str) -> Result<(), String> {
    match LOG_RELOADER.get() {
        Some(f) => f(filter),
        None => Err("this process cannot change its log filter".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<Request, (Option<String>, Rejection)>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|(_, e)| e.reason)
    }

    #[test]
    fn requests_need_a_json_object_with_an_id() {
        let ok = parse(br#"{"id": "r-1", "level": "debug"}"#).unwrap();
        assert_eq!(ok.id, "r-1");
        assert_eq!(ok.fields["level"], "debug");
        let long_id = format!(r#"{{"id": "{}"}}"#, "x".repeat(MAX_ID + 1));
        let big = format!(r#"{{"id": "a", "pad": "{}"}}"#, "x".repeat(MAX_PAYLOAD));
        let table: [(&[u8], &str); 9] = [
            (b"{\"id\":", "malformed_json"),
            (b"", "malformed_json"),
            (b"\xff\xfe", "malformed_json"),
            (b"[1, 2]", "malformed_json"),
            (b"{}", "missing_id"),
            (b"{\"id\": 7}", "missing_id"),
            (b"{\"id\": \"\"}", "missing_id"),
            (long_id.as_bytes(), "missing_id"),
            (big.as_bytes(), "too_large"),
        ];
        for (payload, want) in table {
            assert_eq!(
                reason(parse(payload)),
                want,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // Error details never quote the payload.
        let (_, e) = parse(b"{\"id\": \"13800138000\", oops}").unwrap_err();
        assert!(!e.detail.contains("13800138000"), "{}", e.detail);
    }

    #[test]
    fn desired_configs_are_checked() {
        let code = |p: &[u8]| desired(p).map(|(v, _)| v).map_err(|(v, r)| (v, r.reason));
        assert_eq!(
            desired(br#"{"version": 7, "config": "[store]"}"#),
            Ok((7, "[store]".to_string()))
        );
        let cases: &[(&[u8], Result<u64, (Option<u64>, &str)>)] = &[
            (b"not json", Err((None, "malformed_json"))),
            (b"[1]", Err((None, "malformed_json"))),
            (br#"{"config": ""}"#, Err((None, "missing_version"))),
            (
                br#"{"version": 0, "config": ""}"#,
                Err((None, "missing_version")),
            ),
            (
                br#"{"version": -1, "config": ""}"#,
                Err((None, "missing_version")),
            ),
            (
                br#"{"version": "2", "config": ""}"#,
                Err((None, "missing_version")),
            ),
            (
                br#"{"version": 1.5, "config": ""}"#,
                Err((None, "missing_version")),
            ),
            (br#"{"version": 3}"#, Err((Some(3), "missing_config"))),
            (
                br#"{"version": 3, "config": {"store": {}}}"#,
                Err((Some(3), "missing_config")),
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(&code(payload), want, "{}", String::from_utf8_lossy(payload));
        }
        let big = format!(
            "{{\"version\": 2, \"config\": \"{}\"}}",
            "#".repeat(MAX_CONFIG)
        );
        assert_eq!(code(big.as_bytes()), Err((None, "too_large")));
    }

    #[test]
    fn commands_and_their_fields() {
        let req = |text: &str| parse(text.as_bytes()).unwrap();
        let plain = req(r#"{"id": "1"}"#);
        assert_eq!(command("ping", &plain), Ok(Command::Ping));
        assert_eq!(command("rebirth", &plain), Ok(Command::Rebirth));
        assert_eq!(command("sources", &plain), Ok(Command::Sources));
        assert_eq!(command("flush", &plain), Ok(Command::Flush));
        assert_eq!(command("reload", &plain), Ok(Command::Reload));
        assert_eq!(
            command("set-log-level", &req(r#"{"id": "1", "level": "DEBUG"}"#)),
            Ok(Command::SetLogLevel("info,edge_agent=debug".into()))
        );
        assert_eq!(
            command("set-log-level", &req(r#"{"id": "1", "level": "warn"}"#)),
            Ok(Command::SetLogLevel("warn".into()))
        );
        assert_eq!(
            command(
                "set-log-level",
                &req(r#"{"id": "1", "filter": "info,edge_agent=trace"}"#)
            ),
            Ok(Command::SetLogLevel("info,edge_agent=trace".into()))
        );
        for bad in [
            r#"{"id": "1"}"#,
            r#"{"id": "1", "level": "loud"}"#,
            r#"{"id": "1", "level": 3}"#,
            r#"{"id": "1", "filter": ""}"#,
            r#"{"id": "1", "level": "info", "filter": "info"}"#,
        ] {
            assert_eq!(
                command("set-log-level", &req(bad)).unwrap_err().reason,
                "bad_request",
                "{bad}"
            );
        }
        assert_eq!(
            command("reboot", &plain).unwrap_err().reason,
            "unknown_command"
        );
    }

    #[test]
    fn reply_shapes() {
        let ok: Value = serde_json::from_str(&reply_ok("r-1", json!({"pong": true}))).unwrap();
        assert_eq!(
            ok,
            json!({"id": "r-1", "ok": true, "result": {"pong": true}})
        );
        let err: Value = serde_json::from_str(&reply_err(
            None,
            &Rejection::new("malformed_json", "not JSON"),
        ))
        .unwrap();
        assert_eq!(
            err,
            json!({"id": null, "ok": false, "reason": "malformed_json", "error": "not JSON"})
        );
    }

    #[test]
    fn the_cache_keeps_the_last_replies_by_command_and_id() {
        let mut c = ReplyCache::new(3);
        c.insert("ping", "a", "A".into());
        c.insert("rebirth", "a", "RA".into());
        assert_eq!(c.get("ping", "a"), Some("A"));
        assert_eq!(c.get("rebirth", "a"), Some("RA"));
        assert_eq!(c.get("sources", "a"), None);
        c.insert("ping", "b", "B".into());
        c.insert("ping", "a", "A2".into());
        assert_eq!((c.len(), c.get("ping", "a")), (3, Some("A2")));
        c.insert("ping", "c", "C".into());
        assert_eq!(c.get("ping", "a"), None, "the oldest is forgotten");
        assert_eq!((c.len(), c.get("ping", "c")), (3, Some("C")));
    }

    /// The `mqtt_payload` fuzz target's seeds (and crash inputs kept there) are requests and
    /// `config/desired` payloads that are read or rejected with a stable reason, on the stable
    /// toolchain too.
    #[test]
    fn fuzz_seeds_are_read_or_rejected_with_a_reason() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/mqtt_payload");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let payload = std::fs::read(entry.unwrap().path()).unwrap();
            match parse(&payload) {
                Ok(req) => {
                    for name in COMMANDS.iter().chain(&["reboot"]) {
                        if let Err(r) = command(name, &req) {
                            assert!(REASONS.contains(&r.reason), "{r:?}");
                        }
                    }
                }
                Err((_, r)) => assert!(REASONS.contains(&r.reason), "{r:?}"),
            }
            if let Err((_, r)) = desired(&payload) {
                assert!(REASONS.contains(&r.reason), "{r:?}");
            }
            n += 1;
        }
        assert!(n > 30, "{n} seeds in {dir}");
    }
}
