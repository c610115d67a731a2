//! Attacks on the running agent, on loopback only, under systemd's descriptor limit (1,024):
//! each runs against the real binary with every listener up (portal webhook, counter push
//! listener, POS passthrough, pull API) and shows that the agent keeps answering the other
//! listeners during the attack, closes what the attacker left open, loses nothing it accepted,
//! and gives its memory back. Each test prints its before/after figures (`-- --nocapture`).
//! The attackers connect from other loopback addresses (127.0.0.2, …) than the honest peers
//! (127.0.0.1), as they would from other hosts.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_e2e::{http_request, logged_port, Agent};
use edge_proto::v1 as pb;

const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";
const COUNTER_TOKEN: &str = "xovis-push-token-0123456789";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hardware-profiles/counter/fixtures"
);

/// A stand-in network printer: takes connections and keeps every byte it is sent.
struct Printer {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
}

impl Printer {
    fn start() -> Printer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let bytes = Arc::new(AtomicU64::new(0));
        let b = bytes.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        b.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
        Printer { addr, bytes }
    }
}

/// One attack at a time: each measures its own agent's memory, descriptors and timings, which
/// other attacks running beside it on a 2-core machine would blur.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn chmod600(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The agent under attack, with the ports of its listeners.
struct Gateway {
    agent: Agent,
    data: PathBuf,
    webhook: u16,
    counter: u16,
    pos: SocketAddr,
    printer: Printer,
    logins: u64,
    pushes: u64,
    prints: u64,
}

impl Gateway {
    fn start(dir: &Path) -> Gateway {
        Gateway::start_with(dir, "")
    }

    /// [`Gateway::start`] with `extra` appended to the config file.
    fn start_with(dir: &Path, extra: &str) -> Gateway {
        let printer = Printer::start();
        std::fs::write(
            dir.join("secrets.toml"),
            "device_key_secret = \"367e1111111111111111111111118ebf\"\n\
             tenant_secret = \"22222222222222222222222222222222\"\n",
        )
        .unwrap();
        chmod600(&dir.join("secrets.toml"));
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "[store]\nstore_id = \"attack-store\"\ngateway_id = \"gw-1\"\ntimezone = \"Asia/Shanghai\"\n\n\
                 [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
                 [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"200ms\"\n\n\
                 [sync]\nlisten = \"127.0.0.1:0\"\n\n\
                 [[sources.portal]]\nname = \"hook\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 1024\n\
                 [[sources.portal.tokens]]\nname = \"portal\"\ntoken = \"{HOOK_TOKEN}\"\n\n\
                 [[sources.counter]]\nname = \"xovis\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"main\"\nlisten = \"127.0.0.1:0\"\n\
                 [[sources.counter.tokens]]\nname = \"xovis\"\ntoken = \"{COUNTER_TOKEN}\"\n\n\
                 [[sources.pos]]\nname = \"till\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nlisten = \"127.0.0.1:0\"\nforward = \"{}\"\n\n{extra}",
                printer.addr
            ),
        )
        .unwrap();
        let agent = Agent::start_live_as_a_service(&dir.join("config.toml"));
        let port_of = |pattern: &str| {
            let line = agent
                .wait_for_log(pattern, Duration::from_secs(20))
                .unwrap_or_else(|| panic!("no {pattern:?} log line"));
            logged_port(&line).unwrap()
        };
        let webhook = port_of("portal webhook listening");
        let counter = port_of("counter listener");
        let pos = edge_e2e::passthrough_addr(&agent).parse().unwrap();
        Gateway {
            agent,
            data: dir.join("data"),
            webhook,
            counter,
            pos,
            printer,
            logins: 0,
            pushes: 0,
            prints: 0,
        }
    }

    /// The agent's resident memory, in kB.
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.agent.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// Waits up to a minute after an attack for the agent's memory to come back within 20 %
    /// of `rss0` kB (panics with the figures otherwise); gives the figure and the time taken.
    fn memory_back(&self, attack: &str, rss0: u64) -> (u64, Duration) {
        let t0 = Instant::now();
        loop {
            let rss = self.rss_kb();
            if rss <= rss0 + rss0 / 5 {
                return (rss, t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{attack}: memory not back within 20 % a minute after: {rss0} → {rss} kB"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Descriptors the agent holds.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.agent.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// One honest request to every listener; panics naming the one that did not answer
    /// within `limit`. Gives the slowest answer.
    fn probe(&mut self, limit: Duration) -> Duration {
        let mut slowest = Duration::ZERO;
        // A portal login, with a fresh time and a new device each time.
        let t = Instant::now();
        self.logins += 1;
        let login = format!(
            "{{\"mac\":\"02-1a-2b-00-{:02x}-{:02x}\",\"phone\":\"139{:08}\",\"event\":\"login\",\"time\":{}}}",
            self.logins / 256,
            self.logins % 256,
            12_340_000 + self.logins,
            chrono::Utc::now().timestamp()
        );
        let (status, body) = within(limit, "the portal webhook", {
            let port = self.webhook;
            move || {
                http_request(
                    port,
                    "POST",
                    "/login",
                    Some(&format!("Bearer {HOOK_TOKEN}")),
                    login.as_bytes(),
                )
            }
        });
        assert_eq!(status, 202, "webhook login: {body}");
        slowest = slowest.max(t.elapsed());
        // A counter push.
        let t = Instant::now();
        let push = std::fs::read(format!("{FIXTURES}/xovis-v5.json")).unwrap();
        let (status, body) = within(limit, "the counter listener", {
            let port = self.counter;
            move || {
                http_request(
                    port,
                    "POST",
                    "/counter/xovis",
                    Some(&format!("Bearer {COUNTER_TOKEN}")),
                    &push,
                )
            }
        });
        assert_eq!(status, 200, "counter push: {body}");
        self.pushes += 1;
        slowest = slowest.max(t.elapsed());
        // The pull API.
        let t = Instant::now();
        let endpoint = self.agent.endpoint.clone();
        let records = within(limit, "the pull API", move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = pb::sync_client::SyncClient::connect(endpoint)
                    .await
                    .unwrap();
                c.get_info(pb::GetInfoRequest {})
                    .await
                    .unwrap()
                    .into_inner()
            })
        });
        assert!(!records.gateway_id.is_empty());
        slowest = slowest.max(t.elapsed());
        // A print through the passthrough reaches the printer.
        let t = Instant::now();
        let before = self.printer.bytes.load(Ordering::Relaxed);
        let receipt = b"\x1b@store-edge test receipt\n\x1dV\x00";
        let pos = self.pos;
        within(limit, "the POS passthrough", move || {
            let mut c = TcpStream::connect(pos).unwrap();
            c.write_all(receipt).unwrap();
        });
        self.prints += 1;
        let deadline = Instant::now() + limit;
        while self.printer.bytes.load(Ordering::Relaxed) < before + receipt.len() as u64 {
            assert!(
                Instant::now() < deadline,
                "the printer did not get the print"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        slowest.max(t.elapsed())
    }
}

/// Runs `f` on a thread; panics naming `what` when it takes longer than `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not answer within {limit:?}"))
}

/// Raises this test process's own soft descriptor limit to its hard limit (the attackers'
/// sockets are ours); gives the new soft limit.
fn raise_own_nofile() -> u64 {
    let pid = std::process::id().to_string();
    let hard = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile", "--output=HARD", "--noheadings"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_string();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:")])
        .status()
        .unwrap();
    assert!(status.success());
    hard.parse().unwrap_or(u64::MAX)
}

