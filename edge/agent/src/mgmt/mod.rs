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
//! - `config/desired` (subscribed; the fleet usually retains it) → `config/reported`
//!   (retained, QoS 1): `{"version", "result": "applied" | "rejected" | "rolled_back",
//!   "running_version", "scope", "restarted", "stopped", "error", "reason", "at_ms"}`; how a
//!   config is applied is in [`crate::supervise`]. A version at or below the running one, and
//!   the exact repeat of a refused one, publish nothing (counted `config_ignored_stale`,
//!   `config_ignored_repeat`).
//!
//! # The connection
//! MQTT 5 (rumqttc's v5 client). One task owns the event loop and does nothing but poll it:
//! after every `ConnAck` it queues the subscriptions to `cmd/+` (with Retain Handling "never":
//! commands are never retained by design, and a retained one is not delivered; one that still
//! arrives flagged retained is ignored, `mqtt_ignored_retained`) and to `config/desired`, and
//! the online status, through `try_subscribe_many`/`try_publish`, never awaiting inside the
//! loop; it backs off after errors (500 ms doubling to 30 s, reset by a `ConnAck`; rumqttc
//! would retry at once). The session is clean: commands sent while the gateway is offline are
//! not executed when it comes back (the operator sees it offline and sends them again).
//!
//! The CONNECT announces a Maximum Packet Size ([`MAX_INCOMING_PACKET`], four times the largest
//! request): the broker drops a larger message for us rather than send it, so no message can
//! break the session; one between the request limit and that size arrives and is answered
//! `too_large`. It also announces a Receive Maximum ([`RECEIVE_MAXIMUM`]) and acknowledges each
//! message only once it was handed to the worker or answered: a flood of commands is paced by
//! the broker to the speed at which the gateway answers.
//!
//! Incoming messages go to a worker task over a bounded queue ([`INBOX`]); when it is full the
//! message is answered `busy` (a `busy` reply, or a `busy` outcome on `config/reported`) and
//! counted (`mqtt_rejected_busy`) rather than stalling the event loop, which must keep
//! answering the broker's keep-alive; at most [`MAX_RUNNING`] `reload`/`flush` run at once,
//! more are answered `busy`. The worker executes commands, takes the telemetry samples
//! (SQLite reads in `spawn_blocking`) and publishes with `try_publish`; what the client's
//! bounded request queue ([`REQUESTS`]) has no room for waits in a backlog of [`BACKLOG`]
//! messages that the event loop drains as the broker acknowledges (above [`BACKLOG_HIGH`]
//! incoming messages are held unacknowledged), and only a full backlog drops a message
//! (counted, `mqtt_publish_dropped`). While the broker is away telemetry is not
//! queued (it would be stale; `telemetry_skipped_offline`), alert events are (they carry their
//! time) and go out after reconnection, and sources and the store carry on as usual.
//!
//! Management counters (in telemetry's `mgmt`): `mqtt_connects`, `mqtt_errors`,
//! `mqtt_messages`, `mqtt_subscribe_refused`, `mqtt_publish_dropped`, `mqtt_ignored_retained`,
//! `mqtt_rejected_<reason>` (`too_large`, `malformed_json`, `missing_id`, `unknown_command`,
//! `bad_request`, `busy`, `overload`, `foreign_topic`, `bad_topic`, `missing_version`,
//! `missing_config`), `commands_executed`,
//! `commands_repeated`, `telemetry_skipped_offline`, `config_applied`, `config_rejected`,
//! `config_rolled_back`, `config_ignored_<why>`.

pub mod commands;
pub mod config;
pub mod status;
pub mod telemetry;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Filter, LastWill, Packet, Publish, RetainForwardRule};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::commands::{Command, Rejection, ReplyCache};
use self::config::MqttConfig;
use self::status::{status_json, Offline, SourceState, SourceStatus, StatusInfo};
use self::telemetry::{Monitor, MonitorSettings, Sample, SourceCounters};
use crate::config::Config;
use crate::supervise::{Apply, ApplyRequest, Live, Outcome};

