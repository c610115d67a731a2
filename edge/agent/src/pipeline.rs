//! The pipeline: merges the sources' frames in time order, keys devices, runs the core and
//! commits what it produces.
//!
//! Runs on one blocking thread. Frames from several sniffers are merged by timestamp with
//! per-source watermarks (a source that has nothing queued holds the merge back only until its
//! watermark passes the next frame), so replaying files gives the same order, and the same
//! visits, every time. Commits happen every `commit_interval`; every `checkpoint_interval` the
//! commit also carries the core snapshot and the cursors of exactly the frames the snapshot
//! has seen, which is what lets a restart resume without losing or double-counting anything.
//!
//! A service can change the merge while it runs ([`LaneCtl`]): a Wi-Fi or portal source
//! restarted alone after a config change leaves the merge at a checkpoint carrying its cursor
//! and joins again from there, while the other sources and the open visits stay.
//!
//! A live agent also publishes live events: a known person's arrival as soon as the sighting
//! is processed, and each visit's end once its commit succeeded.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_core::{snapshot, DeviceKey, DeviceKeyer, LocalClock, Sessionizer, Sighting, ZoneId};
use edge_proto::v1 as pb;
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

use crate::sources::{Frame, Login, SourceMsg};
use crate::stats::SourceStats;
use crate::store::{Batch, Binding, Checkpoint, CommitFailed, Cursor, SightingRow, Store};
use crate::sync::live::{self, LiveHub};

/// Where live events go, and the persons known for devices (the identity graph's bindings).
pub struct LiveOut {
    /// The hub subscribers listen on.
    pub hub: Arc<LiveHub>,
    /// Person key (hex) by device key.
    pub persons: HashMap<DeviceKey, String>,
}

/// Visits per transaction at most.
const MAX_VISITS_PER_COMMIT: usize = 8192;
/// How long the merge waits on a quiet source before checking for cancellation and commits.
const POLL: Duration = Duration::from_millis(100);

/// One source as the pipeline sees it.
pub struct SourceInput {
    /// Source name (cursor key).
    pub name: String,
    /// Zone of the source's sniffer.
    pub zone: ZoneId,
    /// Its channel.
    pub rx: Receiver<SourceMsg>,
    /// Input identity for the cursor.
    pub fingerprint: String,
    /// Cursor the source starts from.
    pub start: u64,
    /// Its counters.
    pub stats: Arc<SourceStats>,
}

/// A change to the merged inputs while the pipeline runs.
pub enum LaneCtl {
    /// Commits a checkpoint carrying the named input's cursor, then stops merging it (its
    /// channel is dropped, which stops its source). Frames it queued that the core has not
    /// seen are not lost for a file source: it resumes from the checkpointed cursor. Until
    /// [`LaneCtl::Settled`], the pipeline does not end for having no input left.
    Remove {
        /// Source name.
        name: String,
        /// Answered once the checkpoint is committed and the input is gone (`true`), or
        /// when the store could not write the checkpoint and the input stays (`false`).
        done: tokio::sync::oneshot::Sender<bool>,
    },
    /// Starts merging an input.
    Add(SourceInput),
    /// The change is complete: with every input ended, the pipeline ends again.
    Settled,
}

/// Lane changes waiting for the pipeline. The one sender (the running service) sends a
/// change's few messages and waits for the removals' answers, so it never fills; a full
/// queue is refused, not waited on.
pub const LANE_CTL_QUEUE: usize = 64;

struct Lane {
    input: SourceInput,
    queue: VecDeque<Frame>,
    /// Details of the queued frames that are logins, in order.
    logins: VecDeque<Login>,
    /// (frames pushed when the batch was complete, what its end means for the cursor).
    boundaries: VecDeque<(u64, Mark)>,
    /// Identity of the input the cursor counts in (a followed file changes it on rotation).
    fingerprint: String,
    pushed: u64,
    popped: u64,
    cursor: u64,
    watermark: i64,
    ended: bool,
}

