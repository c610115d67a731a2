//! A real Mosquitto broker for the MQTT tests: started on a loopback port the test chose
//! (anonymous and plaintext by default, or with the test's own listeners), without
//! persistence, logging to `mosquitto.log` in the test's directory, and killed when dropped.
//! And the test side's [`Watcher`]: rumqttc's blocking client, subscribed to everything under
//! `storeedge/`, keeping every message it receives.
//!
//! Mosquitto is required (`scripts/test.sh` installs it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

/// The broker binary: `/usr/sbin/mosquitto` (Debian), else `mosquitto` on the PATH.
pub fn mosquitto_bin() -> PathBuf {
    let sbin = Path::new("/usr/sbin/mosquitto");
    if sbin.exists() {
        return sbin.to_path_buf();
    }
    PathBuf::from("mosquitto")
}

/// A free TCP port on 127.0.0.1 (bound and released: free unless someone takes it first).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// A loopback port whose connections are refused for as long as the returned socket lives: it
/// is bound but never listens, so nothing else (another test's listener, an ephemeral port)
/// can take it, which a bound-and-released port does not promise.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("binding 127.0.0.1:0");
    let port = socket.local_addr().expect("local address").port();
    (socket, port)
}

/// A Mosquitto broker on a loopback port (no persistence); killed when dropped.
pub struct Broker {
    child: Child,
}

impl Broker {
    /// Anonymous and plaintext on 127.0.0.1:`port`; waits until it accepts connections.
    pub fn start(dir: &Path, port: u16) -> Broker {
        Broker::with_config(
            dir,
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
            port,
        )
    }

    /// With the listeners (and their settings) of `listeners`, writing `mosquitto.conf` in
    /// `dir` and waiting (up to 20 s) for `port` to accept connections.
    pub fn with_config(dir: &Path, listeners: &str, port: u16) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("persistence false\nlog_dest stderr\n{listeners}"),
        )
        .expect("writing mosquitto.conf");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("mosquitto.log"))
            .expect("opening mosquitto.log");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting mosquitto ({e}): install it (scripts/test.sh does)")
            });
        let mut broker = Broker { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Kills the broker (SIGKILL: a crash, not a clean stop) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message the [`Watcher`] received. `retain` is only set on what a new subscription
/// delivers from the broker's store (MQTT 3.1.1 clears it on live deliveries).
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// When the watcher received it.
    pub at: Instant,
}

impl Msg {
    /// The payload as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A test-side MQTT client (the operator, the fleet) subscribed to `storeedge/#`, keeping every
/// message it receives (it resubscribes after each reconnection). Topics the methods take
/// are relative to one gateway's root (`storeedge/<store>/<gateway>/`), except in
/// [`Watcher::publish`]. Disconnects when dropped.
pub struct Watcher {
    client: Client,
    root: String,
    limit: Duration,
    msgs: Arc<Mutex<Vec<Msg>>>,
    subscribed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// How long [`Watcher::start`]'s watcher waits for anything before it fails the test.
    pub const DEFAULT_LIMIT: Duration = Duration::from_secs(30);

    /// Connects to the broker on 127.0.0.1:`port` as `client_id`, for the gateway whose topics
    /// start with `root` (like `storeedge/<store>/<gateway>/`), and waits until it subscribed.
    pub fn start(port: u16, client_id: &str, root: &str) -> Watcher {
        Watcher::start_with_limit(port, client_id, root, Watcher::DEFAULT_LIMIT)
    }

    /// [`Watcher::start`], waiting up to `limit` (instead of 30 s) for the subscription, a
    /// message and a command's reply.
    pub fn start_with_limit(port: u16, client_id: &str, root: &str, limit: Duration) -> Watcher {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = Client::new(opts, 64);
        let (msgs, subscribed, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (m, s, st, c) = (
            msgs.clone(),
            subscribed.clone(),
            stop.clone(),
            client.clone(),
        );
        std::thread::spawn(move || {
            for ev in conn.iter() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = c.try_subscribe("storeedge/#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        s.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        m.lock().expect("the watcher's messages").push(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                            at: Instant::now(),
                        })
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        let w = Watcher {
            client,
            root: root.to_string(),
            limit,
            msgs,
            subscribed,
            stop,
        };
        w.wait_subscribed(1);
        w
    }

    /// Waits until the watcher has subscribed `n` times (once per connection).
    pub fn wait_subscribed(&self, n: usize) {
        let deadline = Instant::now() + self.limit;
        while self.subscribed.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the watcher did not subscribe");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every message so far, in the order received.
    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().expect("the watcher's messages").clone()
    }

    /// Messages on root + `topic` so far.
    pub fn on(&self, topic: &str) -> Vec<Msg> {
        let t = format!("{}{topic}", self.root);
        self.all().into_iter().filter(|m| m.topic == t).collect()
    }

    /// What was received, for a failure message: everything but telemetry (only the last
    /// one) and oversized payloads (only their size).
    pub fn dump(&self) -> String {
        let all = self.all();
        let last_telemetry = all.iter().rposition(|m| m.topic.ends_with("/telemetry"));
        all.iter()
            .enumerate()
            .filter(|(i, m)| !m.topic.ends_with("/telemetry") || Some(*i) == last_telemetry)
            .map(|(_, m)| match m.payload.len() {
                n if n > 4096 => format!("{} ({n} bytes)", m.topic),
                _ => format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the first message on root + `topic` (from the `skip`th on) whose JSON
    /// passes `ok`.
    pub fn wait_for(
        &self,
        topic: &str,
        skip: usize,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Msg {
        let deadline = Instant::now() + self.limit;
        loop {
            if let Some(m) = self
                .on(topic)
                .into_iter()
                .skip(skip)
                .find(|m| ok(&m.json()))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {topic}; got:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes `payload` (QoS 1) on `topic`: the whole topic, not relative to the root.
    pub fn publish(&self, topic: &str, retain: bool, payload: &[u8]) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .expect("queueing a publish");
    }

    /// Sends command `name` with `body` on root + `cmd/<name>` and waits for a new reply
    /// carrying its `id`.
    pub fn command(&self, name: &str, body: Value) -> Value {
        let id = body["id"].clone();
        let reply_topic = format!("cmd/{name}/reply");
        let before = self
            .on(&reply_topic)
            .iter()
            .filter(|m| m.json()["id"] == id)
            .count();
        self.publish(
            &format!("{}cmd/{name}", self.root),
            false,
            body.to_string().as_bytes(),
        );
        let deadline = Instant::now() + self.limit;
        loop {
            let replies: Vec<Value> = self
                .on(&reply_topic)
                .iter()
                .map(Msg::json)
                .filter(|r| r["id"] == id)
                .collect();
            if replies.len() > before {
                return replies[before].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no reply to {name} {body}; got:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }
}
