//! `store-edge run`: wires a validated config into running sources, the pipeline and the store,
//! restores state from the last checkpoint, and shuts everything down within a deadline.
//!
//! Start-up order matters for "nothing lost, nothing doubled": the store is opened (and
//! migrated) first, the core snapshot and the cursors committed with it are read back, and only
//! then do sources start, each from its own committed cursor.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use edge_core::person::{PersonKey, PersonKeyer};
use edge_core::report::ConfiguredSources;
use edge_core::{snapshot, DeviceKey, DeviceKeyer, LocalClock, Sessionizer, DEFINITIONS_VERSION};
use edge_proto::v1 as pb;
use edge_wire::counter::Dialect;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::pipeline::{self, LiveOut, PipelineSettings, SourceInput, Summary};
use crate::secrets::Secrets;
use crate::sources::counter::config::CounterInput;
use crate::sources::counter::ingest::CounterContext;
use crate::sources::counter::{
    file as counter_file, http as counter_http, modbus as counter_modbus, mqtt as counter_mqtt,
    poll as counter_poll,
};
use crate::sources::portal::config::PortalInput;
use crate::sources::portal::{source as portal_source, webhook};
use crate::sources::pos::config::PosInput;
use crate::sources::pos::passthrough;
use crate::sources::pos::source::{self as pos_source, PosContext};
use crate::sources::wifi::config::WifiInput;
use crate::sources::wifi::{hop, source};
use crate::sources::CHANNEL_BATCHES;
use crate::stats::SourceStats;
use crate::store::{self, Reader};
use crate::sync::live::{LiveHub, LIVE_QUEUE};

/// Device keys cached (24 bytes each): 7/8 of 2^17, the most a table of 2^17 slots holds
/// (3.3 MB). When full it is cleared, and the devices still heard cost one HMAC each again.
const KEY_CACHE: usize = 114_688;

/// How `run` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Replay the files and exit (live sources are refused).
    pub once: bool,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// What a run did, per source too.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The pipeline's summary.
    pub summary: Summary,
    /// Per source: (name, counters).
    pub sources: Vec<(String, Vec<(String, u64)>)>,
    /// Visits in the store after the run (all runs together).
    pub stored_visits: u64,
}

