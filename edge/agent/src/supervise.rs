//! `store-edge run` as a service: runs the config in force, applies the configs the fleet
//! pushes (`config/desired`) and the `reload` command, and rolls back a change whose sources
//! do not come up.
//!
//! # The config in force
//! The fleet config last applied (`<data_dir>/config/applied.toml`, its version and digest in
//! `applied.json`), else the `--config` file. Relative paths in a pushed config resolve against
//! the `--config` file's directory, as the file's own do. A fleet config that no longer
//! validates at start-up (a profile removed by an upgrade), or whose identity differs from the
//! file's (the gateway was re-provisioned), gives way to the file, with a warning.
//!
//! # Applying a config
//! 1. A version at or below the running one is ignored (a retained `config/desired` comes back
//!    on every reconnection), and so is the exact repeat of a version already refused.
//! 2. The text is validated like the file (`bad_config` names the key). Store and gateway ids,
//!    `storage.data_dir` and `[mqtt]` cannot change over MQTT (`needs_local_change`): a push
//!    that moved the data or cut the management connection could not be rolled back by the
//!    fleet.
//! 3. The text is written to `config/pending.toml` (temp file, fsync, rename, fsync of the
//!    directory), then applied:
//!    - only source tables changed: those sources (and push counters sharing a listener with
//!      them) restart; everything else keeps running (scope `sources`). A Wi-Fi or portal
//!      source leaves the pipeline's merge at a checkpoint carrying its cursor and its new
//!      version joins from there, so the open visits stay. When the zone list changes, or
//!      whether every radio input is a file that ends, the pipeline restarts with the run;
//!    - anything else changed: the whole run restarts in-process — store, pipeline, sources,
//!      pull API — while the process and its MQTT session stay (scope `all`).
//! 4. The sources it started get `[mqtt] apply_timeout` to come up. One that failed (its
//!    failure counters moved) and never succeeded by then, or a start that failed outright (a
//!    listener address in use, a missing file), rolls the change back: the previous config's
//!    sources start again. Otherwise the pending file becomes `applied.toml`.
//!
//! A crash in the middle of an apply leaves `pending.toml` behind; the next start runs the
//! config last applied and removes it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Config};
use crate::mgmt::status::{deltas, judge, SourceState};
use crate::mgmt::telemetry::CounterWatch;
use crate::pipeline::FlushGate;
use crate::run::{self, HealthInputs, RunOptions, Running};
use crate::sources::wifi::config::WifiInput;

/// Apply requests waiting for the supervisor; when full, a request is answered `busy`.
pub const APPLY_QUEUE: usize = 4;
/// How long a stopping run gets before the next one starts anyway.
const RUN_STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Refused versions remembered (so their exact repeats are ignored).
const REFUSED_KEPT: usize = 16;
/// How often the sources of an apply are looked at.
const JUDGE_EVERY: Duration = Duration::from_millis(200);

/// What the supervisor is asked to do.
#[derive(Debug)]
pub enum ApplyRequest {
    /// A config pushed on `config/desired`.
    Desired {
        /// Its version.
        version: u64,
        /// The config file's text.
        text: String,
    },
    /// Read the config in force from disk again.
    Reload,
}

/// A request and where its outcome goes.
#[derive(Debug)]
pub struct Apply {
    /// The request.
    pub request: ApplyRequest,
    /// The outcome.
    pub reply: oneshot::Sender<Outcome>,
}

/// What became of a request (the `config/reported` document, without its time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `applied`, `rejected`, `rolled_back` or `ignored`.
    pub result: &'static str,
    /// The version asked for.
    pub version: Option<u64>,
    /// The version running afterwards (`None`: the `--config` file).
    pub running_version: Option<u64>,
    /// Applied: `none`, `sources` or `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    /// Applied: sources started (new or changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted: Option<Vec<String>>,
    /// Applied: sources removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Vec<String>>,
    /// Not applied: a short code (`bad_config`, `needs_local_change`, `start_failed`,
    /// `source_failed`, `stale`, `repeat`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Not applied: what was wrong, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Outcome {
    fn refused(
        result: &'static str,
        version: Option<u64>,
        running: Option<u64>,
        error: &'static str,
        reason: String,
    ) -> Outcome {
        Outcome {
            result,
            version,
            running_version: running,
            scope: None,
            restarted: None,
            stopped: None,
            error: Some(error),
            reason: Some(reason),
        }
    }

    /// A request refused before it reached the supervisor (malformed, too large, busy).
    pub fn rejected(
        version: Option<u64>,
        running: Option<u64>,
        error: &'static str,
        reason: String,
    ) -> Outcome {
        Outcome::refused("rejected", version, running, error, reason)
    }
}

/// What management reads about the running service; replaced at every apply.
#[derive(Default)]
pub struct Live {
    state: Mutex<LiveState>,
}

/// See [`Live`].
#[derive(Clone, Default)]
pub struct LiveState {
    /// Health inputs of the running sources (`None` between two runs).
    pub(crate) health: Option<HealthInputs>,
    /// Where `flush` goes.
    pub flush: Option<Arc<FlushGate>>,
    /// Version of the fleet config running.
    pub config_version: Option<u64>,
    /// Live radios (judged `silent` when they hear nothing).
    pub live_radios: BTreeSet<String>,
    /// Live counters (watched for silence).
    pub live_counters: Vec<CounterWatch>,
}

