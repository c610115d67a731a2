//! Hardware profiles: declarative descriptions of device models (`hardware-profiles/`).
//!
//! Profiles ship inside the binary (so an installer only names one) and can also be given as a
//! path to a `.toml` file for models not yet shipped. Supporting a new model of a supported
//! protocol means adding a file here, not code.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::FileReads;

/// Profiles compiled into the binary: (id, TOML text). The id is the path under
/// `hardware-profiles/` without the extension.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "wifi/alfa-awus036acm",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036acm.toml"),
    ),
    (
        "wifi/alfa-awus036nha",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036nha.toml"),
    ),
    (
        "wifi/alfa-awus036axml",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036axml.toml"),
    ),
    (
        "wifi/panda-pau06",
        include_str!("../../../../hardware-profiles/wifi/panda-pau06.toml"),
    ),
    (
        "wifi/netgear-a6210",
        include_str!("../../../../hardware-profiles/wifi/netgear-a6210.toml"),
    ),
    (
        "wifi/tp-link-tl-wn722n-v1",
        include_str!("../../../../hardware-profiles/wifi/tp-link-tl-wn722n-v1.toml"),
    ),
    (
        "wifi/comfast-cf-812ac",
        include_str!("../../../../hardware-profiles/wifi/comfast-cf-812ac.toml"),
    ),
    (
        "pos/epson-tm-t88v-cp858",
        include_str!("../../../../hardware-profiles/pos/epson-tm-t88v-cp858.toml"),
    ),
    (
        "pos/xprinter-xp-58iih-gb18030",
        include_str!("../../../../hardware-profiles/pos/xprinter-xp-58iih-gb18030.toml"),
    ),
    (
        "pos/epson-tm-t82iii-big5",
        include_str!("../../../../hardware-profiles/pos/epson-tm-t82iii-big5.toml"),
    ),
    (
        "counter/xovis-pc2s-v5",
        include_str!("../../../../hardware-profiles/counter/xovis-pc2s-v5.toml"),
    ),
    (
        "counter/xovis-pc2-legacy",
        include_str!("../../../../hardware-profiles/counter/xovis-pc2-legacy.toml"),
    ),
    (
        "counter/brickstream-3d",
        include_str!("../../../../hardware-profiles/counter/brickstream-3d.toml"),
    ),
    (
        "counter/irisys-vector-4d",
        include_str!("../../../../hardware-profiles/counter/irisys-vector-4d.toml"),
    ),
    (
        "counter/hikvision-ds-2cd6825g0-event",
        include_str!("../../../../hardware-profiles/counter/hikvision-ds-2cd6825g0-event.toml"),
    ),
    (
        "counter/hikvision-ds-2cd6825g0-search",
        include_str!("../../../../hardware-profiles/counter/hikvision-ds-2cd6825g0-search.toml"),
    ),
    (
        "counter/axis-people-counter",
        include_str!("../../../../hardware-profiles/counter/axis-people-counter.toml"),
    ),
    (
        "counter/milesight-vs133",
        include_str!("../../../../hardware-profiles/counter/milesight-vs133.toml"),
    ),
    (
        "counter/mqtt-json-interval",
        include_str!("../../../../hardware-profiles/counter/mqtt-json-interval.toml"),
    ),
    (
        "counter/generic-ir-beam-modbus",
        include_str!("../../../../hardware-profiles/counter/generic-ir-beam-modbus.toml"),
    ),
];

/// A monitor-mode Wi-Fi adapter model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiProfile {
    /// Always `"wifi"`.
    pub kind: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model name as sold.
    pub model: String,
    /// Wi-Fi chipset.
    pub chipset: String,
    /// Linux driver that supports monitor mode for it.
    pub driver: String,
    /// Oldest Linux kernel whose in-tree driver supports monitor mode.
    pub min_kernel: String,
    /// USB vendor:product ids (`0e8d:7612`).
    pub usb_ids: Vec<String>,
    /// Bands it can receive: `"2.4GHz"`, `"5GHz"`.
    pub bands: Vec<String>,
    /// Channel plan for hopping, in order.
    pub channels: Vec<u16>,
    /// Time on each channel while hopping.
    #[serde(with = "humantime_serde")]
    pub hop_dwell: Duration,
    /// Installer notes (antenna, power, quirks).
    #[serde(default)]
    pub notes: String,
}

