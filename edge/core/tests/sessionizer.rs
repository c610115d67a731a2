//! Table-driven and property tests of the sessionizer: visit boundaries, classification, zone
//! paths, staff, batch-split invariance and snapshot/restore invariance.

use std::collections::BTreeMap;

use edge_core::session::{RawSighting, Sessionizer, Sighting, SightingKind, Visit, VisitClass};
use edge_core::{snapshot, DeviceKey, LocalClock, MetricParams};
use proptest::prelude::*;

const S: i64 = 1000;
const MIN: i64 = 60 * S;

fn dev(n: u8) -> DeviceKey {
    DeviceKey([n; 16])
}

fn sight(t_s: i64, d: u8, zone: u8, rssi: i8) -> Sighting {
    Sighting {
        ts_ms: t_s * S,
        device: dev(d),
        zone,
        rssi_dbm: rssi,
        kind: SightingKind::Probe,
        randomized: false,
        fingerprint: 0,
        seq: None,
    }
}

fn new_sessionizer() -> Sessionizer {
    Sessionizer::new(MetricParams::default(), LocalClock::new(chrono_tz::UTC))
}

fn run(sightings: &[Sighting]) -> Vec<Visit> {
    let mut s = new_sessionizer();
    for x in sightings {
        s.observe(x);
    }
    s.flush();
    s.drain_closed()
}

/// A device seen every `every_s` seconds from `from_s` to `to_s` at one zone and RSSI.
fn steady(d: u8, zone: u8, rssi: i8, from_s: i64, to_s: i64, every_s: i64) -> Vec<Sighting> {
    (0..)
        .map(|i| from_s + i * every_s)
        .take_while(|t| *t <= to_s)
        .map(|t| sight(t, d, zone, rssi))
        .collect()
}

/// Raw-sightings rows merged as the store merges them: (bin, zone, device) → (first, last,
/// strongest, minutes).
type RawTable = BTreeMap<(i64, u8, DeviceKey), (i64, i64, i8, u16)>;

fn merged(rows: &[RawSighting]) -> RawTable {
    let mut t = RawTable::new();
    for r in rows {
        let e = t.entry((r.bin_ms, r.zone, r.device)).or_insert((
            r.first_ms,
            r.last_ms,
            r.best_rssi,
            0,
        ));
        e.0 = e.0.min(r.first_ms);
        e.1 = e.1.max(r.last_ms);
        e.2 = e.2.max(r.best_rssi);
        e.3 |= r.minutes;
    }
    t
}

fn sorted(mut v: Vec<Sighting>) -> Vec<Sighting> {
    v.sort_by_key(|s| (s.ts_ms, s.device, s.zone));
    v
}

#[test]
fn visit_boundaries_and_classes() {
    struct Case {
        name: &'static str,
        input: Vec<Sighting>,
        // (class, start s, end s)
        want: Vec<(VisitClass, i64, i64)>,
    }
    let table = vec![
        Case {
            name: "inside 10 min is a visitor",
            input: steady(1, 0, -50, 0, 600, 30),
            want: vec![(VisitClass::Visitor, 0, 600)],
        },
        Case {
            name: "inside 4 min is a passerby",
            input: steady(1, 0, -50, 0, 240, 30),
            want: vec![(VisitClass::Passerby, 0, 240)],
        },
        Case {
            name: "weak signal for an hour is a passerby",
            input: steady(1, 0, -80, 0, 3600, 30),
            want: vec![(VisitClass::Passerby, 0, 3600)],
        },
        Case {
            name: "below ignore threshold is not a sighting",
            input: steady(1, 0, -95, 0, 3600, 30),
            want: vec![],
        },
        Case {
            name: "a gap of exactly the timeout keeps one visit",
            input: [
                steady(1, 0, -50, 0, 300, 30),
                steady(1, 0, -50, 1200, 1500, 30),
            ]
            .concat(),
            want: vec![(VisitClass::Visitor, 0, 1500)],
        },
        Case {
            name: "a gap longer than the timeout splits the visit",
            input: [
                steady(1, 0, -50, 0, 400, 40),
                steady(1, 0, -50, 1301, 1701, 40),
            ]
            .concat(),
            want: vec![
                (VisitClass::Visitor, 0, 400),
                (VisitClass::Visitor, 1301, 1701),
            ],
        },
    ];
    for c in table {
        let got: Vec<(VisitClass, i64, i64)> = run(&sorted(c.input))
            .iter()
            .map(|v| (v.class, v.start_ms / S, v.end_ms / S))
            .collect();
        assert_eq!(got, c.want, "{}", c.name);
    }
}

