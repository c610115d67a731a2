//! Crate tests: determinism, file formats, truth consistency and the RSSI model.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::radio::{mean_rssi_dbm, sniffer_x, NOISE_SIGMA_DB, ZONE_JITTER_M};
use crate::truth::{Truth, VisitKind};
use crate::{generate, SimParams, ZONE_NAMES};

pub(crate) fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
}

/// A small day: quick in debug builds, still every device kind and all zones' quirks.
pub(crate) fn small(seed: u64) -> SimParams {
    let mut p = SimParams::new(seed, date(), 40, 3);
    p.open_hours = 2;
    p.history_days = 1;
    p.staff = 2;
    p
}

/// One pcap record: timestamp µs, original length, captured bytes.
pub(crate) struct Record {
    pub ts_us: i64,
    pub orig_len: usize,
    pub data: Vec<u8>,
}

/// Reads a classic pcap file through edge-wire's views, checking its header (little-endian
/// microsecond magic, linktype 127).
pub(crate) fn read_pcap(path: &Path) -> Vec<Record> {
    use edge_wire::pcap::{self, FileHeader, RecordHeader, RecordHeaderRepr};
    let bytes = std::fs::read(path).unwrap();
    let header = FileHeader::new_checked(&bytes[..]).unwrap();
    assert_eq!(header.magic(), pcap::MAGIC_MICROS);
    assert!(!header.nanosecond());
    assert_eq!(header.linktype(), pcap::LINKTYPE_IEEE802_11_RADIOTAP);
    let order = header.byte_order();
    let mut out = Vec::new();
    let mut at = pcap::FILE_HEADER_LEN;
    while at < bytes.len() {
        let rh = RecordHeader::new_checked(&bytes[at..], order).unwrap();
        let r = RecordHeaderRepr::parse(&rh).unwrap();
        at += pcap::RECORD_HEADER_LEN;
        let incl = r.incl_len as usize;
        assert!(r.incl_len <= r.orig_len);
        out.push(Record {
            ts_us: r.ts_micros(false),
            orig_len: r.orig_len as usize,
            data: bytes[at..at + incl].to_vec(),
        });
        at += incl;
    }
    assert_eq!(at, bytes.len());
    out
}

/// JSON float parsing may be off by one ulp, so compare times and durations with a tolerance.
pub(crate) fn assert_truth_close(a: &Truth, b: &Truth) {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-6 * x.abs().max(1.0);
    assert_eq!(
        (
            a.seed,
            &a.date,
            &a.timezone,
            &a.zones,
            &a.files,
            &a.portal,
            &a.period_days
        ),
        (
            b.seed,
            &b.date,
            &b.timezone,
            &b.zones,
            &b.files,
            &b.portal,
            &b.period_days
        )
    );
    let (t, u) = (a.totals, b.totals);
    assert_eq!(
        (
            t.visitors,
            t.passersby,
            t.staff,
            t.sightings,
            t.randomized_sightings
        ),
        (
            u.visitors,
            u.passersby,
            u.staff,
            u.sightings,
            u.randomized_sightings
        )
    );
    assert!(close(
        t.randomized_sightings_share,
        u.randomized_sightings_share
    ));
    for (xs, ys) in [(&a.visits, &b.visits), (&a.period_visits, &b.period_visits)] {
        assert_eq!(xs.len(), ys.len());
        for (x, y) in xs.iter().zip(ys) {
            assert_eq!(
                (
                    &x.mac,
                    x.kind,
                    x.randomized,
                    x.connected,
                    &x.phone,
                    x.login,
                    x.path.len()
                ),
                (
                    &y.mac,
                    y.kind,
                    y.randomized,
                    y.connected,
                    &y.phone,
                    y.login,
                    y.path.len()
                )
            );
            assert_eq!(
                (&x.day, x.person, &x.repeat, &x.macs),
                (&y.day, y.person, &y.repeat, &y.macs)
            );
            assert!(close(x.start, y.start) && close(x.end, y.end));
            assert!(close(x.inside_secs, y.inside_secs));
            for (p, q) in x.path.iter().zip(&y.path) {
                assert_eq!(p.zone, q.zone);
                assert!(close(p.secs, q.secs));
            }
        }
    }
}

