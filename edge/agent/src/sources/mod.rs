//! Sources: tasks that read hardware (or replay files) and hand typed frames to the pipeline.
//!
//! Each source owns one bounded channel to the pipeline. A file source blocks when the channel
//! is full (nothing is lost, the file waits); a live source drops the batch and counts it,
//! because the kernel would drop frames anyway if the capture loop stalled. Every frame carries
//! its position in the source so the pipeline can commit a cursor that covers exactly what the
//! store has.
//!
//! Live Wi-Fi sources also say when they received each frame, on the process's monotonic
//! clock ([`mono_ms`]): the frame times come from the capture host's wall clock, which may be
//! unset (1970) or stepped, and only a clock that never jumps can tell (see the pipeline's
//! clock guard). Replayed files carry no receive times: their timestamps are what they are.

pub mod counter;
pub mod portal;
pub mod pos;
pub mod wifi;

use std::sync::OnceLock;
use std::time::Instant;

use edge_core::person::PersonKey;
use edge_core::{DeviceKey, SightingKind};

/// Milliseconds on the process's monotonic clock (since its first use): never steps, whatever
/// the wall clock does, and means nothing across a restart.
pub fn mono_ms() -> i64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    let since = ANCHOR.get_or_init(Instant::now).elapsed().as_millis();
    // i64 milliseconds last 292 million years.
    i64::try_from(since).unwrap_or(i64::MAX)
}

/// When a live source received what a batch carries, in [`mono_ms`] time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Receive time of each frame (parallel to the batch's `frames`).
    pub frames_ms: Vec<i64>,
    /// When the batch was sent: the moment its watermark speaks for.
    pub at_ms: i64,
}

/// Batches queued per source before a file source waits / a live source drops.
pub const CHANNEL_BATCHES: usize = 64;
/// Frames per batch.
pub const BATCH_FRAMES: usize = 1024;

/// One presence-revealing frame, parsed. The raw MAC stays in memory only; the pipeline turns
/// it into a device key before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Capture time, UTC ms.
    pub ts_ms: i64,
    /// The client MAC (48 bits).
    pub mac: u64,
    /// Signal strength.
    pub rssi_dbm: i8,
    /// Frame kind.
    pub kind: SightingKind,
    /// Locally administered (randomized) MAC.
    pub randomized: bool,
    /// Position of the record in its source (0-based); the cursor after it is `pos + 1`.
    pub pos: u64,
    /// Probe requests: IE layout fingerprint (0: none).
    pub fingerprint: u32,
    /// 802.11 sequence number.
    pub seq: Option<u16>,
    /// Not a radio frame but a portal login: its details are the next entry of the batch's
    /// `logins` (in the same order), and `mac` is unused.
    pub login: bool,
}

impl Frame {
    /// The frame standing for a portal login at `ts_ms`, at position `pos` of its source.
    pub fn login(ts_ms: i64, pos: u64) -> Frame {
        Frame {
            ts_ms,
            mac: 0,
            rssi_dbm: 0,
            kind: SightingKind::Join,
            randomized: false,
            fingerprint: 0,
            seq: None,
            pos,
            login: true,
        }
    }
}

/// What a portal login event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginEvent {
    /// Session start (login).
    Start,
    /// Accounting update during the session.
    Interim,
    /// Session end.
    Stop,
}

/// A captive-portal login, keyed in the source: the raw MAC and phone number never leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login {
    /// The device that logged in.
    pub device: DeviceKey,
    /// The person whose phone number it was.
    pub person: PersonKey,
    /// Version of the tenant secret the person key was made with.
    pub person_key_version: u32,
    /// What happened.
    pub event: LoginEvent,
}

/// What a source sends to the pipeline.
#[derive(Debug)]
pub enum SourceMsg {
    /// Frames in time order, and the time up to which the source has delivered everything.
    Batch {
        /// The frames.
        frames: Vec<Frame>,
        /// Details of the frames that are logins, in order.
        logins: Vec<Login>,
        /// No later frame will be older than this (UTC ms).
        watermark_ms: i64,
        /// Records consumed so far (cursor), including skipped ones.
        position: u64,
        /// Receive times: live Wi-Fi sources only (`None`: the frame times are taken as they
        /// are, and `watermark_ms` is trusted).
        received: Option<Received>,
    },
    /// The source moved on to another input (a followed file was rotated or truncated): the
    /// positions of later batches count from 0 in the input with this fingerprint.
    NewInput {
        /// The new input's identity.
        fingerprint: String,
    },
    /// The source has ended (file drained, or stopped).
    End {
        /// Records consumed in total.
        position: u64,
    },
}
