//! The agent's configuration: the TOML schema (raw, as written by people) and its validation
//! into the typed config the rest of the agent uses.
//!
//! Raw structs mirror the file one to one with `deny_unknown_fields`, so a typo is an error, not
//! a silently ignored setting. Validation resolves relative paths against the config file,
//! loads hardware profiles and checks every value; errors name the file, the key and the reason.
//!
//! [`parse`] is the one path from text to [`Config`], for `--config` files ([`load`]) and pushed
//! `config/desired` texts alike. Validation reads the files a config names — password and
//! token files, TLS material, hardware profiles given as `.toml` paths — and nothing else (the
//! secrets file and the staff phone list are read when the agent starts);
//! [`parse_with`] and [`FileReads::Given`] run the same validation without touching the disk
//! (the `config` fuzz target does, so arbitrary text cannot make it open `/dev/zero` or wait
//! on a FIFO).

pub mod counter_profile;
pub mod profiles;
pub mod push;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use edge_core::params as core_params;
use edge_core::MetricParams;
use serde::Deserialize;

pub use crate::sources::wifi::config::{RawWifi, WifiSource};

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Dotted key path, e.g. `sources.wifi[1].pcap` (empty for file-level problems).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(
                f,
                "{}: key `{}`: {}",
                self.file.display(),
                self.key,
                self.reason
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where validation reads the files a config names (password and token files, TLS material,
/// hardware profiles given as `.toml` paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileReads<'a> {
    /// From disk: what the agent does.
    Disk,
    /// Never from disk: every file the config names reads as these bytes (for fuzzing:
    /// arbitrary text must not make validation open `/dev/zero` or wait on a FIFO).
    Given(&'a [u8]),
}

/// The largest file a config may name (password and token files, TLS material, profiles) and
/// the largest config file: far above any real one, and small enough that a pushed config
/// naming a huge file cannot exhaust a gateway's memory.
pub const MAX_NAMED_FILE: u64 = 1 << 20;

/// Reads a file a config names: only a regular file, and at most [`MAX_NAMED_FILE`] bytes.
/// A pushed config is remote input, so `/dev/zero` (endless), a FIFO (blocks forever) or a
/// device must give an error, not a hung or exhausted agent. The file is opened non-blocking
/// so that opening a FIFO without a writer does not wait; regular files ignore the flag.
pub fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_NAMED_FILE {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The length can grow after the check; `take` bounds what is read in any case.
    file.take(MAX_NAMED_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_NAMED_FILE {
        return Err(too_large());
    }
    Ok(bytes)
}

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than {MAX_NAMED_FILE} bytes"),
    )
}

/// [`read_regular_file`] as UTF-8 text (an `InvalidData` error when it is not).
pub fn read_regular_text(path: &Path) -> std::io::Result<String> {
    utf8(read_regular_file(path)?)
}

/// Bytes as text, or an `InvalidData` error.
fn utf8(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

impl FileReads<'_> {
    /// The bytes of the file at `path` (see [`read_regular_file`] for what is refused).
    pub fn read(self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self {
            FileReads::Disk => read_regular_file(path),
            FileReads::Given(bytes) => Ok(bytes.to_vec()),
        }
    }

    /// The text of the file at `path` (an `InvalidData` error when it is not UTF-8).
    pub fn read_to_string(self, path: &Path) -> std::io::Result<String> {
        match self {
            FileReads::Disk => read_regular_text(path),
            FileReads::Given(bytes) => utf8(bytes.to_vec()),
        }
    }
}

/// Builds [`ConfigError`]s for one file, and reads the files it names.
#[derive(Debug, Clone)]
pub struct Errs<'a> {
    /// The file being validated.
    pub file: &'a Path,
    /// Where the files it names are read from.
    pub reads: FileReads<'a>,
}

impl Errs<'_> {
    /// An error at `key`.
    pub fn at(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The bytes of the file at `path` (already resolved), named by `key`.
    pub fn read(&self, key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
        self.reads
            .read(path)
            .map_err(|e| self.at(key, format!("cannot read {}: {e}", path.display())))
    }

    /// The text of the file at `path` (already resolved), named by `key`.
    pub fn read_to_string(&self, key: &str, path: &Path) -> Result<String, ConfigError> {
        self.reads
            .read_to_string(path)
            .map_err(|e| self.at(key, format!("cannot read {}: {e}", path.display())))
    }
}

/// `[store]`: who this gateway is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Retailer's store identifier (letters, digits, `-`, `_`; used in MQTT topics later).
    pub store_id: String,
    /// This gateway's identifier within the store.
    pub gateway_id: String,
    /// IANA time zone of the store; reports and hourly aggregates use local time.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// Default store time zone.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_string()
}

/// `[privacy]`: where the hashing secrets come from and how often device keys rotate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    /// TOML file with `device_key_secret = "<hex>"` (and optionally `device_key_version`);
    /// must live outside the data directory, mode 0600. Relative to the config file. When
    /// absent, the `STORE_EDGE_DEVICE_KEY_SECRET` environment variable is used.
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    /// How long a device key stays the same before it rotates (repeat-visit horizon).
    #[serde(default = "default_rotation", with = "humantime_serde")]
    pub device_key_rotation: Duration,
    /// Region (ISO 3166 code, e.g. `"CN"`) of phone numbers written without a country code.
    #[serde(default = "default_region")]
    pub default_region: String,
    /// Staff phone numbers, one per line (`#` comments); hashed into person keys when loaded
    /// and excluded from visitor metrics. Relative to the config file; keep it outside the
    /// data directory.
    #[serde(default)]
    pub staff_phones_file: Option<PathBuf>,
}

/// Default region of national phone numbers.
pub const DEFAULT_REGION: &str = "CN";

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

/// Default device-key rotation horizon: 30 days.
pub const DEFAULT_DEVICE_KEY_ROTATION: Duration = Duration::from_secs(30 * 86_400);

fn default_rotation() -> Duration {
    DEFAULT_DEVICE_KEY_ROTATION
}

