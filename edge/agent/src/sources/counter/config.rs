//! `[[sources.counter]]`: one door counter — which model (profile), which door it counts, and
//! the site-specific half of its transport: the listener it pushes to, the device it is polled
//! at, its serial port, its MQTT broker, or a file of recorded pushes to replay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::counter_profile::{self, CounterProfile, CounterTransport};
use crate::config::{ConfigError, Errs};
use crate::sync::config::{validate_tokens, RawToken, Token};

/// One `[[sources.counter]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCounter {
    /// Source name, unique among sources (default `"counter-<door>"`).
    #[serde(default)]
    pub name: Option<String>,
    /// Counter model: a built-in id (`"counter/xovis-pc2s-v5"`) or a `.toml` file.
    pub profile: String,
    /// The door it counts (`"main"`); part of every interval's key.
    pub door: String,
    /// Counting lines of the device that count this door (default: all of them). A line
    /// counting passers-by outside is not footfall.
    #[serde(default)]
    pub lines: Option<Vec<String>>,
    /// Push: `host:port` of the agent's counter listener; sources with the same address share
    /// one listener, told apart by path.
    #[serde(default)]
    pub listen: Option<String>,
    /// Push: URL path the device posts to (default: the profile's).
    #[serde(default)]
    pub path: Option<String>,
    /// Push: bearer tokens accepted (`Authorization: Bearer …`).
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// Push: Basic-auth users accepted — `name` is the user, `token` (or `token_file`) the
    /// password.
    #[serde(default)]
    pub users: Vec<RawToken>,
    /// Push: largest body accepted (default 1 MiB, the most any dialect needs).
    #[serde(default)]
    pub max_body: Option<usize>,
    /// Poll: the device's base URL (`http://192.0.2.20`); the profile adds the path.
    #[serde(default)]
    pub url: Option<String>,
    /// Poll: time between polls (default: the profile's).
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Poll and MQTT: user name on the device or broker.
    #[serde(default)]
    pub username: Option<String>,
    /// Poll and MQTT: password, inline …
    #[serde(default)]
    pub password: Option<String>,
    /// … or in a file (first line; relative to the config file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Modbus: serial device (better a `/dev/serial/by-path/…` name).
    #[serde(default)]
    pub port: Option<PathBuf>,
    /// Modbus: slave address (default: the profile's).
    #[serde(default)]
    pub slave: Option<u8>,
    /// Modbus: baud rate (default: the profile's).
    #[serde(default)]
    pub baud: Option<u32>,
    /// MQTT: broker `host:port`.
    #[serde(default)]
    pub broker: Option<String>,
    /// MQTT: topic filter (default: the profile's).
    #[serde(default)]
    pub topic: Option<String>,
    /// Replay: a file of recorded push bodies, one per line, relative to the config.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Where the counts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CounterInput {
    /// POSTed to a listener.
    Push {
        /// The listener.
        listen: SocketAddr,
        /// The path of this source on it.
        path: String,
    },
    /// Polled from `url` (base + profile path).
    Poll {
        /// Full URL of the request.
        url: String,
        /// Time between polls.
        interval: Duration,
    },
    /// Polled over a serial port.
    Modbus {
        /// The port.
        port: PathBuf,
        /// Slave address.
        slave: u8,
        /// Baud rate.
        baud: u32,
    },
    /// Subscribed at a broker.
    Mqtt {
        /// `host:port`.
        broker: String,
        /// Topic filter.
        topic: String,
    },
    /// Recorded bodies replayed from a file.
    File(PathBuf),
}

/// User and password for a polled device or a broker.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, redacted)", self.username)
    }
}

/// A validated counter source.
#[derive(Debug, Clone)]
pub struct CounterSource {
    /// Unique source name.
    pub name: String,
    /// The model.
    pub profile: Arc<CounterProfile>,
    /// Door name.
    pub door: String,
    /// Lines counted (None: all).
    pub lines: Option<Vec<String>>,
    /// Input.
    pub input: CounterInput,
    /// Push: bearer tokens.
    pub tokens: Vec<Token>,
    /// Push: Basic users (`name` user, `secret` password).
    pub users: Vec<Token>,
    /// Push: body limit, bytes.
    pub max_body: usize,
    /// Poll / MQTT credentials.
    pub credentials: Option<Credentials>,
    /// The gateway's id (`[store] gateway_id`): MQTT client ids carry it, so two gateways'
    /// sources of the same name on one broker do not take each other's session.
    pub gateway_id: String,
}

impl CounterSource {
    /// Whether `line` counts this door.
    pub fn counts_line(&self, line: &str) -> bool {
        self.lines
            .as_ref()
            .is_none_or(|ls| ls.iter().any(|l| l == line))
    }