/// What the end of a batch means for a lane's cursor.
enum Mark {
    /// The source has consumed its input up to here.
    Position(u64),
    /// The source moved on to another input (a rotated file): count from 0 in it.
    Input(String),
}

impl Lane {
    fn new(input: SourceInput) -> Lane {
        Lane {
            cursor: input.start,
            fingerprint: input.fingerprint.clone(),
            input,
            queue: VecDeque::new(),
            logins: VecDeque::new(),
            boundaries: VecDeque::new(),
            pushed: 0,
            popped: 0,
            watermark: i64::MIN,
            ended: false,
        }
    }

    fn apply(&mut self, msg: SourceMsg) {
        match msg {
            SourceMsg::Batch {
                frames,
                logins,
                watermark_ms,
                position,
            } => {
                self.pushed += frames.len() as u64;
                self.queue.extend(frames);
                self.logins.extend(logins);
                self.boundaries
                    .push_back((self.pushed, Mark::Position(position)));
                self.watermark = self.watermark.max(watermark_ms);
                self.settle();
            }
            SourceMsg::NewInput { fingerprint } => {
                self.boundaries
                    .push_back((self.pushed, Mark::Input(fingerprint)));
                self.settle();
            }
            SourceMsg::End { position } => {
                self.boundaries
                    .push_back((self.pushed, Mark::Position(position)));
                self.ended = true;
                self.settle();
            }
        }
    }

    /// Advances the cursor over batches whose frames have all been processed.
    fn settle(&mut self) {
        while let Some((n, _)) = self.boundaries.front() {
            if self.popped < *n {
                break;
            }
            match self.boundaries.pop_front() {
                Some((_, Mark::Position(pos))) => self.cursor = self.cursor.max(pos),
                Some((_, Mark::Input(fp))) => {
                    self.fingerprint = fp;
                    self.cursor = 0;
                }
                None => break,
            }
        }
    }

    fn pop(&mut self) -> Option<Frame> {
        let f = self.queue.pop_front()?;
        self.popped += 1;
        self.cursor = self.cursor.max(f.pos + 1);
        self.settle();
        Some(f)
    }
}

/// Pipeline settings.
pub struct PipelineSettings {
    /// Zone names by id.
    pub zones: Vec<String>,
    /// Store clock.
    pub clock: LocalClock,
    /// Commit interval.
    pub commit_interval: Duration,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Flush open visits and seal every hour when all sources have ended.
    pub flush_at_end: bool,
    /// Person keys of the staff phone list: their visits are staff visits.
    pub staff_persons: std::collections::HashSet<edge_core::person::PersonKey>,
    /// Visits open in the core, updated at every commit (for health snapshots).
    pub open_visits: Arc<AtomicU64>,
    /// Version of the tenant secret person keys are made with.
    pub person_key_version: u32,
    /// Grace around a visit within which a member's receipt belongs to it, ms.
    pub attribution_grace_ms: i64,
    /// Live events out (a service with the pull API); `None` for a replay.
    pub live: Option<LiveOut>,
    /// `flush` requests (the management command), answered by the pipeline thread.
    pub flush: Arc<FlushGate>,
}

/// What one `flush` sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flushed {
    /// Visits that closed and were stored.
    pub visits: u64,
    /// Hourly records stored.
    pub hours: u64,
}

#[derive(Debug, Default)]
struct FlushState {
    requested: u64,
    done: u64,
    last: Flushed,
    closed: bool,
}

/// Hands `flush` requests to the pipeline thread and its answers back: the thread looks at it
/// every commit check, advances the core to the sources' watermark, commits with a checkpoint
/// and answers. Once the pipeline has stopped (every source drained) nothing is open, and a
/// request is answered at once with nothing sealed.
#[derive(Debug, Default)]
pub struct FlushGate {
    state: std::sync::Mutex<FlushState>,
    answered: std::sync::Condvar,
}

impl FlushGate {
    /// Asks for a flush and blocks until it is done or `limit` passed (`None`).
    pub fn request(&self, limit: Duration) -> Option<Flushed> {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().ok()?;
        if st.closed {
            return Some(Flushed::default());
        }
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.done >= ticket {
                return Some(st.last);
            }
            if st.closed {
                return Some(Flushed::default());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self.answered.wait_timeout(st, left).ok()?.0;
        }
    }

