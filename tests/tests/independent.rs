//! Cross-checks of edge-wire's capture parser ([`presence::parse`]) and of the simulator's pcaps
//! against implementations we did not write:
//!
//! * **scapy**: `fixtures/independent/scapy-radiotap.pcap` holds frames built by scapy's own
//!   RadioTap/Dot11 layers (alignment padding, extended present bitmaps, FCS all laid out by
//!   scapy) and `scapy-expected.json` what scapy dissects from that file (transmitter, dBm
//!   signal, FCS) plus the verdict the agent must reach. `make_scapy_fixture.py` regenerates
//!   both. Our parser must agree frame by frame.
//! * **tshark** (Wireshark's dissectors): a simulated day (one plain sniffer, one with
//!   FCS-at-end and mac80211 per-antenna namespaces) and the scapy fixture are decoded by
//!   `tshark`. Every frame we accept must carry tshark's transmitter address, frame type and
//!   signal; every probe request tshark decodes cleanly (good or no FCS, not cut short) must be
//!   accepted; every FCS tshark finds bad, or flagged bad, must be rejected as `bad_fcs`;
//!   beacons must be `not_client`. The agreement figures are printed (`--nocapture`).
//!
//! tshark is required: without it these tests fail (run `scripts/test.sh`, which installs it,
//! or `apt-get install tshark`).

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use edge_wire::ieee80211::FrameKind;
use edge_wire::pcap::Records;
use edge_wire::presence::{self, Presence, Skip};
use edge_wire::radiotap;
use serde::Deserialize;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/independent")
        .join(name)
}

/// `scapy-expected.json` (only the parts the tests read).
#[derive(Debug, Deserialize)]
struct ScapyExpected {
    scapy_version: String,
    linktype: u32,
    frames: Vec<ScapyFrame>,
}

#[derive(Debug, Deserialize)]
struct ScapyFrame {
    index: usize,
    name: String,
    addr2: String,
    seq: u16,
    channel_mhz: Option<u16>,
    dbm_antsignal: Option<i8>,
    per_antenna_dbm: Vec<AntennaDbm>,
    radiotap_hex: String,
    expect: ScapyVerdict,
}

#[derive(Debug, Deserialize)]
struct AntennaDbm {
    antenna: u8,
    dbm: i8,
}

#[derive(Debug, Deserialize)]
struct ScapyVerdict {
    /// "accept" or "skip".
    action: String,
    /// Skip label when skipped.
    skip: Option<String>,
    /// Frame kind label when accepted.
    kind: Option<String>,
    /// RSSI the agent must report when accepted.
    rssi_dbm: Option<i8>,
}

fn outcome_label(r: &Result<Presence, Skip>) -> String {
    match r {
        Ok(p) => format!("accept {}", p.kind.label()),
        Err(s) => format!("skip {s}"),
    }
}

