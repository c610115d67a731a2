//! Tests of the people-counter door feeds: both replay files read back only through edge-wire's
//! counter parsers (as the agent reads them), the counts recovered the way a counter tracker
//! does (each Xovis interval once, Irisys registers differenced with a decrease taken as a
//! reset) and checked against `truth.counter`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use edge_wire::counter::{parse, Dialect, ParseContext, Push, Reading};

use crate::tests::{read_truth, small};
use crate::truth::{CounterTruth, Truth, VisitKind};
use crate::{
    generate, SimParams, COUNTER_MAIN_FILE, COUNTER_MAIN_NAME, COUNTER_MAIN_PROFILE,
    COUNTER_SIDE_FILE, COUNTER_SIDE_NAME, COUNTER_SIDE_PROFILE, DUPLICATES, IRISYS_DEVICE,
    IRISYS_LINE, POS_FILE, WINDOW_BEFORE_OPEN_MS, XOVIS_AGENT_ID, XOVIS_DEVICE, XOVIS_LOGIC,
};

/// FNV-1a 64 (as period_tests' golden test).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn run(params: &SimParams) -> (tempfile::TempDir, Truth) {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(params).write(dir.path()).unwrap();
    assert_eq!(
        written.counter_main_path,
        dir.path().join(COUNTER_MAIN_FILE)
    );
    assert_eq!(
        written.counter_side_path,
        dir.path().join(COUNTER_SIDE_FILE)
    );
    let truth = read_truth(dir.path());
    assert_eq!(truth.counter, written.truth.counter);
    (dir, truth)
}

/// The lines of a replay file (it ends with a newline; no line is empty).
fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.ends_with(b"\n"), "{}", path.display());
    let lines: Vec<Vec<u8>> = bytes[..bytes.len() - 1]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    assert!(lines.iter().all(|l| !l.is_empty() && !l.contains(&b'\r')));
    lines
}

/// Every line of a feed, parsed with its dialect (the store's offset does not matter: both
/// dialects write their times with an offset).
fn parsed(path: &Path, dialect: Dialect) -> Vec<(Vec<u8>, Push)> {
    lines(path)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let a = parse(dialect, &line, &ParseContext::default());
            let b = parse(
                dialect,
                &line,
                &ParseContext {
                    utc_offset_s: -18_000,
                    ..ParseContext::default()
                },
            );
            let push = a.unwrap_or_else(|e| panic!("{dialect} line {}: {e}", i + 1));
            assert_eq!(Ok(push.clone()), b, "line {}", i + 1);
            (line, push)
        })
        .collect()
}

/// Three days with returning shoppers and rotating MACs.
fn three_days(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.days = 3;
    p.visitors = 50;
    p.passersby = 40;
    p.connected_share = 0.6;
    p.mac_rotation_secs = Some(300);
    p
}

/// The parameter sets the feed tests run over.
fn cases() -> Vec<(&'static str, SimParams)> {
    // Clocks go forward in New York on 2025-03-09.
    let mut dst = three_days(23);
    dst.timezone = chrono_tz::America::New_York;
    dst.date = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    // Open 20:00 to 02:00: crossings after midnight belong to the next local day.
    let mut late = small(31);
    late.days = 2;
    late.open_hour = 20;
    late.open_hours = 6;
    // Open around the clock: the push windows of the days join.
    let mut always = small(37);
    always.days = 2;
    always.open_hour = 0;
    always.open_hours = 24;
    always.visitors = 30;
    always.passersby = 10;
    let mut walkins = small(41);
    walkins.walkin_purchases_per_hour = 20.0;
    walkins.undetected_share = 0.0;
    let mut india = small(43);
    india.timezone = chrono_tz::Asia::Kolkata;
    india.undetected_share = 0.6;
    vec![
        ("defaults", small(5)),
        ("three days", three_days(17)),
        ("dst", dst),
        ("past midnight", late),
        ("around the clock", always),
        ("walk-ins only", walkins),
        ("kolkata", india),
    ]
}

