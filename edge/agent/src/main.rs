//! `store-edge`: the command line. Owns argument parsing, logging set-up, the tokio runtime and
//! the shutdown sequence; everything else lives in the `edge_agent` library (`src/lib.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use edge_agent::{calibrate, config, mgmt, pull, report, run, store, supervise, sync};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for tasks to commit and stop.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// The demo's fixed day: same seed, same date, same report on every machine.
const DEMO_SEED: u64 = 20_261_122;
/// The demo day's date.
const DEMO_DATE: (i32, u32, u32) = (2026, 11, 20);
/// Visitors in the demo day.
const DEMO_VISITORS: u32 = 300;
/// Zones in the demo store.
const DEMO_ZONES: u8 = 3;

#[derive(Parser)]
#[command(
    name = "store-edge",
    version,
    about = "Edge agent for physical retail stores: Wi-Fi presence, visits, dwell and paths, kept in SQLite."
)]
struct Cli {
    /// Log filter (e.g. `info`, `edge_agent=debug`); overrides RUST_LOG.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a store day, run the pipeline on it and print the report; then keep running
    /// until Ctrl-C.
    Demo {
        /// Stop after printing the report.
        #[arg(long)]
        exit: bool,
        /// Keep the generated directory here instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the agent on a config file.
    Run {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Replay the configured capture files, commit everything and exit.
        #[arg(long, conflicts_with = "check")]
        once: bool,
        /// Start every source of the config in force, watch them for `--check-for`, print
        /// each one's state and exit (1 if one is down). Stop the service first: the check
        /// opens the same store, devices and ports.
        #[arg(long)]
        check: bool,
        /// How long `--check` watches.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        check_for: std::time::Duration,
    },
    /// Write a synthetic store day: one pcap per zone, truth.json, config.toml, secrets.toml.
    Simulate {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Random seed: the same seed gives the same day, byte for byte.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Local date of the day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-11-20")]
        date: NaiveDate,
        /// Visitors who come in.
        #[arg(long, default_value_t = 300)]
        visitors: u32,
        /// Zone sniffers (1–6).
        #[arg(long, default_value_t = 3)]
        zones: u8,
        /// Passers-by outside the door (default: twice the visitors).
        #[arg(long)]
        passersby: Option<u32>,
        /// Staff devices present all day.
        #[arg(long)]
        staff: Option<u32>,
        /// Hours the store is open.
        #[arg(long)]
        open_hours: Option<u32>,
        /// Earlier days simulated before the date (staff history).
        #[arg(long)]
        history_days: Option<u32>,
        /// IANA time zone of the store.
        #[arg(long)]
        timezone: Option<chrono_tz::Tz>,
        /// Days simulated, ending on the date; shoppers return across them.
        #[arg(long)]
        days: Option<u32>,
        /// Share of each later day's visitors who visited on an earlier day (0–1).
        #[arg(long)]
        return_share: Option<f64>,
        /// Probe-only phones with randomized MACs change MAC about this often (seconds).
        #[arg(long)]
        mac_rotation: Option<u32>,
        /// How phones behave on the air: `realistic` (2026 mix: iOS 16- and Android 13-like
        /// phones with a new MAC per scan, older phones, laptops, fixed devices; see
        /// `edge_sim::PhoneMix`) or `legacy` (one MAC per visit or rotation, as phones did
        /// before per-scan randomization; every device can then be followed as a visit).
        #[arg(
            long,
            default_value = "realistic",
            value_parser = clap::builder::TypedValueParser::try_map(
                clap::builder::PossibleValuesParser::new(edge_sim::PhoneMix::NAMES),
                |s: String| s.parse::<edge_sim::PhoneMix>(),
            )
        )]
        phone_mix: edge_sim::PhoneMix,
        /// Instead of a store day: 11 phones in 7 fingerprint classes inside together for
        /// about 7 minutes, nobody else (a known answer for devices present); only `--seed`,
        /// `--date` and `--zones` apply.
        #[arg(long)]
        co_present: bool,
    },
    /// Print the day report of a data directory.
    Report {
        /// The data directory (`[storage] data_dir`).
        #[arg(long)]
        data_dir: PathBuf,
        /// Local date (default: the latest date with visits).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Only these local hours of the date: `10` or `10-13` (both included).
        #[arg(long, value_parser = parse_hours)]
        hours: Option<edge_core::report::HourWindow>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Calibrate people present from manual head counts: fits devices present → people on the
    /// counts, checks the fit on held-out days and stores it as the next calibration (stored
    /// presence bins from its first day get a new revision with people).
    Calibrate {
        /// The config file (data directory, time zone, zones).
        #[arg(long)]
        config: PathBuf,
        /// CSV of `time,people[,zone]`: store-local `YYYY-MM-DD HH:MM[:SS]`, people counted,
        /// and the zone (empty: the whole store).
        #[arg(long)]
        headcounts: PathBuf,
        /// First local date the calibration is in force (default: the first count's date).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Print the fit without storing it.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pull records from gateways' pull API as JSON lines (the reference cloud client).
    Pull {
        /// Gateway address, e.g. http://127.0.0.1:50051 (repeat for several gateways).
        #[arg(long, required = true)]
        endpoint: Vec<String>,
        /// Output: a JSON-lines file for one endpoint, a directory (one file per gateway) for
        /// several.
        #[arg(long, default_value = "records.jsonl")]
        out: PathBuf,
        /// State file keeping the cursor (default: the output with `.state`); one endpoint only.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Bearer token.
        #[arg(long, conflicts_with = "token_file")]
        token: Option<String>,
        /// File whose first line is the bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Records per request.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// Keep polling after catching up, every this many seconds, until Ctrl-C.
        #[arg(long)]
        follow: Option<u64>,
        /// CA certificate (PEM) for `https://` endpoints.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// Client certificate (PEM), for gateways that require mTLS.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// Client private key (PEM).
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Name the gateway certificate must carry (default: the endpoint's host).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Hardware profiles.
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
    },
}

#[derive(Subcommand)]
enum ProfilesCommand {
    /// Validate profile files (default: every embedded profile).
    Check {
        /// Profile files to check.
        paths: Vec<PathBuf>,
    },
}

fn parse_hours(s: &str) -> Result<edge_core::report::HourWindow, String> {
    edge_core::report::HourWindow::parse(s)
        .ok_or_else(|| format!("{s:?} is not an hour (0-23) or a range of hours like 10-13"))
}

/// Logs to stderr through a filter that `set-log-level` (MQTT management) can replace at run
/// time.
fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .init();
    mgmt::commands::install_log_reloader(Box::new(move |spec: &str| {
        let f = EnvFilter::try_new(spec).map_err(|e| format!("not a log filter: {e}"))?;
        handle
            .reload(f)
            .map_err(|e| format!("cannot change the log filter: {e}"))
    }));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Demo { exit, dir } => demo(exit, dir).await,
        Command::Run {
            config,
            check: true,
            check_for,
            ..
        } => check_cmd(&config, check_for).await,
        Command::Run { config, once, .. } => run_cmd(&config, once).await,
        Command::Simulate {
            out,
            seed,
            date,
            visitors,
            zones,
            passersby,
            staff,
            open_hours,
            history_days,
            timezone,
            days,
            return_share,
            mac_rotation,
            phone_mix,
            co_present,
        } => {
            if co_present {
                let mut p = edge_sim::SimParams::co_present_case(seed, date);
                p.zones = zones;
                if let Some(v) = timezone {
                    p.timezone = v;
                }
                return simulate(&p, &out).await.map(|_| ());
            }
            let mut p = edge_sim::SimParams::new(seed, date, visitors, zones);
            p.phone_mix = phone_mix;
            if let Some(v) = passersby {
                p.passersby = v;
            }
            if let Some(v) = staff {
                p.staff = v;
            }
            if let Some(v) = open_hours {
                p.open_hours = v;
            }
            if let Some(v) = history_days {
                p.history_days = v;
            }
            if let Some(v) = days {
                p.days = v;
            }
            if let Some(v) = return_share {
                p.return_share = v;
            }
            p.mac_rotation_secs = mac_rotation;
            if let Some(v) = timezone {
                p.timezone = v;
            }
            simulate(&p, &out).await.map(|_| ())
        }
        Command::Report {
            data_dir,
            date,
            hours,
            json,
        } => {
            let r = report::day_report(&data_dir, date, hours)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r.day)?);
            } else {
                print!("{}", r.day.render_text(&r.store_id));
            }
            Ok(())
        }
        Command::Calibrate {
            config,
            headcounts,
            from,
            dry_run,
            json,
        } => calibrate_cmd(&config, &headcounts, from, dry_run, json),
        Command::Profiles {
            command: ProfilesCommand::Check { paths },
        } => profiles_check(&paths),
        Command::Pull {
            endpoint,
            out,
            state,
            token,
            token_file,
            limit,
            follow,
            ca_cert,
            cert,
            key,
            domain,
        } => {
            let read =
                |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let tls = match (ca_cert, cert, key) {
                (None, None, None) => None,
                (Some(ca), cert, key) => Some(pull::ClientTls {
                    ca_pem: read(&ca)?,
                    identity: match (cert, key) {
                        (Some(c), Some(k)) => Some((read(&c)?, read(&k)?)),
                        _ => None,
                    },
                    domain,
                }),
                (None, _, _) => anyhow::bail!("--cert/--key need --ca-cert"),
            };
            pull_cmd(endpoint, out, state, token, token_file, limit, follow, tls).await
        }
    }
}