impl RunReport {
    /// A short human summary (stderr).
    pub fn render(&self) -> String {
        let s = &self.summary;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "{} frames in {:.2} s ({:.0} frames/s); {} visits stored ({} already present), {} hourly records; peak {} devices tracked\n",
            s.frames,
            secs,
            s.frames as f64 / secs,
            s.visits_new,
            s.visits_duplicate,
            s.hours_new,
            s.peak_open
        );
        out.push_str(&format!(
            "  randomized MACs that only probed: {} rotated MACs linked, {} one-scan MACs counted as presence only\n  store now holds {} visits\n",
            s.linked_fragments, s.untracked_fragments, self.stored_visits
        ));
        for (name, counters) in &self.sources {
            let nonzero: Vec<String> = counters
                .iter()
                .filter(|(k, v)| *v > 0 && k.starts_with("skipped_"))
                .map(|(k, v)| format!("{}={v}", k.trim_start_matches("skipped_")))
                .collect();
            let get = |key: &str| {
                counters
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(0, |(_, v)| *v)
            };
            // Counter sources: pushes (or polls, or lines) read and what they became.
            if counters.iter().any(|(k, _)| k == "payloads_read") {
                let rejected: Vec<String> = counters
                    .iter()
                    .filter(|(k, v)| {
                        *v > 0 && (k.starts_with("rejected_") || k.starts_with("refused_"))
                    })
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.push_str(&format!(
                    "  source {name}: {} payloads read, {} intervals stored, {} duplicates, {} register resets, rejected: {}\n",
                    get("payloads_read"),
                    get("intervals"),
                    get("duplicates"),
                    get("resets"),
                    if rejected.is_empty() {
                        "none".to_string()
                    } else {
                        rejected.join(", ")
                    }
                ));
                continue;
            }
            if counters.iter().any(|(k, _)| k == "bytes_read") {
                out.push_str(&format!(
                    "  source {name}: {} bytes read, {} receipts\n",
                    get("bytes_read"),
                    get("receipts"),
                ));
                continue;
            }
            let portal = counters.iter().any(|(k, _)| k == "records_read");
            if portal {
                let rejected: Vec<String> = counters
                    .iter()
                    .filter(|(k, v)| *v > 0 && k.starts_with("rejected_"))
                    .map(|(k, v)| format!("{}={v}", k.trim_start_matches("rejected_")))
                    .collect();
                out.push_str(&format!(
                    "  source {name}: {} records read, {} logins, rejected: {}\n",
                    get("records_read"),
                    get("logins"),
                    if rejected.is_empty() {
                        "none".to_string()
                    } else {
                        rejected.join(", ")
                    }
                ));
                continue;
            }
            out.push_str(&format!(
                "  source {name}: {} records read, {} sightings, skipped: {}",
                get("frames_read"),
                get("sightings"),
                if nonzero.is_empty() {
                    "none".to_string()
                } else {
                    nonzero.join(", ")
                }
            ));
            for key in [
                "read_errors",
                "backpressure_dropped",
                "pcap_dropped",
                "pcap_if_dropped",
                "hop_errors",
                "too_late",
                "clock_unset_frames",
                "clock_restamped_frames",
                "clock_unset_dropped",
                "clock_steps",
            ] {
                let v = get(key);
                if v > 0 {
                    out.push_str(&format!("; {}: {v}", key.replace('_', " ")));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Zones of the stored snapshot must be a prefix of the configured zones for its zone ids to
/// stay meaningful.
fn zones_compatible(stored: &[String], now: &[String]) -> bool {
    stored.len() <= now.len() && stored.iter().zip(now).all(|(a, b)| a == b)
}

/// Restores the core from the last checkpoint, or starts fresh.
fn restore_core(
    cfg: &Config,
    reader: Option<&Reader>,
    clock: LocalClock,
) -> anyhow::Result<Sessionizer> {
    let fresh = || Sessionizer::new(cfg.metrics.clone(), clock);
    let Some(reader) = reader else {
        return Ok(fresh());
    };
    let zones = cfg.zones();
    let stored_zones: Vec<String> = reader
        .meta("zones")?
        .and_then(|z| serde_json::from_str(&z).ok())
        .unwrap_or_default();
    let Some((_, bytes)) = reader.snapshot()? else {
        return Ok(fresh());
    };
    if !zones_compatible(&stored_zones, &zones) {
        tracing::warn!(
            stored = ?stored_zones,
            configured = ?zones,
            "zone list changed since the last checkpoint; visits open at that checkpoint are dropped"
        );
        return Ok(fresh());
    }
    match snapshot::decode(&bytes, cfg.metrics.clone(), clock) {
        Ok(core) => Ok(core),
        Err(e) => {
            tracing::warn!(error = %e, "core snapshot unreadable; starting with no open visits");
            Ok(fresh())
        }
    }
}

/// Runs the agent on `cfg` until its sources end (`--once`) or `cancel` fires. Tasks run on
/// `tracker`; the caller closes and waits for it with a deadline.
pub async fn run(
    cfg: &Config,
    opts: RunOptions,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<RunReport> {
    start(cfg, opts, cancel, tracker).await?.finish().await
}

/// The stats of every running source, shared by health snapshots and management; a source
/// restarted alone swaps its entry.
pub(crate) type SourceList = Arc<std::sync::Mutex<Vec<Arc<SourceStats>>>>;

/// What the POS and counter sources (which commit by themselves) need from their run; kept so
/// one of them can be restarted alone.
#[derive(Clone)]
struct SideEnv {
    store: Arc<store::Store>,
    clock: LocalClock,
    persons: Option<Arc<PersonKeyer>>,
    hub: Arc<LiveHub>,
    once: bool,
    /// The run's token; each group runs on a child of it.
    cancel: CancellationToken,
}

/// Sources started and stopped together: one POS or counter source, or the push counters
/// that share a listening address.
struct SideGroup {
    key: String,
    names: Vec<String>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Replays and serial readers: awaited at the end of a run.
    joins: Vec<tokio::task::JoinHandle<()>>,
    counters: Vec<Arc<CounterContext>>,
    stats: Vec<Arc<SourceStats>>,
    live: bool,
}

/// How long a restarted group gets to stop.
const GROUP_STOP_DEADLINE: Duration = Duration::from_secs(10);

impl SideGroup {
    /// Stops the group and waits for its tasks (with a deadline); live counters keep their
    /// counters.
    async fn stop(self) {
        self.cancel.cancel();
        for j in self.joins {
            if tokio::time::timeout(GROUP_STOP_DEADLINE, j).await.is_err() {
                tracing::warn!(group = %self.key, "a source task did not stop in time");
            }
        }
        drain(&self.tracker, GROUP_STOP_DEADLINE).await;
        let counters = self.counters;
        let _ = tokio::task::spawn_blocking(move || {
            for ctx in counters.iter().filter(|c| c.src.is_live()) {
                ctx.save_counters();
            }
        })
        .await;
    }
}

/// The group a side source belongs to.
fn pos_group(name: &str) -> String {
    format!("pos:{name}")
}

fn counter_group(c: &crate::sources::counter::config::CounterSource) -> String {
    match &c.input {
        CounterInput::Push { listen, .. } => format!("listen:{listen}"),
        _ => format!("counter:{}", c.name),
    }
}

/// The side-source groups of `cfg`: key → source names.
fn side_groups(cfg: &Config) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &cfg.pos {
        out.entry(pos_group(&p.name))
            .or_default()
            .push(p.name.clone());
    }
    for c in &cfg.counter {
        out.entry(counter_group(c))
            .or_default()
            .push(c.name.clone());
    }
    out
}

/// The committed source cursors and counters, which restarted sources resume from (read off
/// the runtime's threads).
async fn committed_positions(
    data_dir: &std::path::Path,
) -> anyhow::Result<(Vec<store::Cursor>, Vec<(String, String, u64)>)> {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let reader = Reader::open(&data_dir).context("reading the store's cursors")?;
        anyhow::Ok((reader.cursors()?, reader.counters()?))
    })
    .await
    .context("cursor thread panicked")?
}

/// Starts the side-source groups of `cfg` whose keys are in `keys`.
async fn spawn_side(
    cfg: &Config,
    keys: &BTreeSet<String>,
    env: &SideEnv,
) -> anyhow::Result<Vec<SideGroup>> {
    let (cursors, counters) = committed_positions(&cfg.storage.data_dir).await?;
    let mut groups: Vec<SideGroup> = Vec::new();
    let new_group = |key: String| SideGroup {
        key,
        names: Vec::new(),
        cancel: env.cancel.child_token(),
        tracker: TaskTracker::new(),
        joins: Vec::new(),
        counters: Vec::new(),
        stats: Vec::new(),
        live: false,
    };
    let result = spawn_side_into(cfg, keys, env, &cursors, &counters, &mut groups, new_group).await;
    if let Err(e) = result {
        // Nothing half-started stays behind: a rollback restarts the old sources.
        for g in groups {
            g.stop().await;
        }
        return Err(e);
    }
    Ok(groups)
}

async fn spawn_side_into(
    cfg: &Config,
    keys: &BTreeSet<String>,
    env: &SideEnv,
    cursors: &[store::Cursor],
    counters: &[(String, String, u64)],
    groups: &mut Vec<SideGroup>,
    new_group: impl Fn(String) -> SideGroup,
) -> anyhow::Result<()> {
    for p in &cfg.pos {
        let key = pos_group(&p.name);
        if !keys.contains(&key) {
            continue;
        }
        let mut g = new_group(key);
        g.names.push(p.name.clone());
        g.live = !matches!(p.input, PosInput::File(_));
        let stats = SourceStats::of_kind(&p.name, "pos");
        restore_counters(&stats, counters, &p.name);
        g.stats.push(stats.clone());
        let Some(person_keyer) = env.persons.clone() else {
            bail!("POS sources need a tenant secret"); // person_keyer() made sure of it
        };
        tracing::info!(
            source = %p.name,
            profile = %p.profile.id,
            printer = %format!("{} {}", p.profile.vendor, p.profile.model),
            "POS source"
        );
        let ctx = PosContext {
            src: p.clone(),
            persons: person_keyer,
            region: cfg.default_region,
            clock: env.clock,
            store: env.store.clone(),
            stats: stats.clone(),
            grace_ms: cfg.attribution_grace_ms,
            hub: (!env.once && cfg.sync.enabled).then(|| env.hub.clone()),
        };
        let cancel = g.cancel.clone();
        match &p.input {
            PosInput::File(path) => {
                let fp = pos_source::file_fingerprint(path)
                    .with_context(|| format!("source {}: reading {}", p.name, path.display()))?;
                let start = cursors
                    .iter()
                    .find(|c| c.source == p.name && c.fingerprint == fp)
                    .map_or(0, |c| c.position);
                let path = path.clone();
                let name = p.name.clone();
                g.joins.push(g.tracker.spawn_blocking(move || {
                    if let Err(e) = pos_source::replay_file(&ctx, &path, &fp, start, &cancel) {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "POS capture replay failed");
                    }
                }));
            }
            PosInput::Serial(port) => {
                let port = port.clone();
                g.joins.push(
                    g.tracker
                        .spawn_blocking(move || pos_source::read_serial(&ctx, &port, &cancel)),
                );
            }
            PosInput::Passthrough { listen, forward } => {
                let spawned = passthrough::spawn(
                    ctx,
                    *listen,
                    forward.clone(),
                    p.max_connections,
                    cancel,
                    &g.tracker,
                )
                .await;
                if let Err(e) = spawned {
                    groups.push(g);
                    return Err(e);
                }
            }
        }
        groups.push(g);
    }

    // Counter sources commit their intervals themselves, like POS sources: door counts have
    // no place in the time merge of radio frames.
    let mut listeners: BTreeMap<std::net::SocketAddr, Vec<(String, Dialect, Arc<CounterContext>)>> =
        BTreeMap::new();
    let mut listener_groups: BTreeMap<std::net::SocketAddr, SideGroup> = BTreeMap::new();
    for c in &cfg.counter {
        let key = counter_group(c);
        if !keys.contains(&key) {
            continue;
        }
        let stats = SourceStats::of_kind(&c.name, "counter");
        restore_counters(&stats, counters, &c.name);
        tracing::info!(
            source = %c.name,
            door = %c.door,
            profile = %c.profile.id,
            counter = %format!("{} {}", c.profile.vendor, c.profile.model),
            "counter source"
        );
        let ctx = CounterContext::new(c.clone(), env.clock, env.store.clone(), stats.clone());
        if let CounterInput::Push { listen, path } = &c.input {
            let g = listener_groups
                .entry(*listen)
                .or_insert_with(|| new_group(key.clone()));
            g.names.push(c.name.clone());
            g.live = true;
            g.stats.push(stats);
            g.counters.push(ctx.clone());
            let Some(dialect) = counter_file::dialect_of(&ctx) else {
                bail!("source {}: a push counter needs an HTTP dialect", c.name);
            };
            listeners
                .entry(*listen)
                .or_default()
                .push((path.clone(), dialect, ctx));
            continue;
        }
        let mut g = new_group(key);
        g.names.push(c.name.clone());
        g.live = c.is_live();
        g.stats.push(stats);
        g.counters.push(ctx.clone());
        let cancel = g.cancel.clone();
        match &c.input {
            CounterInput::File(path) => {
                let fp = pos_source::file_fingerprint(path)
                    .with_context(|| format!("source {}: reading {}", c.name, path.display()))?;
                let start = cursors
                    .iter()
                    .find(|k| k.source == c.name && k.fingerprint == fp)
                    .map_or(0, |k| k.position);
                let (path, name) = (path.clone(), c.name.clone());
                g.joins.push(g.tracker.spawn_blocking(move || {
                    if let Err(e) = counter_file::replay(&ctx, &path, &fp, start, &cancel) {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "counter recording replay failed");
                    }
                }));
            }
            CounterInput::Push { .. } => {}
            CounterInput::Poll { url, interval } => {
                g.tracker
                    .spawn(counter_poll::run(ctx, url.clone(), *interval, cancel));
            }
            CounterInput::Modbus { port, slave, baud } => {
                let (port, slave, baud) = (port.clone(), *slave, *baud);
                g.joins.push(
                    g.tracker.spawn_blocking(move || {
                        counter_modbus::run(ctx, port, slave, baud, cancel)
                    }),
                );
            }
            CounterInput::Mqtt { broker, topic } => {
                g.tracker.spawn(counter_mqtt::run(
                    ctx,
                    broker.clone(),
                    topic.clone(),
                    cancel,
                ));
            }
        }
        groups.push(g);
    }
    for (addr, routes) in listeners {
        let Some(mut g) = listener_groups.remove(&addr) else {
            continue;
        };
        match counter_http::spawn(addr, routes, g.cancel.clone(), &g.tracker).await {
            Ok((_, lstats)) => {
                g.stats.push(lstats);
                groups.push(g);
            }
            Err(e) => {
                let names = g.names.join(", ");
                groups.push(g);
                return Err(e.context(format!("push counter source(s) {names}")));
            }
        }
    }
    Ok(())
}

