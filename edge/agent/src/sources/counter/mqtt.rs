//! Counter transport: the MQTT subscriber, and the decoding of MQTT counter payloads
//! (Milesight VS13x TLV uplinks, JSON with configured field paths, HTTP dialects carried over
//! MQTT) into core inputs of the source's door. The file replay decodes recordings of MQTT
//! profiles through [`decode_payload`] too; [`decode`] is the same without a store (the
//! `mqtt_payload` fuzz target calls it).
//!
//! # Payloads
//! - **Milesight TLV**: raw TLV bytes, or their hex/base64 text, or — when the profile names a
//!   `payload_field` — a JSON envelope (a LoRaWAN gateway's uplink) whose field holds the text.
//!   Raw bytes and text are told apart by content: every known TLV record has a byte that is
//!   neither printable ASCII nor whitespace (a type byte ≥ 0x80, or channel 0x01), so a payload
//!   made only of those is text. Each line with a running total becomes a
//!   `Cumulative` reading at the time the message arrived (the profile names no time field in
//!   the envelope), with the registers' u32 wrap; the tracker differences the totals, so the
//!   first uplink only sets the baseline. Lines that carry only period counts are ignored
//!   (counted `ignored_period_only`): the uplink does not say the period's start or length (a
//!   device setting, and LoRaWAN uplinks can be delayed or repeated), so they cannot be placed
//!   in time honestly, and the totals of the same uplinks already carry every count.
//! - **JSON fields**: dot paths (`a.b.0.c`; a numeric segment indexes an array) to the time
//!   (RFC 3339 with an offset, or Unix seconds or milliseconds — a number from 10^11 up is
//!   milliseconds, which reads seconds correctly until the year 5138), the interval start (then
//!   the message is one `Interval` from start to time), ins, outs (absent: 0 for an interval,
//!   unknown for totals), the line (a string or an integer; absent: `"line"`), or running totals
//!   (`cumulative`, differenced at the time). Interval counts must be integers 0–`u32::MAX`.
//!   A profile with neither a start nor `cumulative` cannot place its counts in time: profile
//!   validation refuses it (and the decoder would reject every message `no_interval`).
//! - **Dialects**: the HTTP dialect parser, as for a push.
//!
//! A payload that cannot be read is a [`DecodeError`] with a stable reason, counted as
//! `rejected_<reason>`: `too_large`, `empty`, `malformed_json`, `missing_field`, `wrong_type`,
//! `bad_time`, `bad_count`, `inconsistent` (an interval that does not end after it starts),
//! `name_too_long`, `bad_text` (neither hex nor base64), `malformed_tlv`, `no_interval`,
//! `not_mqtt`, or a dialect parser's reason. Details name the field path, never a value.
//!
//! # The subscriber
//! One task owns the rumqttc event loop and does nothing but poll it: it subscribes (QoS 1)
//! after every `ConnAck` through `try_subscribe` (a broker restarted without persistence has
//! forgotten the subscription), backs off after errors (500 ms doubling to 30 s, reset by a
//! `ConnAck`; rumqttc retries at once otherwise), and hands each message to a worker task over
//! a bounded queue. The worker decodes it, commits it in `spawn_blocking` and only then
//! acknowledges it (manual acks), so a message is never acknowledged before its counts are
//! stored. When the queue is full the poll loop waits for room: it stops reading the socket,
//! TCP flow control holds the broker back and the broker keeps the messages (its in-flight
//! window bounds the unacknowledged QoS 1 messages). Nothing is dropped here. The arrival time
//! is taken by the poll loop, so a wait in the queue does not move a reading's time.
//!
//! The session is persistent (`clean_session = false`): while the agent restarts or the link is
//! down the broker queues the QoS 1 messages for it, and unacknowledged ones are delivered again
//! (with the DUP flag) on reconnection — at least once. A repeated interval counts once (the
//! tracker's keys); a repeated Milesight uplink would not: its totals, read again after newer
//! ones, look like a counter reset and would count everyone again. So a DUP-flagged message
//! with the same topic and payload as one of the last 256 messages taken is
//! acknowledged without being applied again (`mqtt_redelivered`). That memory does not survive
//! the process: after a crash, uplinks that were stored but whose acknowledgements were lost
//! are applied again. The last of them only repeats the baseline (a zero interval); should
//! several be lost, the older ones look like a reset — a crash-only window of a few
//! milliseconds per message.
//!
//! Counters: `mqtt_messages`, `mqtt_connects`, `mqtt_errors`, `mqtt_subscribe_refused`,
//! `mqtt_redelivered`, `rejected_<reason>`, `store_errors`, and what the commit counts.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use edge_core::counter::CountInput;
use edge_wire::counter::{self as wire, MAX_NAME};
use edge_wire::milesight::{self, MilesightRepr};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::CounterSource;
use super::ingest::{CounterContext, Decoder, Group};
use crate::config::counter_profile::{CounterTransport, JsonFields, MqttPayload};

/// Why an MQTT payload was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeError {
    /// Stable reason (counted as `rejected_<reason>`).
    pub reason: &'static str,
    /// What and where.
    pub detail: String,
}

