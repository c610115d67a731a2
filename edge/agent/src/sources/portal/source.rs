//! The portal sources' run loops: FreeRADIUS `detail` files and openNDS BinAuth logs followed
//! like `tail -F` (rotation and truncation survived, resumed from the committed byte offset),
//! and the keying every source shares: the client MAC becomes a device key and the phone
//! number, normalised to E.164, a person key — here, before anything leaves the source.
//!
//! A record that cannot be used (malformed, no MAC, no or invalid phone number) is counted
//! under `rejected_<reason>` and skipped; the records around it are still read.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use chrono_tz::Tz;
use edge_core::person::PersonKeyer;
use edge_core::phone::{self, Region};
use edge_core::DeviceKeyer;
use edge_wire::portal::{binauth, detail};
use edge_wire::MacAddr;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::config::{PortalFormat, PortalSource};
use crate::sources::{Frame, Login, LoginEvent, SourceMsg};
use crate::stats::SourceStats;

/// Bytes read per refill.
const CHUNK: usize = 64 * 1024;
/// A followed file is checked for growth, rotation and truncation this often when idle.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// While idle, a followed source reports the wall clock minus this as its watermark (portals
/// log within moments of the login).
const LIVE_LAG_MS: i64 = 2000;
/// A heartbeat goes to the pipeline at least this often while idle.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// Longest record accepted before it is skipped as malformed (a detail record is a few hundred
/// bytes; a log line a few hundred more).
const MAX_RECORD: usize = 64 * 1024;

/// Turns what a portal says into keys. Owned by one source.
pub struct Keying {
    /// MAC → device key (the same secret and rotation as the Wi-Fi pipeline).
    pub devices: DeviceKeyer,
    /// E.164 → person key.
    pub persons: Arc<PersonKeyer>,
    /// Region of numbers written without a country code.
    pub region: Region,
    /// Store time zone, for portal times written in local time.
    pub tz: Tz,
}

/// One login as read, before keying. Holds the raw phone number: it lives only in here.
pub struct RawLogin {
    /// When, UTC ms.
    pub ts_ms: i64,
    /// Client MAC.
    pub mac: MacAddr,
    /// The phone number as written.
    pub phone: String,
    /// What happened.
    pub event: LoginEvent,
}

impl Keying {
    /// Keys a login; an invalid phone number is counted by reason and gives `None`.
    pub fn key(&mut self, raw: &RawLogin, stats: &SourceStats) -> Option<Login> {
        let e164 = match phone::normalize(&raw.phone, self.region) {
            Ok(e) => e,
            Err(e) => {
                stats.count(&format!("rejected_phone_{}", e.reason()), 1);
                return None;
            }
        };
        let mac = u64::from_be_bytes({
            let mut b = [0u8; 8];
            b[2..].copy_from_slice(&raw.mac.0);
            b
        });
        Some(Login {
            device: self.devices.key(mac, raw.ts_ms),
            person: self.persons.key(&e164),
            person_key_version: self.persons.version(),
            event: raw.event,
        })
    }

    /// UTC ms of a naive local time (seconds since 1970 as if the local clock were UTC).
    pub fn local_to_utc_ms(&self, naive_local_s: i64) -> Option<i64> {
        let naive = chrono::DateTime::from_timestamp(naive_local_s, 0)?.naive_utc();
        self.tz
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.timestamp_millis())
    }
}