/// What the Wi-Fi and portal sources (the pipeline's inputs) need from their run; kept so one
/// of them can be restarted alone.
#[derive(Clone)]
struct LaneEnv {
    store: Arc<store::Store>,
    secret: edge_core::Secret,
    rotation_ms: i64,
    persons: Option<Arc<PersonKeyer>>,
    once: bool,
    /// The run's token; each source runs on a child of it.
    cancel: CancellationToken,
}

/// The name of the gateway's own wall clock, which stamps what its interfaces capture.
const LOCAL_CLOCK: &str = "local";

/// A Wi-Fi or portal source: its tasks, stopped and started on their own.
struct LaneSource {
    name: String,
    cancel: CancellationToken,
    tracker: TaskTracker,
    stats: Arc<SourceStats>,
}

impl LaneSource {
    /// Stops the source and waits for its tasks (with a deadline).
    async fn stop(self) {
        self.cancel.cancel();
        drain(&self.tracker, GROUP_STOP_DEADLINE).await;
    }
}

/// Whether the pipeline closes every visit when its inputs have ended: only when all of them
/// are files (followed portal files never end: then visits close as the watermark passes).
fn flush_at_end(cfg: &Config, once: bool) -> bool {
    cfg.wifi
        .iter()
        .all(|w| matches!(w.input, WifiInput::File(_)))
        && (once || cfg.portal.iter().all(|p| !p.follow))
}

/// The Wi-Fi and portal source names of `cfg`, in the pipeline's lane order.
fn lane_names(cfg: &Config) -> Vec<String> {
    cfg.wifi
        .iter()
        .map(|w| w.name.clone())
        .chain(cfg.portal.iter().map(|p| p.name.clone()))
        .collect()
}