/// Every case of [`cases`], written once for all the tests that only read the output:
/// (name, params, output directory, truth).
fn written() -> &'static [(&'static str, SimParams, tempfile::TempDir, Truth)] {
    static RUNS: OnceLock<Vec<(&'static str, SimParams, tempfile::TempDir, Truth)>> =
        OnceLock::new();
    RUNS.get_or_init(|| {
        cases()
            .into_iter()
            .map(|(name, params)| {
                let (dir, truth) = run(&params);
                (name, params, dir, truth)
            })
            .collect()
    })
}

/// Local day and hour of Unix ms `ms`.
fn local(tz: Tz, ms: i64) -> (String, usize) {
    let t = DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&tz);
    (
        t.date_naive().format("%Y-%m-%d").to_string(),
        t.hour() as usize,
    )
}

/// Counts recovered from the feeds, per local day: per door (main, side) (ins, outs), and the
/// entries of both doors per local hour.
#[derive(Debug, Default, PartialEq)]
struct Day {
    doors: [(u64, u64); 2],
    hours: Vec<u64>,
}

/// A register decrease seen while differencing: (index of the log before, its registers, the
/// registers after).
type Decrease = (usize, (u64, u64), (u64, u64));

/// Reads both feeds back as a counter tracker would.
fn recover(dir: &Path, tz: Tz) -> (BTreeMap<String, Day>, Vec<Decrease>) {
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    let mut add = |door: usize, at_ms: i64, ins: u64, outs: u64| {
        if ins + outs == 0 {
            return;
        }
        let (day, hour) = local(tz, at_ms);
        let d = days.entry(day).or_insert_with(|| Day {
            doors: [(0, 0); 2],
            hours: vec![0; 24],
        });
        d.doors[door].0 += ins;
        d.doors[door].1 += outs;
        d.hours[hour] += ins;
    };
    // Xovis: every interval once (a retransmission repeats one with the same counts).
    let mut seen: HashMap<(String, i64, i64), (u32, u32)> = HashMap::new();
    for (_, push) in parsed(&dir.join(COUNTER_MAIN_FILE), Dialect::XovisV5) {
        for r in push.readings {
            let Reading::Interval {
                line,
                start_ms,
                end_ms,
                ins,
                outs,
            } = r
            else {
                panic!("xovis gave a cumulative reading");
            };
            match seen.insert((line, start_ms, end_ms), (ins, outs)) {
                Some(old) => assert_eq!(old, (ins, outs), "a retransmission differs"),
                None => add(0, start_ms, u64::from(ins), u64::from(outs)),
            }
        }
    }
    // Irisys: the first log is the baseline; a decrease is a reset, the new value counts since.
    let mut prev: Option<(i64, u64, u64)> = None;
    let mut decreases = Vec::new();
    for (k, (_, push)) in parsed(&dir.join(COUNTER_SIDE_FILE), Dialect::Irisys)
        .into_iter()
        .enumerate()
    {
        assert_eq!(push.readings.len(), 1);
        let Reading::Cumulative {
            at_ms,
            ins: Some(ins),
            outs: Some(outs),
            ..
        } = push.readings[0]
        else {
            panic!("irisys gave something else than both registers");
        };
        if let Some((at, pi, po)) = prev {
            assert!(at_ms > at);
            let (di, dout) = if ins < pi || outs < po {
                decreases.push((k - 1, (pi, po), (ins, outs)));
                (ins, outs)
            } else {
                (ins - pi, outs - po)
            };
            // The 5 minutes before this log lie in the local day and hour of the log before.
            add(1, at, di, dout);
        }
        prev = Some((at_ms, ins, outs));
    }
    (days, decreases)
}