    /// The newest request not answered yet.
    fn pending(&self) -> Option<u64> {
        let st = self.state.lock().ok()?;
        (st.requested > st.done).then_some(st.requested)
    }

    fn answer(&self, ticket: u64, flushed: Flushed) {
        if let Ok(mut st) = self.state.lock() {
            st.done = st.done.max(ticket);
            st.last = flushed;
        }
        self.answered.notify_all();
    }

    /// The pipeline stopped: requests are answered with nothing sealed.
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
        }
        self.answered.notify_all();
    }
}

/// What a pipeline run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Frames that reached the core.
    pub frames: u64,
    /// New visits stored.
    pub visits_new: u64,
    /// Visits that were already stored (replayed input).
    pub visits_duplicate: u64,
    /// Hourly records stored.
    pub hours_new: u64,
    /// Most visits open at once.
    pub peak_open: u64,
    /// Visits still open at the end (kept in the snapshot).
    pub open_at_end: u64,
    /// Commits made.
    pub commits: u64,
    /// Whether the run was cancelled before its sources ended.
    pub cancelled: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// The first wait before writing again after the store ran out of space; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between write attempts while the store is out of space.
const RETRY_MAX: Duration = Duration::from_secs(30);

struct Committer<'a> {
    store: &'a Store,
    /// Device ↔ person bindings made by logins since the last commit.
    bindings: Vec<Binding>,
    /// Raw sightings since the last commit: (minute, zone, device) → (first, last, best RSSI).
    sightings: HashMap<(i64, ZoneId, DeviceKey), (i64, i64, i8)>,
    live: Option<&'a LiveOut>,
    settings: &'a PipelineSettings,
    zones: Arc<[String]>,
    key_version: u32,
    last_commit: Instant,
    last_checkpoint: Instant,
    summary: Summary,
    /// What the store could not write (out of space), written with the next commit that
    /// succeeds; the pipeline goes on meanwhile. Closed visits and sealed hours wait here in
    /// memory, and the newest checkpoint replaces older ones (its core has seen it all).
    held: Option<Batch>,
    /// No write before this while something is held.
    retry_at: Instant,
    retry_wait: Duration,
}

