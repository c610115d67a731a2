//! The `storeedge.v1.Sync` service: GetInfo, Pull, Ack and GetSummary over the committed store,
//! and Subscribe over the live event hub.
//!
//! Every call reads through its own read-only SQLite connection (on a blocking thread), so it
//! sees committed state only; acks go through the store's single writer. `Pull` reads a page
//! at a time on a blocking thread and streams it from a task through a bounded channel: when
//! the client reads slowly the task waits (holding no thread and no connection), so memory stays
//! flat whatever the outbox size; a client that takes nothing for [`SEND_TIMEOUT`] loses the
//! stream, and at most [`MAX_PULL_STREAMS`] run at once
//! ([`MAX_PULL_STREAMS_PER_PEER`] from one address).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use edge_proto::v1 as pb;
use pb::sync_server::Sync;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::cursor::{self, CursorError};
use super::live::{self, LiveHub};
use crate::store::{OutboxRecord, OutboxState, Reader, Store};

/// Records per `Pull` when the request does not say.
pub const DEFAULT_LIMIT: u32 = 10_000;
/// Most records one `Pull` returns.
pub const MAX_LIMIT: u32 = 100_000;
/// Records read from SQLite per page.
const PAGE: usize = 1000;
/// Responses queued for a client: the reader waits when they are not taken.
const STREAM_QUEUE: usize = 64;
/// How long a pull waits for its client to take the next record before it ends the stream.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Pull streams served at once, across all clients, and from one address; one more is refused
/// RESOURCE_EXHAUSTED (a client that opens many and never reads them cannot crowd out others).
pub const MAX_PULL_STREAMS: usize = 64;
/// See [`MAX_PULL_STREAMS`].
pub const MAX_PULL_STREAMS_PER_PEER: usize = 8;
/// Metadata key carrying the cursor to resume from, on FAILED_PRECONDITION.
pub const RESUME_CURSOR_KEY: &str = "x-resume-cursor";
/// Longest `GetSummary` range, days.
const MAX_SUMMARY_DAYS: i64 = 366;

/// Name of the authenticated client, put in request extensions by the auth interceptor.
#[derive(Debug, Clone)]
pub struct ClientName(pub String);

/// The service state.
#[derive(Clone)]
pub struct SyncService {
    data_dir: PathBuf,
    store: Arc<Store>,
    live: Arc<LiveHub>,
    cancel: CancellationToken,
    /// Pull streams running ([`MAX_PULL_STREAMS`], [`MAX_PULL_STREAMS_PER_PEER`]).
    streams: Arc<crate::listen::Slots>,
}

impl SyncService {
    /// A service over the store in `data_dir`, acking through `store`, with live events from
    /// `live`.
    pub fn new(
        data_dir: PathBuf,
        store: Arc<Store>,
        live: Arc<LiveHub>,
        cancel: CancellationToken,
    ) -> Self {
        SyncService {
            data_dir,
            store,
            live,
            cancel,
            streams: crate::listen::Slots::new(crate::listen::Limits {
                max_connections: MAX_PULL_STREAMS,
                max_per_peer: MAX_PULL_STREAMS_PER_PEER,
                ..crate::listen::HTTP_LIMITS
            }),
        }
    }

    /// Runs `f` with a fresh reader on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let r = Reader::open(&dir).map_err(|e| Status::unavailable(e.to_string()))?;
            f(&r)
        })
        .await
        .map_err(|e| Status::internal(format!("reader thread failed: {e}")))?
    }
}

fn client(req: &Request<impl Sized>) -> String {
    req.extensions()
        .get::<ClientName>()
        .map_or_else(|| "anonymous".to_string(), |c| c.0.clone())
}

fn state_of(r: &Reader) -> Result<OutboxState, Status> {
    r.outbox_state()
        .map_err(|e| Status::unavailable(e.to_string()))
}

/// Maps a cursor problem to its status; a stale cursor carries where to resume.
fn cursor_status(e: CursorError) -> Status {
    match &e {
        CursorError::Malformed { .. } => Status::invalid_argument(e.to_string()),
        CursorError::Stale { resume, .. } => {
            let mut s = Status::failed_precondition(e.to_string());
            if let Ok(v) = resume.parse() {
                s.metadata_mut().insert(RESUME_CURSOR_KEY, v);
            }
            s
        }
    }
}