#[test]
fn every_line_parses_with_its_dialect() {
    for (name, params, dir, truth) in written() {
        let c = &truth.counter;
        let tz: Tz = truth.timezone.parse().unwrap();
        let main = parsed(&dir.path().join(COUNTER_MAIN_FILE), Dialect::XovisV5);
        assert_eq!(main.len() as u32, c.doors[0].pushes, "{name}");
        let mut last: Option<(i64, u64)> = None;
        for (line, push) in &main {
            assert_eq!(push.device, XOVIS_DEVICE, "{name}");
            assert!(push.ignored.is_empty());
            let (agent, id) = push.sequence.unwrap();
            assert_eq!(agent, XOVIS_AGENT_ID);
            let [Reading::Interval {
                line: logic,
                start_ms,
                end_ms,
                ..
            }] = &push.readings[..]
            else {
                panic!("{name}: not one interval");
            };
            assert_eq!(logic, XOVIS_LOGIC);
            assert_eq!(
                (start_ms % 60_000, end_ms - start_ms),
                (0, 60_000),
                "{name}"
            );
            // Times are written local, with the store's offset.
            let text = String::from_utf8(line.clone()).unwrap();
            let from = DateTime::<Utc>::from_timestamp_millis(*start_ms)
                .unwrap()
                .with_timezone(&tz)
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string();
            assert!(
                text.contains(&format!("\"from\":\"{from}\"")),
                "{name}: {text}"
            );
            assert!(text.contains("\"name\":\"fw\"") && text.contains("\"name\":\"bw\""));
            // Sequence ids count up by one per push; a retransmission repeats an old one.
            match last {
                Some((t, prev)) if *start_ms > t => {
                    assert_eq!(id, prev + 1, "{name}");
                    last = Some((*start_ms, id));
                }
                Some(_) => {}
                None => last = Some((*start_ms, id)),
            }
        }
        let side = parsed(&dir.path().join(COUNTER_SIDE_FILE), Dialect::Irisys);
        assert_eq!(side.len() as u32, c.doors[1].pushes, "{name}");
        let mut ids = Vec::new();
        for (line, push) in &side {
            assert_eq!(push.device, IRISYS_DEVICE, "{name}");
            let [Reading::Cumulative {
                line: l,
                at_ms,
                ins: Some(_),
                outs: Some(_),
            }] = &push.readings[..]
            else {
                panic!("{name}: not one reading with both registers");
            };
            assert_eq!(l, IRISYS_LINE);
            assert_eq!(at_ms % 300_000, 0);
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let entry = &v["CountLogs"][0];
            let regs: Vec<(&str, u64)> = entry["Counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["Name"].as_str().unwrap(),
                        r["RegisterId"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(regs, [("Line 1 In", 0), ("Line 1 Out", 1)]);
            assert!(entry["Timestamp"].as_str().unwrap().ends_with('Z'));
            ids.push(entry["LogEntryId"].as_u64().unwrap());
        }
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "{name}: LogEntryId"
        );
        // Pushes start before the first opening.
        let (open_us, _) = generate(params)
            .params()
            .open_close_us(NaiveDate::parse_from_str(&truth.period_days[0], "%Y-%m-%d").unwrap());
        let first_ms = |p: &Push| match &p.readings[0] {
            Reading::Interval { start_ms, .. } => *start_ms,
            Reading::Cumulative { at_ms, .. } => *at_ms,
        };
        for feed in [&main, &side] {
            let first = first_ms(&feed[0].1);
            assert!(first <= open_us / 1000 - WINDOW_BEFORE_OPEN_MS, "{name}");
            assert!(
                first > open_us / 1000 - WINDOW_BEFORE_OPEN_MS - 300_000,
                "{name}"
            );
        }
    }
}

#[test]
fn feeds_recover_the_true_footfall() {
    for (name, _, dir, truth) in written() {
        let c = &truth.counter;
        let tz: Tz = truth.timezone.parse().unwrap();
        let (days, _) = recover(dir.path(), tz);
        // Every day with counts is a truth day; every truth day matches.
        for day in days.keys() {
            assert!(c.days.iter().any(|d| &d.day == day), "{name}: {day}");
        }
        let mut footfall = 0;
        for d in &c.days {
            let got = days.get(&d.day).map_or([(0, 0); 2], |g| g.doors);
            let want: Vec<(u64, u64)> = d
                .doors
                .iter()
                .map(|x| (u64::from(x.ins), u64::from(x.outs)))
                .collect();
            assert_eq!(got.to_vec(), want, "{name} {}", d.day);
            assert_eq!(
                (got[0].0 + got[1].0, got[0].1 + got[1].1),
                (u64::from(d.footfall), u64::from(d.outs)),
                "{name} {}",
                d.day
            );
            let hours = days.get(&d.day).map_or(vec![0; 24], |g| g.hours.clone());
            let want: Vec<u64> = d.hours.iter().map(|&h| u64::from(h)).collect();
            assert_eq!(hours, want, "{name} {}", d.day);
            assert_eq!(d.hours.iter().sum::<u32>(), d.footfall);
            assert_eq!(
                d.doors.iter().map(|x| x.door.as_str()).collect::<Vec<_>>(),
                ["main", "side"]
            );
            footfall += d.footfall;
        }
        assert_eq!(footfall, c.footfall, "{name}");
        assert_eq!(c.outs, c.footfall, "{name}: everyone leaves");
        assert_eq!(c.doors[0].ins + c.doors[1].ins, c.footfall);
        assert_eq!(c.doors[0].outs + c.doors[1].outs, c.outs);
        // Every period day is listed, in order, and the list is sorted.
        assert!(c.days.windows(2).all(|w| w[0].day < w[1].day), "{name}");
        for day in &truth.period_days {
            assert!(c.days.iter().any(|d| &d.day == day), "{name}: {day}");
        }
        assert!(c.footfall > 0, "{name}");
    }
}

#[test]
fn crossings_after_midnight_count_on_the_next_local_day() {
    let (name, _, _, truth) = &written()[3];
    assert_eq!(*name, "past midnight");
    let c = &truth.counter;
    assert_eq!(truth.period_days, ["2025-03-13", "2025-03-14"]);
    let names: Vec<&str> = c.days.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(names, ["2025-03-13", "2025-03-14", "2025-03-15"]);
    // Open 20:00–02:00: entries from 20:00 to 01:40, none in daytime.
    for d in &c.days {
        for (h, &n) in d.hours.iter().enumerate() {
            assert!(n == 0 || h >= 20 || h <= 1, "{} {h}: {n}", d.day);
        }
    }
    assert!(c.days[2].footfall > 0 && c.days[0].hours[0] == 0);
}

#[test]
fn people_are_visits_walkins_and_undetected() {
    for (name, params, _, truth) in written() {
        let c = &truth.counter;
        let p = c.people;
        let visitors = truth
            .period_visits
            .iter()
            .filter(|v| v.kind == VisitKind::Visitor)
            .count() as u32;
        let short = truth
            .period_visits
            .iter()
            .filter(|v| v.kind == VisitKind::Passerby && v.person.is_some())
            .count() as u32;
        let walkins = truth
            .pos
            .purchases
            .iter()
            .filter(|x| x.visit.is_none())
            .count() as u32;
        // Rotating MACs: a visit with several MACs is still one person at the door.
        assert_eq!(
            (p.visitors, p.short_visits, p.unseen_visitors, p.walkins),
            (visitors, short, 0, walkins),
            "{name}"
        );
        assert_eq!(p.total(), c.footfall, "{name}");
        // Undetected people: round(n × s / (1 − s)) per business day.
        let s = params.undetected_share;
        let undetected: u32 = truth
            .period_days
            .iter()
            .map(|day| {
                let visits = truth.visits_on(day).filter(|v| v.person.is_some()).count();
                let walkins = truth
                    .purchases_on(day)
                    .filter(|x| x.visit.is_none())
                    .count();
                ((visits + walkins) as f64 * s / (1.0 - s)).round() as u32
            })
            .sum();
        assert_eq!(p.undetected, undetected, "{name}");
        if s > 0.0 {
            let share = f64::from(p.undetected) / f64::from(c.footfall);
            assert!((share - s).abs() < 0.03, "{name}: {share}");
        }
        // About a quarter use the side door.
        let side = f64::from(c.doors[1].ins) / f64::from(c.footfall);
        assert!((0.12..0.4).contains(&side), "{name}: side share {side}");
    }
    // The rotating case has visits with several MACs (each counted once above).
    let (name, _, _, truth) = &written()[1];
    assert_eq!(*name, "three days");
    assert!(truth.period_visits.iter().any(|v| v.macs.len() > 1));
}

#[test]
fn retransmitted_pushes_are_byte_identical() {
    for (name, _, dir, truth) in written() {
        let c = &truth.counter;
        let main = lines(&dir.path().join(COUNTER_MAIN_FILE));
        assert_eq!(c.duplicated_pushes as usize, DUPLICATES, "{name}");
        assert_eq!(c.duplicates.len(), DUPLICATES);
        let mut unique = main.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), main.len() - DUPLICATES, "{name}");
        for d in &c.duplicates {
            assert_eq!(d.door, "main");
            let (a, b) = (d.line as usize, d.repeated_at_line as usize);
            assert!(b > a && b - a <= 1 + DUPLICATES + 6, "{name}: {a} {b}");
            assert_eq!(main[a - 1], main[b - 1], "{name}");
            let push = parse(Dialect::XovisV5, &main[a - 1], &ParseContext::default()).unwrap();
            assert_eq!(push.sequence, Some((XOVIS_AGENT_ID, d.sequence_id)));
            let Reading::Interval {
                start_ms,
                ins,
                outs,
                ..
            } = push.readings[0]
            else {
                panic!();
            };
            assert_eq!(
                (start_ms as f64 / 1000.0, ins, outs),
                (d.start, d.ins, d.outs)
            );
            assert!(ins + outs > 0, "{name}: a retransmission should matter");
        }
        assert!(c.duplicates.windows(2).all(|w| w[0].line < w[1].line));
    }
}