pub(crate) fn read_truth(dir: &Path) -> Truth {
    let f = std::fs::File::open(dir.join("truth.json")).unwrap();
    serde_json::from_reader(f).unwrap()
}

#[test]
fn same_params_same_bytes_different_seed_differs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let wa = generate(&small(5)).write(a.path()).unwrap();
    generate(&small(5)).write(b.path()).unwrap();
    generate(&small(6)).write(c.path()).unwrap();
    let mut names: Vec<String> = wa
        .files
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.extend(
        [
            "truth.json",
            "config.toml",
            "secrets.toml",
            "portal-detail",
            "portal-binauth.log",
        ]
        .map(String::from),
    );
    for name in &names {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(x == y, "{name} differs between identical runs");
    }
    for name in [
        "wifi-entrance.pcap",
        "truth.json",
        "secrets.toml",
        "portal-detail",
        "portal-binauth.log",
    ] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let z = std::fs::read(c.path().join(name)).unwrap();
        assert!(x != z, "{name} identical for different seeds");
    }
    // Writing the same Day twice is also identical (write consumes no state).
    let day = generate(&small(5));
    let d = tempfile::tempdir().unwrap();
    day.write(d.path()).unwrap();
    assert_eq!(
        std::fs::read(d.path().join("wifi-apparel.pcap")).unwrap(),
        std::fs::read(a.path().join("wifi-apparel.pcap")).unwrap()
    );
}

#[test]
fn written_files_match_truth() {
    let dir = tempfile::tempdir().unwrap();
    let params = small(11);
    let written = generate(&params).write(dir.path()).unwrap();
    let truth = read_truth(dir.path());
    assert_truth_close(&truth, &written.truth);
    assert_eq!(truth.seed, 11);
    assert_eq!(truth.date, "2025-03-14");
    assert_eq!(truth.timezone, "Asia/Shanghai");
    assert_eq!(truth.zones, ["entrance", "apparel", "checkout"]);
    assert_eq!(
        (
            truth.totals.visitors,
            truth.totals.passersby,
            truth.totals.staff
        ),
        (params.visitors, params.passersby, params.staff)
    );
    // Devices with no clean frame are left out, but almost everyone is seen.
    let staff = truth.visits_of(VisitKind::Staff).count();
    assert_eq!(staff, params.staff as usize);
    assert!(truth.visits.len() as u32 >= (params.visitors + params.passersby) * 9 / 10);
    let macs: std::collections::HashSet<_> = truth.visits.iter().map(|v| &v.mac).collect();
    assert_eq!(macs.len(), truth.visits.len(), "MACs are unique per device");

    assert_eq!(truth.files.len(), 3);
    for (f, w) in truth.files.iter().zip(&written.files) {
        assert_eq!(dir.path().join(&f.path), w.path);
        assert_eq!(f.frames, w.frames);
        let records = read_pcap(&w.path);
        assert_eq!(records.len() as u64, f.frames, "{}", f.path);
        assert!(records.windows(2).all(|r| r[0].ts_us <= r[1].ts_us));
        let truncated = records.iter().filter(|r| r.data.len() < r.orig_len).count() as u64;
        assert_eq!(truncated, f.injected.truncated, "{}", f.path);
        assert!(f.injected.beacons > 0);
    }
    // Only the FCS sniffer has FCS mismatches.
    assert_eq!(truth.files[0].injected.fcs_mismatch, 0);
    assert_eq!(truth.files[2].injected.fcs_mismatch, 0);
}