/// Requests (publishes, the subscription) waiting for the event loop.
pub const REQUESTS: usize = 256;
/// Incoming messages waiting for the worker.
pub const INBOX: usize = 64;
/// First wait after a connection error …
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// … doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Largest packet read, announced to the broker as our MQTT 5 Maximum Packet Size: a request
/// up to `MAX_PAYLOAD` (and a config up to `MAX_CONFIG`) with room to spare, so that one over
/// its limit still arrives and is answered `too_large`. The broker drops anything larger for
/// us (counted in its own statistics), so the session survives it.
const MAX_INCOMING_PACKET: u32 = 4 * commands::MAX_PAYLOAD as u32;
/// Long commands (`reload`, `flush`) carried out at once; one more is answered `busy`.
const MAX_RUNNING: usize = 4;
/// Publishes that may wait for the broker to take them ([`Shared::publish`]).
const BACKLOG: usize = 1024;
/// Above this many waiting publishes, incoming messages are held unacknowledged, so that the
/// broker pauses at our Receive Maximum instead of us answering faster than it takes replies.
const BACKLOG_HIGH: usize = 256;
/// Our MQTT 5 Receive Maximum: QoS 1 messages the broker may have sent us unacknowledged.
const RECEIVE_MAXIMUM: u16 = 32;
/// Messages held unacknowledged at most (QoS 0 ones are not paced by the broker); one more is
/// dropped and counted (`mqtt_rejected_overload`).
const HELD: usize = 256;
/// How long a stop waits to publish the offline status and disconnect.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Longest command name answered (the reply topic repeats it).
const MAX_COMMAND_NAME: usize = 64;
/// Longest a `flush` waits for the pipeline.
const FLUSH_LIMIT: Duration = Duration::from_secs(30);
/// Replies and outcomes of long requests on their way back to the worker.
const DONE_QUEUE: usize = 16;

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

    /// Configs pushed by the fleet.
    pub fn desired(&self) -> String {
        format!("{}config/desired", self.root)
    }

    /// What became of them (retained).
    pub fn reported(&self) -> String {
        format!("{}config/reported", self.root)
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
    live: Arc<Live>,
    apply: mpsc::Sender<Apply>,
    connected: AtomicBool,
    sources: Mutex<Vec<SourceStatus>>,
    counters: Mutex<BTreeMap<String, u64>>,
    /// Publishes waiting for room in the client's request queue (at most [`BACKLOG`]).
    backlog: Mutex<VecDeque<(String, bool, String)>>,
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
        let info = StatusInfo {
            config_version: self.live.get().config_version,
            ..self.info.clone()
        };
        status_json(
            &info,
            offline,
            Some(&sources),
            Some(chrono::Utc::now().timestamp_millis()),
        )
    }

    /// Queues a QoS 1 publish without waiting; a full queue drops it (counted).
    /// Queues a QoS 1 publish without waiting. When the client's request queue is full (the
    /// broker has not yet acknowledged the messages in flight), it waits in the backlog, which
    /// the event loop drains as the broker acknowledges; a full backlog drops it (counted).
    fn publish(&self, client: &AsyncClient, topic: String, retain: bool, body: String) -> bool {
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if backlog.is_empty() {
            match client.try_publish(topic.clone(), QoS::AtLeastOnce, retain, body.clone()) {
                Ok(()) => return true,
                Err(_) => {
                    backlog.push_back((topic, retain, body));
                    return true;
                }
            }
        }
        if backlog.len() >= BACKLOG {
            drop(backlog);
            self.count("mqtt_publish_dropped");
            tracing::debug!("management message dropped: the MQTT backlog is full");
            return false;
        }
        backlog.push_back((topic, retain, body));
        true
    }

    /// Moves what waits in the backlog to the client while it takes it, in order; gives how
    /// many still wait.
    fn drain(&self, client: &AsyncClient) -> usize {
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((topic, retain, body)) = backlog.front() {
            if client
                .try_publish(topic.clone(), QoS::AtLeastOnce, *retain, body.clone())
                .is_err()
            {
                break;
            }
            backlog.pop_front();
        }
        backlog.len()
    }
}

/// What management reaches of the service.
pub struct Hooks {
    /// The running service, as it changes.
    pub live: Arc<Live>,
    /// Where configs and `reload` go.
    pub apply: mpsc::Sender<Apply>,
    /// Process start, UTC ms.
    pub started_ms: i64,
}