/// Starts the Wi-Fi or portal source `name` of `cfg` from its committed cursor: the source's
/// tasks, and the input the pipeline merges.
async fn spawn_lane(
    cfg: &Config,
    name: &str,
    env: &LaneEnv,
    cursors: &[store::Cursor],
    counters: &[(String, String, u64)],
) -> anyhow::Result<(LaneSource, SourceInput)> {
    let cancel = env.cancel.child_token();
    let tracker = TaskTracker::new();
    if let Some(w) = cfg.wifi.iter().find(|w| w.name == name) {
        let zone = cfg
            .zones()
            .iter()
            .position(|z| *z == w.zone)
            .and_then(|i| u8::try_from(i).ok())
            .context("zone index")?;
        let stats = SourceStats::new(&w.name);
        restore_counters(&stats, counters, &w.name);
        let fingerprint = source::input_fingerprint(w);
        // A stream's positions do not survive it: a pipe starts over with every writer.
        let start = match w.input {
            WifiInput::File(_) => cursors
                .iter()
                .find(|c| c.source == w.name && c.fingerprint == fingerprint)
                .map_or(0, |c| c.position),
            _ => 0,
        };
        // Bounded: a file source waits when it is full, a live source drops and counts.
        let (tx, rx) = sync_channel(CHANNEL_BATCHES);
        match &w.input {
            WifiInput::File(path) => {
                let (w, path, stats, cancel) =
                    (w.clone(), path.clone(), stats.clone(), cancel.clone());
                tracker.spawn_blocking(move || {
                    source::replay_file(&w, &path, start, tx, stats, cancel)
                });
            }
            WifiInput::Pipe(path) => {
                let (w, path, stats, cancel) =
                    (w.clone(), path.clone(), stats.clone(), cancel.clone());
                tracker.spawn_blocking(move || source::read_pipe(&w, &path, tx, stats, cancel));
            }
            WifiInput::Interface(iface) => {
                if let Some(plan) = &w.hop {
                    tracker.spawn(hop::run(
                        w.iw.clone(),
                        iface.clone(),
                        plan.clone(),
                        stats.clone(),
                        cancel.clone(),
                    ));
                }
                let (w, iface, stats, cancel) =
                    (w.clone(), iface.clone(), stats.clone(), cancel.clone());
                tracker.spawn(async move {
                    let name = w.name.clone();
                    if let Err(e) = source::capture_live(w, iface, tx, stats, cancel).await {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "live capture stopped");
                    }
                });
            }
        }
        // The wall clock that stamps a live capture's frames: the gateway's own for its
        // interfaces (one guard for all of them: they step together), the capturing host's
        // for a pipe (each its own, as nothing says two pipes share a host).
        let clock = match &w.input {
            WifiInput::File(_) => None,
            WifiInput::Interface(_) => Some(LOCAL_CLOCK.to_string()),
            WifiInput::Pipe(p) => Some(format!("pipe:{}", p.display())),
        };
        let input = SourceInput {
            name: w.name.clone(),
            zone,
            rx,
            fingerprint,
            start,
            stats: stats.clone(),
            clock,
        };
        let lane = LaneSource {
            name: w.name.clone(),
            cancel,
            tracker,
            stats,
        };
        return Ok((lane, input));
    }
    let Some(p) = cfg.portal.iter().find(|p| p.name == name) else {
        bail!("no Wi-Fi or portal source {name:?} in the config");
    };
    let stats = SourceStats::of_kind(&p.name, "portal");
    restore_counters(&stats, counters, &p.name);
    let Some(person_keyer) = env.persons.clone() else {
        bail!("portal sources need a tenant secret"); // person_keyer() made sure of it
    };
    let keying = portal_source::Keying {
        devices: DeviceKeyer::new(&env.secret, env.rotation_ms, 4096),
        persons: person_keyer,
        region: cfg.default_region,
        tz: cfg.timezone,
    };
    let (tx, rx) = sync_channel(CHANNEL_BATCHES);
    let (fingerprint, start) = match &p.input {
        PortalInput::File(path) => {
            let fp = portal_source::first_line_fingerprint(path).unwrap_or_default();
            let start = cursors
                .iter()
                .find(|c| c.source == p.name && !fp.is_empty() && c.fingerprint == fp)
                .map_or(0, |c| c.position);
            let (src, path, stats, cancel) =
                (p.clone(), path.clone(), stats.clone(), cancel.clone());
            let follow = !env.once && p.follow;
            let known = fp.clone();
            tracker.spawn_blocking(move || {
                portal_source::follow_file(
                    &src, &path, start, &known, follow, keying, tx, stats, cancel,
                )
            });
            (fp, start)
        }
        PortalInput::Listen(addr) => {
            // The position is the login journal's id, whatever the address.
            let fp = "webhook-journal".to_string();
            let start = cursors
                .iter()
                .find(|c| c.source == p.name && c.fingerprint == fp)
                .map_or(0, |c| c.position);
            webhook::spawn(
                p,
                *addr,
                keying,
                env.store.clone(),
                start,
                tx,
                stats.clone(),
                cancel.clone(),
                &tracker,
            )
            .await?;
            (fp, start)
        }
    };
    let input = SourceInput {
        name: p.name.clone(),
        zone: 0,
        rx,
        fingerprint,
        start,
        stats: stats.clone(),
        // Login times are the portal's records, not a capture clock: taken as they are.
        clock: None,
    };
    let lane = LaneSource {
        name: p.name.clone(),
        cancel,
        tracker,
        stats,
    };
    Ok((lane, input))
}

/// Records what the store needs to know about the configured sources.
fn write_meta(cfg: &Config, store: &store::Store) -> anyhow::Result<()> {
    let configured = ConfiguredSources {
        wifi: !cfg.wifi.is_empty(),
        portal: !cfg.portal.is_empty(),
        pos: !cfg.pos.is_empty(),
        counter: !cfg.counter.is_empty(),
    };
    let kinds: BTreeMap<&str, &str> = cfg
        .wifi
        .iter()
        .map(|w| (w.name.as_str(), "wifi"))
        .chain(cfg.portal.iter().map(|p| (p.name.as_str(), "portal")))
        .chain(cfg.pos.iter().map(|p| (p.name.as_str(), "pos")))
        .chain(cfg.counter.iter().map(|c| (c.name.as_str(), "counter")))
        .collect();
    store.set_meta(vec![
        ("sources".into(), serde_json::to_string(&configured)?),
        ("source_kinds".into(), serde_json::to_string(&kinds)?),
    ])?;
    if let Some(p) = cfg.pos.first() {
        store.set_meta(vec![(
            "pos_minor_digits".into(),
            p.profile.rules.minor_digits().to_string(),
        )])?;
    }
    Ok(())
}

