//! Snapshots of the core state, so a restart resumes with the same open visits.
//!
//! The agent stores a snapshot in the same transaction as the source cursors it corresponds to:
//! restoring both replays exactly the frames after the cursors into exactly the state that had
//! seen the frames before them. The encoding is compact (postcard) with a magic and a version.

use std::fmt;

use crate::params::MetricParams;
use crate::session::Sessionizer;
use crate::time::LocalClock;

// Version 2: open visits carry the person and connected flag of portal logins.
// Version 3: hourly slots hold the merged visits of counting groups.
// Version 4: hourly slots and visits carry the clock-step flag.
// Version 5: the presence tracker.
// Version 6: probe-only randomized fragments held until linked; untracked/linked counts.
// Version 7: open visits hold their raw-sightings rows.
const MAGIC: &[u8; 4] = b"SEc7";

/// A snapshot that cannot be read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes do not start with the snapshot magic of this format version.
    BadMagic,
    /// The body did not decode.
    Decode(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => write!(f, "core snapshot: unknown format or version"),
            SnapshotError::Decode(e) => write!(f, "core snapshot: cannot decode body: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Encodes the whole core state.
pub fn encode(s: &Sessionizer) -> Vec<u8> {
    // Sized first, so the buffer is allocated once at its length instead of doubling past it.
    let mut out = Vec::with_capacity(encoded_len(s));
    // Writing into a Vec cannot fail, and postcard only fails for types it cannot represent
    // (none here): an error would be a programming bug. Keep the magic-only snapshot then,
    // which decodes to an error instead of silently losing state.
    if encode_to(s, &mut out).is_err() {
        out = MAGIC.to_vec();
    }
    out
}

/// Length in bytes of [`encode`]'s output.
pub fn encoded_len(s: &Sessionizer) -> usize {
    MAGIC.len() + postcard::experimental::serialized_size(s).unwrap_or(0)
}

/// Writes [`encode`]'s bytes into `w` as they are produced: a busy store's snapshot is
/// megabytes, and a sink that takes it piecewise (a blob of [`encoded_len`] bytes) then never
/// holds it whole. The core does no I/O itself; the caller's `w` does.
pub fn encode_to<W: std::io::Write>(s: &Sessionizer, mut w: W) -> std::io::Result<()> {
    w.write_all(MAGIC)?;
    postcard::to_io(s, w)
        .map(|_| ())
        .map_err(|e| std::io::Error::other(format!("encoding the core snapshot: {e}")))
}

/// Decodes a snapshot, applying the current thresholds and clock.
pub fn decode(
    bytes: &[u8],
    params: MetricParams,
    clock: LocalClock,
) -> Result<Sessionizer, SnapshotError> {
    let body = bytes.strip_prefix(MAGIC).ok_or(SnapshotError::BadMagic)?;
    let mut s: Sessionizer =
        postcard::from_bytes(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    s.set_clock(clock);
    s.set_params(params);
    Ok(s)
}
