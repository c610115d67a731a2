//! `[mqtt]`: the fleet broker the management channel connects to, how it authenticates, and
//! the thresholds of its telemetry and alerts.
//!
//! Plaintext is only allowed to a broker on a loopback address unless `allow_plaintext = true`
//! says the operator means it (for example behind a TLS-terminating tunnel), as for `[sync]`.
//! With `[mqtt.tls]` the connection is TLS 1.2/1.3 (rustls with the ring provider), verified
//! against `ca_file` only (the system's roots are not trusted); `cert_file` + `key_file` add a
//! client certificate. The TLS material is parsed here, so a bad PEM file is a config error that
//! names its key, not a failure at the first connection.
//!
//! ```toml
//! [mqtt]
//! broker = "fleet.example.net:8883"
//! username = "gw-0042"
//! password_file = "/etc/store-edge/mqtt-password"
//! keep_alive = "30s"
//! telemetry_interval = "60s"
//! low_disk_bytes = 500000000
//! counter_silence = "1h"
//! opening_hours = "09:00-21:30"
//! apply_timeout = "30s"
//! push_dirs = ["/var/log/freeradius/radacct"]
//! [mqtt.tls]
//! ca_file = "/etc/store-edge/fleet-ca.pem"
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::config::{ConfigError, Errs};

/// Default MQTT keep-alive: the broker declares the gateway gone (and publishes the Last
/// Will) after 1.5 × this without a packet.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Shortest keep-alive accepted (the MQTT 5 client refuses shorter ones).
pub const MIN_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Longest keep-alive MQTT can carry (a 16-bit number of seconds).
pub const MAX_KEEP_ALIVE: Duration = Duration::from_secs(65_535);
/// Default time between telemetry messages.
pub const DEFAULT_TELEMETRY_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest telemetry interval accepted.
pub const MIN_TELEMETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Default free-disk threshold below which `disk_low` is raised: 500 MB.
pub const DEFAULT_LOW_DISK_BYTES: u64 = 500_000_000;
/// Default time a live counter may go without a new interval (within opening hours) before
/// `counter_silent` is raised.
pub const DEFAULT_COUNTER_SILENCE: Duration = Duration::from_secs(3600);
/// Shortest counter silence accepted.
pub const MIN_COUNTER_SILENCE: Duration = Duration::from_secs(1);
/// Default time the sources a pushed config changed get to start before the apply is judged
/// (and rolled back if one of them failed).
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest and longest apply timeouts accepted.
pub const APPLY_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(600));
/// Longest client id accepted (MQTT 3.1.1 only promises 23 bytes; mosquitto, EMQX and HiveMQ
/// take longer ones).
pub const MAX_CLIENT_ID: usize = 64;
/// Prefix of the default client id, followed by the gateway id.
pub const CLIENT_ID_PREFIX: &str = "store-edge-";

/// `[mqtt]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `host:port` of the fleet broker (an IPv6 address in brackets: `[::1]:1883`).
    pub broker: String,
    /// Allow an unencrypted connection to a broker that is not on a loopback address (off:
    /// such a config is refused).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// TLS settings; without them the connection is plaintext.
    #[serde(default)]
    pub tls: Option<RawMqttTls>,
    /// User name for the broker (with `password` or `password_file`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password, inline (prefer `password_file`: the config file is often world-readable).
    #[serde(default)]
    pub password: Option<String>,
    /// Or a file whose first line is the password (relative to the config file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// MQTT client id (default `store-edge-<gateway_id>`); unique per broker.
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT keep-alive, whole seconds from 5s; the broker publishes the offline Last Will
    /// about 1.5 × this after the gateway went silent.
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Time between telemetry messages (and between alert checks).
    #[serde(default = "default_telemetry_interval", with = "humantime_serde")]
    pub telemetry_interval: Duration,
    /// Free disk space (bytes, on the data directory's file system) below which `disk_low`
    /// is raised.
    #[serde(default = "default_low_disk_bytes")]
    pub low_disk_bytes: u64,
    /// How long a live counter may go without a new interval within opening hours before
    /// `counter_silent` is raised.
    #[serde(default = "default_counter_silence", with = "humantime_serde")]
    pub counter_silence: Duration,
    /// Store-local opening hours, `"HH:MM-HH:MM"` (may span midnight, `24:00` ends the day);
    /// `counter_silent` is only raised within them. Absent: always.
    #[serde(default)]
    pub opening_hours: Option<String>,
    /// How long the sources a pushed config (`config/desired`) starts or changes get to come
    /// up; one that only failed by then rolls the push back to the previous config.
    #[serde(default = "default_apply_timeout", with = "humantime_serde")]
    pub apply_timeout: Duration,
    /// Directories, besides the config file's own directory tree, in which a pushed config
    /// (`config/desired`) may name files: portal logs, capture files, profiles (absolute, or
    /// relative to the config file). A push never names files anywhere else.
    #[serde(default)]
    pub push_dirs: Vec<PathBuf>,
}

