//! Management over MQTT: the retained status with its Last Will, periodic telemetry, alert
//! events and commands, on the retailer's fleet broker (`[mqtt]`). No analytics data goes over
//! MQTT; the cloud pulls that over gRPC.
//!
//! # Topics (root `storeedge/<store_id>/<gateway_id>/`)
//! - `status` (retained, QoS 1): `{"online": true, "version", "started_ms", "config_version",
//!   "store_id", "gateway_id", "at_ms", "sources": [{"name", "kind", "state"}]}`, published on
//!   every connection, on `rebirth`, and whenever a source's state changes. The Last Will is the
//!   same document with `"online": false, "reason": "connection_lost"` (no time, no sources), so
//!   the broker publishes it about 1.5 × `keep_alive` after the gateway went silent (at once when
//!   the TCP connection breaks). A clean shutdown publishes `"online": false, "reason":
//!   "shutdown"` itself before it disconnects.
//! - `telemetry` every `telemetry_interval` and `events` for alerts (QoS 1, not retained): see
//!   [`telemetry`].
//! - `cmd/<name>` → `cmd/<name>/reply` (QoS 1): see [`commands`].
//!
//! # The connection
//! One task owns the rumqttc event loop and does nothing but poll it: after every `ConnAck` it
//! queues the subscription to `cmd/+` (a broker restarted without persistence forgot it) and
//! the online status through `try_subscribe`/`try_publish`, never awaiting inside the loop; it
//! backs off after errors (500 ms doubling to 30 s, reset by a `ConnAck`; rumqttc would retry at
//! once). The session is clean: commands sent while the gateway is offline are not executed
//! when it comes back (the operator sees it offline and sends them again).
//!
//! Incoming messages go to a worker task over a bounded queue ([`INBOX`]); when it is full the
//! message is dropped and counted (`mqtt_rejected_busy`) rather than stalling the event loop,
//! which must keep answering the broker's keep-alive. The worker executes commands, takes the
//! telemetry samples (SQLite reads in `spawn_blocking`) and publishes through the client's
//! bounded request queue ([`REQUESTS`]) with `try_publish`: when that queue is full a message
//! is dropped and counted (`mqtt_publish_dropped`). While the broker is away telemetry is not
//! queued (it would be stale; `telemetry_skipped_offline`), alert events are (they carry their
//! time) and go out after reconnection — except those queued in the moment before rumqttc
//! noticed the connection was gone, which the new clean session discards — and sources and the
//! store carry on as usual.
//!
//! Management counters (in telemetry's `mgmt`): `mqtt_connects`, `mqtt_errors`,
//! `mqtt_messages`, `mqtt_subscribe_refused`, `mqtt_publish_dropped`, `mqtt_rejected_<reason>`
//! (`too_large`, `malformed_json`, `missing_id`, `unknown_command`, `bad_request`, `busy`,
//! `foreign_topic`, `bad_topic`), `commands_executed`, `commands_repeated`,
//! `commands_unsupported`, `telemetry_skipped_offline`.

pub mod commands;
pub mod config;
pub mod status;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, TlsConfiguration,
    Transport,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::commands::{Command, Rejection, ReplyCache};
use self::config::MqttConfig;
use self::status::{status_json, Offline, SourceState, SourceStatus, StatusInfo};
use self::telemetry::{CounterWatch, Monitor, MonitorSettings, Sample, SourceCounters};
use crate::config::Config;
use crate::run::HealthInputs;
use crate::sources::wifi::config::WifiInput;

/// Requests (publishes, the subscription) waiting for the event loop.
pub const REQUESTS: usize = 256;
/// Incoming messages waiting for the worker.
pub const INBOX: usize = 64;
/// First wait after a connection error …
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// … doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Largest packet read: a request up to `MAX_PAYLOAD` with room to spare, so that one over
/// the limit is answered `too_large`. A packet larger than this breaks the connection (rumqttc
/// cannot skip it); the clean session then forgets it, so it is not delivered again.
const MAX_INCOMING_PACKET: usize = 4 * commands::MAX_PAYLOAD;
/// Largest packet written (a `sources` reply of a gateway with many sources).
const MAX_OUTGOING_PACKET: usize = 1 << 20;
/// How long a stop waits to publish the offline status and disconnect.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Longest command name answered (the reply topic repeats it).
const MAX_COMMAND_NAME: usize = 64;