impl Default for RawPrivacy {
    fn default() -> Self {
        RawPrivacy {
            secrets_file: None,
            device_key_rotation: DEFAULT_DEVICE_KEY_ROTATION,
            default_region: default_region(),
            staff_phones_file: None,
        }
    }
}

/// `[storage]`: where data lives and how often state is made durable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Data directory (holds `store-edge.db`); relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How often closed visits and sealed hours are committed.
    #[serde(default = "default_commit_interval", with = "humantime_serde")]
    pub commit_interval: Duration,
    /// How often the core state is snapshotted together with the source cursors; a crash
    /// replays at most this much input (file sources) .
    #[serde(default = "default_checkpoint_interval", with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How long raw events are kept.
    #[serde(default = "default_raw_retention", with = "humantime_serde")]
    pub raw_retention: Duration,
    /// How long aggregates are kept after the cloud acknowledged them.
    #[serde(default = "default_aggregate_retention", with = "humantime_serde")]
    pub aggregate_retention: Duration,
    /// Most database space in use (e.g. "2GB", "500MB"). Above it records go in this order:
    /// acknowledged records, raw sightings (oldest first), unacknowledged health snapshots,
    /// unacknowledged visits; hourly aggregates, receipts and door counts never. Every drop of
    /// something the cloud has not acknowledged is counted. (`disk_budget` is the old name.)
    #[serde(default = "default_max_bytes", alias = "disk_budget")]
    pub max_bytes: String,
    /// How often retention and the disk budget are applied.
    #[serde(default = "default_prune_interval", with = "humantime_serde")]
    pub prune_interval: Duration,
}

/// Default data directory, relative to the config file.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Default commit interval.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Default checkpoint interval.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// Default raw-event retention: 7 days.
pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Default aggregate retention after ack: 90 days.
pub const DEFAULT_AGGREGATE_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// Default `max_bytes`.
pub const DEFAULT_MAX_BYTES: &str = "2GB";
/// Default prune interval.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(600);

fn default_max_bytes() -> String {
    DEFAULT_MAX_BYTES.to_string()
}
fn default_prune_interval() -> Duration {
    DEFAULT_PRUNE_INTERVAL
}

/// "2GB", "500 MB", "64MiB", "1048576" → bytes (decimal and binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_commit_interval() -> Duration {
    DEFAULT_COMMIT_INTERVAL
}
fn default_checkpoint_interval() -> Duration {
    DEFAULT_CHECKPOINT_INTERVAL
}
fn default_raw_retention() -> Duration {
    DEFAULT_RAW_RETENTION
}
fn default_aggregate_retention() -> Duration {
    DEFAULT_AGGREGATE_RETENTION
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            data_dir: default_data_dir(),
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            raw_retention: DEFAULT_RAW_RETENTION,
            aggregate_retention: DEFAULT_AGGREGATE_RETENTION,
            max_bytes: default_max_bytes(),
            prune_interval: DEFAULT_PRUNE_INTERVAL,
        }
    }
}

/// `[metrics]`: the thresholds of the metric definitions (design §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Gap after which a device's next sighting starts a new visit.
    #[serde(default = "d_visit_timeout", with = "humantime_serde")]
    pub visit_timeout: Duration,
    /// Frames weaker than this (dBm) are ignored.
    #[serde(default = "d_ignore")]
    pub ignore_below_dbm: i8,
    /// Signal (dBm) from which a device counts as inside the store.
    #[serde(default = "d_inside")]
    pub inside_dbm: i8,
    /// Inside-dwell from which a visit is a visitor.
    #[serde(default = "d_min_dwell", with = "humantime_serde")]
    pub min_visit_dwell: Duration,
    /// Hours a day that make a staff day.
    #[serde(default = "d_staff_hours")]
    pub staff_min_hours: f64,
    /// Staff days needed within the window.
    #[serde(default = "d_staff_days")]
    pub staff_min_days: u32,
    /// The staff rule's window, in days.
    #[serde(default = "d_staff_window")]
    pub staff_window_days: u32,
    /// Weight of a new RSSI reading in the per-zone smoothing (0–1].
    #[serde(default = "d_smoothing")]
    pub zone_smoothing: f32,
    /// dB another zone must lead by before a device changes zone.
    #[serde(default = "d_hysteresis")]
    pub zone_hysteresis_db: f32,
    /// A zone's reading older than this stops competing.
    #[serde(default = "d_zone_stale", with = "humantime_serde")]
    pub zone_stale: Duration,
    /// Zone stays shorter than this fold into their neighbours.
    #[serde(default = "d_min_zone_dwell", with = "humantime_serde")]
    pub min_zone_dwell: Duration,
    /// A receipt with a member phone joins that person's visit covering the receipt time
    /// widened by this much at both ends.
    #[serde(default = "d_attribution_grace", with = "humantime_serde")]
    pub attribution_grace: Duration,
    /// MACs (`aa:bb:cc:dd:ee:ff`) of devices that stay in the store and are not people: PCs,
    /// printers, signage, the gateway's own neighbours. Their frames show the sniffer is
    /// listening; they never make a visit and never count as present. (Devices present most
    /// of every day are learned as staff anyway; list here what is on from the first day.)
    #[serde(default)]
    pub fixed_devices: Vec<String>,
}