async fn simulate(p: &edge_sim::SimParams, out: &Path) -> anyhow::Result<PathBuf> {
    p.validate()
        .map_err(|e| anyhow::anyhow!("simulation parameters: {e}"))?;
    let (p, out) = (p.clone(), out.to_path_buf());
    let written = tokio::task::spawn_blocking(move || {
        let day = edge_sim::generate(&p);
        day.write(&out)
            .with_context(|| format!("writing the simulated day to {}", out.display()))
    })
    .await
    .context("simulator thread panicked")??;
    let frames: u64 = written.files.iter().map(|f| f.frames).sum();
    eprintln!(
        "simulated {} visits ({} frames in {} pcap files); truth: {}; config: {}",
        written.truth.visits.len(),
        frames,
        written.files.len(),
        written.truth_path.display(),
        written.config_path.display()
    );
    Ok(written.config_path)
}

/// Runs the agent on a config; `--once` returns when the files are drained, otherwise the
/// agent runs until Ctrl-C / SIGTERM.
async fn run_cmd(config_path: &Path, once: bool) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let signal = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            run::shutdown_signal().await;
            tracing::info!("shutting down");
            cancel.cancel();
        })
    };
    if !once {
        // As a service: the config in force, pushes and reloads, until stopped.
        let result = supervise::serve(config_path, cancel.clone()).await;
        signal.abort();
        return result;
    }
    let cfg = config::load(config_path)?;
    let _lock = run::DataDirLock::acquire(&cfg.storage.data_dir)?;
    let tracker = TaskTracker::new();
    let opts = run::RunOptions {
        once,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let result = run::run(&cfg, opts, cancel.clone(), &tracker).await;
    if let Ok(r) = &result {
        eprint!("{}", r.render());
    }
    cancel.cancel();
    run::drain(&tracker, SHUTDOWN_DEADLINE).await;
    signal.abort();
    result.map(|_| ())
}

