//! Tests of the counter dialects: every fixture in `hardware-profiles/counter/fixtures` parsed
//! reading by reading, bad input by reason and path, size / depth / DTD limits, charsets,
//! `emit` → `parse` round trips (fixtures and proptest), and the fuzz targets' bodies.

use proptest::prelude::*;

use super::*;
use super::{FUZZ_JSON, FUZZ_OFFSETS, FUZZ_XML};

/// A fixture's bytes.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../hardware-profiles/counter/fixtures/",
            $name
        ))
        .as_slice()
    };
}

/// Every fixture file with its dialect.
const FIXTURES: [(&str, Dialect, &[u8]); 14] = [
    ("xovis-v5.json", Dialect::XovisV5, fixture!("xovis-v5.json")),
    (
        "xovis-v5-array.json",
        Dialect::XovisV5,
        fixture!("xovis-v5-array.json"),
    ),
    (
        "xovis-v5-unix-ms.json",
        Dialect::XovisV5,
        fixture!("xovis-v5-unix-ms.json"),
    ),
    (
        "xovis-v5-live.json",
        Dialect::XovisV5,
        fixture!("xovis-v5-live.json"),
    ),
    (
        "xovis-legacy.json",
        Dialect::XovisLegacy,
        fixture!("xovis-legacy.json"),
    ),
    (
        "brickstream.xml",
        Dialect::Brickstream,
        fixture!("brickstream.xml"),
    ),
    (
        "brickstream-no-unix.xml",
        Dialect::Brickstream,
        fixture!("brickstream-no-unix.xml"),
    ),
    ("irisys.json", Dialect::Irisys, fixture!("irisys.json")),
    (
        "hikvision-event.xml",
        Dialect::HikvisionEvent,
        fixture!("hikvision-event.xml"),
    ),
    (
        "hikvision-event-realtime.xml",
        Dialect::HikvisionEvent,
        fixture!("hikvision-event-realtime.xml"),
    ),
    (
        "hikvision-event-multipart.txt",
        Dialect::HikvisionEvent,
        fixture!("hikvision-event-multipart.txt"),
    ),
    (
        "hikvision-event-videoloss.xml",
        Dialect::HikvisionEvent,
        fixture!("hikvision-event-videoloss.xml"),
    ),
    (
        "hikvision-search.xml",
        Dialect::HikvisionSearch,
        fixture!("hikvision-search.xml"),
    ),
    (
        "axis-live-sum.json",
        Dialect::AxisLiveSum,
        fixture!("axis-live-sum.json"),
    ),
];

/// The stores of the fixtures are on UTC+8.
fn ctx8() -> ParseContext {
    ParseContext {
        utc_offset_s: 8 * 3600,
        ..ParseContext::default()
    }
}

/// 2024-05-01 00:00:00 at UTC+8, Unix ms.
const DAY: i64 = 1_714_492_800_000;

/// Unix ms of `h:m` on 2024-05-01 at UTC+8.
const fn hm(h: i64, m: i64) -> i64 {
    DAY + (h * 3600 + m * 60) * 1000
}

fn iv(line: &str, start_ms: i64, end_ms: i64, ins: u32, outs: u32) -> Reading {
    Reading::Interval {
        line: line.to_owned(),
        start_ms,
        end_ms,
        ins,
        outs,
    }
}

fn cu(line: &str, at_ms: i64, ins: Option<u64>, outs: Option<u64>) -> Reading {
    Reading::Cumulative {
        line: line.to_owned(),
        at_ms,
        ins,
        outs,
    }
}

