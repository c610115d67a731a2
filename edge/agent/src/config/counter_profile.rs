//! People-counter profiles (`hardware-profiles/counter/*.toml`): how a door counter model
//! delivers its counts — pushed over HTTP, polled over HTTP, polled over Modbus RTU, or
//! published over MQTT — and in which payload dialect.
//!
//! A profile describes the model; the `[[sources.counter]]` table adds only what is site
//! specific (listen address, device URL, serial port, broker, door name, credentials).

use std::time::Duration;

use edge_wire::counter::Dialect;
use edge_wire::modbus::{FieldKind, FieldSpec, Function, WordOrder, MAX_READ_QUANTITY, MAX_SLAVE};
use serde::Deserialize;

use super::profiles::{deserialize, ProfileError, SerialSettings};

/// A counter profile as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCounterProfile {
    /// Always `"counter"`.
    pub kind: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model (and firmware) as sold.
    pub model: String,
    /// Installer notes (where to configure the push, quirks); for people reading the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub notes: String,
    /// `"http-push"`, `"http-poll"`, `"modbus-rtu"` or `"mqtt"`.
    pub transport: String,
    /// Payload dialect: an HTTP dialect (`"xovis-v5"`, `"xovis-legacy"`, `"brickstream"`,
    /// `"irisys"`, `"hikvision-event"`, `"hikvision-search"`, `"axis-live-sum"`); over MQTT
    /// also `"milesight-tlv"` or `"json"`; a Modbus counter has none (`"registers"`).
    pub dialect: String,
    /// Direction labels of dialects that name them (Xovis).
    #[serde(default)]
    pub direction: Option<RawDirection>,
    /// `transport = "http-push"`.
    #[serde(default)]
    pub push: Option<RawPush>,
    /// `transport = "http-poll"`.
    #[serde(default)]
    pub poll: Option<RawPoll>,
    /// `transport = "modbus-rtu"`.
    #[serde(default)]
    pub modbus: Option<RawModbus>,
    /// `transport = "mqtt"`.
    #[serde(default)]
    pub mqtt: Option<RawMqtt>,
}

/// `[direction]`: which count labels mean in and out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirection {
    /// Label of entries (Xovis default `"fw"`).
    #[serde(rename = "in")]
    pub into: String,
    /// Label of exits (Xovis default `"bw"`).
    pub out: String,
}

/// `[push]`: the device POSTs its counts to the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    /// Default URL path the device posts to (a source may override it).
    pub path: String,
}

/// `[poll]`: the agent asks the device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    /// Request path and query on the device (`/local/tvpc/.api?live-sum.json`).
    pub path: String,
    /// `"GET"` (default) or `"POST"`.
    #[serde(default = "default_method")]
    pub method: String,
    /// POST body template; `{start}` and `{end}` become the local ISO times of the window
    /// asked for, `{start_utc}`/`{end_utc}` the UTC ones.
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of the POST body.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Time between polls (default 60 s).
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How far back each query window reaches (searches only; default 1 h), so intervals
    /// missed while the device was unreachable are asked for again.
    #[serde(default = "default_lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// Request timeout (default 10 s).
    #[serde(default = "default_http_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_method() -> String {
    "GET".into()
}
fn default_poll_interval() -> Duration {
    DEFAULT_POLL_INTERVAL
}
fn default_lookback() -> Duration {
    Duration::from_secs(3600)
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Default time between HTTP polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// `[modbus]`: a register map read over RS-485.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModbus {
    /// Line settings.
    pub serial: SerialSettings,
    /// Default slave address (1–247; a source may override it).
    pub slave: u8,
    /// 3 (read holding registers) or 4 (read input registers).
    pub function: u8,
    /// `0` when the map's addresses are protocol addresses, `1` when they are 1-based
    /// register numbers (`40001` style numbers are written without the leading 3/4).
    #[serde(default)]
    pub addressing: u16,
    /// First register read, in the map's addressing.
    pub start: u16,
    /// Registers read.
    pub quantity: u16,
    /// Time between polls (default 10 s).
    #[serde(default = "default_modbus_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Reply timeout (default 500 ms).
    #[serde(default = "default_modbus_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of a failed poll before it counts as missed (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Name of the counting line the registers count (default `"beam"`).
    #[serde(default = "default_line")]
    pub line: String,
    /// Entries register.
    pub ins: RawField,
    /// Exits register, when the counter has one.
    #[serde(default)]
    pub outs: Option<RawField>,
    /// The registers wrap to 0 after this value + 1 (`65536` for a 16-bit counter); absent:
    /// the field's width.
    #[serde(default)]
    pub wrap: Option<u64>,
}

