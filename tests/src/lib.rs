//! Shared helpers for the end-to-end tests: building and running the real `store-edge` binary,
//! writing simulated days, and reading back what the agent stored.
//!
//! The tests drive the binary exactly as an installer would (config file in, exit status and
//! SQLite database out), so they also cover argument parsing, config loading and shutdown.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use edge_core::{DeviceKeyer, Secret};
use edge_sim::truth::Truth;
use rusqlite::{Connection, OpenFlags};
use serde::Deserialize;

pub mod mosquitto;

/// The device-key rotation horizon of the default config (30 days).
pub const DEFAULT_ROTATION_MS: i64 = 30 * 86_400_000;

/// Path of the `store-edge` binary, built once per test process with the same profile as the
/// tests (`STORE_EDGE_BIN` overrides, e.g. to test a cross-built binary under qemu).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("STORE_EDGE_BIN") {
            return PathBuf::from(p);
        }
        // target/<profile>/deps/<test-exe> → target/<profile>/store-edge
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "edge-agent",
            "--bin",
            "store-edge",
        ]);
        if release {
            cmd.arg("--release");
        }
        // What cargo set for this test binary (its package, manifest, crate) is not the
        // build's: build scripts that watch such variables (ring's) would otherwise run again
        // here, and once more in the next outer build.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            let per_target = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ];
            if per_target.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&k);
            }
        }
        let status = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building store-edge failed");
        profile_dir.join("store-edge")
    })
}

/// Makes a named pipe (FIFO) at `path`, for a Wi-Fi `pipe` source the test streams into.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("running mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Runs `store-edge` with `args` and returns its output.
pub fn store_edge(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("STORE_EDGE_DEVICE_KEY_SECRET")
        .output()
        .expect("running store-edge")
}

/// Runs `store-edge run --config FILE --once` and insists it succeeds.
pub fn run_once(config: &Path) -> Output {
    let out = store_edge(&["run", "--config", path_str(config), "--once"]);
    assert!(
        out.status.success(),
        "run --once failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_panic(&out);
    out
}

/// Fails if the process printed a Rust panic.
pub fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "store-edge panicked:\n{err}");
}

/// A path as `&str` (test paths are UTF-8 temp paths).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Writes a simulated day into `dir`.
pub fn simulate(dir: &Path, params: &edge_sim::SimParams) -> edge_sim::Written {
    params.validate().expect("valid simulation parameters");
    edge_sim::generate(params)
        .write(dir)
        .expect("writing simulated day")
}

/// Reads `truth.json`.
pub fn read_truth(path: &Path) -> Truth {
    let f = std::fs::File::open(path).expect("truth.json");
    serde_json::from_reader(std::io::BufReader::new(f)).expect("parsing truth.json")
}

#[derive(Deserialize)]
struct SecretsFile {
    device_key_secret: String,
    #[serde(default)]
    device_key_version: Option<u32>,
}

/// Computes device keys exactly as the agent does, from the secrets file the simulator wrote.
/// Only tests do this: they know the secret and the raw MACs of their own synthetic day.
pub struct Keys {
    keyer: DeviceKeyer,
}

impl Keys {
    /// Keys derived with the secret in `secrets_toml`.
    pub fn from_secrets_file(secrets_toml: &Path) -> anyhow::Result<Keys> {
        let text = std::fs::read_to_string(secrets_toml)?;
        let s: SecretsFile = toml::from_str(&text)?;
        let bytes = hex::decode(s.device_key_secret.trim())?;
        let secret = Secret::new(bytes, s.device_key_version.unwrap_or(1));
        Ok(Keys {
            keyer: DeviceKeyer::new(&secret, DEFAULT_ROTATION_MS, 1 << 20),
        })
    }

    /// Hex device key of `mac` (`aa:bb:cc:dd:ee:ff`) at `ts_ms`.
    pub fn key_hex(&mut self, mac: &str, ts_ms: i64) -> anyhow::Result<String> {
        let mut v = 0u64;
        let parts: Vec<&str> = mac.split(':').collect();
        if parts.len() != 6 {
            bail!("bad MAC {mac:?}");
        }
        for p in parts {
            v = (v << 8) | u64::from(u8::from_str_radix(p, 16).context("MAC octet")?);
        }
        Ok(self.keyer.key(v, ts_ms).to_hex())
    }
}