impl DecodeError {
    /// Stable reason.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    fn new(reason: &'static str, detail: impl Into<String>) -> DecodeError {
        DecodeError {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// Line name of JSON payloads without a line field.
const DEFAULT_LINE: &str = "line";
/// Milesight totals are u32 registers.
const MILESIGHT_WRAP: u64 = 1 << 32;
/// Unix numbers from here up are milliseconds (10^11 s is the year 5138; 10^11 ms is 1973).
const MS_THRESHOLD: f64 = 1e11;
/// Latest time accepted: the end of year 9999 (ms), as the dialect parsers.
const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Decodes one message payload of `ctx`'s profile into core inputs of its door.
pub fn decode_payload(
    ctx: &CounterContext,
    payload: &[u8],
    received_ms: i64,
) -> Result<Group, DecodeError> {
    decode(ctx.decoder(), payload, received_ms)
}

/// Decodes one message payload of the decoder's source (its profile, door and lines) that
/// arrived at `received_ms` into core inputs of its door; needs no store.
pub fn decode(dec: Decoder<'_>, payload: &[u8], received_ms: i64) -> Result<Group, DecodeError> {
    let src = dec.src;
    if payload.len() > wire::MAX_BODY {
        return Err(DecodeError::new(
            "too_large",
            format!(
                "{} bytes; the limit is {} bytes",
                payload.len(),
                wire::MAX_BODY
            ),
        ));
    }
    let CounterTransport::Mqtt(m) = &src.profile.transport else {
        return Err(DecodeError::new(
            "not_mqtt",
            format!("profile {} is not an MQTT counter", src.profile.id),
        ));
    };
    match &m.payload {
        MqttPayload::MilesightTlv { field, line_names } => {
            let bytes = milesight_bytes(payload, field.as_deref())?;
            let repr = MilesightRepr::parse(&bytes)
                .map_err(|e| DecodeError::new("malformed_tlv", e.to_string()))?;
            Ok(milesight_group(src, &repr, line_names, received_ms))
        }
        MqttPayload::Json(fields) => json_group(src, fields, payload, received_ms),
        MqttPayload::Dialect(d) => wire::parse(*d, payload, &dec.parse_context(received_ms))
            .map(|p| dec.push_group(&p, received_ms))
            .map_err(|e| DecodeError::new(e.reason(), e.to_string())),
    }
}

/// Whether `payload` is text (printable ASCII and whitespace only), which no TLV record is.
fn is_text(payload: &[u8]) -> bool {
    payload
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// The TLV bytes of a Milesight payload: raw, hex/base64 text, or text in a JSON field.
fn milesight_bytes(payload: &[u8], field: Option<&str>) -> Result<Vec<u8>, DecodeError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::new("empty", "the message has no payload"));
    }
    let text_of = |what: &str, text: &str| {
        milesight::decode_text(text).map_err(|e| {
            DecodeError::new("bad_text", format!("{what} is neither hex nor base64: {e}"))
        })
    };
    match field {
        Some(path) => {
            let v = parse_json(payload)?;
            let text = lookup(&v, path)?
                .as_str()
                .ok_or_else(|| wrong_type(path, "a hex or base64 string"))?;
            text_of(&format!("field `{path}`"), text)
        }
        None if is_text(payload) => {
            // Only ASCII reaches here.
            let text = std::str::from_utf8(payload)
                .map_err(|_| DecodeError::new("bad_text", "the payload is not ASCII text"))?;
            text_of("the payload", text)
        }
        None => Ok(payload.to_vec()),
    }
}

/// The readings of one Milesight uplink.
fn milesight_group(
    src: &CounterSource,
    repr: &MilesightRepr,
    line_names: &[String; 4],
    received_ms: i64,
) -> Group {
    let mut g = Group {
        received_ms,
        ..Group::default()
    };
    if repr.lines.is_empty() {
        // Battery level, device information, acknowledgements: nothing counted.
        g.ignored.push("no_counts");
    }
    for l in &repr.lines {
        // The parser yields lines 1–4 only, so the name always exists.
        let Some(name) = line_names.get(usize::from(l.line).wrapping_sub(1)) else {
            continue;
        };
        if !src.counts_line(name) {
            g.other_lines += 1;
            continue;
        }
        if l.total_in.is_none() && l.total_out.is_none() {
            g.ignored.push("period_only");
            continue;
        }
        g.inputs.push(CountInput::Cumulative {
            door: src.door.clone(),
            line: name.clone(),
            at_ms: received_ms,
            ins: l.total_in.map(u64::from),
            outs: l.total_out.map(u64::from),
            wrap: Some(MILESIGHT_WRAP),
            resets_daily: false,
        });
    }
    g
}