/// Serial line settings of a device (what its port is set to; a tap must match them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits: 7 or 8.
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// `"none"`, `"even"` or `"odd"`.
    #[serde(default = "default_parity")]
    pub parity: String,
    /// Stop bits: 1 or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// `"none"`, `"software"` (XON/XOFF) or `"hardware"` (RTS/CTS, DTR/DSR).
    #[serde(default = "default_flow")]
    pub flow_control: String,
}

fn default_data_bits() -> u8 {
    8
}
fn default_parity() -> String {
    "none".into()
}
fn default_stop_bits() -> u8 {
    1
}
fn default_flow() -> String {
    "none".into()
}

/// Baud rates a serial tap may be set to.
pub const BAUD_RATES: [u32; 9] = [
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400,
];

impl SerialSettings {
    /// Opens `port` with these line settings at `baud`; reads return after `timeout` without
    /// data. (Settings were checked at validation; anything else falls back to 8N1, no flow
    /// control.)
    pub fn open(
        &self,
        port: &Path,
        baud: u32,
        timeout: Duration,
    ) -> serialport::Result<serialport::TTYPort> {
        let data_bits = match self.data_bits {
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        };
        let parity = match self.parity.as_str() {
            "even" => serialport::Parity::Even,
            "odd" => serialport::Parity::Odd,
            _ => serialport::Parity::None,
        };
        let stop_bits = match self.stop_bits {
            2 => serialport::StopBits::Two,
            _ => serialport::StopBits::One,
        };
        let flow = match self.flow_control.as_str() {
            "software" => serialport::FlowControl::Software,
            "hardware" => serialport::FlowControl::Hardware,
            _ => serialport::FlowControl::None,
        };
        serialport::new(port.to_string_lossy(), baud)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(flow)
            .timeout(timeout)
            .open_native()
    }

    /// Checks every field; errors name the key under `prefix`.
    pub fn check(&self, prefix: &str) -> Result<(), (String, String)> {
        let key = |k: &str| format!("{prefix}{k}");
        if !BAUD_RATES.contains(&self.baud) {
            return Err((
                key("baud"),
                format!("{} is not one of {BAUD_RATES:?}", self.baud),
            ));
        }
        if !(7..=8).contains(&self.data_bits) {
            return Err((key("data_bits"), "must be 7 or 8".into()));
        }
        if !["none", "even", "odd"].contains(&self.parity.as_str()) {
            return Err((
                key("parity"),
                format!("{:?}: expected \"none\", \"even\" or \"odd\"", self.parity),
            ));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err((key("stop_bits"), "must be 1 or 2".into()));
        }
        if !["none", "software", "hardware"].contains(&self.flow_control.as_str()) {
            return Err((
                key("flow_control"),
                format!(
                    "{:?}: expected \"none\", \"software\" or \"hardware\"",
                    self.flow_control
                ),
            ));
        }
        Ok(())
    }
}

/// `[decode]` of a POS profile: how the printer's byte stream turns into receipt text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecode {
    /// Text encoding at start and after `ESC @`: `cp437`, `cp850`, `cp858`, `cp866`,
    /// `windows-1252`, `gb18030` or `big5`.
    pub encoding: String,
    /// `ESC t n` code tables of the model: `{ "0" = "cp437", "19" = "cp858" }`.
    #[serde(default)]
    pub code_tables: std::collections::BTreeMap<String, String>,
    /// Encoding of double-byte mode (between `FS &` and `FS .`), `gb18030` or `big5`.
    #[serde(default)]
    pub double_byte: Option<String>,
    /// The printer starts in double-byte mode (Chinese firmware).
    #[serde(default)]
    pub starts_double_byte: bool,
    /// Silence after which a receipt without a cut command ends.
    #[serde(default = "default_idle_gap", with = "humantime_serde")]
    pub idle_gap: Duration,
    /// `ESC @` ends a receipt that already has text (POS software that never cuts).
    #[serde(default = "default_true")]
    pub boundary_on_init: bool,
    /// Opening the cash drawer ends the receipt.
    #[serde(default)]
    pub boundary_on_drawer_kick: bool,
}