impl Live {
    /// A copy of the state now.
    pub fn get(&self) -> LiveState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, running: Option<&Running>, version: Option<u64>) {
        let state = match running {
            None => LiveState {
                config_version: version,
                ..LiveState::default()
            },
            Some(r) => {
                let cfg = r.config();
                LiveState {
                    health: Some(r.health()),
                    flush: Some(r.flush_gate()),
                    config_version: version,
                    live_radios: cfg
                        .wifi
                        .iter()
                        .filter(|w| matches!(w.input, WifiInput::Interface(_)))
                        .map(|w| w.name.clone())
                        .collect(),
                    live_counters: cfg
                        .counter
                        .iter()
                        .filter(|c| c.is_live())
                        .map(|c| CounterWatch {
                            name: c.name.clone(),
                            door: c.door.clone(),
                        })
                        .collect(),
                }
            }
        };
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }
}

/// `applied.json` / `refused.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    version: u64,
    sha256: String,
    at_ms: i64,
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether the control loop and the pipeline made progress since the last watchdog check:
/// the control loop is idle (`busy_since_ms` 0) or within `apply_limit` of the apply it
/// started at `busy_since_ms`; the pipeline's heartbeat (`beats`: count, stopped) moved since
/// `last`, or it has stopped, or there is none (between two runs).
fn progress(
    busy_since_ms: u64,
    now_ms: u64,
    apply_limit: Duration,
    beats: Option<(u64, bool)>,
    last: Option<u64>,
) -> (bool, bool) {
    let limit = u64::try_from(apply_limit.as_millis()).unwrap_or(u64::MAX);
    let control = busy_since_ms == 0 || now_ms.saturating_sub(busy_since_ms) < limit;
    let pipeline = match beats {
        None => true,
        Some((count, stopped)) => stopped || last != Some(count),
    };
    (control, pipeline)
}

/// How much longer than its `apply_timeout` an apply may keep the control loop before the
/// watchdog counts it as wedged (stopping and starting sources, writing files).
const APPLY_GRACE: Duration = Duration::from_secs(60);

/// Where fleet configs are kept.
fn config_dir(cfg: &Config) -> PathBuf {
    cfg.storage.data_dir.join("config")
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a temp file
/// beside it, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a config path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// The config in force.
struct InForce {
    cfg: Config,
    text: String,
    /// Fleet version; `None`: the `--config` file.
    version: Option<u64>,
}

/// Whether `new` changes what cannot change over MQTT; names it.
fn needs_local_change(old: &InForce, new: &Config, new_text: &str) -> Option<&'static str> {
    if old.cfg.store_id != new.store_id {
        return Some("store.store_id");
    }
    if old.cfg.gateway_id != new.gateway_id {
        return Some("store.gateway_id");
    }
    if old.cfg.storage.data_dir != new.storage.data_dir {
        return Some("storage.data_dir");
    }
    // Secrets and phone numbers stay where the installer put them.
    if old.cfg.secrets_file != new.secrets_file {
        return Some("privacy.secrets_file");
    }
    if old.cfg.staff_phones_file != new.staff_phones_file {
        return Some("privacy.staff_phones_file");
    }
    let mqtt = |text: &str| {
        text.parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("mqtt").cloned())
    };
    (mqtt(&old.text) != mqtt(new_text)).then_some("mqtt")
}

/// Reads the config in force at start-up: the fleet config last applied, else the file.
fn in_force(config_path: &Path) -> anyhow::Result<InForce> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read config file {}", config_path.display()))?;
    let cfg = config::parse(&text, config_path)?;
    let file = InForce {
        cfg,
        text,
        version: None,
    };
    let dir = config_dir(&file.cfg);
    let pending = dir.join("pending.toml");
    let stamp_path = dir.join("applied.json");
    let applied_path = dir.join("applied.toml");
    let stamp: Option<Stamp> = std::fs::read(&stamp_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(stamp) = stamp else {
        if pending.exists() {
            tracing::warn!(path = %pending.display(), "a config push was interrupted; running the config file");
            let _ = std::fs::remove_file(&pending);
        }
        return Ok(file);
    };
    // The stamp is renamed in before the text: a crash between the two left the text pending.
    if pending.exists() {
        let p = std::fs::read_to_string(&pending).unwrap_or_default();
        if digest(&p) == stamp.sha256 {
            std::fs::rename(&pending, &applied_path)
                .with_context(|| format!("completing {}", applied_path.display()))?;
        } else {
            tracing::warn!(path = %pending.display(), "a config push was interrupted; running the config last applied");
            let _ = std::fs::remove_file(&pending);
        }
    }
    let text = match std::fs::read_to_string(&applied_path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %applied_path.display(), error = %e, "fleet config unreadable; running the config file");
            return Ok(file);
        }
    };
    if digest(&text) != stamp.sha256 {
        tracing::warn!(path = %applied_path.display(), "fleet config does not match its digest; running the config file");
        return Ok(file);
    }
    let cfg = match config::parse(&text, config_path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(version = stamp.version, error = %e, "fleet config no longer valid; running the config file");
            return Ok(file);
        }
    };
    if let Some(what) = needs_local_change(&file, &cfg, &text) {
        tracing::warn!(version = stamp.version, differs = what, "the config file was re-provisioned since the fleet config was applied; running the config file");
        return Ok(file);
    }
    tracing::info!(
        version = stamp.version,
        path = %applied_path.display(),
        "running the fleet config last applied (the --config file is used again once it is removed)"
    );
    Ok(InForce {
        cfg,
        text,
        version: Some(stamp.version),
    })
}

/// What changed between two config texts.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// Something besides the sources changed: restart the whole run.
    full: bool,
    /// Sources (any kind) added, removed or changed, by name.
    changed: BTreeSet<String>,
    /// Some of them are Wi-Fi or portal sources (the pipeline's inputs).
    lanes: bool,
}