fn default_modbus_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_modbus_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_retries() -> u32 {
    2
}
fn default_line() -> String {
    "beam".into()
}

/// One register-map field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// Register address, in the map's addressing.
    pub offset: u16,
    /// `"u16"` or `"u32"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `"high-first"` (ABCD, default) or `"low-first"` (CDAB) for a u32.
    #[serde(default = "default_word_order")]
    pub word_order: String,
    /// The raw value is divided by this (default 1).
    #[serde(default = "default_scale")]
    pub scale: u32,
}

fn default_word_order() -> String {
    "high-first".into()
}
fn default_scale() -> u32 {
    1
}

/// `[mqtt]`: the counter publishes to a broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// Topic filter to subscribe to (a source may override it).
    pub topic: String,
    /// Milesight: the JSON field holding the TLV payload (hex or base64) when the gateway
    /// wraps it (`"data"`); absent: the message is the raw TLV bytes or their hex/base64 text.
    #[serde(default)]
    pub payload_field: Option<String>,
    /// Milesight: names of lines 1–4 (default `"line1"` … `"line4"`).
    #[serde(default)]
    pub line_names: Vec<String>,
    /// JSON payloads: where the values are.
    #[serde(default)]
    pub fields: Option<RawJsonFields>,
}

/// Field paths (dot separated, `a.b.0.c`) of a JSON counter payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonFields {
    /// Time of the reading or end of the interval: RFC 3339, or Unix seconds/milliseconds.
    /// Absent: when the message arrived.
    #[serde(default)]
    pub time: Option<String>,
    /// Start of the interval (interval payloads).
    #[serde(default)]
    pub start: Option<String>,
    /// Entries.
    pub ins: String,
    /// Exits.
    #[serde(default)]
    pub outs: Option<String>,
    /// Line name (default: the source's door line `"line"`).
    #[serde(default)]
    pub line: Option<String>,
    /// The values are running totals (differenced by the agent) rather than per interval.
    #[serde(default)]
    pub cumulative: bool,
}

/// A validated counter profile.
#[derive(Debug, Clone)]
pub struct CounterProfile {
    /// Profile id or file.
    pub id: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Label of entries.
    pub direction_in: String,
    /// Label of exits.
    pub direction_out: String,
    /// How counts arrive.
    pub transport: CounterTransport,
}

/// How counts arrive, with what the profile says about it.
#[derive(Debug, Clone)]
pub enum CounterTransport {
    /// POSTed to the agent's listener.
    Push {
        /// Payload dialect.
        dialect: Dialect,
        /// Default path.
        path: String,
    },
    /// Polled from the device.
    Poll(PollProfile),
    /// Polled over Modbus RTU.
    Modbus(ModbusProfile),
    /// Published to an MQTT broker.
    Mqtt(MqttProfile),
}

/// An HTTP poll.
#[derive(Debug, Clone)]
pub struct PollProfile {
    /// Dialect of the replies.
    pub dialect: Dialect,
    /// Path and query.
    pub path: String,
    /// POST (with `body`) instead of GET.
    pub post: bool,
    /// POST body template.
    pub body: Option<String>,
    /// POST content type.
    pub content_type: String,
    /// Time between polls.
    pub interval: Duration,
    /// Query window of searches.
    pub lookback: Duration,
    /// Request timeout.
    pub timeout: Duration,
}