fn push(
    device: &str,
    readings: Vec<Reading>,
    sequence: Option<(u64, u64)>,
    ignored: &[&'static str],
) -> Push {
    Push {
        device: device.to_owned(),
        readings,
        sequence,
        ignored: ignored.to_vec(),
    }
}

/// What each fixture holds, in [`FIXTURES`] order.
fn expected() -> Vec<Push> {
    let hik_event = push(
        "192.168.1.64/channel-1",
        vec![iv("channel-1", hm(10, 0), hm(10, 15), 14, 9)],
        None,
        &[],
    );
    // brickstream-no-unix: New York daylight time (UTC-4); local 2024-04-30 23:30 is
    // 2024-05-01 03:30Z.
    let ny = |h: i64, m: i64| 1_714_521_600_000 + (h * 3600 + m * 60) * 1000;
    vec![
        push(
            "80:1F:12:00:00:01",
            vec![
                iv("Entrance", hm(10, 12), hm(10, 13), 3, 1),
                iv("Entrance", hm(10, 13), hm(10, 14), 0, 2),
                iv("Entrance", hm(10, 14), hm(10, 15), 7, 5),
                iv("Side door", hm(10, 12), hm(10, 13), 1, 0),
                iv("Side door", hm(10, 13), hm(10, 14), 2, 2),
                iv("Side door", hm(10, 14), hm(10, 15), 0, 1),
            ],
            Some((1001, 4711)),
            &[],
        ),
        push(
            "80:1F:12:00:00:01",
            vec![
                iv("Entrance", hm(10, 15), hm(10, 16), 2, 3),
                iv("Entrance", hm(10, 16), hm(10, 17), 6, 0),
                iv("1001", hm(10, 16), hm(10, 17), 0, 4),
            ],
            Some((1001, 4713)),
            &["status_data", "connection_test"],
        ),
        push(
            "80:1F:12:00:00:2A",
            vec![
                iv("Gate A", 1_714_529_700_000, 1_714_530_600_000, 38, 41),
                iv("Gate A", 1_714_530_600_000, 1_714_531_500_000, 52, 29),
                iv("Gate B", 1_714_529_700_000, 1_714_530_600_000, 12, 15),
            ],
            Some((1003, 17)),
            &[],
        ),
        // A live_data COUNT event: counter 1000001's running value at the frame's time.
        push(
            "80:1F:12:00:00:01",
            vec![Reading::Cumulative {
                line: "counter-1000001".to_owned(),
                at_ms: 1_714_529_701_250,
                ins: Some(118),
                outs: None,
            }],
            Some((1004, 90210)),
            &[],
        ),
        push(
            "00:26:3A:00:1B:7C",
            vec![
                iv("Main entrance", hm(10, 0), hm(10, 5), 12, 9),
                iv("Main entrance", hm(10, 5), hm(10, 10), 15, 11),
                iv("Main entrance", hm(10, 10), hm(10, 15), 8, 14),
                iv("Mall side", hm(10, 0), hm(10, 5), 3, 4),
                iv("Mall side", hm(10, 5), hm(10, 10), 0, 2),
                iv("Mall side", hm(10, 10), hm(10, 15), 5, 0),
            ],
            None,
            &[],
        ),
        push(
            "10000001",
            vec![
                iv("Line1", hm(10, 12), hm(10, 13), 4, 2),
                iv("Line1", hm(10, 13), hm(10, 14), 0, 0),
                iv("Line1", hm(10, 14), hm(10, 15), 3, 1),
                iv("Line2", hm(10, 12), hm(10, 13), 1, 5),
                iv("Line2", hm(10, 13), hm(10, 14), 2, 2),
                iv("Line2", hm(10, 14), hm(10, 15), 0, 3),
            ],
            None,
            &[],
        ),
        push(
            "BRS-3D-0042",
            vec![
                iv("Door", ny(3, 30), ny(3, 45), 6, 9),
                iv("Door", ny(3, 45), ny(4, 0), 2, 11),
                iv("Café door", ny(3, 45), ny(4, 0), 1, 1),
                iv("Door", ny(4, 0), ny(4, 15), 0, 3),
            ],
            None,
            &[],
        ),
        push(
            "V4D-17020025",
            vec![
                cu("Line 1", hm(10, 15), Some(121), Some(97)),
                cu("Staff Door", hm(10, 15), Some(8), None),
                cu("Line 1", hm(10, 30), Some(140), Some(118)),
                cu("Staff Door", hm(10, 30), Some(8), None),
                cu("Line 1", hm(10, 45) + 500, Some(152), Some(131)),
            ],
            None,
            &[],
        ),
        hik_event.clone(),
        push(
            "10.20.0.17/channel-2",
            vec![cu("channel-2", hm(10, 15) + 7000, Some(312), Some(287))],
            None,
            &[],
        ),
        hik_event,
        push("192.168.1.64/channel-1", vec![], None, &["videoloss"]),
        push(
            "",
            vec![
                iv("channel-1", hm(9, 0), hm(9, 15), 3, 1),
                iv("channel-1", hm(9, 15), hm(9, 30), 8, 2),
                iv("channel-1", hm(9, 30), hm(9, 45), 0, 0),
                iv("channel-1", hm(9, 45), hm(10, 0), 21, 17),
            ],
            None,
            &[],
        ),
        push(
            "ACCC8E000001",
            vec![cu("total", hm(10, 15), Some(12), Some(318))],
            None,
            &[],
        ),
    ]
}

#[test]
fn counter_fixtures_parse() {
    let want = expected();
    assert_eq!(want.len(), FIXTURES.len());
    for ((name, dialect, body), want) in FIXTURES.iter().zip(want) {
        assert_eq!(parse(*dialect, body, &ctx8()).as_ref(), Ok(&want), "{name}");
    }
}

/// Fixtures of profiles that are no HTTP dialect (tested in edge-agent's counter transports).
const MQTT_MODBUS_FIXTURES: [&str; 3] = [
    "generic-ir-beam-modbus.hex",
    "milesight-vs133.json",
    "mqtt-json-interval.json",
];

#[test]
fn counter_fixture_directory_is_covered() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hardware-profiles/counter/fixtures"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // Payloads of the Modbus and MQTT profiles: decoded by the agent's transports.
        .filter(|f| !MQTT_MODBUS_FIXTURES.contains(&f.as_str()))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|f| f.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn counter_fixtures_emit_round_trip() {
    for ((name, dialect, body), want) in FIXTURES.iter().zip(expected()) {
        let ctx = ctx8();
        let bytes = match emit(*dialect, &want, &ctx) {
            Ok(b) => b,
            Err(e) => {
                // The search response has no emitter, and xovis-v5 writes no live data.
                assert!(
                    *dialect == Dialect::HikvisionSearch || *name == "xovis-v5-live.json",
                    "{name}: {e}"
                );
                continue;
            }
        };
        assert_eq!(parse(*dialect, &bytes, &ctx), Ok(want.clone()), "{name}");
        assert_eq!(parse(*dialect, body, &ctx), Ok(want), "{name}");
    }
}

#[test]
fn counter_direction_labels_come_from_context() {
    let ctx = ParseContext {
        direction_in: "BW".to_owned(),
        direction_out: "fw".to_owned(),
        ..ctx8()
    };
    let p = parse(Dialect::XovisV5, fixture!("xovis-v5.json"), &ctx).unwrap();
    assert_eq!(
        p.readings.first(),
        Some(&iv("Entrance", hm(10, 12), hm(10, 13), 1, 3))
    );
    // Labels that match nothing leave no line counts at all.
    let ctx = ParseContext {
        direction_in: "in".to_owned(),
        direction_out: "out".to_owned(),
        ..ctx8()
    };
    let p = parse(Dialect::XovisLegacy, fixture!("xovis-legacy.json"), &ctx).unwrap();
    assert_eq!(p.readings, []);
    assert_eq!(p.device, "00:26:3A:00:1B:7C");
}

#[test]
fn counter_local_times_use_context_offset() {
    // AXIS timestamps are local: the same body is 5 h 30 min apart in UTC+0 and UTC+5:30.
    let body = fixture!("axis-live-sum.json");
    let utc = parse(Dialect::AxisLiveSum, body, &ParseContext::default()).unwrap();
    let ist_ctx = ParseContext {
        utc_offset_s: 19_800,
        ..ParseContext::default()
    };
    let ist = parse(Dialect::AxisLiveSum, body, &ist_ctx).unwrap();
    let at = |p: &Push| match p.readings.first() {
        Some(Reading::Cumulative { at_ms, .. }) => *at_ms,
        other => panic!("{other:?}"),
    };
    assert_eq!(at(&utc), 1_714_558_500_000);
    assert_eq!(at(&utc) - at(&ist), 19_800_000);
    // Brickstream's own Timezone wins over the context.
    let b = parse(Dialect::Brickstream, fixture!("brickstream.xml"), &ist_ctx).unwrap();
    assert_eq!(
        b.readings.first(),
        Some(&iv("Line1", hm(10, 12), hm(10, 13), 4, 2))
    );
}

#[test]
fn counter_brickstream_unix_start_time_wins() {
    let body = String::from_utf8(fixture!("brickstream.xml").to_vec()).unwrap();
    // DST set by mistake: the local times are an hour off, UnixStartTime is right.
    let dst = body.replace("<DST>0</DST>", "<DST>1</DST>");
    let p = parse(Dialect::Brickstream, dst.as_bytes(), &ctx8()).unwrap();
    assert_eq!(
        p.readings.get(2),
        Some(&iv("Line1", hm(10, 14), hm(10, 15), 3, 1))
    );
    // Without UnixStartTime the local time is all there is.
    let no_unix = dst.replace(" UnixStartTime=\"1714529640\"", "");
    let p = parse(Dialect::Brickstream, no_unix.as_bytes(), &ctx8()).unwrap();
    assert_eq!(
        p.readings.get(2),
        Some(&iv("Line1", hm(9, 14), hm(9, 15), 3, 1))
    );
    // A difference that is no zone offset is corruption.
    let odd = body.replace(
        "UnixStartTime=\"1714529640\"",
        "UnixStartTime=\"1714529641\"",
    );
    let e = parse(Dialect::Brickstream, odd.as_bytes(), &ctx8()).unwrap_err();
    assert_eq!(e.reason(), "inconsistent");
    assert_eq!(
        e.path(),
        Some("Metrics/ReportData/Report/Object[0]/Count[2]/@UnixStartTime")
    );
}

#[test]
fn counter_brickstream_before_1970_round_trips() {
    // Found by the counter_xml fuzz target: a pre-1970 date without UnixStartTime was read,
    // but its emitted negative UnixStartTime was refused as a negative count.
    let body = String::from_utf8_lossy(fixture!("brickstream-no-unix.xml"))
        .replace("2024-04-30", "0703-04-30")
        .replace("ISO-8859-1", "UTF-8");
    let p = parse(Dialect::Brickstream, body.as_bytes(), &ctx8()).unwrap();
    assert_eq!(
        p.readings.first(),
        Some(&iv("Door", -39_972_342_600_000, -39_972_341_700_000, 6, 9))
    );
    let bytes = emit(Dialect::Brickstream, &p, &ctx8()).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("UnixStartTime=\"-39972342600\""));
    assert_eq!(parse(Dialect::Brickstream, &bytes, &ctx8()), Ok(p));
}

