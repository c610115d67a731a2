//! Sources: tasks that read hardware (or replay files) and hand typed frames to the pipeline.
//!
//! Each source owns one bounded channel to the pipeline. A file source blocks when the channel
//! is full (nothing is lost, the file waits); a live source drops the batch and counts it,
//! because the kernel would drop frames anyway if the capture loop stalled. Every frame carries
//! its position in the source so the pipeline can commit a cursor that covers exactly what the
//! store has.

pub mod wifi;

use edge_core::SightingKind;

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
}

/// What a source sends to the pipeline.
#[derive(Debug)]
pub enum SourceMsg {
    /// Frames in time order, and the time up to which the source has delivered everything.
    Batch {
        /// The frames.
        frames: Vec<Frame>,
        /// No later frame will be older than this (UTC ms).
        watermark_ms: i64,
        /// Records consumed so far (cursor), including skipped ones.
        position: u64,
    },
    /// The source has ended (file drained, or stopped).
    End {
        /// Records consumed in total.
        position: u64,
    },
}