/// What a restart of side sources did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideChange {
    /// Sources started (new or changed), by name.
    pub started: Vec<String>,
    /// Sources stopped and not started again (removed).
    pub stopped: Vec<String>,
}

/// A started run: its sources, pipeline and services, until [`Running::finish`].
pub struct Running {
    cfg: Config,
    opts: RunOptions,
    env: SideEnv,
    side: Vec<SideGroup>,
    lane_env: LaneEnv,
    /// Wi-Fi and portal sources, in lane order.
    lanes: Vec<LaneSource>,
    /// Changes to the pipeline's inputs (`None` for a replay).
    lane_ctl: Option<std::sync::mpsc::SyncSender<pipeline::LaneCtl>>,
    sources: SourceList,
    pipeline: Option<tokio::task::JoinHandle<anyhow::Result<Summary>>>,
    summary: Option<anyhow::Result<Summary>>,
    health: HealthInputs,
    flush: Arc<pipeline::FlushGate>,
}

impl Running {
    /// The config it runs.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// What health snapshots and management read.
    pub(crate) fn health(&self) -> HealthInputs {
        self.health.clone()
    }

    /// Where `flush` requests go.
    pub fn flush_gate(&self) -> Arc<pipeline::FlushGate> {
        self.flush.clone()
    }

    /// The counters of source `name`, if it runs.
    pub fn stats_of(&self, name: &str) -> Option<Arc<SourceStats>> {
        self.lanes
            .iter()
            .map(|l| &l.stats)
            .chain(self.side.iter().flat_map(|g| g.stats.iter()))
            .find(|s| s.name == name)
            .cloned()
    }

    /// Whether the pipeline still runs.
    pub fn pipeline_running(&self) -> bool {
        self.pipeline.is_some()
    }

    /// Waits for the pipeline to end (its sources drained, or the run cancelled); an error
    /// when it failed. Never resolves once it has ended.
    pub async fn pipeline_ended(&mut self) -> anyhow::Result<()> {
        let Some(h) = self.pipeline.as_mut() else {
            return std::future::pending().await;
        };
        let r = h.await.context("pipeline thread panicked").and_then(|r| r);
        self.pipeline = None;
        let failed = r.as_ref().err().map(|e| anyhow::anyhow!("{e:#}"));
        self.summary = Some(r);
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn publish_sources(&self) {
        let all: Vec<Arc<SourceStats>> = self
            .lanes
            .iter()
            .map(|l| &l.stats)
            .chain(self.side.iter().flat_map(|g| g.stats.iter()))
            .cloned()
            .collect();
        if let Ok(mut s) = self.sources.lock() {
            *s = all;
        }
    }

    /// Restarts the POS and counter sources named in `changed` (added, changed or removed in
    /// `new`), and those that share a listener with them, on `new`; everything else keeps
    /// running. `new` must differ from the running config in those sources only.
    pub async fn restart_side(
        &mut self,
        new: &Config,
        changed: &BTreeSet<String>,
    ) -> anyhow::Result<SideChange> {
        let old_groups: BTreeMap<String, Vec<String>> = self
            .side
            .iter()
            .map(|g| (g.key.clone(), g.names.clone()))
            .collect();
        let new_groups = side_groups(new);
        // Grow the set to whole groups, old and new, until it is closed: a source joining a
        // listener restarts the listener's other sources too.
        let mut names = changed.clone();
        loop {
            let before = names.len();
            for members in old_groups.values().chain(new_groups.values()) {
                if members.iter().any(|n| names.contains(n)) {
                    names.extend(members.iter().cloned());
                }
            }
            if names.len() == before {
                break;
            }
        }
        let touches = |members: &Vec<String>| members.iter().any(|n| names.contains(n));
        let stop_keys: BTreeSet<String> = old_groups
            .iter()
            .filter(|(_, m)| touches(m))
            .map(|(k, _)| k.clone())
            .collect();
        let start_keys: BTreeSet<String> = new_groups
            .iter()
            .filter(|(_, m)| touches(m))
            .map(|(k, _)| k.clone())
            .collect();
        let (stopping, keep): (Vec<SideGroup>, Vec<SideGroup>) = std::mem::take(&mut self.side)
            .into_iter()
            .partition(|g| stop_keys.contains(&g.key));
        self.side = keep;
        let mut stopped: BTreeSet<String> = BTreeSet::new();
        for g in stopping {
            stopped.extend(g.names.iter().cloned());
            tracing::info!(sources = ?g.names, "stopping sources for a config change");
            g.stop().await;
        }
        self.publish_sources();
        let started_groups = spawn_side(new, &start_keys, &self.env).await?;
        let mut started: Vec<String> = started_groups
            .iter()
            .flat_map(|g| g.names.iter().cloned())
            .collect();
        started.sort();
        self.side.extend(started_groups);
        self.cfg.pos = new.pos.clone();
        self.cfg.counter = new.counter.clone();
        self.publish_sources();
        let store = self.env.store.clone();
        let cfg = self.cfg.clone();
        tokio::task::spawn_blocking(move || write_meta(&cfg, &store))
            .await
            .context("meta thread panicked")??;
        for n in &started {
            stopped.remove(n);
        }
        Ok(SideChange {
            started,
            stopped: stopped.into_iter().collect(),
        })
    }

    /// Why the Wi-Fi and portal sources cannot change to `new`'s without restarting the whole
    /// run, if so: the pipeline has ended, or what it was started with depends on them (the
    /// zone list, whether every input is a file that ends).
    pub fn lanes_fixed(&self, new: &Config) -> Option<&'static str> {
        if self.pipeline.is_none() || self.lane_ctl.is_none() {
            Some("the pipeline has ended")
        } else if self.cfg.zones() != new.zones() {
            Some("the zone list changes")
        } else if flush_at_end(&self.cfg, self.opts.once) != flush_at_end(new, self.opts.once) {
            Some("whether every radio input ends changes")
        } else {
            None
        }
    }