/// A Modbus RTU register map.
#[derive(Debug, Clone)]
pub struct ModbusProfile {
    /// Line settings.
    pub serial: SerialSettings,
    /// Slave address.
    pub slave: u8,
    /// FC03 or FC04.
    pub function: Function,
    /// First register (protocol address).
    pub start: u16,
    /// Registers read.
    pub quantity: u16,
    /// Time between polls.
    pub interval: Duration,
    /// Reply timeout.
    pub timeout: Duration,
    /// Retries of a failed poll.
    pub retries: u32,
    /// Line name.
    pub line: String,
    /// Entries field (protocol addresses).
    pub ins: FieldSpec,
    /// Exits field.
    pub outs: Option<FieldSpec>,
    /// Wrap modulus of the counts (after scaling).
    pub wrap: Option<u64>,
}

/// What an MQTT counter publishes.
#[derive(Debug, Clone)]
pub struct MqttProfile {
    /// Topic filter.
    pub topic: String,
    /// Payload format.
    pub payload: MqttPayload,
}

/// An MQTT payload format.
#[derive(Debug, Clone)]
pub enum MqttPayload {
    /// Milesight VS13x TLV.
    MilesightTlv {
        /// JSON field holding the TLV text, when wrapped.
        field: Option<String>,
        /// Names of lines 1–4.
        line_names: [String; 4],
    },
    /// JSON with configured field paths.
    Json(JsonFields),
    /// An HTTP push dialect carried over MQTT (Xovis v5 MQTT agents).
    Dialect(Dialect),
}

/// Validated JSON field paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFields {
    /// Time field path.
    pub time: Option<String>,
    /// Interval start path.
    pub start: Option<String>,
    /// Entries path.
    pub ins: String,
    /// Exits path.
    pub outs: Option<String>,
    /// Line path.
    pub line: Option<String>,
    /// Running totals.
    pub cumulative: bool,
}

fn dur_in(d: Duration, lo: Duration, hi: Duration) -> bool {
    d >= lo && d <= hi
}

fn field(raw: &RawField, addressing: u16) -> Result<FieldSpec, (String, String)> {
    let kind = match raw.kind.as_str() {
        "u16" => FieldKind::U16,
        "u32" => FieldKind::U32,
        other => {
            return Err((
                "type".into(),
                format!("{other:?}: expected \"u16\" or \"u32\""),
            ))
        }
    };
    let word_order = match raw.word_order.as_str() {
        "high-first" => WordOrder::HighFirst,
        "low-first" => WordOrder::LowFirst,
        other => {
            return Err((
                "word_order".into(),
                format!("{other:?}: expected \"high-first\" or \"low-first\""),
            ))
        }
    };
    if raw.scale == 0 {
        return Err(("scale".into(), "must be at least 1".into()));
    }
    let offset = raw.offset.checked_sub(addressing).ok_or_else(|| {
        (
            "offset".to_string(),
            format!("below the first register of {addressing}-based addressing"),
        )
    })?;
    Ok(FieldSpec {
        offset,
        kind,
        word_order,
        scale: raw.scale,
    })
}

/// Checks a dot-separated JSON field path.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.split('.').any(str::is_empty) || p.len() > 256 {
        return Err(format!("{p:?} is not a dot-separated field path"));
    }
    Ok(())
}