#[test]
fn parser_agrees_with_scapy_frame_by_frame() {
    let expected: ScapyExpected =
        serde_json::from_slice(&std::fs::read(fixture("scapy-expected.json")).unwrap()).unwrap();
    let bytes = std::fs::read(fixture("scapy-radiotap.pcap")).unwrap();
    let (header, records) = Records::new(&bytes).unwrap();
    assert_eq!(header.linktype, expected.linktype);
    let records: Vec<_> = records.collect::<Result<_, _>>().unwrap();
    assert_eq!(
        records.len(),
        expected.frames.len(),
        "pcap and JSON out of step: rerun make_scapy_fixture.py"
    );

    println!(
        "scapy {} fixture: {} frames",
        expected.scapy_version,
        records.len()
    );
    println!(
        "{:>2} {:<36} {:<32} {:<32} ok",
        "#", "frame", "scapy", "edge-wire"
    );
    let mut disagreements = Vec::new();
    for (i, (rec, exp)) in records.iter().zip(&expected.frames).enumerate() {
        assert_eq!(exp.index, i);
        let got = presence::parse(header.linktype, rec.data);
        let mut problems = Vec::new();
        match (exp.expect.action.as_str(), &got) {
            ("accept", Ok(p)) => {
                if p.mac.to_string() != exp.addr2 {
                    problems.push(format!("mac {} != scapy addr2 {}", p.mac, exp.addr2));
                }
                if Some(p.rssi_dbm) != exp.expect.rssi_dbm {
                    problems.push(format!(
                        "rssi {} dBm != expected {:?} (scapy dBm_AntSignal {:?}, per-antenna {:?})",
                        p.rssi_dbm, exp.expect.rssi_dbm, exp.dbm_antsignal, exp.per_antenna_dbm
                    ));
                }
                if Some(p.kind.label()) != exp.expect.kind.as_deref() {
                    problems.push(format!(
                        "kind {} != scapy {:?}",
                        p.kind.label(),
                        exp.expect.kind
                    ));
                }
                if p.seq != Some(exp.seq) {
                    problems.push(format!("seq {:?} != scapy {}", p.seq, exp.seq));
                }
                if p.channel_mhz != exp.channel_mhz {
                    problems.push(format!(
                        "channel {:?} != scapy {:?}",
                        p.channel_mhz, exp.channel_mhz
                    ));
                }
            }
            ("skip", Err(s)) if Some(s.label()) == exp.expect.skip.as_deref() => {}
            _ => problems.push(format!(
                "verdict {} != scapy {} {}",
                outcome_label(&got),
                exp.expect.action,
                exp.expect
                    .skip
                    .as_deref()
                    .or(exp.expect.kind.as_deref())
                    .unwrap_or("")
            )),
        }
        // The radiotap header scapy reports is the one in the file.
        let it_len = usize::from(u16::from_le_bytes([rec.data[2], rec.data[3]]));
        if hex::encode(&rec.data[..it_len]) != exp.radiotap_hex {
            problems.push("radiotap bytes differ from the JSON: stale fixture".into());
        }
        // Extra namespaces: scapy leaves them undissected, so check the walker against the
        // values the script put there (tshark decodes them too, see the tshark test).
        if !exp.per_antenna_dbm.is_empty() {
            let h = radiotap::Header::new_checked(rec.data).unwrap();
            let r = radiotap::Repr::parse(&h).unwrap();
            let want: Vec<_> = exp
                .per_antenna_dbm
                .iter()
                .map(|a| (Some(a.antenna), a.dbm))
                .collect();
            if r.antenna_signals.as_slice() != want.as_slice() {
                problems.push(format!(
                    "per-antenna signals {:?} != constructed {want:?}",
                    r.antenna_signals
                ));
            }
            if r.antenna_signal_dbm != exp.dbm_antsignal {
                problems.push(format!(
                    "combined signal {:?} != scapy {:?}",
                    r.antenna_signal_dbm, exp.dbm_antsignal
                ));
            }
        }
        let scapy = match exp.expect.action.as_str() {
            "accept" => format!(
                "accept {} {} {}",
                exp.expect.kind.as_deref().unwrap_or("?"),
                exp.addr2,
                exp.expect.rssi_dbm.unwrap_or_default()
            ),
            _ => format!("skip {}", exp.expect.skip.as_deref().unwrap_or("?")),
        };
        let ours = match &got {
            Ok(p) => format!("accept {} {} {}", p.kind.label(), p.mac, p.rssi_dbm),
            Err(s) => format!("skip {s}"),
        };
        let ok = if problems.is_empty() { "yes" } else { "NO" };
        println!("{i:>2} {:<36} {scapy:<32} {ours:<32} {ok}", exp.name);
        for p in problems {
            disagreements.push(format!(
                "frame {i} ({}): {p}\n  radiotap {}",
                exp.name, exp.radiotap_hex
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "edge-wire disagrees with scapy:\n{}",
        disagreements.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// tshark

/// tshark's fields, in this order (`-T fields`, `|`-separated, all occurrences `,`-joined).
const TSHARK_FIELDS: [&str; 10] = [
    "frame.number",
    "frame.len",
    "frame.cap_len",
    "wlan.fc.type_subtype",
    "wlan.ta",
    "radiotap.present.dbm_antsignal",
    "radiotap.dbm_antsignal",
    "radiotap.flags.badfcs",
    "wlan.fcs.status",
    "_ws.malformed",
];

/// One decoded record, as tshark sees it.
#[derive(Debug)]
struct TsharkRow {
    number: usize,
    len: usize,
    cap_len: usize,
    /// `type << 4 | subtype`.
    type_subtype: Option<u16>,
    ta: Option<String>,
    /// One per present word: does that namespace carry a dBm signal.
    signal_present: Vec<bool>,
    /// Every dBm antenna signal in header order (combined first, then per antenna).
    signals: Vec<i8>,
    bad_fcs_flag: bool,
    /// `wlan.fcs.status`: Some(true) good, Some(false) bad, None no FCS / unverified.
    fcs_good: Option<bool>,
    malformed: bool,
}

impl TsharkRow {
    /// The RSSI the agent should derive: the first namespace's (combined) signal if it has
    /// one, else the strongest per-antenna signal.
    fn rssi(&self) -> Option<i8> {
        if self.signal_present.first() == Some(&true) {
            self.signals.first().copied()
        } else {
            self.signals.iter().copied().max()
        }
    }

    fn truncated(&self) -> bool {
        self.cap_len < self.len
    }

    fn ta_is_unicast(&self) -> bool {
        self.ta
            .as_deref()
            .and_then(|t| u8::from_str_radix(t.get(..2)?, 16).ok())
            .is_some_and(|b| b & 1 == 0)
    }

    /// A probe request tshark decodes cleanly: complete, FCS good or absent (and not flagged
    /// bad), a signal, a unicast transmitter, nothing malformed.
    fn clean_probe(&self) -> bool {
        self.type_subtype == Some(0x04)
            && !self.truncated()
            && !self.bad_fcs_flag
            && self.fcs_good != Some(false)
            && !self.signals.is_empty()
            && self.ta_is_unicast()
            && !self.malformed
    }

    fn bad_fcs(&self) -> bool {
        self.bad_fcs_flag || self.fcs_good == Some(false)
    }
}

fn parse_list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("tshark value {v:?} does not parse"))
        })
        .collect()
}

/// A boolean field value (tshark 4.0 prints 1/0, other versions True/False).
fn is_true(v: &str) -> bool {
    matches!(v, "1" | "True" | "TRUE" | "true")
}

fn parse_bool(s: &str) -> bool {
    s.split(',').next().is_some_and(is_true)
}

fn parse_type_subtype(s: &str) -> Option<u16> {
    let s = s.split(',').next()?;
    match s.strip_prefix("0x") {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_row(line: &str) -> TsharkRow {
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), TSHARK_FIELDS.len(), "tshark line {line:?}");
    TsharkRow {
        number: f[0].parse().unwrap(),
        len: f[1].parse().unwrap(),
        cap_len: f[2].parse().unwrap(),
        type_subtype: parse_type_subtype(f[3]),
        ta: f[4]
            .split(',')
            .next()
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        signal_present: f[5]
            .split(',')
            .filter(|v| !v.is_empty())
            .map(is_true)
            .collect(),
        signals: parse_list(f[6]),
        bad_fcs_flag: parse_bool(f[7]),
        fcs_good: match f[8].split(',').next() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        },
        malformed: !f[9].is_empty(),
    }
}

