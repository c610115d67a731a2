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
//!
//! # Clock faults of live captures
//! A live capture's frame times come from the capture host's wall clock, which on a gateway
//! without a real-time clock reads 1970 until NTP sets it, and which NTP may step. Each live
//! Wi-Fi lane names its clock (`SourceInput::clock`: the gateway's own interfaces share one,
//! each pipe has its own) and the lanes of one clock share a [`ClockGuard`], fed with every
//! frame's time and monotonic receive time when the frame arrives (before it is queued):
//! - **Unset** (stamped before 2024): the frame is never fed to the core as 1970 (it would be
//!   filed in a 1970 hour under a 1970 device key). It is held, in a bounded buffer per lane
//!   ([`MAX_HELD_FRAMES`]; overflow drops the oldest, counted `clock_unset_dropped`), and when
//!   the clock is set the held frames get real times from their receive times (the first sane
//!   frame tells what the wall clock reads at a monotonic time) and are merged before the sane
//!   frames. Counted `clock_unset_frames` / `clock_restamped_frames`.
//! - **Step** (the wall clock moved more than the tolerance beyond the monotonic time between
//!   two frames): the new clock is trusted (NTP's step is a correction). Counted `clock_steps`
//!   and logged. The frames of that clock not yet merged (queued in any of its lanes, or
//!   arriving from another lane just after, see `ClockVerdict::Lagging`) move to the new clock
//!   with it (counted as re-stamped), the lanes' watermarks too, and the core is told
//!   ([`Sessionizer::clock_step`]): visits open at the step end there, flagged, and the hours
//!   the step touched are flagged in their hourly records. Where the line between the old and
//!   the new clock falls is where the merge was when the step was seen: what the core has
//!   processed stays as stamped (and flagged), what it has not is filed on the new clock.
//!   After a step back the core's watermark moves back with the clock, so what the new clock
//!   stamps is filed where it belongs (as new, flagged revisions of hours already sealed)
//!   instead of being refused as late for an hour — and never merged into a visit from before
//!   the step.
//! - **Broken** (a step back further than [`MAX_STEP_BACK_MS`], a day): no correction goes that
//!   far, and the hours such a clock names were sealed and pruned long ago. The guard keeps the
//!   time it had, advanced by monotonic time, and every frame of that clock is re-stamped onto
//!   it (`ClockVerdict::Distrusted`) until the clock agrees with it again; the core sees no step.
//!   The break and the way back are counted as `clock_steps` and logged; no frame is refused.
//! - A restart loses the guard (monotonic time means nothing across processes): the first sane
//!   frame after it that is older than the restored watermark by more than the tolerance is a
//!   step back taken while the agent was down, and handled as one (one further back than a day
//!   is a clock that broke while the agent was down: its time resumes where processing stopped).
//!
//! Held frames are not in the checkpoint: like frames in the channels, a live capture's
//! frames do not survive a restart (a pipe's positions start over with every writer).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_core::clock::{MAX_STEP_BACK_MS, MIN_SANE_MS, STEP_TOLERANCE_MS};
use edge_core::{
    ClockGuard, ClockStep, ClockVerdict, DeviceKey, DeviceKeyer, LocalClock, Sessionizer, Sighting,
    ZoneId,
};
use edge_proto::v1 as pb;
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

use crate::sources::{Frame, Login, Received, SourceMsg};
use crate::stats::SourceStats;
use crate::store::{Batch, Binding, Checkpoint, CommitFailed, Cursor, Store};
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
/// Frames a lane holds while its clock is unset, at most (about 4 MiB): minutes of a busy
/// store's probes, more than NTP takes once the uplink is up. Beyond it the oldest are dropped
/// (and counted): the newest are the ones nearest the time the clock will be set.
pub const MAX_HELD_FRAMES: usize = 65_536;
/// How far behind its clock's present a live lane's watermark stays: a frame spends less than
/// this in capture buffers before it is received. The sources' heartbeats use it too.
pub const LIVE_WATERMARK_LAG_MS: i64 = 1_000;

/// The clock guards of live lanes, by clock name ([`SourceInput::clock`]).
type Clocks = HashMap<String, ClockGuard>;

