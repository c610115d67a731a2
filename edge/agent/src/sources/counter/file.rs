//! `file = "counter.jsonl"`: recorded push bodies, one per line, replayed through the same
//! parser as the listener. The cursor is the byte offset after the last line committed, and it
//! is committed with the intervals the lines produced, so a replay that stops anywhere resumes
//! without losing or double-counting a line.
//!
//! A recorded body has no arrival time: each is taken as received at the time it reports, so
//! the "too far in the future" check does not apply to replays.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use edge_wire::counter::{self as wire, Dialect};
use tokio_util::sync::CancellationToken;

use super::ingest::{CounterContext, Group};
use crate::config::counter_profile::{CounterTransport, MqttPayload};
use crate::store::Cursor;

/// Lines committed per transaction.
const LINES_PER_COMMIT: usize = 256;
/// Longest line read (a body is at most `MAX_BODY`).
const MAX_LINE: usize = wire::MAX_BODY + 2;

/// The dialect recorded lines of `ctx`'s profile are in, or `None` when its payloads are not
/// HTTP bodies (they are handled by the MQTT decoder).
pub fn dialect_of(ctx: &CounterContext) -> Option<Dialect> {
    match &ctx.src.profile.transport {
        CounterTransport::Push { dialect, .. } => Some(*dialect),
        CounterTransport::Poll(p) => Some(p.dialect),
        CounterTransport::Mqtt(m) => match &m.payload {
            MqttPayload::Dialect(d) => Some(*d),
            _ => None,
        },
        CounterTransport::Modbus(_) => None,
    }
}

/// The time a payload reports: its newest reading (replays are "received" then).
fn payload_time(g: &Group) -> Option<i64> {
    g.inputs
        .iter()
        .map(edge_core::counter::CountInput::time_ms)
        .max()
}

/// Replays `path` from byte offset `start` to its end. Blocking.
pub fn replay(
    ctx: &Arc<CounterContext>,
    path: &Path,
    fingerprint: &str,
    start: u64,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("opening counter recording {}", path.display()))?;
    let len = f.metadata()?.len();
    let start = if start > len { 0 } else { start };
    f.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(64 * 1024, f);
    let mut offset = start;
    let mut line_no: u64 = 0;
    let mut groups: Vec<Group> = Vec::new();
    let mut line = Vec::new();
    let cursor = |offset: u64| Cursor {
        source: ctx.src.name.clone(),
        fingerprint: fingerprint.to_string(),
        position: offset,
    };
    let dialect = dialect_of(ctx);
    let now = chrono::Utc::now().timestamp_millis();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        line.clear();
        let n = Read::by_ref(&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() != Some(&b'\n') && n == MAX_LINE {
            // Too long to be a body: skip to the end of the line.
            ctx.stats.count("rejected_too_large", 1);
            let mut rest = Vec::new();
            let m = reader.read_until(b'\n', &mut rest)?;
            offset += (n + m) as u64;
            continue;
        }
        offset += n as u64;
        let body = line.trim_ascii();
        if body.is_empty() {
            continue;
        }
        ctx.stats
            .frames_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parsed = match dialect {
            Some(d) => wire::parse(d, body, &ctx.parse_context(now))
                .map(|p| ctx.push_group(&p, now))
                .map_err(|e| e.reason().to_string()),
            None => super::mqtt::decode_payload(ctx, body, now).map_err(|e| e.reason().to_string()),
        };
        match parsed {
            Ok(mut g) => {
                g.received_ms = payload_time(&g).unwrap_or(now);
                groups.push(g);
            }
            Err(reason) => {
                ctx.stats.count(&format!("rejected_{reason}"), 1);
                tracing::warn!(source = %ctx.src.name, file = %path.display(), line = line_no, reason = %reason, "recorded counter payload rejected");
            }
        }
        if groups.len() >= LINES_PER_COMMIT {
            commit_waiting(ctx, std::mem::take(&mut groups), cursor(offset), cancel)?;
        }
    }
    commit_waiting(ctx, groups, cursor(offset), cancel)
}