impl Committer<'_> {
    /// Notes a sighting for the raw sightings table.
    fn note_sighting(&mut self, ts_ms: i64, zone: ZoneId, device: DeviceKey, rssi: i8) {
        let minute = ts_ms.div_euclid(60_000) * 60_000;
        self.sightings
            .entry((minute, zone, device))
            .and_modify(|(first, last, best)| {
                *first = (*first).min(ts_ms);
                *last = (*last).max(ts_ms);
                *best = (*best).max(rssi);
            })
            .or_insert((ts_ms, ts_ms, rssi));
    }

    /// Commits what the core closed and sealed (with a checkpoint when due or forced); false
    /// when the store could not write it yet (it is held and retried).
    fn commit(
        &mut self,
        core: &mut Sessionizer,
        lanes: &[Lane],
        force_checkpoint: bool,
    ) -> anyhow::Result<bool> {
        let visits = core.drain_closed();
        let hours = core.drain_sealed();
        self.settings
            .open_visits
            .store(core.open_count() as u64, Ordering::Relaxed);
        let checkpoint_due =
            force_checkpoint || self.last_checkpoint.elapsed() >= self.settings.checkpoint_interval;
        self.last_commit = Instant::now();
        if visits.is_empty()
            && hours.is_empty()
            && self.bindings.is_empty()
            && !checkpoint_due
            && self.held.is_none()
        {
            return Ok(true);
        }
        let checkpoint = checkpoint_due.then(|| Checkpoint {
            snapshot: snapshot::encode(core),
            watermark_ms: core.watermark_ms(),
            cursors: lanes
                .iter()
                .map(|l| Cursor {
                    source: l.input.name.clone(),
                    fingerprint: l.fingerprint.clone(),
                    position: l.cursor,
                })
                .collect(),
        });
        // Counters go with checkpoints only: they count what the sources read, and a restart
        // reads again from the checkpoint's cursors, so counters committed past it would count
        // the re-read frames twice.
        let counters = lanes
            .iter()
            .filter(|_| checkpoint_due)
            .flat_map(|l| {
                let name = l.input.name.clone();
                l.input
                    .stats
                    .values()
                    .into_iter()
                    .map(move |(k, v)| (name.clone(), k, v))
            })
            .collect();
        let sightings = self
            .sightings
            .drain()
            .map(
                |((minute_ms, zone, device), (first_ms, last_ms, best_rssi))| SightingRow {
                    minute_ms,
                    zone,
                    device,
                    first_ms,
                    last_ms,
                    best_rssi,
                },
            )
            .collect();
        let batch = Batch {
            visits,
            hours,
            checkpoint,
            counters,
            sightings,
            bindings: std::mem::take(&mut self.bindings),
            now_ms: chrono::Utc::now().timestamp_millis(),
            ..self.empty()
        };
        // A forced commit (a checkpoint someone waits for, the last one) does not wait out
        // the retry delay.
        let written = self.write(batch, force_checkpoint)?;
        if checkpoint_due && written {
            self.last_checkpoint = Instant::now();
        }
        Ok(written)
    }

    fn empty(&self) -> Batch {
        Batch {
            // Bodies travel back only for someone to tell.
            want_bodies: self.live.is_some_and(|l| l.hub.subscribers() > 0),
            person_key_version: self.settings.person_key_version,
            attribution_grace_ms: self.settings.attribution_grace_ms,
            ..Batch::new(self.zones.clone(), self.key_version, self.settings.clock)
        }
    }

    /// Writes `batch` after whatever is held; false when it is held instead.
    fn write(&mut self, batch: Batch, now: bool) -> anyhow::Result<bool> {
        let mut batch = match self.held.take() {
            Some(mut held) => {
                held.absorb(batch);
                held
            }
            None => batch,
        };
        if self.retry_wait > Duration::ZERO && !now && Instant::now() < self.retry_at {
            self.held = Some(batch);
            return Ok(false);
        }
        // Long lists (the flush at the end of a replay closes every open visit at once) go in
        // chunks, so the transaction and the JSON built for it stay small. Only the last chunk
        // carries the checkpoint: a crash between chunks replays from the previous checkpoint,
        // and the chunks already committed are recognised by their natural keys.
        while batch.visits.len() > MAX_VISITS_PER_COMMIT {
            let rest = batch.visits.split_off(MAX_VISITS_PER_COMMIT);
            let chunk = Batch {
                visits: std::mem::replace(&mut batch.visits, rest),
                now_ms: batch.now_ms,
                ..self.empty()
            };
            if let Some(mut unwritten) = self.apply(chunk)? {
                unwritten.absorb(batch);
                return Ok(self.hold(unwritten));
            }
        }
        match self.apply(batch)? {
            Some(unwritten) => Ok(self.hold(unwritten)),
            None => {
                if self.retry_wait > Duration::ZERO {
                    tracing::info!("the store writes again; what was held is stored");
                    self.retry_wait = Duration::ZERO;
                }
                Ok(true)
            }
        }
    }

    /// Keeps `batch` for the next attempt, after a growing wait; always false.
    fn hold(&mut self, batch: Batch) -> bool {
        self.retry_wait = (self.retry_wait * 2).clamp(RETRY_FIRST, RETRY_MAX);
        self.retry_at = Instant::now() + self.retry_wait;
        tracing::warn!(
            visits = batch.visits.len(),
            hours = batch.hours.len(),
            retry_in_s = self.retry_wait.as_secs(),
            "the store is out of space; holding what it could not write"
        );
        self.held = Some(batch);
        false
    }

    /// Answers a pending `flush`: closes what the sources' watermark allows and commits it
    /// with a checkpoint.
    fn flush_if_asked(&mut self, core: &mut Sessionizer, lanes: &[Lane]) -> anyhow::Result<()> {
        let Some(ticket) = self.settings.flush.pending() else {
            return Ok(());
        };
        if let Some(wm) = lanes.iter().filter(|l| !l.ended).map(|l| l.watermark).min() {
            core.advance(wm);
        }
        let (visits, hours) = (self.summary.visits_new, self.summary.hours_new);
        let result = self.commit(core, lanes, true).map(|_| ());
        self.settings.flush.answer(
            ticket,
            Flushed {
                visits: self.summary.visits_new - visits,
                hours: self.summary.hours_new - hours,
            },
        );
        result
    }

    /// Commits `batch`; gives it back when the store is out of space (any other failure
    /// ends the pipeline).
    fn apply(&mut self, batch: Batch) -> anyhow::Result<Option<Batch>> {
        let r = match self.store.try_commit(batch) {
            Ok(r) => r,
            Err(CommitFailed {
                error,
                batch: Some(batch),
            }) if error.is_out_of_space() => return Ok(Some(*batch)),
            Err(f) => return Err(f.error.into()),
        };
        if let Some(out) = self.live {
            for body in &r.visit_bodies {
                match serde_json::from_str::<pb::Visit>(body) {
                    // Staff are not shoppers: no marketing trigger for them.
                    Ok(v) if v.class != "staff" => out.hub.publish(live::visit_end(v)),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "stored visit body does not parse; no live event")
                    }
                }
            }
        }
        self.summary.commits += 1;
        self.summary.visits_new += r.visits_new;
        self.summary.visits_duplicate += r.visits_duplicate;
        self.summary.hours_new += r.hours_new;
        Ok(None)
    }
}

