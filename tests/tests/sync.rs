//! The pull API against the real agent: `store-edge run` as a service over a simulated day, a
//! real gRPC client (tonic), and the reference client `store-edge pull`.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_core::report::{ConfiguredSources, ReportVisit};
use edge_core::{DayReport, ReportInputs, VisitClass};
use edge_e2e::{bin, path_str, simulate, store_edge, Agent};
use edge_proto::v1 as pb;
use pb::sync_client::SyncClient;
use tonic::transport::Channel;

const TOKEN: &str = "test-token-0123456789abcdef";

/// A simulated 2-zone day with `[sync]` on a free loopback port and one token.
fn day(dir: &Path, visitors: u32) -> PathBuf {
    day_with(dir, visitors, 11, "")
}

/// Like [`day`] with another seed and extra `[sync]` lines.
fn day_with(dir: &Path, visitors: u32, seed: u64, sync_extra: &str) -> PathBuf {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let w = simulate(dir, &edge_sim::SimParams::new(seed, date, visitors, 2));
    let mut text = std::fs::read_to_string(&w.config_path).unwrap();
    text.push_str(&format!(
        "\n[sync]\nlisten = \"127.0.0.1:0\"\n{sync_extra}[[sync.tokens]]\nname = \"cloud\"\ntoken = \"{TOKEN}\"\n"
    ));
    std::fs::write(&w.config_path, text).unwrap();
    w.config_path
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(endpoint: &str) -> SyncClient<Channel> {
    SyncClient::connect(endpoint.to_string()).await.unwrap()
}

fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

async fn pull(
    c: &mut SyncClient<Channel>,
    cursor: &str,
    limit: u32,
    kinds: &[&str],
) -> Result<Vec<pb::Record>, tonic::Status> {
    let r = pb::PullRequest {
        cursor: cursor.into(),
        limit,
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
    };
    let mut s = c.pull(req(r, Some(TOKEN))).await?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await? {
        out.push(m.record.unwrap());
    }
    Ok(out)
}

async fn info(c: &mut SyncClient<Channel>) -> pb::GetInfoResponse {
    c.get_info(req(pb::GetInfoRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner()
}

/// `cursor` moved `by` records (a token forged the way the server lays it out).
fn shifted(cursor: &str, by: i64) -> String {
    let mut b = hex::decode(cursor).unwrap();
    let seq = i64::from_be_bytes(b[17..25].try_into().unwrap()) + by;
    b[17..25].copy_from_slice(&seq.to_be_bytes());
    hex::encode(b)
}

#[test]
fn protocol_cursors_acks_tokens_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let config = day(dir.path(), 60);
    let agent = Agent::start(&config);
    let rt = rt();
    let endpoint = agent.endpoint.clone();
    let (head_cursor, mid_cursor) = rt.block_on(async {
        let mut c = client(&endpoint).await;

        // Tokens: none, unknown, and a good one.
        for token in [None, Some("wrong-token-0123456789abcdef")] {
            let e = c
                .get_info(req(pb::GetInfoRequest {}, token))
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{token:?}");
        }
        let i = info(&mut c).await;
        assert_eq!(i.store_id, "sim-store");
        assert_eq!(i.epoch, 1);
        assert!(i.records > 100, "{} records", i.records);
        assert_eq!(i.unacked, i.records);
        assert!(i
            .sources
            .iter()
            .any(|s| s.counters.get("frames_read").copied().unwrap_or(0) > 0));

        // The same cursor gives the same records.
        let a = pull(&mut c, "", 50, &[]).await.unwrap();
        let b = pull(&mut c, "", 50, &[]).await.unwrap();
        assert_eq!(a.len(), 50);
        assert_eq!(a, b);
        let next = pull(&mut c, &a[49].cursor, 50, &[]).await.unwrap();
        let again = pull(&mut c, &a[49].cursor, 50, &[]).await.unwrap();
        assert_eq!(next, again);
        assert!(next.iter().all(|r| !a.contains(r)));
        // Idempotency keys are unique and name kind, key and revision.
        let all = pull(&mut c, "", 0, &[]).await.unwrap();
        assert_eq!(all.len() as u64, i.records);
        let keys: HashSet<&str> = all.iter().map(|r| r.idempotency_key.as_str()).collect();
        assert_eq!(keys.len(), all.len());
        assert!(all
            .iter()
            .all(|r| r.idempotency_key == format!("{}/{}/{}", r.kind, r.record_key, r.revision)));
        // A kind filter only returns that kind, and its cursors still advance.
        let hours = pull(&mut c, "", 0, &["hourly"]).await.unwrap();
        assert!(!hours.is_empty() && hours.iter().all(|r| r.kind == "hourly"));
        assert_eq!(
            hours.len(),
            all.iter().filter(|r| r.kind == "hourly").count()
        );
        assert_eq!(all.last().unwrap().cursor, i.head_cursor);

        // Acks: idempotent, never backwards, never past the head.
        let acker = c.clone();
        let ack = |cursor: String| {
            let mut c = acker.clone();
            async move { c.ack(req(pb::AckRequest { cursor }, Some(TOKEN))).await }
        };
        let a1 = ack(a[49].cursor.clone()).await.unwrap().into_inner();
        let a2 = ack(a[49].cursor.clone()).await.unwrap().into_inner();
        assert_eq!(a1, a2);
        assert_eq!(a1.acked_cursor, a[49].cursor);
        let older = ack(a[10].cursor.clone()).await.unwrap().into_inner();
        assert_eq!(older.acked_cursor, a[49].cursor);
        assert_eq!(info(&mut c).await.unacked, i.records - 50);
        let past = ack(shifted(&i.head_cursor, 1)).await.unwrap_err();
        assert_eq!(past.code(), tonic::Code::FailedPrecondition, "{past:?}");
        let bad = ack("not-a-cursor".into()).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);

        // A cursor of another database is refused with the position to resume from.
        let mut foreign = hex::decode(&i.head_cursor).unwrap();
        foreign[1] ^= 0xff;
        let e = pull(&mut c, &hex::encode(foreign), 10, &[])
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        let resume = e
            .metadata()
            .get("x-resume-cursor")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.message().contains(&resume));
        assert_eq!(pull(&mut c, &resume, 0, &[]).await.unwrap(), all);
        (i.head_cursor, a[49].cursor.clone())
    });

    // GetSummary gives what `report --json` gives; reflection lists the services.
    rt.block_on(async {
        let mut c = client(&endpoint).await;
        let sum = c
            .get_summary(req(
                pb::GetSummaryRequest {
                    from: "2026-11-20".into(),
                    ..Default::default()
                },
                Some(TOKEN),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sum.days.len(), 1);
        let got: serde_json::Value = serde_json::from_str(&sum.days[0].report_json).unwrap();
        let out = store_edge(&[
            "report",
            "--data-dir",
            path_str(&dir.path().join("data")),
            "--date",
            "2026-11-20",
            "--json",
        ]);
        let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, want);
        // A window of local hours: the same numbers as `report --hours`.
        let sum = c
            .get_summary(req(
                pb::GetSummaryRequest {
                    from: "2026-11-20".into(),
                    from_hour: Some(10),
                    to_hour: Some(13),
                    ..Default::default()
                },
                Some(TOKEN),
            ))
            .await
            .unwrap()
            .into_inner();
        let window: serde_json::Value = serde_json::from_str(&sum.days[0].report_json).unwrap();
        let out = store_edge(&[
            "report",
            "--data-dir",
            path_str(&dir.path().join("data")),
            "--date",
            "2026-11-20",
            "--hours",
            "10-13",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want_window: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(window, want_window);
        assert_eq!(window["hours"], serde_json::json!({"from": 10, "to": 13}));
        let (part, whole) = (
            window["visitors"].as_u64().unwrap(),
            want["visitors"].as_u64().unwrap(),
        );
        assert!(part > 0 && part < whole, "{part} of {whole}");
        let hours: Vec<u64> = window["hourly"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["hour"].as_u64().unwrap())
            .collect();
        assert!(hours.iter().all(|h| (10..=13).contains(h)), "{hours:?}");
        let bad = [
            ("2026-13-01", "", None, None),
            ("2026-11-20", "2026-11-19", None, None),
            ("2026-11-20", "", Some(14), Some(13)),
            ("2026-11-20", "", Some(24), None),
            ("2026-11-20", "", None, Some(3)),
        ];
        for (from, to, from_hour, to_hour) in bad {
            let e = c
                .get_summary(req(
                    pb::GetSummaryRequest {
                        from: from.into(),
                        to: to.into(),
                        from_hour,
                        to_hour,
                    },
                    Some(TOKEN),
                ))
                .await
                .unwrap_err();
            assert_eq!(
                e.code(),
                tonic::Code::InvalidArgument,
                "{from}..{to} {from_hour:?}..{to_hour:?}"
            );
        }

        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut r = ServerReflectionClient::new(channel);
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut resp = r
            .server_reflection_info(tokio_stream::iter(vec![ask]))
            .await
            .unwrap()
            .into_inner();
        let m = resp.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = m.message_response else {
            panic!("{m:?}")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"storeedge.v1.Sync"), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    });

    // Health, then the store going away and coming back.
    rt.block_on(async {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::HealthCheckRequest;
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let h = HealthClient::new(channel);
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
        let wait_for = |want: i32| {
            let h = h.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let mut h2 = h.clone();
                    let got = h2
                        .check(HealthCheckRequest {
                            service: "storeedge.v1.Sync".into(),
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .status;
                    if got == want {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "health stayed {got}, wanted {want}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        // Serving from the start (within the probe interval).
        wait_for(serving).await;
        let db = dir.path().join("data/store-edge.db");
        let away = dir.path().join("data/away.db");
        std::fs::rename(&db, &away).unwrap();
        wait_for(not_serving).await;
        std::fs::rename(&away, &db).unwrap();
        wait_for(serving).await;
    });

    // An unclean stop starts a new epoch: old cursors are refused with where to resume.
    agent.kill9();
    let agent = Agent::start(&config);
    rt.block_on(async {
        let mut c = client(&agent.endpoint).await;
        let i = info(&mut c).await;
        assert_eq!(i.epoch, 2);
        // Nothing was lost here, so the resume point is the old cursor's own position.
        let e = pull(&mut c, &mid_cursor, 10, &[]).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        let resume = e
            .metadata()
            .get("x-resume-cursor")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let from_resume = pull(&mut c, &resume, 5, &[]).await.unwrap();
        assert_eq!(shifted(&resume, 1)[34..], from_resume[0].cursor[34..]);
        assert_eq!(
            c.ack(req(
                pb::AckRequest {
                    cursor: head_cursor.clone()
                },
                Some(TOKEN)
            ))
            .await
            .unwrap_err()
            .code(),
            tonic::Code::FailedPrecondition
        );
        // The ack made before the crash is kept.
        assert_eq!(i.acked_cursor[34..], mid_cursor[34..]);
    });
}

/// JSON lines of a `pull` output.
fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn pull_client_gets_everything_once_even_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let config = day(dir.path(), 120);
    let agent = Agent::start(&config);
    let out = dir.path().join("pulled.jsonl");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let args = |limit: &str| {
        vec![
            "pull".to_string(),
            "--endpoint".into(),
            agent.endpoint.clone(),
            "--out".into(),
            path_str(&out).into(),
            "--token-file".into(),
            path_str(&token_file).into(),
            "--limit".into(),
            limit.into(),
        ]
    };
    // Kill the client at random moments (the seed is printed; PULL_KILL_SEED replays one), with
    // small batches so the kills land mid-stream.
    let seed: u64 = std::env::var("PULL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("PULL_KILL_SEED={seed}");
    let mut x = seed | 1;
    let delays: Vec<u64> = (0..8)
        .map(|_| {
            // xorshift64: spread-out delays from 10 to 400 ms.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10 + x % 391
        })
        .collect();
    for (i, delay_ms) in delays.into_iter().enumerate() {
        let mut child = Command::new(bin())
            .args(args(if i % 2 == 0 { "7" } else { "23" }))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let a: Vec<String> = args("500");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let done = store_edge(&a);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let got = lines(&out);
    let keys: HashSet<String> = got
        .iter()
        .map(|v| v["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), got.len(), "duplicates in the output");
    let outbox = edge_e2e::count(&dir.path().join("data"), "outbox");
    assert_eq!(got.len() as u64, outbox, "missing records");

    // Again: nothing new.
    let again = store_edge(&a);
    assert!(again.status.success());
    assert_eq!(lines(&out).len(), got.len());
    assert!(String::from_utf8_lossy(&again.stderr).contains(": 0 new records"));

    // The pulled records say what the report says.
    let report = store_edge(&[
        "report",
        "--data-dir",
        path_str(&dir.path().join("data")),
        "--date",
        "2026-11-20",
        "--json",
    ]);
    assert!(report.status.success());
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let params = edge_sim::SimParams::new(11, date, 120, 2);
    let clock = edge_core::LocalClock::new(params.timezone);

    // The day report recomputed from nothing but the pulled visits is the gateway's, field for
    // field.
    let visits: Vec<ReportVisit> = got
        .iter()
        .filter(|v| v["kind"] == "visit")
        .map(|v| serde_json::from_value::<pb::Visit>(v["body"].clone()).unwrap())
        .filter(|v| clock.date(v.start_ms) == date)
        .map(|v| ReportVisit {
            class: VisitClass::parse(&v.class).unwrap(),
            start_ms: v.start_ms,
            dwell_ms: v.dwell_ms,
            path: v.path.iter().map(|z| (z.zone.clone(), z.ms)).collect(),
            connected: v.connected,
            identified: !v.person_key.is_empty(),
            group: (!v.count_group.is_empty()).then(|| v.count_group.clone()),
            inside_ms: v.inside_ms,
            sightings: v.sightings,
            randomized: v.randomized,
        })
        .collect();
    let zones: Vec<String> = params.zone_names().iter().map(|z| z.to_string()).collect();
    // The day's purchases, newest revision of each (a later revision carries the attribution).
    let mut newest: BTreeMap<String, (u32, pb::Purchase)> = BTreeMap::new();
    for v in got.iter().filter(|v| v["kind"] == "purchase") {
        let p: pb::Purchase = serde_json::from_value(v["body"].clone()).unwrap();
        let rev = v["revision"].as_u64().unwrap() as u32;
        if clock.date(p.time_ms) == date
            && newest.get(&p.purchase_key).is_none_or(|(r, _)| *r < rev)
        {
            newest.insert(p.purchase_key.clone(), (rev, p));
        }
    }
    assert!(!newest.is_empty(), "the simulated day has receipts");
    let pos = edge_core::report::PosTotals {
        transactions: newest.len() as u64,
        sales_minor: newest.values().map(|(_, p)| p.total_minor).sum(),
        minor_digits: 2,
        currency: Some("CNY".into()),
        items: newest
            .values()
            .flat_map(|(_, p)| p.items.iter())
            .map(|i| i.quantity)
            .sum(),
        attributed: newest
            .values()
            .filter(|(_, p)| !p.attributed_visit_key.is_empty())
            .count() as u64,
    };
    // The door counters' intervals, every revision (the report keeps the newest of each).
    let intervals: Vec<edge_core::counter::CounterInterval> = got
        .iter()
        .filter(|v| v["kind"] == "counter")
        .map(|v| {
            let c: pb::CounterInterval = serde_json::from_value(v["body"].clone()).unwrap();
            assert_eq!(u64::from(c.revision), v["revision"].as_u64().unwrap());
            edge_core::counter::CounterInterval {
                door: c.door,
                line: c.line,
                start_ms: c.start_ms,
                end_ms: c.end_ms,
                ins: c.ins,
                outs: c.outs,
                revision: c.revision,
            }
        })
        .collect();
    assert!(!intervals.is_empty(), "the simulated day has door counts");
    let day = edge_core::counter::day_totals(&intervals, &clock, date);
    let doors = edge_core::report::DoorCounts {
        peak_occupancy: day.peak_occupancy,
        occupancy_at_close: day.occupancy_at_close,
        by_hour: edge_core::counter::footfall_by_hour(&intervals, &clock, date),
        window: day,
    };
    // Presence bins of the date, newest revision of each (bin start, zone).
    let mut bins: BTreeMap<(i64, Option<String>), (u64, edge_core::presence::PresenceRecord)> =
        BTreeMap::new();
    for v in got.iter().filter(|v| v["kind"] == "presence") {
        let rev = v["body"]["revision"].as_u64().unwrap();
        let r: edge_core::presence::PresenceRecord =
            serde_json::from_value(v["body"].clone()).unwrap();
        if r.local_date == "2026-11-20" {
            let key = (r.start_ms, r.zone.clone());
            if bins.get(&key).is_none_or(|(o, _)| *o < rev) {
                bins.insert(key, (rev, r));
            }
        }
    }
    let presence: Vec<_> = bins.into_values().map(|(_, r)| r).collect();
    let inputs = ReportInputs {
        date,
        clock,
        visits: &visits,
        sources: ConfiguredSources {
            wifi: true,
            portal: true,
            pos: true,
            counter: true,
        },
        doors: Some(doors),
        pos: Some(pos),
        hours: None,
        min_visit_dwell_ms: edge_core::params::DEFAULT_MIN_VISIT_DWELL_MS,
        clock_step_hours: &[],
        presence: &presence,
        calibration: None,
    };
    let recomputed = serde_json::to_value(DayReport::compute(&inputs, &zones)).unwrap();
    assert_eq!(recomputed, report);

    // The hourly aggregates (newest revision of each hour) say what the report's hours say.
    let mut hours: BTreeMap<i64, pb::HourlyAggregate> = BTreeMap::new();
    for v in got.iter().filter(|v| v["kind"] == "hourly") {
        let h: pb::HourlyAggregate = serde_json::from_value(v["body"].clone()).unwrap();
        if h.local_date == "2026-11-20"
            && hours
                .get(&h.hour_start_ms)
                .is_none_or(|o| o.revision < h.revision)
        {
            hours.insert(h.hour_start_ms, h);
        }
    }
    let from_aggregates: Vec<(u64, u64, u64)> = hours
        .values()
        .filter(|h| h.visitors + h.passersby + h.staff > 0)
        .map(|h| {
            (
                u64::from(h.local_hour),
                u64::from(h.visitors),
                u64::from(h.passersby),
            )
        })
        .collect();
    let from_report: Vec<(u64, u64, u64)> = report["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["hour"].as_u64().unwrap(),
                h["visitors"].as_u64().unwrap(),
                h["passersby"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!from_report.is_empty());
    assert_eq!(from_aggregates, from_report);
    drop(agent);
}

/// Idempotency keys of the outbox in `data_dir`, with their kinds.
fn outbox_keys(data_dir: &Path) -> Vec<(String, String)> {
    let db = edge_e2e::open_db(data_dir);
    let mut st = db
        .prepare("SELECT kind, kind || '/' || record_key || '/' || revision FROM outbox")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<(String, String)>, _>>()
        .unwrap();
    rows
}

#[test]
fn several_gateways_pulled_at_once_and_across_an_epoch_change() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Health snapshots every second: the gateways keep producing records while pulled.
    let c1 = day_with(d1.path(), 60, 21, "health_interval = \"1s\"\n");
    let c2 = day_with(d2.path(), 90, 22, "health_interval = \"1s\"\n");
    let a1 = Agent::start(&c1);
    let a2 = Agent::start(&c2);
    let out = d1.path().join("pulled");
    let token_file = d1.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let pull_all = |endpoints: [&str; 2]| {
        let out = store_edge(&[
            "pull",
            "--endpoint",
            endpoints[0],
            "--endpoint",
            endpoints[1],
            "--out",
            path_str(&out),
            "--token-file",
            path_str(&token_file),
            "--limit",
            "40",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    pull_all([&a1.endpoint, &a2.endpoint]);
    let file = |endpoint: &str| {
        let name: String = endpoint
            .trim_start_matches("http://")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        out.join(format!("{name}.jsonl"))
    };
    let (f1, f2) = (file(&a1.endpoint), file(&a2.endpoint));
    let first = lines(&f1).len();
    assert!(first > 50 && !lines(&f2).is_empty());

    // Gateway 1 loses power and comes back on the same address: a new outbox epoch.
    let port = a1.port;
    a1.kill9();
    let text = std::fs::read_to_string(&c1)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&c1, text).unwrap();
    let a1 = Agent::start(&c1);
    std::thread::sleep(Duration::from_millis(1500)); // a health snapshot or two of epoch 2
    let log = pull_all([&a1.endpoint, &a2.endpoint]);
    assert!(
        log.contains("cursor refused"),
        "the epoch change was not met: {log}"
    );
    drop(a1);
    drop(a2);

    for (f, data) in [(&f1, d1.path().join("data")), (&f2, d2.path().join("data"))] {
        let got = lines(f);
        let keys: HashSet<String> = got
            .iter()
            .map(|v| v["idempotency_key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys.len(), got.len(), "duplicates in {}", f.display());
        assert!(got.iter().all(|v| v["gateway"] == "sim-store/sim-gw-1"));
        // Every record the gateway holds was pulled, except health snapshots taken after the
        // last pull; nothing was pulled that the gateway does not hold.
        let held = outbox_keys(&data);
        let held_keys: HashSet<&str> = held.iter().map(|(_, k)| k.as_str()).collect();
        assert!(keys.iter().all(|k| held_keys.contains(k.as_str())));
        let missing: Vec<&(String, String)> = held
            .iter()
            .filter(|(kind, k)| kind != "health" && !keys.contains(k))
            .collect();
        assert!(
            missing.is_empty(),
            "not pulled from {}: {missing:?}",
            data.display()
        );
    }
    // Gateway 1's health snapshots from after the restart arrived too.
    let health_after = lines(&f1)
        .iter()
        .skip(first)
        .filter(|v| v["kind"] == "health")
        .count();
    assert!(health_after >= 1);
}