/// A visit row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `device_key:start_ms`.
    pub visit_key: String,
    /// Device key, hex.
    pub device_key: String,
    /// Start, UTC ms.
    pub start_ms: i64,
    /// End, UTC ms.
    pub end_ms: i64,
    /// `visitor`, `passerby` or `staff`.
    pub class: String,
    /// Zone names in order.
    pub path: Vec<String>,
}

#[derive(Deserialize)]
struct Step {
    zone: String,
}

/// Opens the agent's database read-only.
pub fn open_db(data_dir: &Path) -> Connection {
    Connection::open_with_flags(
        data_dir.join("store-edge.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("opening store-edge.db")
}

/// Every stored visit, ordered by key.
pub fn visits(data_dir: &Path) -> Vec<Row> {
    let c = open_db(data_dir);
    let mut st = c
        .prepare(
            "SELECT visit_key, device_key, start_ms, end_ms, class, path FROM visits
             ORDER BY visit_key",
        )
        .expect("query");
    st.query_map([], |r| {
        let path: String = r.get(5)?;
        let steps: Vec<Step> = serde_json::from_str(&path).unwrap_or_default();
        Ok(Row {
            visit_key: r.get(0)?,
            device_key: r.get(1)?,
            start_ms: r.get(2)?,
            end_ms: r.get(3)?,
            class: r.get(4)?,
            path: steps.into_iter().map(|s| s.zone).collect(),
        })
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Stored counters of one source, as (name, value).
pub fn counters(data_dir: &Path, source: &str) -> Vec<(String, u64)> {
    let c = open_db(data_dir);
    let mut st = c
        .prepare("SELECT name, value FROM counters WHERE source = ?1 ORDER BY name")
        .expect("query");
    st.query_map([source], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// One counter of a source (0 when absent).
pub fn counter(data_dir: &Path, source: &str, name: &str) -> u64 {
    counters(data_dir, source)
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| v)
}

/// Number of rows of a table.
pub fn count(data_dir: &Path, table: &str) -> u64 {
    let c = open_db(data_dir);
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("count") as u64
}

/// `store-edge report --data-dir DATA --date DATE --json`, parsed.
pub fn report_json(data_dir: &Path, date: &str) -> serde_json::Value {
    let out = store_edge(&[
        "report",
        "--data-dir",
        path_str(data_dir),
        "--date",
        date,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// Median of a slice (sorted copy); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// systemd's default soft limit on open descriptors for a service.
pub const SYSTEMD_NOFILE: u64 = 1024;

/// A running `store-edge run` (as a service) whose file sources have been drained, with its pull
/// API's address. Killed when dropped.
pub struct Agent {
    child: Child,
    /// `http://127.0.0.1:PORT` of the pull API.
    pub endpoint: String,
    /// The pull API's port.
    pub port: u16,
    /// Its stderr lines after start-up.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts `store-edge run --config CONFIG` and waits (up to 2 minutes) for the pull API to
    /// listen and the sources to drain. The config must set `[sync] listen` to a free port
    /// (`127.0.0.1:0`).
    pub fn start(config: &Path) -> Agent {
        Agent::launch(config, true, None)
    }

    /// Like [`Agent::start`] for an agent with live sources, which never drain: waits only
    /// for the pull API to listen.
    pub fn start_live(config: &Path) -> Agent {
        Agent::launch(config, false, None)
    }

    /// Like [`Agent::start`] (file sources drained) under systemd's default descriptor limit.
    pub fn start_as_a_service(config: &Path) -> Agent {
        Agent::launch(config, true, Some(SYSTEMD_NOFILE))
    }

    /// Like [`Agent::start_live`] under systemd's default descriptor limit (a soft
    /// `RLIMIT_NOFILE` of 1,024, set by util-linux's `prlimit`, which then runs the agent in
    /// its own process).
    pub fn start_live_as_a_service(config: &Path) -> Agent {
        Agent::launch(config, false, Some(SYSTEMD_NOFILE))
    }

    fn launch(config: &Path, wait_drained: bool, nofile: Option<u64>) -> Agent {
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:")).arg("--").arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let mut child = cmd
            .args(["run", "--config", path_str(config)])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting store-edge run");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut port, mut drained) = (None, !wait_drained);
        let deadline = Instant::now() + Duration::from_secs(120);
        while port.is_none() || !drained {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    let said = log.lock().map(|l| l.join("\n")).unwrap_or_default();
                    panic!("agent did not come up (port {port:?}, drained {drained}):\n{said}")
                });
            if line.contains("pull API listening") {
                port = logged_port(&line);
            }
            drained |= line.contains("sources drained");
            if let Ok(mut l) = log.lock() {
                l.push(line);
            }
        }
        // Keep draining stderr so the agent never blocks on a full pipe; keep the lines.
        let keep = log.clone();
        std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                if let Ok(mut l) = keep.lock() {
                    l.push(line);
                }
            }
        });
        let port = port.expect("port parsed");
        Agent {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    /// Waits (up to `limit`) for a log line containing `pattern` and returns it.
    pub fn wait_for_log(&self, pattern: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(l) = self.log.lock() {
                if let Some(line) = l.iter().find(|x| x.contains(pattern)) {
                    return Some(line.clone());
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its stderr lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a clean stop).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the agent to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the agent with SIGTERM, waits (up to 30 s) for it to exit and checks that it did
    /// not panic; gives its log.
    pub fn stop_cleanly(mut self) -> Vec<String> {
        self.terminate();
        assert!(
            self.wait_exit(Duration::from_secs(30)).is_some(),
            "the agent did not stop"
        );
        let log = self.log_lines();
        assert!(
            !log.iter().any(|l| l.contains("panicked")),
            "the agent panicked:\n{}",
            log.join("\n")
        );
        log
    }

    /// Kills the agent with SIGKILL (an unclean stop) and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that no MAC address and no phone number of `truth` (portal logins, members on
/// receipts) is in any byte of any file below `dir` (the database, its WAL and shared-memory
/// files, journals, the fleet config), in any spelling: MACs as text with or without
/// separators and as 6 binary bytes, phones in E.164 and national forms with spaces or dashes.
/// Returns how many bytes it read.
pub fn assert_no_personal_data(dir: &Path, truth: &Truth) -> usize {
    fn walk(dir: &Path, bytes: &mut Vec<u8>, files: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("reading the data directory") {
            let path = e.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, bytes, files);
            } else {
                bytes.extend(std::fs::read(&path).expect("reading a data file"));
                files.push(path.display().to_string());
            }
        }
    }
    let (mut bytes, mut files) = (Vec::new(), Vec::new());
    walk(dir, &mut bytes, &mut files);
    let lower = String::from_utf8_lossy(&bytes).to_lowercase();
    let mut binary = std::collections::HashSet::new();
    for v in &truth.visits {
        let octets: Vec<u8> = v
            .mac
            .split(':')
            .filter_map(|o| u8::from_str_radix(o, 16).ok())
            .collect();
        assert_eq!(octets.len(), 6, "a truth MAC that is not one");
        binary.insert(octets);
        for text in [
            v.mac.to_lowercase(),
            v.mac.to_lowercase().replace(':', ""),
            v.mac.to_lowercase().replace(':', "-"),
        ] {
            assert!(
                !lower.contains(&text),
                "a raw MAC is stored as text in {files:?}"
            );
        }
    }
    assert!(
        !bytes.windows(6).any(|win| binary.contains(win)),
        "a raw MAC is stored in binary in {files:?}"
    );
    let phones: Vec<&String> = truth
        .visits
        .iter()
        .filter_map(|v| v.phone.as_ref())
        .chain(
            truth
                .pos
                .purchases
                .iter()
                .filter_map(|p| p.member_phone.as_ref()),
        )
        .collect();
    assert!(
        !phones.is_empty(),
        "the truth has no phone numbers to look for"
    );
    for p in phones {
        let national = p.trim_start_matches("+86");
        assert!(national.len() >= 11, "unexpected phone format");
        for text in [
            p.clone(),
            national.to_string(),
            format!("{} {} {}", &national[..3], &national[3..7], &national[7..]),
            format!("{}-{}-{}", &national[..3], &national[3..7], &national[7..]),
        ] {
            assert!(
                !lower.contains(&text),
                "a raw phone number is stored in {files:?}"
            );
        }
    }
    bytes.len()
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` (with `Authorization: auth` if given) and
/// gives the status and the response body. A refused oversized body may close the connection
/// before it is all sent; that is not an error here.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("setting a read timeout");
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .expect("sending a request head");
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).to_string();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {resp:?}"));
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The address a POS passthrough of `agent` listens on (from its log line).
pub fn passthrough_addr(agent: &Agent) -> String {
    let line = agent
        .wait_for_log("POS passthrough listening", Duration::from_secs(20))
        .expect("the passthrough listens");
    line.split("listen=")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .expect("the passthrough's address in its log line")
        .to_string()
}

/// The port of the `addr=HOST:PORT` field of a log line (listeners log where they listen).
pub fn logged_port(line: &str) -> Option<u16> {
    line.split("addr=")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
}
