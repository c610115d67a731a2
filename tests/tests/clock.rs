//! Clock faults on a live capture, against the real agent: a gateway without a real-time clock
//! boots at 1970 until NTP sets the time, and NTP may step the clock by an hour. On a live
//! capture the kernel stamps frames with that clock, so the faults reach the agent as frame
//! times: a run of frames stamped 1970, then real times; or a jump of +1 h / −1 h in the middle
//! of a visit.
//!
//! Each scenario streams a pcap into a named pipe (as `tcpdump -U -w -` would), paced in real
//! time so the agent's monotonic receive times are real, with the frame times following a
//! simulated wall clock the test sets and steps. The "sane" time is placed just before the
//! start of the current UTC hour so that the hour the phone was in is sealed within the test.
//! What must hold: nothing is stored in 1970 or silently in another hour, steps are counted
//! and the hours they touched are flagged in their stored records, and a later visit is stored
//! normally. The agent reports to a real Mosquitto broker, where the `clock_unset` and
//! `clock_step` alerts must appear (their clearing is timed by the unit tests).

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Timelike;
use edge_e2e::mosquitto::{free_port, Broker, Watcher};
use edge_e2e::{counter, open_db, report_json, visits, Agent, Row};
use edge_wire::pcap::Writer;
use serde_json::Value;

/// LINKTYPE_IEEE802_11_RADIOTAP.
const RADIOTAP: u32 = 127;
const HOUR: i64 = 3_600_000;
/// 2024-01-01T00:00:00Z: nothing the agent stores may be older.
const SANE_MS: i64 = 1_704_067_200_000;
/// The phone whose visit the clock fault hits (universally administered: not randomized).
const PHONE: [u8; 6] = [0x00, 0x1a, 0x2b, 0xc1, 0x0c, 0x01];
/// A shopper who comes later, after the fault.
const LATER: [u8; 6] = [0x00, 0x1a, 0x2b, 0xc1, 0x0c, 0x02];
/// Probes per phase, one every `PACE`.
const PROBES: i64 = 8;
const PACE_MS: i64 = 500;
/// Longest wait for something the agent should store.
const LIMIT: Duration = Duration::from_secs(90);

/// Radiotap with only the dBm antenna signal, then a probe request from `mac` with a wildcard
/// SSID (as in tests/tests/portal.rs).
fn probe(mac: [u8; 6], rssi: i8) -> Vec<u8> {
    let mut f = vec![0x00, 0x00, 0x09, 0x00, 0x20, 0x00, 0x00, 0x00, rssi as u8];
    f.extend_from_slice(&[0x40, 0x00, 0x00, 0x00]); // probe request; duration
    f.extend_from_slice(&[0xff; 6]); // addr1: broadcast
    f.extend_from_slice(&mac); // addr2: the client
    f.extend_from_slice(&[0xff; 6]); // addr3: wildcard BSSID
    f.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x04, 0x0b, 0x16]);
    f
}

/// The capturing host's wall clock: real elapsed time plus an offset the test sets and steps.
struct Wall {
    started: Instant,
    offset_ms: i64,
}

impl Wall {
    fn reading(ms: i64) -> Wall {
        Wall {
            started: Instant::now(),
            offset_ms: ms,
        }
    }

    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap()
    }

    fn now_ms(&self) -> i64 {
        self.offset_ms + self.elapsed_ms()
    }

    /// NTP sets the clock to `ms` (from whatever it read).
    fn set(&mut self, ms: i64) {
        self.offset_ms = ms - self.elapsed_ms();
    }

    /// NTP steps the clock by `by_ms`.
    fn step(&mut self, by_ms: i64) {
        self.offset_ms += by_ms;
    }
}

/// A running agent reading a capture stream from a named pipe, and the test's end of it; the
/// broker it reports to, and a watcher of its management topics.
struct Live {
    agent: Agent,
    pipe: Writer<File>,
    wall: Wall,
    watcher: Watcher,
    _broker: Broker,
    dir: tempfile::TempDir,
}

/// The agent's management topics.
const ROOT: &str = "storeedge/clock-store/gw-1/";

