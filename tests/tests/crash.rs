//! The crash test of issue 9: `kill -9` the agent at two dozen random moments of a large replay
//! (Wi-Fi captures, a portal log, a POS capture and door counter recordings), restarting it each
//! time on the same data directory, with the reference cloud client pulling from it now and
//! then while it runs; then finish the replay and pull everything. Nothing the gateway committed
//! is lost, nothing is doubled once applied idempotently, the database passes
//! `PRAGMA integrity_check` after every kill, and the records, the visits and the day reports
//! equal those of a clean run.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edge_e2e::{
    bin, count, logged_port, open_db, path_str, read_truth, report_json, run_once, simulate,
    visits, Agent,
};
use serde_json::Value;

/// Seed of the simulated day.
const DAY_SEED: u64 = 91;
/// Visitors of the day: with three zones and one history day a clean `run --once` replays
/// about 500 000 frames into some 2 400 visits, a few seconds in a debug build.
const VISITORS: u32 = 800;
/// Seed of the kill moments: fixed, so that a failure replays much the same way.
const KILL_SEED: u64 = 0x5eed_c4a5_4e55_0009;
/// Kills aimed at, and the fewest that must land while the replay is still running.
const KILLS: usize = 25;
const MIN_KILLS: usize = 20;
/// Every this many restarts runs as a service (pull API up) that the cloud pulls from.
const SERVICE_EVERY: usize = 4;
/// `[storage] checkpoint_interval` of the test configs, and the commit interval below it: a
/// kill lands after commits that no checkpoint covers yet, so a restart replays frames whose
/// visits are already stored.
const CHECKPOINT: Duration = Duration::from_millis(120);
const COMMIT: Duration = Duration::from_millis(50);