/// An outbox row as a `Record`; a body that does not parse is data loss, reported as such.
pub fn to_record(state: &OutboxState, r: OutboxRecord) -> Result<pb::Record, Status> {
    let bad = |e: serde_json::Error| {
        Status::data_loss(format!(
            "outbox record {} ({} {}) does not match records.proto: {e}",
            r.seq, r.kind, r.record_key
        ))
    };
    let body = match r.kind.as_str() {
        "visit" => pb::record::Body::Visit(serde_json::from_str(&r.body).map_err(bad)?),
        "hourly" => pb::record::Body::Hourly(serde_json::from_str(&r.body).map_err(bad)?),
        "purchase" => pb::record::Body::Purchase(serde_json::from_str(&r.body).map_err(bad)?),
        "counter" => pb::record::Body::Counter(serde_json::from_str(&r.body).map_err(bad)?),
        "health" => pb::record::Body::Health(serde_json::from_str(&r.body).map_err(bad)?),
        "presence" => pb::record::Body::Presence(serde_json::from_str(&r.body).map_err(bad)?),
        other => {
            return Err(Status::data_loss(format!(
                "outbox record {} has unknown kind {other:?}",
                r.seq
            )))
        }
    };
    Ok(pb::Record {
        cursor: cursor::at(state, r.seq).encode(),
        idempotency_key: format!("{}/{}/{}", r.kind, r.record_key, r.revision),
        kind: r.kind,
        record_key: r.record_key,
        revision: r.revision,
        created_ms: r.created_ms,
        body: Some(body),
    })
}