#[test]
fn counter_hikvision_variants() {
    let event = String::from_utf8(fixture!("hikvision-event.xml").to_vec()).unwrap();
    // No statisticalMethods: the TimeRange element decides. Another namespace, a prefix.
    let bare = event
        .replace("<statisticalMethods>timeRange</statisticalMethods>\n", "")
        .replace(
            "<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">",
            "<h:EventNotificationAlert xmlns:h=\"urn:x\">",
        )
        .replace("</EventNotificationAlert>", "</h:EventNotificationAlert>");
    let p = parse(Dialect::HikvisionEvent, bare.as_bytes(), &ctx8()).unwrap();
    assert_eq!(p.readings, [iv("channel-1", hm(10, 0), hm(10, 15), 14, 9)]);
    // Running totals beyond u32 are fine for realTime.
    let rt = String::from_utf8(fixture!("hikvision-event-realtime.xml").to_vec()).unwrap();
    let big = rt.replace("<enter>312</enter>", "<enter>5000000000</enter>");
    let p = parse(Dialect::HikvisionEvent, big.as_bytes(), &ctx8()).unwrap();
    assert_eq!(
        p.readings,
        [cu(
            "channel-2",
            hm(10, 15) + 7000,
            Some(5_000_000_000),
            Some(287)
        )]
    );
    // No IP address: the device MAC is the last resort; with neither, the channel alone.
    let no_ip = event.replace("<ipAddress>192.168.1.64</ipAddress>\n", "");
    let p = parse(Dialect::HikvisionEvent, no_ip.as_bytes(), &ctx8()).unwrap();
    assert_eq!(p.device, "44:47:cc:00:00:01/channel-1");
    let none = no_ip.replace("<macAddress>44:47:cc:00:00:01</macAddress>\n", "");
    let p = parse(Dialect::HikvisionEvent, none.as_bytes(), &ctx8()).unwrap();
    assert_eq!(p.device, "channel-1");
    // A motion event from the same camera.
    let vmd = event.replace(
        "<eventType>PeopleCounting</eventType>",
        "<eventType>VMD</eventType>",
    );
    let p = parse(Dialect::HikvisionEvent, vmd.as_bytes(), &ctx8()).unwrap();
    assert_eq!((p.readings.len(), p.ignored), (0, vec!["other_event"]));
    // A search result naming its channel, and one with no matches.
    let search = String::from_utf8(fixture!("hikvision-search.xml").to_vec()).unwrap();
    let ch3 = search.replace("<numOfMatches>", "<channelID>3</channelID>\n<numOfMatches>");
    let p = parse(Dialect::HikvisionSearch, ch3.as_bytes(), &ctx8()).unwrap();
    assert!(p.readings.iter().all(|r| r.line() == "channel-3"));
    assert_eq!(p.readings.len(), 4);
    let none = "<CountingStatisticsResult><responseStatusStrg>NO MATCH</responseStatusStrg></CountingStatisticsResult>";
    assert_eq!(
        parse(Dialect::HikvisionSearch, none.as_bytes(), &ctx8()),
        Ok(Push::default())
    );
}

/// A Xovis v5 body with one record whose counts are `counts` (JSON text).
fn v5_counts(counts: &str) -> Vec<u8> {
    format!(
        r#"{{"logics_data":{{"package_info":{{"id":1,"agent_id":2}},"logics":[{{"id":1000,"name":"E","records":[{{"from":"2024-05-01T10:14:00+08:00","to":"2024-05-01T10:15:00+08:00","counts":{counts}}}]}}]}}}}"#
    )
    .into_bytes()
}