/// Raw sightings: one row per 10-minute bin, zone and device, given out when the device is
/// heard in a later bin or its visit closes; frames below `ignore_below_dbm` are none.
#[test]
fn raw_sightings_are_rows_per_bin_zone_and_device() {
    // (bin s, zone, device, first s, last s, rssi, minutes).
    type Row = (i64, u8, u8, i64, i64, i8, u16);
    struct Case {
        name: &'static str,
        input: Vec<Sighting>,
        // Given out before the flush.
        before_flush: Vec<Row>,
        // Given out in all.
        all: Vec<Row>,
    }
    let table = vec![
        Case {
            name: "a row closes when the device is heard in the next bin",
            input: vec![
                sight(0, 1, 0, -60),
                sight(30, 1, 0, -50),
                sight(90, 1, 0, -70),
                sight(610, 1, 0, -55),
            ],
            before_flush: vec![(0, 0, 1, 0, 90, -50, 0b11)],
            all: vec![(0, 0, 1, 0, 90, -50, 0b11), (600, 0, 1, 610, 610, -55, 0b1)],
        },
        Case {
            name: "two zones heard by turns in one bin are two rows",
            input: vec![
                sight(0, 1, 0, -60),
                sight(1, 1, 1, -65),
                sight(200, 1, 0, -62),
                sight(201, 1, 1, -61),
            ],
            before_flush: vec![],
            all: vec![
                (0, 0, 1, 0, 200, -60, 0b1001),
                (0, 1, 1, 1, 201, -61, 0b1001),
            ],
        },
        Case {
            name: "too weak to be a sighting is no row",
            input: vec![sight(0, 1, 0, -95), sight(10, 2, 0, -60)],
            before_flush: vec![],
            all: vec![(0, 0, 2, 10, 10, -60, 0b1)],
        },
        Case {
            name: "a visit closed by the timeout gives out its row",
            input: vec![sight(0, 1, 0, -60), sight(2000, 2, 0, -60)],
            before_flush: vec![(0, 0, 1, 0, 0, -60, 0b1)],
            all: vec![
                (0, 0, 1, 0, 0, -60, 0b1),
                (1800, 0, 2, 2000, 2000, -60, 0b1000),
            ],
        },
    ];
    let rows = |v: &[Row]| -> Vec<RawSighting> {
        v.iter()
            .map(
                |&(bin, zone, d, first, last, best_rssi, minutes)| RawSighting {
                    bin_ms: bin * S,
                    zone,
                    device: dev(d),
                    first_ms: first * S,
                    last_ms: last * S,
                    best_rssi,
                    minutes,
                },
            )
            .collect()
    };
    for c in table {
        let mut s = new_sessionizer();
        for x in &c.input {
            s.observe(x);
        }
        let mut got = s.drain_raw();
        got.sort_by_key(|r| (r.bin_ms, r.zone, r.device));
        assert_eq!(got, rows(&c.before_flush), "{}: before the flush", c.name);
        s.flush();
        got.extend(s.drain_raw());
        got.sort_by_key(|r| (r.bin_ms, r.zone, r.device));
        assert_eq!(got, rows(&c.all), "{}", c.name);
    }
}

#[test]
fn zone_path_across_three_sniffers() {
    // Device 1 stands in zone 0 for 3 min, zone 1 for 5 min, zone 2 for 4 min; every sniffer
    // hears it, the own zone strongest by 12 dB per zone of distance.
    let mut input = Vec::new();
    let stays = [(0u8, 0i64, 180i64), (1, 180, 480), (2, 480, 720)];
    for &(zone, from, to) in &stays {
        for t in (from..to).step_by(20) {
            for sniffer in 0..3u8 {
                let dist = (i16::from(sniffer) - i16::from(zone)).unsigned_abs() as i8;
                input.push(sight(t, 1, sniffer, -48 - 12 * dist));
            }
        }
    }
    let visits = run(&sorted(input));
    assert_eq!(visits.len(), 1);
    let path: Vec<(u8, i64)> = visits[0].path.iter().map(|d| (d.zone, d.ms / S)).collect();
    let zones: Vec<u8> = path.iter().map(|p| p.0).collect();
    assert_eq!(zones, vec![0, 1, 2], "{path:?}");
    for (&(_, secs), &(_, from, to)) in path.iter().zip(&stays) {
        assert!((secs - (to - from)).abs() <= 40, "{path:?}");
    }
    assert_eq!(visits[0].class, VisitClass::Visitor);
}

/// An hour and a day, in seconds.
const H: i64 = 3600;
const DAY: i64 = 86_400;