fn default_idle_gap() -> Duration {
    DEFAULT_IDLE_GAP
}
fn default_true() -> bool {
    true
}

/// Default silence that ends a receipt without a cut: 5 seconds.
pub const DEFAULT_IDLE_GAP: Duration = Duration::from_secs(5);

/// A POS receipt printer model as written (`hardware-profiles/pos/*.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPosProfile {
    /// Always `"pos"`.
    pub kind: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model name as sold.
    pub model: String,
    /// Installer notes (port, DIP switches, quirks); for people reading the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub notes: String,
    /// The printer's serial settings.
    pub serial: SerialSettings,
    /// Byte stream decoding.
    pub decode: RawDecode,
    /// Field extraction rules.
    pub extract: edge_core::pos::ExtractRulesRaw,
}

/// A validated POS profile.
#[derive(Debug, Clone)]
pub struct PosProfile {
    /// Profile id or file.
    pub id: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial settings.
    pub serial: SerialSettings,
    /// Decoder settings.
    pub decoder: edge_wire::escpos::DecoderConfig,
    /// Receipt-ending silence.
    pub idle_gap: Duration,
    /// Compiled extraction rules.
    pub rules: std::sync::Arc<edge_core::pos::ExtractRules>,
}

/// Parses and validates a POS profile's text; `id` names it in errors.
pub fn parse_pos(id: &str, text: &str) -> Result<PosProfile, ProfileError> {
    use edge_wire::escpos::{DecoderConfig, Encoding};
    let err = |key: &str, reason: String| ProfileError {
        profile: id.to_string(),
        key: key.to_string(),
        reason,
    };
    let p: RawPosProfile = deserialize(id, text)?;
    if p.kind != "pos" {
        return Err(err("kind", format!("expected \"pos\", found {:?}", p.kind)));
    }
    for (key, v) in [("vendor", &p.vendor), ("model", &p.model)] {
        if v.trim().is_empty() {
            return Err(err(key, "must not be empty".into()));
        }
    }
    p.serial
        .check("serial.")
        .map_err(|(key, reason)| err(&key, reason))?;
    let encoding = |key: &str, name: &str| {
        Encoding::from_name(name).ok_or_else(|| {
            err(
                key,
                format!(
                    "unknown encoding {name:?} (cp437, cp850, cp858, cp866, windows-1252, gb18030, big5)"
                ),
            )
        })
    };
    let d = &p.decode;
    let mut decoder = DecoderConfig::new(encoding("decode.encoding", &d.encoding)?);
    for (n, name) in &d.code_tables {
        let key = format!("decode.code_tables.{n}");
        let n: u8 = n
            .parse()
            .map_err(|_| err(&key, "the table number must be 0–255".into()))?;
        decoder.code_tables.push((n, encoding(&key, name)?));
    }
    if let Some(name) = &d.double_byte {
        let e = encoding("decode.double_byte", name)?;
        if !matches!(e, Encoding::Gb18030 | Encoding::Big5) {
            return Err(err(
                "decode.double_byte",
                format!("{name:?} is not a double-byte encoding (gb18030 or big5)"),
            ));
        }
        decoder.double_byte = Some(e);
    }
    if d.starts_double_byte && decoder.double_byte.is_none() {
        return Err(err(
            "decode.starts_double_byte",
            "needs decode.double_byte".into(),
        ));
    }
    decoder.starts_double_byte = d.starts_double_byte;
    decoder.boundary_on_init = d.boundary_on_init;
    decoder.boundary_on_drawer_kick = d.boundary_on_drawer_kick;
    if d.idle_gap < Duration::from_millis(200) || d.idle_gap > Duration::from_secs(600) {
        return Err(err(
            "decode.idle_gap",
            "must be between 200ms and 10min".into(),
        ));
    }
    let rules = p
        .extract
        .validate()
        .map_err(|e| err(&format!("extract.{}", e.key()), e.to_string()))?;
    Ok(PosProfile {
        id: id.to_string(),
        vendor: p.vendor,
        model: p.model,
        serial: p.serial,
        decoder,
        idle_gap: d.idle_gap,
        rules: std::sync::Arc::new(rules),
    })
}