/// Parses and validates a counter profile's text; `id` names it in errors.
pub fn parse_counter(id: &str, text: &str) -> Result<CounterProfile, ProfileError> {
    let err = |key: &str, reason: String| ProfileError {
        profile: id.to_string(),
        key: key.to_string(),
        reason,
    };
    let p: RawCounterProfile = deserialize(id, text)?;
    if p.kind != "counter" {
        return Err(err(
            "kind",
            format!("expected \"counter\", found {:?}", p.kind),
        ));
    }
    for (key, v) in [("vendor", &p.vendor), ("model", &p.model)] {
        if v.trim().is_empty() {
            return Err(err(key, "must not be empty".into()));
        }
    }
    let (direction_in, direction_out) = match &p.direction {
        Some(d) => {
            if d.into.is_empty() || d.out.is_empty() || d.into == d.out {
                return Err(err(
                    "direction",
                    "`in` and `out` must be two different non-empty labels".into(),
                ));
            }
            (d.into.clone(), d.out.clone())
        }
        None => ("fw".to_string(), "bw".to_string()),
    };
    let sections = [
        ("push", p.push.is_some()),
        ("poll", p.poll.is_some()),
        ("modbus", p.modbus.is_some()),
        ("mqtt", p.mqtt.is_some()),
    ];
    let wanted = match p.transport.as_str() {
        "http-push" => "push",
        "http-poll" => "poll",
        "modbus-rtu" => "modbus",
        "mqtt" => "mqtt",
        other => {
            return Err(err(
                "transport",
                format!(
                    "{other:?}: expected \"http-push\", \"http-poll\", \"modbus-rtu\" or \"mqtt\""
                ),
            ))
        }
    };
    for (section, present) in sections {
        if present != (section == wanted) {
            return Err(err(
                section,
                if present {
                    format!("does not belong to transport {:?}", p.transport)
                } else {
                    format!("transport {:?} needs a [{section}] table", p.transport)
                },
            ));
        }
    }
    let http_dialect = |allowed: &[Dialect]| {
        Dialect::from_name(&p.dialect)
            .filter(|d| allowed.contains(d))
            .ok_or_else(|| {
                err(
                    "dialect",
                    format!(
                        "{:?} is not a {} dialect (supported: {})",
                        p.dialect,
                        p.transport,
                        allowed
                            .iter()
                            .map(|d| d.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    };
    const PUSHED: [Dialect; 5] = [
        Dialect::XovisV5,
        Dialect::XovisLegacy,
        Dialect::Brickstream,
        Dialect::Irisys,
        Dialect::HikvisionEvent,
    ];
    let transport = match (&p.push, &p.poll, &p.modbus, &p.mqtt) {
        (Some(push), _, _, _) => {
            let dialect = http_dialect(&PUSHED)?;
            if !push.path.starts_with('/') || push.path.contains('?') || push.path.len() > 200 {
                return Err(err(
                    "push.path",
                    format!("{:?} must be a URL path starting with '/'", push.path),
                ));
            }
            CounterTransport::Push {
                dialect,
                path: push.path.clone(),
            }
        }
        (_, Some(poll), _, _) => {
            let dialect = http_dialect(&[Dialect::AxisLiveSum, Dialect::HikvisionSearch])?;
            if !poll.path.starts_with('/') {
                return Err(err(
                    "poll.path",
                    format!("{:?} must start with '/'", poll.path),
                ));
            }
            let post = match poll.method.as_str() {
                "GET" => false,
                "POST" => true,
                other => {
                    return Err(err(
                        "poll.method",
                        format!("{other:?}: expected \"GET\" or \"POST\""),
                    ))
                }
            };
            if post != poll.body.is_some() {
                return Err(err(
                    "poll.body",
                    "a POST needs a body template, a GET has none".into(),
                ));
            }
            if !dur_in(
                poll.interval,
                Duration::from_secs(1),
                Duration::from_secs(3600),
            ) {
                return Err(err("poll.interval", "must be between 1s and 1h".into()));
            }
            if !dur_in(
                poll.lookback,
                Duration::from_secs(60),
                Duration::from_secs(24 * 3600),
            ) {
                return Err(err("poll.lookback", "must be between 1min and 24h".into()));
            }
            if !dur_in(
                poll.timeout,
                Duration::from_millis(100),
                Duration::from_secs(120),
            ) {
                return Err(err("poll.timeout", "must be between 100ms and 2min".into()));
            }
            CounterTransport::Poll(PollProfile {
                dialect,
                path: poll.path.clone(),
                post,
                body: poll.body.clone(),
                content_type: poll
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/xml".into()),
                interval: poll.interval,
                lookback: poll.lookback,
                timeout: poll.timeout,
            })
        }
        (_, _, Some(m), _) => {
            if p.dialect != "registers" {
                return Err(err(
                    "dialect",
                    format!(
                        "{:?}: a Modbus counter's dialect is \"registers\"",
                        p.dialect
                    ),
                ));
            }
            m.serial
                .check("modbus.serial.")
                .map_err(|(key, reason)| err(&key, reason))?;
            if m.slave == 0 || m.slave > MAX_SLAVE {
                return Err(err(
                    "modbus.slave",
                    format!("must be 1–{MAX_SLAVE} (0 is broadcast, which has no reply)"),
                ));
            }
            let function = match m.function {
                3 => Function::ReadHolding,
                4 => Function::ReadInput,
                other => {
                    return Err(err(
                        "modbus.function",
                        format!("{other}: expected 3 (holding) or 4 (input registers)"),
                    ))
                }
            };
            if m.addressing > 1 {
                return Err(err("modbus.addressing", "must be 0 or 1".into()));
            }
            let start = m.start.checked_sub(m.addressing).ok_or_else(|| {
                err(
                    "modbus.start",
                    "below the first register of 1-based addressing".into(),
                )
            })?;
            if m.quantity == 0 || m.quantity > MAX_READ_QUANTITY {
                return Err(err(
                    "modbus.quantity",
                    format!("must be 1–{MAX_READ_QUANTITY}"),
                ));
            }
            let ins =
                field(&m.ins, m.addressing).map_err(|(k, r)| err(&format!("modbus.ins.{k}"), r))?;
            let outs = m
                .outs
                .as_ref()
                .map(|f| field(f, m.addressing))
                .transpose()
                .map_err(|(k, r)| err(&format!("modbus.outs.{k}"), r))?;
            let end = u32::from(start) + u32::from(m.quantity);
            for (key, f) in [("ins", Some(ins)), ("outs", outs)] {
                if let Some(f) = f {
                    let last = u32::from(f.offset) + f.kind.registers() as u32;
                    if f.offset < start || last > end {
                        return Err(err(
                            &format!("modbus.{key}.offset"),
                            "lies outside the registers read (start, quantity)".into(),
                        ));
                    }
                }
            }
            if !dur_in(
                m.interval,
                Duration::from_millis(200),
                Duration::from_secs(3600),
            ) {
                return Err(err(
                    "modbus.interval",
                    "must be between 200ms and 1h".into(),
                ));
            }
            if !dur_in(
                m.timeout,
                Duration::from_millis(20),
                Duration::from_secs(10),
            ) {
                return Err(err("modbus.timeout", "must be between 20ms and 10s".into()));
            }
            if m.retries > 10 {
                return Err(err("modbus.retries", "must be at most 10".into()));
            }
            if m.line.trim().is_empty() {
                return Err(err("modbus.line", "must not be empty".into()));
            }
            // The widest field decides the natural wrap of the counts.
            let width = |f: &FieldSpec| match f.kind {
                FieldKind::U16 => 1u64 << 16,
                FieldKind::U32 => 1u64 << 32,
            };
            let natural = width(&ins) / u64::from(ins.scale);
            let wrap = match m.wrap {
                Some(0) => return Err(err("modbus.wrap", "must be positive".into())),
                Some(w) => Some(w),
                None => Some(natural),
            };
            CounterTransport::Modbus(ModbusProfile {
                serial: m.serial.clone(),
                slave: m.slave,
                function,
                start,
                quantity: m.quantity,
                interval: m.interval,
                timeout: m.timeout,
                retries: m.retries,
                line: m.line.clone(),
                ins,
                outs,
                wrap,
            })
        }
        (_, _, _, Some(q)) => {
            if q.topic.is_empty() || q.topic.len() > 256 {
                return Err(err("mqtt.topic", "must be a topic filter".into()));
            }
            let payload = match p.dialect.as_str() {
                "milesight-tlv" => {
                    if q.fields.is_some() {
                        return Err(err(
                            "mqtt.fields",
                            "only a \"json\" dialect has field paths".into(),
                        ));
                    }
                    if let Some(f) = &q.payload_field {
                        check_path(f).map_err(|r| err("mqtt.payload_field", r))?;
                    }
                    if q.line_names.len() > 4 || q.line_names.iter().any(|n| n.trim().is_empty())
                    {
                        return Err(err(
                            "mqtt.line_names",
                            "at most 4 non-empty names (lines 1–4)".into(),
                        ));
                    }
                    let name = |i: usize| {
                        q.line_names
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("line{}", i + 1))
                    };
                    MqttPayload::MilesightTlv {
                        field: q.payload_field.clone(),
                        line_names: [name(0), name(1), name(2), name(3)],
                    }
                }
                "json" => {
                    let Some(f) = &q.fields else {
                        return Err(err(
                            "mqtt.fields",
                            "a \"json\" dialect needs [mqtt.fields] with at least `ins`".into(),
                        ));
                    };
                    for (key, v) in [
                        ("time", &f.time),
                        ("start", &f.start),
                        ("ins", &Some(f.ins.clone())),
                        ("outs", &f.outs),
                        ("line", &f.line),
                    ] {
                        if let Some(v) = v {
                            check_path(v).map_err(|r| err(&format!("mqtt.fields.{key}"), r))?;
                        }
                    }
                    if f.cumulative && f.start.is_some() {
                        return Err(err(
                            "mqtt.fields.start",
                            "running totals have no interval start".into(),
                        ));
                    }
                    if !f.cumulative && f.start.is_none() {
                        return Err(err(
                            "mqtt.fields",
                            "say what the values are: `start` (and `time`) for interval counts, or `cumulative = true` for running totals".into(),
                        ));
                    }
                    if !f.cumulative && f.start.is_some() && f.time.is_none() {
                        return Err(err(
                            "mqtt.fields.time",
                            "an interval with a start needs its end (`time`)".into(),
                        ));
                    }
                    MqttPayload::Json(JsonFields {
                        time: f.time.clone(),
                        start: f.start.clone(),
                        ins: f.ins.clone(),
                        outs: f.outs.clone(),
                        line: f.line.clone(),
                        cumulative: f.cumulative,
                    })
                }
                other => match Dialect::from_name(other) {
                    Some(d) if PUSHED.contains(&d) => MqttPayload::Dialect(d),
                    _ => {
                        return Err(err(
                            "dialect",
                            format!(
                                "{other:?}: an MQTT counter's dialect is \"milesight-tlv\", \"json\" or a push dialect"
                            ),
                        ))
                    }
                },
            };
            CounterTransport::Mqtt(MqttProfile {
                topic: q.topic.clone(),
                payload,
            })
        }
        // The section check above made sure exactly one is present.
        _ => return Err(err("transport", "no transport table".into())),
    };
    Ok(CounterProfile {
        id: id.to_string(),
        vendor: p.vendor,
        model: p.model,
        direction_in,
        direction_out,
        transport,
    })
}

/// Resolves a counter `profile =` value: an embedded id (`counter/xovis-pc2s-v5`) or a path
/// to a `.toml` file (relative to `base`, read as `reads` says).
pub fn resolve_counter(
    value: &str,
    base: &std::path::Path,
    reads: super::FileReads<'_>,
) -> Result<CounterProfile, ProfileError> {
    let (id, text) = super::profiles::lookup(value, base, "counter", reads)?;
    parse_counter(&id, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = "kind = \"counter\"\nvendor = \"V\"\nmodel = \"M\"\ntransport = \"http-push\"\ndialect = \"xovis-v5\"\n[push]\npath = \"/c\"\n";
    const BEAM: &str =
        include_str!("../../../../hardware-profiles/counter/generic-ir-beam-modbus.toml");

    /// Every refusal names the key: unknown dialects and transports, tables that do not
    /// belong to the transport, bad register maps and JSON paths.
    #[test]
    fn bad_counter_profiles_name_the_key() {
        assert!(parse_counter("t", PUSH).is_ok());
        let table = [
            (PUSH.replace("xovis-v5", "xovis-v9"), "dialect"),
            (PUSH.replace("xovis-v5", "axis-live-sum"), "dialect"),
            (PUSH.replace("http-push", "carrier-pigeon"), "transport"),
            (PUSH.replace("kind = \"counter\"", "kind = \"pos\""), "kind"),
            (PUSH.replace("path = \"/c\"", "path = \"c\""), "push.path"),
            (format!("{PUSH}[poll]\npath = \"/x\"\n"), "poll"),
            (PUSH.replace("[push]\npath = \"/c\"\n", ""), "push"),
            (
                format!("{PUSH}[direction]\nin = \"fw\"\nout = \"fw\"\n"),
                "direction",
            ),
            (format!("{PUSH}colour = 1\n"), "push.colour"),
            (
                BEAM.replace("function = 3", "function = 6"),
                "modbus.function",
            ),
            (BEAM.replace("slave = 1", "slave = 0"), "modbus.slave"),
            (
                BEAM.replace("quantity = 4", "quantity = 3"),
                "modbus.outs.offset",
            ),
            (
                BEAM.replace("quantity = 4", "quantity = 126"),
                "modbus.quantity",
            ),
            (
                BEAM.replace(
                    "type = \"u32\"\nword_order = \"high-first\"\n\n[modbus.outs]",
                    "type = \"u64\"\nword_order = \"high-first\"\n\n[modbus.outs]",
                ),
                "modbus.ins.type",
            ),
            (
                BEAM.replace("addressing = 0", "addressing = 1"),
                "modbus.start",
            ),
            (
                BEAM.replace("timeout = \"500ms\"", "timeout = \"1ms\""),
                "modbus.timeout",
            ),
            (
                BEAM.replace("baud = 9600", "baud = 9601"),
                "modbus.serial.baud",
            ),
            (
                BEAM.replace("dialect = \"registers\"", "dialect = \"json\""),
                "dialect",
            ),
        ];
        for (text, key) in table {
            let e = parse_counter("t", &text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let mqtt = "kind = \"counter\"\nvendor = \"V\"\nmodel = \"M\"\ntransport = \"mqtt\"\ndialect = \"json\"\n[mqtt]\ntopic = \"c/#\"\n[mqtt.fields]\n";
        let table = [
            ("ins = \"a..b\"\ncumulative = true\n", "mqtt.fields.ins"),
            (
                "ins = \"a\"\nstart = \"s\"\ncumulative = true\n",
                "mqtt.fields.start",
            ),
            ("ins = \"a\"\nstart = \"s\"\n", "mqtt.fields.time"),
            ("ins = \"a\"\n", "mqtt.fields"),
        ];
        for (fields, key) in table {
            let e = parse_counter("t", &format!("{mqtt}{fields}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let ok = parse_counter(
            "t",
            &format!("{mqtt}ins = \"counts.0.in\"\ncumulative = true\n"),
        );
        assert!(ok.is_ok());
        // 1-based addressing moves the register map down by one.
        let one_based = BEAM
            .replace("addressing = 0", "addressing = 1")
            .replace("start = 0", "start = 1")
            .replace("offset = 0", "offset = 1")
            .replace("offset = 2", "offset = 3");
        let p = parse_counter("t", &one_based).unwrap();
        let CounterTransport::Modbus(m) = p.transport else {
            panic!("not modbus")
        };
        assert_eq!(
            (m.start, m.ins.offset, m.outs.map(|f| f.offset)),
            (0, 0, Some(2))
        );
        assert_eq!(m.wrap, Some(1 << 32));
    }
}
