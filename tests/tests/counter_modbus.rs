//! The Modbus RTU door-counter poller through the real binary, against an independent slave:
//! pymodbus 3.8.6 (`tests/python/modbus_slave.py`) serving the register map of
//! `counter/generic-ir-beam-modbus` on one end of a socat pseudo-terminal pair, the agent
//! polling the other end every 300 ms (a copy of the profile with a short interval).
//!
//! One scenario, phase by phase, each checked on what the agent stored (`counter_intervals`,
//! newest revisions, door `main`) and counted (`counters`):
//! * counts 100→130 in / 90→115 out store exactly 30/25: the first reading only sets the
//!   baseline;
//! * a power-loss reset to 4/2 adds exactly 4/2 (no negative interval, nothing counted twice)
//!   and counts `resets`;
//! * while the slave answers exception 2 (illegal data address) nothing is stored whatever its
//!   registers say, `modbus_exceptions_illegal_address` grows, and polling recovers after;
//! * replies with a bit flipped on the line fail their CRC: counted as `modbus_crc_errors`,
//!   never stored (the flipped bit would change the entries);
//! * the adapter is unplugged (socat and the slave killed) and plugged back: the agent
//!   reconnects (`reconnects`) and counting resumes where it was.
//!
//! Peers: socat and a Python with pymodbus, named by `STORE_EDGE_PYTHON` (`scripts/test.sh`
//! installs both). Without them the test says so and passes, unless `STORE_EDGE_REQUIRE_PEERS`
//! is set; peers that are there but fail make it fail.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use edge_e2e::{open_db, path_str, Agent};

const DEVICE_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const TENANT_SECRET: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
/// The source's name (`counter-<door>` by default).
const SOURCE: &str = "counter-main";
/// Generous deadline of each wait: the machine may be busy with other builds.
const WAIT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python with pymodbus, or `None` (after saying why) when the peers are not installed
/// and not required.
fn peers() -> Option<PathBuf> {
    let required = std::env::var_os("STORE_EDGE_REQUIRE_PEERS").is_some();
    let missing = |why: String| {
        assert!(!required, "STORE_EDGE_REQUIRE_PEERS is set but {why}");
        eprintln!(
            "SKIPPED counter_modbus: {why}; run the tests with scripts/test.sh, which installs \
             socat and pymodbus and sets STORE_EDGE_PYTHON"
        );
        None
    };
    let Some(py) = std::env::var_os("STORE_EDGE_PYTHON") else {
        return missing("STORE_EDGE_PYTHON is not set".into());
    };
    let py = PathBuf::from(py);
    let import = Command::new(&py)
        .args(["-c", "import pymodbus, serial; print(pymodbus.__version__)"])
        .output();
    match import {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                v.trim(),
                "3.8.6",
                "the tests are written against pymodbus 3.8.6"
            );
        }
        Ok(o) => {
            return missing(format!(
                "{} cannot import pymodbus: {}",
                py.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return missing(format!("cannot run {}: {e}", py.display())),
    }
    if Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return missing("socat is not installed".into());
    }
    Some(py)
}

/// The RS-485 adapter: a socat pty pair, the slave on `slave`, the agent on `agent`.
struct Cable {
    child: Child,
    slave: PathBuf,
    agent: PathBuf,
}