#[test]
fn side_counter_resets_once_on_the_first_day() {
    for (name, params, dir, truth) in written() {
        let tz: Tz = truth.timezone.parse().unwrap();
        let r = truth.counter.reset.clone().unwrap();
        assert_eq!((r.door.as_str(), &r.day), ("side", &truth.period_days[0]));
        let (_, decreases) = recover(dir.path(), tz);
        assert_eq!(decreases.len(), 1, "{name}: {decreases:?}");
        let (k, before, after) = decreases[0];
        assert_eq!(r.last_log.line as usize, k + 1, "{name}");
        assert_eq!(r.first_log.line, r.last_log.line + 1);
        assert_eq!(r.first_log.log_entry_id, r.last_log.log_entry_id + 1);
        assert_eq!((r.last_log.ins, r.last_log.outs), before);
        assert_eq!((r.first_log.ins, r.first_log.outs), after);
        assert!(after.0 < before.0 && after.1 < before.1, "{name}");
        // Right after a log, for less than the 5 minutes to the next one.
        assert!(r.last_log.time < r.power_lost && r.power_lost < r.power_back);
        assert!(r.power_back < r.first_log.time, "{name}");
        assert_eq!(r.first_log.time - r.last_log.time, 300.0);
        // In the first day's opening hours, after the first 40 %.
        let (open_us, close_us) = generate(params)
            .params()
            .open_close_us(NaiveDate::parse_from_str(&truth.period_days[0], "%Y-%m-%d").unwrap());
        let (open, close) = (open_us as f64 / 1e6, close_us as f64 / 1e6);
        let at = (r.last_log.time - open) / (close - open);
        assert!((0.4..1.0).contains(&at), "{name}: {at}");
        // The truth's registers are the file's.
        let side = lines(&dir.path().join(COUNTER_SIDE_FILE));
        for log in [&r.last_log, &r.first_log] {
            let v: serde_json::Value =
                serde_json::from_slice(&side[log.line as usize - 1]).unwrap();
            let e = &v["CountLogs"][0];
            assert_eq!(e["LogEntryId"].as_u64(), Some(log.log_entry_id));
            assert_eq!(e["Counts"][0]["Value"].as_u64(), Some(log.ins));
            assert_eq!(e["Counts"][1]["Value"].as_u64(), Some(log.outs));
            let ts = DateTime::<Utc>::from_timestamp(log.time as i64, 0).unwrap();
            assert_eq!(
                e["Timestamp"].as_str(),
                Some(ts.format("%Y-%m-%dT%H:%M:%SZ").to_string().as_str())
            );
        }
    }
}