/// The topics of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Topics {
    /// Topics under `storeedge/<store_id>/<gateway_id>/`.
    pub fn new(store_id: &str, gateway_id: &str) -> Topics {
        Topics {
            root: format!("storeedge/{store_id}/{gateway_id}/"),
        }
    }

    /// The retained status.
    pub fn status(&self) -> String {
        format!("{}status", self.root)
    }

    /// Telemetry.
    pub fn telemetry(&self) -> String {
        format!("{}telemetry", self.root)
    }

    /// Alert events.
    pub fn events(&self) -> String {
        format!("{}events", self.root)
    }

    /// The subscription for commands.
    pub fn commands(&self) -> String {
        format!("{}cmd/+", self.root)
    }

    /// The reply topic of command `name`.
    pub fn reply(&self, name: &str) -> String {
        format!("{}cmd/{name}/reply", self.root)
    }

    /// The command name of a message on `topic`, if it is one of this gateway's command
    /// topics (`<root>cmd/<name>`, one level).
    pub fn command_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let name = topic.strip_prefix(&self.root)?.strip_prefix("cmd/")?;
        (!name.contains('/')).then_some(name)
    }
}

/// State shared by the event-loop task and the worker.
struct Shared {
    topics: Topics,
    info: StatusInfo,
    connected: AtomicBool,
    sources: Mutex<Vec<SourceStatus>>,
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn count(&self, name: &str) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(name.to_string()).or_default() += 1;
        }
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn sources(&self) -> Vec<SourceStatus> {
        self.sources.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn status(&self, offline: Option<Offline>) -> String {
        let sources = self.sources();
        status_json(
            &self.info,
            offline,
            Some(&sources),
            Some(chrono::Utc::now().timestamp_millis()),
        )
    }

    /// Queues a QoS 1 publish without waiting; a full queue drops it (counted).
    fn publish(&self, client: &AsyncClient, topic: String, retain: bool, body: String) -> bool {
        match client.try_publish(topic, QoS::AtLeastOnce, retain, body.into_bytes()) {
            Ok(()) => true,
            Err(e) => {
                self.count("mqtt_publish_dropped");
                tracing::debug!(error = %e, "management message dropped: the MQTT request queue is full");
                false
            }
        }
    }
}

/// Starts the management task for `cfg` (with `[mqtt]` = `m`) on `tracker`.
pub fn spawn(
    cfg: &Config,
    m: &MqttConfig,
    health: HealthInputs,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let topics = Topics::new(&cfg.store_id, &cfg.gateway_id);
    let info = StatusInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_ms: health.started_ms,
        config_version: None,
        store_id: cfg.store_id.clone(),
        gateway_id: cfg.gateway_id.clone(),
    };
    let mut opts = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
    opts.set_keep_alive(m.keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET)
        .set_last_will(LastWill::new(
            topics.status(),
            status_json(&info, Some(Offline::ConnectionLost), None, None),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(c) = &m.credentials {
        opts.set_credentials(c.username.clone(), c.password.clone());
    }
    if let Some(tls) = &m.tls {
        let cc = tls
            .client_config()
            .map_err(|(_, e)| anyhow::anyhow!("[mqtt.tls]: {e}"))?;
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(cc),
        )));
    }
    let baseline: Vec<SourceCounters> = health
        .sources
        .iter()
        .map(|s| SourceCounters {
            name: s.name.clone(),
            kind: s.kind.to_string(),
            counters: s.values().into_iter().collect(),
        })
        .collect();
    let initial: Vec<SourceStatus> = baseline
        .iter()
        .map(|s| SourceStatus {
            name: s.name.clone(),
            kind: s.kind.clone(),
            state: SourceState::Starting,
        })
        .collect();
    let settings = MonitorSettings {
        started_ms: health.started_ms,
        low_disk_bytes: m.low_disk_bytes,
        counter_silence_ms: i64::try_from(m.counter_silence.as_millis()).unwrap_or(i64::MAX),
        opening_hours: m.opening_hours,
        timezone: cfg.timezone,
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
    };
    let monitor = Monitor::new(settings, baseline, chrono::Utc::now().timestamp_millis());
    let shared = Arc::new(Shared {
        topics,
        info,
        connected: AtomicBool::new(false),
        sources: Mutex::new(initial),
        counters: Mutex::new(BTreeMap::new()),
    });
    tracing::info!(broker = %m.broker(), client_id = %m.client_id, tls = m.tls.is_some(), status = %shared.topics.status(), "management MQTT");
    tracker.spawn(run(
        shared,
        opts,
        m.broker(),
        monitor,
        health,
        m.telemetry_interval,
        cancel,
    ));
    Ok(())
}