/// Announces the arrivals of devices bound to a person.
fn publish_arrivals(
    core: &mut Sessionizer,
    out: &LiveOut,
    persons: &HashMap<DeviceKey, String>,
    zones: &[String],
) {
    for a in core.drain_arrivals() {
        if let Some(person) = persons.get(&a.device) {
            let zone = a
                .zone
                .and_then(|z| zones.get(usize::from(z)))
                .cloned()
                .unwrap_or_default();
            out.hub.publish(live::arrival(
                person,
                &a.device.to_hex(),
                a.visit_start_ms,
                a.ts_ms,
                zone,
            ));
        }
    }
}

/// Applies the lane changes waiting in `ctl`; whether there were any.
fn change_lanes(
    ctl: &Receiver<LaneCtl>,
    lanes: &mut Vec<Lane>,
    holding: &mut bool,
    c: &mut Committer<'_>,
    core: &mut Sessionizer,
) -> anyhow::Result<bool> {
    let mut any = false;
    while let Ok(msg) = ctl.try_recv() {
        lane_change(msg, lanes, holding, c, core)?;
        any = true;
    }
    Ok(any)
}

fn lane_change(
    msg: LaneCtl,
    lanes: &mut Vec<Lane>,
    holding: &mut bool,
    c: &mut Committer<'_>,
    core: &mut Sessionizer,
) -> anyhow::Result<()> {
    match msg {
        LaneCtl::Remove { name, done } => {
            *holding = true;
            let mut removed = true;
            if lanes.iter().any(|l| l.input.name == name) {
                // The checkpoint carries the leaving lane's cursor and the core that has seen
                // exactly its frames up to there. Unwritten (out of space), the lane stays:
                // its next version would start from an older cursor and count frames twice.
                removed = c.commit(core, lanes, true)?;
                if removed {
                    lanes.retain(|l| l.input.name != name);
                    tracing::info!(source = %name, "source left the merge");
                }
            }
            let _ = done.send(removed);
        }
        LaneCtl::Add(input) => {
            tracing::info!(source = %input.name, cursor = input.start, "source joined the merge");
            lanes.push(Lane::new(input));
        }
        LaneCtl::Settled => *holding = false,
    }
    Ok(())
}