/// Source kinds, as the config's `[[sources.KIND]]` arrays name them.
const SOURCE_KINDS: [&str; 4] = ["wifi", "portal", "pos", "counter"];

/// The validated names of a config's sources, per kind in config order. Validation keeps the
/// order of the tables and names the unnamed ones (a counter `counter-<door>`, a sniffer its
/// zone), so the i-th table of a kind runs under the i-th name here.
#[derive(Debug, Default, Clone)]
struct SourceNames([Vec<String>; 4]);

impl SourceNames {
    fn of(cfg: &Config) -> SourceNames {
        SourceNames([
            cfg.wifi.iter().map(|s| s.name.clone()).collect(),
            cfg.portal.iter().map(|s| s.name.clone()).collect(),
            cfg.pos.iter().map(|s| s.name.clone()).collect(),
            cfg.counter.iter().map(|s| s.name.clone()).collect(),
        ])
    }
}

/// Compares two validated configs: their source tables by validated name, the rest table by
/// table. `old` and `new` are each a config's text and the names its validation gave.
fn plan(old: (&str, &SourceNames), new: (&str, &SourceNames)) -> anyhow::Result<Plan> {
    let (old_names, new_names) = (old.1, new.1);
    let old: toml::Table = old.0.parse().context("the running config")?;
    let new: toml::Table = new.0.parse().context("the new config")?;
    let sources = |t: &toml::Table,
                   k: usize,
                   names: &SourceNames|
     -> anyhow::Result<BTreeMap<String, toml::Value>> {
        let tables = t
            .get("sources")
            .and_then(|s| s.get(SOURCE_KINDS[k]))
            .and_then(|a| a.as_array())
            .map_or(&[][..], |a| a.as_slice());
        let names = &names.0[k];
        anyhow::ensure!(
            tables.len() == names.len(),
            "{} sources.{} tables but {} validated",
            tables.len(),
            SOURCE_KINDS[k],
            names.len()
        );
        Ok(names.iter().cloned().zip(tables.iter().cloned()).collect())
    };
    let mut changed = BTreeSet::new();
    let mut lanes = false;
    for (k, kind) in SOURCE_KINDS.iter().enumerate() {
        let (a, b) = (sources(&old, k, old_names)?, sources(&new, k, new_names)?);
        for name in a.keys().chain(b.keys()) {
            if a.get(name) != b.get(name) {
                changed.insert(name.clone());
                lanes |= *kind == "wifi" || *kind == "portal";
            }
        }
    }
    let rest = |t: &toml::Table| {
        let mut t = t.clone();
        let mut empty = false;
        if let Some(toml::Value::Table(s)) = t.get_mut("sources") {
            for kind in SOURCE_KINDS {
                s.remove(kind);
            }
            empty = s.is_empty();
        }
        if empty {
            t.remove("sources");
        }
        t
    };
    Ok(Plan {
        full: rest(&old) != rest(&new),
        changed,
        lanes,
    })
}

/// One run of the agent: its token (a child of the process's) and its tasks.
struct Generation {
    cancel: CancellationToken,
    tracker: TaskTracker,
    running: Running,
}

impl Generation {
    async fn start(cfg: &Config, parent: &CancellationToken) -> anyhow::Result<Generation> {
        let cancel = parent.child_token();
        let tracker = TaskTracker::new();
        let opts = RunOptions {
            once: false,
            progress: false,
        };
        match run::start(cfg, opts, cancel.clone(), &tracker).await {
            Ok(running) => Ok(Generation {
                cancel,
                tracker,
                running,
            }),
            Err(e) => {
                cancel.cancel();
                run::drain(&tracker, RUN_STOP_DEADLINE).await;
                Err(e)
            }
        }
    }

    /// Stops the run and waits for it; the run's report, if it ended well.
    async fn stop(self) -> anyhow::Result<run::RunReport> {
        self.cancel.cancel();
        let report = self.running.finish().await;
        run::drain(&self.tracker, RUN_STOP_DEADLINE).await;
        report
    }
}

/// Watches the sources `names` of `running` for `limit`: `Err` names one that failed without
/// ever succeeding. Returns early once every one succeeded.
async fn judge_sources(running: &Running, names: &[String], limit: Duration) -> Result<(), String> {
    let watched: Vec<_> = names
        .iter()
        .filter_map(|n| running.stats_of(n))
        .map(|s| {
            let before: BTreeMap<String, u64> = s.values().into_iter().collect();
            (s, before)
        })
        .collect();
    if watched.is_empty() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        tokio::time::sleep(JUDGE_EVERY).await;
        let mut all_up = true;
        let mut failing = None;
        for (s, before) in &watched {
            let now: BTreeMap<String, u64> = s.values().into_iter().collect();
            let delta = deltas(before, &now);
            match judge(SourceState::Starting, &delta, false) {
                SourceState::Up => {}
                SourceState::Failing => {
                    all_up = false;
                    let why: Vec<String> = delta
                        .iter()
                        .filter(|(k, v)| **v > 0 && crate::mgmt::status::is_failure_counter(k))
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    failing.get_or_insert(format!(
                        "source {} failed and never came up within {:?} ({})",
                        s.name,
                        limit,
                        why.join(", ")
                    ));
                }
                _ => all_up = false,
            }
        }
        if all_up {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return failing.map_or(Ok(()), Err);
        }
    }
}

/// The service: the config in force and the run on it.
struct Service {
    config_path: PathBuf,
    current: InForce,
    generation: Option<Generation>,
    live: Arc<Live>,
    cancel: CancellationToken,
    apply_timeout: Duration,
    /// The last versions refused (rejected or rolled back) with their digests, oldest first.
    refused: Vec<Stamp>,
}

