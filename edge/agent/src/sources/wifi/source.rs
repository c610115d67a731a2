//! The Wi-Fi source's run loops: live capture on a monitor interface (non-blocking libpcap
//! stream), a live capture streamed into a named pipe, and replay of pcap/pcapng files
//! (edge-wire's streaming [`CaptureReader`], which reads 1 MiB at a time where libpcap's
//! offline reader `fread`s 4 KiB). All feed every record through [`FrameHandler`], so
//! parsing, counting and batching are the same code.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use edge_core::SightingKind;
use edge_wire::capture::{CaptureReader, ReadError};
use edge_wire::ieee80211::FrameKind;
use edge_wire::presence;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::config::{WifiInput, WifiSource};
use crate::sources::{mono_ms, Frame, Received, SourceMsg, BATCH_FRAMES};
use crate::stats::SourceStats;

/// How much of a capture file identifies it for its cursor: a file that was replaced gets a
/// new fingerprint (and is read from the start), one that grew keeps its fingerprint.
const FINGERPRINT_BYTES: u64 = 64 * 1024;
/// A live source with no traffic still reports its watermark this often, so the pipeline can
/// close visits of other zones.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Identity of a capture file for its cursor: SHA-256 of its first 64 KiB.
pub fn fingerprint(path: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut head = Vec::new();
    f.take(FINGERPRINT_BYTES).read_to_end(&mut head)?;
    Ok(hex::encode(Sha256::digest(&head)))
}

/// The identity of a source's input for its cursor.
pub fn input_fingerprint(src: &WifiSource) -> String {
    match &src.input {
        WifiInput::File(p) => fingerprint(p).unwrap_or_else(|_| "unreadable".to_string()),
        WifiInput::Interface(i) => format!("live:{i}"),
        WifiInput::Pipe(p) => format!("pipe:{}", p.display()),
    }
}

fn sighting_kind(k: FrameKind) -> SightingKind {
    match k {
        FrameKind::ProbeRequest => SightingKind::Probe,
        FrameKind::Data | FrameKind::NullData | FrameKind::QosData | FrameKind::QosNull => {
            SightingKind::Data
        }
        _ => SightingKind::Join,
    }
}

/// Parses records into frames, counts skips and fills batches.
pub struct FrameHandler {
    stats: Arc<SourceStats>,
    batch: Vec<Frame>,
    /// Records consumed (the cursor).
    pub position: u64,
    /// Newest timestamp seen.
    pub watermark_ms: i64,
    /// Live captures: the receive time ([`mono_ms`]) of each batched frame.
    received: Option<Vec<i64>>,
}

impl FrameHandler {
    /// A handler for a replayed file, whose first record has position `position`.
    pub fn new(stats: Arc<SourceStats>, position: u64) -> Self {
        FrameHandler {
            stats,
            batch: Vec::with_capacity(BATCH_FRAMES),
            position,
            watermark_ms: i64::MIN,
            received: None,
        }
    }

    /// A handler for a live capture: its batches say when each frame was received, so the
    /// pipeline can judge the capture host's clock.
    pub fn live(stats: Arc<SourceStats>) -> Self {
        FrameHandler {
            received: Some(Vec::with_capacity(BATCH_FRAMES)),
            ..FrameHandler::new(stats, 0)
        }
    }

    /// Handles one record of a capture with `linktype` (`orig_len`: the frame's length on the
    /// air); returns a full batch when one is ready.
    pub fn handle(
        &mut self,
        linktype: u32,
        ts_ms: i64,
        data: &[u8],
        orig_len: usize,
    ) -> Option<SourceMsg> {
        self.push_parsed(ts_ms, presence::parse_record(linktype, data, orig_len))
    }

    /// Whether frames are waiting in the batch.
    pub fn has_frames(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Takes what is batched so far (possibly empty, as a heartbeat).
    pub fn take(&mut self) -> SourceMsg {
        SourceMsg::Batch {
            logins: Vec::new(),
            frames: std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_FRAMES)),
            watermark_ms: self.watermark_ms,
            position: self.position,
            received: self.received.as_mut().map(|r| Received {
                frames_ms: std::mem::replace(r, Vec::with_capacity(BATCH_FRAMES)),
                at_ms: mono_ms(),
            }),
        }
    }
}