fn write_config(d: &Path, broker_port: u16) -> PathBuf {
    std::fs::write(
        d.join("secrets.toml"),
        format!("device_key_secret = \"{}\"\n", "7c".repeat(32)),
    )
    .unwrap();
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nstore_id = \"clock-store\"\ngateway_id = \"gw-1\"\ntimezone = \"UTC\"\n\n\
         [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
         [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"1s\"\n\n\
         [metrics]\nvisit_timeout = \"10s\"\nzone_stale = \"5s\"\nmin_visit_dwell = \"0s\"\n\n\
         [sync]\nlisten = \"127.0.0.1:0\"\n\n\
         [mqtt]\nbroker = \"127.0.0.1:{broker_port}\"\ntelemetry_interval = \"1s\"\n\n\
         [[sources.wifi]]\nzone = \"entrance\"\npipe = \"live.pcap\"\n",
        ),
    )
    .unwrap();
    config
}

impl Live {
    /// Starts the agent and connects the capture stream, the host's clock reading `wall_ms`.
    fn start(wall_ms: i64) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("live.pcap");
        edge_e2e::mkfifo(&fifo);
        let port = free_port();
        let broker = Broker::start(dir.path(), port);
        let watcher = Watcher::start(port, "clock-test-watcher", ROOT);
        let agent = Agent::start_live(&write_config(dir.path(), port));
        let pipe = Writer::new(
            std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(),
            RADIOTAP,
            512,
        )
        .unwrap();
        Live {
            agent,
            pipe,
            wall: Wall::reading(wall_ms),
            watcher,
            _broker: broker,
            dir,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `PROBES` probes of `mac`, one every `PACE_MS` of real time (the first `PACE_MS` after
    /// the call), stamped by the wall clock; returns the first and last stamps.
    fn probes(&mut self, mac: [u8; 6]) -> (i64, i64) {
        let mut stamps = Vec::new();
        for _ in 0..PROBES {
            std::thread::sleep(Duration::from_millis(PACE_MS as u64));
            let ts = self.wall.now_ms();
            self.pipe.write_packet(ts * 1000, &probe(mac, -50)).unwrap();
            self.pipe.flush().unwrap();
            stamps.push(ts);
        }
        (stamps[0], stamps[stamps.len() - 1])
    }

    /// Lets real time pass until the wall clock reads `ms` (the stream stays open and quiet).
    fn idle_until(&self, ms: i64) {
        let left = ms - self.wall.now_ms();
        if left > 0 {
            std::thread::sleep(Duration::from_millis(left as u64));
        }
    }

    /// Waits until `n` visits are stored.
    fn wait_visits(&self, n: usize) -> Vec<Row> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let v = visits(&self.data());
            if v.len() >= n || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the hourly record of the hour starting at `hour_ms` is stored.
    fn wait_hour(&self, hour_ms: i64) -> Vec<Hourly> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let h = hourly(&self.data());
            if h.iter().any(|r| r.hour_start_ms == hour_ms) || Instant::now() >= deadline {
                return h;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn counter(&self, name: &str) -> u64 {
        counter(&self.data(), "entrance", name)
    }

    /// Prints what was stored (the figures the scenario is judged on).
    fn show(&self, label: &str) {
        let data = self.data();
        println!("[{label}] visits:");
        for v in visits(&data) {
            println!(
                "  {} .. {} ({} s) {} {:?}",
                iso(v.start_ms),
                iso(v.end_ms),
                (v.end_ms - v.start_ms) / 1000,
                v.class,
                clock_step_of_visit(&data, &v.visit_key)
            );
        }
        println!("[{label}] hourly records:");
        for h in hourly(&data) {
            println!(
                "  {} rev {} visitors {} passersby {} clock_step {:?}",
                iso(h.hour_start_ms),
                h.revision,
                h.body["visitors"],
                h.body["passersby"],
                h.body.get("clock_step")
            );
        }
        let names = [
            "frames_read",
            "sightings",
            "clock_unset_frames",
            "clock_restamped_frames",
            "clock_unset_dropped",
            "clock_steps",
            "too_late",
        ];
        let shown: Vec<String> = names
            .iter()
            .map(|n| format!("{n}={}", self.counter(n)))
            .collect();
        println!("[{label}] counters: {}", shown.join(" "));
        for l in self.agent.log_lines() {
            if l.contains("clock") {
                println!("[{label}] log: {l}");
            }
        }
    }

    /// The first alert event `name` of the Wi-Fi source (waits for it).
    fn alert(&self, name: &str) -> Value {
        let e = self
            .watcher
            .wait_for("events", 0, name, |v| {
                v["event"] == name && v["source"] == "entrance"
            })
            .json();
        println!("MQTT event: {e}");
        e
    }

    /// Stops the agent cleanly and checks it exits 0 without a panic.
    fn stop(mut self) {
        self.agent.terminate();
        let status = self
            .agent
            .wait_exit(Duration::from_secs(20))
            .expect("agent did not stop after SIGTERM");
        let log = self.agent.log_lines();
        assert!(
            !log.iter().any(|l| l.contains("panicked")),
            "the agent panicked:\n{}",
            log.join("\n")
        );
        assert!(status.success(), "agent exited with {status}");
    }
}

/// One stored hourly record.
#[derive(Debug)]
struct Hourly {
    hour_start_ms: i64,
    revision: u32,
    body: Value,
}

fn hourly(data: &Path) -> Vec<Hourly> {
    let db = open_db(data);
    let mut st = db
        .prepare(
            "SELECT hour_start_ms, revision, body FROM hourly_aggregates
             ORDER BY hour_start_ms, revision",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| {
            let body: String = r.get(2)?;
            Ok(Hourly {
                hour_start_ms: r.get(0)?,
                revision: r.get(1)?,
                body: serde_json::from_str(&body).unwrap(),
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

/// The newest revision of each stored hour.
fn newest(h: &[Hourly]) -> Vec<&Hourly> {
    let mut out: Vec<&Hourly> = Vec::new();
    for r in h {
        match out.last_mut() {
            Some(last) if last.hour_start_ms == r.hour_start_ms => *last = r,
            _ => out.push(r),
        }
    }
    out
}

/// The `clock_step` flag of a stored visit's record (`None` when the record has no such field).
fn clock_step_of_visit(data: &Path, visit_key: &str) -> Option<bool> {
    let body: String = open_db(data)
        .query_row(
            "SELECT body FROM outbox WHERE kind = 'visit' AND record_key = ?1",
            [visit_key],
            |r| r.get(0),
        )
        .ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    v.get("clock_step").and_then(Value::as_bool)
}

/// Whether the day report of the hour starting at `hour_ms` lists it in `clock_step_hours`
/// (the store's time zone is UTC).
fn report_lists_step(data: &Path, hour_ms: i64) -> bool {
    let t = chrono::DateTime::from_timestamp_millis(hour_ms).unwrap();
    let report = report_json(data, &t.format("%Y-%m-%d").to_string());
    println!(
        "report of {}: clock_step_hours {}",
        iso(hour_ms),
        report["clock_step_hours"]
    );
    report["clock_step_hours"]
        .as_array()
        .is_some_and(|l| l.contains(&Value::from(t.hour())))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR) * HOUR
}

/// The start of the current UTC hour: the scenarios' sane times sit just before it, so the
/// hour before it ends (and is sealed) within the test.
fn this_hour() -> i64 {
    hour_of(chrono::Utc::now().timestamp_millis())
}

/// The three visits of a step scenario: the phone's before the step (flagged: it was open at
/// the step and ended there), the phone's after it (on the new clock), and the later shopper's
/// (normal). Frames the merge had not processed when the step was seen go to the new clock
/// with it, so the last probe before the step may open the post-step visit instead (re-stamped
/// one pace before the first probe after it).
fn split_at_step<'a>(
    data: &Path,
    stored: &'a [Row],
    pre: (i64, i64),
    post: (i64, i64),
    later_first: i64,
) -> (&'a Row, &'a Row, &'a Row) {
    assert_eq!(stored.len(), 3, "{stored:#?}");
    let find = |what: &str, ok: &dyn Fn(&Row) -> bool| {
        stored
            .iter()
            .find(|v| ok(v))
            .unwrap_or_else(|| panic!("no {what} visit in {stored:#?}"))
    };
    let before = find("pre-step", &|v| v.start_ms == pre.0);
    assert!(
        before.end_ms >= pre.1 - PACE_MS && before.end_ms <= pre.1,
        "the visit open at the step ends at the step: {before:?}"
    );
    let after = find("post-step", &|v| v.end_ms == post.1);
    assert!(
        after.start_ms >= post.0 - PACE_MS && after.start_ms <= post.0,
        "the visit after the step starts after it: {after:?}"
    );
    let later = find("later", &|v| v.start_ms == later_first);
    assert_eq!(clock_step_of_visit(data, &before.visit_key), Some(true));
    assert_eq!(clock_step_of_visit(data, &after.visit_key), Some(false));
    assert_eq!(clock_step_of_visit(data, &later.visit_key), Some(false));
    (before, after, later)
}

/// A step scenario's common part: the phone probes, the clock steps by `by_ms`, the phone
/// probes again, and after idling into the next hour a later shopper probes; the three visits
/// and the hour before `end` (the current hour) stored. Checks what every step must give: nothing stored before a
/// sane time, one step counted, no frame refused as late, and the visits split at the step.
struct Stepped {
    live: Live,
    data: PathBuf,
    hours: Vec<Hourly>,
    pre: Row,
    post: Row,
    later: Row,
}

impl Stepped {
    fn run(end: i64, start_ms: i64, by_ms: i64, label: &str) -> Stepped {
        let mut live = Live::start(start_ms);
        let (pre_first, pre_last) = live.probes(PHONE);
        live.wall.step(by_ms);
        let (post_first, post_last) = live.probes(PHONE);
        println!(
            "phone probed {} .. {}, {label}, then {} .. {}",
            iso(pre_first),
            iso(pre_last),
            iso(post_first),
            iso(post_last)
        );
        live.idle_until(end + 5_000);
        let (later_first, _) = live.probes(LATER);
        let stored = live.wait_visits(3);
        let hours = live.wait_hour(end - HOUR);
        live.show(label);
        let data = live.data();

        assert_nothing_before_sane(&data);
        assert_eq!(live.counter("clock_steps"), 1);
        assert_eq!(live.counter("too_late"), 0);
        let (pre, post, later) = split_at_step(
            &data,
            &stored,
            (pre_first, pre_last),
            (post_first, post_last),
            later_first,
        );
        let (pre, post, later) = (pre.clone(), post.clone(), later.clone());
        Stepped {
            live,
            data,
            hours,
            pre,
            post,
            later,
        }
    }

    /// The step was logged with its size and raised one `clock_step` alert; stops the agent.
    fn finish(self, by_s: i64) {
        let logged = format!("by_s={by_s}");
        assert!(self
            .live
            .agent
            .log_lines()
            .iter()
            .any(|l| l.contains("clock stepped") && l.contains(&logged)));
        assert_eq!(self.live.alert("clock_step")["steps"], 1);
        self.live.stop();
    }
}

fn assert_nothing_before_sane(data: &Path) {
    for v in visits(data) {
        assert!(
            v.start_ms >= SANE_MS,
            "a visit stored at {}",
            iso(v.start_ms)
        );
    }
    for h in hourly(data) {
        assert!(
            h.hour_start_ms >= SANE_MS,
            "an hourly record stored for {}",
            iso(h.hour_start_ms)
        );
    }
}

/// (a) The gateway boots at 1970 and NTP sets the clock a few seconds into a phone's visit:
/// the probes stamped 1970 are held and re-stamped into the real hour, the visit is one visit
/// there, and nothing is stored in 1970.
#[test]
fn a_boot_at_1970_is_restamped_into_the_real_hour() {
    let end = this_hour();
    let real = end - HOUR;
    // Uptime 10 s: the kernel's clock reads 1970-01-01T00:00:10Z.
    let mut live = Live::start(10_000);
    let (unset_first, unset_last) = live.probes(PHONE);
    assert!(unset_last < SANE_MS);
    // NTP sets the clock: 20 s before the end of the real hour.
    live.wall.set(end - 20_000);
    let (sane_first, sane_last) = live.probes(PHONE);
    println!(
        "phone probed 1970 {} .. {}, then {} .. {}",
        iso(unset_first),
        iso(unset_last),
        iso(sane_first),
        iso(sane_last)
    );
    // Later, another shopper in the next hour.
    live.idle_until(end + 5_000);
    let (later_first, _) = live.probes(LATER);
    let stored = live.wait_visits(2);
    let hours = live.wait_hour(real);
    live.show("boot at 1970");
    let data = live.data();
    println!(
        "report: {}",
        report_json(
            &data,
            &chrono::DateTime::from_timestamp_millis(real)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string()
        )["visitors_naive"]
    );

    assert_nothing_before_sane(&data);
    assert_eq!(stored.len(), 2, "{stored:#?}");
    let phone = &stored
        .iter()
        .find(|v| v.start_ms < end)
        .expect("the phone's visit");
    // The held probes were re-stamped by their receive times: the visit starts about
    // PROBES × PACE before the first sane probe, in the real hour, and is one visit.
    let expected_start = sane_first - PROBES * PACE_MS;
    assert!(
        (phone.start_ms - expected_start).abs() < 1_500,
        "visit starts {}, expected about {}",
        iso(phone.start_ms),
        iso(expected_start)
    );
    assert_eq!(hour_of(phone.start_ms), real);
    assert!((phone.end_ms - sane_last).abs() < 50);
    let later = stored
        .iter()
        .find(|v| v.start_ms >= end)
        .expect("later visit");
    assert!((later.start_ms - later_first).abs() < 50);
    assert_eq!(live.counter("clock_unset_frames"), PROBES as u64);
    assert_eq!(live.counter("clock_restamped_frames"), PROBES as u64);
    assert_eq!(live.counter("clock_unset_dropped"), 0);
    assert_eq!(live.counter("clock_steps"), 0);
    assert_eq!(live.counter("too_late"), 0);
    // The real hour's record: one visit, not flagged (nothing was filed on a wrong clock).
    let h = newest(&hours);
    let rec = h
        .iter()
        .find(|r| r.hour_start_ms == real)
        .expect("real hour sealed");
    assert_eq!(
        rec.body["visitors"].as_u64().unwrap() + rec.body["passersby"].as_u64().unwrap(),
        1
    );
    assert_eq!(rec.body["clock_step"], Value::Bool(false));
    assert!(live
        .agent
        .log_lines()
        .iter()
        .any(|l| l.contains("clock") && l.contains("re-stamped")));
    // Management saw it: unset while the 1970 frames came, cleared once the clock was set.
    let raised = live.alert("clock_unset");
    assert!(raised["unset_frames"].as_u64().unwrap() >= 1, "{raised}");
    let cleared = live.alert("clock_unset_cleared");
    assert_eq!(cleared["restamped_frames"], PROBES);
    assert!(cleared["at_ms"].as_i64() > raised["at_ms"].as_i64());
    live.stop();
}

/// (b) NTP steps the clock forward by an hour while a phone is in the store: the step is
/// counted, the visit open at the step ends there and is flagged, both hours are flagged, and
/// a later visit is stored normally.
#[test]
fn a_step_forward_by_an_hour_is_counted_and_flagged() {
    let end = this_hour();
    let real = end - HOUR;
    let before = real - HOUR;
    let s = Stepped::run(end, before + HOUR - 24_000, HOUR, "step +1 h");
    assert_eq!(hour_of(s.pre.start_ms), before);
    assert_eq!(hour_of(s.post.start_ms), real);
    assert_eq!(hour_of(s.later.start_ms), end);
    // Both hours the step touched are flagged in their newest stored revision.
    let h = newest(&s.hours);
    for hour in [before, real] {
        let rec = h
            .iter()
            .find(|r| r.hour_start_ms == hour)
            .expect("hour stored");
        assert_eq!(rec.body["clock_step"], Value::Bool(true), "{}", iso(hour));
        assert!(report_lists_step(&s.data, hour), "{}", iso(hour));
    }
    assert!(
        !report_lists_step(&s.data, end),
        "an hour the step did not touch"
    );
    s.finish(3600);
}

/// (c) NTP steps the clock back by an hour while a phone is in the store: the frames after the
/// step are not refused as late nor merged into the visit of the hour before; the visit open at
/// the step ends there and is flagged, the hours the step re-opened are flagged, and a later
/// visit is stored normally.
#[test]
fn a_step_back_by_an_hour_is_counted_and_flagged() {
    let end = this_hour();
    let real = end - HOUR;
    // The clock runs an hour fast: the phone arrives 24 s before `end + HOUR` by it.
    let s = Stepped::run(end, end + HOUR - 24_000, -HOUR, "step -1 h");
    assert_eq!(
        hour_of(s.pre.start_ms),
        end,
        "on the old clock, an hour ahead"
    );
    assert_eq!(
        hour_of(s.post.start_ms),
        real,
        "on the new clock, not refused as late"
    );
    assert_eq!(hour_of(s.later.start_ms), end);
    // The real hour (sealed within the test) carries the flag.
    let h = newest(&s.hours);
    let rec = h
        .iter()
        .find(|r| r.hour_start_ms == real)
        .expect("real hour sealed");
    assert_eq!(rec.body["clock_step"], Value::Bool(true));
    assert_eq!(
        rec.body["visitors"].as_u64().unwrap() + rec.body["passersby"].as_u64().unwrap(),
        1
    );
    assert!(report_lists_step(&s.data, real), "{}", iso(real));
    s.finish(-3600);
}

/// NTP corrects the clock by two hours and back, then the clock breaks 400 days back and is
/// set right again, on one live stream, 12 s apart: all four jumps are seen and counted, and
/// every frame is taken (none refused as late). The 400-day jump is no correction: its frames
/// keep the time the clock had, so nothing is filed 400 days back.
#[test]
fn clock_steps_both_ways_lose_no_frame() {
    let now = chrono::Utc::now().timestamp_millis();
    let mut live = Live::start(now);
    let phases: [(&str, i64); 5] = [
        ("start", 0),
        ("+2 h", 2 * HOUR),
        ("-2 h", -2 * HOUR),
        ("-400 d", -400 * 24 * HOUR),
        ("+400 d", 400 * 24 * HOUR),
    ];
    for (i, (label, by)) in phases.iter().enumerate() {
        if i > 0 {
            // Beyond the grace in which a frame of the replaced clock is taken for a late one.
            std::thread::sleep(Duration::from_secs(8));
        }
        live.wall.step(*by);
        let mac = [0x00, 0x1a, 0x2b, 0xc1, 0x0d, i as u8];
        let (first, last) = live.probes(mac);
        println!("{label}: probed {} .. {}", iso(first), iso(last));
    }
    // A later shopper past the visit timeout closes the last two phases' visits.
    std::thread::sleep(Duration::from_secs(12));
    live.probes(LATER);
    let want = PROBES as u64 * (phases.len() as u64 + 1);
    let deadline = Instant::now() + LIMIT;
    while live.counter("sightings") < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    live.show("steps both ways");
    assert_eq!(live.counter("frames_read"), want);
    assert_eq!(live.counter("sightings"), want, "every frame is taken");
    assert_eq!(live.counter("too_late"), 0);
    assert_eq!(
        live.counter("clock_steps"),
        4,
        "+2 h, -2 h, the break and its end"
    );
    let log = live.agent.log_lines();
    assert!(log.iter().any(|l| l.contains("taken as broken")));
    assert!(log.iter().any(|l| l.contains("the broken clock is back")));
    // Nothing is filed 400 days back: every visit is within a day of the test.
    let data = live.data();
    let stored = live.wait_visits(phases.len());
    assert_eq!(stored.len(), phases.len());
    for v in &stored {
        assert!(
            (v.start_ms - now).abs() < 24 * HOUR,
            "a visit filed at {}",
            iso(v.start_ms)
        );
    }
    for h in hourly(&data) {
        assert!(
            (h.hour_start_ms - now).abs() < 24 * HOUR,
            "an hour filed at {}",
            iso(h.hour_start_ms)
        );
    }
    live.stop();
}