impl Cable {
    fn plug(dir: &Path) -> Cable {
        let (slave, agent) = (dir.join("slave"), dir.join("agent"));
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", path_str(&slave)))
            .arg(format!("pty,raw,echo=0,link={}", path_str(&agent)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting socat");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(slave.exists() && agent.exists()) {
            assert!(Instant::now() < deadline, "socat did not make its ptys");
            std::thread::sleep(Duration::from_millis(20));
        }
        Cable {
            child,
            slave,
            agent,
        }
    }

    /// The adapter is pulled: socat and its ptys go away.
    fn unplug(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.agent.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `modbus_slave.py` on the cable's slave end, driven line by line.
struct Slave {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Slave {
    fn start(py: &Path, port: &Path, ins: u32, outs: u32, log: &Path) -> Slave {
        let mut child = Command::new(py)
            .arg(repo().join("tests/python/modbus_slave.py"))
            .arg(port)
            .args(["--ins", &ins.to_string(), "--outs", &outs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .expect("starting modbus_slave.py");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let s = Slave {
            child,
            stdin,
            lines,
        };
        let first = s.line();
        assert_eq!(first, "ready", "the slave did not start");
        s
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the slave answers within 20 s")
    }

    /// Sends a command and returns its acknowledgement (which must be "ok …").
    fn cmd(&mut self, c: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{c}").unwrap();
        stdin.flush().unwrap();
        let ack = self.line();
        assert!(ack.starts_with("ok"), "{c}: {ack}");
        ack
    }

    /// A number from the `status` reply.
    fn status(&mut self, key: &str) -> u64 {
        let s = self.cmd("status");
        s.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {s:?}"))
    }

    /// Replies sent so far.
    fn replies(&mut self) -> u64 {
        self.status("replies")
    }

    /// Stdin closes, the slave exits (and with the cable, its port goes away).
    fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the slave did not exit when its stdin closed");
    }
}

impl Drop for Slave {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum of ins and outs of the newest revision of each stored interval of door `main`.
fn stored(data: &Path) -> (u64, u64) {
    if !data.join("store-edge.db").exists() {
        return (0, 0);
    }
    open_db(data)
        .query_row(
            "SELECT COALESCE(SUM(ins), 0), COALESCE(SUM(outs), 0) FROM counter_intervals c
             WHERE door = 'main' AND revision = (SELECT MAX(revision) FROM counter_intervals d
                                                 WHERE d.interval_key = c.interval_key)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap()
}

fn counter(data: &Path, name: &str) -> u64 {
    if !data.join("store-edge.db").exists() {
        return 0;
    }
    edge_e2e::counter(data, SOURCE, name)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the sums are `want`, then lets the agent poll a few more times and checks that
/// they stay there (a reading counted twice would move them).
fn settle(data: &Path, slave: &mut Slave, want: (u64, u64), what: &str) {
    wait_until(what, || stored(data) == want);
    let seen = slave.replies();
    wait_until("three more polls", || slave.replies() >= seen + 3);
    assert_eq!(stored(data), want, "{what}: the sums moved afterwards");
}

fn log_count(agent: &Agent, pattern: &str) -> usize {
    agent
        .log_lines()
        .iter()
        .filter(|l| l.contains(pattern))
        .count()
}

#[test]
fn modbus_counter_through_a_pty_counts_resets_exceptions_noise_and_unplugging() {
    let Some(py) = peers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The built-in profile with a short poll interval (interval is a profile field).
    let profile = std::fs::read_to_string(
        repo().join("hardware-profiles/counter/generic-ir-beam-modbus.toml"),
    )
    .unwrap();
    assert!(profile.contains("interval = \"10s\""));
    std::fs::write(
        d.join("fast-beam.toml"),
        profile.replace("interval = \"10s\"", "interval = \"300ms\""),
    )
    .unwrap();
    std::fs::write(
        d.join("secrets.toml"),
        format!("device_key_secret = \"{DEVICE_SECRET}\"\ntenant_secret = \"{TENANT_SECRET}\"\n"),
    )
    .unwrap();
    let cable = Cable::plug(d);
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nstore_id = \"modbus-store\"\ngateway_id = \"gw-1\"\ntimezone = \"Europe/Berlin\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [[sources.counter]]\nprofile = \"fast-beam.toml\"\ndoor = \"main\"\nport = \"{}\"\n",
            path_str(&cable.agent)
        ),
    )
    .unwrap();
    let data = d.join("data");
    let slave_log = d.join("slave.log");
    let mut slave = Slave::start(&py, &cable.slave, 100, 90, &slave_log);
    let mut agent = Agent::start_live(&config);
    assert!(
        agent
            .wait_for_log("serial port open", WAIT)
            .is_some_and(|l| l.contains("baud=9600")),
        "the poller opens the port with the profile's settings: {:?}",
        agent.log_lines()
    );

    // The first reading only sets the baseline.
    wait_until("the baseline", || counter(&data, "baselined") >= 1);
    settle(&data, &mut slave, (0, 0), "nothing counted at the baseline");

    // 100→130 in, 90→115 out, in steps a 300 ms poll may see (the tracker refuses more than
    // 10 people plus 10 a second on a line, so larger steps would be a device swap).
    for (ins, outs) in [(110, 98), (120, 106), (130, 115)] {
        slave.cmd(&format!("set {ins} {outs}"));
        wait_until(&format!("{ins}/{outs} counted"), || {
            stored(&data) == (ins - 100, outs - 90)
        });
    }
    settle(&data, &mut slave, (30, 25), "100→130 in, 90→115 out");

    // Power loss: the totals restart from zero and the counter has counted 4/2 since.
    slave.cmd("set 4 2");
    settle(&data, &mut slave, (34, 27), "the reset's 4/2 counted once");
    assert!(counter(&data, "resets") >= 1, "the reset is counted");

    // Exceptions: whatever the registers say meanwhile is not counted.
    slave.cmd("exception on");
    slave.cmd("set 14 7");
    wait_until("exceptions counted", || {
        counter(&data, "modbus_exceptions_illegal_address") > 0
    });
    let seen = slave.replies();
    wait_until("three polls answered with exceptions", || {
        slave.replies() >= seen + 3
    });
    assert_eq!(stored(&data), (34, 27), "nothing counted from exceptions");
    slave.cmd("exception off");
    settle(
        &data,
        &mut slave,
        (44, 32),
        "polling recovered after the exceptions",
    );

    // Line noise: replies whose entries have a flipped bit fail their CRC and are not stored.
    let resets = counter(&data, "resets");
    slave.cmd("corrupt 3");
    wait_until("the corrupted replies sent", || {
        slave.status("corrupted") >= 3
    });
    wait_until("CRC errors counted", || {
        counter(&data, "modbus_crc_errors") >= 3
    });
    settle(
        &data,
        &mut slave,
        (44, 32),
        "nothing stored from corrupted replies",
    );
    assert_eq!(
        counter(&data, "resets"),
        resets,
        "no false reset from noise"
    );
    slave.cmd("set 20 10");
    settle(&data, &mut slave, (50, 35), "counting after the noise");

    // The adapter is unplugged; people keep passing; it is plugged back.
    slave.stop();
    cable.unplug();
    wait_until("the agent to notice", || {
        log_count(&agent, "went away") >= 1
    });
    let cable = Cable::plug(d);
    let mut slave = Slave::start(&py, &cable.slave, 25, 12, &slave_log);
    wait_until("the port reopened", || {
        log_count(&agent, "serial port open") >= 2
    });
    settle(
        &data,
        &mut slave,
        (55, 37),
        "counting resumed after the reconnect",
    );
    assert!(
        counter(&data, "reconnects") >= 1,
        "the reconnect is counted"
    );

    agent.terminate();
    assert!(
        agent
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "clean stop"
    );
    // At shutdown the counters are stored as they were.
    let counters = edge_e2e::counters(&data, SOURCE);
    let get = |k: &str| counters.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    assert!(get("modbus_polls") > 20, "{counters:?}");
    assert!(
        get("modbus_exceptions_illegal_address") >= 3,
        "{counters:?}"
    );
    assert!(get("modbus_crc_errors") >= 3, "{counters:?}");
    assert!(get("modbus_missed_polls") >= 3, "{counters:?}");
    assert!(get("payloads_read") > 20, "{counters:?}");
    assert!(
        counters.iter().all(|(k, _)| !k.starts_with("refused_")),
        "no reading refused: {counters:?}"
    );
    // Every stored interval is a plausible, non-negative count of the door's line.
    let db = open_db(&data);
    let bad: i64 = db
        .query_row(
            "SELECT count(*) FROM counter_intervals
             WHERE ins < 0 OR outs < 0 OR ins > 10 OR line != 'beam' OR end_ms <= start_ms",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "an interval outside the steps made");
    let lines = agent.log_lines();
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "no panics: {lines:?}"
    );
    drop(slave);
    drop(cable);
}