/// The event-loop task: connects, keeps the connection, hands messages to the worker, and
/// says goodbye at shutdown.
async fn run(
    shared: Arc<Shared>,
    opts: MqttOptions,
    broker: String,
    monitor: Monitor,
    health: HealthInputs,
    every: Duration,
    cancel: CancellationToken,
) {
    let (client, mut events) = AsyncClient::new(opts, REQUESTS);
    let (tx, rx) = mpsc::channel::<Publish>(INBOX);
    let worker = tokio::spawn(work(
        shared.clone(),
        client.clone(),
        rx,
        monitor,
        health,
        every,
        cancel.clone(),
    ));
    let mut backoff = BACKOFF_MIN;
    let mut failures: u32 = 0;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                shared.connected.store(true, Ordering::Relaxed);
                shared.count("mqtt_connects");
                backoff = BACKOFF_MIN;
                failures = 0;
                tracing::info!(broker = %broker, "management MQTT connected");
                // Queued for the event loop, never awaited here: this task must keep polling.
                if let Err(e) = client.try_subscribe(shared.topics.commands(), QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "cannot queue the management subscription");
                }
                shared.publish(&client, shared.topics.status(), true, shared.status(None));
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    shared.count("mqtt_subscribe_refused");
                    tracing::warn!(topic = %shared.topics.commands(), "the MQTT broker refused the command subscription (check the user's ACL)");
                } else {
                    tracing::info!(topic = %shared.topics.commands(), "management MQTT subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                shared.count("mqtt_messages");
                match tx.try_send(p) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        shared.count("mqtt_rejected_busy");
                        tracing::warn!("management message dropped: the command queue is full");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        tracing::error!("the management worker stopped");
                        break;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                shared.connected.store(false, Ordering::Relaxed);
                shared.count("mqtt_errors");
                failures = failures.saturating_add(1);
                // One warning per outage: a broker that is away for a day must not fill the log.
                if failures == 1 {
                    tracing::warn!(broker = %broker, error = %e, retry_in = ?backoff, "management MQTT connection failed; the agent keeps working and retries");
                } else {
                    tracing::debug!(broker = %broker, error = %e, failures, retry_in = ?backoff, "management MQTT connection failed again");
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    drop(tx);
    // The worker stops on the same token; after it, nothing else publishes.
    let _ = worker.await;
    let mut said_goodbye = false;
    if shared.connected.load(Ordering::Relaxed) {
        // The offline status goes out before the DISCONNECT on the same connection, so the
        // broker stores it; a clean DISCONNECT also discards the Last Will.
        let queued = shared.publish(
            &client,
            shared.topics.status(),
            true,
            shared.status(Some(Offline::Shutdown)),
        ) && client.try_disconnect().is_ok();
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        if queued {
            loop {
                match tokio::time::timeout_at(deadline, events.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => {
                        said_goodbye = true;
                        break;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
    }
    tracing::info!(offline_published = said_goodbye, "management MQTT stopped");
}

/// The worker: executes commands and publishes telemetry and alerts.
async fn work(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Publish>,
    mut monitor: Monitor,
    health: HealthInputs,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut cache = ReplyCache::new(commands::REPLY_CACHE);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            m = rx.recv() => match m {
                Some(p) => handle(&shared, &client, &mut cache, &health, &p),
                None => return,
            },
            _ = tick.tick() => tick_once(&shared, &client, &mut monitor, &health).await,
        }
    }
}

/// One telemetry tick: sample, judge, publish.
async fn tick_once(
    shared: &Shared,
    client: &AsyncClient,
    monitor: &mut Monitor,
    health: &HealthInputs,
) {
    let h = health.clone();
    let sampled = tokio::task::spawn_blocking(move || -> anyhow::Result<Sample> {
        let now = chrono::Utc::now().timestamp_millis();
        let snap = crate::run::health_snapshot(&h, now)?;
        let activity = crate::store::Reader::open(&h.data_dir)?.activity()?;
        Ok(Sample::from_health(snap, activity))
    })
    .await;
    let sample = match sampled {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "telemetry sample failed; retrying next interval");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "telemetry thread failed");
            return;
        }
    };
    let obs = monitor.observe(&sample, &shared.counters());
    let changed = match shared.sources.lock() {
        Ok(mut s) if *s != obs.sources => {
            *s = obs.sources.clone();
            true
        }
        _ => false,
    };
    let connected = shared.connected.load(Ordering::Relaxed);
    if changed && connected {
        shared.publish(client, shared.topics.status(), true, shared.status(None));
    }
    for e in &obs.events {
        tracing::info!(event = %e["event"].as_str().unwrap_or(""), source = %e["source"].as_str().unwrap_or("-"), "management alert");
        shared.publish(client, shared.topics.events(), false, e.to_string());
    }
    if connected {
        shared.publish(
            client,
            shared.topics.telemetry(),
            false,
            obs.telemetry.to_string(),
        );
    } else {
        shared.count("telemetry_skipped_offline");
    }
}

/// Answers one incoming message.
fn handle(
    shared: &Shared,
    client: &AsyncClient,
    cache: &mut ReplyCache,
    health: &HealthInputs,
    p: &Publish,
) {
    let Some(name) = shared.topics.command_name(&p.topic) else {
        // Not subscribed to, so a broker bug or a wide ACL: never acted on.
        shared.count("mqtt_rejected_foreign_topic");
        tracing::debug!(
            bytes = p.payload.len(),
            "ignored a message outside this gateway's command topics"
        );
        return;
    };
    if name.is_empty() || name.len() > MAX_COMMAND_NAME {
        shared.count("mqtt_rejected_bad_topic");
        return;
    }
    let reply_topic = shared.topics.reply(name);
    // Logs name only the commands there are: a topic is anyone's text.
    let shown = commands::COMMANDS
        .iter()
        .find(|c| **c == name)
        .copied()
        .unwrap_or("(unknown)");
    let req = match commands::parse(&p.payload) {
        Ok(r) => r,
        Err((id, rej)) => {
            shared.count(&format!("mqtt_rejected_{}", rej.reason));
            tracing::warn!(
                command = shown,
                reason = rej.reason,
                "management request rejected"
            );
            shared.publish(
                client,
                reply_topic,
                false,
                commands::reply_err(id.as_deref(), &rej),
            );
            return;
        }
    };
    if let Some(reply) = cache.get(name, &req.id) {
        shared.count("commands_repeated");
        tracing::debug!(
            command = shown,
            "repeated request id: answered again, not executed"
        );
        shared.publish(client, reply_topic, false, reply.to_string());
        return;
    }
    let outcome = commands::command(name, &req).and_then(|c| execute(shared, client, health, c));
    let reply = match outcome {
        Ok(result) => {
            shared.count("commands_executed");
            tracing::debug!(command = shown, "management command executed");
            commands::reply_ok(&req.id, result)
        }
        Err(rej) => {
            if rej.reason == "not_supported" {
                shared.count("commands_unsupported");
            } else {
                shared.count(&format!("mqtt_rejected_{}", rej.reason));
            }
            tracing::warn!(
                command = shown,
                reason = rej.reason,
                "management request rejected"
            );
            commands::reply_err(Some(&req.id), &rej)
        }
    };
    cache.insert(name, &req.id, reply.clone());
    shared.publish(client, reply_topic, false, reply);
}

/// Carries out a command; the reply's `result`.
fn execute(
    shared: &Shared,
    client: &AsyncClient,
    health: &HealthInputs,
    cmd: Command,
) -> Result<Value, Rejection> {
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        Command::Ping => Ok(json!({
            "pong": true,
            "at_ms": now,
            "uptime_s": (now - shared.info.started_ms).max(0) / 1000,
            "version": shared.info.version,
        })),
        Command::Rebirth => {
            let queued = shared.publish(client, shared.topics.status(), true, shared.status(None));
            Ok(json!({ "republished": queued }))
        }
        Command::Sources => {
            let states = shared.sources();
            let sources: Vec<Value> = health
                .sources
                .iter()
                .map(|s| {
                    let state = states
                        .iter()
                        .find(|st| st.name == s.name)
                        .map_or(SourceState::Starting, |st| st.state);
                    let counters: BTreeMap<String, u64> = s.values().into_iter().collect();
                    json!({"name": s.name, "kind": s.kind, "state": state, "counters": counters})
                })
                .collect();
            Ok(json!({ "sources": sources }))
        }
        Command::SetLogLevel(filter) => {
            commands::reload_log(&filter).map_err(|e| Rejection::new("bad_request", e))?;
            tracing::info!(filter = %filter, "log filter changed over MQTT");
            Ok(json!({ "filter": filter }))
        }
        Command::Unsupported(_) => Err(Rejection::new("not_supported", "not supported yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_of_one_gateway() {
        let t = Topics::new("s-1", "gw-1");
        assert_eq!(t.status(), "storeedge/s-1/gw-1/status");
        assert_eq!(t.telemetry(), "storeedge/s-1/gw-1/telemetry");
        assert_eq!(t.events(), "storeedge/s-1/gw-1/events");
        assert_eq!(t.commands(), "storeedge/s-1/gw-1/cmd/+");
        assert_eq!(t.reply("ping"), "storeedge/s-1/gw-1/cmd/ping/reply");
        assert_eq!(t.command_name("storeedge/s-1/gw-1/cmd/ping"), Some("ping"));
        assert_eq!(t.command_name("storeedge/s-1/gw-1/cmd/ping/reply"), None);
        assert_eq!(t.command_name("storeedge/s-1/gw-2/cmd/ping"), None);
        assert_eq!(t.command_name("storeedge/s-1/gw-10/cmd/ping"), None);
        assert_eq!(t.command_name("storeedge/s-1/gw-1/status"), None);
    }
}