/// Opens `n` connections to `target` from `from` (a loopback address), each sending `prefix`
/// and then nothing.
async fn half_open(
    from: &str,
    target: SocketAddr,
    n: usize,
    prefix: &[u8],
) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut open = Vec::new();
    for _ in 0..n {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        if let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(2), s.connect(target)).await
        {
            // Refused ones may be closed already.
            let _ = c.write_all(prefix).await;
            open.push(c);
        }
    }
    open
}

/// Waits until the server has closed each connection (EOF or reset); gives how many it closed
/// within `limit`.
async fn closed_by_server(conns: Vec<tokio::net::TcpStream>, limit: Duration) -> usize {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut tasks = Vec::new();
    for mut c in conns {
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                    Err(_) => return false,
                }
            }
        }));
    }
    let mut closed = 0;
    for t in tasks {
        if t.await.unwrap() {
            closed += 1;
        }
    }
    closed
}

/// Slowloris without credentials: 1,100 connections to the counter port that send half a
/// request head and then nothing. The connection caps refuse most at once, the head deadline
/// closes the rest, and every listener keeps answering meanwhile.
#[test]
fn slowloris_on_the_counter_port_is_cut_off() {
    let _one = serial();
    let own_limit = raise_own_nofile();
    let dir = tempfile::tempdir().unwrap();
    // With fleet management, which must keep answering too.
    let port = edge_e2e::mosquitto::free_port();
    let _broker = edge_e2e::mosquitto::Broker::start(dir.path(), port);
    let w = edge_e2e::mosquitto::Watcher::start(port, "fleet", "storeedge/attack-store/gw-1/");
    let mut gw = Gateway::start_with(
        dir.path(),
        &format!("[mqtt]\nbroker = \"127.0.0.1:{port}\"\nkeep_alive = \"5s\"\n"),
    );
    w.wait_for("status", 0, "the online status", |v| v["online"] == true);
    gw.probe(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, fds0) = (gw.rss_kb(), gw.fds());
    let n = 1100.min(own_limit.saturating_sub(200) as usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target: SocketAddr = format!("127.0.0.1:{}", gw.counter).parse().unwrap();
    let t0 = Instant::now();
    let conns = rt.block_on(half_open(
        "127.0.0.2",
        target,
        n,
        b"POST /counter/xovis HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n",
    ));
    let opened = conns.len();
    let (rss1, fds1) = (gw.rss_kb(), gw.fds());
    // During the attack: every listener answers, the counter port included (honest peers
    // come from another address).
    let mut slowest = Duration::ZERO;
    for i in 0..3 {
        slowest = slowest.max(gw.probe(Duration::from_secs(5)));
        let t = Instant::now();
        let r = w.command("ping", serde_json::json!({"id": format!("during-{i}")}));
        assert_eq!(r["ok"], true, "MQTT during the attack: {r}");
        slowest = slowest.max(t.elapsed());
    }
    let closed = rt.block_on(closed_by_server(conns, Duration::from_secs(30)));
    let cut_after = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let (rss2, fds2) = (gw.rss_kb(), gw.fds());
    slowest = slowest.max(gw.probe(Duration::from_secs(5)));
    println!(
        "slowloris: {n} half-open connections ({opened} connected), all closed by the agent: {closed} within {cut_after:.1?}; \
         slowest honest answer (HTTP, gRPC, POS, MQTT) {slowest:.2?}; RSS {rss0} → {rss1} → {rss2} kB; descriptors {fds0} → {fds1} → {fds2}"
    );
    assert_eq!(
        closed, opened,
        "every half-open connection is closed by the agent"
    );
    assert!(fds2 <= fds0 + 10, "descriptors return: {fds0} → {fds2}");
    assert!(
        rss2 <= rss0 + rss0 / 5,
        "memory back within 20 %: {rss0} → {rss2} kB"
    );
    let pushes = gw.pushes;
    let logins = gw.logins;
    gw.agent.stop_cleanly();
    // Nothing accepted was lost: every 202 login is in the journal's store, every push counted.
    let db = edge_e2e::open_db(&gw.data);
    let stored: u64 = db
        .query_row("SELECT COUNT(*) FROM device_persons", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, logins, "every accepted login bound its device");
    assert!(pushes > 0);
}

/// A request body trickled a byte at a time, and request heads that never end, on the
/// webhook: answered 408 or closed at the deadlines; honest logins go on meanwhile.
#[test]
fn slow_bodies_and_heads_on_the_webhook_time_out() {
    let _one = serial();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path());
    gw.probe(Duration::from_secs(10));
    let rss0 = gw.rss_kb();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target: SocketAddr = format!("127.0.0.1:{}", gw.webhook).parse().unwrap();
    let t0 = Instant::now();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {HOOK_TOKEN}\r\nContent-Length: 200\r\n\r\n{{"
    );
    let tricklers = rt.block_on(half_open("127.0.0.3", target, 20, head.as_bytes()));
    let heads = rt.block_on(half_open(
        "127.0.0.4",
        target,
        20,
        b"POST /login HTTP/1.1\r\nHo",
    ));
    assert_eq!((tricklers.len(), heads.len()), (20, 20));
    // The tricklers send a byte every 2 s; each gets 408 or is closed.
    let answers = rt.spawn(async move {
        let mut tasks = Vec::new();
        for mut c in tricklers {
            tasks.push(tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut buf = [0u8; 512];
                loop {
                    tokio::select! {
                        r = c.read(&mut buf) => {
                            let text = match r {
                                Ok(n) => String::from_utf8_lossy(&buf[..n]).to_string(),
                                Err(_) => String::new(),
                            };
                            return (text, start.elapsed());
                        }
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {
                            if c.write_all(b" ").await.is_err() {
                                return (String::new(), start.elapsed());
                            }
                        }
                    }
                    if start.elapsed() > Duration::from_secs(40) {
                        return ("still open".to_string(), start.elapsed());
                    }
                }
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        slowest = slowest.max(gw.probe(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_secs(2));
    }
    let head_closed = rt.block_on(closed_by_server(heads, Duration::from_secs(30)));
    let answers = rt.block_on(answers).unwrap();
    let timed_out_408 = answers
        .iter()
        .filter(|(t, _)| t.starts_with("HTTP/1.1 408"))
        .count();
    let longest = answers.iter().map(|(_, d)| *d).max().unwrap();
    let (rss1, back) = gw.memory_back("slow bodies", rss0);
    println!(
        "slow bodies: {timed_out_408} of 20 answered 408, the longest after {longest:.1?}; \
         unfinished heads closed: {head_closed} of 20 within {:.1?}; slowest honest answer {slowest:.2?}; \
         RSS {rss0} → {rss1} kB (back in {back:.0?})",
        t0.elapsed()
    );
    assert!(
        answers
            .iter()
            .all(|(t, d)| t != "still open" && *d < Duration::from_secs(25)),
        "every trickled body ends at the request deadline: {answers:?}"
    );
    assert_eq!(timed_out_408, 20, "{answers:?}");
    assert_eq!(head_closed, 20);
    gw.agent.stop_cleanly();
}

/// Posts a login with `time` (raw JSON) and `phone` (raw JSON) to the webhook.
fn login_with(port: u16, mac: &str, phone: &str, time: &str) -> (u16, String) {
    let body =
        format!("{{\"mac\":\"{mac}\",\"phone\":{phone},\"event\":\"login\",\"time\":{time}}}");
    http_request(
        port,
        "POST",
        "/login",
        Some(&format!("Bearer {HOOK_TOKEN}")),
        body.as_bytes(),
    )
}

fn bound_devices(data: &Path) -> u64 {
    edge_e2e::open_db(data)
        .query_row("SELECT COUNT(*) FROM device_persons", [], |r| r.get(0))
        .unwrap()
}

fn wait_bound(data: &Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while bound_devices(data) < n {
        assert!(
            Instant::now() < deadline,
            "the login did not bind: {} of {n} devices bound",
            bound_devices(data)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poisoned values: logins stamped in the year 9999 or at `i64::MIN` are refused with a
/// reason and never stop identity (later logins still bind, also after a restart); a 400
/// never echoes the raw phone number it refused; a push sequence number of `u64::MAX` is a
/// jump, not 18 quintillion missing pushes.
#[test]
fn poisoned_times_and_values_change_nothing() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path());
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        login_with(
            gw.webhook,
            "02-00-00-00-00-01",
            "\"13912345601\"",
            &now.to_string()
        )
        .0,
        202
    );
    wait_bound(&gw.data, 1);
    let rss0 = gw.rss_kb();
    let poisons = [
        ("\"9999-12-31T23:59:59Z\"", "time_ahead"),
        ("253402300799000", "time_ahead"),
        (&(now + 2 * 3600).to_string() as &str, "time_ahead"),
        ("-9223372036854775808", "no_time"),
        ("0", "time_unset"),
        (&(now - 30 * 86_400).to_string(), "time_behind"),
    ];
    for (time, reason) in poisons {
        let (status, body) = login_with(gw.webhook, "02-00-00-00-00-02", "\"13912345602\"", time);
        assert_eq!(status, 400, "{time}: {body}");
        assert!(body.contains(reason), "{time}: {body}");
    }
    // Identity keeps binding.
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        login_with(
            gw.webhook,
            "02-00-00-00-00-03",
            "\"13912345603\"",
            &now.to_string()
        )
        .0,
        202
    );
    wait_bound(&gw.data, 2);
    // A phone number of the wrong type is refused without being echoed.
    let (status, body) = login_with(
        gw.webhook,
        "02-00-00-00-00-04",
        "13912345679",
        &now.to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        !body.contains("13912345679") && !body.contains("912345679"),
        "{body}"
    );
    // Push sequence numbers: an honest one, one at u64::MAX, an honest one again.
    let fixture = std::fs::read_to_string(format!("{FIXTURES}/xovis-v5.json")).unwrap();
    for id in ["4711", "18446744073709551615", "4712"] {
        let push = fixture.replacen("\"id\": 4711", &format!("\"id\": {id}"), 1);
        let (status, body) = http_request(
            gw.counter,
            "POST",
            "/counter/xovis",
            Some(&format!("Bearer {COUNTER_TOKEN}")),
            push.as_bytes(),
        );
        assert_eq!(status, 200, "{id}: {body}");
    }
    let (rss1, _) = gw.memory_back("poisoned values", rss0);
    let data = gw.data.clone();
    let log = gw.agent.stop_cleanly();
    assert_eq!(edge_e2e::counter(&data, "hook", "rejected_time_ahead"), 3);
    assert_eq!(edge_e2e::counter(&data, "xovis", "sequence_missing"), 0);
    assert_eq!(edge_e2e::counter(&data, "xovis", "sequence_jumps"), 2);
    assert!(
        !log.iter().any(|l| l.contains("13912345")),
        "a phone number in the log"
    );
    // After a restart identity still binds.
    let gw = Gateway::start(dir.path());
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        login_with(
            gw.webhook,
            "02-00-00-00-00-05",
            "\"13912345605\"",
            &now.to_string()
        )
        .0,
        202
    );
    wait_bound(&gw.data, 3);
    println!(
        "poisoned values: 6 poisoned login times refused by reason; identity bound before, after and across a restart (3 devices); u64::MAX sequence: 0 missing, 2 jumps; RSS {rss0} → {rss1} kB"
    );
    gw.agent.stop_cleanly();
}

/// A hostile fleet broker: pushed configs that name the secrets file, the staff list, files
/// outside the config directory, devices, another `iw`, or a file whose content validation
/// would quote. Each is refused with the key and a reason; no retained message and no log
/// line carries a byte of those files or a path outside the config directory; a good push
/// is applied afterwards.
#[test]
fn the_fleet_may_configure_but_never_read() {
    let _one = serial();
    use edge_e2e::mosquitto::{free_port, Broker, Watcher};
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = dir.path();
    let canary_outside = "CANARY-OUTSIDE-7f3a";
    let canary_inside = "CANARY-INSIDE-91bd";
    std::fs::write(
        outside.path().join("notes.toml"),
        format!("kind = \"{canary_outside}\"\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("plain.toml"),
        format!("kind = \"pos\"\nvendor = \"{canary_inside}\"\n"),
    )
    .unwrap();
    std::fs::write(d.join("wifi.pcap"), b"").unwrap();
    let port = free_port();
    let _broker = Broker::start(d, port);
    let root = "storeedge/attack-store/gw-1/";
    let w = Watcher::start_with_limit(port, "fleet", root, Duration::from_secs(45));
    let mqtt = format!("[mqtt]\nbroker = \"127.0.0.1:{port}\"\nkeep_alive = \"5s\"\ntelemetry_interval = \"1s\"\napply_timeout = \"3s\"\n");
    let gw = Gateway::start_with(d, &mqtt);
    w.wait_for("status", 0, "the online status", |v| v["online"] == true);
    let rss0 = gw.rss_kb();
    let base = std::fs::read_to_string(d.join("config.toml")).unwrap();
    let out = outside.path().display().to_string();
    let pos = |profile: &str| {
        format!("{base}\n[[sources.pos]]\nname = \"p2\"\nprofile = \"{profile}\"\nfile = \"till2.bin\"\n")
    };
    let pushes: Vec<(String, &str)> = vec![
        (pos("secrets.toml"), "not_allowed"),
        (pos("config.toml"), "not_allowed"),
        (pos(&format!("{out}/notes.toml")), "not_allowed"),
        (pos("../../../../../../../etc/hostname.toml"), "not_allowed"),
        (pos("plain.toml"), "bad_config"),
        (format!("{base}\n[[sources.pos]]\nname = \"p2\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nport = \"/etc/passwd\"\n"), "not_allowed"),
        (format!("{base}\n[[sources.counter]]\nname = \"c2\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"d2\"\nfile = \"/etc/passwd\"\n"), "not_allowed"),
        (format!("{base}\n[[sources.wifi]]\nzone = \"z\"\npcap = \"wifi.pcap\"\niw = \"/bin/sh\"\n"), "not_allowed"),
        (format!("{base}\n[[sources.portal]]\nname = \"h2\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:0\"\n[[sources.portal.tokens]]\nname = \"x\"\ntoken_file = \"{out}/notes.toml\"\n"), "not_allowed"),
        (format!("{base}\n[[sources.portal]]\nname = \"h2\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:0\"\n[[sources.portal.tokens]]\nname = \"x\"\ntoken_file = \"secrets.toml\"\n"), "not_allowed"),
        (base.replace("secrets_file = \"secrets.toml\"", "secrets_file = \"secrets.toml\"\nstaff_phones_file = \"/dev/zero\""), "not_allowed"),
        (base.replace("secrets_file = \"secrets.toml\"", "secrets_file = \"plain.toml\""), "not_allowed"),
        (base.replace("[sync]\nlisten = \"127.0.0.1:0\"\n", &format!("[sync]\nlisten = \"127.0.0.1:0\"\n[sync.tls]\ncert = \"secrets.toml\"\nkey = \"{out}/notes.toml\"\n")), "not_allowed"),
        // No relay around the tokens: a passthrough to the pull API, or on every interface.
        (base.replace("[sync]\nlisten = \"127.0.0.1:0\"\n", "[sync]\nlisten = \"127.0.0.1:50051\"\n") + "\n[[sources.pos]]\nname = \"relay\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nlisten = \"127.0.0.1:9109\"\nforward = \"127.0.0.1:50051\"\n", "bad_config"),
        (format!("{base}\n[[sources.pos]]\nname = \"relay\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nlisten = \"0.0.0.0:9109\"\nforward = \"192.0.2.10:9100\"\n"), "bad_config"),
    ];
    let t0 = Instant::now();
    for (i, (text, want)) in pushes.iter().enumerate() {
        let n = w.on("config/reported").len();
        let version = i as u64 + 1;
        let payload = serde_json::json!({"version": version, "config": text}).to_string();
        w.publish(&format!("{root}config/desired"), false, payload.as_bytes());
        let r = w
            .wait_for("config/reported", n, "the answer to a push", |v| {
                v["version"] == version
            })
            .json();
        assert_eq!(r["result"], "rejected", "push {version}: {r}");
        assert_eq!(r["error"], *want, "push {version}: {r}");
    }
    // A good push still applies.
    let n = w.on("config/reported").len();
    let good = format!("{base}\n[[sources.counter]]\nname = \"c2\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"d2\"\nlisten = \"127.0.0.1:0\"\npath = \"/counter/c2\"\n");
    let payload = serde_json::json!({"version": 100, "config": good}).to_string();
    w.publish(&format!("{root}config/desired"), false, payload.as_bytes());
    let r = w
        .wait_for("config/reported", n, "the good push", |v| {
            v["version"] == 100
        })
        .json();
    assert_eq!(r["result"], "applied", "{r}");
    // A relay that validation cannot see (the pull API listens on port 0, so its port is
    // known only once bound): the passthrough refuses to forward to the agent's own listener.
    let relay_port = free_port();
    let relay = format!(
        "{base}\n[[sources.pos]]\nname = \"relay\"\nprofile = \"pos/xprinter-xp-58iih-gb18030\"\nlisten = \"127.0.0.1:{relay_port}\"\nforward = \"127.0.0.1:{}\"\n",
        gw.agent.port
    );
    let n = w.on("config/reported").len();
    let payload = serde_json::json!({"version": 101, "config": relay}).to_string();
    w.publish(&format!("{root}config/desired"), false, payload.as_bytes());
    let r = w
        .wait_for("config/reported", n, "the relay push", |v| {
            v["version"] == 101
        })
        .json();
    assert_ne!(r["result"], "rejected", "{r}");
    let through = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let c = pb::sync_client::SyncClient::connect(format!("http://127.0.0.1:{relay_port}"))
                .await;
            match c {
                Ok(mut c) => {
                    tokio::time::timeout(Duration::from_secs(5), c.get_info(pb::GetInfoRequest {}))
                        .await
                        .map(|r| r.is_ok())
                        .unwrap_or(false)
                }
                Err(_) => false,
            }
        });
    assert!(!through, "GetInfo answered through the passthrough");
    assert!(
        gw.agent
            .wait_for_log(
                "one of the agent's own listeners; connection refused",
                Duration::from_secs(5)
            )
            .is_some(),
        "the relay was not refused by the passthrough"
    );
    // Nothing read in a file, and no path outside the config directory, left the gateway
    // or reached the log.
    // What the gateway published (the fleet's own pushes are not the gateway's words).
    let said: String = w
        .all()
        .iter()
        .filter(|m| !m.topic.ends_with("config/desired"))
        .map(|m| format!("{} {}\n", m.topic, String::from_utf8_lossy(&m.payload)))
        .collect();
    let log = gw.agent.log_lines().join("\n");
    let secret_hex = "367e1111111111111111111111118ebf";
    for (what, text) in [("MQTT", &said), ("log", &log)] {
        for needle in [
            canary_outside,
            canary_inside,
            secret_hex,
            "device_key_secret",
            "tenant_secret",
            out.as_str(),
            "/etc/passwd",
            "/dev/zero",
            "/bin/sh",
            "/etc/hostname",
        ] {
            assert!(!text.contains(needle), "{what} carries {needle:?}:\n{text}");
        }
    }
    let (rss1, back) = gw.memory_back("hostile fleet", rss0);
    println!(
        "hostile fleet: {} pushes refused by key and reason in {:.1?} ({} MQTT messages, {} log lines, none with file content or an outside path); a good push applied after them; RSS {rss0} → {rss1} kB (back in {back:.0?})",
        pushes.len(),
        t0.elapsed(),
        w.all().len(),
        log.lines().count()
    );
    gw.agent.stop_cleanly();
}

/// A hostile broker's messages: a retained 300 KB command and a retained `set-log-level`
/// waiting before the agent starts, an oversized live command, and 500 `flush` commands at
/// once. The session stays up (one connection), retained commands are never executed (also
/// after a restart), the oversized one is refused `too_large`, and every flush is answered
/// (done or `busy`), none dropped in silence.
#[test]
fn a_hostile_broker_cannot_wedge_management() {
    let _one = serial();
    use edge_e2e::mosquitto::{free_port, Broker, Watcher};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let _broker = Broker::start(d, port);
    let root = "storeedge/attack-store/gw-1/";
    let w = Watcher::start_with_limit(port, "fleet", root, Duration::from_secs(60));
    w.publish(&format!("{root}cmd/ping"), true, &vec![b'x'; 300 * 1024]);
    w.publish(
        &format!("{root}cmd/set-log-level"),
        true,
        serde_json::json!({"id": "retained-1", "level": "trace"})
            .to_string()
            .as_bytes(),
    );
    let mqtt = format!(
        "[mqtt]\nbroker = \"127.0.0.1:{port}\"\nkeep_alive = \"5s\"\ntelemetry_interval = \"1s\"\n"
    );
    let mut gw = Gateway::start_with(d, &mqtt);
    w.wait_for("status", 0, "the online status", |v| v["online"] == true);
    let rss0 = gw.rss_kb();
    // The session holds: telemetry over 8 s counts one connection.
    let n = w.on("telemetry").len();
    std::thread::sleep(Duration::from_secs(8));
    let t = w.wait_for("telemetry", n + 5, "telemetry", |_| true).json();
    assert_eq!(t["mgmt"]["mqtt_connects"], 1, "the session held: {t}");
    let r = w.command("ping", serde_json::json!({"id": "p1"}));
    assert_eq!(r["ok"], true, "{r}");
    // An oversized live command arrives and is refused with a reason.
    let n = w.on("cmd/ping/reply").len();
    w.publish(&format!("{root}cmd/ping"), false, &vec![b' '; 100 * 1024]);
    let r = w
        .wait_for("cmd/ping/reply", n, "the too_large reply", |_| true)
        .json();
    assert_eq!(r["reason"], "too_large", "{r}");
    // 500 flushes at once: each answered.
    let t0 = Instant::now();
    for i in 0..500 {
        w.publish(
            &format!("{root}cmd/flush"),
            false,
            serde_json::json!({"id": format!("f{i}")})
                .to_string()
                .as_bytes(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let (ok, busy) = loop {
        let replies = w.on("cmd/flush/reply");
        let mut ids = std::collections::BTreeMap::new();
        for m in &replies {
            let v = m.json();
            ids.insert(v["id"].as_str().unwrap_or("").to_string(), v);
        }
        if ids.len() >= 500 || Instant::now() > deadline {
            let ok = ids.values().filter(|v| v["ok"] == true).count();
            let busy = ids.values().filter(|v| v["reason"] == "busy").count();
            assert_eq!(
                ids.len(),
                500,
                "every flush is answered ({ok} done, {busy} busy)"
            );
            break (ok, busy);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let answered_in = t0.elapsed();
    let r = w.command("ping", serde_json::json!({"id": "p2"}));
    assert_eq!(r["ok"], true, "{r}");
    gw.probe(Duration::from_secs(5));
    let t = w
        .wait_for("telemetry", w.on("telemetry").len(), "telemetry", |_| true)
        .json();
    let (rss1, back) = gw.memory_back("hostile broker", rss0);
    // The retained commands were never carried out.
    assert!(
        w.on("cmd/set-log-level/reply").is_empty(),
        "a retained command was answered"
    );
    let log = gw.agent.log_lines().join("\n");
    assert!(
        !log.contains("log filter changed over MQTT"),
        "a retained command ran:\n{log}"
    );
    println!(
        "hostile broker: 1 connection throughout ({} telemetry), retained 300 KB and set-log-level ignored, \
         100 KB live command refused too_large; 500 flushes answered in {answered_in:.1?} ({ok} done, {busy} busy); \
         RSS {rss0} → {rss1} kB (back in {back:.0?}); mgmt {}",
        w.on("telemetry").len(),
        t["mgmt"]
    );
    gw.agent.stop_cleanly();
    // After a restart the retained commands are still ignored.
    let n = w.on("status").len();
    let gw = Gateway::start_with(d, &mqtt);
    w.wait_for("status", n, "the online status again", |v| {
        v["online"] == true
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        w.on("cmd/set-log-level/reply").is_empty(),
        "a retained command was answered after a restart"
    );
    let log = gw.agent.log_lines().join("\n");
    assert!(
        !log.contains("log filter changed over MQTT"),
        "a retained command ran after a restart"
    );
    gw.agent.stop_cleanly();
}

/// Stalled pull streams: 700 `Pull` calls from another address whose client never reads (its
/// HTTP/2 windows fill and stay full). The stream caps refuse most at once, the ones admitted
/// end after the send timeout, no blocking thread or database handle is held while they
/// wait, the pull API keeps answering honest clients throughout, and memory and descriptors
/// return once the attacker leaves.
#[test]
fn stalled_pull_streams_hold_nothing() {
    let _one = serial();
    let own_limit = raise_own_nofile();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let w = edge_e2e::simulate(d, &edge_sim::SimParams::new(7, date, 300, 2));
    let mut text = std::fs::read_to_string(&w.config_path).unwrap();
    text.push_str("\n[sync]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&w.config_path, text).unwrap();
    let agent = Agent::start_as_a_service(&w.config_path);
    let pid = agent.pid();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:").map(|v| {
                    v.trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
            })
            .unwrap()
    };
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    // The fewest database descriptors over a second (the health probe opens a reader each
    // second for a moment).
    let db_fds = || {
        (0..10)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .unwrap()
                    .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|p| p.to_string_lossy().contains("store-edge.db"))
                    .count()
            })
            .min()
            .unwrap_or(0)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let endpoint = agent.endpoint.clone();
    // An honest client: GetInfo and a whole pull, from 127.0.0.1.
    let honest = |rt: &tokio::runtime::Runtime| {
        let endpoint = endpoint.clone();
        rt.block_on(async move {
            let t = Instant::now();
            let mut c = pb::sync_client::SyncClient::connect(endpoint)
                .await
                .unwrap();
            let info = c
                .get_info(pb::GetInfoRequest {})
                .await
                .unwrap()
                .into_inner();
            let mut s = c
                .pull(pb::PullRequest {
                    cursor: String::new(),
                    limit: 500,
                    kinds: vec![],
                })
                .await
                .unwrap()
                .into_inner();
            let mut n = 0;
            while let Some(m) = tokio::time::timeout(Duration::from_secs(10), s.message())
                .await
                .unwrap()
                .unwrap()
            {
                assert!(m.record.is_some());
                n += 1;
            }
            assert!(!info.head_cursor.is_empty());
            (n, t.elapsed())
        })
    };
    let (n0, _) = honest(&rt);
    assert_eq!(n0, 500, "the day has records to pull");
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, fds0, db0) = (rss(), fds(), db_fds());
    // The attacker: connections from 127.0.0.2 with tiny windows, 700 pulls never read.
    let attack_endpoint = agent.endpoint.clone();
    let t0 = Instant::now();
    let (held, refused) = rt.block_on(async move {
        let mut held = Vec::new();
        let mut refused = 0usize;
        let mut channels = Vec::new();
        for _ in 0..(700 / 16 + 1) {
            let ch = tonic::transport::Endpoint::from_shared(attack_endpoint.clone())
                .unwrap()
                .local_address(Some("127.0.0.2".parse().unwrap()))
                .initial_stream_window_size(Some(1024))
                .initial_connection_window_size(Some(65_535))
                .connect()
                .await;
            match ch {
                Ok(c) => channels.push(c),
                Err(_) => refused += 16,
            }
        }
        for i in 0..700 {
            let Some(ch) = channels.get(i % channels.len().max(1)) else {
                refused += 1;
                continue;
            };
            let mut c = pb::sync_client::SyncClient::new(ch.clone());
            let call = tokio::time::timeout(
                Duration::from_secs(2),
                c.pull(pb::PullRequest {
                    cursor: String::new(),
                    limit: 100_000,
                    kinds: vec![],
                }),
            )
            .await;
            match call {
                Ok(Ok(stream)) => held.push(stream.into_inner()),
                _ => refused += 1,
            }
        }
        ((held, channels), refused)
    });
    let admitted = held.0.len();
    std::thread::sleep(Duration::from_secs(2));
    let (rss1, fds1, db1) = (rss(), fds(), db_fds());
    // Honest clients are served during the attack.
    let (n1, during) = honest(&rt);
    assert_eq!(n1, 500);
    // The admitted streams end after the send timeout, with the attacker still connected.
    std::thread::sleep(Duration::from_secs(35));
    let (n2, after_timeout) = honest(&rt);
    assert_eq!(n2, 500);
    let (rss2, db2) = (rss(), db_fds());
    drop(held);
    // The attacker leaves; memory settles.
    let settle = Instant::now();
    let (mut rss3, mut fds3) = (rss(), fds());
    while settle.elapsed() < Duration::from_secs(60) && (rss3 > rss0 + rss0 / 5 || fds3 > fds0 + 5)
    {
        std::thread::sleep(Duration::from_millis(500));
        (rss3, fds3) = (rss(), fds());
    }
    println!(
        "stalled pulls: 700 pulls never read ({admitted} admitted, {refused} refused) in {:.1?}; honest pull of 500 during {during:.2?}, \
         after the send timeout {after_timeout:.2?}; RSS {rss0} → {rss1} → {rss2} → {rss3} kB (back in {:.0?}); \
         descriptors {fds0} → {fds1} → {fds3}; database descriptors {db0} → {db1} → {db2}; own nofile limit {own_limit}",
        t0.elapsed(),
        settle.elapsed()
    );
    assert!(
        admitted <= 32,
        "at most 32 pull streams at once: {admitted}"
    );
    assert!(
        db1 <= db0 + 2,
        "stalled streams hold no database handles: {db0} → {db1}"
    );
    assert!(
        rss3 <= rss0 + rss0 / 5,
        "memory back within 20 %: {rss0} → {rss3} kB"
    );
    assert!(fds3 <= fds0 + 5, "descriptors return: {fds0} → {fds3}");
    agent.stop_cleanly();
}

/// One agent per data directory, and SIGHUP reloads: a second agent on the same data
/// directory stops at once with a clear error while the first keeps running; SIGHUP reloads
/// the config (an edit made on disk takes effect) instead of killing the agent, and the outbox
/// keeps its epoch.
#[test]
fn a_second_agent_is_refused_and_sighup_reloads() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut gw = Gateway::start(d);
    gw.probe(Duration::from_secs(10));
    let epoch = |endpoint: String| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut c = pb::sync_client::SyncClient::connect(endpoint)
                .await
                .unwrap();
            c.get_info(pb::GetInfoRequest {})
                .await
                .unwrap()
                .into_inner()
                .epoch
        })
    };
    let epoch0 = epoch(gw.agent.endpoint.clone());
    // A second agent on the same config and data directory.
    let out = std::process::Command::new(edge_e2e::bin())
        .args([
            "run",
            "--config",
            edge_e2e::path_str(&d.join("config.toml")),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second agent ran: {err}");
    assert!(
        err.contains("another store-edge") && err.contains(&format!("pid {}", gw.agent.pid())),
        "{err}"
    );
    // SIGHUP: an added counter source is started by the reload; the agent lives on.
    let mut text = std::fs::read_to_string(d.join("config.toml")).unwrap();
    text.push_str(
        "\n[[sources.counter]]\nname = \"side\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"side\"\nlisten = \"127.0.0.1:0\"\npath = \"/counter/side\"\n",
    );
    std::fs::write(d.join("config.toml"), text).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = gw
        .agent
        // The new source is judged for the apply timeout (30 s) before the outcome.
        .wait_for_log("SIGHUP reload", Duration::from_secs(60))
        .unwrap_or_else(|| {
            panic!(
                "the reload's outcome is not logged:\n{}",
                gw.agent.log_lines().join("\n")
            )
        });
    assert!(line.contains("applied"), "{line}");
    assert!(
        gw.agent.wait_exit(Duration::from_secs(1)).is_none(),
        "SIGHUP stopped the agent"
    );
    // The counter listener was restarted with the new source: on a new port.
    gw.counter = gw
        .agent
        .log_lines()
        .iter()
        .rev()
        .find(|l| l.contains("counter listener") && l.contains("/counter/side"))
        .and_then(|l| logged_port(l))
        .expect("the restarted counter listener");
    gw.probe(Duration::from_secs(10));
    assert_eq!(
        epoch(gw.agent.endpoint.clone()),
        epoch0,
        "the outbox kept its epoch"
    );
    println!("one agent per data directory: the second refused ({}); SIGHUP reloaded ({}), epoch {epoch0} kept", err.trim(), line.trim());
    gw.agent.stop_cleanly();
}

/// The systemd watchdog is fed only while the agent makes progress: with another process
/// holding the database's write lock, the pipeline cannot commit and stops turning, so the
/// agent stops sending `WATCHDOG=1` (systemd would restart it); once the lock is released it
/// feeds the watchdog again.
#[test]
fn the_watchdog_starves_when_the_pipeline_is_wedged() {
    let _one = serial();
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock_path = d.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::fs::write(d.join("secrets.toml"), "device_key_secret = \"367e1111111111111111111111118ebf\"\ntenant_secret = \"22222222222222222222222222222222\"\n").unwrap();
    chmod600(&d.join("secrets.toml"));
    std::fs::write(
        d.join("config.toml"),
        format!(
            "[store]\nstore_id = \"attack-store\"\ngateway_id = \"gw-1\"\n\n[privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"200ms\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [[sources.portal]]\nname = \"hook\"\nformat = \"webhook\"\nlisten = \"127.0.0.1:0\"\n\
             [[sources.portal.tokens]]\nname = \"portal\"\ntoken = \"{HOOK_TOKEN}\"\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(edge_e2e::bin())
        .args([
            "run",
            "--config",
            edge_e2e::path_str(&d.join("config.toml")),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.join("agent.log")).unwrap())
        .spawn()
        .unwrap();
    // Messages received over `secs` seconds.
    let listen = |secs: u64| {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 256];
        while Instant::now() < end {
            if let Ok(n) = sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        }
        got
    };
    let before = listen(5);
    assert!(before.iter().any(|m| m.contains("READY=1")), "{before:?}");
    let fed_before = before.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(
        fed_before >= 3,
        "fed every second while healthy: {before:?}"
    );
    // Another process takes the database's write lock and keeps it.
    let db = rusqlite::Connection::open(d.join("data/store-edge.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // Shorter than the store's busy timeout (5 s), after which the run ends with an error
    // and systemd starts it again.
    let during = listen(3);
    let fed_during = during.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    let after = listen(8);
    let fed_after = after.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    println!(
        "watchdog: fed {fed_before} times in 5 s while healthy, {fed_during} in 3 s with the database locked by another process, {fed_after} in 8 s after"
    );
    let exited = child.try_wait().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(d.join("agent.log")).unwrap();
    assert!(exited.is_none(), "the agent exited ({exited:?}):\n{log}");
    assert!(
        fed_during <= 1,
        "the watchdog was fed while the pipeline could not commit: {during:?}\n{log}"
    );
    assert!(
        fed_after >= 2,
        "the watchdog is fed again once the pipeline moves: {after:?}\n{log}"
    );
}