/// The tshark binary, or a failure telling how to get it. Never a silent skip.
fn require_tshark() -> PathBuf {
    let bin = std::env::var_os("TSHARK").map_or_else(|| PathBuf::from("tshark"), PathBuf::from);
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        Ok(out) => panic!(
            "`{} --version` failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "tshark is required by this cross-check but `{}` could not be run ({e}). Run the tests \
             through scripts/test.sh (it installs tshark), or `sudo apt-get install tshark`.",
            bin.display()
        ),
    }
}

/// Runs tshark on `pcap` with a private (empty) config dir, FCS checking on.
fn tshark_rows(tshark: &Path, pcap: &Path) -> Vec<TsharkRow> {
    let config = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tshark);
    cmd.env("WIRESHARK_CONFIG_DIR", config.path())
        .args(["-n", "-r"])
        .arg(pcap)
        // Validate FCSs (in tshark 4.0 `wlan.check_fcs` means "assume every frame has one").
        .args(["-o", "wlan.check_checksum:TRUE", "-T", "fields"])
        .args([
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ]);
    for f in TSHARK_FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark failed on {}: {}\n{}",
        pcap.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(parse_row)
        .collect()
}

/// Agreement figures for one or more files.
#[derive(Debug, Default)]
struct Tally {
    records: u64,
    /// Our verdicts, by label.
    ours: BTreeMap<String, u64>,
    accepted: u64,
    ta_match: u64,
    rssi_match: u64,
    type_match: u64,
    /// Accepted records whose RSSI came from per-antenna namespaces only.
    per_antenna_only: u64,
    /// Accepted records with more than one signal in tshark's list.
    multi_signal: u64,
    /// ... of which our RSSI is the first signal tshark lists.
    multi_signal_first: u64,
    clean_probes: u64,
    clean_probes_accepted: u64,
    bad_fcs: u64,
    bad_fcs_rejected: u64,
    beacons: u64,
    beacons_not_client: u64,
    truncated: u64,
    /// Our verdicts on truncated records (`incl_len < orig_len`), by label.
    truncated_verdicts: BTreeMap<String, u64>,
    tshark_malformed: u64,
    problems: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.records += o.records;
        for (k, v) in &o.ours {
            *self.ours.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.truncated_verdicts {
            *self.truncated_verdicts.entry(k.clone()).or_default() += v;
        }
        self.accepted += o.accepted;
        self.ta_match += o.ta_match;
        self.rssi_match += o.rssi_match;
        self.type_match += o.type_match;
        self.per_antenna_only += o.per_antenna_only;
        self.multi_signal += o.multi_signal;
        self.multi_signal_first += o.multi_signal_first;
        self.clean_probes += o.clean_probes;
        self.clean_probes_accepted += o.clean_probes_accepted;
        self.bad_fcs += o.bad_fcs;
        self.bad_fcs_rejected += o.bad_fcs_rejected;
        self.beacons += o.beacons;
        self.beacons_not_client += o.beacons_not_client;
        self.truncated += o.truncated;
        self.tshark_malformed += o.tshark_malformed;
        self.problems.extend(o.problems.iter().cloned());
    }