/// Resolves a POS `profile =` value: an embedded id (`pos/epson-tm-t88v-cp858`) or a path to a
/// `.toml` file (relative to `base`, read as `reads` says).
pub fn resolve_pos(
    value: &str,
    base: &Path,
    reads: FileReads<'_>,
) -> Result<PosProfile, ProfileError> {
    let (id, text) = lookup(value, base, "pos", reads)?;
    parse_pos(&id, &text)
}

/// A profile problem: which profile, which key, what is wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProfileError {
    /// Profile id or file.
    pub profile: String,
    /// The key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "profile {}: {}", self.profile, self.reason)
        } else {
            write!(
                f,
                "profile {}: key `{}`: {}",
                self.profile, self.key, self.reason
            )
        }
    }
}

impl std::error::Error for ProfileError {}

fn channel_in_band(ch: u16, bands: &[String]) -> bool {
    let b24 = bands.iter().any(|b| b == "2.4GHz") && (1..=14).contains(&ch);
    let b5 = bands.iter().any(|b| b == "5GHz") && (32..=177).contains(&ch);
    b24 || b5
}

/// Deserializes a profile's TOML; errors name the key path.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
    id: &str,
    text: &str,
) -> Result<T, ProfileError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let key = e.path().to_string();
        ProfileError {
            profile: id.to_string(),
            key: if key == "." { String::new() } else { key },
            reason: e.inner().to_string().trim_end().replace('\n', " "),
        }
    })
}