fn parse_json(payload: &[u8]) -> Result<Value, DecodeError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::new("empty", "the message has no payload"));
    }
    serde_json::from_slice(payload).map_err(|e| {
        // serde_json's message may quote the input; only its position is kept.
        DecodeError::new(
            "malformed_json",
            format!(
                "not JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

fn wrong_type(path: &str, expected: &str) -> DecodeError {
    DecodeError::new("wrong_type", format!("field `{path}`: expected {expected}"))
}

/// The value at the dot path `path` (object keys; a numeric segment also indexes an array).
/// JSON `null` counts as missing.
fn lookup<'a>(root: &'a Value, path: &str) -> Result<&'a Value, DecodeError> {
    let mut cur = root;
    for (i, seg) in path.split('.').enumerate() {
        let next = match cur {
            Value::Object(m) => m.get(seg),
            Value::Array(a) if seg.bytes().all(|b| b.is_ascii_digit()) => {
                seg.parse::<usize>().ok().and_then(|i| a.get(i))
            }
            _ => {
                // The part of the path that led here is not a container (or an array indexed
                // by a name).
                let parent: Vec<&str> = path.split('.').take(i).collect();
                let parent = if parent.is_empty() {
                    "(the message)".to_string()
                } else {
                    parent.join(".")
                };
                return Err(wrong_type(
                    &parent,
                    &format!("an object or array holding `{seg}`"),
                ));
            }
        };
        match next {
            Some(v) => cur = v,
            None => {
                return Err(DecodeError::new(
                    "missing_field",
                    format!("field `{path}` is absent"),
                ))
            }
        }
    }
    if cur.is_null() {
        return Err(DecodeError::new(
            "missing_field",
            format!("field `{path}` is null"),
        ));
    }
    Ok(cur)
}

/// A non-negative integer count.
fn count_u64(v: &Value, path: &str) -> Result<u64, DecodeError> {
    let bad = |what: &str| DecodeError::new("bad_count", format!("field `{path}` is {what}"));
    match v {
        Value::Number(n) => {
            if let Some(c) = n.as_u64() {
                Ok(c)
            } else if n.as_i64().is_some() {
                Err(bad("negative"))
            } else if n
                .as_f64()
                .is_some_and(|f| f >= 18_446_744_073_709_551_616.0)
            {
                // An integer too large for serde_json's u64 arrives as a float.
                Err(bad("too large"))
            } else {
                Err(wrong_type(path, "a non-negative integer"))
            }
        }
        _ => Err(wrong_type(path, "a non-negative integer")),
    }
}

/// A count of one interval: at most `u32::MAX`.
fn count_u32(v: &Value, path: &str) -> Result<u32, DecodeError> {
    u32::try_from(count_u64(v, path)?).map_err(|_| {
        DecodeError::new(
            "bad_count",
            format!("field `{path}` is too large for one interval"),
        )
    })
}

/// A time: RFC 3339 text with an offset, or Unix seconds or milliseconds.
fn time_ms(v: &Value, path: &str) -> Result<i64, DecodeError> {
    let bad = || {
        DecodeError::new(
            "bad_time",
            format!("field `{path}` is not an RFC 3339 time with an offset, or a Unix time"),
        )
    };
    let ms = match v {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map_err(|_| bad())?
            .timestamp_millis(),
        Value::Number(n) => {
            let f = n.as_f64().ok_or_else(bad)?;
            if !f.is_finite() || f < 0.0 {
                return Err(bad());
            }
            let ms = if f >= MS_THRESHOLD { f } else { f * 1000.0 };
            if ms > MAX_TIME_MS as f64 {
                return Err(bad());
            }
            // Integer milliseconds are exact in an f64 below 2^53 (year 287396); a fraction of
            // a millisecond is cut, as the dialect parsers cut fractions.
            match n.as_u64() {
                Some(i) if f >= MS_THRESHOLD => i64::try_from(i).map_err(|_| bad())?,
                Some(i) => i64::try_from(i)
                    .ok()
                    .and_then(|s| s.checked_mul(1000))
                    .ok_or_else(bad)?,
                None => ms.floor() as i64,
            }
        }
        _ => return Err(wrong_type(path, "an RFC 3339 string or a Unix time number")),
    };
    if !(0..=MAX_TIME_MS).contains(&ms) {
        return Err(bad());
    }
    Ok(ms)
}

/// A line name: a non-empty string or an integer id.
fn line_name(v: &Value, path: &str) -> Result<String, DecodeError> {
    let name = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return Err(wrong_type(path, "a string or an integer")),
    };
    if name.is_empty() {
        return Err(DecodeError::new(
            "missing_field",
            format!("field `{path}` is empty"),
        ));
    }
    if name.len() > MAX_NAME {
        return Err(DecodeError::new(
            "name_too_long",
            format!("field `{path}` is longer than {MAX_NAME} bytes"),
        ));
    }
    Ok(name)
}

/// The reading of one JSON message.
fn json_group(
    src: &CounterSource,
    f: &JsonFields,
    payload: &[u8],
    received_ms: i64,
) -> Result<Group, DecodeError> {
    let v = parse_json(payload)?;
    let line = match &f.line {
        Some(p) => line_name(lookup(&v, p)?, p)?,
        None => DEFAULT_LINE.to_string(),
    };
    let at_ms = match &f.time {
        Some(p) => time_ms(lookup(&v, p)?, p)?,
        None => received_ms,
    };
    let door = src.door.clone();
    let input = if f.cumulative {
        let ins = Some(count_u64(lookup(&v, &f.ins)?, &f.ins)?);
        let outs = match &f.outs {
            Some(p) => Some(count_u64(lookup(&v, p)?, p)?),
            None => None,
        };
        CountInput::Cumulative {
            door,
            line: line.clone(),
            at_ms,
            ins,
            outs,
            // A JSON bridge does not say how wide its totals are.
            wrap: None,
            resets_daily: false,
        }
    } else if let Some(sp) = &f.start {
        let start_ms = time_ms(lookup(&v, sp)?, sp)?;
        if at_ms <= start_ms {
            return Err(DecodeError::new(
                "inconsistent",
                format!(
                    "the interval from `{sp}` to `{}` does not end after it starts",
                    f.time.as_deref().unwrap_or("the arrival")
                ),
            ));
        }
        let ins = count_u32(lookup(&v, &f.ins)?, &f.ins)?;
        let outs = match &f.outs {
            Some(p) => count_u32(lookup(&v, p)?, p)?,
            None => 0,
        };
        CountInput::Interval {
            door,
            line: line.clone(),
            start_ms,
            end_ms: at_ms,
            ins,
            outs,
        }
    } else {
        return Err(DecodeError::new(
            "no_interval",
            "the profile's [mqtt.fields] has neither `start` nor `cumulative = true`, so the \
             counts cannot be placed in time",
        ));
    };
    let mut g = Group {
        received_ms,
        ..Group::default()
    };
    if src.counts_line(&line) {
        g.inputs.push(input);
    } else {
        g.other_lines = 1;
    }
    Ok(g)
}

/// Messages waiting for the worker. Small, because one may be up to `MAX_BODY`; counters
/// publish a message a minute or so.
const QUEUE: usize = 16;
/// Requests (acknowledgements, the subscription) waiting for the event loop. The worker sends
/// at most one acknowledgement per unacknowledged QoS 1 delivery, and the broker's in-flight
/// window bounds those (mosquitto 20, EMQX 32 by default), so the worker never waits here.
const REQUESTS: usize = 1024;
/// MQTT keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// First wait after a connection error …
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// … doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Largest packet read: a payload up to `MAX_BODY` plus a topic of up to 64 KiB, so that a
/// payload just over the limit is counted `rejected_too_large`. A larger one breaks the
/// connection (rumqttc cannot skip it): set the broker's `message_size_limit` below it.
const MAX_PACKET: usize = wire::MAX_BODY + 65_536 + 16;
/// Messages remembered to recognise a broker's redelivery.
const RECENT: usize = 256;
/// How long a stop waits for queued messages to be committed and acknowledged.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One message for the worker.
struct Job {
    publish: Publish,
    /// When the poll loop took it (Unix ms): the time of Milesight totals, whatever the queue.
    received_ms: i64,
    /// A DUP-flagged repeat of a message already taken: acknowledge only.
    redelivered: bool,
}

/// The MQTT client id of source `name` (`<gateway>-<source>`): `store-edge-<name>`,
/// characters other than ASCII
/// letters, digits, `-` and `_` replaced by `-`, at most 64 bytes. (MQTT 3.1.1 only promises
/// 23; mosquitto, EMQX and HiveMQ take longer ids.)
fn client_id(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("store-edge-{clean}");
    id.truncate(64);
    id
}

/// Remembers the last [`RECENT`] messages taken, to recognise a redelivery.
#[derive(Debug, Default)]
struct Recent {
    hashes: VecDeque<u64>,
}

impl Recent {
    /// Whether `(topic, payload)` is a DUP-flagged repeat of a message taken recently; else
    /// remembers it.
    fn is_redelivery(&mut self, dup: bool, topic: &str, payload: &[u8]) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        let h = h.finish();
        if dup && self.hashes.contains(&h) {
            return true;
        }
        if self.hashes.len() >= RECENT {
            self.hashes.pop_front();
        }
        self.hashes.push_back(h);
        false
    }
}