fn ms(ms: i64) -> Duration {
    Duration::from_millis(ms as u64)
}
fn d_visit_timeout() -> Duration {
    ms(core_params::DEFAULT_VISIT_TIMEOUT_MS)
}
fn d_ignore() -> i8 {
    core_params::DEFAULT_IGNORE_BELOW_DBM
}
fn d_inside() -> i8 {
    core_params::DEFAULT_INSIDE_DBM
}
fn d_min_dwell() -> Duration {
    ms(core_params::DEFAULT_MIN_VISIT_DWELL_MS)
}
fn d_staff_hours() -> f64 {
    core_params::DEFAULT_STAFF_MIN_HOURS
}
fn d_staff_days() -> u32 {
    core_params::DEFAULT_STAFF_MIN_DAYS
}
fn d_staff_window() -> u32 {
    core_params::DEFAULT_STAFF_WINDOW_DAYS
}
fn d_smoothing() -> f32 {
    core_params::DEFAULT_ZONE_SMOOTHING
}
fn d_hysteresis() -> f32 {
    core_params::DEFAULT_ZONE_HYSTERESIS_DB
}
fn d_zone_stale() -> Duration {
    ms(core_params::DEFAULT_ZONE_STALE_MS)
}
fn d_min_zone_dwell() -> Duration {
    ms(core_params::DEFAULT_MIN_ZONE_DWELL_MS)
}
fn d_attribution_grace() -> Duration {
    ms(edge_core::pos::DEFAULT_ATTRIBUTION_GRACE_MS)
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            visit_timeout: d_visit_timeout(),
            ignore_below_dbm: d_ignore(),
            inside_dbm: d_inside(),
            min_visit_dwell: d_min_dwell(),
            staff_min_hours: d_staff_hours(),
            staff_min_days: d_staff_days(),
            staff_window_days: d_staff_window(),
            zone_smoothing: d_smoothing(),
            zone_hysteresis_db: d_hysteresis(),
            zone_stale: d_zone_stale(),
            min_zone_dwell: d_min_zone_dwell(),
            attribution_grace: d_attribution_grace(),
            fixed_devices: Vec::new(),
        }
    }
}

/// `[sources]`: the hardware (or files) the agent reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSources {
    /// Wi-Fi sniffers, one per zone (`[[sources.wifi]]`).
    #[serde(default)]
    pub wifi: Vec<RawWifi>,
    /// Captive-portal login sources (`[[sources.portal]]`).
    #[serde(default)]
    pub portal: Vec<crate::sources::portal::config::RawPortal>,
    /// POS receipt printer lines (`[[sources.pos]]`).
    #[serde(default)]
    pub pos: Vec<crate::sources::pos::config::RawPos>,
    /// Door people counters (`[[sources.counter]]`).
    #[serde(default)]
    pub counter: Vec<crate::sources::counter::config::RawCounter>,
}

/// The whole file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[store]`.
    pub store: RawStore,
    /// `[privacy]`.
    #[serde(default)]
    pub privacy: RawPrivacy,
    /// `[storage]`.
    #[serde(default)]
    pub storage: RawStorage,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// `[sources]`.
    #[serde(default)]
    pub sources: RawSources,
    /// `[sync]`: the pull API.
    #[serde(default)]
    pub sync: crate::sync::config::RawSync,
    /// `[mqtt]`: management over the fleet broker (absent: no MQTT management).
    #[serde(default)]
    pub mqtt: Option<crate::mgmt::config::RawMqtt>,
}

/// Validated `[storage]`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Absolute (or config-relative resolved) data directory.
    pub data_dir: PathBuf,
    /// Commit interval.
    pub commit_interval: Duration,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Raw-sighting retention.
    pub raw_retention: Duration,
    /// Aggregate retention, counted from the cloud's ack (records become prunable once acked).
    pub aggregate_retention: Duration,
    /// Most database bytes (`max_bytes`).
    pub max_bytes: u64,
    /// Prune interval.
    pub prune_interval: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// Store identifier.
    pub store_id: String,
    /// Gateway identifier.
    pub gateway_id: String,
    /// Store time zone.
    pub timezone: Tz,
    /// Secrets file, resolved.
    pub secrets_file: Option<PathBuf>,
    /// Device-key rotation horizon.
    pub device_key_rotation: Duration,
    /// Region of phone numbers written without a country code.
    pub default_region: edge_core::phone::Region,
    /// Staff phone list, resolved.
    pub staff_phones_file: Option<PathBuf>,
    /// Portal sources, validated.
    pub portal: Vec<crate::sources::portal::config::PortalSource>,
    /// POS sources, validated.
    pub pos: Vec<crate::sources::pos::config::PosSource>,
    /// Door counter sources, validated.
    pub counter: Vec<crate::sources::counter::config::CounterSource>,
    /// Grace around a visit within which a member's receipt belongs to it, ms.
    pub attribution_grace_ms: i64,
    /// Storage settings.
    pub storage: Storage,
    /// Metric thresholds.
    pub metrics: MetricParams,
    /// `metrics.fixed_devices` as 48-bit MACs (in memory only; never stored or logged).
    pub fixed_devices: std::sync::Arc<std::collections::HashSet<u64>>,
    /// Wi-Fi sources, validated.
    pub wifi: Vec<WifiSource>,
    /// The pull API.
    pub sync: crate::sync::config::SyncConfig,
    /// Management over MQTT, when configured.
    pub mqtt: Option<crate::mgmt::config::MqttConfig>,
}

impl Config {
    /// Zone names in source order, deduplicated (several sniffers may share a zone).
    pub fn zones(&self) -> Vec<String> {
        let mut zones: Vec<String> = Vec::new();
        for w in &self.wifi {
            if !zones.contains(&w.zone) {
                zones.push(w.zone.clone());
            }
        }
        zones
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let errs = Errs {
        file: path,
        reads: FileReads::Disk,
    };
    let text = read_regular_text(path)
        .map_err(|e| errs.at("", format!("cannot read config file: {e}")))?;
    parse(&text, path)
}

/// Parses and validates config text; `path` names the file in errors and anchors relative
/// paths. The files the config names are read from disk.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(text, path, FileReads::Disk)
}