impl Service {
    fn running_version(&self) -> Option<u64> {
        self.current.version
    }

    fn refuse(&mut self, version: Option<u64>, text: &str) {
        let Some(version) = version else { return };
        let stamp = Stamp {
            version,
            sha256: digest(text),
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        self.refused.push(stamp);
        if self.refused.len() > REFUSED_KEPT {
            self.refused.remove(0);
        }
        let path = config_dir(&self.current.cfg).join("refused.json");
        if let Err(e) = serde_json::to_vec(&self.refused)
            .map_err(anyhow::Error::from)
            .and_then(|b| write_atomic(&path, &b))
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the refused config version");
        }
    }

    /// Carries out one request. `Err` only when the agent cannot go on (even the previous
    /// config no longer starts).
    async fn apply(&mut self, request: ApplyRequest) -> anyhow::Result<Outcome> {
        let running = self.running_version();
        let (version, text) = match request {
            ApplyRequest::Desired { version, text } => {
                if running.is_some_and(|r| version <= r) {
                    return Ok(Outcome::refused(
                        "ignored",
                        Some(version),
                        running,
                        "stale",
                        format!("version {version} is not newer than the running one"),
                    ));
                }
                let sha = digest(&text);
                if self
                    .refused
                    .iter()
                    .any(|r| r.version == version && r.sha256 == sha)
                {
                    return Ok(Outcome::refused(
                        "ignored",
                        Some(version),
                        running,
                        "repeat",
                        format!("version {version} was refused before"),
                    ));
                }
                (Some(version), text)
            }
            ApplyRequest::Reload => {
                let path = match running {
                    Some(_) => config_dir(&self.current.cfg).join("applied.toml"),
                    None => self.config_path.clone(),
                };
                match config::read_regular_text(&path) {
                    Ok(t) => (running, t),
                    Err(e) => {
                        return Ok(Outcome::refused(
                            "rejected",
                            running,
                            running,
                            "unreadable",
                            format!("cannot read {}: {e}", path.display()),
                        ))
                    }
                }
            }
        };
        // Off the control loop: the named files are read (bounded in size, never waiting on
        // a FIFO). A fleet config is first held to what the gateway's own config file allows
        // it to name, and its refusals never carry what was read in a file.
        let fleet = version.is_some();
        let parsed = {
            let (t, p) = (text.clone(), self.config_path.clone());
            tokio::task::spawn_blocking(move || {
                if fleet {
                    let local = config::load(&p).map_err(|_| {
                        (
                            "bad_config",
                            "the gateway's own config file does not load; fix it on the gateway"
                                .to_string(),
                        )
                    })?;
                    let base = p.parent().unwrap_or(Path::new("."));
                    config::push::PushPolicy::for_local(&local)
                        .check(&t, &p, base)
                        .map_err(|e| ("not_allowed", format!("key `{}`: {}", e.key, e.reason)))?;
                }
                config::parse(&t, &p).map_err(|e| {
                    if fleet {
                        // The log gets the redacted reason too: a file's content stays in it.
                        let reason = config::push::fleet_reason(&e);
                        tracing::warn!(reason = %reason, "pushed config refused");
                        ("bad_config", reason)
                    } else {
                        ("bad_config", e.to_string())
                    }
                })
            })
            .await
            .context("config thread panicked")?
        };
        let checked = parsed
            .and_then(|cfg| match needs_local_change(&self.current, &cfg, &text) {
                Some(what) => Err((
                    "needs_local_change",
                    format!("{what} cannot change over MQTT; change it in the config file on the gateway"),
                )),
                None => Ok(cfg),
            })
            .and_then(|cfg| {
                plan(
                    (&self.current.text, &SourceNames::of(&self.current.cfg)),
                    (&text, &SourceNames::of(&cfg)),
                )
                    .map(|p| (cfg, p))
                    .map_err(|e| ("bad_config", format!("{e:#}")))
            });
        let (cfg, plan) = match checked {
            Ok(c) => c,
            Err((error, reason)) => {
                self.refuse(version, &text);
                return Ok(Outcome::refused(
                    "rejected", version, running, error, reason,
                ));
            }
        };
        let dir = config_dir(&cfg);
        if fleet {
            write_atomic(&dir.join("pending.toml"), text.as_bytes())
                .context("writing the pushed config")?;
        }
        let mut full = plan.full;
        if !full && plan.lanes {
            let fixed = self
                .generation
                .as_ref()
                .map_or(Some("nothing runs"), |g| g.running.lanes_fixed(&cfg));
            if let Some(why) = fixed {
                tracing::info!(
                    reason = why,
                    "Wi-Fi and portal sources change with the whole run"
                );
                full = true;
            }
        }
        let scope = if full {
            "all"
        } else if plan.changed.is_empty() {
            "none"
        } else {
            "sources"
        };
        tracing::info!(version = ?version, scope, changed = ?plan.changed, "applying a config");
        let applied = if full {
            self.restart_all(&cfg, &plan).await?
        } else if plan.changed.is_empty() {
            Ok(run::SideChange::default())
        } else {
            self.restart_sources(&cfg, &plan).await?
        };
        match applied {
            Ok(change) => {
                if fleet {
                    self.commit_files(&dir, version, &text)
                        .context("recording the applied config")?;
                }
                self.current = InForce { cfg, text, version };
                self.live
                    .set(self.generation.as_ref().map(|g| &g.running), version);
                tracing::info!(version = ?version, scope, started = ?change.started, stopped = ?change.stopped, "config applied");
                Ok(Outcome {
                    result: "applied",
                    version,
                    running_version: version,
                    scope: Some(scope),
                    restarted: Some(change.started),
                    stopped: Some(change.stopped),
                    error: None,
                    reason: None,
                })
            }
            Err((error, reason)) => {
                if fleet {
                    let _ = std::fs::remove_file(dir.join("pending.toml"));
                }
                self.refuse(version, &text);
                self.live
                    .set(self.generation.as_ref().map(|g| &g.running), running);
                tracing::warn!(version = ?version, error, reason = %reason, "config rolled back");
                Ok(Outcome::refused(
                    "rolled_back",
                    version,
                    running,
                    error,
                    reason,
                ))
            }
        }
    }