    /// Whether the source reads a live device (not a file).
    pub fn is_live(&self) -> bool {
        !matches!(self.input, CounterInput::File(_))
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && !s.chars().any(|c| c.is_control() || c == ':')
}

impl RawCounter {
    /// Validates this table; `key` is its dotted position (`sources.counter[0]`).
    pub fn validate(
        &self,
        errs: &Errs<'_>,
        key: &str,
        base: &Path,
    ) -> Result<CounterSource, ConfigError> {
        if !valid_name(&self.door) {
            return Err(errs.at(
                format!("{key}.door"),
                "must be 1–64 printable characters without ':'",
            ));
        }
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("counter-{}", self.door));
        if !valid_name(&name) {
            return Err(errs.at(
                format!("{key}.name"),
                "must be 1–64 printable characters without ':'",
            ));
        }
        if let Some(lines) = &self.lines {
            if lines.is_empty() || lines.iter().any(|l| l.is_empty()) {
                return Err(errs.at(
                    format!("{key}.lines"),
                    "list the device's line names (or leave `lines` out for all)",
                ));
            }
        }
        let profile = counter_profile::resolve_counter(&self.profile, base, errs.reads)
            .map_err(|e| errs.at(format!("{key}.profile"), e.to_string()))?;
        let resolve = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        // Which site keys each input takes; anything else set is an error naming it.
        let set: Vec<&str> = [
            ("listen", self.listen.is_some()),
            ("path", self.path.is_some()),
            ("tokens", !self.tokens.is_empty()),
            ("users", !self.users.is_empty()),
            ("max_body", self.max_body.is_some()),
            ("url", self.url.is_some()),
            ("interval", self.interval.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("password_file", self.password_file.is_some()),
            ("port", self.port.is_some()),
            ("slave", self.slave.is_some()),
            ("baud", self.baud.is_some()),
            ("broker", self.broker.is_some()),
            ("topic", self.topic.is_some()),
            ("file", self.file.is_some()),
        ]
        .into_iter()
        .filter(|(_, s)| *s)
        .map(|(k, _)| k)
        .collect();
        let allowed: &[&str] = if self.file.is_some() {
            &["file"]
        } else {
            match &profile.transport {
                CounterTransport::Push { .. } => &["listen", "path", "tokens", "users", "max_body"],
                CounterTransport::Poll(_) => {
                    &["url", "interval", "username", "password", "password_file"]
                }
                CounterTransport::Modbus(_) => &["port", "slave", "baud"],
                CounterTransport::Mqtt(_) => {
                    &["broker", "topic", "username", "password", "password_file"]
                }
            }
        };
        if let Some(k) = set.iter().find(|k| !allowed.contains(k)) {
            return Err(errs.at(
                format!("{key}.{k}"),
                if self.file.is_some() {
                    "a replayed `file` takes no device settings".to_string()
                } else {
                    format!(
                        "not used by profile {} ({} counters take: {})",
                        profile.id,
                        transport_name(&profile.transport),
                        allowed.join(", ")
                    )
                },
            ));
        }
        let need = |k: &str, v: bool| {
            if v {
                Ok(())
            } else {
                Err(errs.at(
                    format!("{key}.{k}"),
                    format!(
                        "profile {} is a {} counter: set `{k}` (or `file` to replay recorded pushes)",
                        profile.id,
                        transport_name(&profile.transport)
                    ),
                ))
            }
        };
        let password = match (&self.password, &self.password_file) {
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => {
                let path = resolve(f);
                let text = errs.read_to_string(&format!("{key}.password_file"), &path)?;
                Some(text.lines().next().unwrap_or("").trim().to_string())
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(errs.at(
                    format!("{key}.password"),
                    "set at most one of `password` and `password_file`",
                ))
            }
        };
        let credentials = match (&self.username, password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: u.clone(),
                password: p,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(errs.at(format!("{key}.password"), "a user name needs a password"))
            }
            (None, Some(_)) => {
                return Err(errs.at(format!("{key}.username"), "a password needs a user name"))
            }
        };
        let input = if let Some(f) = &self.file {
            CounterInput::File(resolve(f))
        } else {
            match &profile.transport {
                CounterTransport::Push { path, .. } => {
                    need("listen", self.listen.is_some())?;
                    let l = self.listen.as_deref().unwrap_or_default();
                    let listen: SocketAddr = l.parse().map_err(|_| {
                        errs.at(
                            format!("{key}.listen"),
                            format!("{l:?} is not an IP address and port (e.g. 0.0.0.0:8081)"),
                        )
                    })?;
                    let path = self.path.clone().unwrap_or_else(|| path.clone());
                    if !path.starts_with('/') || path.contains('?') || path.len() > 200 {
                        return Err(errs.at(
                            format!("{key}.path"),
                            format!("{path:?} must be a URL path starting with '/'"),
                        ));
                    }
                    CounterInput::Push { listen, path }
                }
                CounterTransport::Poll(p) => {
                    need("url", self.url.is_some())?;
                    let u = self
                        .url
                        .as_deref()
                        .unwrap_or_default()
                        .trim_end_matches('/');
                    let rest = u.strip_prefix("http://").ok_or_else(|| {
                        errs.at(
                            format!("{key}.url"),
                            format!("{u:?} must be http://host[:port] (the device's base URL)"),
                        )
                    })?;
                    if rest.contains('@') {
                        return Err(errs.at(
                            format!("{key}.url"),
                            "credentials go in `username` and `password`, not in the URL",
                        ));
                    }
                    if rest.is_empty() || rest.contains('/') {
                        return Err(errs.at(
                            format!("{key}.url"),
                            format!("{u:?} must be http://host[:port] without a path (the profile gives the path)"),
                        ));
                    }
                    let interval = self.interval.unwrap_or(p.interval);
                    if interval < Duration::from_secs(1) || interval > Duration::from_secs(3600) {
                        return Err(errs.at(format!("{key}.interval"), "must be between 1s and 1h"));
                    }
                    CounterInput::Poll {
                        url: format!("{u}{}", p.path),
                        interval,
                    }
                }
                CounterTransport::Modbus(m) => {
                    need("port", self.port.is_some())?;
                    let slave = self.slave.unwrap_or(m.slave);
                    if slave == 0 || slave > edge_wire::modbus::MAX_SLAVE {
                        return Err(errs.at(format!("{key}.slave"), "must be 1–247"));
                    }
                    let baud = self.baud.unwrap_or(m.serial.baud);
                    if !crate::config::profiles::BAUD_RATES.contains(&baud) {
                        return Err(errs.at(
                            format!("{key}.baud"),
                            format!(
                                "{baud} is not a standard rate ({:?})",
                                crate::config::profiles::BAUD_RATES
                            ),
                        ));
                    }
                    CounterInput::Modbus {
                        port: self.port.clone().unwrap_or_default(),
                        slave,
                        baud,
                    }
                }
                CounterTransport::Mqtt(m) => {
                    need("broker", self.broker.is_some())?;
                    let broker = self.broker.clone().unwrap_or_default();
                    if broker
                        .rsplit_once(':')
                        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
                    {
                        return Err(errs.at(
                            format!("{key}.broker"),
                            format!("{broker:?} is not host:port"),
                        ));
                    }
                    let topic = self.topic.clone().unwrap_or_else(|| m.topic.clone());
                    if topic.is_empty() || topic.len() > 256 {
                        return Err(errs.at(format!("{key}.topic"), "must be a topic filter"));
                    }
                    CounterInput::Mqtt { broker, topic }
                }
            }
        };
        let tokens = validate_tokens(errs, &format!("{key}.tokens"), base, &self.tokens)?;
        let users = validate_tokens(errs, &format!("{key}.users"), base, &self.users)?;
        if let CounterInput::Push { listen, .. } = &input {
            if tokens.is_empty() && users.is_empty() && !listen.ip().is_loopback() {
                return Err(errs.at(
                    format!("{key}.tokens"),
                    format!(
                        "{listen} is reachable from the network: configure `tokens` (Bearer) or `users` (Basic)"
                    ),
                ));
            }
        }
        let max_body = self.max_body.unwrap_or(edge_wire::counter::MAX_BODY);
        if !(1024..=edge_wire::counter::MAX_BODY).contains(&max_body) {
            return Err(errs.at(
                format!("{key}.max_body"),
                format!(
                    "must be between 1024 and {} bytes",
                    edge_wire::counter::MAX_BODY
                ),
            ));
        }
        Ok(CounterSource {
            name,
            profile: Arc::new(profile),
            door: self.door.clone(),
            lines: self.lines.clone(),
            input,
            tokens,
            users,
            max_body,
            credentials,
            gateway_id: String::new(),
        })
    }
}

/// The transport's name as profiles write it.
pub fn transport_name(t: &CounterTransport) -> &'static str {
    match t {
        CounterTransport::Push { .. } => "http-push",
        CounterTransport::Poll(_) => "http-poll",
        CounterTransport::Modbus(_) => "modbus-rtu",
        CounterTransport::Mqtt(_) => "mqtt",
    }
}
