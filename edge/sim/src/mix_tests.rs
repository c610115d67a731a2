//! Tests of the phone mixes (legacy output unchanged, realistic MAC / sequence-number
//! behaviours, per-model probe IEs), of the per-minute presence truth and of the co-present
//! case.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use edge_wire::ieee80211::{ie, Frame, FrameKind};
use edge_wire::radiotap;

use crate::models::{LEGACY_MODELS, MODELS};
use crate::plan::{Role, SEC};
use crate::tests::{date, read_pcap, read_truth, small};
use crate::truth::{Behaviour, Truth, Visit, VisitKind};
use crate::{generate, PhoneMix, Scenario, SimParams, CO_PRESENT_CLASSES, CO_PRESENT_PHONES};

/// FNV-1a 64 of `bytes`.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The `rot81` case of the golden test: two days, rotation, many randomized and connected.
fn rotating_two_days() -> SimParams {
    let mut p = small(81);
    p.visitors = 60;
    p.randomized_share = 0.6;
    p.connected_share = 0.3;
    p.history_days = 0;
    p.days = 2;
    p.mac_rotation_secs = Some(300);
    p
}

/// With the default `Legacy` mix every file is byte-identical to what the simulator wrote
/// before mixes existed, and so is `truth.json` up to its new last member `presence`. The
/// hashes were taken from the simulator before that change (every file, both cases).
#[test]
fn legacy_mix_output_is_byte_identical() {
    type Golden = [(&'static str, u64); 11];
    let cases: [(&str, SimParams, Golden); 2] = [
        (
            "small5",
            small(5),
            [
                ("config.toml", 0x0542_a5cd_bd5f_2905),
                ("counter-main.jsonl", 0x155d_b6c1_2a01_02d9),
                ("counter-side.jsonl", 0xe689_0078_d09a_9d45),
                ("portal-binauth.log", 0xd381_a853_03bb_3270),
                ("portal-detail", 0x33b3_af8b_12fa_aac6),
                ("pos-capture.bin", 0xe4f2_72f6_7419_4466),
                ("secrets.toml", 0x1869_856c_3e20_0df5),
                ("truth.json", 0x0160_9df0_1070_1159),
                ("wifi-apparel.pcap", 0xa946_619c_2fa2_944c),
                ("wifi-checkout.pcap", 0xd5f5_1394_962d_d21b),
                ("wifi-entrance.pcap", 0xed7a_9adc_8e8a_75a4),
            ],
        ),
        (
            "rot81",
            rotating_two_days(),
            [
                ("config.toml", 0x95f3_d9d5_4a67_2e5b),
                ("counter-main.jsonl", 0x8c5f_c9dc_1fdd_f101),
                ("counter-side.jsonl", 0x5201_8f2c_28ad_7afd),
                ("portal-binauth.log", 0xe2ad_ebfd_51c5_a425),
                ("portal-detail", 0xa892_1bf9_ec49_78b7),
                ("pos-capture.bin", 0xc932_2611_f8aa_8f43),
                ("secrets.toml", 0x4f07_6708_6a99_271e),
                ("truth.json", 0x0835_7cab_af53_1b01),
                ("wifi-apparel.pcap", 0x4a45_eba6_36c6_7777),
                ("wifi-checkout.pcap", 0x2956_4e6d_0fca_0ea4),
                ("wifi-entrance.pcap", 0x8b05_fa03_7674_ff74),
            ],
        ),
    ];
    for (name, params, golden) in cases {
        assert_eq!(params.phone_mix, PhoneMix::Legacy);
        let dir = tempfile::tempdir().unwrap();
        let truth = generate(&params).write(dir.path()).unwrap().truth;
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, golden.map(|g| g.0), "{name}");
        let actual: Vec<(&str, u64)> = golden
            .iter()
            .map(|&(file, _)| {
                let mut bytes = std::fs::read(dir.path().join(file)).unwrap();
                if file == "truth.json" {
                    // `presence` is the last member: cut it off.
                    let text = String::from_utf8(bytes).unwrap();
                    let at = text.find(",\n  \"presence\": [").unwrap();
                    bytes = format!("{}\n}}\n", &text[..at]).into_bytes();
                }
                (file, fnv64(&bytes))
            })
            .collect();
        assert_eq!(actual, golden, "{name}: actual hashes {actual:#x?}");
        // The legacy truth writes none of the realistic fields, but the class is derivable.
        assert!(!truth.presence.is_empty());
        for v in &truth.period_visits {
            assert_eq!(
                (v.behaviour, v.inside_from, v.inside_until),
                (None, None, None)
            );
            let expected = match (v.randomized, v.macs.len()) {
                (false, _) => Behaviour::Global,
                (true, 1) => Behaviour::StableRandom,
                (true, _) => Behaviour::Rotating,
            };
            assert_eq!(v.behaviour_class(), expected);
        }
    }
}

/// A realistic store: many visitors, connected ones, fixed devices, three zones.
fn realistic(seed: u64) -> SimParams {
    let mut p = small(seed);
    p.phone_mix = PhoneMix::Realistic;
    p.visitors = 80;
    p.passersby = 60;
    p.connected_share = 0.2;
    p
}

/// One clean client frame as the sniffers wrote it.
#[derive(Debug, Clone)]
struct Heard {
    ts_us: i64,
    seq: u16,
    kind: FrameKind,
    /// Probe requests: the IE bytes after the SSID element.
    ies_after_ssid: Option<Vec<u8>>,
    fingerprint: Option<u32>,
}

/// Clean client frames of every sniffer, by MAC string, in time order.
fn heard_by_mac(dir: &Path, truth: &Truth) -> HashMap<String, Vec<Heard>> {
    let mut out: HashMap<String, Vec<Heard>> = HashMap::new();
    for f in &truth.files {
        for r in read_pcap(&dir.join(&f.path)) {
            if r.data.len() < r.orig_len {
                continue;
            }
            let Ok(p) = edge_wire::presence::parse(127, &r.data) else {
                continue;
            };
            let header = radiotap::Header::new_checked(&r.data[..]).unwrap();
            let rt = radiotap::Repr::parse(&header).unwrap();
            let mut mpdu = &r.data[header.payload_offset()..];
            if rt.fcs_at_end() {
                mpdu = &mpdu[..mpdu.len() - 4];
            }
            let ies_after_ssid = (p.kind == FrameKind::ProbeRequest).then(|| {
                let frame = Frame::new_checked(mpdu).unwrap();
                let body = frame.body();
                assert_eq!(body[0], ie::SSID);
                body[2 + usize::from(body[1])..].to_vec()
            });
            out.entry(p.mac.to_string()).or_default().push(Heard {
                ts_us: r.ts_us,
                seq: p.seq.unwrap(),
                kind: p.kind,
                ies_after_ssid,
                fingerprint: p.fingerprint,
            });
        }
    }
    for frames in out.values_mut() {
        frames.sort_by_key(|f| (f.ts_us, f.seq));
    }
    out
}

/// One transmission per (time, seq): the copies of the other sniffers dropped.
fn distinct(frames: &[Heard]) -> Vec<&Heard> {
    let mut out: Vec<&Heard> = Vec::new();
    for f in frames {
        if out
            .last()
            .is_none_or(|l| (l.ts_us, l.seq) != (f.ts_us, f.seq))
        {
            out.push(f);
        }
    }
    out
}

fn is_local(mac: &str) -> bool {
    u8::from_str_radix(&mac[..2], 16).unwrap() & 0x03 == 0x02
}

/// How a class's sequence numbers go.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SeqRule {
    /// One counter for the visit, +1 per frame (a few lost frames allowed).
    Continuing,
    /// Random at every new MAC, +1 within a MAC.
    RandomPerMac,
    /// From 0–2 at every new MAC, +1 within it.
    FromZero,
}