/// Starts the management task for `cfg` (with `[mqtt]` = `m`) on `tracker`.
pub fn spawn(
    cfg: &Config,
    m: &MqttConfig,
    hooks: Hooks,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let topics = Topics::new(&cfg.store_id, &cfg.gateway_id);
    let now = hooks.live.get();
    let info = StatusInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_ms: hooks.started_ms,
        config_version: now.config_version,
        store_id: cfg.store_id.clone(),
        gateway_id: cfg.gateway_id.clone(),
    };
    let mut opts = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
    // MQTT 5: the Maximum Packet Size we announce binds the broker, which drops a larger
    // message for us instead of sending it (an MQTT 3.1.1 client could only close the
    // connection, and a retained one would come back on every reconnection).
    opts.set_keep_alive(m.keep_alive)
        .set_clean_start(true)
        .set_max_packet_size(Some(MAX_INCOMING_PACKET))
        // Acknowledged once handled, with at most RECEIVE_MAXIMUM in flight: the broker
        // paces a flood of commands to the speed at which we answer them.
        .set_manual_acks(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_last_will(LastWill::new(
            topics.status(),
            status_json(&info, Some(Offline::ConnectionLost), None, None),
            QoS::AtLeastOnce,
            true,
            None,
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
    let baseline: Vec<SourceCounters> = now
        .health
        .as_ref()
        .map(|h| h.sources())
        .unwrap_or_default()
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
        started_ms: hooks.started_ms,
        low_disk_bytes: m.low_disk_bytes,
        counter_silence_ms: i64::try_from(m.counter_silence.as_millis()).unwrap_or(i64::MAX),
        opening_hours: m.opening_hours,
        timezone: cfg.timezone,
        live_radios: now.live_radios.clone(),
        live_counters: now.live_counters.clone(),
    };
    let monitor = Monitor::new(settings, baseline, chrono::Utc::now().timestamp_millis());
    let shared = Arc::new(Shared {
        topics,
        info,
        live: hooks.live,
        apply: hooks.apply,
        connected: AtomicBool::new(false),
        sources: Mutex::new(initial),
        counters: Mutex::new(BTreeMap::new()),
        backlog: Mutex::new(VecDeque::new()),
    });
    tracing::info!(broker = %m.broker(), client_id = %m.client_id, tls = m.tls.is_some(), status = %shared.topics.status(), "management MQTT");
    tracker.spawn(run(
        shared,
        opts,
        m.broker(),
        monitor,
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
        every,
        cancel.clone(),
    ));
    let mut backoff = BACKOFF_MIN;
    let mut failures: u32 = 0;
    // Incoming messages held unacknowledged while the backlog is high, with the connection
    // they came on; acknowledgements the client's queue had no room for.
    let mut held: VecDeque<(u64, Publish)> = VecDeque::new();
    let mut acks: VecDeque<Publish> = VecDeque::new();
    let mut connection: u64 = 0;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            e = events.poll() => e,
        };
        let mut stop = false;
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connection += 1;
                // Acknowledgements belong to the session that ended.
                acks.clear();
                shared.connected.store(true, Ordering::Relaxed);
                shared.count("mqtt_connects");
                backoff = BACKOFF_MIN;
                failures = 0;
                tracing::info!(broker = %broker, "management MQTT connected");
                // Queued for the event loop, never awaited here: this task must keep polling.
                // Commands are never retained: the broker is asked not to deliver retained
                // ones at all (and any that still comes is ignored by the worker); a retained
                // `config/desired` is how the fleet keeps a gateway's config.
                let mut cmds = Filter::new(shared.topics.commands(), QoS::AtLeastOnce);
                cmds.retain_forward_rule = RetainForwardRule::Never;
                let desired = Filter::new(shared.topics.desired(), QoS::AtLeastOnce);
                for filter in [cmds, desired] {
                    if let Err(e) = client.try_subscribe_many([filter]) {
                        tracing::warn!(error = %e, "cannot queue a management subscription");
                    }
                }
                shared.publish(&client, shared.topics.status(), true, shared.status(None));
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| {
                    !matches!(
                        c,
                        rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                    )
                }) {
                    shared.count("mqtt_subscribe_refused");
                    tracing::warn!(root = %shared.topics.root, "the MQTT broker refused a management subscription (check the user's ACL for cmd/+ and config/desired)");
                } else {
                    tracing::info!(root = %shared.topics.root, "management MQTT subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                shared.count("mqtt_messages");
                if held.len() >= HELD {
                    shared.count("mqtt_rejected_overload");
                    acks.push_back(p);
                } else {
                    held.push_back((connection, p));
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
        // Acknowledgements first (they let the broker send more), then the backlog, then the
        // held messages while the backlog is low; nothing here waits.
        while let Some(p) = acks.front() {
            if client.try_ack(p).is_err() {
                break;
            }
            acks.pop_front();
        }
        let mut waiting = shared.drain(&client);
        while waiting < BACKLOG_HIGH {
            let Some((came_on, p)) = held.pop_front() else {
                break;
            };
            match tx.try_send(p.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shared.count("mqtt_rejected_busy");
                    tracing::debug!("management message refused: the command queue is full");
                    busy(&shared, &client, &p);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!("the management worker stopped");
                    stop = true;
                    break;
                }
            }
            if came_on == connection && client.try_ack(&p).is_err() {
                acks.push_back(p);
            }
            waiting = shared.drain(&client);
        }
        if stop {
            break;
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

/// Answers a message the worker had no room for: a command gets a `busy` reply, a config a
/// `busy` outcome, so the sender hears back and may send it again (never silence). Queued with
/// `try_publish`, never awaited: this runs in the event loop.
fn busy(shared: &Shared, client: &AsyncClient, p: &Publish) {
    let Ok(topic) = std::str::from_utf8(&p.topic) else {
        return;
    };
    if p.retain {
        return;
    }
    if topic == shared.topics.desired() {
        let version = commands::desired(&p.payload).map(|(v, _)| v).ok();
        report(
            shared,
            client,
            &Outcome::rejected(
                version,
                shared.live.get().config_version,
                "busy",
                "the gateway is busy with other requests; push it again".into(),
            ),
        );
        return;
    }
    let Some(name) = shared.topics.command_name(topic) else {
        return;
    };
    if name.is_empty() || name.len() > MAX_COMMAND_NAME {
        return;
    }
    let id = match commands::parse(&p.payload) {
        Ok(r) => Some(r.id),
        Err((id, _)) => id,
    };
    let rej = Rejection::new(
        "busy",
        "the gateway is busy with other requests; send it again",
    );
    shared.publish(
        client,
        shared.topics.reply(name),
        false,
        commands::reply_err(id.as_deref(), &rej),
    );
}

/// A long request finished (its reply, or a config's outcome), back to the worker.
enum Done {
    /// A command's reply.
    Reply {
        name: &'static str,
        id: String,
        reply: String,
    },
    /// What became of a pushed config.
    Reported(Outcome),
}

/// The worker: executes commands, hands configs to the supervisor, and publishes telemetry
/// and alerts.
async fn work(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Publish>,
    mut monitor: Monitor,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut cache = ReplyCache::new(commands::REPLY_CACHE);
    // Requests still being carried out, by (command, id): a repeat is answered when they end.
    let mut pending: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(DONE_QUEUE);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            m = rx.recv() => match m {
                Some(p) => {
                    let mut w = Worker { shared: &shared, client: &client, cache: &mut cache, pending: &mut pending, done: &done_tx };
                    w.handle(&p);
                }
                None => return,
            },
            Some(d) = done_rx.recv() => match d {
                Done::Reply { name, id, reply } => {
                    pending.remove(&(name, id.clone()));
                    cache.insert(name, &id, reply.clone());
                    shared.publish(&client, shared.topics.reply(name), false, reply);
                }
                Done::Reported(outcome) => report(&shared, &client, &outcome),
            },
            _ = tick.tick() => tick_once(&shared, &client, &mut monitor).await,
        }
    }
}

/// Publishes what became of a config (retained), counts it, and republishes the status when
/// the running version changed.
fn report(shared: &Shared, client: &AsyncClient, outcome: &Outcome) {
    if outcome.result == "ignored" {
        shared.count(&format!(
            "config_ignored_{}",
            outcome.error.unwrap_or("other")
        ));
        tracing::info!(version = ?outcome.version, why = outcome.error.unwrap_or(""), "pushed config ignored");
        return;
    }
    shared.count(&format!("config_{}", outcome.result));
    let mut doc = serde_json::to_value(outcome).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut doc {
        m.insert("at_ms".into(), json!(chrono::Utc::now().timestamp_millis()));
    }
    shared.publish(client, shared.topics.reported(), true, doc.to_string());
    if outcome.result == "applied" {
        shared.publish(client, shared.topics.status(), true, shared.status(None));
    }
}

/// One telemetry tick: sample, judge, publish.
async fn tick_once(shared: &Shared, client: &AsyncClient, monitor: &mut Monitor) {
    let live = shared.live.get();
    let Some(h) = live.health else {
        // Between two runs of an apply: nothing to sample.
        return;
    };
    monitor.watch(live.live_radios, live.live_counters);
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

/// What a command does.
enum Executed {
    /// Done now, with this result.
    Now(Value),
    /// Under way; its reply comes back as [`Done::Reply`].
    Later,
}

/// The worker's state while it answers one message.
struct Worker<'a> {
    shared: &'a Shared,
    client: &'a AsyncClient,
    cache: &'a mut ReplyCache,
    pending: &'a mut BTreeSet<(&'static str, String)>,
    done: &'a mpsc::Sender<Done>,
}