/// Longest wait between attempts while the store is out of space.
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Commits `groups` with the cursor after them, waiting out a store that is out of space (a
/// file can wait: the cursor stays where it was, so nothing is skipped, and the groups are
/// applied afresh at each attempt).
fn commit_waiting(
    ctx: &CounterContext,
    groups: Vec<Group>,
    cursor: Cursor,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        match ctx.commit_groups(groups.clone(), Some(cursor.clone())) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_out_of_space() && !cancel.is_cancelled() => {
                // In slices, so a shutdown does not wait for the whole pause.
                let until = std::time::Instant::now() + wait;
                while std::time::Instant::now() < until && !cancel.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
            Err(e) => return Err(e).context("storing counter intervals"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::counter_profile::resolve_counter;
    use crate::config::FileReads;
    use crate::sources::counter::config::{CounterInput, CounterSource};
    use crate::stats::SourceStats;
    use edge_core::LocalClock;

    fn ctx(profile: &str, dir: &Path) -> Arc<CounterContext> {
        let p = resolve_counter(profile, Path::new("/"), FileReads::Disk).unwrap();
        let store = Arc::new(crate::store::open(dir).unwrap());
        let src = CounterSource {
            name: "rec".into(),
            profile: Arc::new(p),
            door: "main".into(),
            lines: None,
            input: CounterInput::File(dir.join("rec.jsonl")),
            tokens: Vec::new(),
            users: Vec::new(),
            max_body: wire::MAX_BODY,
            credentials: None,
            gateway_id: "gw-1".into(),
        };
        CounterContext::new(
            src,
            LocalClock::new(chrono_tz::UTC),
            store,
            SourceStats::of_kind("rec", "counter"),
        )
    }

    fn irisys(at: &str, ins: u64, outs: u64) -> String {
        format!(
            r#"{{"CountLogs":[{{"LogEntryId":1,"Timestamp":"{at}","Counts":[{{"Name":"Line 1 In","RegisterId":0,"Value":{ins}}},{{"Name":"Line 1 Out","RegisterId":1,"Value":{outs}}}]}}],"FriendlyDeviceSerial":"V"}}"#
        )
    }

    fn sums(dir: &Path) -> (u64, u64) {
        let r = crate::store::Reader::open(dir).unwrap();
        let ivs = r.counter_intervals_on("2024-05-01").unwrap();
        let newest = edge_core::counter::newest_revisions(&ivs);
        (
            newest.iter().map(|i| u64::from(i.ins)).sum(),
            newest.iter().map(|i| u64::from(i.outs)).sum(),
        )
    }

    /// A recording is replayed to its end; a bad line is counted and skipped; lines appended
    /// later are read from the committed offset, so nothing counts twice.
    #[test]
    fn recordings_resume_from_the_committed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rec.jsonl");
        let mut text = [
            irisys("2024-05-01T02:00:00Z", 10, 5),
            "{\"CountLogs\": [".to_string(),
            String::new(),
            irisys("2024-05-01T02:05:00Z", 14, 6),
        ]
        .join("\n");
        text.push('\n');
        std::fs::write(&file, &text).unwrap();
        let fp = crate::sources::pos::source::file_fingerprint(&file).unwrap();
        let cancel = CancellationToken::new();
        let c = ctx("counter/irisys-vector-4d", dir.path());
        replay(&c, &file, &fp, 0, &cancel).unwrap();
        let stats = c.stats.values();
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
        assert_eq!(
            (get("payloads_read"), get("rejected_malformed_json")),
            (3, 1)
        );
        drop(c);
        assert_eq!(sums(dir.path()), (4, 1));
        let cursor = crate::store::Reader::open(dir.path())
            .unwrap()
            .cursors()
            .unwrap()
            .into_iter()
            .find(|k| k.source == "rec")
            .unwrap();
        assert_eq!(cursor.position, text.len() as u64);
        // Appended: one more log. The replay from the cursor adds only its difference.
        text.push_str(&irisys("2024-05-01T02:10:00Z", 20, 6));
        text.push('\n');
        std::fs::write(&file, &text).unwrap();
        let c = ctx("counter/irisys-vector-4d", dir.path());
        replay(&c, &file, &fp, cursor.position, &cancel).unwrap();
        drop(c);
        assert_eq!(sums(dir.path()), (10, 1));
    }

    /// Recordings of an MQTT profile are message payloads, decoded like live messages.
    #[test]
    fn mqtt_recordings_go_through_the_payload_decoder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rec.jsonl");
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../hardware-profiles/counter/fixtures/mqtt-json-interval.json"
        ))
        .unwrap();
        // One message per line.
        let line: serde_json::Value = serde_json::from_str(&body).unwrap();
        std::fs::write(&file, format!("{line}\n{line}\n")).unwrap();
        let fp = crate::sources::pos::source::file_fingerprint(&file).unwrap();
        let c = ctx("counter/mqtt-json-interval", dir.path());
        replay(&c, &file, &fp, 0, &CancellationToken::new()).unwrap();
        let stats = c.stats.values();
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
        assert_eq!(
            (get("payloads_read"), get("intervals"), get("duplicates")),
            (2, 1, 1)
        );
    }
}