/// What the truth and the frames of a probe-only visit of one class must show.
struct Expect {
    behaviour: Behaviour,
    /// Locally administered MACs (else global).
    local: bool,
    /// One MAC for the whole visit (else a new one per scan or channel).
    one_mac: bool,
    seq: SeqRule,
    /// Longest time one MAC is used, seconds (per-scan MACs only).
    mac_lifetime_s: f64,
    /// Most distinct frames per MAC (per-scan MACs only).
    frames_per_mac: usize,
    /// Fewest such visits expected among 80 visitors and 60 passers-by.
    min_visits: usize,
}

const EXPECT: [Expect; 5] = [
    Expect {
        behaviour: Behaviour::Ios16,
        local: true,
        one_mac: false,
        seq: SeqRule::RandomPerMac,
        mac_lifetime_s: 0.02,
        frames_per_mac: 3,
        min_visits: 40,
    },
    Expect {
        behaviour: Behaviour::Android13,
        local: true,
        one_mac: false,
        seq: SeqRule::FromZero,
        mac_lifetime_s: 1.0,
        frames_per_mac: 6,
        min_visits: 15,
    },
    Expect {
        behaviour: Behaviour::StableRandom,
        local: true,
        one_mac: true,
        seq: SeqRule::Continuing,
        mac_lifetime_s: f64::INFINITY,
        frames_per_mac: usize::MAX,
        min_visits: 4,
    },
    Expect {
        behaviour: Behaviour::Global,
        local: false,
        one_mac: true,
        seq: SeqRule::Continuing,
        mac_lifetime_s: f64::INFINITY,
        frames_per_mac: usize::MAX,
        min_visits: 4,
    },
    Expect {
        behaviour: Behaviour::Fixed,
        local: false,
        one_mac: true,
        seq: SeqRule::Continuing,
        mac_lifetime_s: f64::INFINITY,
        frames_per_mac: usize::MAX,
        min_visits: 4,
    },
];