/// What admitting a batch found out about its clock, for the other lanes and the core.
enum ClockEvent {
    /// The clock was set (its first sane time): lanes holding frames re-stamp them with this
    /// state of the guard.
    Set {
        /// The clock's name.
        clock: String,
        /// The guard right after the first sane frame.
        guard: ClockGuard,
    },
    /// The clock stepped.
    Step {
        /// The clock's name.
        clock: String,
        /// From what to what.
        step: ClockStep,
    },
    /// The clock jumped back further than a correction goes: its frames keep the time the
    /// guard had ([`ClockVerdict::Distrusted`]).
    Broken {
        /// How far behind the kept time it reads, ms.
        behind_ms: i64,
        /// The kept time at the break, UTC ms.
        at_ms: i64,
    },
    /// A broken clock agrees with the kept time again.
    Recovered {
        /// The time it reads, UTC ms.
        at_ms: i64,
    },
}

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
    /// Live Wi-Fi sources: the name of the wall clock that stamps their frames (lanes naming
    /// the same clock share one guard, see the module documentation). `None`: the frame times
    /// are taken as they are (replayed files, portal logins).
    pub clock: Option<String>,
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
    /// Live frames waiting for their clock to be set, with their receive times.
    held: VecDeque<(Frame, i64)>,
    /// Its clock is known to be unset: its watermark means nothing yet (see [`Lane::bound`]).
    clock_unset: bool,
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
            held: VecDeque::new(),
            clock_unset: false,
        }
    }

    /// Takes a message of the lane's source; what it found out about the clock is for the
    /// caller to pass on ([`clock_event`]).
    fn apply(&mut self, msg: SourceMsg, clocks: &mut Clocks) -> Vec<ClockEvent> {
        let mut events = Vec::new();
        match msg {
            SourceMsg::Batch {
                frames,
                logins,
                watermark_ms,
                position,
                received,
            } => {
                match (received, self.input.clock.clone()) {
                    (Some(received), Some(name)) => {
                        let guard = clocks.entry(name.clone()).or_default();
                        self.admit(frames, &received, guard, &name, &mut events);
                        self.live_watermark(guard, &received, watermark_ms);
                    }
                    _ => {
                        self.pushed += frames.len() as u64;
                        self.queue.extend(frames);
                        self.watermark = self.watermark.max(watermark_ms);
                    }
                }
                self.logins.extend(logins);
                // Held frames are not counted in `pushed`: the cursor of a live lane may pass
                // them (it is not used to resume a live capture).
                self.boundaries
                    .push_back((self.pushed, Mark::Position(position)));
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
        events
    }

    /// Judges a live batch's frames by their clock, frame by frame in the order received, and
    /// queues, holds or re-stamps each.
    fn admit(
        &mut self,
        frames: Vec<Frame>,
        received: &Received,
        guard: &mut ClockGuard,
        clock: &str,
        events: &mut Vec<ClockEvent>,
    ) {
        let stats = self.input.stats.clone();
        for (i, mut f) in frames.into_iter().enumerate() {
            // The sources send one receive time per frame; the batch's send time is the
            // latest any of them can be.
            let mono = received.frames_ms.get(i).copied().unwrap_or(received.at_ms);
            match guard.classify(f.ts_ms, mono) {
                ClockVerdict::Unset => {
                    stats.clock_unset_frames.fetch_add(1, Ordering::Relaxed);
                    match guard.wall_at(mono) {
                        // The clock fell back to 1970 after it had been set in this process:
                        // the relation learnt then still gives the time.
                        Some(ts) => {
                            f.ts_ms = ts;
                            stats.clock_restamped_frames.fetch_add(1, Ordering::Relaxed);
                            self.push(f);
                        }
                        None => self.hold(f, mono),
                    }
                }
                ClockVerdict::Set => {
                    self.release(guard);
                    events.push(ClockEvent::Set {
                        clock: clock.to_string(),
                        guard: guard.clone(),
                    });
                    self.push(f);
                }
                ClockVerdict::Ok => self.push(f),
                // Captured before a step another lane of the clock already reported: it goes
                // to the new clock like the frames that were queued then.
                ClockVerdict::Lagging { by_ms } => {
                    f.ts_ms = f.ts_ms.saturating_add(by_ms);
                    stats.clock_restamped_frames.fetch_add(1, Ordering::Relaxed);
                    self.push(f);
                }
                // A broken clock: the frame keeps the time the guard kept. Nothing queued moves
                // and the core sees no step: the kept time runs on by monotonic time.
                ClockVerdict::Distrusted { by_ms, first } => {
                    f.ts_ms = f.ts_ms.saturating_add(by_ms);
                    stats.clock_restamped_frames.fetch_add(1, Ordering::Relaxed);
                    if first {
                        events.push(ClockEvent::Broken {
                            behind_ms: by_ms,
                            at_ms: f.ts_ms,
                        });
                    }
                    self.push(f);
                }
                ClockVerdict::Recovered => {
                    events.push(ClockEvent::Recovered { at_ms: f.ts_ms });
                    self.push(f);
                }
                ClockVerdict::Step { by_ms } => {
                    // What was queued is on the old clock: it moves with the clock.
                    self.shift(by_ms);
                    events.push(ClockEvent::Step {
                        clock: clock.to_string(),
                        step: ClockStep {
                            from_ms: f.ts_ms.saturating_sub(by_ms),
                            to_ms: f.ts_ms,
                        },
                    });
                    self.push(f);
                }
            }
        }
    }

    /// A live lane's watermark: the lane's clock now (by the guard) less the capture lag; the
    /// source's own figure only while the guard knows nothing yet (a quiet capture with a sane
    /// clock still lets other lanes' visits close).
    fn live_watermark(&mut self, guard: &ClockGuard, received: &Received, source_ms: i64) {
        match guard.wall_at(received.at_ms) {
            Some(now) => {
                self.watermark = self
                    .watermark
                    .max(now.saturating_sub(LIVE_WATERMARK_LAG_MS));
                self.clock_unset = false;
            }
            None if source_ms >= MIN_SANE_MS => {
                self.watermark = self.watermark.max(source_ms);
                // Frames held from before will be re-stamped behind this once a sane frame
                // says how: until then the lane places no bound.
                self.clock_unset = !self.held.is_empty();
            }
            // A 1970 watermark: the clock is unset; the lane cannot hold the merge back until
            // it is (its held frames have no times yet).
            None => self.clock_unset = source_ms != i64::MIN || !self.held.is_empty(),
        }
    }

    fn push(&mut self, f: Frame) {
        self.pushed += 1;
        self.queue.push_back(f);
    }

    /// Holds a frame stamped by an unset clock.
    fn hold(&mut self, f: Frame, mono: i64) {
        // Only a release empties the buffer: empty means a new episode.
        if self.held.is_empty() {
            tracing::warn!(
                source = %self.input.name,
                "frames stamped before 2024: the capture host's clock is not set (no real-time clock, NTP not synchronised yet); holding them until it is"
            );
        }
        self.clock_unset = true;
        if self.held.len() >= MAX_HELD_FRAMES {
            self.held.pop_front();
            self.input
                .stats
                .clock_unset_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.held.push_back((f, mono));
    }

    /// The clock is set: the held frames get the times the set clock gives their receive
    /// times, and are queued (before anything stamped by the set clock).
    fn release(&mut self, guard: &ClockGuard) {
        self.clock_unset = false;
        if self.held.is_empty() {
            return;
        }
        let n = self.held.len();
        let first = self.held.front().map(|(f, _)| f.ts_ms);
        while let Some((mut f, mono)) = self.held.pop_front() {
            if let Some(ts) = guard.wall_at(mono) {
                f.ts_ms = ts;
            }
            self.push(f);
        }
        self.input
            .stats
            .clock_restamped_frames
            .fetch_add(n as u64, Ordering::Relaxed);
        tracing::info!(
            source = %self.input.name,
            frames = n,
            first_stamped_ms = first.unwrap_or_default(),
            first_restamped = %iso(self.queue.front().map_or(0, |f| f.ts_ms)),
            "clock set: the frames held while it was unset were re-stamped by their receive times"
        );
    }

    /// Moves what the lane has queued (and its watermark) by a step of its clock.
    fn shift(&mut self, by_ms: i64) {
        for f in &mut self.queue {
            f.ts_ms = f.ts_ms.saturating_add(by_ms);
        }
        self.input
            .stats
            .clock_restamped_frames
            .fetch_add(self.queue.len() as u64, Ordering::Relaxed);
        if self.watermark != i64::MIN {
            self.watermark = self.watermark.saturating_add(by_ms);
        }
    }

    /// The time up to which the lane has delivered everything, as the merge sees it; `None`
    /// while its clock is unset (it places no bound: what it holds gets times only later).
    fn bound(&self) -> Option<i64> {
        (!self.clock_unset).then_some(self.watermark)
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
    /// MACs of fixed devices (`metrics.fixed_devices`): heard, never a visit or present.
    pub fixed_devices: Arc<std::collections::HashSet<u64>>,
    /// A door counter is configured: presence is calibrated from its occupancy.
    pub door_calibration: bool,
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
    /// How often the pipeline thread has looked at the gate (every turn of its loop, at least
    /// every [`POLL`]): its heartbeat, which the service watchdog checks.
    beats: std::sync::atomic::AtomicU64,
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

    /// The pipeline thread's heartbeat so far, and whether the pipeline has stopped (then
    /// the heartbeat stands still by design).
    pub fn beats(&self) -> (u64, bool) {
        let closed = self.state.lock().map(|s| s.closed).unwrap_or(true);
        (
            self.beats.load(std::sync::atomic::Ordering::Relaxed),
            closed,
        )
    }

    /// The newest request not answered yet.
    fn pending(&self) -> Option<u64> {
        self.beats
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    /// Probe-only randomized MACs counted as presence only (nothing linked to them).
    pub untracked_fragments: u64,
    /// Probe-only randomized MACs linked into tracked devices by sequence continuity.
    pub linked_fragments: u64,
    /// Visits still open at the end (kept in the snapshot).
    pub open_at_end: u64,
    /// Commits made.
    pub commits: u64,
    /// Whether the run was cancelled before its sources ended.
    pub cancelled: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Raw-sightings rows the core has given out, held before a commit is forced (a few MB).
const MAX_SIGHTINGS_PER_COMMIT: usize = 32_768;

/// The first wait before writing again after the store ran out of space; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between write attempts while the store is out of space.
const RETRY_MAX: Duration = Duration::from_secs(30);

struct Committer<'a> {
    store: &'a Store,
    /// Device ↔ person bindings made by logins since the last commit.
    bindings: Vec<Binding>,
    live: Option<&'a LiveOut>,
    settings: &'a PipelineSettings,
    zones: Arc<[String]>,
    key_version: u32,
    last_commit: Instant,
    last_checkpoint: Instant,
    summary: Summary,
    /// What the store could not write (out of space), written with the next commit that
    /// succeeds; the pipeline goes on meanwhile. Closed visits and sealed hours wait here in
    /// memory. A held batch carries no checkpoint: its core goes back to the pipeline, and
    /// the next commit takes a new checkpoint (the last one's time is not advanced).
    held: Option<Batch>,
    /// The core a checkpoint lent to the store, given back by the commit.
    lent: Option<Box<Sessionizer>>,
    /// No write before this while something is held.
    retry_at: Instant,
    retry_wait: Duration,
}

impl<'a> Committer<'a> {
    /// A committer with nothing held, its intervals counted from now.
    fn new(store: &'a Store, settings: &'a PipelineSettings, key_version: u32) -> Self {
        Committer {
            store,
            bindings: Vec::new(),
            live: settings.live.as_ref(),
            settings,
            zones: settings.zones.clone().into(),
            key_version,
            last_commit: Instant::now(),
            last_checkpoint: Instant::now(),
            summary: Summary::default(),
            held: None,
            lent: None,
            retry_at: Instant::now(),
            retry_wait: Duration::ZERO,
        }
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
        let presence = core.drain_presence();
        self.settings
            .open_visits
            .store(core.open_count() as u64, Ordering::Relaxed);
        let checkpoint_due =
            force_checkpoint || self.last_checkpoint.elapsed() >= self.settings.checkpoint_interval;
        self.last_commit = Instant::now();
        if visits.is_empty()
            && hours.is_empty()
            && presence.is_empty()
            && self.bindings.is_empty()
            && core.raw_pending() < MAX_SIGHTINGS_PER_COMMIT
            && !checkpoint_due
            && self.held.is_none()
        {
            return Ok(true);
        }
        // The core goes to the writer with the checkpoint, which encodes it into the store,
        // and comes back with the answer (this thread waits for it anyway).
        let checkpoint = checkpoint_due.then(|| {
            let watermark_ms = core.watermark_ms();
            Checkpoint {
                core: Box::new(core.take()),
                watermark_ms,
                cursors: lanes
                    .iter()
                    .map(|l| Cursor {
                        source: l.input.name.clone(),
                        fingerprint: l.fingerprint.clone(),
                        position: l.cursor,
                    })
                    .collect(),
            }
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
        // Rows still open travel in the snapshot; those given out go with this commit, sorted
        // by the table's key so its B-tree is filled in order.
        let mut sightings = core.drain_raw();
        sightings.sort_unstable_by_key(|r| (r.bin_ms, r.zone, r.device));
        let batch = Batch {
            visits,
            hours,
            checkpoint,
            counters,
            sightings,
            presence,
            bindings: std::mem::take(&mut self.bindings),
            now_ms: chrono::Utc::now().timestamp_millis(),
            ..self.empty()
        };
        // A forced commit (a checkpoint someone waits for, the last one) does not wait out
        // the retry delay.
        let written = self.write(batch, force_checkpoint);
        match self.lent.take() {
            Some(lent) => *core = *lent,
            // Going on with the stand-in would drop every open visit: stop instead.
            None if checkpoint_due => {
                written?;
                anyhow::bail!("the store kept the core a checkpoint lent it");
            }
            None => {}
        }
        let written = written?;
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
            door_calibration: self.settings.door_calibration,
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
            self.keep(batch);
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

    /// Keeps `batch` for the next attempt, after a growing wait; always false. Its
    /// checkpoint is not kept: the core goes back, and its counters with it (they go with a
    /// checkpoint only).
    fn hold(&mut self, batch: Batch) -> bool {
        self.retry_wait = (self.retry_wait * 2).clamp(RETRY_FIRST, RETRY_MAX);
        self.retry_at = Instant::now() + self.retry_wait;
        tracing::warn!(
            visits = batch.visits.len(),
            hours = batch.hours.len(),
            retry_in_s = self.retry_wait.as_secs(),
            "the store is out of space; holding what it could not write"
        );
        self.keep(batch);
        false
    }

    /// Holds `batch` for a later write without its checkpoint: the lent core goes back to the
    /// pipeline (it must, before the core is fed again), and the counters with it (they go
    /// with a checkpoint only). The next commit takes a new checkpoint.
    fn keep(&mut self, mut batch: Batch) {
        if let Some(cp) = batch.checkpoint.take() {
            self.lent = Some(cp.core);
            batch.counters.clear();
        }
        self.held = Some(batch);
    }

    /// Answers a pending `flush`: closes what the sources' watermark allows and commits it
    /// with a checkpoint.
    fn flush_if_asked(&mut self, core: &mut Sessionizer, lanes: &[Lane]) -> anyhow::Result<()> {
        let Some(ticket) = self.settings.flush.pending() else {
            return Ok(());
        };
        if let Some(wm) = merged_watermark(lanes) {
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
        let mut r = match self.store.try_commit(batch) {
            Ok(r) => r,
            Err(CommitFailed {
                error,
                batch: Some(batch),
            }) if error.is_out_of_space() => return Ok(Some(*batch)),
            Err(f) => {
                if let Some(cp) = f.batch.and_then(|b| b.checkpoint) {
                    self.lent = Some(cp.core);
                }
                return Err(f.error.into());
            }
        };
        if let Some(core) = r.core.take() {
            self.lent = Some(core);
        }
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
        for v in r.calibrations {
            tracing::info!(
                version = v,
                "presence calibrated from the door counter's occupancy of the days before"
            );
        }
        Ok(None)
    }
}

/// A UTC time for logs.
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// The time up to which every running lane has delivered everything (`None`: no lane places a
/// bound).
fn merged_watermark(lanes: &[Lane]) -> Option<i64> {
    lanes
        .iter()
        .filter(|l| !l.ended)
        .filter_map(Lane::bound)
        .min()
}

/// Hands a source's message to lane `i` and passes on what it found out about its clock.
fn deliver(
    i: usize,
    msg: SourceMsg,
    lanes: &mut [Lane],
    clocks: &mut Clocks,
    core: &mut Sessionizer,
) {
    let Some(lane) = lanes.get_mut(i) else {
        return;
    };
    for event in lane.apply(msg, clocks) {
        clock_event(i, event, lanes, clocks, core);
    }
}

/// Passes a clock event of lane `from` to the other lanes of its clock and to the core.
fn clock_event(
    from: usize,
    event: ClockEvent,
    lanes: &mut [Lane],
    clocks: &mut Clocks,
    core: &mut Sessionizer,
) {
    let same = |l: &Lane, clock: &str| l.input.clock.as_deref() == Some(clock);
    match event {
        ClockEvent::Set { clock, guard } => {
            for (_, l) in lanes
                .iter_mut()
                .enumerate()
                .filter(|(j, l)| *j != from && same(l, &clock))
            {
                l.release(&guard);
            }
            // The guard starts afresh with every process: a clock that went back while the
            // agent was down shows as a first time behind what the restored core has seen.
            let first = lanes
                .iter()
                .filter(|l| same(l, &clock))
                .filter_map(|l| l.queue.front().map(|f| f.ts_ms))
                .min();
            let seen = core.watermark_ms();
            if let Some(to) = first {
                if seen != i64::MIN && to < seen.saturating_sub(MAX_STEP_BACK_MS) {
                    // Further back than a correction goes: a broken clock. Its time is kept
                    // from where processing stopped (the time between is not known).
                    let by = seen.saturating_sub(to);
                    for l in lanes.iter_mut().filter(|l| same(l, &clock)) {
                        l.shift(by);
                    }
                    if let Some(g) = clocks.get_mut(&clock) {
                        g.distrust(by);
                    }
                    broken(from, by, seen, lanes, "since the last checkpoint");
                } else if seen != i64::MIN && to < seen.saturating_sub(STEP_TOLERANCE_MS) {
                    let step = ClockStep {
                        from_ms: seen,
                        to_ms: to,
                    };
                    step_core(from, step, lanes, core, "since the last checkpoint");
                }
            }
        }
        ClockEvent::Step { clock, step } => {
            for (_, l) in lanes
                .iter_mut()
                .enumerate()
                .filter(|(j, l)| *j != from && same(l, &clock))
            {
                l.shift(step.by_ms());
            }
            step_core(from, step, lanes, core, "between two frames");
        }
        ClockEvent::Broken { behind_ms, at_ms } => {
            broken(from, behind_ms, at_ms, lanes, "between two frames");
        }
        ClockEvent::Recovered { at_ms } => {
            if let Some(l) = lanes.get(from) {
                l.input.stats.clock_steps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    source = %l.input.name,
                    at = %iso(at_ms),
                    "the broken clock is back (clock_step): it agrees with the time kept since it broke"
                );
            }
        }
    }
}

/// Counts and logs that lane `from`'s clock broke: it reads `behind_ms` behind the time kept,
/// `at_ms`.
fn broken(from: usize, behind_ms: i64, at_ms: i64, lanes: &[Lane], when: &str) {
    if let Some(l) = lanes.get(from) {
        l.input.stats.clock_steps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            source = %l.input.name,
            behind_s = behind_ms.saturating_add(500).div_euclid(1000),
            kept = %iso(at_ms),
            "clock stepped back {when}, further than a correction goes (a day): taken as broken (clock_step); frames keep the time it had, advanced by monotonic time, until it agrees again"
        );
    }
}

/// Counts and logs a step of lane `from`'s clock and tells the core.
fn step_core(from: usize, step: ClockStep, lanes: &[Lane], core: &mut Sessionizer, when: &str) {
    let open = core.open_count();
    core.clock_step(step);
    if let Some(l) = lanes.get(from) {
        l.input.stats.clock_steps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            source = %l.input.name,
            // The size is measured against receive times: to the nearest second.
            by_s = step.by_ms().saturating_add(500).div_euclid(1000),
            from = %iso(step.from_ms),
            to = %iso(step.to_ms),
            visits_ended = open,
            "clock stepped {when}; trusting the new time: the visits open at the step end there, and the hours it touched are flagged (clock_step)"
        );
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
    let mut clocks = Clocks::new();
    // A lane change is under way: no input left does not mean the end.
    let mut holding = false;
    let mut c = Committer::new(store, settings, keyer.version());
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
        // A live lane with nothing queued may still deliver something older than that frame
        // (a lane whose clock is unset places no bound, but is waited on when nothing else
        // is queued).
        let blocker = lanes.iter().position(|l| {
            !l.ended
                && l.queue.is_empty()
                && match (head, l.bound()) {
                    (None, _) => true,
                    (Some((t, _)), Some(w)) => w < t,
                    (Some(_), None) => false,
                }
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
            for i in 0..lanes.len() {
                let Some(l) = lanes.get_mut(i) else { break };
                if l.ended || !l.queue.is_empty() {
                    continue;
                }
                match l.input.rx.try_recv() {
                    Ok(msg) => {
                        deliver(i, msg, &mut lanes, &mut clocks, &mut core);
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
                if let Some(wm) = merged_watermark(&lanes) {
                    core.advance(wm);
                }
            }
            match msg {
                Some(Ok(msg)) => {
                    deliver(b, msg, &mut lanes, &mut clocks, &mut core);
                    if lanes.iter().all(|l| l.queue.is_empty()) {
                        // Quiet moment: let visits close on the slowest source's watermark.
                        if let Some(wm) = merged_watermark(&lanes) {
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
        if settings.fixed_devices.contains(&f.mac) {
            // A PC or a printer: the sniffer heard something, nobody came in.
            core.heard(f.ts_ms, zone);
            lane.input.stats.count("fixed_device_frames", 1);
            frames += 1;
            continue;
        }
        let device = keyer.key(f.mac, f.ts_ms);
        let late = core.stats().too_late;
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
        if core.stats().too_late > late {
            lane.input.stats.too_late.fetch_add(1, Ordering::Relaxed);
        }
        if core.has_arrivals() {
            if let Some(out) = live {
                publish_arrivals(&mut core, out, &persons, &settings.zones);
            }
        }
        frames += 1;
        if core.raw_pending() >= MAX_SIGHTINGS_PER_COMMIT {
            // A fast replay covers minutes of capture between two timed commits: commit by
            // size too, so the rows held in memory stay bounded.
            c.commit(&mut core, &lanes, false)?;
        }
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
    c.summary.untracked_fragments = stats.untracked_fragments;
    c.summary.linked_fragments = stats.linked_fragments;
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

#[cfg(test)]
mod tests {
    use super::*;
    use edge_core::{snapshot, MetricParams, SightingKind};

    const T: i64 = 1_795_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn lane(name: &str, clock: Option<&str>) -> Lane {
        // The channel is not used: messages are handed to `deliver` directly.
        let (_tx, rx) = std::sync::mpsc::sync_channel(1);
        Lane::new(SourceInput {
            name: name.to_string(),
            zone: 0,
            rx,
            fingerprint: String::new(),
            start: 0,
            stats: SourceStats::new(name),
            clock: clock.map(str::to_string),
        })
    }

    fn frame(ts_ms: i64, mac: u64) -> Frame {
        Frame {
            ts_ms,
            mac,
            rssi_dbm: -50,
            kind: SightingKind::Probe,
            randomized: false,
            pos: 0,
            fingerprint: 0,
            seq: None,
            login: false,
        }
    }

    /// A live batch: frames (time, receive time), sent at `at`.
    fn live(frames: &[(i64, i64)], at: i64) -> SourceMsg {
        SourceMsg::Batch {
            frames: frames.iter().map(|&(ts, _)| frame(ts, 1)).collect(),
            logins: Vec::new(),
            watermark_ms: frames.iter().map(|f| f.0).max().unwrap_or(i64::MIN),
            position: 0,
            received: Some(Received {
                frames_ms: frames.iter().map(|f| f.1).collect(),
                at_ms: at,
            }),
        }
    }

    fn core() -> Sessionizer {
        Sessionizer::new(MetricParams::default(), LocalClock::new(chrono_tz::UTC))
    }

    fn queued(l: &Lane) -> Vec<i64> {
        l.queue.iter().map(|f| f.ts_ms).collect()
    }

    fn count(l: &Lane, name: &str) -> u64 {
        l.input
            .stats
            .values()
            .into_iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| v)
    }

    /// Caps the store's database at its current pages (`full`: any write needing a page fails
    /// with SQLITE_FULL, as on a full disk) or lifts the cap.
    fn cap_pages(store: &Store, full: bool) {
        store
            .with_writer(move |c| {
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
                let max = if full { pages } else { 1 << 30 };
                let _: i64 = c
                    .query_row(&format!("PRAGMA max_page_count = {max}"), [], |r| r.get(0))
                    .unwrap();
            })
            .unwrap();
    }

    /// The core a checkpoint lends the store comes back whatever the store does with it:
    /// refused for lack of space, held during the wait before the next attempt, or written.
    /// (A stand-in left in its place would have dropped every open visit.)
    #[test]
    fn a_checkpoint_the_store_cannot_take_gives_the_core_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(dir.path()).unwrap();
        let settings = PipelineSettings {
            zones: vec!["z".into()],
            clock: LocalClock::new(chrono_tz::UTC),
            commit_interval: Duration::ZERO,
            // Every commit is due a checkpoint.
            checkpoint_interval: Duration::ZERO,
            flush_at_end: false,
            staff_persons: Default::default(),
            open_visits: Default::default(),
            person_key_version: 0,
            attribution_grace_ms: 0,
            live: None,
            flush: Default::default(),
            fixed_devices: Default::default(),
            door_calibration: false,
        };
        let mut c = Committer::new(&store, &settings, 1);
        let mut core = crate::store::tests::core(500);
        let open = core.open_count();
        assert_eq!(open, 500);
        cap_pages(&store, true);
        // Refused: held, and a wait before the next attempt begins.
        assert!(!c.commit(&mut core, &[], false).unwrap());
        assert_eq!(core.open_count(), open, "after a refused checkpoint");
        // Within the wait: held without an attempt.
        assert!(!c.commit(&mut core, &[], false).unwrap());
        assert_eq!(
            core.open_count(),
            open,
            "after a checkpoint held in the wait"
        );
        cap_pages(&store, false);
        assert!(c.commit(&mut core, &[], true).unwrap());
        assert_eq!(core.open_count(), open, "after a written checkpoint");
        let (_, stored) = crate::store::Reader::open(dir.path())
            .unwrap()
            .snapshot()
            .unwrap()
            .unwrap();
        assert_eq!(stored, snapshot::encode(&core));
        store.close();
    }

    /// Two interfaces of one gateway boot at 1970: both hold their frames and place no bound
    /// on the merge; the first sane frame on either sets the clock for both, and each lane's
    /// held frames get the times of their receipt.
    #[test]
    fn one_clock_set_releases_every_lane_that_shares_it() {
        let mut lanes = vec![lane("a", Some("local")), lane("b", Some("local"))];
        let mut clocks = Clocks::new();
        let mut c = core();
        deliver(
            0,
            live(&[(5_000, 5_000), (6_000, 6_000)], 6_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        deliver(
            1,
            live(&[(6_500, 6_500)], 6_500),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert!(lanes
            .iter()
            .all(|l| l.queue.is_empty() && l.bound().is_none()));
        assert_eq!(merged_watermark(&lanes), None);
        assert_eq!((lanes[0].held.len(), lanes[1].held.len()), (2, 1));
        // NTP: lane b's next frame, received at 10 s, reads T.
        deliver(
            1,
            live(&[(T, 10_000)], 10_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(queued(&lanes[0]), vec![T - 5_000, T - 4_000]);
        assert_eq!(queued(&lanes[1]), vec![T - 3_500, T]);
        assert!(lanes.iter().all(|l| l.held.is_empty() && !l.clock_unset));
        assert_eq!(count(&lanes[0], "clock_unset_frames"), 2);
        assert_eq!(count(&lanes[0], "clock_restamped_frames"), 2);
        assert_eq!(count(&lanes[1], "clock_restamped_frames"), 1);
        assert_eq!(lanes[1].bound(), Some(T - LIVE_WATERMARK_LAG_MS));
        assert_eq!(
            count(&lanes[1], "clock_steps"),
            0,
            "a first setting is no step"
        );
    }

    /// A step back seen on one interface moves what the other has queued to the new clock;
    /// a frame that other interface captured before the step and delivers after it follows;
    /// the core's watermark goes back with the clock. A pipe (its own clock) is untouched.
    #[test]
    fn a_step_moves_every_lane_of_its_clock_and_the_core() {
        let mut lanes = vec![
            lane("a", Some("local")),
            lane("b", Some("local")),
            lane("ap", Some("pipe:/run/ap.pcap")),
        ];
        let mut clocks = Clocks::new();
        let mut c = core();
        deliver(
            0,
            live(&[(T, 1_000)], 1_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        deliver(
            2,
            live(&[(T + 30, 1_000)], 1_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        // Lane a's frame reaches the core; lane b queues one.
        let f = lanes[0].pop().unwrap();
        c.observe(&Sighting {
            ts_ms: f.ts_ms,
            device: DeviceKey([1; 16]),
            zone: 0,
            rssi_dbm: -50,
            kind: SightingKind::Probe,
            randomized: false,
            fingerprint: 0,
            seq: None,
        });
        deliver(
            1,
            live(&[(T + 500, 1_500)], 1_500),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        // NTP steps the gateway's clock back an hour; lane a sees it first.
        deliver(
            0,
            live(&[(T - HOUR + 1_000, 2_000)], 2_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(count(&lanes[0], "clock_steps"), 1);
        assert_eq!(queued(&lanes[0]), vec![T - HOUR + 1_000]);
        assert_eq!(
            queued(&lanes[1]),
            vec![T - HOUR + 500],
            "queued on the old clock: moved"
        );
        assert_eq!(count(&lanes[1], "clock_restamped_frames"), 1);
        assert_eq!(queued(&lanes[2]), vec![T + 30], "another clock: untouched");
        assert_eq!(
            c.watermark_ms(),
            T - HOUR,
            "the core went back with the clock"
        );
        assert_eq!(c.open_count(), 0, "the visit open at the step ended there");
        let closed = c.drain_closed();
        assert_eq!(closed.len(), 1);
        assert!(closed[0].clock_step);
        // Lane b delivers a frame captured before the step, then one after it.
        deliver(
            1,
            live(&[(T + 1_100, 2_100), (T - HOUR + 1_200, 2_200)], 2_200),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(
            queued(&lanes[1]),
            vec![T - HOUR + 500, T - HOUR + 1_100, T - HOUR + 1_200]
        );
        assert_eq!(count(&lanes[1], "clock_steps"), 0, "one step, counted once");
        assert_eq!(
            lanes[1].bound(),
            Some(T - HOUR + 1_200 - LIVE_WATERMARK_LAG_MS)
        );
        assert_eq!(lanes[2].bound(), Some(T + 30 - LIVE_WATERMARK_LAG_MS));
    }

    /// After a restart the guard knows nothing: a first frame an hour behind what the restored
    /// core had seen is a step back taken while the agent was down.
    #[test]
    fn a_clock_behind_the_checkpoint_is_a_step() {
        let mut lanes = vec![lane("a", Some("local"))];
        let mut clocks = Clocks::new();
        let mut c = core();
        c.advance(T);
        deliver(
            0,
            live(&[(T - HOUR, 50)], 50),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(count(&lanes[0], "clock_steps"), 1);
        assert_eq!(c.watermark_ms(), T - HOUR);
        // A first frame after the checkpoint is just time passing.
        let mut lanes = vec![lane("a", Some("local"))];
        let mut clocks = Clocks::new();
        let mut c = core();
        c.advance(T);
        deliver(
            0,
            live(&[(T + HOUR, 50)], 50),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(count(&lanes[0], "clock_steps"), 0);
    }

    /// A clock that jumps 400 days back is broken: every lane of it keeps the time it had
    /// (frames re-stamped, never refused as late), the core sees no step, and when the clock
    /// comes back the frames are taken as stamped again. Both jumps are counted.
    #[test]
    fn a_broken_clock_loses_no_frame() {
        const DAY: i64 = 24 * HOUR;
        let mut lanes = vec![lane("a", Some("local")), lane("b", Some("local"))];
        let mut clocks = Clocks::new();
        let mut c = core();
        deliver(
            0,
            live(&[(T, 1_000)], 1_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        deliver(
            0,
            live(&[(T - 400 * DAY + 1_000, 2_000)], 2_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        deliver(
            1,
            live(&[(T - 400 * DAY + 1_500, 2_500)], 2_500),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(queued(&lanes[0]), vec![T, T + 1_000]);
        assert_eq!(queued(&lanes[1]), vec![T + 1_500]);
        assert_eq!(lanes[1].bound(), Some(T + 1_500 - LIVE_WATERMARK_LAG_MS));
        assert_eq!(count(&lanes[0], "clock_steps"), 1);
        assert_eq!(
            count(&lanes[1], "clock_steps"),
            0,
            "one break, counted once"
        );
        assert_eq!(count(&lanes[1], "clock_restamped_frames"), 1);
        deliver(
            1,
            live(&[(T + 3_000, 4_000)], 4_000),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(queued(&lanes[1]), vec![T + 1_500, T + 3_000]);
        assert_eq!(count(&lanes[1], "clock_steps"), 1, "the way back");
        assert_eq!(count(&lanes[1], "clock_restamped_frames"), 1);
        assert_eq!(c.watermark_ms(), i64::MIN, "the core was told of no step");
    }

    /// After a restart, a first frame 400 days behind what the core processed: the clock broke
    /// while the agent was down; its time resumes where processing stopped.
    #[test]
    fn a_clock_far_behind_the_checkpoint_is_broken() {
        const DAY: i64 = 24 * HOUR;
        let mut lanes = vec![lane("a", Some("local"))];
        let mut clocks = Clocks::new();
        let mut c = core();
        c.advance(T);
        deliver(
            0,
            live(&[(T - 400 * DAY, 50), (T - 400 * DAY + 500, 550)], 550),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(queued(&lanes[0]), vec![T, T + 500]);
        assert_eq!(count(&lanes[0], "clock_steps"), 1);
        assert_eq!(c.watermark_ms(), T, "the core did not rewind");
        deliver(
            0,
            live(&[(T - 400 * DAY + 1_500, 1_550)], 1_550),
            &mut lanes,
            &mut clocks,
            &mut c,
        );
        assert_eq!(queued(&lanes[0]), vec![T, T + 500, T + 1_500]);
    }

    /// Replays and portal logins carry no receive times: taken as stamped, never held.
    #[test]
    fn inputs_without_receive_times_are_taken_as_stamped() {
        let mut lanes = vec![lane("file", None)];
        let mut clocks = Clocks::new();
        let mut c = core();
        let msg = SourceMsg::Batch {
            frames: vec![frame(5_000, 1)],
            logins: Vec::new(),
            watermark_ms: 5_000,
            position: 1,
            received: None,
        };
        deliver(0, msg, &mut lanes, &mut clocks, &mut c);
        assert_eq!(queued(&lanes[0]), vec![5_000]);
        assert_eq!(lanes[0].bound(), Some(5_000));
        assert!(clocks.is_empty());
    }
}