impl Worker<'_> {
    /// Answers one incoming message.
    fn handle(&mut self, p: &Publish) {
        let shared = self.shared;
        let Ok(topic) = std::str::from_utf8(&p.topic) else {
            shared.count("mqtt_rejected_bad_topic");
            return;
        };
        if topic == shared.topics.desired() {
            self.desired(&p.payload);
            return;
        }
        let Some(name) = shared.topics.command_name(topic) else {
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
        if p.retain {
            // Commands are never retained: one kept by the broker would run again on every
            // reconnection (and after every restart). Not executed, not answered.
            shared.count("mqtt_ignored_retained");
            tracing::debug!("a retained command was ignored");
            return;
        }
        let reply_topic = shared.topics.reply(name);
        // Logs name only the commands there are: a topic is anyone's text.
        let known = commands::COMMANDS.iter().find(|c| **c == name).copied();
        let shown = known.unwrap_or("(unknown)");
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
                    self.client,
                    reply_topic,
                    false,
                    commands::reply_err(id.as_deref(), &rej),
                );
                return;
            }
        };
        if let Some(reply) = self.cache.get(name, &req.id) {
            shared.count("commands_repeated");
            tracing::debug!(
                command = shown,
                "repeated request id: answered again, not executed"
            );
            shared.publish(self.client, reply_topic, false, reply.to_string());
            return;
        }
        if let Some(k) = known {
            if self.pending.contains(&(k, req.id.clone())) {
                shared.count("commands_repeated");
                tracing::debug!(
                    command = shown,
                    "repeated request id while it runs: answered when done"
                );
                return;
            }
        }
        let outcome = commands::command(name, &req).and_then(|c| self.execute(shown, &req.id, c));
        let reply = match outcome {
            Ok(Executed::Later) => return,
            Ok(Executed::Now(result)) => {
                shared.count("commands_executed");
                tracing::debug!(command = shown, "management command executed");
                commands::reply_ok(&req.id, result)
            }
            Err(rej) => {
                shared.count(&format!("mqtt_rejected_{}", rej.reason));
                tracing::warn!(
                    command = shown,
                    reason = rej.reason,
                    "management request rejected"
                );
                commands::reply_err(Some(&req.id), &rej)
            }
        };
        self.cache.insert(name, &req.id, reply.clone());
        shared.publish(self.client, reply_topic, false, reply);
    }

    /// A config pushed on `config/desired`: checked here, applied by the supervisor.
    fn desired(&mut self, payload: &[u8]) {
        let shared = self.shared;
        let (version, text) = match commands::desired(payload) {
            Ok(d) => d,
            Err((version, rej)) => {
                shared.count(&format!("mqtt_rejected_{}", rej.reason));
                tracing::warn!(reason = rej.reason, "pushed config rejected");
                report(
                    shared,
                    self.client,
                    &Outcome::rejected(
                        version,
                        shared.live.get().config_version,
                        rej.reason,
                        rej.detail,
                    ),
                );
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        let request = Apply {
            request: ApplyRequest::Desired { version, text },
            reply: tx,
        };
        if self.shared.apply.try_send(request).is_err() {
            shared.count("mqtt_rejected_busy");
            report(
                shared,
                self.client,
                &Outcome::rejected(
                    Some(version),
                    shared.live.get().config_version,
                    "busy",
                    "other configs are being applied; push it again".into(),
                ),
            );
            return;
        }
        let done = self.done.clone();
        tokio::spawn(async move {
            if let Ok(outcome) = rx.await {
                let _ = done.send(Done::Reported(outcome)).await;
            }
        });
    }

    /// Carries out a command.
    fn execute(
        &mut self,
        name: &'static str,
        id: &str,
        cmd: Command,
    ) -> Result<Executed, Rejection> {
        let shared = self.shared;
        let now = chrono::Utc::now().timestamp_millis();
        match cmd {
            Command::Ping => Ok(Executed::Now(json!({
                "pong": true,
                "at_ms": now,
                "uptime_s": (now - shared.info.started_ms).max(0) / 1000,
                "version": shared.info.version,
            }))),
            Command::Rebirth => {
                let queued = shared.publish(
                    self.client,
                    shared.topics.status(),
                    true,
                    shared.status(None),
                );
                Ok(Executed::Now(json!({ "republished": queued })))
            }
            Command::Sources => {
                let states = shared.sources();
                let stats = shared
                    .live
                    .get()
                    .health
                    .map(|h| h.sources())
                    .unwrap_or_default();
                let sources: Vec<Value> = stats
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
                Ok(Executed::Now(json!({ "sources": sources })))
            }
            Command::SetLogLevel(filter) => {
                commands::reload_log(&filter).map_err(|e| Rejection::new("bad_request", e))?;
                tracing::info!(filter = %filter, "log filter changed over MQTT");
                Ok(Executed::Now(json!({ "filter": filter })))
            }
            Command::Reload => {
                self.room()?;
                let (tx, rx) = oneshot::channel();
                let request = Apply {
                    request: ApplyRequest::Reload,
                    reply: tx,
                };
                shared.apply.try_send(request).map_err(|_| {
                    Rejection::new("busy", "configs are being applied; send it again")
                })?;
                self.later(name, id, async move {
                    match rx.await {
                        // The reply carries the outcome whatever it was, like `config/reported`.
                        Ok(o) => (true, serde_json::to_value(&o).unwrap_or_else(|_| json!({}))),
                        Err(_) => (false, json!({"reason": "the agent is stopping"})),
                    }
                });
                Ok(Executed::Later)
            }
            Command::Flush => {
                self.room()?;
                let gate = shared.live.get().flush.ok_or_else(|| {
                    Rejection::new("busy", "the agent is restarting its sources; send it again")
                })?;
                self.later(name, id, async move {
                    let r = tokio::task::spawn_blocking(move || gate.request(FLUSH_LIMIT)).await;
                    match r {
                        Ok(Some(f)) => (
                            true,
                            json!({"visits": f.visits, "hours": f.hours, "checkpoint": true}),
                        ),
                        _ => (
                            false,
                            json!({"reason": format!("the pipeline did not answer within {FLUSH_LIMIT:?}")}),
                        ),
                    }
                });
                Ok(Executed::Later)
            }
        }
    }

    /// Whether another long command may start now (else it is answered `busy`).
    fn room(&self) -> Result<(), Rejection> {
        if self.pending.len() >= MAX_RUNNING {
            return Err(Rejection::new(
                "busy",
                "other reload or flush commands are running; send it again",
            ));
        }
        Ok(())
    }

    /// Runs `work` beside the worker; its (ok, result) becomes the reply to `id`.
    fn later(
        &mut self,
        name: &'static str,
        id: &str,
        work: impl std::future::Future<Output = (bool, Value)> + Send + 'static,
    ) {
        self.shared.count("commands_executed");
        self.pending.insert((name, id.to_string()));
        let (done, id) = (self.done.clone(), id.to_string());
        tokio::spawn(async move {
            let (ok, result) = work.await;
            let reply = if ok {
                commands::reply_ok(&id, result)
            } else {
                let reason = result["reason"].as_str().unwrap_or("failed").to_string();
                commands::reply_err(Some(&id), &Rejection::new("failed", reason))
            };
            let _ = done.send(Done::Reply { name, id, reply }).await;
        });
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