/// Checks one probe-only visit against its class's expectations; returns (MAC changes,
/// changes whose sequence number simply continued, scans) for the per-scan classes.
fn check_visit(
    e: &Expect,
    v: &Visit,
    heard: &HashMap<String, Vec<Heard>>,
) -> (usize, usize, usize) {
    assert!(!v.macs.is_empty());
    for m in &v.macs {
        assert_eq!(is_local(m), e.local, "{m} of {v:?}");
    }
    if e.one_mac {
        assert_eq!(v.macs.len(), 1, "{v:?}");
    }
    let (mut changes, mut continued) = (0, 0);
    let mut last_seq: Option<u16> = None;
    let mut first_times = Vec::new();
    for m in &v.macs {
        let frames = distinct(&heard[m]);
        let seqs: Vec<u16> = frames.iter().map(|f| f.seq).collect();
        // Within one MAC the counter runs on (a few frames may be lost on every sniffer).
        for w in seqs.windows(2) {
            let step = w[1].wrapping_sub(w[0]) & 0x0fff;
            assert!((1..=16).contains(&step), "{m}: {seqs:?}");
        }
        if !e.one_mac {
            let span = (frames[frames.len() - 1].ts_us - frames[0].ts_us) as f64 / 1e6;
            assert!(span <= e.mac_lifetime_s, "{m} used for {span} s");
            assert!(frames.len() <= e.frames_per_mac, "{m}: {seqs:?}");
            first_times.push(frames[0].ts_us);
        }
        match e.seq {
            SeqRule::FromZero => assert!(seqs[0] <= 2 + 5 && seqs.iter().all(|&s| s < 16)),
            SeqRule::RandomPerMac | SeqRule::Continuing => {}
        }
        if let Some(prev) = last_seq {
            changes += 1;
            let step = seqs[0].wrapping_sub(prev) & 0x0fff;
            if (1..=3).contains(&step) {
                continued += 1;
            }
        }
        last_seq = seqs.last().copied();
    }
    // Scans: MACs whose first frames lie within 1.5 s of the scan's first.
    let mut scans: Vec<(i64, usize)> = Vec::new();
    for t in first_times {
        match scans.last_mut() {
            Some((start, n)) if t - *start <= 1_500_000 => *n += 1,
            _ => scans.push((t, 1)),
        }
    }
    for w in scans.windows(2) {
        let gap = (w[1].0 - w[0].0) as f64 / 1e6;
        let min_period = match e.behaviour {
            Behaviour::Ios16 => 17.0,
            _ => 20.0,
        };
        assert!(gap >= 0.9 * min_period - 1.5, "scans {gap} s apart: {v:?}");
    }
    if e.behaviour == Behaviour::Ios16 {
        assert!(scans.iter().all(|s| s.1 <= 4), "{scans:?}");
    }
    if e.behaviour == Behaviour::Android13 {
        assert!(
            scans.iter().all(|s| s.1 == 1),
            "one MAC per burst: {scans:?}"
        );
    }
    (changes, continued, scans.len())
}