#[test]
fn visit_kinds_follow_inside_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = SimParams::new(3, date(), 200, 4);
    params.open_hours = 3;
    params.history_days = 0;
    let truth = generate(&params).write(dir.path()).unwrap().truth;
    let mut short = 0;
    for v in &truth.visits {
        let sum: f64 = v.path.iter().map(|s| s.secs).sum();
        assert!((sum - v.inside_secs).abs() < 1e-6);
        assert!(v.start <= v.end);
        match v.kind {
            VisitKind::Staff => assert!(v.inside_secs >= 6.0 * 3600.0),
            VisitKind::Visitor => {
                assert!(v.inside_secs >= 360.0, "{v:?}");
                assert_eq!(v.path[0].zone, "entrance");
                assert!(v.path.len() >= 2);
                assert!(v.path.windows(2).all(|w| w[0].zone != w[1].zone));
                assert!(v.path.iter().all(|s| s.secs >= 90.0));
                // Dwell seen on the air is close to the planned inside time.
                assert!(v.end - v.start <= v.inside_secs + 1.0);
                assert!(v.end - v.start >= v.inside_secs - 120.0, "{v:?}");
            }
            VisitKind::Passerby => {
                assert!(v.inside_secs < 300.0, "{v:?}");
                assert!(!v.connected);
                if v.inside_secs > 0.0 {
                    short += 1;
                }
            }
        }
        assert_eq!(v.randomized, v.mac_is_local());
    }
    assert!(short > 0, "some short visits");
    assert!(truth.visits.iter().any(|v| v.connected));
    assert!(truth.visits.iter().any(|v| v.randomized));
}

impl crate::truth::Visit {
    fn mac_is_local(&self) -> bool {
        let b = u8::from_str_radix(&self.mac[..2], 16).unwrap();
        b & 0x02 != 0
    }
}

#[test]
fn rssi_separation_between_zones() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for zone in 0..ZONE_NAMES.len() {
        let mut sums = [0.0f64; 8];
        let n = 20_000;
        for _ in 0..n {
            let x = sniffer_x(zone) + rng.gen_range(-ZONE_JITTER_M..ZONE_JITTER_M);
            for (s, sum) in sums.iter_mut().enumerate() {
                // Noise is zero-mean; draw it anyway so the test covers the full model.
                let noise: f64 = rng.gen_range(-1.0..1.0) * NOISE_SIGMA_DB;
                *sum += mean_rssi_dbm(x, sniffer_x(s)) + noise;
            }
        }
        let own = sums[zone] / f64::from(n);
        assert!(own > -70.0, "zone {zone} device is inside: {own}");
        for (s, sum) in sums.iter().enumerate() {
            if s != zone {
                let other = sum / f64::from(n);
                assert!(
                    own - other >= 8.0,
                    "zone {zone}: own {own:.1} vs {s} {other:.1}"
                );
            }
        }
    }
}

#[test]
fn passersby_stay_weak() {
    // Model: the closest a passer-by gets is still below the inside threshold.
    let nearest = mean_rssi_dbm(crate::plan::PASSERBY_NEAREST_X_M, 0.0);
    assert!(nearest < -74.0, "{nearest}");
    // Data: per-device mean RSSI in the written entrance pcap.
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(21)).write(dir.path()).unwrap().truth;
    let rssi = rssi_by_mac(&dir.path().join("wifi-entrance.pcap"));
    let mut checked = 0;
    for v in truth.visits_of(VisitKind::Passerby) {
        if v.inside_secs > 0.0 {
            continue; // short visits do come inside
        }
        if let Some(vals) = rssi.get(&v.mac) {
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            assert!(mean < -70.0, "{} mean {mean}", v.mac);
            checked += 1;
        }
    }
    assert!(checked > 10);
}

/// RSSI values per transmitter MAC in one pcap (frames the agent's parser accepts).
fn rssi_by_mac(path: &Path) -> HashMap<String, Vec<f64>> {
    let mut out: HashMap<String, Vec<f64>> = HashMap::new();
    for r in read_pcap(path) {
        if let Ok(p) = edge_wire::presence::parse(127, &r.data) {
            out.entry(p.mac.to_string())
                .or_default()
                .push(f64::from(p.rssi_dbm));
        }
    }
    out
}