#[tonic::async_trait]
impl Sync for SyncService {
    async fn get_info(
        &self,
        _req: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let live = self.live.clone();
        let resp = self
            .read(move |r| {
                let st = state_of(r)?;
                let meta = |k: &str| -> Result<String, Status> {
                    Ok(r.meta(k)
                        .map_err(|e| Status::unavailable(e.to_string()))?
                        .unwrap_or_default())
                };
                let kinds: BTreeMap<String, String> = meta("source_kinds")
                    .ok()
                    .and_then(|k| serde_json::from_str(&k).ok())
                    .unwrap_or_default();
                let mut sources: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                for (source, name, value) in r
                    .counters()
                    .map_err(|e| Status::unavailable(e.to_string()))?
                {
                    sources.entry(source).or_default().insert(name, value);
                }
                Ok(pb::GetInfoResponse {
                    store_id: meta("store_id")?,
                    gateway_id: meta("gateway_id")?,
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    epoch: st.epoch(),
                    first_cursor: cursor::at(&st, st.first_seq - 1).encode(),
                    head_cursor: cursor::at(&st, st.head_seq).encode(),
                    acked_cursor: if st.acked_seq > 0 {
                        cursor::at(&st, st.acked_seq).encode()
                    } else {
                        String::new()
                    },
                    records: st.records,
                    unacked: st.unacked,
                    dropped_unacked: r
                        .drops()
                        .map_err(|e| Status::unavailable(e.to_string()))?
                        .into_iter()
                        .collect(),
                    sources: sources
                        .into_iter()
                        .map(|(name, counters)| pb::SourceHealth {
                            kind: kinds.get(&name).cloned().unwrap_or_default(),
                            name,
                            counters: counters.into_iter().collect(),
                        })
                        .collect(),
                    live_subscribers: live.subscribers(),
                    live_events_lagged: live.lagged(),
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    type PullStream = ReceiverStream<Result<pb::PullResponse, Status>>;

    async fn pull(
        &self,
        req: Request<pb::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let who = client(&req);
        let remote = req.remote_addr();
        let req = req.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        } as usize;
        let token = req.cursor.clone();
        let (st, after) = self
            .read(move |r| {
                let st = state_of(r)?;
                let after = cursor::resolve(&token, &st).map_err(cursor_status)?;
                Ok((st, after))
            })
            .await?;
        // Serve up to the head as of now: the same cursor and limit give the same records.
        let upto = st.head_seq;
        // Streams at once across all clients: a client that opens many and never reads them
        // holds no more than this many queues.
        let peer = remote
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let permit = self.streams.admit(peer).map_err(|why| {
            Status::resource_exhausted(match why {
                crate::listen::Refused::PeerFull => format!(
                    "{MAX_PULL_STREAMS_PER_PEER} pulls from this address are running; retry shortly"
                ),
                crate::listen::Refused::Full => {
                    format!("{MAX_PULL_STREAMS} pulls are running; retry shortly")
                }
            })
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_QUEUE);
        let dir = self.data_dir.clone();
        let cancel = self.cancel.clone();
        tracing::debug!(client = %who, after, limit, "pull");
        // Pages are read on a blocking thread and sent from this task: a client that stops
        // reading holds neither a thread nor the database, only its queue, and only for
        // SEND_TIMEOUT.
        tokio::spawn(async move {
            let _permit = permit;
            let kinds = Arc::new(req.kinds);
            let (mut last, mut sent) = (after, 0usize);
            while sent < limit && !cancel.is_cancelled() {
                let (dir, kinds) = (dir.clone(), kinds.clone());
                let want = PAGE.min(limit - sent);
                let page = tokio::task::spawn_blocking(move || {
                    Reader::open(&dir).and_then(|r| r.outbox_page(last, upto, want, &kinds))
                })
                .await;
                let page = match page {
                    Ok(Ok(p)) => p,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        return;
                    }
                    Err(_) => {
                        let _ = tx
                            .send(Err(Status::internal("the pull reader failed")))
                            .await;
                        return;
                    }
                };
                if page.is_empty() {
                    break;
                }
                for rec in page {
                    last = rec.seq;
                    sent += 1;
                    let item = to_record(&st, rec).map(|r| pb::PullResponse { record: Some(r) });
                    let failed = item.is_err();
                    match tokio::time::timeout(SEND_TIMEOUT, tx.send(item)).await {
                        Ok(Ok(())) if !failed => {}
                        // The client went away, or stopped reading: end the stream.
                        Ok(_) => return,
                        Err(_) => {
                            tracing::warn!(client = %who, "a pull stream was not read for {SEND_TIMEOUT:?}; ended");
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ack(&self, req: Request<pb::AckRequest>) -> Result<Response<pb::AckResponse>, Status> {
        let who = client(&req);
        let token = req.into_inner().cursor;
        let (st, seq) = self
            .read(move |r| {
                let st = state_of(r)?;
                let seq = cursor::resolve(&token, &st).map_err(cursor_status)?;
                Ok((st, seq))
            })
            .await?;
        if seq > st.head_seq {
            return Err(Status::failed_precondition(format!(
                "ack at position {seq} is past the newest record issued ({})",
                st.head_seq
            )));
        }
        let store = self.store.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let acked = tokio::task::spawn_blocking(move || store.ack(seq, now))
            .await
            .map_err(|e| Status::internal(format!("ack thread failed: {e}")))?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tracing::info!(client = %who, acked, "ack");
        Ok(Response::new(pb::AckResponse {
            acked_cursor: cursor::at(&st, acked).encode(),
        }))
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<pb::LiveEvent, Status>> + Send>>;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = client(&req);
        let kinds = req.into_inner().kinds;
        if let Some(k) = kinds.iter().find(|k| !live::KINDS.contains(&k.as_str())) {
            return Err(Status::invalid_argument(format!(
                "unknown event kind {k:?} (known: {})",
                live::KINDS.join(", ")
            )));
        }
        let rx = self.live.subscribe();
        tracing::info!(client = %who, ?kinds, "live subscriber");
        let state = (rx, kinds, self.cancel.clone(), self.live.clone());
        // Ends when the agent shuts down, so a graceful shutdown does not wait on subscribers.
        let events = futures::stream::unfold(state, |(mut rx, kinds, cancel, hub)| async move {
            loop {
                let got = tokio::select! {
                    _ = cancel.cancelled() => return None,
                    got = rx.recv() => got,
                };
                let ev = match got {
                    Ok(ev) if kinds.is_empty() || kinds.contains(&ev.kind) => (*ev).clone(),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        hub.record_lag(n);
                        tracing::warn!(
                            missed = n,
                            "a live subscriber reads too slowly; events skipped"
                        );
                        live::lagged(n)
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(ev), (rx, kinds, cancel, hub)));
            }
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn get_summary(
        &self,
        req: Request<pb::GetSummaryRequest>,
    ) -> Result<Response<pb::GetSummaryResponse>, Status> {
        let req = req.into_inner();
        let date = |s: &str, field: &str| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                Status::invalid_argument(format!("{field}: {s:?} is not a YYYY-MM-DD date"))
            })
        };
        let from = date(&req.from, "from")?;
        let to = if req.to.is_empty() {
            from
        } else {
            date(&req.to, "to")?
        };
        let hours = match (req.from_hour, req.to_hour) {
            (None, None) => None,
            (Some(a), b) => Some(
                edge_core::report::HourWindow::new(a, b.unwrap_or(a)).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "hours {a}..{} are not a range within 0-23",
                        b.unwrap_or(a)
                    ))
                })?,
            ),
            (None, Some(_)) => return Err(Status::invalid_argument("`to_hour` needs `from_hour`")),
        };
        let days = (to - from).num_days();
        if !(0..MAX_SUMMARY_DAYS).contains(&days) {
            return Err(Status::invalid_argument(format!(
                "`to` must be on or after `from` and at most {MAX_SUMMARY_DAYS} days later"
            )));
        }
        let dir = self.data_dir.clone();
        let out = tokio::task::spawn_blocking(move || {
            from.iter_days()
                .take_while(|d| *d <= to)
                .map(|d| {
                    let rep = crate::report::day_report(&dir, Some(d), hours)
                        .map_err(|e| Status::unavailable(format!("{e:#}")))?;
                    let json = serde_json::to_string(&rep.day)
                        .map_err(|e| Status::internal(e.to_string()))?;
                    Ok(pb::DaySummary {
                        date: d.to_string(),
                        report_json: json,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()
        })
        .await
        .map_err(|e| Status::internal(format!("summary thread failed: {e}")))??;
        Ok(Response::new(pb::GetSummaryResponse { days: out }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> OutboxState {
        OutboxState {
            outbox_id: "0011223344556677".into(),
            epochs: vec![(1, 0)],
            first_seq: 1,
            head_seq: 3,
            records: 3,
            acked_seq: 0,
            unacked: 3,
        }
    }

    fn row(seq: i64, kind: &str, key: &str, body: &str) -> OutboxRecord {
        OutboxRecord {
            seq,
            kind: kind.into(),
            record_key: key.into(),
            revision: 0,
            body: body.into(),
            created_ms: 7,
        }
    }

    #[test]
    fn every_record_kind_is_served_with_its_body_and_bad_bodies_are_data_loss() {
        let purchase = r#"{"purchase_key":"pos-1:T100","source":"pos-1","transaction_id":"T100",
            "time_ms":1795170000000,"total_minor":12345,"currency":"CNY",
            "items":[{"name":"tea","quantity":2.0,"amount_minor":1000}],"payment":"card",
            "person_key":"ab","attributed_visit_key":"cd:1","definitions_version":1}"#;
        let r = to_record(&state(), row(1, "purchase", "pos-1:T100", purchase)).unwrap();
        assert_eq!(r.idempotency_key, "purchase/pos-1:T100/0");
        assert_eq!(r.cursor, cursor::at(&state(), 1).encode());
        match r.body {
            Some(pb::record::Body::Purchase(p)) => {
                assert_eq!((p.total_minor, p.items.len()), (12345, 1));
                assert_eq!(p.items[0].amount_minor, 1000);
            }
            other => panic!("{other:?}"),
        }
        let counter = r#"{"interval_key":"main:1795170000000","door":"main","source":"c1",
            "start_ms":1795170000000,"end_ms":1795170060000,"ins":4,"outs":3}"#;
        match to_record(&state(), row(2, "counter", "main:1795170000000", counter))
            .unwrap()
            .body
        {
            Some(pb::record::Body::Counter(c)) => assert_eq!((c.ins, c.outs), (4, 3)),
            other => panic!("{other:?}"),
        }
        let health = r#"{"taken_ms":5,"sources":[{"name":"entrance","kind":"wifi",
            "counters":[{"name":"frames_read","value":9}]}],"outbox_unacked":2}"#;
        match to_record(&state(), row(3, "health", "5", health))
            .unwrap()
            .body
        {
            Some(pb::record::Body::Health(h)) => {
                assert_eq!(h.sources[0].counters[0].value, 9);
                assert_eq!(h.outbox_unacked, 2);
            }
            other => panic!("{other:?}"),
        }
        // A body with a field records.proto does not declare, or an unknown kind: data loss,
        // named by seq and key.
        let e = to_record(&state(), row(4, "counter", "k", r#"{"inz":1}"#)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::DataLoss);
        assert!(
            e.message().contains("outbox record 4 (counter k)"),
            "{}",
            e.message()
        );
        let e = to_record(&state(), row(5, "weather", "k", "{}")).unwrap_err();
        assert_eq!(e.code(), tonic::Code::DataLoss);
    }
}