#[test]
fn feeds_are_deterministic() {
    // Defaults, three days with rotation, a DST change: enough kinds of period.
    for (name, params, a, ta) in &written()[..3] {
        let mut other = params.clone();
        other.seed += 1000;
        let (b, tb) = run(params);
        let (c, tc) = run(&other);
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
        for f in [COUNTER_MAIN_FILE, COUNTER_SIDE_FILE, "truth.json"] {
            assert!(
                read(a.path(), f) == read(b.path(), f),
                "{name}: {f} differs"
            );
            assert!(read(a.path(), f) != read(c.path(), f), "{name}: {f} same");
        }
        assert_eq!(ta.counter, tb.counter);
        assert_ne!(ta.counter, tc.counter);
    }
}

/// The two tables, exactly as the agent expects them.
pub(crate) const COUNTER_TABLES: &str = "\n[[sources.counter]]\nname = \"door-main\"\nprofile = \"counter/xovis-pc2s-v5\"\ndoor = \"main\"\nfile = \"counter-main.jsonl\"\n\n[[sources.counter]]\nname = \"door-side\"\nprofile = \"counter/irisys-vector-4d\"\ndoor = \"side\"\nfile = \"counter-side.jsonl\"\n";

#[test]
fn config_reads_both_feeds() {
    let (dir, truth) = run(&small(5));
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert_eq!(text.matches(COUNTER_TABLES).count(), 1);
    // Right after the POS table, before the portal.
    let at = text.find(COUNTER_TABLES).unwrap();
    assert!(text[..at].ends_with(&format!("file = \"{POS_FILE}\"\n")));
    let config: toml::Value = toml::from_str(&text).unwrap();
    let tables = config["sources"]["counter"].as_array().unwrap();
    let got: Vec<[&str; 4]> = tables
        .iter()
        .map(|t| {
            let keys: Vec<&str> = t.as_table().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["door", "file", "name", "profile"]);
            ["name", "profile", "door", "file"].map(|k| t[k].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            [
                COUNTER_MAIN_NAME,
                COUNTER_MAIN_PROFILE,
                "main",
                COUNTER_MAIN_FILE
            ],
            [
                COUNTER_SIDE_NAME,
                COUNTER_SIDE_PROFILE,
                "side",
                COUNTER_SIDE_FILE
            ],
        ]
    );
    for (d, t) in truth.counter.doors.iter().zip(&got) {
        assert_eq!([d.name.as_str(), &d.profile, &d.door, &d.path], *t);
        assert!(dir.path().join(&d.path).is_file());
    }
    assert_eq!(
        [
            &truth.counter.doors[0].dialect,
            &truth.counter.doors[1].dialect
        ],
        ["xovis-v5", "irisys"]
    );
}