/// A Xovis v5 body with one record `record` (JSON object members).
fn v5_record(record: &str) -> Vec<u8> {
    format!(r#"{{"logics_data":{{"logics":[{{"id":1000,"name":"E","records":[{{{record}}}]}}]}}}}"#)
        .into_bytes()
}

/// A Brickstream body with one count `attrs`.
fn bs_count(attrs: &str) -> Vec<u8> {
    format!(
        r#"<Metrics><Properties><Timezone>8</Timezone></Properties><ReportData Interval="1"><Report Date="2024-05-01"><Object Name="L"><Count {attrs}/></Object></Report></ReportData></Metrics>"#
    )
    .into_bytes()
}

/// A Hikvision event with `people` inside `peopleCounting`.
fn hik(people: &str) -> Vec<u8> {
    format!(
        "<EventNotificationAlert><ipAddress>10.0.0.9</ipAddress><channelID>1</channelID><eventType>PeopleCounting</eventType><peopleCounting>{people}</peopleCounting></EventNotificationAlert>"
    )
    .into_bytes()
}

const TR: &str = "<TimeRange><startTime>2024-05-01T10:00:00+08:00</startTime><endTime>2024-05-01T10:15:00+08:00</endTime></TimeRange>";

#[test]
fn counter_bad_inputs() {
    use Dialect::*;
    let ok_span = r#""from":"2024-05-01T10:14:00+08:00","to":"2024-05-01T10:15:00+08:00""#;
    let long = "x".repeat(MAX_NAME + 1);
    let cases: Vec<(Dialect, Vec<u8>, &str, Option<&str>)> = vec![
        (XovisV5, b"{\"logics_data\":".to_vec(), "malformed_json", None),
        (XovisV5, b"{'logics_data':{}}".to_vec(), "malformed_json", None),
        (XovisV5, b"".to_vec(), "empty", None),
        (XovisV5, b" \r\n\t".to_vec(), "empty", None),
        (XovisV5, b"[]".to_vec(), "empty", None),
        (XovisV5, b"{\"wifi_bt_data\":{}}".to_vec(), "unknown_envelope", None),
        (XovisV5, b"{}".to_vec(), "unknown_envelope", None),
        (XovisV5, b"[1]".to_vec(), "wrong_type", Some("[0]")),
        (XovisV5, b"\"logics_data\"".to_vec(), "wrong_type", Some("$")),
        (XovisV5, b"{\"logics_data\":{}}".to_vec(), "missing_field", Some("logics_data.logics")),
        (XovisV5, b"{\"logics_data\":{\"logics\":{}}}".to_vec(), "wrong_type", Some("logics_data.logics")),
        (
            XovisV5,
            v5_counts(r#"[{"name":"fw","value":"7"}]"#),
            "wrong_type",
            Some("logics_data.logics[0].records[0].counts[0].value"),
        ),
        (XovisV5, v5_counts(r#"[{"name":"bw","value":7.5}]"#), "wrong_type", None),
        (XovisV5, v5_counts(r#"[{"name":"bw","value":7.0}]"#), "wrong_type", None),
        (
            XovisV5,
            v5_counts(r#"[{"name":"fw","value":1},{"name":"bw","value":-1}]"#),
            "bad_count",
            Some("logics_data.logics[0].records[0].counts[1].value"),
        ),
        (XovisV5, v5_counts(r#"[{"name":"fw","value":4294967296}]"#), "bad_count", None),
        (XovisV5, v5_counts(r#"[{"name":"fw"}]"#), "missing_field", Some("logics_data.logics[0].records[0].counts[0].value")),
        (XovisV5, v5_counts(r#"[{"name":"fw","value":1},{"name":"FW","value":2}]"#), "inconsistent", Some("logics_data.logics[0].records[0].counts[1]")),
        (XovisV5, v5_counts(r#"[{"name":7,"value":1}]"#), "wrong_type", None),
        (XovisV5, v5_counts(r#"{"fw":1}"#), "wrong_type", None),
        (
            XovisV5,
            v5_record(r#""from":"2024-05-01T10:14:00+08:00","counts":[]"#),
            "missing_field",
            Some("logics_data.logics[0].records[0].to"),
        ),
        (
            XovisV5,
            v5_record(r#""from":"2024-13-01T10:14:00+08:00","to":"2024-05-01T10:15:00+08:00","counts":[]"#),
            "bad_time",
            Some("logics_data.logics[0].records[0].from"),
        ),
        (XovisV5, v5_record(r#""from":"yesterday","to":"today","counts":[]"#), "bad_time", None),
        (XovisV5, v5_record(r#""from":true,"to":1,"counts":[]"#), "wrong_type", None),
        (XovisV5, v5_record(r#""from":1e3,"to":1,"counts":[]"#), "wrong_type", None),
        (XovisV5, v5_record(r#""from":-99999999999999999,"to":1,"counts":[]"#), "bad_time", None),
        (
            XovisV5,
            v5_record(r#""from":"2024-05-01T10:15:00+08:00","to":"2024-05-01T10:15:00+08:00","counts":[{"name":"fw","value":1}]"#),
            "inconsistent",
            Some("logics_data.logics[0].records[0]"),
        ),
        (XovisV5, v5_record(ok_span), "missing_field", Some("logics_data.logics[0].records[0].counts")),
        (
            XovisV5,
            br#"{"logics_data":{"package_info":{"id":"4711"},"logics":[]}}"#.to_vec(),
            "wrong_type",
            Some("logics_data.package_info.id"),
        ),
        (
            XovisV5,
            br#"{"logics_data":{"package_info":{"agent_id":1},"logics":[]}}"#.to_vec(),
            "missing_field",
            Some("logics_data.package_info.id"),
        ),
        (
            XovisV5,
            br#"{"logics_data":{"logics":[{"records":[]}]}}"#.to_vec(),
            "missing_field",
            Some("logics_data.logics[0].name"),
        ),
        (
            XovisV5,
            format!(r#"{{"logics_data":{{"logics":[{{"name":"{long}"}}]}}}}"#).into_bytes(),
            "name_too_long",
            Some("logics_data.logics[0].name"),
        ),
        (
            XovisV5,
            format!(r#"{{"logics_data":{{"sensor_info":{{"serial_number":"{long}"}},"logics":[]}}}}"#).into_bytes(),
            "name_too_long",
            Some("logics_data.sensor_info.serial_number"),
        ),
        (XovisLegacy, b"{\"sensor-info\":{}}".to_vec(), "missing_field", Some("content")),
        (XovisLegacy, b"{\"content\":{\"element\":7}}".to_vec(), "wrong_type", Some("content.element")),
        (XovisLegacy, b"[]".to_vec(), "wrong_type", Some("$")),
        (
            XovisLegacy,
            br#"{"content":{"element":[{"element-name":"M","measurement":[{"from":"2024-05-01T10:00:00","to":"2024-05-01T10:05:00","value":[{"value":"12","label":"fw"}]}]}]}}"#.to_vec(),
            "wrong_type",
            Some("content.element[0].measurement[0].value[0].value"),
        ),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Name":"L In","Value":"121"}]}]}"#.to_vec(), "wrong_type", Some("CountLogs[0].Counts[0].Value")),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Name":"L In","Value":1},{"Name":"L in","Value":2}]}]}"#.to_vec(), "inconsistent", Some("CountLogs[0].Counts[1]")),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Name":"L","Value":1},{"Name":"L In","Value":2}]}]}"#.to_vec(), "inconsistent", Some("CountLogs[0].Counts[1]")),
        (Irisys, br#"{"CountLogs":[{"Counts":[]}]}"#.to_vec(), "missing_field", Some("CountLogs[0].Timestamp")),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Name":"L","Value":18446744073709551616}]}]}"#.to_vec(), "bad_count", None),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Name":" In","Value":1}]}]}"#.to_vec(), "missing_field", Some("CountLogs[0].Counts[0].Name")),
        (Irisys, br#"{"CountLogs":[{"Timestamp":"2024-05-01T02:15:00Z","Counts":[{"Value":1}]}]}"#.to_vec(), "missing_field", Some("CountLogs[0].Counts[0].Name")),
        (Irisys, br#"{"FriendlyDeviceSerial":17,"CountLogs":[]}"#.to_vec(), "wrong_type", Some("FriendlyDeviceSerial")),
        (AxisLiveSum, br#"{"timestamp":"2024050110150","in":1,"out":2}"#.to_vec(), "bad_time", Some("timestamp")),
        (AxisLiveSum, br#"{"timestamp":20240501101500,"in":1,"out":2}"#.to_vec(), "wrong_type", Some("timestamp")),
        (AxisLiveSum, br#"{"timestamp":"20240501101500"}"#.to_vec(), "missing_field", Some("in")),
        (AxisLiveSum, br#"{"timestamp":"20240501101500","in":-3,"out":2}"#.to_vec(), "bad_count", Some("in")),
        (AxisLiveSum, br#"{"in":1,"out":2}"#.to_vec(), "missing_field", Some("timestamp")),
        (Brickstream, b"<Metrics><ReportData>".to_vec(), "malformed_xml", None),
        (Brickstream, b"not xml".to_vec(), "malformed_xml", None),
        (Brickstream, b"".to_vec(), "empty", None),
        (Brickstream, b"<Foo/>".to_vec(), "unknown_envelope", None),
        (Brickstream, b"<Metrics/>".to_vec(), "missing_field", Some("Metrics/ReportData")),
        (Brickstream, bs_count(r#"StartTime="10:14:00" EndTime="10:15:00" Enters="-1" Exits="0""#), "bad_count", Some("Metrics/ReportData/Report/Object/Count/@Enters")),
        (Brickstream, bs_count(r#"StartTime="10:14:00" EndTime="10:15:00" Enters="4294967296" Exits="0""#), "bad_count", None),
        (Brickstream, bs_count(r#"StartTime="10:14:00" EndTime="10:15:00" Enters="three" Exits="0""#), "wrong_type", None),
        (Brickstream, bs_count(r#"StartTime="10:14:00" EndTime="10:15:00" Enters="1""#), "missing_field", Some("Metrics/ReportData/Report/Object/Count/@Exits")),
        (Brickstream, bs_count(r#"StartTime="10:61:00" EndTime="10:15:00" Enters="1" Exits="0""#), "bad_time", Some("Metrics/ReportData/Report/Object/Count/@StartTime")),
        (Brickstream, bs_count(r#"StartTime="10:14:00" UnixStartTime="x" Enters="1" Exits="0""#), "wrong_type", None),
        (Brickstream, bs_count(r#"StartTime="10:14:00" UnixStartTime="1714529641" Enters="1" Exits="0""#), "inconsistent", None),
        (Brickstream, bs_count(r#"StartTime="10:14:00" UnixStartTime="99999999999999" Enters="1" Exits="0""#), "bad_time", None),
        (
            Brickstream,
            br#"<Metrics><ReportData><Report Date="2024-05-01"><Object Name="L"><Count StartTime="10:14:00" Enters="1" Exits="0"/></Object></Report></ReportData></Metrics>"#.to_vec(),
            "missing_field",
            Some("Metrics/ReportData/Report/Object/Count/@EndTime"),
        ),
        (
            Brickstream,
            br#"<Metrics><ReportData><Report Date="2024-02-30"><Object Name="L"/></Report></ReportData></Metrics>"#.to_vec(),
            "bad_time",
            Some("Metrics/ReportData/Report/@Date"),
        ),
        (
            Brickstream,
            br#"<Metrics><ReportData><Report Date="2024-05-01"><Object Id="1"/></Report></ReportData></Metrics>"#.to_vec(),
            "missing_field",
            Some("Metrics/ReportData/Report/Object/@Name"),
        ),
        (
            Brickstream,
            br#"<Metrics><Properties><Timezone>UTC+8</Timezone></Properties><ReportData/></Metrics>"#.to_vec(),
            "bad_time",
            Some("Metrics/Properties/Timezone"),
        ),
        (
            Brickstream,
            br#"<Metrics><Properties><Timezone>8</Timezone><DST>yes</DST></Properties><ReportData/></Metrics>"#.to_vec(),
            "wrong_type",
            Some("Metrics/Properties/DST"),
        ),
        (Brickstream, br#"<Metrics><ReportData Interval="0"/></Metrics>"#.to_vec(), "wrong_type", Some("Metrics/ReportData/@Interval")),
        (HikvisionEvent, hik(&format!("{TR}<enter>1</enter>")), "missing_field", Some("EventNotificationAlert/peopleCounting/exit")),
        (HikvisionEvent, hik(&format!("{TR}<enter>-1</enter><exit>0</exit>")), "bad_count", Some("EventNotificationAlert/peopleCounting/enter")),
        (HikvisionEvent, hik(&format!("{TR}<enter>1.5</enter><exit>0</exit>")), "wrong_type", None),
        (HikvisionEvent, hik(&format!("{TR}<enter>5000000000</enter><exit>0</exit>")), "bad_count", Some("EventNotificationAlert/peopleCounting/enter")),
        (HikvisionEvent, hik("<enter>1</enter><exit>0</exit>"), "missing_field", Some("EventNotificationAlert/peopleCounting/TimeRange")),
        (HikvisionEvent, hik("<statisticalMethods>realTime</statisticalMethods><enter>1</enter><exit>0</exit>"), "missing_field", Some("EventNotificationAlert/peopleCounting/RealTime")),
        (
            HikvisionEvent,
            hik("<TimeRange><startTime>2024-05-01T10:15:00+08:00</startTime><endTime>2024-05-01T10:00:00+08:00</endTime></TimeRange><enter>1</enter><exit>0</exit>"),
            "inconsistent",
            Some("EventNotificationAlert/peopleCounting/TimeRange"),
        ),
        (
            HikvisionEvent,
            hik("<TimeRange><startTime>10:00</startTime><endTime>2024-05-01T10:00:00+08:00</endTime></TimeRange><enter>1</enter><exit>0</exit>"),
            "bad_time",
            Some("EventNotificationAlert/peopleCounting/TimeRange/startTime"),
        ),
        (
            HikvisionEvent,
            b"<EventNotificationAlert><eventType>PeopleCounting</eventType></EventNotificationAlert>".to_vec(),
            "missing_field",
            Some("EventNotificationAlert/channelID"),
        ),
        (
            HikvisionEvent,
            b"<EventNotificationAlert><channelID>one</channelID><eventType>PeopleCounting</eventType></EventNotificationAlert>".to_vec(),
            "wrong_type",
            Some("EventNotificationAlert/channelID"),
        ),
        (HikvisionEvent, b"<EventNotificationAlert/>".to_vec(), "missing_field", Some("EventNotificationAlert/eventType")),
        (HikvisionEvent, b"<ResponseStatus/>".to_vec(), "unknown_envelope", None),
        (HikvisionEvent, b"--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--b--".to_vec(), "unknown_envelope", None),
        (HikvisionEvent, b"--b\r\n\r\n<EventNotificationAlert><channelID>1</channelID>\xff\xd8".to_vec(), "malformed_xml", None),
        (HikvisionEvent, b"--b\r\n\r\n<EventNotificationAlert>\xff</EventNotificationAlert>".to_vec(), "bad_encoding", None),
        (
            HikvisionSearch,
            b"<CountingStatisticsResult><matchElementList><matchElement><timeSpan><startTime>2024-05-01T09:00:00Z</startTime><endTime>2024-05-01T09:15:00Z</endTime></timeSpan><enterCount>1</enterCount></matchElement></matchElementList></CountingStatisticsResult>".to_vec(),
            "missing_field",
            Some("CountingStatisticsResult/matchElementList/matchElement/exitCount"),
        ),
        (
            HikvisionSearch,
            b"<CountingStatisticsResult><matchElementList><matchElement><timeSpan><startTime>2024-05-01 09:00</startTime><endTime>never</endTime></timeSpan><enterCount>1</enterCount><exitCount>1</exitCount></matchElement></matchElementList></CountingStatisticsResult>".to_vec(),
            "bad_time",
            Some("CountingStatisticsResult/matchElementList/matchElement/timeSpan/endTime"),
        ),
        (HikvisionSearch, b"<EventNotificationAlert/>".to_vec(), "unknown_envelope", None),
        (HikvisionSearch, b"<CountingStatisticsResult>\xc3\x28</CountingStatisticsResult>".to_vec(), "bad_encoding", None),
        (HikvisionSearch, b"<?xml version=\"1.0\" encoding=\"klingon\"?><CountingStatisticsResult/>".to_vec(), "bad_encoding", None),
    ];
    for (dialect, body, reason, path) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let e = match parse(dialect, &body, &ctx8()) {
            Err(e) => e,
            Ok(p) => panic!("{dialect} {shown}: parsed {p:?}"),
        };
        assert_eq!(e.reason(), reason, "{dialect} {shown}: {e}");
        assert_eq!(e.dialect(), dialect);
        if let Some(path) = path {
            assert_eq!(e.path(), Some(path), "{dialect} {shown}: {e}");
        }
        let msg = e.to_string();
        assert!(msg.starts_with(dialect.name()), "{msg}");
    }
}

#[test]
fn counter_errors_never_echo_values() {
    // A hostile unknown envelope key is cut and made printable; values never appear.
    let key = format!("evil\\u001b[31m{}", "k".repeat(100));
    let body = format!(r#"{{"{key}":{{"secret":"13812345678"}}}}"#);
    let e = parse(Dialect::XovisV5, body.as_bytes(), &ctx8()).unwrap_err();
    let CounterError::UnknownEnvelope { found, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(found.len(), 32);
    assert!(found.starts_with("evil?[31m"));
    let e = parse(
        Dialect::HikvisionEvent,
        &hik(&format!("{TR}<enter>13812345678x</enter><exit>0</exit>")),
        &ctx8(),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("138123"), "{e}");
    assert_eq!(CounterError::REASONS.len(), 13);
    let mut seen = CounterError::REASONS.to_vec();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), CounterError::REASONS.len());
}

#[test]
fn counter_body_size_limit() {
    let mut big = vec![b' '; MAX_BODY + 1];
    for d in Dialect::ALL {
        assert_eq!(
            parse(d, &big, &ctx8()),
            Err(CounterError::TooLarge {
                dialect: d,
                len: MAX_BODY + 1
            })
        );
    }
    // Exactly MAX_BODY is looked at (and is blank).
    big.pop();
    assert_eq!(
        parse(Dialect::Irisys, &big, &ctx8()).unwrap_err().reason(),
        "empty"
    );
    // A valid body padded to the limit still parses.
    let mut padded = fixture!("axis-live-sum.json").to_vec();
    padded.resize(MAX_BODY, b'\n');
    assert!(parse(Dialect::AxisLiveSum, &padded, &ctx8()).is_ok());
}

#[test]
fn counter_deep_json_is_an_error_not_a_stack_overflow() {
    for body in [
        "[".repeat(MAX_BODY),
        "{\"a\":".repeat(MAX_BODY / 5),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        for d in [
            Dialect::XovisV5,
            Dialect::XovisLegacy,
            Dialect::Irisys,
            Dialect::AxisLiveSum,
        ] {
            let e = parse(d, body.as_bytes(), &ctx8()).unwrap_err();
            assert_eq!(e.reason(), "malformed_json", "{e}");
        }
    }
    // 127 levels are fine for serde_json, so the error comes from the shape.
    let ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
    assert_eq!(
        parse(Dialect::XovisV5, ok.as_bytes(), &ctx8())
            .unwrap_err()
            .reason(),
        "wrong_type"
    );
}

#[test]
fn counter_deep_and_wide_xml_is_bounded() {
    // roxmltree recurses per level; nesting is refused before it gets there.
    let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    let e = parse(Dialect::Brickstream, deep(64).as_bytes(), &ctx8()).unwrap_err();
    assert_eq!(e.reason(), "unknown_envelope");
    for n in [65, 40_000, MAX_BODY / 8] {
        for d in [
            Dialect::Brickstream,
            Dialect::HikvisionEvent,
            Dialect::HikvisionSearch,
        ] {
            let e = parse(d, deep(n).as_bytes(), &ctx8()).unwrap_err();
            assert!(
                matches!(
                    e,
                    CounterError::MalformedXml {
                        what: "too_deep",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
    // Unclosed nesting is just as deep.
    let e = parse(
        Dialect::Brickstream,
        "<a>".repeat(MAX_BODY / 4).as_bytes(),
        &ctx8(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            CounterError::MalformedXml {
                what: "too_deep",
                ..
            }
        ),
        "{e}"
    );
    let wide = format!("<Metrics>{}</Metrics>", "<x/>".repeat(200_000));
    let e = parse(Dialect::Brickstream, wide.as_bytes(), &ctx8()).unwrap_err();
    assert!(
        matches!(
            e,
            CounterError::MalformedXml {
                what: "too_many_nodes",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn counter_xml_dtd_and_entities_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Metrics SiteId="&lol4;"><ReportData/></Metrics>"#;
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><channelID>&x;</channelID></EventNotificationAlert>"#;
    for (d, body) in [
        (Dialect::Brickstream, laughs),
        (Dialect::HikvisionEvent, xxe),
    ] {
        let e = parse(d, body.as_bytes(), &ctx8()).unwrap_err();
        assert!(
            matches!(e, CounterError::MalformedXml { what: "dtd", .. }),
            "{e:?}"
        );
        assert_eq!(e.reason(), "malformed_xml");
    }
    // Without a DTD only the five predefined entities and character references exist.
    let undefined = b"<EventNotificationAlert><eventType>&x;</eventType></EventNotificationAlert>";
    let e = parse(Dialect::HikvisionEvent, undefined, &ctx8()).unwrap_err();
    assert!(
        matches!(e, CounterError::MalformedXml { what: "entity", .. }),
        "{e:?}"
    );
    let predefined =
        b"<EventNotificationAlert><eventType>&#86;M&#x44;</eventType></EventNotificationAlert>";
    let p = parse(Dialect::HikvisionEvent, predefined, &ctx8()).unwrap();
    assert_eq!(p.ignored, ["other_event"]);
}

#[test]
fn counter_xml_charsets() {
    let event = fixture!("hikvision-event.xml");
    let want = parse(Dialect::HikvisionEvent, event, &ctx8()).unwrap();
    // UTF-16 with a BOM, both byte orders; UTF-8 with a BOM.
    let text = String::from_utf8(event.to_vec()).unwrap();
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        le.extend(u.to_le_bytes());
        be.extend(u.to_be_bytes());
    }
    let mut bom8 = b"\xEF\xBB\xBF".to_vec();
    bom8.extend_from_slice(event);
    for body in [le, be, bom8] {
        assert_eq!(
            parse(Dialect::HikvisionEvent, &body, &ctx8()).as_ref(),
            Ok(&want)
        );
    }
    // A GB2312 (GBK) declaration with a Chinese line name.
    let gbk_text = r#"<?xml version="1.0" encoding="GB2312"?><Metrics><ReportData Interval="1"><Report Date="2024-05-01"><Object Name="正门"><Count StartTime="10:14:00" EndTime="10:15:00" Enters="3" Exits="1"/></Object></Report></ReportData></Metrics>"#;
    let (gbk, _, bad) = encoding_rs::GBK.encode(gbk_text);
    assert!(!bad);
    let ctx = ctx8();
    let p = parse(Dialect::Brickstream, &gbk, &ctx).unwrap();
    assert_eq!(p.readings, [iv("正门", hm(10, 14), hm(10, 15), 3, 1)]);
    // The same bytes claimed to be UTF-8 are not text.
    let lying = gbk_text.replace("GB2312", "UTF-8");
    let (lying, _, _) = encoding_rs::GBK.encode(&lying);
    assert_eq!(
        parse(Dialect::Brickstream, &lying, &ctx)
            .unwrap_err()
            .reason(),
        "bad_encoding"
    );
    // Odd-length UTF-16 is malformed.
    let e = parse(Dialect::Brickstream, b"\xFF\xFE<\x00M", &ctx).unwrap_err();
    assert_eq!(e.reason(), "bad_encoding");
}

#[test]
fn counter_dialect_names() {
    for d in Dialect::ALL {
        assert_eq!(Dialect::from_name(d.name()), Some(d));
        assert_eq!(d.to_string(), d.name());
    }
    let names: Vec<_> = Dialect::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "xovis-v5",
            "xovis-legacy",
            "brickstream",
            "irisys",
            "hikvision-event",
            "hikvision-search",
            "axis-live-sum"
        ]
    );
    for s in ["", "Xovis-V5", "xovis", "axis-live-sum ", "hikvision"] {
        assert_eq!(Dialect::from_name(s), None, "{s}");
    }
    let xml: Vec<_> = Dialect::ALL.into_iter().filter(|d| d.is_xml()).collect();
    assert_eq!(
        xml,
        [
            Dialect::Brickstream,
            Dialect::HikvisionEvent,
            Dialect::HikvisionSearch
        ]
    );
    let ctx = ParseContext::default();
    assert_eq!(
        (
            ctx.utc_offset_s,
            ctx.direction_in.as_str(),
            ctx.direction_out.as_str()
        ),
        (0, "fw", "bw")
    );
}

#[test]
fn counter_emit_refuses_what_a_dialect_cannot_say() {
    use Dialect::*;
    let ctx = ctx8();
    let interval = iv("channel-1", hm(10, 0), hm(10, 15), 1, 2);
    let cumulative = cu("total", hm(10, 0), Some(1), Some(2));
    let cases: Vec<(Dialect, Push, ParseContext)> = vec![
        (
            XovisV5,
            push("d", vec![cumulative.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            XovisV5,
            push("d", vec![], None, &["videoloss"]),
            ctx.clone(),
        ),
        (
            XovisV5,
            push("d", vec![interval.clone()], None, &[]),
            ParseContext {
                direction_out: "FW".to_owned(),
                ..ctx.clone()
            },
        ),
        (
            XovisV5,
            push("d", vec![interval.clone()], None, &[]),
            ParseContext {
                utc_offset_s: 30,
                ..ctx.clone()
            },
        ),
        (
            XovisV5,
            push("d", vec![iv("L", hm(10, 0), hm(10, 0), 1, 1)], None, &[]),
            ctx.clone(),
        ),
        (
            XovisV5,
            push("d", vec![iv("", hm(10, 0), hm(10, 1), 1, 1)], None, &[]),
            ctx.clone(),
        ),
        (
            XovisV5,
            push(&"d".repeat(MAX_NAME + 1), vec![], None, &[]),
            ctx.clone(),
        ),
        (
            XovisLegacy,
            push("d", vec![interval.clone()], Some((1, 2)), &[]),
            ctx.clone(),
        ),
        (
            XovisLegacy,
            push("d", vec![interval.clone()], None, &["status_data"]),
            ctx.clone(),
        ),
        (
            Brickstream,
            push(
                "d",
                vec![iv("L", hm(10, 0) + 1, hm(10, 1), 1, 1)],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (
            Brickstream,
            push("d", vec![iv("L", hm(10, 0), hm(34, 1), 1, 1)], None, &[]),
            ctx.clone(),
        ),
        (Brickstream, push(" d", vec![], None, &[]), ctx.clone()),
        (
            Brickstream,
            push(
                "d",
                vec![iv("L\u{1}", hm(10, 0), hm(10, 1), 1, 1)],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (
            Brickstream,
            push("d", vec![], None, &[]),
            ParseContext {
                utc_offset_s: 600,
                ..ctx.clone()
            },
        ),
        (
            HikvisionEvent,
            push(
                "10.0.0.9/channel-1",
                vec![interval.clone(), interval.clone()],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (
            HikvisionEvent,
            push("10.0.0.9/channel-2", vec![interval.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            HikvisionEvent,
            push("10.0.0.9", vec![interval.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            HikvisionEvent,
            push(
                "channel-1",
                vec![cu("channel-1", hm(10, 0), Some(1), None)],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (
            HikvisionEvent,
            push("channel-1", vec![], None, &[]),
            ctx.clone(),
        ),
        (
            HikvisionEvent,
            push("channel-1", vec![], None, &["status_data"]),
            ctx.clone(),
        ),
        (
            HikvisionSearch,
            push("", vec![interval.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            Irisys,
            push("d", vec![interval.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            Irisys,
            push("d", vec![cu("L", hm(10, 0), None, None)], None, &[]),
            ctx.clone(),
        ),
        (
            AxisLiveSum,
            push("d", vec![cumulative.clone(), cumulative.clone()], None, &[]),
            ctx.clone(),
        ),
        (
            AxisLiveSum,
            push(
                "d",
                vec![cu("door", hm(10, 0), Some(1), Some(2))],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (
            AxisLiveSum,
            push(
                "d",
                vec![cu("total", hm(10, 0) + 5, Some(1), Some(2))],
                None,
                &[],
            ),
            ctx.clone(),
        ),
        (AxisLiveSum, push("d", vec![], None, &[]), ctx.clone()),
    ];
    for (d, p, ctx) in cases {
        let e = emit(d, &p, &ctx).unwrap_err();
        assert_eq!((e.reason(), e.dialect()), ("unsupported", d), "{d} {p:?}");
    }
}

#[test]
fn counter_emitted_bodies_look_like_the_devices() {
    let ctx = ctx8();
    let want = &expected();
    let v5 = String::from_utf8(emit(Dialect::XovisV5, &want[1], &ctx).unwrap()).unwrap();
    assert!(
        v5.starts_with("[{\"logics_data\":{\"logics\":[{\"id\":1000,"),
        "{v5}"
    );
    assert!(
        v5.contains("\"from\":\"2024-05-01T10:15:00+08:00\""),
        "{v5}"
    );
    assert!(v5.contains("{\"status_data\":"), "{v5}");
    let hik = String::from_utf8(emit(Dialect::HikvisionEvent, &want[8], &ctx).unwrap()).unwrap();
    assert!(hik.contains("<ipAddress>192.168.1.64</ipAddress>"), "{hik}");
    assert!(
        hik.contains("<startTime>2024-05-01T10:00:00+08:00</startTime>"),
        "{hik}"
    );
    let bs = String::from_utf8(emit(Dialect::Brickstream, &want[5], &ctx).unwrap()).unwrap();
    assert!(
        bs.contains("<Timezone>8</Timezone><DST>0</DST><SerialNumber>10000001</SerialNumber>"),
        "{bs}"
    );
    assert!(
        bs.contains("<Count StartTime=\"10:14:00\" EndTime=\"10:15:00\" UnixStartTime=\"1714529640\" Enters=\"3\" Exits=\"1\" Status=\"0\"/>"),
        "{bs}"
    );
    let axis = String::from_utf8(emit(Dialect::AxisLiveSum, &want[13], &ctx).unwrap()).unwrap();
    assert_eq!(
        axis,
        r#"{"in":12,"name":"ACCC8E000001","out":318,"serial":"ACCC8E000001","timestamp":"20240501101500"}"#
    );
    let irisys = String::from_utf8(emit(Dialect::Irisys, &want[7], &ctx).unwrap()).unwrap();
    assert!(
        irisys.contains(r#"{"Name":"Line 1 In","RegisterId":0,"Value":121}"#),
        "{irisys}"
    );
    assert!(
        irisys.contains(r#""Timestamp":"2024-05-01T02:45:00.500Z""#),
        "{irisys}"
    );
}

/// The fuzz seed for a fixture: the first byte picks its dialect at UTC+8.
fn seed(dialect: Dialect, body: &[u8]) -> (&'static str, Vec<u8>) {
    let (target, list): (&str, &[Dialect]) = if dialect.is_xml() {
        ("counter_xml", &FUZZ_XML)
    } else {
        ("counter_json", &FUZZ_JSON)
    };
    let idx = list.iter().position(|&d| d == dialect).unwrap();
    let mut data = vec![0x10 | u8::try_from(idx).unwrap()];
    data.extend_from_slice(body);
    (target, data)
}

#[test]
fn counter_fuzz_bodies_on_fixtures_and_mutations() {
    let mut runs = 0;
    for (_, dialect, body) in FIXTURES {
        let (target, data) = seed(dialect, body);
        let list: &[Dialect] = if target == "counter_xml" {
            &FUZZ_XML
        } else {
            &FUZZ_JSON
        };
        fuzz_check(list, &data);
        // Every truncation and a sweep of byte flips, cheaply.
        for cut in (1..data.len()).step_by(7) {
            fuzz_check(list, data.get(..cut).unwrap());
            runs += 1;
        }
        for i in (1..data.len()).step_by(5) {
            for b in [b'"', b'<', b'0', b'-', 0xff] {
                let mut m = data.clone();
                m[i] = b;
                fuzz_check(list, &m);
                runs += 1;
            }
        }
    }
    assert!(runs > 1000);
}

/// Writes the fuzz seeds from the fixtures: `cargo test -p edge-wire --lib -- --ignored
/// counter_write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand when fixtures change"]
fn counter_write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, dialect, body) in FIXTURES {
        let (target, data) = seed(dialect, body);
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// A line name that survives every dialect's text rules.
fn line_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Entrance".to_owned()),
        Just("Side door".to_owned()),
        "[A-Za-z0-9][A-Za-z0-9 _<>&\"'é中-]{0,12}[A-Za-z0-9]",
    ]
}

/// A device name: empty, or printable text without surrounding spaces.
fn device_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9][A-Za-z0-9 :._<>&\"'é-]{0,16}[A-Za-z0-9]"
    ]
}

/// Unix ms in 2000–2100.
fn instant(whole_seconds: bool) -> impl Strategy<Value = i64> {
    (946_684_800i64..4_102_444_800, 0i64..1000)
        .prop_map(move |(s, ms)| s * 1000 + if whole_seconds { 0 } else { ms })
}

fn interval_reading(whole_seconds: bool, max_len_s: i64) -> impl Strategy<Value = Reading> {
    (
        line_name(),
        instant(whole_seconds),
        1..=max_len_s,
        0i64..1000,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(move |(line, start_ms, len_s, len_ms, ins, outs)| {
            let len = len_s * 1000
                - if whole_seconds || len_s == 1 {
                    0
                } else {
                    len_ms
                };
            Reading::Interval {
                line,
                start_ms,
                end_ms: start_ms + len,
                ins,
                outs,
            }
        })
}

fn totals() -> impl Strategy<Value = (Option<u64>, Option<u64>)> {
    (any::<Option<u64>>(), any::<Option<u64>>())
        .prop_filter("one total", |t| t.0.is_some() || t.1.is_some())
}

fn offset_ctx() -> impl Strategy<Value = ParseContext> {
    (0..FUZZ_OFFSETS.len()).prop_map(|i| ParseContext {
        utc_offset_s: FUZZ_OFFSETS[i],
        ..ParseContext::default()
    })
}

fn round_trip(d: Dialect, p: &Push, ctx: &ParseContext) -> Result<(), TestCaseError> {
    let bytes = emit(d, p, ctx).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(parse(d, &bytes, ctx), Ok(p.clone()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn counter_xovis_v5_round_trip(
        device in device_name(),
        readings in prop::collection::vec(interval_reading(false, 86_400), 0..6),
        sequence in any::<Option<(u64, u64)>>(),
        ignored in prop::collection::vec(prop::sample::select(vec!["status_data", "connection_test", "live_data"]), 0..3),
        ctx in offset_ctx(),
    ) {
        round_trip(Dialect::XovisV5, &Push { device, readings, sequence, ignored }, &ctx)?;
    }

    #[test]
    fn counter_xovis_legacy_round_trip(
        device in device_name(),
        readings in prop::collection::vec(interval_reading(false, 3600), 0..6),
        ctx in offset_ctx(),
    ) {
        round_trip(Dialect::XovisLegacy, &Push { device, readings, ..Push::default() }, &ctx)?;
    }

    #[test]
    fn counter_brickstream_round_trip(
        device in device_name(),
        readings in prop::collection::vec(interval_reading(true, 86_400), 0..6),
        ctx in offset_ctx(),
    ) {
        round_trip(Dialect::Brickstream, &Push { device, readings, ..Push::default() }, &ctx)?;
    }

    #[test]
    fn counter_hikvision_event_round_trip(
        addr in prop::option::of("[0-9a-f.:/]{1,20}[0-9a-f]"),
        channel in any::<u32>(),
        reading in prop_oneof![
            interval_reading(false, 86_400).prop_map(Some),
            (instant(false), any::<u64>(), any::<u64>()).prop_map(|(at, i, o)| Some(cu("", at, Some(i), Some(o)))),
            Just(None),
        ],
        ignored in prop::sample::select(vec!["videoloss", "other_event"]),
        ctx in offset_ctx(),
    ) {
        let device = hikvision::device_id(addr.as_deref(), Some(channel));
        let line = format!("channel-{channel}");
        let p = match reading {
            Some(Reading::Interval { start_ms, end_ms, ins, outs, .. }) => {
                push(&device, vec![iv(&line, start_ms, end_ms, ins, outs)], None, &[])
            }
            Some(Reading::Cumulative { at_ms, ins, outs, .. }) => {
                push(&device, vec![cu(&line, at_ms, ins, outs)], None, &[])
            }
            None => push(&device, vec![], None, &[ignored]),
        };
        round_trip(Dialect::HikvisionEvent, &p, &ctx)?;
    }

    #[test]
    fn counter_irisys_round_trip(
        device in device_name(),
        readings in prop::collection::vec(
            (line_name(), prop::sample::select(vec![0i64, 0, 900_000, 1_500]), totals()),
            0..8,
        ),
        start in instant(false),
    ) {
        let mut at = start;
        let readings = readings
            .into_iter()
            .map(|(line, step, (ins, outs))| {
                at += step;
                cu(&line, at, ins, outs)
            })
            .collect();
        round_trip(Dialect::Irisys, &Push { device, readings, ..Push::default() }, &ParseContext::default())?;
    }

    #[test]
    fn counter_axis_round_trip(
        device in device_name(),
        at in instant(true),
        (ins, outs) in totals(),
        ctx in offset_ctx(),
    ) {
        let p = push(&device, vec![cu(axis::LINE, at, ins, outs)], None, &[]);
        round_trip(Dialect::AxisLiveSum, &p, &ctx)?;
    }

    #[test]
    fn counter_parse_never_panics_on_noise(d in prop::sample::select(Dialect::ALL.to_vec()), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(d, &body, &ParseContext::default());
    }
}