/// `[mqtt.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttTls {
    /// CA bundle (PEM) the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// Client certificate chain (PEM), for brokers that require one (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_keep_alive() -> Duration {
    DEFAULT_KEEP_ALIVE
}
fn default_telemetry_interval() -> Duration {
    DEFAULT_TELEMETRY_INTERVAL
}
fn default_low_disk_bytes() -> u64 {
    DEFAULT_LOW_DISK_BYTES
}
fn default_counter_silence() -> Duration {
    DEFAULT_COUNTER_SILENCE
}
fn default_apply_timeout() -> Duration {
    DEFAULT_APPLY_TIMEOUT
}

/// Broker credentials: the same user/password pair counter devices and brokers use (its
/// `Debug` redacts the password).
pub use crate::sources::counter::config::Credentials;

/// Validated TLS material (PEM bytes, already checked to parse).
#[derive(Clone)]
pub struct MqttTls {
    /// CA bundle.
    pub ca_pem: Vec<u8>,
    /// Client certificate chain and key.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for MqttTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MqttTls(client certificate: {})", self.client.is_some())
    }
}

/// Which part of the TLS material a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPart {
    /// The CA bundle.
    Ca,
    /// The client certificate.
    Cert,
    /// The client key.
    Key,
}

impl MqttTls {
    /// The rustls client config: ring provider, TLS 1.2 and 1.3, `ca_pem` as the only roots,
    /// and the client certificate if any.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, (TlsPart, String)> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| (TlsPart::Ca, format!("not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| (TlsPart::Ca, format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err((TlsPart::Ca, "holds no PEM certificate".to_string()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| (TlsPart::Ca, format!("TLS set-up failed: {e}")))?
            .with_root_certificates(roots);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| (TlsPart::Cert, format!("not a PEM certificate: {e}")))?;
                if chain.is_empty() {
                    return Err((TlsPart::Cert, "holds no PEM certificate".to_string()));
                }
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| (TlsPart::Key, format!("no usable PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| (TlsPart::Key, format!("does not fit the certificate: {e}")))
            }
        }
    }
}

/// Store-local opening hours: `[open, close)`, spanning midnight when `close <= open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningHours {
    /// Opening time.
    pub open: NaiveTime,
    /// Closing time (`None`: the end of the day, written `24:00`).
    pub close: Option<NaiveTime>,
}

impl OpeningHours {
    /// Parses `"HH:MM-HH:MM"`.
    pub fn parse(s: &str) -> Option<OpeningHours> {
        let (a, b) = s.trim().split_once('-')?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        let open = time(a)?;
        let close = if b.trim() == "24:00" {
            None
        } else {
            Some(time(b)?)
        };
        if close == Some(open) {
            return None;
        }
        Some(OpeningHours { open, close })
    }

    /// Whether the store is open at local time `t`.
    pub fn contains(&self, t: NaiveTime) -> bool {
        match self.close {
            None => t >= self.open,
            Some(c) if c > self.open => t >= self.open && t < c,
            Some(c) => t >= self.open || t < c,
        }
    }
}

/// Validated `[mqtt]`.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host (as written; an IPv6 address keeps its brackets).
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS, when configured.
    pub tls: Option<MqttTls>,
    /// Credentials, when configured.
    pub credentials: Option<Credentials>,
    /// Client id.
    pub client_id: String,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Time between telemetry messages.
    pub telemetry_interval: Duration,
    /// Free-disk alert threshold, bytes.
    pub low_disk_bytes: u64,
    /// Counter silence alert threshold.
    pub counter_silence: Duration,
    /// Opening hours of the counter silence alert.
    pub opening_hours: Option<OpeningHours>,
    /// How long changed sources get to start before a pushed config is judged.
    pub apply_timeout: Duration,
    /// Where a pushed config may name files besides the config directory (resolved).
    pub push_dirs: Vec<PathBuf>,
}