    /// Restarts the Wi-Fi and portal sources named in `changed` (added, changed or removed in
    /// `new`) on `new`, while the pipeline, its open visits and every other source keep
    /// running: each leaves the merge at a checkpoint carrying its cursor, and its new version
    /// joins from the committed cursor. See [`Running::lanes_fixed`] for when this cannot be.
    pub async fn restart_lanes(
        &mut self,
        new: &Config,
        changed: &BTreeSet<String>,
    ) -> anyhow::Result<SideChange> {
        let Some(ctl) = self.lane_ctl.clone() else {
            bail!("a replay's sources do not change");
        };
        let stop: Vec<String> = self
            .lanes
            .iter()
            .map(|l| l.name.clone())
            .filter(|n| changed.contains(n))
            .collect();
        let start: Vec<String> = lane_names(new)
            .into_iter()
            .filter(|n| changed.contains(n))
            .collect();
        if stop.is_empty() && start.is_empty() {
            return Ok(SideChange::default());
        }
        let refused = || anyhow::anyhow!("the pipeline ended during the change");
        for name in &stop {
            let (done, answered) = tokio::sync::oneshot::channel();
            tracing::info!(source = %name, "stopping a source for a config change");
            ctl.try_send(pipeline::LaneCtl::Remove {
                name: name.clone(),
                done,
            })
            .map_err(|_| refused())?;
            if !answered.await.map_err(|_| refused())? {
                let _ = ctl.try_send(pipeline::LaneCtl::Settled);
                bail!("the store cannot write a checkpoint now (out of space); source {name} keeps running unchanged");
            }
        }
        // Out of the merge, its channel is gone; now its tasks stop.
        let (leaving, keep): (Vec<LaneSource>, Vec<LaneSource>) = std::mem::take(&mut self.lanes)
            .into_iter()
            .partition(|l| stop.contains(&l.name));
        self.lanes = keep;
        for l in leaving {
            l.stop().await;
        }
        self.publish_sources();
        let (cursors, counters) = committed_positions(&self.cfg.storage.data_dir).await?;
        let mut started = Vec::new();
        let mut failed = None;
        for name in &start {
            match spawn_lane(new, name, &self.lane_env, &cursors, &counters).await {
                Ok((lane, input)) => {
                    if ctl.try_send(pipeline::LaneCtl::Add(input)).is_err() {
                        lane.stop().await;
                        failed = Some(refused());
                        break;
                    }
                    self.lanes.push(lane);
                    started.push(name.clone());
                }
                Err(e) => {
                    failed = Some(e.context(format!("starting source {name}")));
                    break;
                }
            }
        }
        let _ = ctl.try_send(pipeline::LaneCtl::Settled);
        self.publish_sources();
        if let Some(e) = failed {
            return Err(e);
        }
        self.cfg.wifi = new.wifi.clone();
        self.cfg.portal = new.portal.clone();
        let store = self.env.store.clone();
        let cfg = self.cfg.clone();
        tokio::task::spawn_blocking(move || write_meta(&cfg, &store))
            .await
            .context("meta thread panicked")??;
        Ok(SideChange {
            stopped: stop.into_iter().filter(|n| !started.contains(n)).collect(),
            started,
        })
    }

    /// Waits for the run to end: the pipeline, then (as a service) the cancel token, then the
    /// POS and counter sources.
    pub async fn finish(mut self) -> anyhow::Result<RunReport> {
        if self.pipeline.is_some() {
            // The error, if any, is kept in `summary`.
            let _ = self.pipeline_ended().await;
        }
        self.flush.close();
        self.lane_ctl = None;
        for l in std::mem::take(&mut self.lanes) {
            l.stop().await;
        }
        let summary = self
            .summary
            .take()
            .unwrap_or_else(|| Err(anyhow::anyhow!("the pipeline never ran")))?;
        // A replay waits for its POS captures; a service keeps its live POS lines until
        // stopped (also when it has no radio sources at all).
        if !self.opts.once && self.side.iter().any(|g| g.live) {
            self.env.cancel.cancelled().await;
        }
        let mut panicked = false;
        for g in &mut self.side {
            for j in std::mem::take(&mut g.joins) {
                panicked |= j.await.is_err();
            }
        }
        for g in std::mem::take(&mut self.side) {
            g.stop().await;
        }
        if panicked {
            bail!("a POS or counter source thread panicked");
        }
        let sources = self
            .sources
            .lock()
            .map(|s| s.iter().map(|s| (s.name.clone(), s.values())).collect())
            .unwrap_or_default();
        let data_dir = self.cfg.storage.data_dir.clone();
        // The writer stops when the last handle (this one, or the pull API's) is dropped.
        drop(self);
        let stored_visits = Reader::open(&data_dir)?.count("visits")?;
        Ok(RunReport {
            stored_visits,
            summary,
            sources,
        })
    }
}

