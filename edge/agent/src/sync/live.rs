//! Live events for `Subscribe`: a known person arriving, a visit ending, a purchase.
//!
//! The pipeline publishes into a bounded broadcast channel and never waits: with no subscriber
//! an event goes nowhere, and a subscriber that reads too slowly loses the oldest events it has
//! not read, is told how many with a `lagged` event, and the loss is counted (`GetInfo`, health
//! snapshots). Events are not stored; `Pull` is the source of truth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use edge_proto::v1 as pb;
use tokio::sync::broadcast;

/// Events buffered per subscriber before the oldest are lost to it.
pub const LIVE_QUEUE: usize = 1024;

/// Event kinds a subscriber may ask for.
pub const KINDS: [&str; 3] = ["arrival", "visit_end", "purchase"];

/// The live event fan-out shared by the pipeline (publisher) and the gRPC service.
#[derive(Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<pb::LiveEvent>>,
    lagged: AtomicU64,
}

impl LiveHub {
    /// A hub keeping up to `capacity` unread events per subscriber.
    pub fn new(capacity: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Arc::new(LiveHub {
            tx,
            lagged: AtomicU64::new(0),
        })
    }

    /// Sends `ev` to every subscriber now listening; never blocks. The send time is stamped
    /// here.
    pub fn publish(&self, mut ev: pb::LiveEvent) {
        ev.sent_ms = chrono::Utc::now().timestamp_millis();
        // Err only means nobody is subscribed: nothing to deliver, nothing lost.
        let _ = self.tx.send(Arc::new(ev));
    }

    /// A new subscription, starting with the next event published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<pb::LiveEvent>> {
        self.tx.subscribe()
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> u64 {
        self.tx.receiver_count() as u64
    }

    /// Counts events a slow subscriber missed.
    pub fn record_lag(&self, missed: u64) {
        self.lagged.fetch_add(missed, Ordering::Relaxed);
    }

    /// Events missed by slow subscribers since start.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// A known person's arrival.
pub fn arrival(
    person_key: &str,
    device_key: &str,
    visit_start_ms: i64,
    at_ms: i64,
    zone: String,
) -> pb::LiveEvent {
    let visit_key = format!("{device_key}:{visit_start_ms}");
    pb::LiveEvent {
        event_id: format!("arrival/{visit_key}"),
        kind: "arrival".into(),
        at_ms,
        sent_ms: 0,
        body: Some(pb::live_event::Body::Arrival(pb::Arrival {
            person_key: person_key.to_string(),
            device_key: device_key.to_string(),
            visit_key,
            zone,
            visit_start_ms,
        })),
    }
}

/// A visit that closed and was committed.
pub fn visit_end(v: pb::Visit) -> pb::LiveEvent {
    pb::LiveEvent {
        event_id: format!("visit_end/{}", v.visit_key),
        kind: "visit_end".into(),
        at_ms: v.end_ms,
        sent_ms: 0,
        body: Some(pb::live_event::Body::VisitEnd(v)),
    }
}

/// A purchase that was committed (the record as stored, attribution as known then).
pub fn purchase(p: pb::Purchase) -> pb::LiveEvent {
    pb::LiveEvent {
        event_id: format!("purchase/{}", p.purchase_key),
        kind: "purchase".into(),
        at_ms: p.time_ms,
        sent_ms: 0,
        body: Some(pb::live_event::Body::Purchase(p)),
    }
}

/// What a subscriber that fell behind is told.
pub fn lagged(missed: u64) -> pb::LiveEvent {
    pb::LiveEvent {
        event_id: String::new(),
        kind: "lagged".into(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        sent_ms: chrono::Utc::now().timestamp_millis(),
        body: Some(pb::live_event::Body::Lagged(pb::Lagged { missed })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_subscribers_are_told_what_they_missed_and_it_is_counted() {
        let hub = LiveHub::new(4);
        // Nobody listening: published, nothing lost.
        hub.publish(arrival("p", "d", 1, 2, "entrance".into()));
        assert_eq!((hub.lagged(), hub.subscribers()), (0, 0));

        let mut rx = hub.subscribe();
        assert_eq!(hub.subscribers(), 1);
        for i in 0..10 {
            hub.publish(arrival("p", "d", i, i, "entrance".into()));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => {
                assert_eq!(n, 6);
                hub.record_lag(n);
            }
            other => panic!("expected a lag, got {other:?}"),
        }
        // The 4 newest are still there, in order.
        for i in 6..10 {
            let ev = rx.recv().await.unwrap();
            assert_eq!(ev.event_id, format!("arrival/d:{i}"));
            assert!(ev.sent_ms > 0);
        }
        assert_eq!(hub.lagged(), 6);
    }
}