// `time_t` and `suseconds_t` are 32-bit on armhf, so the conversions are not useless there.
#[allow(clippy::useless_conversion)]
fn ts_ms(h: &pcap::PacketHeader) -> i64 {
    i64::from(h.ts.tv_sec) * 1000 + i64::from(h.ts.tv_usec) / 1000
}

/// Replays a capture file from record `start` (blocking; run on a blocking thread). Sends
/// batches until the file ends, then `End`. A file that cannot be opened, or a record that
/// cannot be read, is counted in `read_errors` and ends the source; what was read before stays
/// delivered.
pub fn replay_file(
    src: &WifiSource,
    path: &Path,
    start: u64,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
) {
    let opened = std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| CaptureReader::new(f).map_err(|e| e.to_string()));
    let mut cap = match opened {
        Ok(c) => c,
        Err(e) => {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(source = %src.name, file = %path.display(), error = %e, "cannot open capture file; source skipped");
            let _ = tx.send(SourceMsg::End { position: start });
            return;
        }
    };
    let unreadable = |position: u64, e: &ReadError| {
        stats.read_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(source = %src.name, file = %path.display(), after_records = position, error = %e, "capture file unreadable past this point; the rest of it is skipped");
    };
    let mut skipped = 0u64;
    while skipped < start {
        match cap.next_record() {
            Ok(Some(_)) => skipped += 1,
            Ok(None) => break,
            Err(e) => {
                unreadable(skipped, &e);
                break;
            }
        }
    }
    if skipped > 0 {
        tracing::info!(source = %src.name, records = skipped, "resuming capture file after its committed cursor");
    }
    let mut h = FrameHandler::new(stats.clone(), skipped);
    loop {
        // An atomic load per record shows in profiles; a cancelled replay stops within 1024.
        if h.position.is_multiple_of(1024) && cancel.is_cancelled() {
            break;
        }
        match cap.next_record() {
            Ok(Some(r)) => {
                let ts_ms = r.ts_micros.div_euclid(1000);
                if let Some(batch) = h.handle(r.linktype, ts_ms, r.data, r.orig_len as usize) {
                    if tx.send(batch).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                unreadable(h.position, &e);
                break;
            }
        }
    }
    let _ = tx.send(h.take());
    let _ = tx.send(SourceMsg::End {
        position: h.position,
    });
}

/// How often a pipe reader waiting for data checks for cancellation.
const PIPE_POLL_MS: i64 = 200;