#[test]
fn config_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let day = generate(&small(9));
    let written = day.write(dir.path()).unwrap();
    let config = std::fs::read_to_string(&written.config_path).unwrap();
    assert_eq!(config, day.config_toml());
    assert!(config.starts_with(
        "# store-edge configuration written by `store-edge simulate` (seed 9).\n[store]\n"
    ));
    for zone in ["entrance", "apparel", "checkout"] {
        assert!(config.contains(&format!(
            "[[sources.wifi]]\nzone = \"{zone}\"\npcap = \"wifi-{zone}.pcap\"\n"
        )));
    }
    assert_eq!(config.matches("[[sources.wifi]]").count(), 3);
    assert!(config.ends_with(
        "\n[[sources.portal]]\nformat = \"freeradius-detail\"\npath = \"portal-detail\"\n# a saved log: read it to its end\nfollow = false\n"
    ));
    let secrets = std::fs::read_to_string(&written.secrets_path).unwrap();
    assert!(secrets.starts_with("# SIMULATION ONLY: derived from the seed, not secret\n"));
    let value = |name: &str| {
        let prefix = format!("{name} = \"");
        secrets
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap()
            .to_string()
    };
    let (key, tenant) = (value("device_key_secret"), value("tenant_secret"));
    for k in [&key, &tenant] {
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(key, tenant);
    assert!(secrets
        .contains("# SIMULATION ONLY: derived from the seed, not secret\ntenant_secret = \""));
    // The device-key secret of a seed did not change when the tenant secret was added.
    assert!(generate(&small(5)).secrets_toml().contains(
        "device_key_secret = \"be9caf609d6ff9fdb1569d8f7e71571e6d14ce2388b49f5e19043639494a7a5b\"\n"
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written.secrets_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn timing_300_visitors_3_zones() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let written = generate(&SimParams::new(1, date(), 300, 3))
        .write(dir.path())
        .unwrap();
    let took = t0.elapsed();
    let frames: u64 = written.files.iter().map(|f| f.frames).sum();
    assert!(frames > 100_000, "{frames}");
    // The 2 s budget is for optimized builds; debug builds get a generous allowance.
    let budget = if cfg!(debug_assertions) { 20.0 } else { 2.0 };
    assert!(took.as_secs_f64() < budget, "took {took:?}");
}

#[test]
fn one_zone_and_eight_zones() {
    for zones in [1u8, 8] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = SimParams::new(2, date(), 20, zones);
        p.open_hours = 1;
        p.history_days = 0;
        p.staff = 1;
        let w = generate(&p).write(dir.path()).unwrap();
        assert_eq!(w.files.len(), usize::from(zones));
        for v in w.truth.visits_of(VisitKind::Visitor) {
            if zones == 1 {
                assert_eq!(v.path.len(), 1);
                assert!(v.inside_secs >= 360.0 && v.inside_secs <= 3600.0);
            }
        }
    }
}

#[test]
fn frames_parse_as_the_agent_would() {
    use edge_wire::presence::{self, Skip};
    use edge_wire::radiotap;
    let dir = tempfile::tempdir().unwrap();
    let params = small(13);
    let truth = generate(&params).write(dir.path()).unwrap().truth;
    let staff: std::collections::HashSet<String> = truth
        .visits_of(VisitKind::Staff)
        .map(|v| v.mac.clone())
        .collect();
    let main_day_start = params.local_hour_us(params.date, 0);
    let mut kinds = HashMap::new();
    for (zone, f) in truth.files.iter().enumerate() {
        let (mut ok, mut bad_fcs, mut not_client, mut truncated) = (0u64, 0u64, 0u64, 0u64);
        for r in read_pcap(&dir.path().join(&f.path)) {
            if r.data.len() < r.orig_len {
                truncated += 1;
                continue;
            }
            let h = radiotap::Header::new_checked(&r.data[..]).unwrap();
            let rt = radiotap::Repr::parse(&h).unwrap();
            assert!(rt.tsft.is_some() && rt.rate.is_some());
            assert_eq!(rt.channel.unwrap().freq_mhz, [2412, 2437, 2462][zone % 3]);
            assert_eq!(rt.fcs_at_end(), zone == 1);
            if zone % 2 == 1 {
                assert_eq!(rt.antenna_signal_dbm, None);
                assert_eq!(rt.antenna_signals.len(), 2);
            } else {
                assert!(rt.antenna_signal_dbm.is_some() && rt.antenna_signals.is_empty());
            }
            match presence::parse(127, &r.data) {
                Ok(p) => {
                    ok += 1;
                    *kinds.entry(p.kind).or_insert(0u64) += 1;
                    assert!(p.rssi_dbm >= -92 - 1 && p.rssi_dbm <= -10);
                    if r.ts_us < main_day_start {
                        // History days hold staff frames only.
                        assert!(staff.contains(&p.mac.to_string()), "{}", p.mac);
                    }
                }
                Err(Skip::BadFcs) => bad_fcs += 1,
                Err(Skip::NotClient) => not_client += 1,
                Err(e) => panic!("{}: unexpected {e}", f.path),
            }
        }
        assert_eq!(truncated, f.injected.truncated);
        assert_eq!(bad_fcs, f.injected.bad_fcs_flag + f.injected.fcs_mismatch);
        assert_eq!(not_client, f.injected.beacons);
        assert_eq!(ok + bad_fcs + not_client + truncated, f.frames);
    }
    use edge_wire::ieee80211::FrameKind;
    for k in [
        FrameKind::ProbeRequest,
        FrameKind::Authentication,
        FrameKind::AssocRequest,
        FrameKind::NullData,
        FrameKind::QosNull,
    ] {
        assert!(kinds.get(&k).copied().unwrap_or(0) > 0, "no {k:?} frames");
    }
}

#[test]
fn injection_rates_are_about_right() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&SimParams::new(4, date(), 300, 2))
        .write(dir.path())
        .unwrap()
        .truth;
    for f in &truth.files {
        let n = (f.frames - f.injected.beacons) as f64;
        let share = |c: u64| c as f64 / n;
        assert!(
            (0.002..0.004).contains(&share(f.injected.bad_fcs_flag)),
            "{f:?}"
        );
        assert!(
            (0.0012..0.0028).contains(&share(f.injected.truncated)),
            "{f:?}"
        );
        if f.zone == "apparel" {
            assert!(
                (0.0005..0.0015).contains(&share(f.injected.fcs_mismatch)),
                "{f:?}"
            );
        }
    }
}