#[test]
fn realistic_behaviours_show_on_the_air() {
    let dir = tempfile::tempdir().unwrap();
    let params = realistic(21);
    let truth = generate(&params).write(dir.path()).unwrap().truth;
    let heard = heard_by_mac(dir.path(), &truth);

    // Every client MAC on the air belongs to exactly one visit.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, v) in truth.period_visits.iter().enumerate() {
        assert_eq!(v.mac, v.macs[0]);
        for m in &v.macs {
            assert!(owner.insert(m, i).is_none(), "{m} in two visits");
        }
    }
    for m in heard.keys() {
        assert!(owner.contains_key(m.as_str()), "{m} not in truth");
    }

    let mut by_class: BTreeMap<Behaviour, usize> = BTreeMap::new();
    for e in &EXPECT {
        let (mut changes, mut continued, mut scans, mut macs) = (0, 0, 0, 0);
        let mut frames_per_mac = Vec::new();
        let visits: Vec<&Visit> = truth
            .period_visits
            .iter()
            .filter(|v| v.behaviour == Some(e.behaviour) && !v.connected)
            .collect();
        assert!(
            visits.len() >= e.min_visits,
            "{:?}: {} visits",
            e.behaviour,
            visits.len()
        );
        for v in &visits {
            let (c, k, s) = check_visit(e, v, &heard);
            (changes, continued, scans) = (changes + c, continued + k, scans + s);
            macs += v.macs.len();
            frames_per_mac.extend(v.macs.iter().map(|m| distinct(&heard[m]).len()));
            if e.behaviour == Behaviour::Fixed {
                assert_eq!(v.kind, VisitKind::Staff);
                assert_eq!(v.path.len(), 1, "a fixed device stays in its zone");
            }
        }
        by_class.insert(e.behaviour, visits.len());
        match e.seq {
            // A new random number continues the old one by chance only (3 in 4096).
            SeqRule::RandomPerMac => {
                assert!(
                    changes > 200 && continued * 50 <= changes,
                    "{continued}/{changes}"
                )
            }
            SeqRule::FromZero => assert!(changes > 50),
            SeqRule::Continuing => assert_eq!(changes, 0),
        }
        if e.behaviour == Behaviour::Ios16 {
            // 1–4 MACs per scan (2.5 on average), about 2 probes per MAC.
            let per_scan = macs as f64 / scans as f64;
            assert!((1.8..=3.2).contains(&per_scan), "{per_scan} MACs per scan");
            let mean = frames_per_mac.iter().sum::<usize>() as f64 / frames_per_mac.len() as f64;
            assert!((1.6..=2.4).contains(&mean), "{mean} frames per MAC");
        }
    }
    // Connected phones keep their per-network MAC and counter, whatever their class.
    let connected: Vec<&Visit> = truth.period_visits.iter().filter(|v| v.connected).collect();
    assert!(connected.len() >= 5);
    for v in connected {
        let e = EXPECT
            .iter()
            .find(|e| e.behaviour == Behaviour::StableRandom);
        let class = v.behaviour.unwrap();
        assert_eq!(v.macs.len(), 1, "{v:?}");
        assert_eq!(is_local(&v.mac), class != Behaviour::Global, "{v:?}");
        let local = Expect {
            local: is_local(&v.mac),
            ..*e.unwrap()
        };
        check_visit(&local, v, &heard);
    }
    assert_eq!(truth.totals.fixed, crate::DEFAULT_REALISTIC_FIXED_DEVICES);
    assert_eq!(by_class[&Behaviour::Fixed], 4);
    // Staff keep their global MAC.
    assert!(truth
        .visits
        .iter()
        .filter(|v| v.kind == VisitKind::Staff)
        .all(|v| !v.randomized));
}

/// Every probe carries exactly its model's IEs after the SSID: units of one model are
/// byte-identical, and the models tell themselves apart by fingerprint.
#[test]
fn units_of_one_model_send_identical_ies() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&realistic(22)).write(dir.path()).unwrap().truth;
    let heard = heard_by_mac(dir.path(), &truth);
    let model_ies: Vec<Vec<u8>> = MODELS
        .iter()
        .map(|m| {
            let mut b = vec![0; ie::buffer_len(m.ies)];
            ie::emit(m.ies, &mut b).unwrap();
            b
        })
        .collect();
    let mut units: BTreeMap<usize, usize> = BTreeMap::new();
    for v in &truth.period_visits {
        let mut models = BTreeSet::new();
        for m in &v.macs {
            for f in heard[m]
                .iter()
                .filter(|f| f.kind == FrameKind::ProbeRequest)
            {
                let ies = f.ies_after_ssid.as_ref().unwrap();
                let model = model_ies.iter().position(|b| b == ies);
                models.insert(model.expect("a model's exact IE bytes"));
            }
        }
        assert!(models.len() <= 1, "one model per device: {v:?}");
        if let Some(&m) = models.first() {
            if v.kind != VisitKind::Staff {
                assert!(m >= LEGACY_MODELS, "{} is a legacy model", MODELS[m].name);
            }
            *units.entry(m).or_default() += 1;
        }
    }
    // Many devices share a model (so a fingerprint class holds many devices).
    assert!(
        units.values().filter(|&&n| n >= 5).count() >= 8,
        "{units:?}"
    );
}