/// Device `d` present 08:00–16:00 on each of the first `days` days.
fn workdays(d: u8, days: i64) -> Vec<Sighting> {
    (0..days)
        .flat_map(|day| steady(d, 0, -55, day * DAY + 8 * H, day * DAY + 16 * H, 60))
        .collect()
}

#[test]
fn staff_rule_over_three_days() {
    let mut input = workdays(7, 3);
    // A shopper on the third day.
    input.extend(steady(8, 0, -55, 2 * DAY + 10 * H, 2 * DAY + 11 * H, 60));
    let visits = run(&sorted(input));
    let classes: Vec<(u8, VisitClass)> = visits.iter().map(|v| (v.device.0[0], v.class)).collect();
    assert_eq!(
        classes,
        vec![
            (7, VisitClass::Visitor),
            (7, VisitClass::Visitor),
            (8, VisitClass::Visitor),
            (7, VisitClass::Staff)
        ]
    );
}

#[test]
fn visits_close_on_watermark_and_hours_seal() {
    let mut s = new_sessionizer();
    for x in steady(1, 0, -50, 0, 600, 30) {
        s.observe(&x);
    }
    s.advance(600 * S + 15 * MIN);
    assert!(
        s.drain_closed().is_empty(),
        "not closed at exactly the timeout"
    );
    s.advance(600 * S + 15 * MIN + 10 * S);
    assert_eq!(s.drain_closed().len(), 1);
    assert!(s.drain_sealed().is_empty(), "hour 0 seals at 01:15");
    s.advance(75 * MIN);
    let sealed = s.drain_sealed();
    assert_eq!(sealed.len(), 1);
    assert_eq!((sealed[0].revision, sealed[0].stats.visitors), (1, 1));
}

#[test]
fn late_sightings_are_counted_not_placed() {
    let mut s = new_sessionizer();
    s.observe(&sight(10_000, 1, 0, -50));
    s.observe(&sight(10, 2, 0, -50));
    assert_eq!(s.stats().too_late, 1);
}