/// splitmix64: a seeded generator for the kill moments (no dependency for a dozen numbers).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `config-<name>.toml` beside the simulated files: the simulator's config (every
/// source kind) with its own data directory, short commit and checkpoint intervals, and the
/// pull API (used in service mode only) on a free loopback port with frequent health
/// snapshots, so that those records are produced while the gateway is pulled too.
fn config(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    for table in [
        "[[sources.wifi]]",
        "[[sources.portal]]",
        "[[sources.pos]]",
        "[[sources.counter]]",
    ] {
        assert!(text.contains(table), "the simulated config has no {table}");
    }
    let storage = format!(
        "data_dir = \"data-{name}\"\ncommit_interval = \"{}ms\"\ncheckpoint_interval = \"{}ms\"",
        COMMIT.as_millis(),
        CHECKPOINT.as_millis()
    );
    let mut text = text.replace("data_dir = \"data\"", &storage);
    assert!(text.contains(&storage), "{text}");
    text.push_str("\n[sync]\nlisten = \"127.0.0.1:0\"\nhealth_interval = \"1s\"\n");
    let path = dir.join(format!("config-{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What a cloud keeps when it upserts the records it pulls by their idempotency key, as the
/// design asks of it (kind + natural key + revision).
#[derive(Default, Clone)]
struct Cloud {
    /// Record by idempotency key, without the fields that belong to one delivery.
    records: BTreeMap<String, Value>,
    /// Lines applied, and those naming a record already held (with the same content).
    received: usize,
    redelivered: usize,
}

impl Cloud {
    /// Applies a `store-edge pull` output. A record whose identity is held with another
    /// content is a conflicting duplicate: the upsert would silently change data.
    fn apply_file(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let key = v["idempotency_key"].as_str().unwrap().to_string();
            assert_eq!(
                key,
                format!(
                    "{}/{}/{}",
                    v["kind"].as_str().unwrap(),
                    v["record_key"].as_str().unwrap(),
                    v["revision"]
                ),
                "an idempotency key that is not kind/record key/revision"
            );
            let o = v.as_object_mut().unwrap();
            // The position of the record in one database and outbox epoch (outbox id, epoch,
            // seq): the same record delivered again after an epoch change, or stored by
            // another database, has another cursor.
            o.remove("cursor");
            // The wall-clock time of the commit that stored it: another run stores the same
            // record at another moment.
            o.remove("created_ms");
            self.received += 1;
            match self.records.get(&key) {
                Some(held) => {
                    assert_eq!(held, &v, "two different records with identity {key}");
                    self.redelivered += 1;
                }
                None => {
                    self.records.insert(key, v);
                }
            }
        }
    }

    fn of(path: &Path) -> Cloud {
        let mut c = Cloud::default();
        c.apply_file(path);
        c
    }

    /// Records other than health snapshots (which describe the gateway process at one
    /// moment: its start time, clock, counters and disk, different in every run).
    fn data(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.records.iter().filter(|(_, v)| v["kind"] != "health")
    }

    /// Per (kind, record key): the newest revision held and its body.
    fn latest(&self) -> BTreeMap<(String, String), (u64, &Value)> {
        let mut out: BTreeMap<(String, String), (u64, &Value)> = BTreeMap::new();
        for (_, v) in self.data() {
            let k = (
                v["kind"].as_str().unwrap().to_string(),
                v["record_key"].as_str().unwrap().to_string(),
            );
            let rev = v["revision"].as_u64().unwrap();
            if out.get(&k).is_none_or(|(r, _)| *r < rev) {
                out.insert(k, (rev, &v["body"]));
            }
        }
        out
    }

    /// Natural keys whose revisions are not consecutive from the first one their kind issues:
    /// a revision went missing. Sealed hours, counter intervals and presence bins start at
    /// revision 1 (edge-core's aggregate and counter models, the store's presence records),
    /// visits and purchases at 0.
    fn gaps(&self) -> Vec<String> {
        let mut revs: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
        for (_, v) in self.data() {
            revs.entry((
                v["kind"].as_str().unwrap().to_string(),
                v["record_key"].as_str().unwrap().to_string(),
            ))
            .or_default()
            .insert(v["revision"].as_u64().unwrap());
        }
        revs.into_iter()
            .filter(|((kind, _), r)| {
                let first = u64::from(kind == "hourly" || kind == "counter" || kind == "presence");
                !r.iter().copied().eq(first..first + r.len() as u64)
            })
            .map(|((kind, key), r)| format!("{kind}/{key}: revisions {r:?}"))
            .collect()
    }
}

/// How the records `b` holds differ from those `a` holds, health snapshots aside.
///
/// Visits, hourly aggregates and counter intervals depend on the input only: the same
/// identities with the same contents. A purchase's revisions depend on whether its receipt
/// reached the store before the visit it belongs to (revision 0 unattributed, then revision 1
/// attributing it) or after (revision 0 attributed at once); after a kill the POS replay and
/// the Wi-Fi replay resume from their own checkpoints, so that order may change. What the
/// cloud ends up with (the newest revision of each purchase) must be the same. Presence bins
/// likewise: the door calibration of a date is made once the counts reach it, which may come
/// before or after that date's first bins are stored (a bin stored first gets a second revision
/// with people); the newest revision of each bin says the same, its revision number aside.
fn differences(a: &Cloud, b: &Cloud) -> Vec<String> {
    let mut out = Vec::new();
    let exact = |c: &Cloud| -> BTreeMap<String, Value> {
        c.data()
            .filter(|(_, v)| v["kind"] != "purchase" && v["kind"] != "presence")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let (ea, eb) = (exact(a), exact(b));
    for key in ea.keys().chain(eb.keys()).collect::<BTreeSet<_>>() {
        match (ea.get(key), eb.get(key)) {
            (Some(x), Some(y)) if x != y => out.push(format!("{key} differs: {x} vs {y}")),
            (Some(_), None) => out.push(format!("{key} missing")),
            (None, Some(_)) => out.push(format!("{key} extra")),
            _ => {}
        }
    }
    let (la, lb) = (a.latest(), b.latest());
    let unnumbered = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("revision");
        }
        v
    };
    for key in la.keys().chain(lb.keys()).collect::<BTreeSet<_>>() {
        match (la.get(key), lb.get(key)) {
            (Some((_, x)), Some((_, y))) if unnumbered(x) != unnumbered(y) => {
                out.push(format!("newest {key:?} differs: {x} vs {y}"));
            }
            (Some(_), None) => out.push(format!("{key:?} missing")),
            (None, Some(_)) => out.push(format!("{key:?} extra")),
            _ => {}
        }
    }
    out
}

/// `store-edge pull` into `out` (state beside it), `limit` records per request.
fn pull(endpoint: &str, out: &Path, limit: u32) -> Command {
    let mut c = Command::new(bin());
    c.args(["pull", "--endpoint", endpoint, "--out", path_str(out)])
        .args(["--limit", &limit.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    c
}

/// Pulls everything `endpoint` holds after what `out` already has; insists it succeeds.
fn pull_all(endpoint: &str, out: &Path) -> String {
    let o = pull(endpoint, out, 500).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "pull failed: {err}");
    err
}

/// `PRAGMA integrity_check` of the database in `data` (opened read-only).
fn integrity(data: &Path) -> String {
    open_db(data)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Outbox identities stored more than once.
fn outbox_duplicates(data: &Path) -> Vec<(String, String, i64, i64)> {
    let db = open_db(data);
    let mut st = db
        .prepare(
            "SELECT kind, record_key, revision, count(*) FROM outbox
             GROUP BY kind, record_key, revision HAVING count(*) > 1",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

/// Share of the Wi-Fi frames behind the last checkpoint (where a restart resumes from); 0
/// while there is no database, or no checkpoint, yet.
fn progress(data: &Path, frames: &BTreeMap<String, u64>) -> f64 {
    let db = data.join("store-edge.db");
    if !db.exists() {
        return 0.0;
    }
    let read = || -> rusqlite::Result<u64> {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut st = c.prepare("SELECT source, position FROM source_checkpoints")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut done = 0;
        for row in rows {
            let (source, position) = row?;
            if frames.contains_key(&source) {
                done += position as u64;
            }
        }
        Ok(done)
    };
    // Not migrated yet, or caught mid-start: nothing checkpointed as far as we know.
    read().unwrap_or(0) as f64 / frames.values().sum::<u64>().max(1) as f64
}

/// Fails if the log at `path` shows a panic.
fn assert_no_panic_in(path: &Path) {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "{} shows a panic:\n{log}",
        path.display()
    );
}

/// Waits up to `limit` for `child` to exit; kills it and fails if it does not.
fn wait_bounded(child: &mut Child, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a service cleanly (SIGTERM) and checks it did not panic.
fn stop(agent: Agent) {
    agent.stop_cleanly();
}

/// One restart of the crash loop and how it ended.
struct Kill {
    service: bool,
    /// Checkpointed share of the frames when it started.
    before: f64,
    /// Checkpointed share of the frames the kill waited for.
    target: f64,
    /// Time from the start to the kill.
    after: Duration,
    /// The agent was still replaying when it was killed.
    landed: bool,
    /// Checkpointed share of the frames after the kill.
    progress: f64,
}

/// How a pull against a service of the crash loop went.
struct Pulled {
    /// It got everything up to the head (else the kill cut it off).
    completed: bool,
    /// It met a cursor of an older epoch and resumed where the gateway said.
    refused: bool,
}

/// The gateway the crash loop restarts, and where its cloud keeps what it pulls.
struct Crashed<'a> {
    config: &'a Path,
    data: &'a Path,
    /// Wi-Fi frames per source (by zone name, which is the source name).
    frames: &'a BTreeMap<String, u64>,
    cloud_out: &'a Path,
}

/// Runs the agent (`run --once`, or as a service with a pull against it) and SIGKILLs it
/// `extra` after the checkpointed share of the frames reached `target`; its stderr goes to
/// `log`. Gives when it was killed and how it went.
fn run_and_kill(
    gw: &Crashed<'_>,
    service: bool,
    target: f64,
    extra: Duration,
    log: &Path,
) -> (Duration, bool, Option<Pulled>) {
    let started = Instant::now();
    let mut args = vec!["run", "--config", path_str(gw.config)];
    if !service {
        args.push("--once");
    }
    let mut agent = Command::new(bin())
        .args(&args)
        // The service logs where its pull API listens, and when its sources drained.
        .env("RUST_LOG", if service { "info" } else { "warn" })
        .env_remove("STORE_EDGE_DEVICE_KEY_SECRET")
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut puller: Option<(Child, PathBuf)> = None;
    let mut kill_at: Option<Instant> = None;
    let out_len = || std::fs::metadata(gw.cloud_out).map_or(0, |m| m.len());
    let pulled_before = out_len();
    loop {
        if service && puller.is_none() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find(|l| l.contains("pull API listening"))
                .and_then(logged_port)
            {
                // Small batches: the kill cuts the pull off mid-stream as often as not.
                let plog = log.with_extension("pull.log");
                let child = pull(&format!("http://127.0.0.1:{port}"), gw.cloud_out, 40)
                    .stderr(File::create(&plog).unwrap())
                    .spawn()
                    .unwrap();
                puller = Some((child, plog));
            }
        }
        if agent.try_wait().unwrap().is_some() {
            break; // finished by itself
        }
        // A service is not killed before its pull got something (or caught up and ended):
        // then the cloud's state moves on between restarts.
        let pulling = !service
            || puller
                .as_mut()
                .is_some_and(|(c, _)| out_len() > pulled_before || c.try_wait().unwrap().is_some());
        let now = Instant::now();
        match kill_at {
            Some(t) if now >= t => break,
            Some(_) => {}
            None if pulling && progress(gw.data, gw.frames) >= target => {
                kill_at = Some(now + extra);
            }
            None => {}
        }
        if now.duration_since(started) > Duration::from_secs(120) {
            let _ = agent.kill();
            panic!(
                "no checkpoint past {target} (or no pull) within 2 minutes:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = started.elapsed();
    let running = agent.try_wait().unwrap().is_none();
    let drained = service
        && std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("sources drained");
    let _ = agent.kill(); // SIGKILL: no chance to commit anything more
    let status = agent.wait().unwrap();
    assert_no_panic_in(log);
    if !running {
        // Finished by itself before the kill: the replay is complete.
        assert!(
            status.success(),
            "run failed: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    let mut pulled = None;
    if let Some((mut child, plog)) = puller {
        // The gateway is gone: the client ends, with an error if it was cut off.
        wait_bounded(&mut child, "the pull client", Duration::from_secs(60));
        assert_no_panic_in(&plog);
        let log = std::fs::read_to_string(&plog).unwrap_or_default();
        pulled = Some(Pulled {
            completed: child.wait().unwrap().success(),
            refused: log.contains("cursor refused"),
        });
    }
    (after, running && !drained, pulled)
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_doubles_nothing() {
    bin(); // built (if need be) before anything is timed
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let mut p = edge_sim::SimParams::new(DAY_SEED, date, VISITORS, 3);
    p.history_days = 1;
    let w = simulate(dir.path(), &p);
    println!("simulated the day in {} ms", t0.elapsed().as_millis());
    let truth = read_truth(&w.truth_path);
    let frames: BTreeMap<String, u64> =
        w.files.iter().map(|f| (f.zone.clone(), f.frames)).collect();
    let (config_a, config_b) = (config(dir.path(), "a"), config(dir.path(), "b"));
    let (data_a, data_b) = (dir.path().join("data-a"), dir.path().join("data-b"));

    // The clean run, and what a cloud pulls from it.
    let t = Instant::now();
    run_once(&config_a);
    let clean = t.elapsed();
    let agent = Agent::start(&config_a);
    let pulled_a = dir.path().join("a.jsonl");
    pull_all(&agent.endpoint, &pulled_a);
    stop(agent);
    let a = Cloud::of(&pulled_a);
    assert_eq!(
        a.redelivered, 0,
        "a fresh pull of the clean run doubled records"
    );
    let kinds: BTreeSet<&str> = a.data().map(|(_, v)| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["counter", "hourly", "presence", "purchase", "visit"]),
        "the clean run did not produce every kind of record"
    );
    println!(
        "clean run: {} ms; {} records pulled ({} besides health snapshots), {} visits",
        clean.as_millis(),
        a.records.len(),
        a.data().count(),
        visits(&data_a).len()
    );

    // The crash loop on another data directory, never wiped. Restart i is killed at a random
    // moment (within a checkpoint interval: between checkpoints, often after commits that no
    // checkpoint covers) after the checkpoints passed a random share of the replay in the
    // i-th of KILLS equal slices of its first 90 %: the kills spread over the replay however
    // fast this machine is today, and the last tenth is left for the final restarts to be
    // killed in before the replay ends. A restart that begins past its share already is
    // killed during its start-up (opening the store, a new outbox epoch, the restore).
    let mut rng = Rng(KILL_SEED);
    let targets: Vec<f64> = (0..KILLS)
        .map(|i| 0.9 * (i as f64 + rng.between(0.0, 1.0)) / KILLS as f64)
        .collect();
    let cloud_out = dir.path().join("cloud.jsonl");
    let gw = Crashed {
        config: &config_b,
        data: &data_b,
        frames: &frames,
        cloud_out: &cloud_out,
    };
    let mut kills: Vec<Kill> = Vec::new();
    let mut pulls: Vec<Pulled> = Vec::new();
    let t = Instant::now();
    for (i, target) in targets.into_iter().enumerate() {
        let extra = Duration::from_secs_f64(rng.between(0.0, CHECKPOINT.as_secs_f64()));
        let before = progress(&data_b, &frames);
        let service = i % SERVICE_EVERY == SERVICE_EVERY - 1;
        let log = dir.path().join(format!("run-{i}.log"));
        let (after, landed, pulled) = run_and_kill(&gw, service, target, extra, &log);
        pulls.extend(pulled);
        // Whatever moment the kill hit, the file is a sound database.
        if data_b.join("store-edge.db").exists() {
            assert_eq!(integrity(&data_b), "ok", "after kill {i}");
        }
        kills.push(Kill {
            service,
            before,
            target,
            after,
            landed,
            progress: progress(&data_b, &frames),
        });
        if !landed {
            break; // the replay finished before the kill
        }
    }
    let crash_loop = t.elapsed();
    for (i, k) in kills.iter().enumerate() {
        println!(
            "restart {i:2}: {} from {:5.1}% of the frames checkpointed, aimed past {:4.1}%, killed after {:4} ms{}; {:5.1}% checkpointed then",
            if k.service { "service   " } else { "run --once" },
            100.0 * k.before,
            100.0 * k.target,
            k.after.as_millis(),
            if k.landed { "" } else { " (too late: replay done)" },
            100.0 * k.progress
        );
    }
    let landed = kills.iter().filter(|k| k.landed).count();
    println!(
        "{landed} kills landed mid-replay ({} of them in service mode, {} after a checkpoint of the restart itself) in {} ms; {} pulls between kills ({} completed, {} met a stale cursor)",
        kills.iter().filter(|k| k.landed && k.service).count(),
        kills.iter().filter(|k| k.landed && k.progress > k.before).count(),
        crash_loop.as_millis(),
        pulls.len(),
        pulls.iter().filter(|p| p.completed).count(),
        pulls.iter().filter(|p| p.refused).count()
    );
    assert!(
        landed >= MIN_KILLS,
        "only {landed} kills landed while the replay ran"
    );
    let served = Cloud::of(&cloud_out);
    assert!(
        !served.records.is_empty(),
        "no pull between the kills got anything"
    );

    // Finish the replay, then pull everything: the cloud that pulled between the kills
    // resumes, and a new one pulls from scratch.
    let out = run_once(&config_b);
    println!(
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains(" frames in "))
            .unwrap_or("")
    );
    // The cloud's last cursor is of an epoch before the final run's (every kill was unclean).
    let state: Value = std::fs::read_to_string(cloud_out.with_extension("state"))
        .map_or(Value::Null, |s| serde_json::from_str(&s).unwrap());
    let agent = Agent::start(&config_b);
    let resumed = pull_all(&agent.endpoint, &cloud_out);
    if state["cursor"].as_str().is_some_and(|c| !c.is_empty()) {
        assert!(
            resumed.contains("cursor refused"),
            "the epoch change was not met: {resumed}"
        );
    }
    let fresh_out = dir.path().join("fresh.jsonl");
    pull_all(&agent.endpoint, &fresh_out);
    stop(agent);
    let cloud = Cloud::of(&cloud_out);
    let fresh = Cloud::of(&fresh_out);
    assert_eq!(
        fresh.redelivered, 0,
        "a fresh pull delivered a record twice"
    );
    assert_eq!(
        outbox_duplicates(&data_b),
        vec![],
        "identities stored twice"
    );
    assert_eq!(integrity(&data_b), "ok");
    assert_eq!(integrity(&data_a), "ok");

    // Nothing the gateway served was lost or changed later...
    let lost: Vec<&String> = served
        .records
        .iter()
        .chain(&cloud.records)
        .filter(|(k, v)| fresh.records.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(lost.is_empty(), "served, then lost or changed: {lost:?}");
    // ...and the cloud that pulled across the crashes holds everything the gateway holds
    // (health snapshots taken after its last pull aside).
    let missed: Vec<&String> = fresh
        .data()
        .filter(|(k, _)| !cloud.records.contains_key(*k))
        .map(|(k, _)| k)
        .collect();
    assert!(missed.is_empty(), "never pulled: {missed:?}");
    assert_eq!(a.gaps(), Vec::<String>::new(), "revision gaps, clean run");
    assert_eq!(cloud.gaps(), Vec::<String>::new(), "revision gaps");

    // The comparison would see one record lost, or one changed.
    let first = cloud.data().next().unwrap().0.clone();
    let mut broken = cloud.clone();
    broken.records.remove(&first);
    assert!(!differences(&a, &broken).is_empty());
    let mut broken = cloud.clone();
    broken.records.get_mut(&first).unwrap()["body"]["changed"] = Value::Bool(true);
    assert!(!differences(&a, &broken).is_empty());

    let diff = differences(&a, &cloud);
    assert!(
        diff.is_empty(),
        "{} differences from the clean run, first ones: {:#?}",
        diff.len(),
        &diff[..diff.len().min(10)]
    );
    assert_eq!(visits(&data_b), visits(&data_a));
    // The reports of every date the replay stored visits on (the history day too).
    let dates: Vec<String> = {
        let db = open_db(&data_a);
        let mut st = db
            .prepare("SELECT DISTINCT local_date FROM visits ORDER BY local_date")
            .unwrap();
        let dates = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        dates
    };
    assert!(dates.contains(&truth.date), "{dates:?}");
    for day in &dates {
        assert_eq!(
            report_json(&data_b, day),
            report_json(&data_a, day),
            "report of {day}"
        );
    }
    let purchase_revisions = |c: &Cloud| c.data().filter(|(_, v)| v["kind"] == "purchase").count();
    println!(
        "records besides health snapshots: clean run {}, crashed run {} ({} pulled between the kills; {} lines pulled across {} epochs, {} of them redelivered and upserted); purchase revisions {} vs {}; {} visits and the reports of {} dates equal",
        a.data().count(),
        cloud.data().count(),
        served.records.len(),
        cloud.received,
        open_db(&data_b)
            .query_row("SELECT max(epoch) FROM outbox_epochs", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        cloud.redelivered,
        purchase_revisions(&a),
        purchase_revisions(&cloud),
        visits(&data_b).len(),
        dates.len()
    );
    // Source counters are diagnostics, not records: they are committed with checkpoints and
    // restored from them, but a file reader counts frames when it reads them, ahead of the
    // pipeline (up to its channel), so frames read before a kill and read again after it are
    // counted twice. They never count less than a clean run.
    for source in ["entrance", "apparel", "checkout"] {
        let get = |data: &std::path::Path| {
            edge_e2e::counters(data, source)
                .into_iter()
                .find(|(n, _)| n == "frames_read")
                .map_or(0, |(_, v)| v)
        };
        let (ra, rb) = (get(&data_a), get(&data_b));
        println!("{source}: frames_read clean {ra}, crashed {rb}");
        assert!(ra > 0 && rb >= ra, "{source}: {ra} vs {rb}");
    }
    println!(
        "outbox rows: clean {}, crashed {}; total {} ms",
        count(&data_a, "outbox"),
        count(&data_b, "outbox"),
        t0.elapsed().as_millis()
    );
}