/// Runs until every source has ended or `cancel` fires. On the way out the last commit always
/// carries a checkpoint.
#[allow(clippy::too_many_arguments)] // the run's parts, each passed once by `run::start`
pub fn run(
    mut core: Sessionizer,
    mut keyer: DeviceKeyer,
    sources: Vec<SourceInput>,
    ctl: &Receiver<LaneCtl>,
    store: &Store,
    settings: &PipelineSettings,
    cancel: &CancellationToken,
    progress: &ProgressBar,
) -> anyhow::Result<Summary> {
    let live = settings.live.as_ref();
    let started = Instant::now();
    core.track_arrivals(live.is_some());
    core.set_staff_persons(settings.staff_persons.clone());
    // Who each device is, as far as logins have said (for live arrivals).
    let mut persons: HashMap<DeviceKey, String> =
        live.map(|l| l.persons.clone()).unwrap_or_default();
    let mut lanes: Vec<Lane> = sources.into_iter().map(Lane::new).collect();
    // A lane change is under way: no input left does not mean the end.
    let mut holding = false;
    let mut c = Committer {
        store,
        bindings: Vec::new(),
        live,
        settings,
        zones: settings.zones.clone().into(),
        key_version: keyer.version(),
        last_commit: Instant::now(),
        last_checkpoint: Instant::now(),
        summary: Summary::default(),
        sightings: HashMap::new(),
        held: None,
        retry_at: Instant::now(),
        retry_wait: Duration::ZERO,
    };
    let mut frames = 0u64;
    loop {
        // Checked every 1024 frames and before every wait below: the token takes a lock.
        if frames.is_multiple_of(1024) && cancel.is_cancelled() {
            c.summary.cancelled = true;
            break;
        }
        // The lane with the oldest queued frame (ties: lower lane index, for determinism).
        let mut head: Option<(i64, usize)> = None;
        for (i, l) in lanes.iter().enumerate() {
            if let Some(f) = l.queue.front() {
                if head.is_none_or(|(t, _)| f.ts_ms < t) {
                    head = Some((f.ts_ms, i));
                }
            }
        }
        // A live lane with nothing queued may still deliver something older than that frame.
        let blocker = lanes.iter().position(|l| {
            !l.ended && l.queue.is_empty() && head.is_none_or(|(t, _)| l.watermark < t)
        });
        if let Some(b) = blocker {
            if cancel.is_cancelled() {
                c.summary.cancelled = true;
                break;
            }
            if change_lanes(ctl, &mut lanes, &mut holding, &mut c, &mut core)? {
                continue;
            }
            // First take what any idle lane has ready (one message each): waiting on the
            // blocker alone would leave other live sources unread while it is quiet.
            let mut got = false;
            for l in lanes.iter_mut().filter(|l| !l.ended && l.queue.is_empty()) {
                match l.input.rx.try_recv() {
                    Ok(msg) => {
                        l.apply(msg);
                        got = true;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => {
                        tracing::warn!(source = %l.input.name, "source stopped without finishing");
                        l.ended = true;
                        got = true;
                    }
                }
            }
            let msg = if got {
                Some(Err(RecvTimeoutError::Timeout))
            } else {
                lanes.get(b).map(|l| l.input.rx.recv_timeout(POLL))
            };
            if got && lanes.iter().all(|l| l.queue.is_empty()) {
                if let Some(wm) = lanes.iter().filter(|l| !l.ended).map(|l| l.watermark).min() {
                    core.advance(wm);
                }
            }
            match msg {
                Some(Ok(msg)) => {
                    if let Some(l) = lanes.get_mut(b) {
                        l.apply(msg);
                    }
                    if lanes.iter().all(|l| l.queue.is_empty()) {
                        // Quiet moment: let visits close on the slowest source's watermark.
                        if let Some(wm) =
                            lanes.iter().filter(|l| !l.ended).map(|l| l.watermark).min()
                        {
                            core.advance(wm);
                        }
                    }
                }
                Some(Err(RecvTimeoutError::Timeout)) | None => {}
                Some(Err(RecvTimeoutError::Disconnected)) => {
                    if let Some(l) = lanes.get_mut(b) {
                        tracing::warn!(source = %l.input.name, "source stopped without finishing");
                        l.ended = true;
                    }
                }
            }
            if c.last_commit.elapsed() >= settings.commit_interval {
                c.commit(&mut core, &lanes, false)?;
            }
            c.flush_if_asked(&mut core, &lanes)?;
            continue;
        }
        let Some((_, i)) = head else {
            if !holding {
                break; // every lane ended and drained
            }
            if cancel.is_cancelled() {
                c.summary.cancelled = true;
                break;
            }
            match ctl.recv_timeout(POLL) {
                Ok(msg) => lane_change(msg, &mut lanes, &mut holding, &mut c, &mut core)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => holding = false,
            }
            if c.last_commit.elapsed() >= settings.commit_interval {
                c.commit(&mut core, &lanes, false)?;
            }
            c.flush_if_asked(&mut core, &lanes)?;
            continue;
        };
        let Some(lane) = lanes.get_mut(i) else {
            break;
        };
        let Some(f) = lane.pop() else {
            continue;
        };
        if f.login {
            // A portal login: keyed by its source; binds the device to the person.
            if let Some(l) = lane.logins.pop_front() {
                core.login(f.ts_ms, l.device, l.person);
                c.bindings.push(Binding {
                    device: l.device,
                    person: l.person,
                    key_version: l.person_key_version,
                    seen_ms: f.ts_ms,
                });
                if live.is_some() {
                    persons.insert(l.device, l.person.to_hex());
                }
            }
            frames += 1;
            continue;
        }
        let zone = lane.input.zone;
        let device = keyer.key(f.mac, f.ts_ms);
        c.note_sighting(f.ts_ms, zone, device, f.rssi_dbm);
        core.observe(&Sighting {
            ts_ms: f.ts_ms,
            device,
            zone,
            rssi_dbm: f.rssi_dbm,
            kind: f.kind,
            randomized: f.randomized,
            fingerprint: f.fingerprint,
            seq: f.seq,
        });
        if core.has_arrivals() {
            if let Some(out) = live {
                publish_arrivals(&mut core, out, &persons, &settings.zones);
            }
        }
        frames += 1;
        if frames.is_multiple_of(4096) {
            if frames.is_multiple_of(1 << 16) {
                progress.set_message(format!(
                    "{frames} frames, {} open visits",
                    core.open_count()
                ));
            }
            if c.last_commit.elapsed() >= settings.commit_interval {
                c.commit(&mut core, &lanes, false)?;
            }
            c.flush_if_asked(&mut core, &lanes)?;
            change_lanes(ctl, &mut lanes, &mut holding, &mut c, &mut core)?;
        }
    }
    let ended = !c.summary.cancelled;
    if ended && settings.flush_at_end {
        core.flush();
    }
    let mut written = c.commit(&mut core, &lanes, true)?;
    // The end of the input is no reason to give up what is held: wait for space to come back
    // (a shutdown still ends the wait).
    while !written && !cancel.is_cancelled() {
        let until = Instant::now() + c.retry_wait;
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(POLL);
        }
        written = c.commit(&mut core, &lanes, true)?;
    }
    if !written {
        let held = c.held.as_ref();
        anyhow::bail!(
            "the store is out of space: {} closed visits and {} sealed hours could not be stored (a replay redoes them from the last checkpoint)",
            held.map_or(0, |b| b.visits.len()),
            held.map_or(0, |b| b.hours.len())
        );
    }
    settings.flush.close();
    let stats = core.stats();
    c.summary.frames = frames;
    c.summary.peak_open = stats.peak_open;
    c.summary.open_at_end = core.open_count() as u64;
    c.summary.elapsed = started.elapsed();
    progress.finish_and_clear();
    for l in &lanes {
        tracing::debug!(
            source = %l.input.name,
            cursor = l.cursor,
            skipped = l.input.stats.skipped_total(),
            read = l.input.stats.frames_read.load(Ordering::Relaxed),
            "source finished"
        );
    }
    Ok(c.summary)
}
