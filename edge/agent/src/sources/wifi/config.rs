//! `[[sources.wifi]]`: one monitor-mode sniffer (live interface, live capture stream on a named
//! pipe, or capture file) per zone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::profiles::{self, WifiProfile};
use crate::config::{ConfigError, Errs};

/// Default capture length: radiotap + 802.11 header + the IEs a fingerprint needs.
pub const DEFAULT_SNAPLEN: u32 = 512;
/// Default kernel capture buffer.
pub const DEFAULT_BUFFER_BYTES: u32 = 4 << 20;
/// Default BPF filter for live capture: only the frames that reveal a client's presence.
pub const DEFAULT_BPF_FILTER: &str = "type mgt subtype probe-req or type mgt subtype assoc-req \
     or type mgt subtype reassoc-req or type mgt subtype auth or type data";
/// Default `iw` program used for channel changes.
pub const DEFAULT_IW: &str = "iw";

/// One `[[sources.wifi]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWifi {
    /// Source name, unique among sources (defaults to the zone name).
    #[serde(default)]
    pub name: Option<String>,
    /// The store zone this sniffer covers (e.g. `"entrance"`).
    pub zone: String,
    /// Monitor-mode interface to capture live from (e.g. `"mon0"`). Exactly one of
    /// `interface`, `pipe` and `pcap` is required.
    #[serde(default)]
    pub interface: Option<String>,
    /// Named pipe (FIFO) another program streams a live pcap/pcapng capture into, e.g. an
    /// access point's monitor radio: `ssh ap tcpdump -U -i mon0 -w - > /run/store-edge/ap.pcap`.
    /// Read as it arrives; when the writer goes away the pipe is reopened for the next one.
    #[serde(default)]
    pub pipe: Option<PathBuf>,
    /// pcap or pcapng file to replay, relative to the config file.
    #[serde(default)]
    pub pcap: Option<PathBuf>,
    /// Hardware profile of the adapter (`"wifi/alfa-awus036acm"` or a path to a `.toml`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Fixed channel to tune the interface to at start (live only; ignored when hopping).
    #[serde(default)]
    pub channel: Option<u16>,
    /// Hop over a channel plan (live only): `channels` below, else the profile's plan.
    #[serde(default)]
    pub hop: bool,
    /// Channel plan for hopping (overrides the profile's).
    #[serde(default)]
    pub channels: Option<Vec<u16>>,
    /// Time on each channel while hopping (overrides the profile's; default 250ms).
    #[serde(default, with = "humantime_serde::option")]
    pub hop_dwell: Option<Duration>,
    /// BPF filter for live capture (default: presence-revealing frames only).
    #[serde(default)]
    pub bpf_filter: Option<String>,
    /// Bytes captured per frame (live).
    #[serde(default = "default_snaplen")]
    pub snaplen: u32,
    /// Kernel capture buffer size in bytes (live).
    #[serde(default = "default_buffer")]
    pub buffer_bytes: u32,
    /// The `iw` program used to change channels.
    #[serde(default = "default_iw")]
    pub iw: PathBuf,
}

fn default_snaplen() -> u32 {
    DEFAULT_SNAPLEN
}
fn default_buffer() -> u32 {
    DEFAULT_BUFFER_BYTES
}
fn default_iw() -> PathBuf {
    PathBuf::from(DEFAULT_IW)
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifiInput {
    /// A live monitor-mode interface.
    Interface(String),
    /// A capture file to replay.
    File(PathBuf),
    /// A named pipe carrying a live capture stream.
    Pipe(PathBuf),
}

impl WifiInput {
    /// Whether the input is live (runs until stopped, wall-clock time).
    pub fn is_live(&self) -> bool {
        !matches!(self, WifiInput::File(_))
    }
}

/// A channel-hopping plan.
#[derive(Debug, Clone, PartialEq)]
pub struct HopPlan {
    /// Channels in order.
    pub channels: Vec<u16>,
    /// Time on each.
    pub dwell: Duration,
}

/// A validated Wi-Fi source.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiSource {
    /// Unique source name.
    pub name: String,
    /// Zone name.
    pub zone: String,
    /// Interface or file.
    pub input: WifiInput,
    /// The adapter's profile, if named.
    pub profile: Option<WifiProfile>,
    /// Fixed channel for live capture.
    pub channel: Option<u16>,
    /// Hopping plan for live capture.
    pub hop: Option<HopPlan>,
    /// BPF filter for live capture.
    pub bpf_filter: String,
    /// Snap length.
    pub snaplen: u32,
    /// Kernel buffer size.
    pub buffer_bytes: u32,
    /// `iw` program.
    pub iw: PathBuf,
}