/// Presence per minute against the plan and the visits, for both mixes.
#[test]
fn presence_per_minute_follows_the_visits() {
    let mut legacy = small(31);
    legacy.zones = 4;
    let mut rotating = realistic(32);
    rotating.mac_rotation_secs = Some(120);
    for params in [legacy, realistic(31), rotating] {
        let dir = tempfile::tempdir().unwrap();
        let day = generate(&params);
        let truth = day.write(dir.path()).unwrap().truth;
        let zones = day.zone_names();
        let width = 1 + zones.len();
        assert_eq!(truth.presence.len() % width, 0);
        let main = day.plan.days.iter().find(|d| d.main).unwrap();
        let (open, close) = params.open_close_us(params.date);
        let first = truth.presence[0].minute;
        let last = truth.presence[truth.presence.len() - 1].minute;
        assert!(first * SEC <= open && (last + 60) * SEC >= close);
        let overlaps = |a: i64, b: i64, m: i64| a < (m + 60) * SEC && b > m * SEC;
        let mut busiest = 0;
        for (k, chunk) in truth.presence.chunks(width).enumerate() {
            let m = chunk[0].minute;
            assert_eq!(m, first + 60 * k as i64);
            assert_eq!(m % 60, 0);
            for (c, entry) in chunk.iter().enumerate() {
                assert_eq!(entry.minute, m);
                let zone = c.checked_sub(1);
                assert_eq!(entry.zone.as_deref(), zone.map(|z| zones[z]));
                // Recount from the plan.
                let mut want = [0u32; 4];
                for p in &main.presences {
                    let field = match p.role {
                        Role::Visitor | Role::ShortVisit => 0,
                        Role::Staff => 2,
                        Role::Fixed => 3,
                        Role::Passerby => continue,
                    };
                    let inside = p.stays(&main.stays).iter().any(|s| {
                        zone.is_none_or(|z| usize::from(s.zone) == z)
                            && overlaps(s.start_us, s.end_us, m)
                    });
                    if inside {
                        want[field] += 1;
                    }
                }
                let got = [entry.people, entry.devices, entry.staff, entry.fixed];
                assert_eq!(
                    [got[0], got[2], got[3]],
                    [want[0], want[2], want[3]],
                    "{entry:?}"
                );
                assert!(entry.devices <= entry.people);
            }
            // The store from the truth alone: visits with a person covering the minute.
            let store = &chunk[0];
            let visits = truth.visits.iter().filter(|v| v.person.is_some());
            if params.phone_mix == PhoneMix::Legacy {
                // Legacy visits carry no inside times: the dwell seen on the air is inside.
                let heard = visits
                    .filter(|v| v.start < (m + 60) as f64 && v.end > m as f64)
                    .count() as u32;
                assert!(heard <= store.devices, "{store:?}");
            } else {
                let covering = visits
                    .filter(|v| {
                        v.inside_from.unwrap() < (m + 60) as f64
                            && v.inside_until.unwrap() > m as f64
                    })
                    .count() as u32;
                assert_eq!(store.devices, covering, "{store:?}");
                let staff = truth
                    .visits
                    .iter()
                    .filter(|v| v.kind == VisitKind::Staff)
                    .filter(|v| v.inside_from.unwrap() < (m + 60) as f64)
                    .filter(|v| v.inside_until.unwrap() > m as f64);
                let fixed = staff
                    .clone()
                    .filter(|v| v.behaviour == Some(Behaviour::Fixed));
                assert_eq!(store.fixed as usize, fixed.count());
                assert_eq!(store.fixed + store.staff, staff.count() as u32);
            }
            busiest = busiest.max(store.people);
            let zone_people: u32 = chunk[1..].iter().map(|e| e.people).sum();
            assert!(zone_people >= store.people);
        }
        assert!(busiest >= 3, "{busiest}");
        // Nobody is inside before the first or after the last minute.
        let minutes = truth.presence.len() / width;
        assert!(minutes >= (params.open_hours * 60) as usize);
    }
}