/// Subscribes to `topic` at `broker` until cancelled.
pub async fn run(
    ctx: Arc<CounterContext>,
    broker: String,
    topic: String,
    cancel: CancellationToken,
) {
    let name = ctx.src.name.clone();
    // The config checked `host:port`.
    let Some((host, port)) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
    else {
        tracing::error!(source = %name, broker = %broker, "MQTT broker is not host:port");
        return;
    };
    let id = client_id(&format!("{}-{name}", ctx.src.gateway_id));
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, 64 * 1024);
    if let Some(c) = &ctx.src.credentials {
        opts.set_credentials(c.username.clone(), c.password.clone());
    }
    let (client, mut events) = AsyncClient::new(opts, REQUESTS);
    let (tx, rx) = mpsc::channel::<Job>(QUEUE);
    let mut worker = tokio::spawn(work(ctx.clone(), client.clone(), rx, cancel.clone()));
    let mut recent = Recent::default();
    let mut backoff = BACKOFF_MIN;
    let mut connected = false;
    tracing::info!(source = %name, broker = %broker, topic = %topic, "counter MQTT subscriber");
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                backoff = BACKOFF_MIN;
                ctx.stats.count("mqtt_connects", 1);
                tracing::info!(source = %name, broker = %broker, session_present = ack.session_present, "counter MQTT connected");
                // Queued for the event loop, never awaited here: this task must keep polling.
                if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(source = %name, error = %e, "cannot queue the MQTT subscription");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    ctx.stats.count("mqtt_subscribe_refused", 1);
                    tracing::warn!(source = %name, topic = %topic, "the MQTT broker refused the subscription (check the topic and the user's ACL)");
                } else {
                    tracing::info!(source = %name, topic = %topic, "counter MQTT subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                ctx.stats.count("mqtt_messages", 1);
                ctx.stats
                    .frames_read
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let redelivered = recent.is_redelivery(p.dup, &p.topic, &p.payload);
                let job = Job {
                    publish: p,
                    received_ms: chrono::Utc::now().timestamp_millis(),
                    redelivered,
                };
                // A full queue makes this loop wait: see the module header.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    sent = tx.send(job) => if sent.is_err() {
                        tracing::error!(source = %name, "the MQTT worker stopped");
                        break;
                    },
                }
            }
            Ok(_) => {}
            Err(e) => {
                connected = false;
                ctx.stats.count("mqtt_errors", 1);
                tracing::warn!(source = %name, broker = %broker, error = %e, retry_in = ?backoff, "counter MQTT connection failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // Stop: the worker commits and acknowledges what is queued; the loop keeps polling so the
    // acknowledgements reach the broker, then disconnects. Messages arriving meanwhile are not
    // acknowledged, so the broker delivers them again to the next session.
    drop(tx);
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    let mut worker_done = false;
    if connected {
        loop {
            tokio::select! {
                _ = &mut worker, if !worker_done => {
                    worker_done = true;
                    if client.try_disconnect().is_err() {
                        break;
                    }
                }
                e = tokio::time::timeout_at(deadline, events.poll()) => match e {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                },
            }
        }
    }
    if !worker_done {
        // Bounded: after the stop the worker tries each queued message once.
        let _ = worker.await;
    }
    let c = ctx.clone();
    let _ = tokio::task::spawn_blocking(move || c.save_counters()).await;
    tracing::info!(source = %name, "counter MQTT subscriber stopped");
}

/// The worker: decodes, commits and acknowledges the queued messages in order.
async fn work(
    ctx: Arc<CounterContext>,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Job>,
    cancel: CancellationToken,
) {
    while let Some(job) = rx.recv().await {
        let done = if job.redelivered {
            ctx.stats.count("mqtt_redelivered", 1);
            true
        } else {
            apply(&ctx, &job.publish, job.received_ms, &cancel).await
        };
        if !done {
            // Not stored (the agent is stopping with the store failing): unacknowledged, the
            // broker delivers it again to the next session.
            continue;
        }
        if cancel.is_cancelled() {
            // The poll loop is flushing: queue without waiting.
            let _ = client.try_ack(&job.publish);
        } else {
            tokio::select! {
                _ = cancel.cancelled() => { let _ = client.try_ack(&job.publish); }
                r = client.ack(&job.publish) => if r.is_err() { break },
            }
        }
    }
}

/// Decodes and commits one message; `false` if its counts could not be stored.
async fn apply(
    ctx: &Arc<CounterContext>,
    p: &Publish,
    received_ms: i64,
    cancel: &CancellationToken,
) -> bool {
    let group = match decode_payload(ctx, &p.payload, received_ms) {
        Ok(g) => g,
        Err(e) => {
            ctx.stats.count(&format!("rejected_{}", e.reason()), 1);
            tracing::warn!(source = %ctx.src.name, reason = e.reason(), detail = %e.detail, "MQTT counter message rejected");
            let c = ctx.clone();
            let _ = tokio::task::spawn_blocking(move || c.save_counters()).await;
            // Sending it again would not help: acknowledged.
            return true;
        }
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let (c, g) = (ctx.clone(), group.clone());
        match tokio::task::spawn_blocking(move || c.commit_groups(vec![g], None)).await {
            Ok(Ok(_)) => return true,
            Ok(Err(e)) => {
                ctx.stats.count("store_errors", 1);
                tracing::warn!(source = %ctx.src.name, error = %e, retry_in = ?backoff, "MQTT counter message not stored");
            }
            Err(e) => {
                tracing::error!(source = %ctx.src.name, error = %e, "MQTT counter commit failed");
                return false;
            }
        }
        // The store is failing: retry (the queue fills and the broker holds the rest) until
        // it recovers or the agent stops.
        if cancel.is_cancelled() {
            return false;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::counter_profile::{parse_counter, resolve_counter, CounterProfile};
    use crate::config::FileReads;
    use crate::sources::counter::config::{CounterInput, CounterSource};
    use crate::stats::SourceStats;
    use edge_core::LocalClock;

    const PROFILES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hardware-profiles/counter"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{PROFILES}/fixtures/{name}")).unwrap()
    }

    /// A context of `profile` on a fresh store (kept alive by the returned guard).
    fn ctx_of(
        profile: CounterProfile,
        lines: Option<&[&str]>,
    ) -> (Arc<CounterContext>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::open(dir.path()).unwrap());
        let src = CounterSource {
            name: "door-main".into(),
            profile: Arc::new(profile),
            door: "main".into(),
            lines: lines.map(|l| l.iter().map(|s| s.to_string()).collect()),
            input: CounterInput::Mqtt {
                broker: "127.0.0.1:1883".into(),
                topic: "t".into(),
            },
            tokens: Vec::new(),
            users: Vec::new(),
            max_body: wire::MAX_BODY,
            credentials: None,
            gateway_id: "gw-1".into(),
        };
        let ctx = CounterContext::new(
            src,
            LocalClock::new(chrono_tz::Asia::Shanghai),
            store,
            SourceStats::of_kind("door-main", "counter"),
        );
        (ctx, dir)
    }

    fn builtin(id: &str, lines: Option<&[&str]>) -> (Arc<CounterContext>, tempfile::TempDir) {
        ctx_of(
            resolve_counter(id, std::path::Path::new(PROFILES), FileReads::Disk).unwrap(),
            lines,
        )
    }

    /// A JSON profile with these `[mqtt.fields]` lines.
    fn json_profile(fields: &str) -> (Arc<CounterContext>, tempfile::TempDir) {
        let text = format!(
            "kind = \"counter\"\nvendor = \"T\"\nmodel = \"T\"\ntransport = \"mqtt\"\n\
             dialect = \"json\"\n[mqtt]\ntopic = \"t/#\"\n[mqtt.fields]\n{fields}\n"
        );
        ctx_of(parse_counter("test", &text).unwrap(), None)
    }

    /// A Milesight profile without a payload field (raw or text payloads).
    fn raw_milesight() -> (Arc<CounterContext>, tempfile::TempDir) {
        let text = "kind = \"counter\"\nvendor = \"T\"\nmodel = \"T\"\ntransport = \"mqtt\"\n\
                    dialect = \"milesight-tlv\"\n[mqtt]\ntopic = \"t/#\"\n";
        ctx_of(parse_counter("test", text).unwrap(), None)
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn cum(line: &str, at_ms: i64, ins: Option<u64>, outs: Option<u64>) -> CountInput {
        CountInput::Cumulative {
            door: "main".into(),
            line: line.into(),
            at_ms,
            ins,
            outs,
            wrap: Some(1 << 32),
            resets_daily: false,
        }
    }

    /// TLV bytes of line 1 totals.
    fn tlv(ins: u32, outs: u32) -> Vec<u8> {
        let mut b = vec![0x03, 0xD2];
        b.extend_from_slice(&ins.to_le_bytes());
        b.extend_from_slice(&[0x04, 0xD2]);
        b.extend_from_slice(&outs.to_le_bytes());
        b
    }

    fn reason(r: Result<Group, DecodeError>) -> &'static str {
        r.map(|g| panic!("decoded: {g:?}")).unwrap_or_else(|e| {
            assert!(!e.detail.is_empty());
            e.reason()
        })
    }

    /// The gateway-wrapped VS133 uplink: battery, line 1 totals 72/60 with period counts 3/2,
    /// line 2 totals 15/14 (base64 under "data"). Each line's totals become one reading at
    /// the arrival time; the period counts are not used.
    #[test]
    fn milesight_fixture_decodes_through_its_profile() {
        let (ctx, _dir) = builtin("counter/milesight-vs133", None);
        let at = ms("2026-11-20T10:15:04+08:00");
        let g = decode_payload(&ctx, &fixture("milesight-vs133.json"), at).unwrap();
        assert_eq!(
            g.inputs,
            vec![
                cum("line1", at, Some(72), Some(60)),
                cum("line2", at, Some(15), Some(14)),
            ]
        );
        assert_eq!((g.received_ms, g.other_lines), (at, 0));
        assert!(g.ignored.is_empty());
        // Only line 1 counts this door.
        let (ctx, _dir) = builtin("counter/milesight-vs133", Some(&["line1"]));
        let g = decode_payload(&ctx, &fixture("milesight-vs133.json"), at).unwrap();
        assert_eq!(g.inputs, vec![cum("line1", at, Some(72), Some(60))]);
        assert_eq!(g.other_lines, 1);
    }

    /// The JSON bridge message: one 15-minute interval of line "entrance", 14 in, 9 out.
    #[test]
    fn json_fixture_decodes_through_its_profile() {
        let (ctx, _dir) = builtin("counter/mqtt-json-interval", None);
        let received = ms("2026-11-20T10:15:07+08:00");
        let g = decode_payload(&ctx, &fixture("mqtt-json-interval.json"), received).unwrap();
        assert_eq!(
            g.inputs,
            vec![CountInput::Interval {
                door: "main".into(),
                line: "entrance".into(),
                start_ms: ms("2026-11-20T02:00:00Z"),
                end_ms: ms("2026-11-20T02:15:00Z"),
                ins: 14,
                outs: 9,
            }]
        );
        assert_eq!(g.received_ms, received);
        let (ctx, _dir) = builtin("counter/mqtt-json-interval", Some(&["exit"]));
        let g = decode_payload(&ctx, &fixture("mqtt-json-interval.json"), received).unwrap();
        assert!(g.inputs.is_empty());
        assert_eq!(g.other_lines, 1);
    }

    /// Uplinks through the tracker and the store: 72→80 in, 60→65 out store 8/5 (the first
    /// sets the baseline), a drop to 3/1 is a reset counting 3/1, a repeated interval
    /// message counts once.
    #[test]
    fn decoded_messages_commit_like_the_subscriber_does() {
        let (ctx, dir) = raw_milesight();
        let t0 = ms("2026-11-20T10:00:00+08:00");
        let mut stored = Vec::new();
        for (i, (ins, outs)) in [(72, 60), (80, 65), (3, 1)].into_iter().enumerate() {
            let at = t0 + i as i64 * 60_000;
            let g = decode_payload(&ctx, &tlv(ins, outs), at).unwrap();
            stored.push(ctx.commit_groups(vec![g], None).unwrap().stored);
        }
        assert_eq!(stored, [0, 1, 1]);
        let counters: std::collections::BTreeMap<_, _> = ctx.stats.values().into_iter().collect();
        assert_eq!(counters.get("baselined"), Some(&1));
        assert_eq!(counters.get("resets"), Some(&2));
        drop(ctx);
        let r = crate::store::Reader::open(dir.path()).unwrap();
        let ivs = r.counter_intervals_on("2026-11-20").unwrap();
        let got: Vec<(i64, i64, u32, u32)> = ivs
            .iter()
            .map(|i| (i.start_ms, i.end_ms, i.ins, i.outs))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            got,
            [(t0, t0 + 60_000, 8, 5), (t0 + 60_000, t0 + 120_000, 3, 1)]
        );

        let (ctx, _dir) = builtin("counter/mqtt-json-interval", None);
        let body = fixture("mqtt-json-interval.json");
        let received = ms("2026-11-20T10:15:07+08:00");
        let outcomes: Vec<(u64, u64)> = (0..2)
            .map(|_| {
                let g = decode_payload(&ctx, &body, received).unwrap();
                let o = ctx.commit_groups(vec![g], None).unwrap();
                (o.stored, o.duplicates)
            })
            .collect();
        assert_eq!(outcomes, [(1, 0), (0, 1)]);
    }

    /// Raw bytes, hex text and base64 text of the same uplink decode alike; period-only
    /// lines and count-free uplinks are ignored with a reason.
    #[test]
    fn milesight_raw_and_text_payloads() {
        let (ctx, _dir) = raw_milesight();
        let at = ms("2026-11-20T10:00:00Z");
        let bytes = tlv(72, 60);
        let want = vec![cum("line1", at, Some(72), Some(60))];
        let hex_text = hex::encode(&bytes);
        for payload in [
            bytes.clone(),
            hex_text.clone().into_bytes(),
            hex_text.to_uppercase().into_bytes(),
            b"A9JIAAAABNI8AAAA".to_vec(),
            b"A9JIAAAABNI8AAAA\n".to_vec(),
        ] {
            assert_eq!(
                decode_payload(&ctx, &payload, at).unwrap().inputs,
                want,
                "{payload:?}"
            );
        }
        // Line 4 period counts only (vendor example), and a battery-only uplink.
        let g = decode_payload(&ctx, b"0ECC05000700", at).unwrap();
        assert_eq!(
            (g.inputs.len(), g.ignored.clone()),
            (0, vec!["period_only"])
        );
        let g = decode_payload(&ctx, &[0x01, 0x75, 0x5A], at).unwrap();
        assert_eq!((g.inputs.len(), g.ignored), (0, vec!["no_counts"]));
        // Only "in" on the wire: the reading has no "out".
        let g = decode_payload(&ctx, b"03D248000000", at).unwrap();
        assert_eq!(g.inputs, vec![cum("line1", at, Some(72), None)]);
    }

    #[test]
    fn milesight_rejections() {
        let (wrapped, _d1) = builtin("counter/milesight-vs133", None);
        let (raw, _d2) = raw_milesight();
        let at = ms("2026-11-20T10:00:00Z");
        let table: [(&CounterContext, &[u8], &str); 11] = [
            (&wrapped, b"{\"data\":\"A9JI!AAA\"}", "bad_text"),
            (&wrapped, b"{\"data\":\"03D2F\"}", "bad_text"),
            (&wrapped, b"{\"data\":7}", "wrong_type"),
            (&wrapped, b"{\"devEUI\":\"x\"}", "missing_field"),
            (&wrapped, b"{\"data\":null}", "missing_field"),
            (&wrapped, b"{\"data\":", "malformed_json"),
            (&wrapped, b"A9JIAAAA", "malformed_json"),
            (&wrapped, b"  ", "empty"),
            // Unknown pair 03 67, and a truncated record.
            (&raw, b"03D248000000 0367 1001", "malformed_tlv"),
            (&raw, &[0x03, 0xD2, 0x48], "malformed_tlv"),
            (&raw, b"", "empty"),
        ];
        for (ctx, payload, want) in table {
            assert_eq!(
                reason(decode_payload(ctx, payload, at)),
                want,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        let big = vec![b' '; wire::MAX_BODY + 1];
        assert_eq!(reason(decode_payload(&raw, &big, at)), "too_large");
    }

    #[test]
    fn json_rejections_name_the_field() {
        let (ctx, _dir) = builtin("counter/mqtt-json-interval", None);
        let at = ms("2026-11-20T10:20:00+08:00");
        let ok = serde_json::json!({
            "line": "entrance", "from": "2026-11-20T10:00:00+08:00",
            "to": "2026-11-20T10:15:00+08:00", "counts": {"in": 14, "out": 9}
        });
        let with = |path: &[&str], v: Value| {
            let mut m = ok.clone();
            let mut cur = &mut m;
            for p in &path[..path.len() - 1] {
                cur = cur.get_mut(*p).unwrap();
            }
            cur[path[path.len() - 1]] = v;
            m.to_string().into_bytes()
        };
        let table: Vec<(Vec<u8>, &str, &str)> = vec![
            (b"{\"line\":".to_vec(), "malformed_json", "line 1"),
            (b"[1,2]".to_vec(), "wrong_type", "(the message)"),
            (
                with(&["counts", "in"], serde_json::json!("14")),
                "wrong_type",
                "counts.in",
            ),
            (
                with(&["counts", "in"], serde_json::json!(14.0)),
                "wrong_type",
                "counts.in",
            ),
            (
                with(&["counts", "in"], serde_json::json!(-1)),
                "bad_count",
                "counts.in",
            ),
            (
                with(&["counts", "out"], serde_json::json!(5_000_000_000u64)),
                "bad_count",
                "counts.out",
            ),
            (
                with(&["counts"], serde_json::json!(7)),
                "wrong_type",
                "counts",
            ),
            (
                with(&["counts"], serde_json::json!({"in": 3})),
                "missing_field",
                "counts.out",
            ),
            (
                with(&["counts", "in"], Value::Null),
                "missing_field",
                "counts.in",
            ),
            (
                with(&["to"], serde_json::json!("20.11.2026 10:15")),
                "bad_time",
                "to",
            ),
            (
                with(&["to"], serde_json::json!("2026-11-20T10:15:00")),
                "bad_time",
                "to",
            ),
            (with(&["from"], serde_json::json!(-5)), "bad_time", "from"),
            (
                with(&["from"], serde_json::json!(true)),
                "wrong_type",
                "from",
            ),
            (
                with(&["from"], serde_json::json!("2026-11-20T10:15:00+08:00")),
                "inconsistent",
                "from",
            ),
            (
                with(&["line"], serde_json::json!("")),
                "missing_field",
                "line",
            ),
            (
                with(&["line"], serde_json::json!(["a"])),
                "wrong_type",
                "line",
            ),
            (
                with(&["line"], serde_json::json!("x".repeat(MAX_NAME + 1))),
                "name_too_long",
                "line",
            ),
        ];
        for (payload, want, path) in table {
            let e = decode_payload(&ctx, &payload, at).unwrap_err();
            assert_eq!(e.reason(), want, "{}", String::from_utf8_lossy(&payload));
            assert!(e.detail.contains(path), "{e}");
            // Details name places, never values.
            assert!(!e.detail.contains("14") || path == "line 1", "{e}");
        }
    }

    /// Times as Unix seconds, milliseconds and fractional seconds; array paths; integer
    /// line ids; running totals; a profile that cannot place its counts.
    #[test]
    fn json_field_variants() {
        let t = ms("2026-11-20T02:15:00Z");
        let (ctx, _d) = json_profile(
            "time = \"ts\"\nstart = \"window.0\"\nins = \"lines.0.in\"\nline = \"lines.0.id\"",
        );
        for start in [
            serde_json::json!((t - 900_000) / 1000),
            serde_json::json!(t - 900_000),
            serde_json::json!((t - 900_000) as f64 / 1000.0 + 0.0004),
        ] {
            let body = serde_json::json!({
                "ts": t / 1000, "window": [start], "lines": [{"id": 2, "in": 5}]
            });
            let g = decode_payload(&ctx, body.to_string().as_bytes(), t).unwrap();
            assert_eq!(
                g.inputs,
                vec![CountInput::Interval {
                    door: "main".into(),
                    line: "2".into(),
                    start_ms: t - 900_000,
                    end_ms: t,
                    ins: 5,
                    outs: 0,
                }],
                "{body}"
            );
        }
        let body = br#"{"ts": 1, "window": 5, "lines": [{"id": "a", "in": 1}]}"#;
        assert_eq!(reason(decode_payload(&ctx, body, t)), "wrong_type");

        let (ctx, _d) = json_profile("ins = \"in\"\nouts = \"out\"\ncumulative = true");
        let g = decode_payload(&ctx, br#"{"in": 1200, "out": 1100}"#, t).unwrap();
        assert_eq!(
            g.inputs,
            vec![CountInput::Cumulative {
                door: "main".into(),
                line: "line".into(),
                at_ms: t,
                ins: Some(1200),
                outs: Some(1100),
                wrap: None,
                resets_daily: false,
            }]
        );
        // Neither an interval start nor running totals: the profile itself is refused.
        let text = "kind = \"counter\"\nvendor = \"T\"\nmodel = \"T\"\ntransport = \"mqtt\"\n\
                    dialect = \"json\"\n[mqtt]\ntopic = \"t/#\"\n[mqtt.fields]\nins = \"in\"\n";
        assert_eq!(parse_counter("test", text).unwrap_err().key, "mqtt.fields");
    }

    /// A Xovis v5 push carried over MQTT goes through the dialect parser.
    #[test]
    fn dialect_payloads_use_the_push_parser() {
        let text = "kind = \"counter\"\nvendor = \"T\"\nmodel = \"T\"\ntransport = \"mqtt\"\n\
                    dialect = \"xovis-v5\"\n[mqtt]\ntopic = \"xovis/#\"\n";
        let (ctx, _d) = ctx_of(parse_counter("test", text).unwrap(), None);
        let body = fixture("xovis-v5.json");
        let g = decode_payload(&ctx, &body, 1_714_531_600_000).unwrap();
        assert_eq!(g.inputs.len(), 6);
        assert_eq!(reason(decode_payload(&ctx, b"{", 0)), "malformed_json");
    }

    #[test]
    fn client_ids_are_sanitised_and_bounded() {
        assert_eq!(client_id("counter-main"), "store-edge-counter-main");
        assert_eq!(client_id("Tür 1/west"), "store-edge-T-r-1-west");
        assert_eq!(client_id(&"x".repeat(100)).len(), 64);
    }

    /// Only a DUP-flagged repeat of a recent message is a redelivery; an identical message
    /// without the flag is new (the tracker recognises repeated intervals), and old messages
    /// are forgotten.
    #[test]
    fn redeliveries_are_recognised() {
        let mut r = Recent::default();
        assert!(!r.is_redelivery(false, "a", b"1"));
        assert!(!r.is_redelivery(false, "a", b"1"));
        assert!(r.is_redelivery(true, "a", b"1"));
        assert!(!r.is_redelivery(true, "b", b"1"));
        assert!(!r.is_redelivery(true, "a", b"2"));
        for i in 0..RECENT {
            r.is_redelivery(false, "fill", &i.to_le_bytes());
        }
        assert!(!r.is_redelivery(true, "a", b"1"));
        assert_eq!(r.hashes.len(), RECENT);
    }

    /// The `mqtt_payload` fuzz target's seeds (and crash inputs kept there) decode or fail
    /// with a reason under each kind of MQTT profile, on the stable toolchain too.
    #[test]
    fn fuzz_seeds_decode_or_fail_with_a_reason() {
        let contexts = [
            builtin("counter/milesight-vs133", Some(&["line1"])),
            builtin("counter/mqtt-json-interval", None),
            raw_milesight(),
            json_profile("ins = \"counts.0.in\"\ntime = \"ts\"\ncumulative = true"),
        ];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/mqtt_payload");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let payload = std::fs::read(entry.unwrap().path()).unwrap();
            for (ctx, _) in &contexts {
                match decode(ctx.decoder(), &payload, 1_795_252_504_000) {
                    Ok(g) => assert!(g.inputs.iter().all(|i| matches!(i,
                        CountInput::Interval { door, .. } | CountInput::Cumulative { door, .. }
                            if door == "main"))),
                    Err(e) => assert!(!e.reason().is_empty() && !e.detail.is_empty()),
                }
            }
            n += 1;
        }
        assert!(n > 30, "{n} seeds in {dir}");
    }
}