/// A small random store: devices with random arrival, stay, zone and RSSI.
fn arb_day() -> impl Strategy<Value = Vec<Sighting>> {
    prop::collection::vec(
        (
            0u8..40,
            0i64..7200,
            1i64..2400,
            0u8..3,
            -88i8..-40,
            10i64..90,
        ),
        1..25,
    )
    .prop_map(|devices| {
        let mut v = Vec::new();
        for (d, from, len, zone, rssi, every) in devices {
            v.extend(steady(d, zone, rssi, from, from + len, every));
            v.extend(steady(
                d,
                (zone + 1) % 3,
                rssi.saturating_sub(9),
                from + 3,
                from + len,
                every,
            ));
        }
        sorted(v)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_batch_split_gives_the_same_visits(day in arb_day(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let whole = run(&day);
        let mut idx: Vec<usize> = cuts.iter().map(|c| c.index(day.len() + 1)).collect();
        idx.sort_unstable();
        let mut s = new_sessionizer();
        let mut got = Vec::new();
        let mut start = 0;
        for end in idx.into_iter().chain([day.len()]) {
            for x in &day[start..end] {
                s.observe(x);
            }
            if let Some(last) = day[..end].last() {
                s.advance(last.ts_ms);
            }
            got.extend(s.drain_closed());
            start = end;
        }
        s.flush();
        got.extend(s.drain_closed());
        prop_assert_eq!(got, whole);
    }

    #[test]
    fn snapshot_restore_at_any_point_gives_the_same_visits(day in arb_day(), cut in any::<prop::sample::Index>()) {
        let whole = run(&day);
        let cut = cut.index(day.len() + 1);
        let mut s = new_sessionizer();
        for x in &day[..cut] {
            s.observe(x);
        }
        let mut got = s.drain_closed();
        let mut raw = s.drain_raw();
        // Lent out (as to the store's writer) and encoded piecewise through a sink that takes
        // a few bytes per write: the same bytes as the buffered encoding, of the told length.
        let lent = s.take();
        prop_assert_eq!(s.open_count(), 0);
        let mut piecewise = Trickle(Vec::new());
        snapshot::encode_to(&lent, &mut piecewise).unwrap();
        let s = lent;
        let bytes = snapshot::encode(&s);
        prop_assert_eq!(&piecewise.0, &bytes);
        prop_assert_eq!(snapshot::encoded_len(&s), bytes.len());
        let mut r = snapshot::decode(&bytes, MetricParams::default(), LocalClock::new(chrono_tz::UTC)).unwrap();
        for x in &day[cut..] {
            r.observe(x);
        }
        r.flush();
        got.extend(r.drain_closed());
        prop_assert_eq!(got, whole);
        // The open raw-sightings rows travel in the snapshot: the same table as one run's.
        raw.extend(r.drain_raw());
        let mut one = new_sessionizer();
        for x in &day {
            one.observe(x);
        }
        one.flush();
        prop_assert_eq!(merged(&raw), merged(&one.drain_raw()));
    }
}

/// A sink that takes at most 3 bytes per write.
struct Trickle(Vec<u8>);

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn snapshot_rejects_garbage() {
    let p = MetricParams::default;
    let c = LocalClock::new(chrono_tz::UTC);
    assert!(snapshot::decode(b"nope", p(), c).is_err());
    assert!(snapshot::decode(b"SEc1\xff\xff\xff", p(), c).is_err());
}

#[test]
fn arrivals_fire_once_per_visit_when_the_device_first_comes_inside() {
    struct Case {
        name: &'static str,
        input: Vec<Sighting>,
        // (device, visit start s, arrival s)
        want: Vec<(u8, i64, i64)>,
    }
    let table = vec![
        Case {
            name: "strong from the first frame: arrival at the first sighting",
            input: steady(1, 0, -50, 100, 900, 30),
            want: vec![(1, 100, 100)],
        },
        Case {
            name: "outside (weak) first, then inside: arrival when it comes in",
            input: sorted(
                [
                    steady(1, 0, -85, 0, 300, 30),
                    steady(1, 0, -45, 330, 900, 30),
                ]
                .concat(),
            ),
            want: vec![(1, 0, 330)],
        },
        Case {
            name: "never inside: no arrival",
            input: steady(1, 0, -85, 0, 1800, 30),
            want: vec![],
        },
        Case {
            name: "in, out, in again within one visit: one arrival",
            input: sorted(
                [
                    steady(1, 0, -50, 0, 300, 30),
                    steady(1, 0, -88, 330, 600, 30),
                    steady(1, 0, -50, 630, 900, 30),
                ]
                .concat(),
            ),
            want: vec![(1, 0, 0)],
        },
        Case {
            name: "two visits (gap over the timeout): two arrivals",
            input: sorted(
                [
                    steady(1, 0, -50, 0, 300, 30),
                    steady(1, 0, -50, 2400, 2700, 30),
                ]
                .concat(),
            ),
            want: vec![(1, 0, 0), (1, 2400, 2400)],
        },
        Case {
            name: "two devices",
            input: sorted(
                [
                    steady(1, 0, -50, 0, 300, 30),
                    steady(2, 1, -60, 60, 300, 30),
                ]
                .concat(),
            ),
            want: vec![(1, 0, 0), (2, 60, 60)],
        },
    ];
    for case in table {
        let mut s = new_sessionizer();
        s.track_arrivals(true);
        let mut got = Vec::new();
        for x in &case.input {
            s.observe(x);
            got.extend(s.drain_arrivals());
        }
        let got: Vec<(u8, i64, i64)> = got
            .iter()
            .map(|a| (a.device.0[0], a.visit_start_ms / S, a.ts_ms / S))
            .collect();
        assert_eq!(got, case.want, "{}", case.name);
    }
    // Staff coming in to work are not announced; a shopper the same morning is.
    let mut input = workdays(7, 4);
    input.extend(steady(8, 0, -55, 3 * DAY + 10 * H, 3 * DAY + 11 * H, 60));
    let mut s = new_sessionizer();
    s.track_arrivals(true);
    let mut got = Vec::new();
    for x in &sorted(input) {
        s.observe(x);
        got.extend(
            s.drain_arrivals()
                .iter()
                .map(|a| (a.device.0[0], a.ts_ms / S / DAY)),
        );
    }
    // Device 7 arrives on days 0-2 (not staff yet), not on day 3; device 8 on day 3.
    assert_eq!(got, vec![(7, 0), (7, 1), (7, 2), (8, 3)]);
    // Off by default: nothing is kept.
    let mut s = new_sessionizer();
    for x in &steady(1, 0, -50, 0, 300, 30) {
        s.observe(x);
    }
    assert!(!s.has_arrivals());
}

#[test]
fn logins_bind_the_visit_to_a_person_and_make_it_a_visitor() {
    use edge_core::person::PersonKey;
    let p = |n: u8| PersonKey([n; 32]);
    struct Case {
        name: &'static str,
        sightings: Vec<Sighting>,
        // (time s, device, person)
        logins: Vec<(i64, u8, u8)>,
        staff: Vec<u8>,
        // (device, class, start s, end s, person, connected)
        want: Vec<(u8, VisitClass, i64, i64, Option<u8>, bool)>,
    }
    let table = vec![
        Case {
            name: "login inside a short visit: a connected visitor with the person",
            sightings: steady(1, 0, -50, 0, 120, 30),
            logins: vec![(60, 1, 9)],
            staff: vec![],
            want: vec![(1, VisitClass::Visitor, 0, 120, Some(9), true)],
        },
        Case {
            name: "no login: the same short visit is a passer-by",
            sightings: steady(1, 0, -50, 0, 120, 30),
            logins: vec![],
            staff: vec![],
            want: vec![(1, VisitClass::Passerby, 0, 120, None, false)],
        },
        Case {
            name: "a login with no frames is a visit of its own",
            sightings: vec![],
            logins: vec![(500, 2, 9)],
            staff: vec![],
            want: vec![(2, VisitClass::Visitor, 500, 500, Some(9), true)],
        },
        Case {
            name: "a login extends the visit it falls in",
            sightings: steady(1, 0, -50, 0, 600, 30),
            logins: vec![(700, 1, 9)],
            staff: vec![],
            want: vec![(1, VisitClass::Visitor, 0, 700, Some(9), true)],
        },
        Case {
            name: "a login after the visit timed out starts another visit",
            sightings: steady(1, 0, -50, 0, 600, 30),
            logins: vec![(600 + 20 * 60, 1, 9)],
            staff: vec![],
            want: vec![
                (1, VisitClass::Visitor, 0, 600, None, false),
                (1, VisitClass::Visitor, 1800, 1800, Some(9), true),
            ],
        },
        Case {
            name: "a person on the staff list is staff",
            sightings: steady(1, 0, -50, 0, 900, 30),
            logins: vec![(60, 1, 7)],
            staff: vec![7],
            want: vec![(1, VisitClass::Staff, 0, 900, Some(7), true)],
        },
    ];
    for case in table {
        let mut s = new_sessionizer();
        s.set_staff_persons(case.staff.iter().map(|n| p(*n)).collect());
        // Merge logins into the sightings in time order, as the pipeline does.
        let mut events: Vec<(i64, Option<&Sighting>, Option<(u8, u8)>)> = case
            .sightings
            .iter()
            .map(|x| (x.ts_ms, Some(x), None))
            .chain(
                case.logins
                    .iter()
                    .map(|(t, d, who)| (t * S, None, Some((*d, *who)))),
            )
            .collect();
        events.sort_by_key(|e| e.0);
        for (t, sighting, login) in events {
            match (sighting, login) {
                (Some(x), _) => s.observe(x),
                (None, Some((d, who))) => s.login(t, dev(d), p(who)),
                _ => {}
            }
        }
        s.flush();
        let got: Vec<(u8, VisitClass, i64, i64, Option<u8>, bool)> = s
            .drain_closed()
            .iter()
            .map(|v| {
                (
                    v.device.0[0],
                    v.class,
                    v.start_ms / S,
                    v.end_ms / S,
                    v.person.map(|k| k.0[0]),
                    v.connected,
                )
            })
            .collect();
        assert_eq!(got, case.want, "{}", case.name);
    }
}

/// One input event of a clock-step case.
#[derive(Clone)]
enum Ev {
    See(Vec<Sighting>),
    /// Advance the watermark to this second.
    Advance(i64),
    /// The input's clock stepped from this second to that one.
    Step(i64, i64),
}

fn feed(s: &mut Sessionizer, events: &[Ev]) -> Vec<edge_core::HourRecord> {
    let mut sealed = Vec::new();
    for e in events {
        match e {
            Ev::See(xs) => xs.iter().for_each(|x| s.observe(x)),
            Ev::Advance(t) => s.advance(t * S),
            Ev::Step(from, to) => s.clock_step(edge_core::ClockStep {
                from_ms: from * S,
                to_ms: to * S,
            }),
        }
        sealed.extend(s.drain_sealed());
    }
    s.flush();
    sealed.extend(s.drain_sealed());
    sealed
}

#[test]
fn clock_steps_end_open_visits_and_flag_the_hours_they_touch() {
    struct Case {
        name: &'static str,
        events: Vec<Ev>,
        // (start s, end s, clock_step)
        visits: Vec<(i64, i64, bool)>,
        // (hour, revision, visits counted, clock_step), in the order sealed
        hours: Vec<(i64, u32, u32, bool)>,
        too_late: u64,
    }
    let table = vec![
        Case {
            name: "+1 h in the middle of a visit: split at the step, both hours flagged",
            events: vec![
                Ev::See(steady(1, 0, -50, 3000, 3300, 30)),
                Ev::Step(3300, 3300 + H),
                Ev::See(steady(1, 0, -50, 3301 + H, 3600 + H, 30)),
            ],
            visits: vec![(3000, 3300, true), (3301 + H, 3571 + H, false)],
            hours: vec![(0, 1, 1, true), (1, 1, 1, true)],
            too_late: 0,
        },
        Case {
            name: "-1 h in the middle of a visit: not refused as late, not merged backwards",
            events: vec![
                Ev::See(steady(1, 0, -50, 3000 + H, 3300 + H, 30)),
                Ev::Step(3300 + H, 3300),
                Ev::See(steady(1, 0, -50, 3301, 3600, 30)),
            ],
            visits: vec![(3000 + H, 3300 + H, true), (3301, 3571, false)],
            hours: vec![(0, 1, 1, true), (1, 1, 1, true)],
            too_late: 0,
        },
        Case {
            name: "-1 h into a sealed hour: a new revision, flagged",
            events: vec![
                Ev::See(steady(1, 0, -50, 600, 900, 30)),
                Ev::See(steady(2, 0, -50, H + 900, H + 1200, 30)),
                Ev::Advance(H + 1200),
                Ev::Step(H + 1200, 1200),
                Ev::See(steady(3, 0, -50, 1201, 1500, 30)),
            ],
            visits: vec![
                (600, 900, false),
                (H + 900, H + 1200, true),
                (1201, 1471, false),
            ],
            hours: vec![(0, 1, 1, false), (0, 2, 2, true), (1, 1, 1, true)],
            too_late: 0,
        },
        Case {
            name: "a step within an hour flags that hour once",
            events: vec![
                Ev::See(steady(1, 0, -50, 600, 900, 30)),
                Ev::Step(900, 900 + 120),
                Ev::See(steady(1, 0, -50, 1021, 1200, 30)),
            ],
            visits: vec![(600, 900, true), (1021, 1171, false)],
            hours: vec![(0, 1, 2, true)],
            too_late: 0,
        },
        Case {
            name: "-3 days: the watermark goes back one day only; older sightings are late",
            events: vec![
                Ev::See(steady(1, 0, -50, 72 * H - 300, 72 * H, 30)),
                Ev::Step(72 * H, 0),
                Ev::See(steady(2, 0, -50, 1, 300, 30)),
                Ev::See(steady(3, 0, -50, 48 * H + 60, 48 * H + 360, 30)),
            ],
            visits: vec![
                (48 * H + 60, 48 * H + 360, false),
                (72 * H - 300, 72 * H, true),
            ],
            // Hours 48 to 72 flagged (25 records); hour 48 holds device 3, hour 71 device 1.
            hours: (48..=72)
                .map(|h| (h, 1, u32::from(h == 48 || h == 71), true))
                .collect(),
            too_late: 10,
        },
    ];
    for c in table {
        let mut s = new_sessionizer();
        let sealed = feed(&mut s, &c.events);
        let mut visits: Vec<(i64, i64, bool)> = s
            .drain_closed()
            .iter()
            .map(|v| (v.start_ms / S, v.end_ms / S, v.clock_step))
            .collect();
        // Visits closed at the step come out before those closed at the flush.
        visits.sort();
        let mut want = c.visits.clone();
        want.sort();
        assert_eq!(visits, want, "{}: visits", c.name);
        let mut hours: Vec<(i64, u32, u32, bool)> = sealed
            .iter()
            .map(|r| {
                (
                    r.hour_start_ms / (H * S),
                    r.revision,
                    r.stats.visitors + r.stats.passersby,
                    r.clock_step,
                )
            })
            .collect();
        if c.name.starts_with("-3 days") {
            hours.sort();
        }
        assert_eq!(hours, c.hours, "{}: hours", c.name);
        assert_eq!(s.stats().too_late, c.too_late, "{}: too late", c.name);
    }
}

#[test]
fn a_flagged_hour_survives_a_snapshot() {
    let mut s = new_sessionizer();
    for x in steady(1, 0, -50, 600, 900, 30) {
        s.observe(&x);
    }
    s.clock_step(edge_core::ClockStep {
        from_ms: 900 * S,
        to_ms: (900 + H) * S,
    });
    let bytes = snapshot::encode(&s);
    let mut r = snapshot::decode(
        &bytes,
        MetricParams::default(),
        LocalClock::new(chrono_tz::UTC),
    )
    .unwrap();
    r.flush();
    let sealed: Vec<(i64, bool)> = r
        .drain_sealed()
        .iter()
        .map(|h| (h.hour_start_ms / (H * S), h.clock_step))
        .collect();
    assert_eq!(sealed, vec![(0, true), (1, true)]);
}

/// Presence, two populations: a laptop (global MAC) is tracked; three iPhones of one model
/// probing with a new randomized MAC per scan are one fingerprint class, never tracked; a
/// randomized MAC that associates is tracked from then on; staff are heard, never present.
#[test]
fn presence_splits_tracked_from_untracked_and_leaves_staff_out() {
    let mut s = new_sessionizer();
    // Day 3, 10:00 (a bin start), in seconds.
    let t0 = 3 * DAY + 10 * H;
    let mut input = Vec::new();
    // Staff: device 7 worked three days before (08–16 h); on day 3 it is heard, not present.
    input.extend(workdays(7, 3));
    let t = |s: i64| t0 + s;
    // The laptop.
    input.extend(steady(1, 0, -50, t(0), t(590), 30));
    // Three iPhones, one class, a new MAC per scan every 40 s (MACs 100..).
    let mut mac = 100u8;
    for phone in 0..3 {
        for k in 0..14 {
            let mut x = sight(t(phone * 7 + k * 40), mac, 0, -55);
            x.randomized = true;
            x.fingerprint = 0xA1;
            input.push(x);
            mac = mac.wrapping_add(1);
        }
    }
    // A randomized MAC that associates: tracked.
    let mut a = sight(t(100), 60, 0, -60);
    a.randomized = true;
    a.fingerprint = 0xB2;
    a.kind = SightingKind::Data;
    input.push(a);
    // Staff at work in the same bin.
    input.extend(steady(7, 0, -50, t(0) - 2 * H, t(590), 60));
    for x in sorted(input) {
        s.observe(&x);
    }
    s.flush();
    let bins = s.drain_presence();
    let bin = bins
        .iter()
        .find(|b| b.start_ms == t0 * S && b.zone.is_none())
        .expect("the bin of the test");
    assert_eq!(
        bin.tracked_distinct, 2,
        "the laptop and the associated phone: {bin:?}"
    );
    assert_eq!(bin.classes, 1, "three iPhones, one class: {bin:?}");
    assert_eq!(bin.macs, 42);
    assert_eq!(bin.scans, 42, "scans 7 s apart are separate scans");
    assert_eq!(bin.minutes_heard, 10);
    let d = bin.devices();
    assert!(d.low <= d.value && d.value <= d.high, "{d:?}");
    // Present on average: the laptop and a tenth of the associated phone, tracked; three phones
    // in one class, of which the point estimate sees UNITS_PER_CLASS and the interval all three.
    let truth = bin.tracked + 3.0;
    assert!((bin.tracked - 1.1).abs() < 0.15, "{bin:?}");
    assert!(d.value > bin.tracked + 1.0 && d.value < truth, "{d:?}");
    assert!(
        d.high >= truth - 1e-9,
        "the interval holds the three phones: {d:?}"
    );
}

/// A probe-only randomized MAC's burst: frames every `every_s` from `from_s` to `to_s`, with
/// sequence numbers counting from `seq`.
fn random_probe(
    d: u8,
    fingerprint: u32,
    seq: u16,
    from_s: i64,
    to_s: i64,
    every_s: i64,
) -> Vec<Sighting> {
    steady(d, 0, -50, from_s, to_s, every_s)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.randomized = true;
            s.fingerprint = fingerprint;
            s.seq = Some((seq + i as u16) & 0x0fff);
            s
        })
        .collect()
}

/// One scan of a per-scan randomizing phone: three frames 0.3 s apart from MAC `d`, sequence
/// numbers from `seq`, at `at_s`.
fn scan(d: u8, fingerprint: u32, seq: u16, at_s: i64) -> Vec<Sighting> {
    (0..3)
        .map(|i| Sighting {
            ts_ms: at_s * S + i64::from(i) * 300,
            randomized: true,
            fingerprint,
            seq: Some(seq + i),
            ..sight(0, d, 0, -50)
        })
        .collect()
}

#[test]
fn probe_only_randomized_macs_are_devices_only_when_used_across_scans() {
    struct Case {
        name: &'static str,
        input: Vec<Sighting>,
        /// Visits given out: (device, group named after that device's fragment).
        visits: Vec<(u8, Option<u8>)>,
        untracked: u64,
        linked: u64,
        /// Presence counted its scans as a class.
        as_class: bool,
    }
    let assoc = |mut v: Vec<Sighting>| {
        for s in &mut v {
            s.kind = SightingKind::Data;
        }
        v
    };
    let table = vec![
        Case {
            name: "a per-scan MAC is presence, not a visit",
            input: scan(1, 7, 100, 0),
            visits: vec![],
            untracked: 1,
            linked: 0,
            as_class: true,
        },
        Case {
            name: "per-scan MACs are never linked, even when the counter seems to carry on",
            input: [scan(1, 7, 100, 0), scan(2, 7, 104, 40), scan(3, 7, 108, 80)].concat(),
            visits: vec![],
            untracked: 3,
            linked: 0,
            as_class: true,
        },
        Case {
            name: "a randomized MAC used across scans is a device by itself",
            input: random_probe(1, 7, 100, 0, 600, 30),
            visits: vec![(1, Some(1))],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
        Case {
            name: "a stable MAC that rotates, one candidate whose counter carries on: one device",
            input: sorted(
                [
                    random_probe(1, 7, 100, 0, 300, 30),
                    random_probe(2, 7, 115, 360, 900, 30),
                ]
                .concat(),
            ),
            visits: vec![(1, Some(1)), (2, Some(1))],
            untracked: 0,
            linked: 1,
            as_class: false,
        },
        Case {
            name: "a rotation whose counter restarts: two devices",
            input: sorted(
                [
                    random_probe(1, 7, 100, 0, 300, 30),
                    random_probe(2, 7, 3, 360, 900, 30),
                ]
                .concat(),
            ),
            visits: vec![(1, Some(1)), (2, Some(2))],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
        Case {
            name: "two phones of one model could be the predecessor: not linked",
            input: sorted(
                [
                    random_probe(1, 7, 100, 0, 300, 30),
                    random_probe(2, 7, 900, 0, 300, 30),
                    random_probe(3, 7, 115, 360, 900, 30),
                ]
                .concat(),
            ),
            visits: vec![(1, Some(1)), (2, Some(2)), (3, Some(3))],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
        Case {
            name: "another fingerprint does not link",
            input: sorted(
                [
                    random_probe(1, 7, 100, 0, 300, 30),
                    random_probe(2, 8, 115, 360, 900, 30),
                ]
                .concat(),
            ),
            visits: vec![(1, Some(1)), (2, Some(2))],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
        Case {
            name: "a randomized MAC in data frames has an identity while connected",
            input: assoc(scan(1, 7, 100, 0)),
            visits: vec![(1, None)],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
        Case {
            name: "a global MAC is a device",
            input: steady(1, 0, -50, 0, 600, 30),
            visits: vec![(1, None)],
            untracked: 0,
            linked: 0,
            as_class: false,
        },
    ];
    for c in table {
        let mut s = new_sessionizer();
        for x in &c.input {
            s.observe(x);
        }
        s.flush();
        let mut got: Vec<(u8, Option<String>)> = s
            .drain_closed()
            .into_iter()
            .map(|v| (v.device.0[0], v.group))
            .collect();
        got.sort();
        let want: Vec<(u8, Option<String>)> = c
            .visits
            .iter()
            // A group is named after its first piece.
            .map(|&(d, g)| (d, g.map(|g| run_group_key(&c.input, g))))
            .collect();
        assert_eq!(got, want, "{}", c.name);
        let st = s.stats();
        assert_eq!(
            (st.untracked_fragments, st.linked_fragments),
            (c.untracked, c.linked),
            "{}",
            c.name
        );
        // The untracked are presence, as their class; the tracked are presence as devices,
        // never also as a class (a stable MAC's first scan waited for its decision).
        let bins = s.drain_presence();
        let untracked_macs: u32 = bins
            .iter()
            .filter(|b| b.zone.is_none())
            .map(|b| b.macs)
            .sum();
        let tracked = bins
            .iter()
            .any(|b| b.zone.is_none() && b.tracked_distinct > 0);
        if c.as_class {
            assert!(untracked_macs > 0, "{}", c.name);
        } else {
            assert_eq!(untracked_macs, 0, "{}: counted twice", c.name);
            assert!(tracked, "{}", c.name);
        }
    }
}

/// The group key of device `d`'s fragment in `input`: its visit's natural key.
fn run_group_key(input: &[Sighting], d: u8) -> String {
    let first = input
        .iter()
        .filter(|s| s.device == dev(d))
        .map(|s| s.ts_ms)
        .min()
        .expect("the device has frames");
    format!("{}:{}", dev(d).to_hex(), first)
}