/// Identity of a followed file for its cursor: SHA-256 of its first line (which a rotated,
/// recreated file does not share, and which growth does not change).
pub fn first_line_fingerprint(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut head = vec![0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    let line = match head.iter().position(|b| *b == b'\n') {
        Some(i) => &head[..i],
        // No complete first line yet: the file is too new to tell apart; an empty key means
        // "start from the beginning".
        None => return Ok(String::new()),
    };
    Ok(hex::encode(Sha256::digest(line)))
}

/// What one parse step found in the buffer.
enum Step {
    /// A login (or `None`: a valid record that carries no login), and the bytes it took.
    Record(Option<RawLogin>, usize),
    /// A malformed record: count `reason`, skip `usize` bytes.
    Bad(&'static str, usize),
    /// The buffer holds only part of a record.
    Incomplete,
}

fn detail_step(buf: &[u8], k: &Keying, stats: &SourceStats) -> Step {
    match detail::next_record(buf) {
        Ok(None) => Step::Incomplete,
        Err(e) => Step::Bad("malformed_record", e.skip().max(1).min(buf.len())),
        Ok(Some((rec, used))) => {
            let repr = match detail::AccountingRepr::parse(&rec) {
                Ok(r) => r,
                Err(_) => return Step::Bad("malformed_record", used),
            };
            let event = match repr.status {
                detail::AcctStatus::Start => LoginEvent::Start,
                detail::AcctStatus::InterimUpdate => LoginEvent::Interim,
                detail::AcctStatus::Stop => LoginEvent::Stop,
                _ => {
                    stats.count("ignored_other_status", 1);
                    return Step::Record(None, used);
                }
            };
            let Some(mac) = repr.calling_station else {
                return Step::Bad("no_mac", used);
            };
            let Some(phone) = repr.user_name.clone() else {
                return Step::Bad("no_phone", used);
            };
            let ts_ms = repr
                .time_s
                .map(|s| s.saturating_mul(1000))
                .or_else(|| {
                    repr.event_time_local
                        .as_ref()
                        .and_then(|(s, _)| k.local_to_utc_ms(*s))
                })
                .or_else(|| repr.header_time_local.and_then(|s| k.local_to_utc_ms(s)));
            let Some(ts_ms) = ts_ms else {
                return Step::Bad("no_time", used);
            };
            if let Err(e) = judge_time(ts_ms) {
                return Step::Bad(e.reason(), used);
            }
            Step::Record(
                Some(RawLogin {
                    ts_ms,
                    mac,
                    phone,
                    event,
                }),
                used,
            )
        }
    }
}

/// A logged login's time against the gateway's clock: a log file is replayed as old as it is,
/// but never taken from the future (it would become the source's watermark).
fn judge_time(ts_ms: i64) -> Result<(), edge_core::InputTimeError> {
    edge_core::judge_input_time(ts_ms, chrono::Utc::now().timestamp_millis(), false)
}

fn binauth_step(buf: &[u8], phone_field: &str, k: &Keying, stats: &SourceStats) -> Step {
    let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
        return Step::Incomplete;
    };
    let used = nl + 1;
    let Ok(line) = std::str::from_utf8(&buf[..nl]) else {
        return Step::Bad("malformed_record", used);
    };
    let line = line.trim_end_matches('\r');
    // Blank lines, and the "New log file created" line openNDS starts each log with.
    if line.trim().is_empty() || binauth::is_log_banner(line) {
        return Step::Record(None, used);
    }
    let repr = match binauth::parse_line(line) {
        Ok(r) => r,
        Err(_) => return Step::Bad("malformed_record", used),
    };
    let event = match repr.method.as_str() {
        "client_auth" | "auth_client" | "ndsctl_auth" => LoginEvent::Start,
        "client_deauth" | "idle_deauth" | "timeout_deauth" | "ndsctl_deauth"
        | "shutdown_deauth" | "session_end" => LoginEvent::Stop,
        _ => {
            stats.count("ignored_other_method", 1);
            return Step::Record(None, used);
        }
    };
    let Some(phone) = repr.field(phone_field).filter(|p| !p.trim().is_empty()) else {
        if event == LoginEvent::Stop {
            // openNDS logs deauths by MAC and token only: nothing to bind.
            stats.count("ignored_stop_without_phone", 1);
            return Step::Record(None, used);
        }
        return Step::Bad("no_phone", used);
    };
    let ts_ms = match event {
        LoginEvent::Start => repr.session_start.map(|s| s.saturating_mul(1000)),
        _ => repr.session_end.map(|s| s.saturating_mul(1000)),
    }
    .or_else(|| repr.date_local.and_then(|s| k.local_to_utc_ms(s)));
    let Some(ts_ms) = ts_ms else {
        return Step::Bad("no_time", used);
    };
    if let Err(e) = judge_time(ts_ms) {
        return Step::Bad(e.reason(), used);
    }
    Step::Record(
        Some(RawLogin {
            ts_ms,
            mac: repr.client_mac,
            phone,
            event,
        }),
        used,
    )
}

/// Collects logins into batches for the pipeline.
struct Batcher {
    frames: Vec<Frame>,
    logins: Vec<Login>,
    watermark_ms: i64,
}

impl Batcher {
    fn push(&mut self, login: Login, ts_ms: i64, end_offset: u64) {
        // The cursor after a frame is `pos + 1`: here, the byte offset after the record.
        self.frames
            .push(Frame::login(ts_ms, end_offset.saturating_sub(1)));
        self.logins.push(login);
        self.watermark_ms = self.watermark_ms.max(ts_ms);
    }

    fn take(&mut self, position: u64) -> SourceMsg {
        SourceMsg::Batch {
            frames: std::mem::take(&mut self.frames),
            logins: std::mem::take(&mut self.logins),
            watermark_ms: self.watermark_ms,
            position,
            received: None,
        }
    }
}

/// Reads the file at `path` from byte `start`, following it (`follow`) until cancelled, or to
/// its end. Sends logins in batches (waiting when the pipeline is behind: a file can wait),
/// then `End` when not following.
#[allow(clippy::too_many_arguments)]
pub fn follow_file(
    src: &PortalSource,
    path: &Path,
    start: u64,
    fingerprint: &str,
    follow: bool,
    mut keying: Keying,
    tx: SyncSender<SourceMsg>,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
) {
    let mut b = Batcher {
        frames: Vec::new(),
        logins: Vec::new(),
        watermark_ms: i64::MIN,
    };
    let mut offset = start;
    let mut opened: Option<(std::fs::File, u64)> = None; // (file, inode)
    let mut buf: Vec<u8> = Vec::new();
    let mut last_beat = Instant::now();
    let mut warned_missing = false;
    // The cursor's input identity is told to the pipeline once the file has a first line
    // (a new or just-rotated file may not have one yet).
    let mut known_fp = (!fingerprint.is_empty()).then(|| fingerprint.to_string());
    loop {
        if cancel.is_cancelled() {
            break;
        }
        // Open (or reopen after rotation/truncation).
        if opened.is_none() {
            match std::fs::File::open(path).and_then(|f| {
                let meta = f.metadata()?;
                Ok((f, meta.ino(), meta.len()))
            }) {
                Ok((mut f, ino, len)) => {
                    if len < offset {
                        tracing::warn!(source = %src.name, file = %path.display(), "portal file is shorter than the committed position (truncated); reading it from the start");
                        stats.count("file_truncated", 1);
                        offset = 0;
                        known_fp = None;
                    }
                    if f.seek(SeekFrom::Start(offset)).is_err() {
                        stats.read_errors.fetch_add(1, Ordering::Relaxed);
                        offset = 0;
                    }
                    buf.clear();
                    opened = Some((f, ino));
                    warned_missing = false;
                }
                Err(e) => {
                    if !follow {
                        stats.read_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(source = %src.name, file = %path.display(), error = %e, "cannot open portal file; source skipped");
                        break;
                    }
                    if !warned_missing {
                        tracing::warn!(source = %src.name, file = %path.display(), error = %e, "portal file not there yet; waiting for it");
                        warned_missing = true;
                    }
                    std::thread::sleep(IDLE_POLL);
                    continue;
                }
            }
        }
        let Some((file, ino)) = opened.as_mut() else {
            continue;
        };
        let mut chunk = vec![0u8; CHUNK];
        let n = match file.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %src.name, error = %e, "reading the portal file failed; reopening");
                opened = None;
                std::thread::sleep(IDLE_POLL);
                continue;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        // Parse every complete record in the buffer.
        let mut at = 0usize;
        loop {
            let rest = &buf[at..];
            if rest.is_empty() {
                break;
            }
            let step = match src.format {
                PortalFormat::FreeradiusDetail => detail_step(rest, &keying, &stats),
                PortalFormat::OpenndsBinauth => {
                    binauth_step(rest, &src.phone_field, &keying, &stats)
                }
                PortalFormat::Webhook => Step::Bad("malformed_record", rest.len()),
            };
            match step {
                Step::Incomplete => {
                    if rest.len() > MAX_RECORD {
                        stats.count("rejected_record_too_long", 1);
                        at = buf.len();
                    }
                    break;
                }
                Step::Bad(reason, used) => {
                    stats.frames_read.fetch_add(1, Ordering::Relaxed);
                    stats.count(&format!("rejected_{reason}"), 1);
                    at += used.max(1);
                }
                Step::Record(login, used) => {
                    stats.frames_read.fetch_add(1, Ordering::Relaxed);
                    at += used;
                    if let Some(raw) = login {
                        if let Some(l) = keying.key(&raw, &stats) {
                            stats.sightings.fetch_add(1, Ordering::Relaxed);
                            b.push(l, raw.ts_ms, offset + at as u64);
                        }
                    }
                }
            }
        }
        offset += at as u64;
        buf.drain(..at);
        if known_fp.is_none() {
            if let Ok(fp) = first_line_fingerprint(path) {
                if !fp.is_empty() {
                    // Before any batch of this file, so the positions count in it.
                    if tx
                        .send(SourceMsg::NewInput {
                            fingerprint: fp.clone(),
                        })
                        .is_err()
                    {
                        return;
                    }
                    known_fp = Some(fp);
                }
            }
        }
        if b.frames.len() >= 256 && tx.send(b.take(offset)).is_err() {
            return;
        }
        if n > 0 {
            continue;
        }
        // At the end of what is there.
        if !follow {
            if !buf.is_empty() {
                tracing::warn!(source = %src.name, bytes = buf.len(), "portal file ends inside a record; it is left for when the record is complete");
            }
            break;
        }
        if tx.send(b.take(offset)).is_err() {
            return;
        }
        // Rotated (the path now names another file) or truncated?
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != *ino => {
                // The old file was read to its end above; continue with the new one.
                tracing::info!(source = %src.name, file = %path.display(), "portal file rotated; following the new one");
                opened = None;
                offset = 0;
                buf.clear();
                known_fp = None;
                continue;
            }
            Ok(m) if m.len() < offset => {
                opened = None;
                known_fp = None;
                continue;
            }
            _ => {}
        }
        if last_beat.elapsed() >= HEARTBEAT {
            last_beat = Instant::now();
            b.watermark_ms = b
                .watermark_ms
                .max(chrono::Utc::now().timestamp_millis() - LIVE_LAG_MS);
            if tx.send(b.take(offset)).is_err() {
                return;
            }
        }
        std::thread::sleep(IDLE_POLL);
    }
    let _ = tx.send(b.take(offset));
    let _ = tx.send(SourceMsg::End { position: offset });
}