/// The counters change nothing else: `config.toml` is the old one plus the two tables, the POS
/// capture and `truth.json` (outside `counter`) are byte-identical to what the simulator wrote
/// before the counters existed (hashes of `small(5)` taken then); period_tests checks the
/// other files.
#[test]
fn counters_leave_the_old_outputs_unchanged() {
    let (dir, _) = run(&small(5));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let config = String::from_utf8(read("config.toml")).unwrap();
    let old = config.replacen(COUNTER_TABLES, "", 1);
    assert_eq!(fnv64(old.as_bytes()), 0x3ee5_d8c1_953e_6365);
    assert_eq!(fnv64(&read(POS_FILE)), 0xe4f2_72f6_7419_4466);
    // `counter` is the last member of truth.json.
    let truth = String::from_utf8(read("truth.json")).unwrap();
    let at = truth.find(",\n  \"counter\": {").unwrap();
    let old = format!("{}\n}}\n", &truth[..at]);
    assert_eq!(fnv64(old.as_bytes()), 0x59dc_879f_3e49_b63e);
}

/// The undetected share changes only the counter feeds and `truth.counter`.
#[test]
fn undetected_share_changes_only_the_feeds() {
    let base = three_days(61);
    let mut none = base.clone();
    none.undetected_share = 0.0;
    let mut many = base.clone();
    many.undetected_share = 0.8;
    let (a, ta) = run(&base);
    let names: Vec<String> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| ![COUNTER_MAIN_FILE, COUNTER_SIDE_FILE, "truth.json"].contains(&n.as_str()))
        .collect();
    assert_eq!(names.len(), 3 + 2 + 1 + 2, "{names:?}"); // pcaps, portal, POS, config, secrets
    let strip = |t: &Truth| Truth {
        counter: CounterTruth::default(),
        ..t.clone()
    };
    let mut footfall = vec![ta.counter.footfall];
    for params in [none, many] {
        let (b, tb) = run(&params);
        for name in &names {
            let x = std::fs::read(a.path().join(name)).unwrap();
            let y = std::fs::read(b.path().join(name)).unwrap();
            assert!(x == y, "{name} changed with undetected_share");
        }
        assert_eq!(strip(&ta), strip(&tb));
        footfall.push(tb.counter.footfall);
        if params.undetected_share == 0.0 {
            assert_eq!(tb.counter.people.undetected, 0);
            assert_eq!(tb.counter.footfall, tb.counter.people.total());
        }
    }
    assert!(
        footfall[1] < footfall[0] && footfall[0] < footfall[2],
        "{footfall:?}"
    );
}