/// The co-present case: 11 phones of 7 fingerprint classes, all inside for ~7 minutes.
#[test]
fn co_present_case_has_eleven_phones_in_seven_classes() {
    for (seed, zones) in [(1, 1), (2, 1), (3, 3)] {
        let mut params = SimParams::co_present_case(seed, date());
        params.zones = zones;
        assert_eq!(params.scenario, Scenario::CoPresent);
        assert!(params.validate().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let truth = generate(&params).write(dir.path()).unwrap().truth;
        let heard = heard_by_mac(dir.path(), &truth);
        assert_eq!(truth.visits.len(), CO_PRESENT_PHONES as usize);
        let mut classes: BTreeMap<Behaviour, usize> = BTreeMap::new();
        for v in &truth.visits {
            assert_eq!(v.kind, VisitKind::Visitor);
            assert!(!v.connected && v.randomized);
            *classes.entry(v.behaviour.unwrap()).or_default() += 1;
            let secs = v.inside_until.unwrap() - v.inside_from.unwrap();
            assert!((420.0..=450.0).contains(&secs), "{secs}");
        }
        assert_eq!(
            classes.into_iter().collect::<Vec<_>>(),
            [
                (Behaviour::Ios16, 8),
                (Behaviour::Android13, 2),
                (Behaviour::StableRandom, 1)
            ]
        );
        // 7 fingerprint classes on the air, by edge-wire's fingerprint and by IE bytes, and
        // far more MACs than phones.
        let probes = heard
            .values()
            .flatten()
            .filter(|f| f.kind == FrameKind::ProbeRequest);
        let fingerprints: HashSet<u32> = probes.clone().map(|f| f.fingerprint.unwrap()).collect();
        let ies: HashSet<&Vec<u8>> = probes.map(|f| f.ies_after_ssid.as_ref().unwrap()).collect();
        assert_eq!(
            (fingerprints.len(), ies.len()),
            (CO_PRESENT_CLASSES, CO_PRESENT_CLASSES)
        );
        assert!(heard.len() > 40, "{} MACs", heard.len());
        // Nobody else: no staff, passers-by or fixed devices; 11 people for ≥ 6 minutes.
        assert_eq!(
            heard.len(),
            truth.visits.iter().map(|v| v.macs.len()).sum::<usize>()
        );
        let store = truth.presence.iter().filter(|p| p.zone.is_none());
        let full = store
            .clone()
            .filter(|p| p.people == CO_PRESENT_PHONES && p.devices == CO_PRESENT_PHONES)
            .count();
        assert!(full >= 6, "{full} minutes with everyone");
        assert!(store.clone().all(|p| p.people <= CO_PRESENT_PHONES));
        assert!(store.clone().all(|p| p.staff == 0 && p.fixed == 0));
        let occupied = store.filter(|p| p.people > 0).count();
        assert!((7..=9).contains(&occupied), "{occupied} minutes");
        assert_eq!(truth.totals.visitors, CO_PRESENT_PHONES);
        assert_eq!((truth.totals.passersby, truth.totals.staff), (0, 0));
        assert_eq!(truth.counter.people.visitors, CO_PRESENT_PHONES);
        assert!(truth.pos.purchases.is_empty() && truth.portal.logins == 0);
    }
}

#[test]
fn phone_mix_parses_and_defaults_to_legacy() {
    let cases: [(&str, Option<PhoneMix>); 7] = [
        ("legacy", Some(PhoneMix::Legacy)),
        ("realistic", Some(PhoneMix::Realistic)),
        ("Realistic", Some(PhoneMix::Realistic)),
        (" LEGACY ", Some(PhoneMix::Legacy)),
        ("", None),
        ("modern", None),
        ("realistic2026", None),
    ];
    for (text, want) in cases {
        let got = text.parse::<PhoneMix>();
        assert_eq!(got.clone().ok(), want, "{text:?}");
        if let Err(e) = got {
            assert!(e.contains("legacy, realistic"), "{e}");
        }
    }
    for mix in PhoneMix::ALL {
        assert_eq!(mix.to_string().parse::<PhoneMix>(), Ok(mix));
    }
    assert_eq!(PhoneMix::NAMES, PhoneMix::ALL.map(PhoneMix::as_str));
    let shares: f64 = PhoneMix::REALISTIC_SHARES.iter().map(|s| s.1).sum();
    assert!((shares - 1.0).abs() < 1e-12);

    let mut p = SimParams::new(1, date(), 10, 2);
    assert_eq!(
        (p.phone_mix, p.fixed_devices, p.scenario),
        (PhoneMix::Legacy, None, Scenario::StoreDay)
    );
    assert_eq!(p.fixed_device_count(), 0);
    p.phone_mix = PhoneMix::Realistic;
    assert_eq!(
        p.fixed_device_count(),
        crate::DEFAULT_REALISTIC_FIXED_DEVICES
    );
    p.fixed_devices = Some(crate::MAX_FIXED_DEVICES + 1);
    assert!(p.validate().unwrap_err().contains("fixed_devices"));
    assert_eq!(
        generate(&p).params().fixed_devices,
        Some(crate::MAX_FIXED_DEVICES)
    );
    p.fixed_devices = Some(0);
    assert!(p.validate().is_ok());
}

#[test]
fn realistic_mix_is_deterministic_and_differs_from_legacy() {
    let mut p = small(41);
    p.phone_mix = PhoneMix::Realistic;
    p.days = 2;
    p.mac_rotation_secs = Some(200);
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&p).write(a.path()).unwrap();
    generate(&p).write(b.path()).unwrap();
    generate(&small(41)).write(c.path()).unwrap();
    for e in std::fs::read_dir(a.path()).unwrap() {
        let name = e.unwrap().file_name();
        let x = std::fs::read(a.path().join(&name)).unwrap();
        assert!(
            x == std::fs::read(b.path().join(&name)).unwrap(),
            "{name:?}"
        );
    }
    let pcap = "wifi-entrance.pcap";
    assert!(
        std::fs::read(a.path().join(pcap)).unwrap() != std::fs::read(c.path().join(pcap)).unwrap()
    );
    // Rotation turns the probe-only stable-random phones into rotating ones, and only them.
    let truth = read_truth(a.path());
    let mut probe_only = BTreeSet::new();
    for v in &truth.period_visits {
        let b = v.behaviour.unwrap();
        if !v.connected {
            probe_only.insert(b);
        }
        if b == Behaviour::Rotating {
            assert!(!v.connected && v.randomized);
        }
        assert_eq!(v.randomized, b.randomized(), "{v:?}");
    }
    assert!(probe_only.contains(&Behaviour::Rotating));
    assert!(!probe_only.contains(&Behaviour::StableRandom));
}