    fn report(&self, name: &str) -> String {
        let mut s = String::new();
        let pct = |a: u64, b: u64| {
            if b == 0 {
                "n/a".to_string()
            } else {
                format!("{:.2} %", 100.0 * a as f64 / b as f64)
            }
        };
        let _ = writeln!(s, "[{name}] {} records", self.records);
        let _ = writeln!(
            s,
            "  accepted by edge-wire        {:>6}  (several signals {}, of which rssi = first listed \
             {}; no combined signal {})",
            self.accepted, self.multi_signal, self.multi_signal_first, self.per_antenna_only
        );
        for (what, n) in [
            ("transmitter == wlan.ta", self.ta_match),
            ("rssi == radiotap signal", self.rssi_match),
            ("kind == wlan.fc.type_subtype", self.type_match),
        ] {
            let _ = writeln!(
                s,
                "    {what:<28}{n:>6}/{}  {}",
                self.accepted,
                pct(n, self.accepted)
            );
        }
        for (what, n, of) in [
            (
                "clean probes (tshark) accepted",
                self.clean_probes_accepted,
                self.clean_probes,
            ),
            (
                "bad FCS (tshark) -> bad_fcs",
                self.bad_fcs_rejected,
                self.bad_fcs,
            ),
            (
                "beacons -> not_client",
                self.beacons_not_client,
                self.beacons,
            ),
        ] {
            let _ = writeln!(s, "  {what:<30}{n:>6}/{of}  {}", pct(n, of));
        }
        let _ = writeln!(
            s,
            "  tshark-malformed records {}; truncated records {} -> {}",
            self.tshark_malformed,
            self.truncated,
            labels(&self.truncated_verdicts)
        );
        let _ = writeln!(s, "  edge-wire verdicts: {}", labels(&self.ours));
        s
    }
}