/// [`parse`], reading the files the config names as `reads` says. With
/// [`FileReads::Given`] nothing touches the file system: the same checks run on the given
/// bytes, and a file that is not UTF-8 where text is expected is an error naming its key.
pub fn parse_with(text: &str, path: &Path, reads: FileReads<'_>) -> Result<Config, ConfigError> {
    let errs = Errs { file: path, reads };
    let de = toml::Deserializer::new(text);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        // toml's message carries line and column; keep it, minus its trailing newline.
        errs.at(key, e.inner().to_string().trim_end().replace('\n', " "))
    })?;
    validate(raw, path, reads)
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Turns the raw file into a validated [`Config`], reading the files it names as `reads`
/// says.
pub fn validate(raw: RawConfig, path: &Path, reads: FileReads<'_>) -> Result<Config, ConfigError> {
    let errs = Errs { file: path, reads };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    if !valid_id(&raw.store.store_id) {
        return Err(errs.at(
            "store.store_id",
            "must be 1–64 characters of letters, digits, '-' or '_'",
        ));
    }
    if !valid_id(&raw.store.gateway_id) {
        return Err(errs.at(
            "store.gateway_id",
            "must be 1–64 characters of letters, digits, '-' or '_'",
        ));
    }
    let timezone: Tz = raw.store.timezone.parse().map_err(|_| {
        errs.at(
            "store.timezone",
            format!("unknown IANA time zone {:?}", raw.store.timezone),
        )
    })?;
    if raw.privacy.device_key_rotation < Duration::from_secs(86_400) {
        return Err(errs.at("privacy.device_key_rotation", "must be at least 1 day"));
    }
    let m = &raw.metrics;
    let metrics = MetricParams {
        visit_timeout_ms: dur_ms(m.visit_timeout),
        ignore_below_dbm: m.ignore_below_dbm,
        inside_dbm: m.inside_dbm,
        min_visit_dwell_ms: dur_ms(m.min_visit_dwell),
        staff_min_hours: m.staff_min_hours,
        staff_min_days: m.staff_min_days,
        staff_window_days: m.staff_window_days,
        zone_smoothing: m.zone_smoothing,
        zone_hysteresis_db: m.zone_hysteresis_db,
        zone_stale_ms: dur_ms(m.zone_stale),
        min_zone_dwell_ms: dur_ms(m.min_zone_dwell),
    };
    metrics
        .validate()
        .map_err(|e| errs.at(format!("metrics.{}", e.field), e.reason))?;
    if m.attribution_grace > Duration::from_secs(2 * 3600) {
        return Err(errs.at("metrics.attribution_grace", "must be at most 2h"));
    }
    let mut fixed_devices = std::collections::HashSet::new();
    for (i, text) in m.fixed_devices.iter().enumerate() {
        // The value is a MAC: the error names the entry, never its text.
        let mac: edge_wire::MacAddr = text.parse().map_err(|_| {
            errs.at(
                format!("metrics.fixed_devices[{i}]"),
                "not a MAC address (aa:bb:cc:dd:ee:ff)",
            )
        })?;
        fixed_devices.insert(mac.to_u64());
    }
    let s = &raw.storage;
    if s.commit_interval < Duration::from_millis(50) || s.commit_interval > Duration::from_secs(60)
    {
        return Err(errs.at("storage.commit_interval", "must be between 50ms and 60s"));
    }
    if s.checkpoint_interval < s.commit_interval
        || s.checkpoint_interval > Duration::from_secs(3600)
    {
        return Err(errs.at(
            "storage.checkpoint_interval",
            "must be between commit_interval and 1h",
        ));
    }
    let max_bytes = parse_size(&s.max_bytes)
        .filter(|b| *b >= 10_000_000)
        .ok_or_else(|| {
            errs.at(
                "storage.max_bytes",
                format!(
                    "{:?} is not a size of at least 10MB (e.g. \"2GB\", \"500MB\")",
                    s.max_bytes
                ),
            )
        })?;
    if s.prune_interval < Duration::from_secs(1) {
        return Err(errs.at("storage.prune_interval", "must be at least 1s"));
    }
    let data_dir = resolve(&base, &s.data_dir);
    let secrets_file = raw.privacy.secrets_file.as_ref().map(|p| resolve(&base, p));
    if let Some(sf) = &secrets_file {
        if sf.starts_with(&data_dir) {
            return Err(errs.at(
                "privacy.secrets_file",
                "must not be inside storage.data_dir (secrets and data are kept apart)",
            ));
        }
    }
    let mut wifi = Vec::new();
    for (i, w) in raw.sources.wifi.iter().enumerate() {
        wifi.push(w.validate(&errs, &format!("sources.wifi[{i}]"), &base)?);
    }
    let mut portal = Vec::new();
    for (i, p) in raw.sources.portal.iter().enumerate() {
        portal.push(p.validate(&errs, &format!("sources.portal[{i}]"), &base)?);
    }
    let mut pos = Vec::new();
    for (i, p) in raw.sources.pos.iter().enumerate() {
        pos.push(p.validate(&errs, &format!("sources.pos[{i}]"), &base)?);
    }
    let mut counter = Vec::new();
    for (i, c) in raw.sources.counter.iter().enumerate() {
        let mut src = c.validate(&errs, &format!("sources.counter[{i}]"), &base)?;
        src.gateway_id = raw.store.gateway_id.clone();
        // Sources sharing a listener are told apart by path.
        if let crate::sources::counter::config::CounterInput::Push { listen, path } = &src.input {
            let clash = counter.iter().any(|o: &crate::sources::counter::config::CounterSource| {
                matches!(&o.input, crate::sources::counter::config::CounterInput::Push { listen: l, path: p } if l == listen && p == path)
            });
            if clash {
                return Err(errs.at(
                    format!("sources.counter[{i}].path"),
                    format!("another counter already receives {path} on {listen}: give each source its own `path`"),
                ));
            }
        }
        counter.push(src);
    }
    let mut names: Vec<&str> = Vec::new();
    let all = wifi
        .iter()
        .enumerate()
        .map(|(i, w)| (format!("sources.wifi[{i}].name"), w.name.as_str()))
        .chain(
            portal
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("sources.portal[{i}].name"), p.name.as_str())),
        )
        .chain(
            pos.iter()
                .enumerate()
                .map(|(i, p)| (format!("sources.pos[{i}].name"), p.name.as_str())),
        )
        .chain(
            counter
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("sources.counter[{i}].name"), c.name.as_str())),
        );
    for (key, name) in all {
        if names.contains(&name) {
            return Err(errs.at(key, format!("duplicate source name {name:?}")));
        }
        names.push(name);
    }
    let default_region = edge_core::phone::Region::by_code(&raw.privacy.default_region)
        .ok_or_else(|| {
            errs.at(
                "privacy.default_region",
                format!(
                    "unknown region {:?} (known: {})",
                    raw.privacy.default_region,
                    edge_core::phone::Region::all()
                        .iter()
                        .map(|r| r.code)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    let staff_phones_file = raw
        .privacy
        .staff_phones_file
        .as_ref()
        .map(|p| resolve(&base, p));
    if let Some(f) = &staff_phones_file {
        if f.starts_with(&data_dir) {
            return Err(errs.at(
                "privacy.staff_phones_file",
                "must not be inside storage.data_dir (phone numbers never go there)",
            ));
        }
    }
    let zones = wifi.iter().fold(Vec::<&str>::new(), |mut z, w| {
        if !z.contains(&w.zone.as_str()) {
            z.push(&w.zone);
        }
        z
    });
    if zones.len() > edge_core::MAX_ZONES {
        return Err(errs.at(
            "sources.wifi",
            format!("at most {} zones are supported", edge_core::MAX_ZONES),
        ));
    }
    let sync = raw.sync.validate(&errs, &base)?;
    check_relays(&errs, &portal, &pos, &counter, &sync)?;
    let mqtt = match &raw.mqtt {
        Some(m) => Some(m.validate(&errs, &base, &raw.store.gateway_id)?),
        None => None,
    };
    Ok(Config {
        file: path.to_path_buf(),
        store_id: raw.store.store_id,
        gateway_id: raw.store.gateway_id,
        timezone,
        secrets_file,
        device_key_rotation: raw.privacy.device_key_rotation,
        default_region,
        staff_phones_file,
        portal,
        pos,
        counter,
        attribution_grace_ms: dur_ms(m.attribution_grace),
        storage: Storage {
            data_dir,
            commit_interval: s.commit_interval,
            checkpoint_interval: s.checkpoint_interval,
            raw_retention: s.raw_retention,
            aggregate_retention: s.aggregate_retention,
            max_bytes,
            prune_interval: s.prune_interval,
        },
        metrics,
        fixed_devices: std::sync::Arc::new(fixed_devices),
        wifi,
        sync,
        mqtt,
    })
}

/// A POS passthrough forwards raw bytes without credentials, so its `forward` must not be one
/// of the agent's own listeners (the pull API, a webhook, the counter listener, another
/// passthrough): that would be a relay around their tokens. A `forward` on one of those ports
/// is refused unless its host is an IP address that is not the gateway's own.
fn check_relays(
    errs: &Errs<'_>,
    portal: &[crate::sources::portal::config::PortalSource],
    pos: &[crate::sources::pos::config::PosSource],
    counter: &[crate::sources::counter::config::CounterSource],
    sync: &crate::sync::config::SyncConfig,
) -> Result<(), ConfigError> {
    use crate::sources::counter::config::CounterInput;
    use crate::sources::portal::config::PortalInput;
    use crate::sources::pos::config::PosInput;
    let mut own: Vec<SocketAddr> = Vec::new();
    if sync.enabled {
        own.push(sync.listen);
    }
    own.extend(portal.iter().filter_map(|p| match p.input {
        PortalInput::Listen(a) => Some(a),
        PortalInput::File(_) => None,
    }));
    own.extend(counter.iter().filter_map(|c| match c.input {
        CounterInput::Push { listen, .. } => Some(listen),
        _ => None,
    }));
    own.extend(pos.iter().filter_map(|p| match p.input {
        PosInput::Passthrough { listen, .. } => Some(listen),
        _ => None,
    }));
    for (i, p) in pos.iter().enumerate() {
        let PosInput::Passthrough { forward, .. } = &p.input else {
            continue;
        };
        // Validated as host:port by the POS table.
        let Some((host, port)) = forward.rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !own.iter().any(|a| a.port() == port) {
            continue;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let foreign = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| !is_own_address(ip, &own));
        if !foreign {
            return Err(errs.at(
                format!("sources.pos[{i}].forward"),
                format!("port {port} is one of this agent's own listeners: a passthrough must forward to the printer, never to the agent"),
            ));
        }
    }
    Ok(())
}

/// Whether `ip` reaches this gateway: loopback, unspecified, one of the listeners' addresses,
/// or an address of one of its interfaces (one a socket can be bound to).
fn is_own_address(ip: std::net::IpAddr, own: &[SocketAddr]) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || own.iter().any(|a| a.ip() == ip)
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::wifi::config::WifiInput;

    #[test]
    fn sizes_table() {
        let table = [
            ("2GB", Some(2_000_000_000)),
            ("500 MB", Some(500_000_000)),
            ("64MiB", Some(64 << 20)),
            ("1048576", Some(1_048_576)),
            ("1gib", Some(1 << 30)),
            ("2TB", None),
            ("GB", None),
            ("-1GB", None),
            ("99999999999999999999GB", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), want, "{text}");
        }
    }

    const MINIMAL: &str = r#"
[store]
store_id = "s-1"
gateway_id = "gw-1"

[[sources.wifi]]
zone = "entrance"
pcap = "a.pcap"
"#;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/etc/store-edge/config.toml"))
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cross/config.example.toml");
        let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.zones(),
            vec!["entrance".to_string(), "apparel".to_string()]
        );
        assert_eq!(c.storage.data_dir, PathBuf::from("/var/lib/store-edge"));
        let hop = c.wifi[0].hop.as_ref().unwrap();
        assert!(hop.channels.len() > 2);
        assert_eq!(c.wifi[1].channel, Some(6));
        assert_eq!(c.wifi[1].input, WifiInput::Interface("mon1".into()));
        assert_eq!(c.counter.len(), 2);
        assert!(c.counter.iter().all(|s| s.is_live()));
        let till = &c.pos[0];
        assert_eq!(till.name, "till-1");
        assert_eq!(till.serial.baud, 38400);
        assert!(matches!(
            &till.input,
            crate::sources::pos::config::PosInput::Serial(p) if p.starts_with("/dev/serial/by-path")
        ));
    }

    #[test]
    fn counter_tables_are_validated_with_their_keys() {
        use crate::sources::counter::config::CounterInput;
        let ok = format!(
            "{MINIMAL}\n[[sources.counter]]\nprofile = \"counter/irisys-vector-4d\"\ndoor = \"side\"\nlisten = \"127.0.0.1:8081\"\n\
             [[sources.counter]]\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"main\"\nlisten = \"127.0.0.1:8081\"\nlines = [\"Entrance\"]\n\
             [[sources.counter]]\nname = \"rec\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"main\"\nfile = \"main.jsonl\"\n\
             [[sources.counter]]\nprofile = \"counter/generic-ir-beam-modbus\"\ndoor = \"back\"\nport = \"/dev/ttyUSB1\"\nslave = 7\n\
             [[sources.counter]]\nprofile = \"counter/axis-people-counter\"\ndoor = \"mall\"\nurl = \"http://192.0.2.9\"\ninterval = \"30s\"\n\
             [[sources.counter]]\nprofile = \"counter/milesight-vs133\"\ndoor = \"lift\"\nbroker = \"127.0.0.1:1883\"\n"
        );
        let c = p(&ok).unwrap();
        let names: Vec<&str> = c.counter.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "counter-side",
                "counter-main",
                "rec",
                "counter-back",
                "counter-mall",
                "counter-lift"
            ]
        );
        assert_eq!(
            c.counter[0].input,
            CounterInput::Push {
                listen: "127.0.0.1:8081".parse().unwrap(),
                path: "/counter/irisys".into()
            }
        );
        assert!(c.counter[1].counts_line("Entrance") && !c.counter[1].counts_line("Side door"));
        assert_eq!(
            c.counter[2].input,
            CounterInput::File("/etc/store-edge/main.jsonl".into())
        );
        assert_eq!(
            c.counter[3].input,
            CounterInput::Modbus {
                port: "/dev/ttyUSB1".into(),
                slave: 7,
                baud: 9600
            }
        );
        assert_eq!(
            c.counter[4].input,
            CounterInput::Poll {
                url: "http://192.0.2.9/local/tvpc/.api?live-sum.json".into(),
                interval: std::time::Duration::from_secs(30)
            }
        );
        assert_eq!(
            c.counter[5].input,
            CounterInput::Mqtt {
                broker: "127.0.0.1:1883".into(),
                topic: "milesight/uplink/+".into()
            }
        );
        let xovis = "[[sources.counter]]\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"main\"\n";
        let axis =
            "[[sources.counter]]\nprofile = \"counter/axis-people-counter\"\ndoor = \"main\"\n";
        let beam =
            "[[sources.counter]]\nprofile = \"counter/generic-ir-beam-modbus\"\ndoor = \"main\"\n";
        let table = [
            (xovis.to_string(), "sources.counter[0].listen"),
            (format!("{xovis}listen = \"0.0.0.0:8081\"\n"), "sources.counter[0].tokens"),
            (format!("{xovis}listen = \"localhost\"\n"), "sources.counter[0].listen"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\npath = \"counter\"\n"), "sources.counter[0].path"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\nurl = \"http://x\"\n"), "sources.counter[0].url"),
            (format!("{xovis}file = \"a\"\nlisten = \"127.0.0.1:1\"\n"), "sources.counter[0].listen"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\nmax_body = 10\n"), "sources.counter[0].max_body"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\nlines = []\n"), "sources.counter[0].lines"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\n{xovis}listen = \"127.0.0.1:1\"\n"), "sources.counter[1].path"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\n{xovis}listen = \"127.0.0.1:2\"\n"), "sources.counter[1].name"),
            (format!("{xovis}listen = \"127.0.0.1:1\"\n[[sources.counter.tokens]]\nname = \"a\"\ntoken = \"short\"\n"), "sources.counter[0].tokens[0].token"),
            (format!("{axis}url = \"https://192.0.2.9\"\n"), "sources.counter[0].url"),
            (format!("{axis}url = \"http://192.0.2.9/x\"\n"), "sources.counter[0].url"),
            (format!("{axis}url = \"http://u:p@192.0.2.9\"\n"), "sources.counter[0].url"),
            (format!("{axis}url = \"http://192.0.2.9\"\nusername = \"u\"\n"), "sources.counter[0].password"),
            (format!("{axis}url = \"http://192.0.2.9\"\ninterval = \"1ms\"\n"), "sources.counter[0].interval"),
            (format!("{beam}port = \"/dev/ttyUSB0\"\nslave = 0\n"), "sources.counter[0].slave"),
            (format!("{beam}port = \"/dev/ttyUSB0\"\nbaud = 1234\n"), "sources.counter[0].baud"),
            (format!("{beam}port = \"/dev/ttyUSB0\"\nbroker = \"h:1\"\n"), "sources.counter[0].broker"),
            ("[[sources.counter]]\nprofile = \"counter/no-such\"\ndoor = \"m\"\nfile = \"a\"\n".to_string(), "sources.counter[0].profile"),
            ("[[sources.counter]]\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"a:b\"\nfile = \"a\"\n".to_string(), "sources.counter[0].door"),
            (format!("{xovis}file = \"a\"\ncolour = 1\n"), "sources.counter[0].colour"),
        ];
        for (extra, key) in table {
            let e = p(&format!("{MINIMAL}\n{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
        }
    }

    #[test]
    fn mqtt_tables_are_validated_with_their_keys() {
        assert!(p(MINIMAL).unwrap().mqtt.is_none());
        let c = p(&format!(
            "{MINIMAL}\n[mqtt]\nbroker = \"127.0.0.1:1883\"\nkeep_alive = \"5s\"\ntelemetry_interval = \"5s\"\nlow_disk_bytes = 1000\n"
        ))
        .unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 1883));
        assert_eq!(m.client_id, "store-edge-gw-1");
        assert_eq!(m.keep_alive, Duration::from_secs(5));
        assert_eq!(m.telemetry_interval, Duration::from_secs(5));
        assert_eq!(m.low_disk_bytes, 1000);
        let table = [
            // serde names the table, and the message the field.
            ("[mqtt]\n", "mqtt"),
            ("[mqtt]\nbroker = \"broker.example.net:1883\"\n", "mqtt.broker"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\nkeepalive = \"2s\"\n", "mqtt.keepalive"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\nkeep_alive = \"0s\"\n", "mqtt.keep_alive"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\nlow_disk_bytes = \"1GB\"\n", "mqtt.low_disk_bytes"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\nusername = \"u\"\n", "mqtt.password"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\npassword_file = \"pw\"\nusername = \"u\"\n", "mqtt.password_file"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\n[mqtt.tls]\nca_file = \"ca.pem\"\n", "mqtt.tls.ca_file"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\n[mqtt.tls]\nca_file = \"ca.pem\"\nkey = \"k\"\n", "mqtt.tls.key"),
            ("[mqtt]\nbroker = \"127.0.0.1:1883\"\nopening_hours = \"9 to 5\"\n", "mqtt.opening_hours"),
        ];
        for (extra, key) in table {
            let e = p(&format!("{MINIMAL}\n{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
            assert!(e.to_string().contains("/etc/store-edge/config.toml"), "{e}");
        }
    }

    #[test]
    fn pos_tables_are_validated_with_their_keys() {
        let ok = format!(
            "{MINIMAL}\n[privacy]\n[[sources.pos]]\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nfile = \"till.bin\"\n"
        );
        let c = p(&ok).unwrap();
        assert_eq!(c.pos[0].name, "pos");
        assert_eq!(c.pos[0].serial.baud, 9600);
        assert_eq!(c.attribution_grace_ms, 600_000);
        assert_eq!(
            c.pos[0].input,
            crate::sources::pos::config::PosInput::File("/etc/store-edge/till.bin".into())
        );
        let base = "[[sources.pos]]\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\n";
        // A printer elsewhere on the LAN, even on a port the agent also listens on.
        let c = p(&format!(
            "{MINIMAL}\n{base}listen = \"127.0.0.1:9100\"\nforward = \"192.0.2.10:9100\"\n"
        ))
        .unwrap();
        assert_eq!(c.pos[0].idle_timeout, Duration::from_secs(300));
        let table = [
            (base.to_string(), "sources.pos[0]"),
            (format!("{base}file = \"a\"\nport = \"/dev/ttyUSB0\"\n"), "sources.pos[0]"),
            (format!("{base}listen = \"127.0.0.1:9100\"\n"), "sources.pos[0].forward"),
            (
                format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"printer\"\n"),
                "sources.pos[0].forward",
            ),
            // No credentials to check: never on every interface.
            (format!("{base}listen = \"0.0.0.0:9100\"\nforward = \"192.0.2.10:9100\"\n"), "sources.pos[0].listen"),
            (format!("{base}listen = \"[::]:9100\"\nforward = \"192.0.2.10:9100\"\n"), "sources.pos[0].listen"),
            // Never a relay to the agent's own listeners: the pull API, itself, a webhook.
            (format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"127.0.0.1:50051\"\n"), "sources.pos[0].forward"),
            (format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"localhost:50051\"\n"), "sources.pos[0].forward"),
            (format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"localhost:9100\"\n"), "sources.pos[0].forward"),
            (format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"[::1]:9100\"\n"), "sources.pos[0].forward"),
            (
                format!("[[sources.portal]]\nformat = \"webhook\"\nlisten = \"127.0.0.1:8088\"\n{base}listen = \"127.0.0.1:9100\"\nforward = \"127.0.0.1:8088\"\n"),
                "sources.pos[0].forward",
            ),
            (format!("{base}listen = \"127.0.0.1:9100\"\nforward = \"192.0.2.10:9100\"\nidle_timeout = \"1s\"\n"), "sources.pos[0].idle_timeout"),
            (format!("{base}port = \"/dev/ttyUSB0\"\nforward = \"p:9100\"\n"), "sources.pos[0].forward"),
            (format!("{base}port = \"/dev/ttyUSB0\"\nbaud = 12345\n"), "sources.pos[0].baud"),
            (format!("{base}port = \"/dev/ttyUSB0\"\nidle_gap = \"1ms\"\n"), "sources.pos[0].idle_gap"),
            (format!("{base}port = \"/dev/ttyUSB0\"\nspeed = 1\n"), "sources.pos[0].speed"),
            (
                "[[sources.pos]]\nprofile = \"pos/no-such-printer\"\nfile = \"a\"\n".to_string(),
                "sources.pos[0].profile",
            ),
            (
                "[[sources.pos]]\nname = \"entrance\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nfile = \"a\"\n".to_string(),
                "sources.pos[0].name",
            ),
            (format!("[metrics]\nattribution_grace = \"3h\"\n{base}file = \"a\"\n"), "metrics.attribution_grace"),
        ];
        for (extra, key) in table {
            let e = p(&format!("{MINIMAL}\n{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
        }
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = p(MINIMAL).unwrap();
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.storage.data_dir, PathBuf::from("/etc/store-edge/data"));
        assert_eq!(c.metrics, MetricParams::default());
        assert_eq!(c.wifi[0].name, "entrance");
        assert_eq!(
            c.wifi[0].input,
            WifiInput::File(PathBuf::from("/etc/store-edge/a.pcap"))
        );
        assert_eq!(c.zones(), vec!["entrance".to_string()]);
    }

    #[test]
    fn bad_configs_name_key_and_reason() {
        let table: Vec<(String, &str, &str)> = vec![
            (
                format!("{MINIMAL}\n[metrics]\nvisit_timeot = \"10m\"\n"),
                "metrics.visit_timeot",
                "unknown field",
            ),
            (
                format!("{MINIMAL}\n[metrics]\nvisit_timeout = \"soon\"\n"),
                "metrics.visit_timeout",
                "soon",
            ),
            (
                format!("{MINIMAL}\n[metrics]\ninside_dbm = -95\n"),
                "metrics.inside_dbm",
                "stronger",
            ),
            (
                MINIMAL.replace("s-1", "bad id!"),
                "store.store_id",
                "letters",
            ),
            (
                MINIMAL.replace(
                    "gateway_id = \"gw-1\"",
                    "gateway_id = \"gw-1\"\ntimezone = \"Mars/Base\"",
                ),
                "store.timezone",
                "Mars/Base",
            ),
            (
                MINIMAL.replace("pcap = \"a.pcap\"", ""),
                "sources.wifi[0]",
                "exactly one of",
            ),
            (
                MINIMAL.replace(
                    "pcap = \"a.pcap\"",
                    "pcap = \"a.pcap\"\ninterface = \"mon0\"",
                ),
                "sources.wifi[0]",
                "exactly one of",
            ),
            (
                MINIMAL.replace(
                    "pcap = \"a.pcap\"",
                    "pcap = \"a.pcap\"\nprofile = \"wifi/nope\"",
                ),
                "sources.wifi[0].profile",
                "unknown",
            ),
            (
                format!("{MINIMAL}\n[privacy]\nsecrets_file = \"data/s.toml\"\n"),
                "privacy.secrets_file",
                "data_dir",
            ),
            (
                format!("{MINIMAL}\n[[sources.wifi]]\nzone = \"entrance\"\npcap = \"b.pcap\"\n"),
                "sources.wifi[1].name",
                "duplicate",
            ),
            (
                "[store]\nstore_id = 1\n".to_string(),
                "store.store_id",
                "invalid type",
            ),
            ("[store\n".to_string(), "", "TOML parse error"),
        ];
        for (text, key, reason) in table {
            let e = p(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains(reason), "{key}: {e}");
            assert!(e.to_string().contains("/etc/store-edge/config.toml"), "{e}");
        }
    }

    /// With `FileReads::Given` every file the config names reads as the given bytes and the
    /// disk is never touched: the same checks run on them.
    #[test]
    fn given_files_stand_in_for_the_disk() {
        let path = Path::new("/nonexistent/etc/config.toml");
        let counter = "[[sources.counter]]\nprofile = \"beam.toml\"\ndoor = \"back\"\n\
                       port = \"/dev/ttyUSB1\"\n";
        let beam =
            include_str!("../../../../hardware-profiles/counter/generic-ir-beam-modbus.toml");
        let text = format!("{MINIMAL}\n{counter}");
        let c = parse_with(&text, path, FileReads::Given(beam.as_bytes())).unwrap();
        assert_eq!(c.counter[0].profile.id, "/nonexistent/etc/beam.toml");
        let e = parse(&text, path).unwrap_err();
        assert!(e.reason.contains("cannot read"), "{e}");
        let e = parse_with(&text, path, FileReads::Given(b"kind = 1")).unwrap_err();
        assert_eq!(e.key, "sources.counter[0].profile", "{e}");
        let e = parse_with(&text, path, FileReads::Given(b"\xff")).unwrap_err();
        assert!(e.reason.contains("cannot read"), "{e}");

        let mqtt = "[mqtt]\nbroker = \"127.0.0.1:1883\"\nusername = \"gw\"\n\
                    password_file = \"/dev/zero\"\n";
        let text = format!("{MINIMAL}\n{mqtt}");
        let c = parse_with(&text, path, FileReads::Given(b"pw\nignored")).unwrap();
        let creds = c.mqtt.and_then(|m| m.credentials).unwrap();
        assert_eq!(creds.password, "pw");
        let e = parse_with(&text, path, FileReads::Given(b"")).unwrap_err();
        assert_eq!(e.key, "mqtt.password_file", "{e}");
    }

    /// A pushed config is remote input: a named file that is a device, a FIFO, a directory
    /// or larger than [`MAX_NAMED_FILE`] gives an error naming the key at once (before, a
    /// `password_file` of `/dev/zero` was read until memory ran out, and a FIFO blocked).
    #[test]
    fn named_files_must_be_regular_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let fifo = dir.path().join("pw.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_NAMED_FILE as usize + 1]).unwrap();
        let ok = dir.path().join("pw");
        std::fs::write(&ok, "secret\n").unwrap();
        let table = [
            ("/dev/zero", "not a regular file"),
            (fifo.to_str().unwrap(), "not a regular file"),
            (dir.path().to_str().unwrap(), "not a regular file"),
            (big.to_str().unwrap(), "larger than 1048576 bytes"),
            ("missing", "No such file"),
        ];
        for (file, reason) in table {
            let text = format!(
                "{MINIMAL}\n[mqtt]\nbroker = \"127.0.0.1:1883\"\nusername = \"gw\"\n\
                 password_file = \"{file}\"\n"
            );
            let e = parse(&text, &path).unwrap_err();
            assert_eq!(e.key, "mqtt.password_file", "{file}: {e}");
            assert!(e.reason.contains(reason), "{file}: {e}");
        }
        let text = format!(
            "{MINIMAL}\n[mqtt]\nbroker = \"127.0.0.1:1883\"\nusername = \"gw\"\n\
             password_file = \"pw\"\n"
        );
        let c = parse(&text, &path).unwrap();
        assert_eq!(
            c.mqtt.and_then(|m| m.credentials).unwrap().password,
            "secret"
        );
        // The config file itself is bounded the same way.
        let e = load(&fifo).unwrap_err();
        assert!(e.reason.contains("not a regular file"), "{e}");
        let e = load(&big).unwrap_err();
        assert!(e.reason.contains("larger than"), "{e}");
    }

    /// The `config` fuzz target's seeds (and crash inputs kept there) go through the same
    /// parse without a panic on the stable toolchain too: text, then after a NUL the bytes the
    /// files it names read as.
    #[test]
    fn fuzz_seeds_parse_or_fail_with_a_reason() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let (text, files) = match data.iter().position(|&b| b == 0) {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (&data[..], &[][..]),
            };
            let Ok(text) = std::str::from_utf8(text) else {
                continue;
            };
            if let Err(e) = parse_with(
                text,
                Path::new("/fuzz/etc/config.toml"),
                FileReads::Given(files),
            ) {
                assert!(!e.reason.is_empty(), "{e:?}");
            }
            n += 1;
        }
        assert!(n > 50, "{n} seeds in {}", dir.display());
    }
}