/// Truth files without the mix fields (older simulators) still load.
#[test]
fn truth_without_mix_fields_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&realistic(5)).write(dir.path()).unwrap().truth;
    let mut json = serde_json::to_value(&truth).unwrap();
    let doc = json.as_object_mut().unwrap();
    assert!(doc.remove("presence").is_some());
    assert!(doc["totals"]
        .as_object_mut()
        .unwrap()
        .remove("fixed")
        .is_some());
    for list in ["visits", "period_visits"] {
        for v in doc[list].as_array_mut().unwrap() {
            let v = v.as_object_mut().unwrap();
            for k in ["behaviour", "inside_from", "inside_until"] {
                v.remove(k);
            }
        }
    }
    let old: Truth = serde_json::from_value(json).unwrap();
    assert!(old.presence.is_empty());
    assert_eq!(old.totals.fixed, 0);
    assert!(old
        .visits
        .iter()
        .all(|v| v.behaviour.is_none() && v.inside_from.is_none()));
    // The written names.
    let text = std::fs::read_to_string(dir.path().join("truth.json")).unwrap();
    for b in Behaviour::ALL {
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, format!("\"{}\"", b.as_str()));
    }
    for name in ["\"ios16\"", "\"android13\"", "\"fixed\"", "\"presence\""] {
        assert!(text.contains(name), "{name}");
    }
    // Only passers-by on the street lack inside times.
    for v in &truth.period_visits {
        let street = v.kind == VisitKind::Passerby && v.person.is_none();
        assert_eq!(v.inside_from.is_none(), street, "{v:?}");
        if let (Some(a), Some(b)) = (v.inside_from, v.inside_until) {
            assert!((b - a - v.inside_secs).abs() < 1e-3);
        }
    }
}