fn labels(m: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = m.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// Decodes `pcap` with tshark and with [`presence::parse`] and compares them record by record.
fn cross_check(tshark: &Path, pcap: &Path) -> Tally {
    let bytes = std::fs::read(pcap).unwrap();
    let (header, records) = Records::new(&bytes).unwrap();
    let records: Vec<_> = records.collect::<Result<_, _>>().unwrap();
    let rows = tshark_rows(tshark, pcap);
    assert_eq!(
        rows.len(),
        records.len(),
        "tshark and edge-wire disagree on the number of records in {}",
        pcap.display()
    );
    let file = pcap.file_name().unwrap().to_string_lossy().into_owned();
    let mut t = Tally::default();
    for (i, (rec, row)) in records.iter().zip(&rows).enumerate() {
        assert_eq!(row.number, i + 1);
        let got = presence::parse(header.linktype, rec.data);
        t.records += 1;
        *t.ours.entry(outcome_label(&got)).or_default() += 1;
        let mut problem = |what: String| {
            t.problems.push(format!(
                "{file} frame {}: {what}\n  tshark {row:?}\n  record {}",
                row.number,
                hex::encode(&rec.data[..rec.data.len().min(64)])
            ));
        };
        if let Ok(p) = &got {
            t.accepted += 1;
            if row.signals.len() > 1 {
                t.multi_signal += 1;
                if row.signals.first() == Some(&p.rssi_dbm) {
                    t.multi_signal_first += 1;
                }
            }
            if row.signal_present.first() == Some(&false) {
                t.per_antenna_only += 1;
            }
            if row.ta.as_deref() == Some(p.mac.to_string().as_str()) {
                t.ta_match += 1;
            } else {
                problem(format!("transmitter {} != tshark {:?}", p.mac, row.ta));
            }
            if row.rssi() == Some(p.rssi_dbm) {
                t.rssi_match += 1;
            } else {
                problem(format!(
                    "rssi {} != tshark {:?} (signals {:?})",
                    p.rssi_dbm,
                    row.rssi(),
                    row.signals
                ));
            }
            let ts = p
                .kind
                .type_subtype()
                .map(|(ty, st)| u16::from(ty) << 4 | u16::from(st));
            if p.kind != FrameKind::Other && ts == row.type_subtype {
                t.type_match += 1;
            } else {
                problem(format!(
                    "kind {} != tshark type_subtype {:?}",
                    p.kind.label(),
                    row.type_subtype
                ));
            }
        }
        if row.clean_probe() {
            t.clean_probes += 1;
            if got.is_ok() {
                t.clean_probes_accepted += 1;
            } else {
                problem(format!(
                    "clean probe request rejected: {}",
                    outcome_label(&got)
                ));
            }
        }
        if row.bad_fcs() && !row.truncated() {
            t.bad_fcs += 1;
            if got == Err(Skip::BadFcs) {
                t.bad_fcs_rejected += 1;
            } else {
                problem(format!(
                    "tshark: bad FCS; edge-wire: {}",
                    outcome_label(&got)
                ));
            }
        }
        if row.type_subtype == Some(0x08) {
            t.beacons += 1;
            if got == Err(Skip::NotClient) {
                t.beacons_not_client += 1;
            } else {
                problem(format!("beacon: edge-wire {}", outcome_label(&got)));
            }
        }
        if row.truncated() {
            t.truncated += 1;
            *t.truncated_verdicts.entry(outcome_label(&got)).or_default() += 1;
        }
        if row.malformed {
            t.tshark_malformed += 1;
        }
    }
    t
}

fn assert_no_problems(t: &Tally) {
    const SHOWN: usize = 20;
    assert!(
        t.problems.is_empty(),
        "{} disagreements with tshark (first {SHOWN}):\n{}",
        t.problems.len(),
        t.problems
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn tshark_agrees_with_parser_on_simulated_day() {
    let tshark = require_tshark();
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    // Two zones: zone 0 is a plain sniffer (combined signal, no FCS), zone 1 has FCS-at-end and
    // mac80211 per-antenna namespaces without a combined signal. tshark decodes ~10k records/s,
    // so staff (who probe all day, history day included) and passers-by are cut down: ~22k
    // records per zone, half of them beacons.
    let mut params = edge_sim::SimParams::new(3, date, 40, 2);
    params.history_days = 1;
    params.passersby = 20;
    params.staff = 2;
    let started = std::time::Instant::now();
    let written = edge_e2e::simulate(dir.path(), &params);
    // tshark is the slow part: one process per file, in parallel.
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let tshark = &tshark;
        let handles: Vec<_> = written
            .files
            .iter()
            .map(|f| s.spawn(move || cross_check(tshark, &f.path)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Tally::default();
    for (f, t) in written.files.iter().zip(&tallies) {
        assert_eq!(t.records, f.frames);
        print!("{}", t.report(&format!("sim zone {}", f.zone)));
        total.add(t);
    }
    print!("{}", total.report("sim, all zones"));
    println!("(simulated and cross-checked in {:.1?})", started.elapsed());
    assert_no_problems(&total);
    // The day must exercise what we claim to compare.
    assert!(total.accepted > 1_000, "too few accepted frames");
    assert!(total.per_antenna_only > 100, "no per-antenna-only frames");
    assert!(total.clean_probes > 500, "too few clean probe requests");
    assert!(total.bad_fcs > 0, "no bad FCS frames");
    assert!(total.beacons > 0, "no beacons");
    assert!(total.truncated > 0, "no truncated frames");
    assert_eq!(total.ta_match, total.accepted);
    assert_eq!(total.rssi_match, total.accepted);
    assert_eq!(total.clean_probes_accepted, total.clean_probes);
    drop(dir);
}

#[test]
fn tshark_agrees_with_parser_on_scapy_fixture() {
    let tshark = require_tshark();
    let pcap = fixture("scapy-radiotap.pcap");
    let t = cross_check(&tshark, &pcap);
    print!("{}", t.report("scapy fixture"));
    assert_no_problems(&t);

    // tshark decodes the namespaces scapy cannot: its signal list must be the combined signal
    // scapy reports followed by the per-antenna signals the script constructed.
    let expected: ScapyExpected =
        serde_json::from_slice(&std::fs::read(fixture("scapy-expected.json")).unwrap()).unwrap();
    let rows = tshark_rows(&tshark, &pcap);
    for (row, exp) in rows.iter().zip(&expected.frames) {
        let want: Vec<i8> = exp
            .dbm_antsignal
            .iter()
            .copied()
            .chain(exp.per_antenna_dbm.iter().map(|a| a.dbm))
            .collect();
        assert_eq!(row.signals, want, "frame {} ({})", exp.index, exp.name);
        assert_eq!(
            row.ta.as_deref(),
            Some(exp.addr2.as_str()),
            "frame {}",
            exp.index
        );
    }
    assert!(t.clean_probes >= 6 && t.clean_probes_accepted == t.clean_probes);
    assert_eq!(t.bad_fcs, 2);
    assert_eq!(t.beacons, 1);
}