    /// `pending.toml` becomes `applied.toml`; the stamp goes first (see [`in_force`]).
    fn commit_files(&self, dir: &Path, version: Option<u64>, text: &str) -> anyhow::Result<()> {
        let Some(version) = version else {
            return Ok(());
        };
        let stamp = Stamp {
            version,
            sha256: digest(text),
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        write_atomic(&dir.join("applied.json"), &serde_json::to_vec(&stamp)?)?;
        std::fs::rename(dir.join("pending.toml"), dir.join("applied.toml"))
            .context("renaming pending.toml to applied.toml")?;
        sync_dir(dir)
    }

    /// Restarts the changed sources on `cfg`; on failure the old ones again.
    /// The inner `Err` is a rollback (code, reason).
    async fn restart_sources(
        &mut self,
        cfg: &Config,
        plan: &Plan,
    ) -> anyhow::Result<Result<run::SideChange, (&'static str, String)>> {
        let old = self.current.cfg.clone();
        let Some(generation) = self.generation.as_mut() else {
            anyhow::bail!("no run to change");
        };
        let restarted = match generation.running.restart_side(cfg, &plan.changed).await {
            Ok(mut change) if plan.lanes => {
                match generation.running.restart_lanes(cfg, &plan.changed).await {
                    Ok(lanes) => {
                        change.started.extend(lanes.started);
                        change.stopped.extend(lanes.stopped);
                        change.started.sort();
                        change.stopped.sort();
                        Ok(change)
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        let failure = match restarted {
            Ok(change) => {
                match judge_sources(&generation.running, &change.started, self.apply_timeout).await
                {
                    Ok(()) => return Ok(Ok(change)),
                    Err(reason) => ("source_failed", reason),
                }
            }
            Err(e) => ("start_failed", format!("{e:#}")),
        };
        let mut again = generation.running.restart_side(&old, &plan.changed).await;
        if plan.lanes && again.is_ok() {
            again = generation.running.restart_lanes(&old, &plan.changed).await;
        }
        if let Err(e) = again {
            // The old sources would not start again either (a device went away meanwhile):
            // the rest keeps running, and status shows what is down.
            tracing::error!(error = %format!("{e:#}"), "the previous config's sources did not start again");
        }
        Ok(Err(failure))
    }

    /// Restarts the whole run on `cfg`; on failure on the old config again.
    async fn restart_all(
        &mut self,
        cfg: &Config,
        plan: &Plan,
    ) -> anyhow::Result<Result<run::SideChange, (&'static str, String)>> {
        self.stop_generation().await;
        let failure = match Generation::start(cfg, &self.cancel).await {
            Ok(g) => {
                let started: Vec<String> = plan.changed.iter().cloned().collect();
                let verdict = judge_sources(&g.running, &started, self.apply_timeout).await;
                match verdict {
                    Ok(()) => {
                        self.generation = Some(g);
                        let all: BTreeSet<String> = names(cfg);
                        let before: BTreeSet<String> = names(&self.current.cfg);
                        return Ok(Ok(run::SideChange {
                            started: all.iter().cloned().collect(),
                            stopped: before.difference(&all).cloned().collect(),
                        }));
                    }
                    Err(reason) => {
                        if let Err(e) = g.stop().await {
                            tracing::warn!(error = %format!("{e:#}"), "the rolled-back run ended with an error");
                        }
                        ("source_failed", reason)
                    }
                }
            }
            Err(e) => ("start_failed", format!("{e:#}")),
        };
        let old = self.current.cfg.clone();
        let g = Generation::start(&old, &self.cancel)
            .await
            .context("the previous config no longer starts after a rollback")?;
        self.generation = Some(g);
        Ok(Err(failure))
    }

    async fn stop_generation(&mut self) {
        self.live.set(None, self.current.version);
        if let Some(g) = self.generation.take() {
            match g.stop().await {
                Ok(report) => eprint!("{}", report.render()),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "the run ended with an error"),
            }
        }
    }
}

/// Every source name of `cfg`.
fn names(cfg: &Config) -> BTreeSet<String> {
    cfg.wifi
        .iter()
        .map(|w| w.name.clone())
        .chain(cfg.portal.iter().map(|p| p.name.clone()))
        .chain(cfg.pos.iter().map(|p| p.name.clone()))
        .chain(cfg.counter.iter().map(|c| c.name.clone()))
        .collect()
}

/// Longest wait between start attempts on a full disk.
const SPACE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Starts the run; on a disk too full to open the store, waits for space and tries again
/// rather than exiting (a crash loop would exhaust systemd's start limit and leave the store
/// without its agent once space is back).
async fn start_when_there_is_space(
    cfg: &Config,
    cancel: &CancellationToken,
) -> anyhow::Result<Generation> {
    let mut wait = Duration::from_secs(1);
    loop {
        match Generation::start(cfg, cancel).await {
            Ok(g) => return Ok(g),
            Err(e) if out_of_space(&e) && !cancel.is_cancelled() => {
                tracing::error!(error = %format!("{e:#}"), retry_in_s = wait.as_secs(), "cannot start: the disk is full; waiting for space");
                tokio::select! {
                    _ = cancel.cancelled() => return Err(e),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(SPACE_RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` comes from a store out of space.
fn out_of_space(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<crate::store::StoreError>()
            .is_some_and(|s| s.is_out_of_space())
    })
}

/// Runs the service until `cancel` fires: the config in force, management over MQTT when
/// configured, and the applies it asks for.
pub async fn serve(config_path: &Path, cancel: CancellationToken) -> anyhow::Result<()> {
    let current = in_force(config_path)?;
    // One agent per data directory: a second one would open a new outbox epoch under the
    // first one's feet.
    let _lock = run::DataDirLock::acquire(&current.cfg.storage.data_dir)?;
    let started_ms = chrono::Utc::now().timestamp_millis();
    let live = Arc::new(Live::default());
    let outer = TaskTracker::new();
    let (apply_tx, mut apply_rx) = mpsc::channel::<Apply>(APPLY_QUEUE);
    let generation = start_when_there_is_space(&current.cfg, &cancel).await?;
    live.set(Some(&generation.running), current.version);
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    notifier.ready();
    // When the control loop started the apply it is busy with (ms on the monotonic clock of
    // `since`), 0 while it waits for work.
    let since = tokio::time::Instant::now();
    let busy_since = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(every) = notifier.watchdog_every() {
        // Fed only while the agent makes progress: the runtime runs tasks (this one), the
        // control loop is waiting or within its apply's time, and the pipeline thread turns
        // its loop. A wedged part misses the deadline and systemd restarts the agent.
        let (n, c, live, busy) = (
            notifier.clone(),
            cancel.clone(),
            live.clone(),
            busy_since.clone(),
        );
        let apply_limit = current
            .cfg
            .mqtt
            .as_ref()
            .map_or(crate::mgmt::config::DEFAULT_APPLY_TIMEOUT, |m| {
                m.apply_timeout
            })
            + APPLY_GRACE;
        outer.spawn(async move {
            let mut last_beats: Option<u64> = None;
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let started = busy.load(std::sync::atomic::Ordering::Relaxed);
                let now = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                let beats = live.get().flush.map(|g| g.beats());
                let (control_ok, pipeline_ok) =
                    progress(started, now, apply_limit, beats, last_beats);
                last_beats = beats.map(|(b, _)| b);
                if control_ok && pipeline_ok {
                    n.watchdog();
                } else {
                    tracing::error!(
                        control_ok,
                        pipeline_ok,
                        "the agent makes no progress: the watchdog is not fed"
                    );
                }
            }
        });
    }
    let refused: Vec<Stamp> = std::fs::read(config_dir(&current.cfg).join("refused.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(m) = &current.cfg.mqtt {
        crate::mgmt::spawn(
            &current.cfg,
            m,
            crate::mgmt::Hooks {
                live: live.clone(),
                apply: apply_tx.clone(),
                started_ms,
            },
            cancel.clone(),
            &outer,
        )?;
    }
    // SIGHUP: reload the config in force from disk, as the `reload` command does.
    #[cfg(unix)]
    {
        let (tx, c) = (apply_tx.clone(), cancel.clone());
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                outer.spawn(async move {
                    loop {
                        tokio::select! {
                            _ = c.cancelled() => return,
                            got = hup.recv() => if got.is_none() { return },
                        }
                        tracing::info!("SIGHUP: reloading the config");
                        let (reply, outcome) = oneshot::channel();
                        let request = Apply {
                            request: ApplyRequest::Reload,
                            reply,
                        };
                        if tx.try_send(request).is_err() {
                            tracing::warn!("SIGHUP: configs are being applied; send it again");
                            continue;
                        }
                        if let Ok(o) = outcome.await {
                            tracing::info!(result = o.result, error = ?o.error, reason = ?o.reason, "SIGHUP reload");
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP"),
        }
    }
    drop(apply_tx);
    let mut service = Service {
        config_path: config_path.to_path_buf(),
        apply_timeout: current
            .cfg
            .mqtt
            .as_ref()
            .map_or(crate::mgmt::config::DEFAULT_APPLY_TIMEOUT, |m| {
                m.apply_timeout
            }),
        current,
        generation: Some(generation),
        live,
        cancel: cancel.clone(),
        refused,
    };
    let mut applies_open = true;
    let result = loop {
        let pipeline_running = service
            .generation
            .as_ref()
            .is_some_and(|g| g.running.pipeline_running());
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            r = async {
                match service.generation.as_mut() {
                    Some(g) => g.running.pipeline_ended().await,
                    None => std::future::pending().await,
                }
            }, if pipeline_running => {
                match r {
                    Ok(()) => tracing::info!("radio sources drained; the agent keeps running until stopped"),
                    Err(e) => break Err(e),
                }
            }
            req = apply_rx.recv(), if applies_open => {
                let Some(req) = req else {
                    // No management (or it stopped): nothing asks any more.
                    applies_open = false;
                    continue;
                };
                let started = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
                busy_since.store(started, std::sync::atomic::Ordering::Relaxed);
                let applied = service.apply(req.request).await;
                busy_since.store(0, std::sync::atomic::Ordering::Relaxed);
                match applied {
                    Ok(outcome) => {
                        let _ = req.reply.send(outcome);
                    }
                    Err(e) => break Err(e),
                }
            }
        }
    };
    cancel.cancel();
    notifier.stopping();
    service.stop_generation().await;
    run::drain(&outer, RUN_STOP_DEADLINE).await;
    result
}

/// One source as `run --check` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Source name.
    pub name: String,
    /// Source kind.
    pub kind: String,
    /// Its state over the window.
    pub state: SourceState,
    /// What it read, and its failures and rejections, over the window.
    pub detail: String,
}

/// `store-edge run --check`: starts the config in force (the fleet config if one was applied),
/// watches every source for `window`, and stops. Needs the service stopped (it opens the same
/// store, devices and ports).
pub async fn check(config_path: &Path, window: Duration) -> anyhow::Result<Vec<Checked>> {
    let current = in_force(config_path)?;
    let _lock = run::DataDirLock::acquire(&current.cfg.storage.data_dir)?;
    let cancel = CancellationToken::new();
    let generation = Generation::start(&current.cfg, &cancel).await?;
    let radios: BTreeSet<String> = current
        .cfg
        .wifi
        .iter()
        .filter(|w| matches!(w.input, WifiInput::Interface(_)))
        .map(|w| w.name.clone())
        .collect();
    let watched: Vec<_> = generation
        .running
        .health()
        .sources()
        .into_iter()
        .map(|s| {
            let before: BTreeMap<String, u64> = s.values().into_iter().collect();
            (s, before)
        })
        .collect();
    tokio::select! {
        _ = tokio::time::sleep(window) => {}
        _ = run::shutdown_signal() => {}
    }
    let mut out = Vec::new();
    for (s, before) in &watched {
        let now: BTreeMap<String, u64> = s.values().into_iter().collect();
        let delta = deltas(before, &now);
        let state = judge(SourceState::Starting, &delta, radios.contains(&s.name));
        let moved: Vec<String> = delta
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push(Checked {
            name: s.name.clone(),
            kind: s.kind.to_string(),
            state,
            detail: if moved.is_empty() {
                "nothing read or failed".to_string()
            } else {
                moved.join(", ")
            },
        });
    }
    if let Err(e) = generation.stop().await {
        tracing::warn!(error = %format!("{e:#}"), "the check run ended with an error");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "[store]\nstore_id = \"s\"\n\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/x\"\n";

    #[test]
    fn the_watchdog_is_fed_only_on_progress() {
        let limit = Duration::from_secs(90);
        let table: &[(u64, u64, Option<(u64, bool)>, Option<u64>, (bool, bool))] = &[
            // Idle control loop, the pipeline turning.
            (0, 500_000, Some((12, false)), Some(10), (true, true)),
            // The pipeline stood still since the last check: wedged.
            (0, 500_000, Some((12, false)), Some(12), (true, false)),
            // …unless it has stopped (its sources drained).
            (0, 500_000, Some((12, true)), Some(12), (true, true)),
            // The first check, and between two runs.
            (0, 500_000, Some((3, false)), None, (true, true)),
            (0, 500_000, None, Some(12), (true, true)),
            // An apply within its limit, and one stuck past it.
            (450_000, 500_000, None, None, (true, true)),
            (400_000, 500_000, None, None, (false, true)),
        ];
        for &(busy, now, beats, last, want) in table {
            assert_eq!(
                progress(busy, now, limit, beats, last),
                want,
                "{busy} {now} {beats:?} {last:?}"
            );
        }
    }

    #[test]
    fn plans_follow_the_tables() {
        let cases: &[(&str, &str, bool, &[&str])] = &[
            (BASE, BASE, false, &[]),
            // Formatting and comments are not changes.
            (BASE, "# hi\n[store]\nstore_id   = \"s\"\n[[sources.counter]]\nport = \"/dev/x\"\nname = \"a\"\n", false, &[]),
            (BASE, "[store]\nstore_id = \"s\"\n\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/y\"\n", false, &["a"]),
            (BASE, "[store]\nstore_id = \"s\"\n", false, &["a"]),
            (BASE, "[store]\nstore_id = \"s\"\n\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/x\"\n[[sources.pos]]\nname = \"b\"\n", false, &["b"]),
            (BASE, "[store]\nstore_id = \"t\"\n\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/x\"\n", true, &[]),
            (BASE, "[store]\nstore_id = \"s\"\n[[sources.wifi]]\nname = \"w\"\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/x\"\n", false, &["w"]),
            (BASE, "[store]\nstore_id = \"s\"\n[metrics]\nx = 1\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/x\"\n", true, &[]),
            (BASE, "[store]\nstore_id = \"s\"\n[[sources.portal]]\nname = \"p\"\n[[sources.counter]]\nname = \"a\"\nport = \"/dev/y\"\n", false, &["a", "p"]),
        ];
        // Every source in these tables is named: its validated name is its `name`.
        let named = |text: &str| {
            let t: toml::Table = text.parse().unwrap();
            SourceNames(SOURCE_KINDS.map(|kind| {
                t.get("sources")
                    .and_then(|s| s.get(kind))
                    .and_then(|a| a.as_array())
                    .map_or(Vec::new(), |a| {
                        a.iter()
                            .map(|v| v["name"].as_str().unwrap().to_string())
                            .collect()
                    })
            }))
        };
        for (i, (old, new, full, changed)) in cases.iter().enumerate() {
            let p = plan((old, &named(old)), (new, &named(new))).unwrap();
            assert_eq!(p.full, *full, "case {i}");
            let want: BTreeSet<String> = changed.iter().map(|s| s.to_string()).collect();
            assert_eq!(p.changed, want, "case {i}");
            // Only "w" and "p" are Wi-Fi or portal sources in the table.
            let lanes = p.changed.contains("w") || p.changed.contains("p");
            assert_eq!(p.lanes, lanes, "case {i}");
        }
    }

    /// Unnamed sources are diffed under the names validation gives them: a changed unnamed
    /// counter is the source `counter-<door>` that the run restarts (keyed by a missing
    /// `name`, the change was `{""}`, matched nothing and restarted nothing), and two unnamed
    /// ones are two sources.
    #[test]
    fn unnamed_sources_are_planned_by_their_validated_names() {
        let d = tempfile::tempdir().unwrap();
        let unnamed = |doors: &[(&str, u16)]| {
            let mut text = gateway(d.path(), "gw", "main").replace("name = \"c\"\n", "");
            let first = text.find("[[sources.counter]]").unwrap();
            text.truncate(first);
            for (door, port) in doors {
                text.push_str(&format!(
                    "[[sources.counter]]\nprofile = \"counter/xovis-pc2s-v5\"\n\
                     door = \"{door}\"\nlisten = \"127.0.0.1:{port}\"\n"
                ));
            }
            let cfg = config::parse(&text, &d.path().join("config.toml")).unwrap();
            (text, cfg)
        };
        let changed = |old: &(String, Config), new: &(String, Config)| {
            let p = plan(
                (&old.0, &SourceNames::of(&old.1)),
                (&new.0, &SourceNames::of(&new.1)),
            )
            .unwrap();
            assert!(!p.full && !p.lanes);
            p.changed.into_iter().collect::<Vec<_>>()
        };
        let one = unnamed(&[("main", 9001)]);
        assert_eq!(one.1.counter[0].name, "counter-main");
        assert_eq!(changed(&one, &one), Vec::<String>::new());
        assert_eq!(changed(&one, &unnamed(&[("main", 9002)])), ["counter-main"]);
        let two = unnamed(&[("main", 9001), ("side", 9003)]);
        assert_eq!(changed(&one, &two), ["counter-side"]);
        let moved = unnamed(&[("main", 9001), ("side", 9004)]);
        assert_eq!(changed(&two, &moved), ["counter-side"]);
        assert_eq!(changed(&two, &unnamed(&[("side", 9003)])), ["counter-main"]);
    }

    /// A counter-only config in `dir` with the given gateway id and counter door.
    fn gateway(dir: &Path, gateway: &str, door: &str) -> String {
        std::fs::write(
            dir.join("secrets.toml"),
            "device_key_secret = \"11111111111111111111111111111111\"\n",
        )
        .unwrap();
        format!(
            "[store]\nstore_id = \"s\"\ngateway_id = \"{gateway}\"\ntimezone = \"UTC\"\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n[storage]\ndata_dir = \"data\"\n\
             [[sources.counter]]\nname = \"c\"\nprofile = \"counter/xovis-pc2s-v5\"\n\
             door = \"{door}\"\nlisten = \"127.0.0.1:0\"\n"
        )
    }

    #[test]
    fn the_config_in_force_at_start_up() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("config.toml");
        std::fs::write(&file, gateway(d.path(), "gw", "main")).unwrap();
        let dir = d.path().join("data").join("config");
        let door = |f: &InForce| f.cfg.counter[0].door.clone();
        // No fleet config: the file.
        let f = in_force(&file).unwrap();
        assert_eq!((f.version, door(&f)), (None, "main".to_string()));
        // An applied fleet config wins over the file.
        let fleet = gateway(d.path(), "gw", "fleet");
        let stamp = |text: &str, version: u64| {
            serde_json::to_vec(&Stamp {
                version,
                sha256: digest(text),
                at_ms: 0,
            })
            .unwrap()
        };
        write_atomic(&dir.join("applied.toml"), fleet.as_bytes()).unwrap();
        write_atomic(&dir.join("applied.json"), &stamp(&fleet, 4)).unwrap();
        let f = in_force(&file).unwrap();
        assert_eq!((f.version, door(&f)), (Some(4), "fleet".to_string()));
        // A push cut short before its verdict: discarded, the last applied runs.
        let pending = gateway(d.path(), "gw", "pending");
        write_atomic(&dir.join("pending.toml"), pending.as_bytes()).unwrap();
        let f = in_force(&file).unwrap();
        assert_eq!((f.version, door(&f)), (Some(4), "fleet".to_string()));
        assert!(!dir.join("pending.toml").exists());
        // Cut short between the stamp's rename and the text's: completed.
        write_atomic(&dir.join("pending.toml"), pending.as_bytes()).unwrap();
        write_atomic(&dir.join("applied.json"), &stamp(&pending, 5)).unwrap();
        let f = in_force(&file).unwrap();
        assert_eq!((f.version, door(&f)), (Some(5), "pending".to_string()));
        // A text that does not match its stamp, or a re-provisioned file: the file.
        std::fs::write(dir.join("applied.toml"), fleet.as_bytes()).unwrap();
        assert_eq!(in_force(&file).unwrap().version, None);
        write_atomic(&dir.join("applied.json"), &stamp(&fleet, 6)).unwrap();
        assert_eq!(in_force(&file).unwrap().version, Some(6));
        std::fs::write(&file, gateway(d.path(), "gw-new", "main")).unwrap();
        assert_eq!(in_force(&file).unwrap().version, None);
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config").join("applied.toml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("applied.toml")]);
    }

    #[test]
    fn outcomes_serialize_as_reported() {
        let o = Outcome::refused(
            "rejected",
            Some(3),
            Some(2),
            "bad_config",
            "sources.counter[0].intervall: unknown field".into(),
        );
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"result": "rejected", "version": 3, "running_version": 2,
                "error": "bad_config", "reason": "sources.counter[0].intervall: unknown field"})
        );
    }
}