/// A non-blocking FIFO read with `poll` first, so a reader waiting for a quiet writer still
/// notices cancellation (it then reads as end of stream).
struct PipeReader {
    file: std::fs::File,
    cancel: CancellationToken,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: PIPE_POLL_MS * 1_000_000,
        };
        loop {
            if self.cancel.is_cancelled() {
                return Ok(0);
            }
            let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => continue,
                // Readable, or the writer hung up (the read then returns 0). Someone else may
                // have drained it meanwhile: then wait again.
                Ok(_) => match self.file.read(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return r,
                },
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Opens a FIFO for non-blocking reading, without waiting for a writer (a blocking open would
/// not notice cancellation); [`PipeReader`] polls before each read.
fn open_pipe(path: &Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_fifo() {
        return Err(std::io::Error::other(
            "not a named pipe (create it with mkfifo)",
        ));
    }
    Ok(f)
}

/// The stream's clock as last seen: (newest frame time, when it was read). The heartbeat runs
/// the stream's clock on from there, so a capturing host whose clock differs from the
/// gateway's neither has its frames refused as late nor pushes other zones ahead.
type StreamClock = Arc<std::sync::Mutex<Option<(i64, std::time::Instant)>>>;

/// Reads a live capture streamed into the named pipe `path` until cancelled: each writer's
/// stream (a pcap or pcapng header, then records) is read as it arrives and batches are
/// flushed whenever the reader has nothing more buffered, so a sighting reaches the core at
/// once. When a writer goes away the pipe is reopened for the next. Batches wait for room in
/// the channel: while the pipeline is behind, the writer blocks on the full pipe and the
/// capturing side's own buffer (which counts its drops) absorbs the burst. A heartbeat carries
/// the stream's clock forward so quiet periods still close visits.
pub fn read_pipe(
    src: &WifiSource,
    path: &Path,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
) {
    let clock: StreamClock = Arc::default();
    let send = |msg: SourceMsg| {
        if let SourceMsg::Batch { watermark_ms, .. } = &msg {
            if let Ok(mut c) = clock.lock() {
                *c = Some((*watermark_ms, std::time::Instant::now()));
            }
        }
        tx.send(msg).is_ok()
    };
    // The heartbeat runs beside the reader, which may be blocked waiting for data. Nothing
    // to say before the stream's first frame: its clock is not known yet.
    let beat = {
        let (tx, cancel, clock) = (tx.clone(), cancel.clone(), clock.clone());
        std::thread::Builder::new()
            .name(format!("{}-heartbeat", src.name))
            .spawn(move || {
                while !cancel.is_cancelled() {
                    std::thread::sleep(HEARTBEAT);
                    let seen = clock.lock().ok().and_then(|c| *c);
                    let Some((ts, at)) = seen else { continue };
                    let elapsed = i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX);
                    let msg = SourceMsg::Batch {
                        logins: Vec::new(),
                        frames: Vec::new(),
                        watermark_ms: ts
                            .saturating_add(elapsed)
                            .saturating_sub(crate::pipeline::LIVE_WATERMARK_LAG_MS),
                        position: 0,
                        received: Some(Received {
                            frames_ms: Vec::new(),
                            at_ms: mono_ms(),
                        }),
                    };
                    if let Err(TrySendError::Disconnected(_)) = tx.try_send(msg) {
                        break;
                    }
                }
            })
    };
    let mut h = FrameHandler::live(stats.clone());
    let mut failures = 0u32;
    'streams: while !cancel.is_cancelled() {
        let file = match open_pipe(path) {
            Ok(f) => f,
            Err(e) => {
                stats.read_errors.fetch_add(1, Ordering::Relaxed);
                if failures == 0 {
                    tracing::error!(source = %src.name, pipe = %path.display(), error = %e, "cannot open the capture pipe; retrying");
                }
                failures = failures.saturating_add(1);
                // Back off up to 5 s, checking for cancellation every 100 ms.
                for _ in 0..failures.min(50) {
                    if cancel.is_cancelled() {
                        break 'streams;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        failures = 0;
        let reader = PipeReader {
            file,
            cancel: cancel.clone(),
        };
        let mut cap = match CaptureReader::new(reader) {
            Ok(c) => c,
            Err(e) => {
                // Cancelled while waiting, or a writer that sent no capture header.
                if !cancel.is_cancelled() {
                    stats.read_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(source = %src.name, pipe = %path.display(), error = %e, "capture stream did not start with a pcap/pcapng header; waiting for the next writer");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        tracing::info!(source = %src.name, pipe = %path.display(), "capture stream connected");
        loop {
            match cap.next_record() {
                Ok(Some(r)) => {
                    let ts_ms = r.ts_micros.div_euclid(1000);
                    let full = h.handle(r.linktype, ts_ms, r.data, r.orig_len as usize);
                    let msg = match full {
                        Some(batch) => Some(batch),
                        // Nothing more buffered: deliver now rather than wait for more.
                        None if cap.buffered() == 0 && h.has_frames() => Some(h.take()),
                        None => None,
                    };
                    if let Some(m) = msg {
                        if !send(m) {
                            break 'streams;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if !cancel.is_cancelled() {
                        stats.read_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(source = %src.name, pipe = %path.display(), error = %e, "capture stream broken; waiting for the next writer");
                    }
                    break;
                }
            }
        }
        if h.has_frames() && !send(h.take()) {
            break;
        }
        tracing::info!(source = %src.name, pipe = %path.display(), "capture stream ended");
    }
    let _ = tx.try_send(h.take());
    let _ = tx.try_send(SourceMsg::End {
        position: h.position,
    });
    if let Ok(beat) = beat {
        let _ = beat.join();
    }
}

/// Parses packets inside the libpcap stream so no packet bytes are copied.
struct Codec {
    linktype: u32,
}

/// A packet's time and bytes' verdict, produced inside the stream.
enum Decoded {
    Frame(i64, Result<presence::Presence, presence::Skip>),
}

impl pcap::PacketCodec for Codec {
    type Item = Decoded;
    fn decode(&mut self, packet: pcap::Packet<'_>) -> Self::Item {
        Decoded::Frame(
            ts_ms(packet.header),
            presence::parse(self.linktype, packet.data),
        )
    }
}

fn open_live(src: &WifiSource, iface: &str) -> anyhow::Result<pcap::Capture<pcap::Active>> {
    let cap = pcap::Capture::from_device(iface)?
        .snaplen(src.snaplen as i32)
        .buffer_size(src.buffer_bytes as i32)
        .immediate_mode(true)
        .timeout(100)
        .open()?;
    let mut cap = cap.setnonblock()?;
    let linktype = cap.get_datalink().0;
    if linktype == 127 || linktype == 105 {
        cap.filter(&src.bpf_filter, true)?;
    } else {
        tracing::warn!(source = %src.name, interface = iface, linktype, "interface is not in monitor mode (no 802.11 link type); every frame will be skipped");
    }
    Ok(cap)
}

/// Captures live from a monitor interface until cancelled. Batches go to the pipeline with
/// `try_send`: if the pipeline is behind, the batch is dropped and counted.
pub async fn capture_live(
    src: WifiSource,
    iface: String,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    if let (Some(ch), None) = (src.channel, &src.hop) {
        if let Err(e) = super::hop::set_channel(&src.iw, &iface, ch).await {
            stats.hop_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %src.name, error = %e, "could not tune the interface");
        }
    }
    let cap = open_live(&src, &iface)?;
    let linktype = cap.get_datalink().0 as u32;
    let mut stream = cap.stream(Codec { linktype })?;
    let mut h = FrameHandler::live(stats.clone());
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let send = |msg: SourceMsg, stats: &SourceStats| match tx.try_send(msg) {
        Ok(()) => true,
        Err(TrySendError::Full(SourceMsg::Batch { frames, .. })) => {
            stats
                .backpressure_dropped
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Full(_)) => true,
        Err(TrySendError::Disconnected(_)) => false,
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            item = stream.next() => match item {
                Some(Ok(Decoded::Frame(ts, verdict))) => {
                    if let Some(batch) = h.push_parsed(ts, verdict) {
                        if !send(batch, &stats) { break; }
                    }
                }
                Some(Err(e)) => {
                    stats.read_errors.fetch_add(1, Ordering::Relaxed);
                    anyhow::bail!("capture on {iface} failed: {e}");
                }
                None => break,
            },
            _ = tick.tick() => {
                // Heartbeat: wall-clock watermark so other zones' visits can close.
                let now = chrono::Utc::now().timestamp_millis();
                h.watermark_ms = h
                    .watermark_ms
                    .max(now - crate::pipeline::LIVE_WATERMARK_LAG_MS);
                if !send(h.take(), &stats) { break; }
                if let Ok(s) = stream.capture_mut().stats() {
                    stats.pcap_received.store(u64::from(s.received), Ordering::Relaxed);
                    stats.pcap_dropped.store(u64::from(s.dropped), Ordering::Relaxed);
                    stats.pcap_if_dropped.store(u64::from(s.if_dropped), Ordering::Relaxed);
                }
            }
        }
    }
    let _ = tx.try_send(h.take());
    let _ = tx.try_send(SourceMsg::End {
        position: h.position,
    });
    Ok(())
}

impl FrameHandler {
    /// Like [`FrameHandler::handle`] for a packet already parsed inside the stream.
    fn push_parsed(
        &mut self,
        ts_ms: i64,
        verdict: Result<presence::Presence, presence::Skip>,
    ) -> Option<SourceMsg> {
        let pos = self.position;
        self.position += 1;
        self.stats.frames_read.fetch_add(1, Ordering::Relaxed);
        self.watermark_ms = self.watermark_ms.max(ts_ms);
        match verdict {
            Ok(p) => {
                self.stats.sightings.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = &mut self.received {
                    r.push(mono_ms());
                }
                self.batch.push(Frame {
                    ts_ms,
                    mac: p.mac.to_u64(),
                    rssi_dbm: p.rssi_dbm,
                    kind: sighting_kind(p.kind),
                    randomized: p.mac.is_locally_administered(),
                    fingerprint: p.fingerprint.unwrap_or(0),
                    seq: p.seq,
                    pos,
                    login: false,
                });
            }
            Err(skip) => self.stats.skip(skip),
        }
        (self.batch.len() >= BATCH_FRAMES).then(|| self.take())
    }
}