/// `run --check`: each source's state over a short window, as a table on stdout.
async fn check_cmd(config_path: &Path, window: std::time::Duration) -> anyhow::Result<()> {
    eprintln!(
        "store-edge: starting every source of {} and watching them for {window:?}",
        config_path.display()
    );
    let checked = supervise::check(config_path, window).await?;
    let width = checked
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:width$}  {:8}  {:8}  over the check",
        "source", "kind", "state"
    );
    for c in &checked {
        println!(
            "{:width$}  {:8}  {:8}  {}",
            c.name,
            c.kind,
            c.state.label(),
            c.detail
        );
    }
    let down: Vec<&str> = checked
        .iter()
        .filter(|c| c.state.is_down())
        .map(|c| c.name.as_str())
        .collect();
    if down.is_empty() {
        println!("every source is up or idle (idle: nothing arrived yet, e.g. a push counter)");
        Ok(())
    } else {
        anyhow::bail!("{} source(s) down: {}", down.len(), down.join(", "))
    }
}

async fn demo(exit: bool, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile_dir()?;
            tmp.path().to_path_buf()
        }
    };
    let (y, m, d) = DEMO_DATE;
    let date = NaiveDate::from_ymd_opt(y, m, d).context("demo date")?;
    let p = edge_sim::SimParams::new(DEMO_SEED, date, DEMO_VISITORS, DEMO_ZONES);
    eprintln!(
        "store-edge demo: simulating a store day in {}",
        dir.display()
    );
    let config_path = simulate(&p, &dir).await?;
    eprintln!(
        "store-edge demo: WARNING: the device-key and tenant secrets of this demo were generated from the simulation seed and are not secret; person keys made with them mean nothing outside the demo. A real gateway reads its secrets from privacy.secrets_file or the environment."
    );
    let cfg = config::load(&config_path)?;
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let opts = run::RunOptions {
        once: true,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let r = run::run(&cfg, opts, cancel.clone(), &tracker).await?;
    eprint!("{}", r.render());
    let rep = report::day_report(&cfg.storage.data_dir, Some(date), None)?;
    println!();
    print!("{}", rep.day.render_text(&rep.store_id));
    println!();
    println!("data directory: {}", cfg.storage.data_dir.display());
    println!(
        "again: store-edge report --data-dir {} [--json]",
        cfg.storage.data_dir.display()
    );
    if !exit && cfg.sync.enabled {
        let store = std::sync::Arc::new(
            store::open(&cfg.storage.data_dir).context("reopening the store for the pull API")?,
        );
        // Nothing is captured live after the demo's replay, so no live events; Subscribe
        // still works and stays open.
        let live = sync::live::LiveHub::new(sync::live::LIVE_QUEUE);
        let addr = sync::spawn(
            &cfg.sync,
            cfg.storage.data_dir.clone(),
            store,
            live,
            cancel.clone(),
            &tracker,
        )
        .await?;
        println!("pull API (gRPC, no auth, loopback): http://{addr}  (try: store-edge pull --endpoint http://{addr} --out records.jsonl)");
    }
    if !exit {
        println!("the agent keeps running; press Ctrl-C to stop");
        run::shutdown_signal().await;
    }
    cancel.cancel();
    run::drain(&tracker, SHUTDOWN_DEADLINE).await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn pull_cmd(
    endpoints: Vec<String>,
    out: PathBuf,
    state: Option<PathBuf>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    limit: u32,
    follow: Option<u64>,
    tls: Option<pull::ClientTls>,
) -> anyhow::Result<()> {
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .with_context(|| format!("reading token file {}", f.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        None => token,
    };
    let opts = pull::PullOptions {
        token,
        limit: limit.max(1),
        follow: follow.map(Duration::from_secs),
        tls,
    };
    let paths = pull::paths_for(&endpoints, &out, state.as_deref())?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            run::shutdown_signal().await;
            cancel.cancel();
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (endpoint, (out, state)) in endpoints.into_iter().zip(paths) {
        let (opts, cancel) = (opts.clone(), cancel.clone());
        tasks.spawn(async move {
            let r = pull::pull_one(&endpoint, &out, &state, &opts, &cancel).await;
            (endpoint, out, r)
        });
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        let (endpoint, out, r) = done.context("pull task panicked")?;
        match r {
            Ok(n) => eprintln!("{endpoint}: {n} new records in {}", out.display()),
            Err(e) => {
                failed += 1;
                eprintln!("{endpoint}: error: {e:#}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} endpoint(s) failed");
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("store-edge-demo-")
        .tempdir()
        .context("creating a temporary directory")
}

fn profiles_check(paths: &[PathBuf]) -> anyhow::Result<()> {
    if paths.is_empty() {
        for (id, text) in config::profiles::EMBEDDED {
            config::profiles::check_embedded(id, text)?;
            println!("ok  {id} (embedded)");
        }
        return Ok(());
    }
    let mut failed = 0;
    for p in paths {
        match config::profiles::check_file(p) {
            Ok(()) => println!("ok  {}", p.display()),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} profiles failed validation", paths.len());
    }
    Ok(())
}

/// `calibrate`: fails (exit 1) when the fit is refused, after printing why.
fn calibrate_cmd(
    config_path: &Path,
    headcounts: &Path,
    from: Option<NaiveDate>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let cfg = config::load(config_path)?;
    let counts = calibrate::read_headcounts(headcounts, cfg.timezone, &cfg.zones())?;
    let out = calibrate::calibrate(
        &cfg.storage.data_dir,
        cfg.timezone,
        &counts,
        from,
        dry_run,
        chrono::Utc::now().timestamp_millis(),
    )
    .with_context(|| format!("calibrating {}", cfg.storage.data_dir.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", out.render());
    }
    match out.refused_reason {
        Some(reason) => anyhow::bail!("calibration refused: {reason}"),
        None => Ok(()),
    }
}