fn valid_channel(ch: u16) -> bool {
    (1..=14).contains(&ch) || (32..=177).contains(&ch)
}

impl RawWifi {
    /// Validates this table; `key` is its dotted position (`sources.wifi[0]`).
    pub fn validate(
        &self,
        errs: &Errs<'_>,
        key: &str,
        base: &Path,
    ) -> Result<WifiSource, ConfigError> {
        let zone = self.zone.trim();
        if zone.is_empty() || zone.len() > 64 {
            return Err(errs.at(format!("{key}.zone"), "must be 1–64 characters"));
        }
        let name = self.name.clone().unwrap_or_else(|| zone.to_string());
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return Err(errs.at(format!("{key}.name"), "must be non-empty printable text"));
        }
        let abs = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        let input = match (&self.interface, &self.pipe, &self.pcap) {
            (Some(i), None, None) if !i.trim().is_empty() => WifiInput::Interface(i.clone()),
            (None, Some(p), None) => WifiInput::Pipe(abs(p)),
            (None, None, Some(p)) => WifiInput::File(abs(p)),
            _ => return Err(errs.at(
                key,
                "exactly one of `interface` (live capture), `pipe` (live capture stream) or `pcap` (file replay) is required",
            )),
        };
        let profile = match &self.profile {
            Some(p) => Some(
                profiles::resolve_wifi(p, base, errs.reads)
                    .map_err(|e| errs.at(format!("{key}.profile"), e.to_string()))?,
            ),
            None => None,
        };
        if let Some(ch) = self.channel {
            if !valid_channel(ch) {
                return Err(errs.at(
                    format!("{key}.channel"),
                    format!("{ch} is not a Wi-Fi channel"),
                ));
            }
        }
        if let Some(chs) = &self.channels {
            if let Some((i, ch)) = chs.iter().enumerate().find(|(_, c)| !valid_channel(**c)) {
                return Err(errs.at(
                    format!("{key}.channels[{i}]"),
                    format!("{ch} is not a Wi-Fi channel"),
                ));
            }
        }
        let hop = if self.hop {
            let channels = self
                .channels
                .clone()
                .or_else(|| profile.as_ref().map(|p| p.channels.clone()))
                .unwrap_or_default();
            if channels.len() < 2 {
                return Err(errs.at(
                    format!("{key}.hop"),
                    "hopping needs a plan of two or more channels (`channels` or a `profile`)",
                ));
            }
            let dwell = self
                .hop_dwell
                .or_else(|| profile.as_ref().map(|p| p.hop_dwell))
                .unwrap_or(Duration::from_millis(250));
            if dwell < Duration::from_millis(50) || dwell > Duration::from_secs(60) {
                return Err(errs.at(format!("{key}.hop_dwell"), "must be between 50ms and 60s"));
            }
            Some(HopPlan { channels, dwell })
        } else {
            None
        };
        if !(64..=65_535).contains(&self.snaplen) {
            return Err(errs.at(format!("{key}.snaplen"), "must be between 64 and 65535"));
        }
        if self.buffer_bytes < 65_536 {
            return Err(errs.at(format!("{key}.buffer_bytes"), "must be at least 65536"));
        }
        Ok(WifiSource {
            name,
            zone: zone.to_string(),
            input,
            profile,
            channel: self.channel,
            hop,
            bpf_filter: self
                .bpf_filter
                .clone()
                .unwrap_or_else(|| DEFAULT_BPF_FILTER.to_string()),
            snaplen: self.snaplen,
            buffer_bytes: self.buffer_bytes,
            iw: self.iw.clone(),
        })
    }
}