impl MqttConfig {
    /// `host:port`, for logs.
    pub fn broker(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Whether `host` names this machine.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host:port`; an IPv6 host must be in brackets.
fn split_broker(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return None;
    }
    if host.starts_with('[') {
        let inner = host.strip_prefix('[')?.strip_suffix(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
    } else if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port))
}

/// The default client id: `store-edge-<gateway_id>`, at most [`MAX_CLIENT_ID`] bytes (the
/// gateway id is already letters, digits, `-` and `_`).
pub fn default_client_id(gateway_id: &str) -> String {
    let mut id = format!("{CLIENT_ID_PREFIX}{gateway_id}");
    id.truncate(MAX_CLIENT_ID);
    id
}

fn read(errs: &Errs<'_>, key: &str, base: &Path, p: &Path) -> Result<Vec<u8>, ConfigError> {
    let path = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    errs.read(key, &path)
}

impl RawMqtt {
    /// Validates `[mqtt]`; `base` anchors relative paths.
    pub fn validate(
        &self,
        errs: &Errs<'_>,
        base: &Path,
        gateway_id: &str,
    ) -> Result<MqttConfig, ConfigError> {
        let (host, port) = split_broker(&self.broker).ok_or_else(|| {
            errs.at(
                "mqtt.broker",
                format!(
                    "{:?} is not host:port (e.g. \"fleet.example.net:8883\", \"[::1]:1883\")",
                    self.broker
                ),
            )
        })?;
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                let pair = match (&t.cert_file, &t.key_file) {
                    (None, None) => None,
                    (Some(c), Some(k)) => Some((c, k)),
                    (Some(_), None) => {
                        return Err(errs.at("mqtt.tls.key_file", "cert_file needs key_file"))
                    }
                    (None, Some(_)) => {
                        return Err(errs.at("mqtt.tls.cert_file", "key_file needs cert_file"))
                    }
                };
                let ca_pem = read(errs, "mqtt.tls.ca_file", base, &t.ca_file)?;
                let client = match pair {
                    None => None,
                    Some((c, k)) => Some((
                        read(errs, "mqtt.tls.cert_file", base, c)?,
                        read(errs, "mqtt.tls.key_file", base, k)?,
                    )),
                };
                let tls = MqttTls { ca_pem, client };
                if let Err((part, reason)) = tls.client_config() {
                    let key = match part {
                        TlsPart::Ca => "mqtt.tls.ca_file",
                        TlsPart::Cert => "mqtt.tls.cert_file",
                        TlsPart::Key => "mqtt.tls.key_file",
                    };
                    return Err(errs.at(key, reason));
                }
                Some(tls)
            }
        };
        if tls.is_none() && !is_loopback(&host) && !self.allow_plaintext {
            return Err(errs.at(
                "mqtt.broker",
                format!(
                    "{} is not a loopback address and [mqtt.tls] is not set: refusing to send credentials and commands in plaintext (configure TLS, or set mqtt.allow_plaintext = true if a tunnel encrypts the link)",
                    self.broker.trim()
                ),
            ));
        }
        let password = match (&self.password, &self.password_file) {
            (None, None) => None,
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => {
                let bytes = read(errs, "mqtt.password_file", base, f)?;
                Some(
                    String::from_utf8_lossy(&bytes)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                )
            }
            (Some(_), Some(_)) => {
                return Err(errs.at(
                    "mqtt.password_file",
                    "set at most one of `password` and `password_file`",
                ))
            }
        };
        let credentials = match (&self.username, password) {
            (None, None) => None,
            (Some(u), Some(p)) => {
                if u.is_empty() {
                    return Err(errs.at("mqtt.username", "must not be empty"));
                }
                if p.is_empty() {
                    return Err(errs.at(
                        if self.password_file.is_some() {
                            "mqtt.password_file"
                        } else {
                            "mqtt.password"
                        },
                        "must not be empty",
                    ));
                }
                Some(Credentials {
                    username: u.clone(),
                    password: p,
                })
            }
            (Some(_), None) => {
                return Err(errs.at(
                    "mqtt.password",
                    "a username needs `password` or `password_file`",
                ))
            }
            (None, Some(_)) => return Err(errs.at("mqtt.username", "a password needs a username")),
        };
        let client_id = match &self.client_id {
            None => default_client_id(gateway_id),
            Some(id) => {
                if id.is_empty()
                    || id.len() > MAX_CLIENT_ID
                    || !id.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(errs.at(
                        "mqtt.client_id",
                        format!(
                            "must be 1–{MAX_CLIENT_ID} printable ASCII characters without spaces"
                        ),
                    ));
                }
                id.clone()
            }
        };
        if self.keep_alive < MIN_KEEP_ALIVE
            || self.keep_alive > MAX_KEEP_ALIVE
            || self.keep_alive.subsec_nanos() != 0
        {
            return Err(errs.at(
                "mqtt.keep_alive",
                "must be whole seconds from 5s to 65535s (MQTT carries seconds)",
            ));
        }
        if self.telemetry_interval < MIN_TELEMETRY_INTERVAL {
            return Err(errs.at("mqtt.telemetry_interval", "must be at least 1s"));
        }
        if self.counter_silence < MIN_COUNTER_SILENCE {
            return Err(errs.at("mqtt.counter_silence", "must be at least 1s"));
        }
        if self.apply_timeout < APPLY_TIMEOUT_RANGE.0 || self.apply_timeout > APPLY_TIMEOUT_RANGE.1
        {
            return Err(errs.at("mqtt.apply_timeout", "must be from 1s to 10m"));
        }
        let opening_hours = match &self.opening_hours {
            None => None,
            Some(s) => Some(OpeningHours::parse(s).ok_or_else(|| {
                errs.at(
                    "mqtt.opening_hours",
                    format!(
                        "{s:?} is not a span of store-local times like \"09:00-21:30\" (\"22:00-06:00\" spans midnight, \"24:00\" ends the day)"
                    ),
                )
            })?),
        };
        let mut push_dirs = Vec::new();
        for (i, d) in self.push_dirs.iter().enumerate() {
            let d = if d.is_absolute() {
                d.clone()
            } else {
                base.join(d)
            };
            if d.parent().is_none() || d.components().any(|c| c.as_os_str() == "..") {
                return Err(errs.at(
                    format!("mqtt.push_dirs[{i}]"),
                    "must be a directory below the root, without `..`",
                ));
            }
            push_dirs.push(d);
        }
        Ok(MqttConfig {
            host,
            port,
            tls,
            credentials,
            client_id,
            keep_alive: self.keep_alive,
            telemetry_interval: self.telemetry_interval,
            low_disk_bytes: self.low_disk_bytes,
            counter_silence: self.counter_silence,
            opening_hours,
            apply_timeout: self.apply_timeout,
            push_dirs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<MqttConfig, ConfigError> {
        let raw: RawMqtt = toml::from_str(text).unwrap();
        raw.validate(
            &Errs {
                file: Path::new("/etc/se.toml"),
                reads: crate::config::FileReads::Disk,
            },
            Path::new("/etc"),
            "gw-1",
        )
    }

    #[test]
    fn defaults() {
        let c = check("broker = \"127.0.0.1:1883\"").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1883));
        assert_eq!(c.client_id, "store-edge-gw-1");
        assert_eq!(c.keep_alive, DEFAULT_KEEP_ALIVE);
        assert_eq!(c.telemetry_interval, DEFAULT_TELEMETRY_INTERVAL);
        assert_eq!(c.low_disk_bytes, DEFAULT_LOW_DISK_BYTES);
        assert_eq!(c.counter_silence, DEFAULT_COUNTER_SILENCE);
        assert_eq!(c.apply_timeout, DEFAULT_APPLY_TIMEOUT);
        assert!(c.tls.is_none() && c.credentials.is_none() && c.opening_hours.is_none());
        for loopback in ["localhost:1883", "[::1]:1883", "127.0.0.9:1"] {
            check(&format!("broker = \"{loopback}\"")).unwrap();
        }
        let c = check(
            "broker = \"fleet.example.net:1883\"\nallow_plaintext = true\nusername = \"gw\"\npassword = \"pw\"\nclient_id = \"edge-42\"\nkeep_alive = \"5s\"\nopening_hours = \"22:00-06:00\"",
        )
        .unwrap();
        assert_eq!(c.client_id, "edge-42");
        assert_eq!(
            format!("{:?}", c.credentials),
            "Some(Credentials(gw, redacted))"
        );
        assert_eq!(c.keep_alive, Duration::from_secs(5));
    }

    #[test]
    fn refusals_name_the_key() {
        let table = [
            ("broker = \"nowhere\"", "mqtt.broker", "not host:port"),
            ("broker = \"h:0\"", "mqtt.broker", "not host:port"),
            ("broker = \"::1:1883\"", "mqtt.broker", "not host:port"),
            ("broker = \"10.0.0.1:1883\"", "mqtt.broker", "plaintext"),
            (
                "broker = \"h:1\"\nusername = \"u\"",
                "mqtt.password",
                "needs",
            ),
            (
                "broker = \"h:1\"\npassword = \"p\"",
                "mqtt.username",
                "needs a username",
            ),
            (
                "broker = \"h:1\"\nusername = \"u\"\npassword = \"\"",
                "mqtt.password",
                "empty",
            ),
            (
                "broker = \"h:1\"\nusername = \"u\"\npassword = \"p\"\npassword_file = \"f\"",
                "mqtt.password_file",
                "at most one",
            ),
            (
                "broker = \"h:1\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"",
                "mqtt.password_file",
                "cannot read",
            ),
            (
                "broker = \"h:1\"\nclient_id = \"a b\"",
                "mqtt.client_id",
                "printable",
            ),
            (
                "broker = \"h:1\"\nkeep_alive = \"500ms\"",
                "mqtt.keep_alive",
                "whole seconds",
            ),
            (
                "broker = \"h:1\"\nkeep_alive = \"1500ms\"",
                "mqtt.keep_alive",
                "whole seconds",
            ),
            (
                "broker = \"h:1\"\nkeep_alive = \"19h\"",
                "mqtt.keep_alive",
                "65535",
            ),
            (
                "broker = \"h:1\"\ntelemetry_interval = \"10ms\"",
                "mqtt.telemetry_interval",
                "1s",
            ),
            (
                "broker = \"h:1\"\napply_timeout = \"0s\"",
                "mqtt.apply_timeout",
                "1s to 10m",
            ),
            (
                "broker = \"h:1\"\ncounter_silence = \"0s\"",
                "mqtt.counter_silence",
                "1s",
            ),
            (
                "broker = \"h:1\"\nopening_hours = \"9-5\"",
                "mqtt.opening_hours",
                "store-local times",
            ),
            (
                "broker = \"h:1\"\nopening_hours = \"09:00-09:00\"",
                "mqtt.opening_hours",
                "store-local times",
            ),
            (
                "broker = \"h:1\"\n[tls]\nca_file = \"/nonexistent/ca.pem\"",
                "mqtt.tls.ca_file",
                "cannot read",
            ),
            (
                "broker = \"h:1\"\n[tls]\nca_file = \"/nonexistent/ca.pem\"\ncert_file = \"c.pem\"",
                "mqtt.tls.key_file",
                "needs key_file",
            ),
        ];
        for (text, key, reason) in table {
            let e = check(&text.replace("h:1", "127.0.0.1:1")).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {}", e.reason);
        }
        // `h:1` is not loopback: refused in plaintext whatever else is right.
        let e = check("broker = \"h:1\"").unwrap_err();
        assert_eq!(e.key, "mqtt.broker");
    }

    #[test]
    fn tls_material_is_checked_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = check(&format!(
            "broker = \"h:8883\"\n[tls]\nca_file = \"{}\"",
            junk.display()
        ))
        .unwrap_err();
        assert_eq!(e.key, "mqtt.tls.ca_file");
        assert!(e.reason.contains("no PEM certificate"), "{}", e.reason);
    }

    #[test]
    fn opening_hours() {
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        let day = OpeningHours::parse("09:00-21:30").unwrap();
        assert!(day.contains(t("09:00")) && day.contains(t("21:29")));
        assert!(!day.contains(t("21:30")) && !day.contains(t("08:59")));
        let night = OpeningHours::parse("22:00-06:00").unwrap();
        assert!(night.contains(t("23:00")) && night.contains(t("05:59")));
        assert!(!night.contains(t("06:00")) && !night.contains(t("12:00")));
        let late = OpeningHours::parse("08:00-24:00").unwrap();
        assert!(late.contains(t("23:59")) && !late.contains(t("07:59")));
        for bad in [
            "",
            "9-5",
            "09:00",
            "09:00-09:00",
            "25:00-26:00",
            "09:00-24:30",
        ] {
            assert!(OpeningHours::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<RawMqtt>("broker = \"h:1\"\nbrokr = \"x\"").is_err());
        assert!(toml::from_str::<RawMqtt>("broker = \"h:1\"\n[tls]\nca = \"x\"").is_err());
    }
}