#[test]
fn written_rssi_is_strongest_at_the_zone_sniffer() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = small(17);
    params.visitors = 60;
    let day = generate(&params);
    let truth = day.write(dir.path()).unwrap().truth;
    let main = day.plan.days.iter().find(|d| d.main).unwrap();
    let by_mac: HashMap<String, &crate::plan::Presence> = main
        .presences
        .iter()
        .map(|p| {
            let mac = day.plan.identities[p.identity as usize].mac;
            (edge_wire::MacAddr(mac).to_string(), p)
        })
        .collect();
    let zones = truth.zones.len();
    // sums[device zone][sniffer] = (sum, count) over parsed frames.
    let mut sums = vec![vec![(0.0f64, 0u64); zones]; zones];
    for (s, f) in truth.files.iter().enumerate() {
        for r in read_pcap(&dir.path().join(&f.path)) {
            let Ok(p) = edge_wire::presence::parse(127, &r.data) else {
                continue;
            };
            let Some(pres) = by_mac.get(&p.mac.to_string()) else {
                continue;
            };
            if let Some(z) = pres.zone_at(&main.stays, r.ts_us) {
                let e = &mut sums[usize::from(z)][s];
                e.0 += f64::from(p.rssi_dbm);
                e.1 += 1;
            }
        }
    }
    for (z, row) in sums.iter().enumerate() {
        let mean = |(sum, n): (f64, u64)| sum / n.max(1) as f64;
        let own = mean(row[z]);
        assert!(row[z].1 > 100 && own > -50.0, "zone {z}: {own}");
        for (s, &e) in row.iter().enumerate() {
            if s != z && e.1 > 0 {
                assert!(
                    own - mean(e) >= 8.0,
                    "zone {z}: own {own} vs sniffer {s} {}",
                    mean(e)
                );
            }
        }
    }
}