/// Starts the agent on `cfg`: opens the store, restores the checkpoint, starts the sources,
/// the pipeline and (as a service) the pull API; [`Running::finish`] waits for it to end.
pub async fn start(
    cfg: &Config,
    opts: RunOptions,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Running> {
    if cfg.wifi.is_empty() && cfg.portal.is_empty() && cfg.pos.is_empty() && cfg.counter.is_empty()
    {
        bail!(
            "{}: no sources configured (add a [[sources.wifi]] table)",
            cfg.file.display()
        );
    }
    if opts.once {
        if let Some(live) = cfg.wifi.iter().find(|w| w.input.is_live()) {
            bail!(
                "`--once` replays capture files, but source {:?} captures live; drop `--once` to run as a service",
                live.name
            );
        }
    }
    if opts.once {
        if let Some(p) = cfg
            .portal
            .iter()
            .find(|p| matches!(p.input, PortalInput::Listen(_)))
        {
            bail!(
                "`--once` replays files, but portal source {:?} is a webhook; drop `--once` to run as a service",
                p.name
            );
        }
    }
    if opts.once {
        if let Some(p) = cfg
            .pos
            .iter()
            .find(|p| !matches!(p.input, PosInput::File(_)))
        {
            bail!(
                "`--once` replays files, but POS source {:?} reads a live line; drop `--once` to run as a service",
                p.name
            );
        }
    }
    if opts.once {
        if let Some(c) = cfg.counter.iter().find(|c| c.is_live()) {
            bail!(
                "`--once` replays files, but counter source {:?} reads a live device; drop `--once` to run as a service",
                c.name
            );
        }
    }
    let secrets = crate::secrets::load(cfg.secrets_file.as_deref())?;
    let secret = secrets.device.clone();
    let persons = person_keyer(cfg, &secrets)?;
    let staff_persons = match (&cfg.staff_phones_file, &persons) {
        (Some(f), Some(k)) => load_staff(f, k, cfg.default_region)?,
        _ => HashSet::new(),
    };
    let clock = LocalClock::new(cfg.timezone);
    let data_dir = &cfg.storage.data_dir;
    let store = Arc::new(
        store::open(data_dir)
            .with_context(|| format!("opening the store in {}", data_dir.display()))?,
    );
    tracing::info!(db = %store.path().display(), "store open");
    let reader = Reader::open(data_dir).context("reading the store's checkpoint")?;
    let core = restore_core(cfg, Some(&reader), clock)?;
    let cursors = reader.cursors()?;
    let counters = reader.counters()?;
    let bindings = reader.bindings()?;
    drop(reader);

    let zones = cfg.zones();
    store.set_meta(vec![
        ("store_id".into(), cfg.store_id.clone()),
        ("gateway_id".into(), cfg.gateway_id.clone()),
        ("timezone".into(), cfg.timezone.name().to_string()),
        ("zones".into(), serde_json::to_string(&zones)?),
        (
            "definitions_version".into(),
            DEFINITIONS_VERSION.to_string(),
        ),
        ("device_key_version".into(), secret.version().to_string()),
        (
            "min_visit_dwell_ms".into(),
            cfg.metrics.min_visit_dwell_ms.to_string(),
        ),
    ])?;
    write_meta(cfg, &store)?;

    let rotation_ms = i64::try_from(cfg.device_key_rotation.as_millis()).unwrap_or(i64::MAX);
    let keyer = DeviceKeyer::new(&secret, rotation_ms, KEY_CACHE);
    let lane_env = LaneEnv {
        store: store.clone(),
        secret: secret.clone(),
        rotation_ms,
        persons: persons.clone(),
        once: opts.once,
        cancel: cancel.clone(),
    };
    let mut inputs = Vec::new();
    let mut lanes: Vec<LaneSource> = Vec::new();
    for name in lane_names(cfg) {
        match spawn_lane(cfg, &name, &lane_env, &cursors, &counters).await {
            Ok((lane, input)) => {
                lanes.push(lane);
                inputs.push(input);
            }
            Err(e) => {
                for l in lanes {
                    l.stop().await;
                }
                return Err(e);
            }
        }
    }

    let hub = LiveHub::new(LIVE_QUEUE);
    // POS and counter sources commit by themselves (receipts and door counts are never
    // dropped, and have no place in the time merge of radio frames); a visit closing later
    // attributes receipts.
    let env = SideEnv {
        store: store.clone(),
        clock,
        persons: persons.clone(),
        hub: hub.clone(),
        once: opts.once,
        cancel: cancel.clone(),
    };
    let all_side: BTreeSet<String> = side_groups(cfg).into_keys().collect();
    let side = spawn_side(cfg, &all_side, &env).await?;
    let sources: SourceList = Arc::new(std::sync::Mutex::new(Vec::new()));

    let open_visits = Arc::new(AtomicU64::new(0));
    // As a service, the pull API runs beside the pipeline and acks through the same writer,
    // and the pipeline publishes live events for `Subscribe`.
    let service = !opts.once && cfg.sync.enabled;
    let flush = Arc::new(pipeline::FlushGate::default());
    let settings = PipelineSettings {
        zones,
        clock,
        commit_interval: cfg.storage.commit_interval,
        checkpoint_interval: cfg.storage.checkpoint_interval,
        flush_at_end: flush_at_end(cfg, opts.once),
        staff_persons,
        open_visits: open_visits.clone(),
        attribution_grace_ms: cfg.attribution_grace_ms,
        person_key_version: persons.as_ref().map_or(0, |p| p.version()),
        live: service.then(|| LiveOut {
            hub: hub.clone(),
            persons: persons_by_device(bindings),
        }),
        flush: flush.clone(),
        fixed_devices: cfg.fixed_devices.clone(),
        door_calibration: !cfg.counter.is_empty(),
    };
    let progress = if opts.progress {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    } else {
        ProgressBar::hidden()
    };
    let health = HealthInputs {
        data_dir: data_dir.clone(),
        sources: sources.clone(),
        open_visits,
        hub: hub.clone(),
        started_ms: chrono::Utc::now().timestamp_millis(),
        writes: store.write_health(),
        max_bytes: cfg.storage.max_bytes,
    };
    if service {
        crate::sync::spawn(
            &cfg.sync,
            data_dir.clone(),
            store.clone(),
            hub.clone(),
            cancel.clone(),
            tracker,
        )
        .await?;
    }
    if !opts.once {
        tracker.spawn(prune_loop(
            store.clone(),
            cfg.storage.clone(),
            cancel.clone(),
        ));
    }
    // Health snapshots are for the cloud: only kept where it can pull (and ack) them.
    if service {
        tracker.spawn(health_loop(
            store.clone(),
            health.clone(),
            cfg.sync.health_interval,
            cancel.clone(),
        ));
    }
    let pcancel = cancel.clone();
    let pstore = store.clone();
    let (lane_tx, lane_rx) = sync_channel(pipeline::LANE_CTL_QUEUE);
    let pipeline = tracker.spawn_blocking(move || {
        pipeline::run(
            core, keyer, inputs, &lane_rx, &pstore, &settings, &pcancel, &progress,
        )
    });
    let running = Running {
        cfg: cfg.clone(),
        opts,
        env,
        side,
        lane_env,
        lanes,
        // A replay's inputs never change: dropping the sender lets its pipeline end.
        lane_ctl: (!opts.once).then_some(lane_tx),
        sources,
        pipeline: Some(pipeline),
        summary: None,
        health,
        flush,
    };
    running.publish_sources();
    Ok(running)
}

/// Restores a source's counters from the stored ones (they are cumulative across runs).
fn restore_counters(stats: &SourceStats, stored: &[(String, String, u64)], source: &str) {
    let mine: Vec<(String, u64)> = stored
        .iter()
        .filter(|(s, _, _)| s == source)
        .map(|(_, k, v)| (k.clone(), *v))
        .collect();
    stats.restore(&mine);
}

/// The person keyer, when a tenant secret is configured; portal sources and a staff phone list
/// need one.
fn person_keyer(cfg: &Config, secrets: &Secrets) -> anyhow::Result<Option<Arc<PersonKeyer>>> {
    match &secrets.tenant {
        Some(t) => Ok(Some(Arc::new(PersonKeyer::new(t)))),
        None if !cfg.portal.is_empty() || !cfg.pos.is_empty() || cfg.staff_phones_file.is_some() => bail!(
            "portal and POS sources and privacy.staff_phones_file need a tenant secret: set `tenant_secret` in the secrets file or {}",
            crate::secrets::ENV_TENANT_SECRET
        ),
        None => Ok(None),
    }
}

/// Reads the staff phone list (one number per line, `#` comments) into person keys. A line
/// that is not a valid number is an error naming the line, never its digits.
fn load_staff(
    path: &std::path::Path,
    keyer: &PersonKeyer,
    region: edge_core::phone::Region,
) -> anyhow::Result<HashSet<PersonKey>> {
    // Bounded and never waiting on a FIFO, like every file a config names.
    let text = crate::config::read_regular_text(path)
        .with_context(|| format!("cannot read staff phone list {}", path.display()))?;
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let e164 = edge_core::phone::normalize(line, region)
            .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?;
        out.insert(keyer.key(&e164));
    }
    tracing::info!(
        staff = out.len(),
        "staff phone list loaded (kept as person keys only)"
    );
    Ok(out)
}