/// Finds a `profile =` value: an embedded id, or a path to a `.toml` file (relative to
/// `base`, read as `reads` says); gives the text and the name errors use.
pub(crate) fn lookup(
    value: &str,
    base: &Path,
    kind: &str,
    reads: FileReads<'_>,
) -> Result<(String, String), ProfileError> {
    if let Some((_, text)) = EMBEDDED.iter().find(|(id, _)| *id == value) {
        return Ok((value.to_string(), (*text).to_string()));
    }
    if value.ends_with(".toml") {
        let path = base.join(value);
        let text = reads.read_to_string(&path).map_err(|e| ProfileError {
            profile: path.display().to_string(),
            key: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        return Ok((path.display().to_string(), text));
    }
    let known: Vec<&str> = EMBEDDED
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| id.starts_with(&format!("{kind}/")))
        .collect();
    Err(ProfileError {
        profile: value.to_string(),
        key: String::new(),
        reason: format!("unknown {kind} profile; built-in: {}", known.join(", ")),
    })
}

/// Parses and validates a Wi-Fi profile's text; `id` names it in errors.
pub fn parse_wifi(id: &str, text: &str) -> Result<WifiProfile, ProfileError> {
    let err = |key: &str, reason: String| ProfileError {
        profile: id.to_string(),
        key: key.to_string(),
        reason,
    };
    let p: WifiProfile = deserialize(id, text)?;
    if p.kind != "wifi" {
        return Err(err(
            "kind",
            format!("expected \"wifi\", found {:?}", p.kind),
        ));
    }
    for (key, v) in [
        ("vendor", &p.vendor),
        ("model", &p.model),
        ("chipset", &p.chipset),
        ("driver", &p.driver),
    ] {
        if v.trim().is_empty() {
            return Err(err(key, "must not be empty".into()));
        }
    }
    if p.usb_ids.is_empty() {
        return Err(err("usb_ids", "list at least one vendor:product id".into()));
    }
    for (i, id) in p.usb_ids.iter().enumerate() {
        let ok = id.len() == 9
            && id.as_bytes().get(4) == Some(&b':')
            && id
                .chars()
                .enumerate()
                .all(|(j, c)| j == 4 || c.is_ascii_hexdigit());
        if !ok {
            return Err(err(
                &format!("usb_ids[{i}]"),
                format!("{id:?} is not vvvv:pppp hex"),
            ));
        }
    }
    if p.bands.is_empty() {
        return Err(err("bands", "list at least one band".into()));
    }
    for (i, b) in p.bands.iter().enumerate() {
        if b != "2.4GHz" && b != "5GHz" {
            return Err(err(
                &format!("bands[{i}]"),
                format!("{b:?}: expected \"2.4GHz\" or \"5GHz\""),
            ));
        }
    }
    if p.channels.is_empty() {
        return Err(err("channels", "the channel plan is empty".into()));
    }
    for (i, &ch) in p.channels.iter().enumerate() {
        if !channel_in_band(ch, &p.bands) {
            return Err(err(
                &format!("channels[{i}]"),
                format!("channel {ch} is not in the adapter's bands {:?}", p.bands),
            ));
        }
    }
    if p.hop_dwell < Duration::from_millis(50) || p.hop_dwell > Duration::from_secs(10) {
        return Err(err("hop_dwell", "must be between 50ms and 10s".into()));
    }
    Ok(p)
}

/// Resolves a `profile =` value: an embedded id (`wifi/alfa-awus036acm`) or a path to a
/// `.toml` file (relative to `base`, read as `reads` says).
pub fn resolve_wifi(
    value: &str,
    base: &Path,
    reads: FileReads<'_>,
) -> Result<WifiProfile, ProfileError> {
    let (id, text) = lookup(value, base, "wifi", reads)?;
    parse_wifi(&id, &text)
}

/// Validates an embedded profile by the kind its id starts with (`wifi/…`, `pos/…`).
pub fn check_embedded(id: &str, text: &str) -> Result<(), ProfileError> {
    match id.split('/').next() {
        Some("wifi") => parse_wifi(id, text).map(|_| ()),
        Some("pos") => parse_pos(id, text).map(|_| ()),
        Some("counter") => super::counter_profile::parse_counter(id, text).map(|_| ()),
        _ => Err(ProfileError {
            profile: id.to_string(),
            key: String::new(),
            reason: "unknown profile kind".into(),
        }),
    }
}

/// Validates profile files (for `store-edge profiles check`). A file's kind is taken from its
/// parent directory name.
pub fn check_file(path: &Path) -> Result<(), ProfileError> {
    let text = super::read_regular_text(path).map_err(|e| ProfileError {
        profile: path.display().to_string(),
        key: String::new(),
        reason: format!("cannot read: {e}"),
    })?;
    let id = path.display().to_string();
    // The `kind` key says which schema applies; read it alone first so a file in any
    // directory can be checked.
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    let kind = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| Kind::deserialize(toml::Value::Table(t)).ok())
        .and_then(|k| k.kind);
    match kind.as_deref() {
        // A missing or unparsable `kind` is reported by the Wi-Fi parser with its key.
        Some("wifi") | None => parse_wifi(&id, &text).map(|_| ()),
        Some("pos") => parse_pos(&id, &text).map(|_| ()),
        Some("counter") => super::counter_profile::parse_counter(&id, &text).map(|_| ()),
        Some(other) => Err(ProfileError {
            profile: id,
            key: "kind".to_string(),
            reason: format!(
                "unknown profile kind {other:?} (supported: \"wifi\", \"pos\", \"counter\")"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_profiles() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hardware-profiles")
    }

    #[test]
    fn every_profile_file_in_the_repo_is_embedded_and_valid() {
        let mut files = Vec::new();
        for kind in std::fs::read_dir(repo_profiles()).unwrap() {
            let kind = kind.unwrap().path();
            if !kind.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&kind).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "toml") {
                    files.push(f);
                }
            }
        }
        assert!(files.len() >= 5, "{files:?}");
        for f in &files {
            check_file(f).unwrap_or_else(|e| panic!("{e}"));
            let id = format!(
                "{}/{}",
                f.parent().unwrap().file_name().unwrap().to_str().unwrap(),
                f.file_stem().unwrap().to_str().unwrap()
            );
            assert!(
                EMBEDDED.iter().any(|(e, _)| *e == id),
                "{id} is not embedded"
            );
        }
        assert_eq!(files.len(), EMBEDDED.len());
        for (id, text) in EMBEDDED {
            check_embedded(id, text).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn bad_profiles_name_the_key() {
        let (_, good) = EMBEDDED[0];
        let table = [
            (good.replace("kind = \"wifi\"", "kind = \"pos\""), "kind"),
            (format!("{good}\nextra = 1\n"), "extra"),
            (
                good.replace("hop_dwell = \"", "hop_dwell = \"x"),
                "hop_dwell",
            ),
            (
                good.replace("channels = [", "channels = [200, "),
                "channels[0]",
            ),
        ];
        for (text, key) in table {
            let e = parse_wifi("t", &text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }
}
