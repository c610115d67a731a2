//! `Subscribe` against the real agent: a live capture streamed into a named pipe (as
//! `tcpdump -U -w -` on an access point would), a device whose person key is known from an
//! earlier visit, and the arrival event timed from the moment its first sighting was written.
//! Also: no arrival for unknown devices, visit-end events once the visit closes, health
//! snapshots in the outbox, and a clean shutdown with a subscriber still connected.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use edge_e2e::{open_db, run_once, Agent};
use edge_proto::v1 as pb;
use edge_wire::pcap::Writer;
use pb::sync_client::SyncClient;

/// The shopper whose phone number is known (universally administered: not randomized).
const KNOWN: [u8; 6] = [0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e];
/// Someone nobody knows.
const STRANGER: [u8; 6] = [0x00, 0x1a, 0x2b, 0x99, 0x88, 0x77];
/// The person key a portal login would have bound (a keyed hash; never a phone number).
const PERSON: &str = "9f2c1e0d4b7a6f5e3d2c1b0a99887766554433221100ffeeddccbbaa99887766";
/// LINKTYPE_IEEE802_11_RADIOTAP.
const RADIOTAP: u32 = 127;

/// Radiotap with only the dBm antenna signal (present bit 5), then a probe request from `mac`
/// with a wildcard SSID.
fn probe(mac: [u8; 6], rssi: i8) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x00, // it_version, it_pad
        0x09, 0x00, // it_len = 9
        0x20, 0x00, 0x00, 0x00, // present: dBm antenna signal
    ];
    f.push(rssi as u8);
    f.extend_from_slice(&[0x40, 0x00, 0x00, 0x00]); // FC: probe request; duration
    f.extend_from_slice(&[0xff; 6]); // addr1: broadcast
    f.extend_from_slice(&mac); // addr2: the client
    f.extend_from_slice(&[0xff; 6]); // addr3: wildcard BSSID
    f.extend_from_slice(&[0x10, 0x00]); // sequence control
    f.extend_from_slice(&[0x00, 0x00]); // IE 0: SSID, empty (wildcard)
    f.extend_from_slice(&[0x01, 0x04, 0x02, 0x04, 0x0b, 0x16]); // IE 1: supported rates
    f
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn config(dir: &Path, wifi: &str) {
    let text = format!(
        "[store]\nstore_id = \"live-store\"\ngateway_id = \"gw-1\"\ntimezone = \"UTC\"\n\n\
         [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
         [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\n\n\
         [metrics]\nvisit_timeout = \"10s\"\nzone_stale = \"5s\"\nmin_visit_dwell = \"0s\"\n\n\
         [sync]\nlisten = \"127.0.0.1:0\"\nhealth_interval = \"1s\"\n\n\
         [[sources.wifi]]\nzone = \"entrance\"\n{wifi}\n"
    );
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

#[test]
fn a_known_person_arriving_is_announced_within_5_s() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secrets.toml"),
        format!("device_key_secret = \"{}\"\n", "5a".repeat(32)),
    )
    .unwrap();

    // An earlier visit of the known device, replayed from a file. Close enough in time to keep
    // the same device key (keys rotate every 30 days): at most an hour ago, and not before the
    // current rotation period began.
    let rotation = 30 * 86_400_000;
    let earlier = (now_ms() - 3_600_000).max(now_ms() / rotation * rotation);
    let mut w = Writer::new(
        std::fs::File::create(dir.path().join("earlier.pcap")).unwrap(),
        RADIOTAP,
        512,
    )
    .unwrap();
    for i in 0..20 {
        w.write_packet((earlier + i * 1000) * 1000, &probe(KNOWN, -50))
            .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    config(dir.path(), "pcap = \"earlier.pcap\"");
    run_once(&dir.path().join("config.toml"));
    let data = dir.path().join("data");
    let db = open_db(&data);
    let device_key: String = db
        .query_row("SELECT device_key FROM visits", [], |r| r.get(0))
        .unwrap();
    drop(db);
    // The shopper logged in during that visit: the portal binds the device to the person.
    let rw = rusqlite::Connection::open(data.join("store-edge.db")).unwrap();
    rw.execute(
        "INSERT INTO device_persons (device_key, person_key, key_version, first_seen_ms, last_seen_ms)
         VALUES (?1, ?2, 1, ?3, ?3)",
        rusqlite::params![device_key, PERSON, earlier],
    )
    .unwrap();
    drop(rw);

    // Now live: the agent reads a capture stream from a named pipe.
    let fifo = dir.path().join("live.pcap");
    edge_e2e::mkfifo(&fifo);
    config(dir.path(), "pipe = \"live.pcap\"");
    let mut agent = Agent::start_live(&dir.path().join("config.toml"));
    let endpoint = agent.endpoint.clone();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stopped_at = 0;
    rt.block_on(async {
        let mut c = SyncClient::connect(endpoint.clone()).await.unwrap();
        let bad = c
            .subscribe(pb::SubscribeRequest {
                kinds: vec!["weather".into()],
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let mut events = c
            .subscribe(pb::SubscribeRequest { kinds: vec![] })
            .await
            .unwrap()
            .into_inner();
        let info = c
            .get_info(pb::GetInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.live_subscribers, 1);

        // The capture stream starts: first a stranger, strong enough to be inside.
        let mut pipe = Writer::new(
            std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(),
            RADIOTAP,
            512,
        )
        .unwrap();
        pipe.write_packet(now_ms() * 1000, &probe(STRANGER, -45))
            .unwrap();
        pipe.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Then the known shopper's first sighting.
        let sent = Instant::now();
        pipe.write_packet(now_ms() * 1000, &probe(KNOWN, -48))
            .unwrap();
        pipe.flush().unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("no live event within 10 s")
            .unwrap()
            .expect("stream ended");
        let latency = sent.elapsed();
        println!(
            "arrival delivered {} ms after the sighting was written",
            latency.as_millis()
        );
        assert_eq!(
            ev.kind, "arrival",
            "the stranger must not be announced: {ev:?}"
        );
        assert!(latency < Duration::from_secs(5), "arrival took {latency:?}");
        let Some(pb::live_event::Body::Arrival(a)) = ev.body else {
            panic!("arrival without its body: {ev:?}");
        };
        assert_eq!(a.person_key, PERSON);
        assert_eq!(a.device_key, device_key);
        assert_eq!(a.zone, "entrance");
        assert_eq!(ev.event_id, format!("arrival/{}", a.visit_key));
        assert!(ev.sent_ms >= ev.at_ms);

        // The shopper stays a few seconds, then leaves: once the visit times out (10 s) the
        // visit-end events follow, the stranger's first; the shopper's carries the person and
        // that this is a repeat visit.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            pipe.write_packet(now_ms() * 1000, &probe(KNOWN, -48))
                .unwrap();
            pipe.flush().unwrap();
        }
        let mut ended = Vec::new();
        while ended.len() < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(60), events.message())
                .await
                .expect("visits did not end within 60 s")
                .unwrap()
                .expect("stream ended");
            assert_eq!(ev.kind, "visit_end", "{ev:?}");
            let Some(pb::live_event::Body::VisitEnd(v)) = ev.body else {
                panic!("visit end without its visit");
            };
            ended.push(v);
        }
        assert_eq!(ended[0].person_key, "");
        assert_eq!(ended[0].repeat, "first");
        assert_eq!(ended[1].device_key, device_key);
        assert_eq!(ended[1].person_key, PERSON);
        assert_eq!(ended[1].repeat, "within_1d");
        assert_eq!(ended[1].visit_key, a.visit_key);

        // Health snapshots (every second here) reach the outbox and the pull API.
        let mut health = c
            .pull(pb::PullRequest {
                cursor: String::new(),
                limit: 100,
                kinds: vec!["health".into()],
            })
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(m) = health.message().await.unwrap() {
            last = m.record;
        }
        // The newest snapshot: taken after the frames above were read.
        let Some(pb::record::Body::Health(h)) = last.expect("a health snapshot").body else {
            panic!("health record without its body");
        };
        assert_eq!(h.sources.len(), 1);
        assert_eq!(h.sources[0].name, "entrance");
        let read = h.sources[0]
            .counters
            .iter()
            .find(|c| c.name == "frames_read")
            .unwrap()
            .value;
        assert!(read >= 2, "{h:?}");
        assert!(h.database_bytes > 0 && h.free_disk_bytes > 0);
        assert_eq!(h.live_subscribers, 1);
        drop(pipe);

        // A clean stop with the subscriber still connected: the stream ends, the agent exits 0.
        stopped_at = now_ms();
        agent.terminate();
        let end = tokio::time::timeout(Duration::from_secs(20), events.message())
            .await
            .expect("the live stream did not end at shutdown");
        assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    });
    let status = agent
        .wait_exit(Duration::from_secs(20))
        .expect("agent did not stop after SIGTERM");
    assert!(status.success(), "agent exited with {status}");
    // Its last health snapshot was taken on the way down.
    let last: i64 = open_db(&data)
        .query_row("SELECT max(taken_ms) FROM health_snapshots", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        last >= stopped_at,
        "last snapshot {last}, stop at {stopped_at}"
    );
}