/// Device key → person key from the identity graph's bindings (malformed keys are skipped).
fn persons_by_device(bindings: Vec<(String, String)>) -> HashMap<DeviceKey, String> {
    bindings
        .into_iter()
        .filter_map(|(device, person)| {
            let bytes: [u8; 16] = hex::decode(&device).ok()?.try_into().ok()?;
            Some((DeviceKey(bytes), person))
        })
        .collect()
}

/// What a health snapshot is made of.
#[derive(Clone)]
pub(crate) struct HealthInputs {
    pub(crate) data_dir: std::path::PathBuf,
    pub(crate) sources: SourceList,
    open_visits: Arc<AtomicU64>,
    hub: Arc<LiveHub>,
    pub(crate) started_ms: i64,
    /// How the store's writes are going.
    pub(crate) writes: Arc<store::WriteHealth>,
    /// `storage.max_bytes`.
    max_bytes: u64,
}

impl HealthInputs {
    /// The running sources' counters.
    pub(crate) fn sources(&self) -> Vec<Arc<SourceStats>> {
        self.sources.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Builds the gateway's health snapshot (records.proto `HealthSnapshot`) as of now.
pub(crate) fn health_snapshot(
    h: &HealthInputs,
    taken_ms: i64,
) -> anyhow::Result<pb::HealthSnapshot> {
    let r = Reader::open(&h.data_dir)?;
    let st = r.outbox_state()?;
    let count = |(name, value): (String, u64)| pb::Count { name, value };
    Ok(pb::HealthSnapshot {
        taken_ms,
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_ms: h.started_ms,
        sources: h
            .sources()
            .iter()
            .map(|s| pb::SourceCounters {
                name: s.name.clone(),
                kind: s.kind.into(),
                counters: s.values().into_iter().map(count).collect(),
            })
            .collect(),
        open_visits: h.open_visits.load(Ordering::Relaxed),
        outbox_records: st.records,
        outbox_unacked: st.unacked,
        dropped_unacked: r.drops()?.into_iter().map(count).collect(),
        database_bytes: r.database_bytes(),
        free_disk_bytes: rustix::fs::statvfs(&h.data_dir)
            .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
            .unwrap_or(0),
        live_subscribers: h.hub.subscribers(),
        live_events_lagged: h.hub.lagged(),
        store_write_failures: h.writes.out_of_space(),
        store_write_failing: h.writes.failing(),
        max_bytes: h.max_bytes,
        over_budget: h.writes.over_budget(),
    })
}

/// Takes a health snapshot and stores it for the cloud.
fn record_health(store: &store::Store, h: &HealthInputs) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let snap = health_snapshot(h, now).context("taking a health snapshot")?;
    let body = serde_json::to_string(&snap)?;
    store
        .health(now, body)
        .context("storing a health snapshot")?;
    Ok(())
}

/// Records a health snapshot every `every` (the first after one interval) and a last one when
/// cancelled: how the gateway was when it went down.
async fn health_loop(
    store: Arc<store::Store>,
    h: HealthInputs,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tick.tick() => false,
        };
        let (s, h) = (store.clone(), h.clone());
        match tokio::task::spawn_blocking(move || record_health(&s, &h)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "health snapshot failed; retrying next interval")
            }
            Err(e) => tracing::warn!(error = %e, "health snapshot thread failed"),
        }
        if last {
            return;
        }
    }
}

/// Applies retention and the disk budget every `prune_interval` (first right away) until
/// cancelled.
async fn prune_loop(
    store: Arc<store::Store>,
    storage: crate::config::Storage,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(storage.prune_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let policy = store::PrunePolicy {
            acked_before_ms: now_ms.saturating_sub(ms(storage.aggregate_retention)),
            raw_before_ms: now_ms.saturating_sub(ms(storage.raw_retention)),
            budget_bytes: storage.max_bytes,
        };
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune(policy)).await {
            Ok(Ok(r)) => {
                if r.acked > 0 || r.sightings > 0 || !r.dropped_unacked.is_empty() {
                    tracing::info!(acked_removed = r.acked, sightings_removed = r.sightings, dropped_unacked = ?r.dropped_unacked, live_bytes = r.live_bytes, "pruned the store");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning failed; retrying next interval"),
            Err(e) => tracing::warn!(error = %e, "pruning thread failed"),
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The lock that keeps a second agent off a data directory: an exclusive lock (`flock`) on
/// `<data_dir>/store-edge.lock`, held while the value lives and released by the kernel when the
/// process ends (also on kill -9 or a power cut). The file holds the owner's pid, for the error.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "store-edge.lock";

impl DataDirLock {
    /// Takes the lock of `data_dir` (creating the directory), or says which process holds it.
    pub fn acquire(data_dir: &std::path::Path) -> anyhow::Result<DataDirLock> {
        use std::io::{Read, Seek, Write};
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if let Err(e) = file.try_lock() {
            if let std::fs::TryLockError::Error(e) = e {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = owner.trim();
            anyhow::bail!(
                "another store-edge (pid {}) is running on data directory {}; stop it first (one agent per data directory)",
                if owner.is_empty() { "unknown" } else { owner },
                data_dir.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DataDirLock { _file: file })
    }
}

/// Closes `tracker` and waits up to `deadline` for its tasks; says what was cut short.
pub async fn drain(tracker: &TaskTracker, deadline: Duration) {
    tracker.close();
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            tasks = tracker.len(),
            "shutdown deadline passed with tasks still running; exiting anyway"
        );
    }
}