/// A truth file written before the counters loads with an empty `counter`.
#[test]
fn truth_without_counter_still_loads() {
    let (_, truth) = run(&small(3));
    let mut json = serde_json::to_value(&truth).unwrap();
    json.as_object_mut().unwrap().remove("counter");
    let old: Truth = serde_json::from_value(json).unwrap();
    assert_eq!(old.counter, CounterTruth::default());
    assert_eq!(old.pos, truth.pos);
}

#[test]
fn validate_and_clamp_the_undetected_share() {
    let p = small(1);
    assert_eq!(p.undetected_share, crate::DEFAULT_UNDETECTED_SHARE);
    assert_eq!(crate::DEFAULT_UNDETECTED_SHARE, 0.3);
    // (value, accepted, clamped value)
    let table: [(f64, bool, f64); 7] = [
        (0.0, true, 0.0),
        (0.3, true, 0.3),
        (0.9, true, 0.9),
        (0.95, false, 0.9),
        (1.0, false, 0.9),
        (-0.1, false, 0.0),
        (f64::NAN, false, 0.0),
    ];
    for (value, ok, clamped) in table {
        let mut q = small(1);
        q.undetected_share = value;
        match q.validate() {
            Ok(()) => assert!(ok, "{value} accepted"),
            Err(e) => assert!(!ok && e.contains("undetected_share"), "{value}: {e}"),
        }
        assert_eq!(generate(&q).params().undetected_share, clamped, "{value}");
    }
}

/// Where the power loss goes: (name, side-door crossings, expected (log index from the first
/// candidate's end, lost and back after the log, ms)); `None` when no log has a quiet moment.
#[test]
fn reset_goes_where_nobody_crosses() {
    use crate::counter::pick_reset;
    use rand::SeedableRng;
    let params = small(1); // open 10:00 for 2 hours
    let (open_us, close_us) = params.open_close_us(crate::tests::date());
    let (open, close) = (open_us / 1000, close_us / 1000);
    let logs: Vec<i64> = (open..=close).step_by(300_000).collect();
    let last = logs.len() - 2; // the last log followed by another one before closing
    let every = |step: usize| -> Vec<i64> { (open..=close).step_by(step).collect() };
    // Every 10 s, but 30 s quiet after the last candidate log.
    let mut busy = every(10_000);
    busy.retain(|&t| !(logs[last]..logs[last] + 30_000).contains(&t));
    busy.push(logs[last] + 30_000);
    busy.sort_unstable();
    let cases: [(&str, Vec<i64>, Option<(Option<usize>, i64, i64)>); 3] = [
        ("nobody", Vec::new(), Some((None, 5_000, 45_000))),
        ("busy", busy, Some((Some(last), 7_500, 15_000))),
        ("every second", every(1_000), None),
    ];
    for (name, side, want) in cases {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let got = pick_reset(&params, crate::tests::date(), &logs, &side, &mut rng);
        match (got, want) {
            (None, None) => {}
            (Some(r), Some((at, lost, back))) => {
                let t = logs[r.after_log];
                assert_eq!((r.lost_ms - t, r.back_ms - t), (lost, back), "{name}");
                // 40–70 % into the opening hours (the first log from the drawn moment on), or
                // later when that one is busy.
                let share = (t - open) as f64 / (close - open) as f64;
                match at {
                    Some(k) => assert_eq!(r.after_log, k, "{name}"),
                    None => assert!((0.4..0.75).contains(&share), "{name}: {share}"),
                }
                assert!(!side.iter().any(|&c| c >= t && c < r.back_ms), "{name}");
            }
            (got, want) => panic!("{name}: {got:?} vs {want:?}"),
        }
    }
}
