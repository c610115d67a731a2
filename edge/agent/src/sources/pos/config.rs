//! `[[sources.pos]]`: where the receipt printer's byte stream comes from — a serial port tapped
//! with a Y-cable, a raw capture file to replay, or a TCP 9100 passthrough in front of a network
//! printer — and which printer model (profile) decodes it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::profiles::{self, PosProfile, SerialSettings};
use crate::config::{ConfigError, Errs};

/// One `[[sources.pos]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPos {
    /// Source name, unique among sources (default `"pos"`); part of every purchase key.
    #[serde(default)]
    pub name: Option<String>,
    /// Printer model: a built-in id (`"pos/epson-tm-t88v-cp858"`) or a `.toml` file.
    pub profile: String,
    /// Serial device of the tap (`/dev/ttyUSB0`, better a `/dev/serial/by-path/…` name).
    #[serde(default)]
    pub port: Option<PathBuf>,
    /// A raw capture of the printer line to replay, relative to the config.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `address:port` the passthrough listens on for the POS: the gateway's address on the
    /// POS's network (`192.168.1.2:9100`) or loopback, never every interface (it has no
    /// credentials to check).
    #[serde(default)]
    pub listen: Option<String>,
    /// `host:port` of the real printer the passthrough forwards every byte to.
    #[serde(default)]
    pub forward: Option<String>,
    /// Overrides the profile's baud rate (the printer's DIP switches were changed).
    #[serde(default)]
    pub baud: Option<u32>,
    /// Overrides the profile's idle gap that ends a receipt without a cut.
    #[serde(default, with = "humantime_serde")]
    pub idle_gap: Option<Duration>,
    /// Largest number of connections the passthrough serves at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A passthrough connection on which the POS sends nothing for this long is closed (the
    /// POS reconnects when it next prints); from 10s to 24h.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

fn default_idle_timeout() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}

/// Default idle timeout of a passthrough connection: far longer than any pause within a
/// receipt, short enough that connections left half-open do not hold the slots for long.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

/// Default passthrough connection limit (a POS prints over one connection at a time; a few
/// spare for status polls).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4;

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PosInput {
    /// A serial port.
    Serial(PathBuf),
    /// A capture file, read once.
    File(PathBuf),
    /// A TCP passthrough: listen for the POS, forward to the printer.
    Passthrough {
        /// Where the POS connects.
        listen: SocketAddr,
        /// The printer.
        forward: String,
    },
}

/// A validated POS source.
#[derive(Debug, Clone)]
pub struct PosSource {
    /// Unique source name.
    pub name: String,
    /// The printer model.
    pub profile: Arc<PosProfile>,
    /// Serial settings (the profile's, with the baud override).
    pub serial: SerialSettings,
    /// Silence that ends a receipt without a cut.
    pub idle_gap: Duration,
    /// Input.
    pub input: PosInput,
    /// Passthrough connection limit.
    pub max_connections: usize,
    /// Passthrough idle timeout.
    pub idle_timeout: Duration,
}

impl RawPos {
    /// Validates this table; `key` is its dotted position (`sources.pos[0]`).
    pub fn validate(
        &self,
        errs: &Errs<'_>,
        key: &str,
        base: &Path,
    ) -> Result<PosSource, ConfigError> {
        let name = self.name.clone().unwrap_or_else(|| "pos".to_string());
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == ':') {
            return Err(errs.at(
                format!("{key}.name"),
                "must be 1–64 printable characters without ':'",
            ));
        }
        let profile = profiles::resolve_pos(&self.profile, base, errs.reads)
            .map_err(|e| errs.at(format!("{key}.profile"), e.to_string()))?;
        let resolve = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        let input = match (&self.port, &self.file, &self.listen) {
            (Some(p), None, None) => PosInput::Serial(p.clone()),
            (None, Some(f), None) => PosInput::File(resolve(f)),
            (None, None, Some(l)) => {
                let listen: SocketAddr = l.parse().map_err(|_| {
                    errs.at(
                        format!("{key}.listen"),
                        format!("{l:?} is not an IP address and port (e.g. 192.168.1.2:9100)"),
                    )
                })?;
                if listen.ip().is_unspecified() {
                    return Err(errs.at(
                        format!("{key}.listen"),
                        "a passthrough has no credentials to check: listen on the gateway's address on the POS's network (e.g. 192.168.1.2:9100) or on loopback, not on every interface",
                    ));
                }
                let Some(forward) = &self.forward else {
                    return Err(errs.at(
                        format!("{key}.forward"),
                        "a passthrough needs the printer's address (`forward = \"192.0.2.10:9100\"`)",
                    ));
                };
                if forward.rsplit_once(':').is_none_or(|(h, p)| {
                    h.is_empty() || p.parse::<u16>().is_err()
                }) {
                    return Err(errs.at(
                        format!("{key}.forward"),
                        format!("{forward:?} is not host:port"),
                    ));
                }
                PosInput::Passthrough {
                    listen,
                    forward: forward.clone(),
                }
            }
            _ => {
                return Err(errs.at(
                    key,
                    "give exactly one of `port` (serial tap), `file` (capture) or `listen` + `forward` (TCP passthrough)",
                ))
            }
        };
        if self.forward.is_some() && !matches!(input, PosInput::Passthrough { .. }) {
            return Err(errs.at(
                format!("{key}.forward"),
                "only a passthrough (`listen`) forwards",
            ));
        }
        let mut serial = profile.serial.clone();
        if let Some(b) = self.baud {
            serial.baud = b;
        }
        serial
            .check("")
            .map_err(|(k, reason)| errs.at(format!("{key}.{k}"), reason))?;
        let idle_gap = self.idle_gap.unwrap_or(profile.idle_gap);
        if idle_gap < Duration::from_millis(200) || idle_gap > Duration::from_secs(600) {
            return Err(errs.at(format!("{key}.idle_gap"), "must be between 200ms and 10min"));
        }
        if !(1..=64).contains(&self.max_connections) {
            return Err(errs.at(format!("{key}.max_connections"), "must be between 1 and 64"));
        }
        if self.idle_timeout < Duration::from_secs(10)
            || self.idle_timeout > Duration::from_secs(24 * 3600)
        {
            return Err(errs.at(format!("{key}.idle_timeout"), "must be between 10s and 24h"));
        }
        Ok(PosSource {
            name,
            profile: Arc::new(profile),
            serial,
            idle_gap,
            input,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
        })
    }
}
