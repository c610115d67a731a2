//! Streaming frame simulation: turns a [`Plan`] into pcap records, one file per sniffer.
//!
//! Devices are kept in a min-heap keyed by their next transmission time, so frames come out
//! globally time-ordered and go straight to each sniffer's buffered writer; memory is
//! O(devices), never O(frames). Every random draw comes from one ChaCha stream consumed in
//! that deterministic order (ties broken by device index and timer), so output depends only on
//! the parameters.
//!
//! Devices probe in one of three styles (see [`crate::PhoneMix`]): bursts from one MAC with the
//! device's continuing sequence counter (every device of the legacy mix, connected phones,
//! `stable_random`, `global` and `fixed`), scans with a new MAC and a random sequence number
//! per channel (`ios16`), or scans with a new MAC per burst and the sequence number from near 0
//! (`android13`). The per-scan MACs are drawn here, from the frame stream, when a scan starts;
//! to keep them unique the MACs drawn so far are remembered, O(scans) like the truth that lists
//! them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::io::{self, Write};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::emit::{self, RadioInfo, RecordWriter, Tx, TxKind};
use crate::models::AP_BSSID;
use crate::plan::{self, Jitter, Plan, Presence, Role, ASSOC_DELAY_US, MIN, SEC};
use crate::radio::{self, AP_TX_ADVANTAGE_DB, AP_X_M, HEARING_FLOOR_DBM, NOISE_SIGMA_DB};
use crate::truth::Behaviour;
use crate::truth::Injected;

/// Share of frames written with the radiotap BAD_FCS flag.
pub(crate) const BAD_FCS_FLAG_SHARE: f64 = 0.003;
/// Share of frames truncated to a random shorter length.
pub(crate) const TRUNCATED_SHARE: f64 = 0.002;
/// Share of frames with a wrong FCS (FCS-at-end sniffers only).
pub(crate) const FCS_MISMATCH_SHARE: f64 = 0.001;
/// AP beacon period as captured (sparse on purpose: the pipeline must only ignore them).
const BEACON_PERIOD_US: i64 = 10 * SEC;

/// MACs (channels) per scan of an iOS 16-like phone.
const IOS16_MACS_PER_SCAN: (u8, u8) = (1, 4);
/// Probes per MAC (channel) of an iOS 16-like scan: about 2.
const IOS16_FRAMES_PER_MAC: (u8, u8) = (1, 3);
/// Length of an iOS 16-like scan, µs.
const IOS16_SCAN_US: (i64, i64) = (60_000, 1_400_000);
/// Gap between the probes on one channel of an iOS 16-like scan, µs.
const IOS16_FRAME_GAP_US: (i64, i64) = (2_000, 8_000);
/// Probes per burst (scan) of an Android 13-like phone.
const ANDROID13_FRAMES_PER_BURST: (u8, u8) = (2, 6);
/// Length of an Android 13-like burst, µs.
const ANDROID13_BURST_US: (i64, i64) = (100_000, 1_000_000);
/// Highest first sequence number of an Android 13-like burst (it restarts near 0).
const ANDROID13_FIRST_SEQ_MAX: u16 = 2;
/// Each scan of a per-scan-MAC phone comes after its period times U(1 − this, 1 + this).
const SCAN_PERIOD_JITTER: f64 = 0.1;

/// Sniffer channel centre frequencies, cycling by zone index (channels 1, 6, 11).
pub(crate) const CHANNELS_MHZ: [u16; 3] = [2412, 2437, 2462];

/// Per-sniffer settings derived from the zone index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sniffer {
    pub x: f64,
    pub freq_mhz: u16,
    /// mac80211-style per-antenna signals instead of the single antenna-signal field.
    pub dual_antenna: bool,
    /// Flags field has FCS_AT_END and every frame carries its FCS.
    pub fcs_at_end: bool,
    /// Sniffer TSF = unix µs − this (each sniffer booted at a different time).
    pub tsf_base_us: i64,
}

impl Sniffer {
    pub(crate) fn for_zone(zone: usize, epoch_us: i64) -> Self {
        Sniffer {
            x: radio::sniffer_x(zone),
            freq_mhz: CHANNELS_MHZ[zone % CHANNELS_MHZ.len()],
            dual_antenna: zone % 2 == 1,
            fcs_at_end: zone == 1,
            tsf_base_us: epoch_us - (zone as i64 + 1) * 3_700 * SEC,
        }
    }
}

/// What happened on one sniffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileStats {
    pub frames: u64,
    pub injected: Injected,
}

/// What was written of one day's presences.
#[derive(Debug, Clone, Default)]
pub(crate) struct DaySeen {
    /// First clean frame written per presence (µs; `i64::MAX` if none).
    pub first_us: Vec<i64>,
    /// Last clean frame written per presence (µs; `i64::MIN` if none).
    pub last_us: Vec<i64>,
    /// Per presence with MAC rotations or per-scan MACs ([`Presence::tracks_macs`]): the MACs
    /// of its clean frames, in order, each once. Empty for the others (they only ever use
    /// [`plan::Presence::mac`]).
    pub macs: Vec<Vec<[u8; 6]>>,
}

/// What was written, per day of the plan (same order as [`Plan::days`]).
pub(crate) struct Seen {
    pub days: Vec<DaySeen>,
    /// Clean client frame records written for the main day's presences (every sniffer's copy
    /// counts: one sighting each).
    pub main_sightings: u64,
    /// Those of them from locally administered MACs.
    pub main_randomized_sightings: u64,
}

/// Timers a device can have pending.
const TIMER_PROBE: u8 = 0;
const TIMER_DATA: u8 = 1;
const TIMER_BEACON: u8 = 2;
const BEACON_DEV: u32 = u32::MAX;

/// Mutable per-presence state while streaming.
#[derive(Default, Clone, Copy)]
struct DevState {
    /// Probes left in the current burst (or, `ios16`, on the current channel).
    burst_left: u8,
    burst_start_us: i64,
    assoc_stage: u8,
    jitter: Jitter,
    /// `ios16`: channels (MACs) of the current scan still to come after the current one.
    macs_left: u8,
    /// `ios16`: index of the current channel in the scan.
    channel: u8,
    /// `ios16`: time per channel; `android13`: gap between the probes of a burst (µs).
    step_us: i64,
    /// Per-scan styles: the current MAC and its next sequence number.
    scan_mac: [u8; 6],
    scan_seq: u16,
}

/// How a presence probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Bursts of 1–3 probes every 20–40 s from [`Presence::mac_at`], continuing counter.
    Bursts,
    /// `ios16`: a new MAC and random sequence number per channel of a scan.
    PerChannel,
    /// `android13`: a new MAC per burst, sequence numbers from near 0.
    PerBurst,
}

fn style(p: &Presence) -> Style {
    if !p.per_scan_macs() {
        return Style::Bursts;
    }
    if p.behaviour == Behaviour::Ios16 {
        Style::PerChannel
    } else {
        Style::PerBurst
    }
}

/// A fresh locally administered unicast MAC that no device has used yet.
fn fresh_local(rng: &mut ChaCha8Rng, used: &mut HashSet<[u8; 6]>) -> [u8; 6] {
    loop {
        let mut mac: [u8; 6] = rng.gen();
        mac[0] = (mac[0] & 0xfc) | 0x02;
        if used.insert(mac) {
            return mac;
        }
    }
}

/// The next scan of a per-scan-MAC phone: `period_us` after the last one began, jittered.
fn next_scan(rng: &mut ChaCha8Rng, scan_start_us: i64, period_us: i64) -> i64 {
    let f = rng.gen_range(1.0 - SCAN_PERIOD_JITTER..1.0 + SCAN_PERIOD_JITTER);
    scan_start_us + (period_us as f64 * f).round() as i64
}

/// Standard normal draw (Box–Muller; one value per call keeps the draw order simple).
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

struct Sim<'a, W: Write> {
    sniffers: &'a [Sniffer],
    writers: &'a mut [RecordWriter<W>],
    stats: &'a mut [FileStats],
    rng: &'a mut ChaCha8Rng,
    mpdu: Vec<u8>,
    record: Vec<u8>,
}

impl<W: Write> Sim<'_, W> {
    /// Offers one transmission to every sniffer; returns how many clean copies were written.
    fn transmit(&mut self, tx: &Tx, device_x: f64) -> io::Result<u64> {
        let mut built = false;
        let mut clean = 0;
        for s in 0..self.sniffers.len() {
            let sn = self.sniffers[s];
            let beacon = matches!(tx.kind, TxKind::Beacon);
            let rssi = if beacon {
                // The AP is loud: every sniffer hears every beacon.
                radio::mean_rssi_dbm(AP_X_M, sn.x)
                    + AP_TX_ADVANTAGE_DB
                    + NOISE_SIGMA_DB * gauss(self.rng)
            } else {
                let mean = radio::mean_rssi_dbm(device_x, sn.x);
                // More than 5 σ under the floor: skip without drawing (never heard anyway).
                if mean + 5.0 * NOISE_SIGMA_DB < HEARING_FLOOR_DBM {
                    continue;
                }
                let r = mean + NOISE_SIGMA_DB * gauss(self.rng);
                if r < HEARING_FLOOR_DBM || !self.rng.gen_bool(radio::HEAR_PROBABILITY) {
                    continue;
                }
                r
            };
            if !built {
                emit::mpdu(tx, &mut self.mpdu)?;
                built = true;
            }
            let mut bad_flag = false;
            let mut truncate = false;
            let mut fcs_mismatch = false;
            if !beacon {
                let u: f64 = self.rng.gen();
                if u < BAD_FCS_FLAG_SHARE {
                    bad_flag = true;
                } else if u < BAD_FCS_FLAG_SHARE + TRUNCATED_SHARE {
                    truncate = true;
                } else if sn.fcs_at_end
                    && u < BAD_FCS_FLAG_SHARE + TRUNCATED_SHARE + FCS_MISMATCH_SHARE
                {
                    fcs_mismatch = true;
                }
            }
            let info = RadioInfo {
                tsft: u64::try_from(tx.t_us - sn.tsf_base_us).unwrap_or(0),
                fcs_at_end: sn.fcs_at_end,
                bad_fcs: bad_flag,
                rate_500k: tx.kind.rate_500k(),
                freq_mhz: sn.freq_mhz,
                rssi_dbm: radio::to_dbm_i8(rssi),
                dual_antenna: sn.dual_antenna,
            };
            self.record.clear();
            emit::radiotap(&info, &mut self.record)?;
            self.record.extend_from_slice(&self.mpdu);
            if sn.fcs_at_end {
                // A frame flagged bad on an FCS sniffer really has a bad FCS.
                emit::append_fcs(&mut self.record, self.mpdu.len(), bad_flag || fcs_mismatch);
            }
            let stats = &mut self.stats[s];
            let mut len = self.record.len();
            if truncate {
                len = crate::draw_usize(self.rng, 1, len - 1);
                stats.injected.truncated += 1;
            } else if bad_flag {
                stats.injected.bad_fcs_flag += 1;
            } else if fcs_mismatch {
                stats.injected.fcs_mismatch += 1;
            } else if beacon {
                stats.injected.beacons += 1;
            } else {
                clean += 1;
            }
            self.writers[s].write(tx.t_us, &self.record[..len], self.record.len())?;
            stats.frames += 1;
        }
        Ok(clean)
    }
}

/// Streams all days of `plan` into `writers` (one per sniffer, same order as `sniffers`).
pub(crate) fn run<W: Write>(
    plan: &Plan,
    sniffers: &[Sniffer],
    writers: &mut [RecordWriter<W>],
    rng: &mut ChaCha8Rng,
) -> io::Result<(Vec<FileStats>, Seen)> {
    let mut stats = vec![FileStats::default(); sniffers.len()];
    let mut sim = Sim {
        sniffers,
        writers,
        stats: &mut stats,
        rng,
        mpdu: Vec::with_capacity(512),
        record: Vec::with_capacity(640),
    };
    // 12-bit sequence counters continue per identity across days; start anywhere.
    let mut seq: Vec<u16> = (0..plan.identities.len())
        .map(|_| sim.rng.gen_range(0..4096))
        .collect();
    let mut ap_seq: u16 = sim.rng.gen_range(0..4096);
    // Every MAC in the plan, so that per-scan MACs are new (only needed if there are any).
    let mut used: HashSet<[u8; 6]> = HashSet::new();
    if plan
        .days
        .iter()
        .any(|d| d.presences.iter().any(Presence::per_scan_macs))
    {
        used.extend(plan.identities.iter().map(|id| id.mac));
        for d in &plan.days {
            for p in &d.presences {
                used.insert(p.mac);
                used.extend(p.mac_changes.iter().map(|c| c.1));
            }
        }
    }
    let mut seen = Seen {
        days: Vec::with_capacity(plan.days.len()),
        main_sightings: 0,
        main_randomized_sightings: 0,
    };

    for day in &plan.days {
        let n = day.presences.len();
        let mut state = vec![DevState::default(); n];
        let mut day_seen = DaySeen {
            first_us: vec![i64::MAX; n],
            last_us: vec![i64::MIN; n],
            macs: vec![Vec::new(); n],
        };
        let mut heap: BinaryHeap<Reverse<(i64, u32, u8)>> = BinaryHeap::with_capacity(n + 1);
        for (i, p) in day.presences.iter().enumerate() {
            if style(p) == Style::Bursts {
                let first = p.start_us + sim.rng.gen_range(0..3 * SEC);
                heap.push(Reverse((first.min(p.end_us), i as u32, TIMER_PROBE)));
            } else {
                // A scanning phone was scanning before it came into range: any phase, so one
                // that passes by quickly may never scan in range.
                let period = plan.identities[p.identity as usize].scan_period_us.max(SEC);
                let first = p.start_us + sim.rng.gen_range(0..period);
                if first <= p.end_us {
                    heap.push(Reverse((first, i as u32, TIMER_PROBE)));
                }
            }
            if p.connected {
                heap.push(Reverse((p.start_us + ASSOC_DELAY_US, i as u32, TIMER_DATA)));
            }
        }
        let window = day.beacon_window();
        if let Some((start, _)) = window {
            heap.push(Reverse((start, BEACON_DEV, TIMER_BEACON)));
        }

        while let Some(Reverse((t, dev, timer))) = heap.pop() {
            if timer == TIMER_BEACON {
                let tx = Tx {
                    t_us: t,
                    src: AP_BSSID,
                    seq: ap_seq,
                    kind: TxKind::Beacon,
                    model: 0,
                    ssid: None,
                };
                ap_seq = (ap_seq + 1) & 0x0fff;
                sim.transmit(&tx, AP_X_M)?;
                if let Some((_, end)) = window {
                    if t + BEACON_PERIOD_US <= end {
                        heap.push(Reverse((t + BEACON_PERIOD_US, dev, timer)));
                    }
                }
                continue;
            }
            let i = dev as usize;
            let p = &day.presences[i];
            if t > p.end_us {
                continue;
            }
            let id = &plan.identities[p.identity as usize];
            let st = &mut state[i];
            let kind;
            let next;
            // A per-scan-MAC probe's MAC and sequence number (else the device's own).
            let mut scan_src = None;
            let style = style(p);
            if timer == TIMER_PROBE && style == Style::PerChannel {
                if st.burst_left == 0 {
                    if st.macs_left == 0 {
                        // A new scan: 1–4 channels over 0.06–1.4 s.
                        let (lo, hi) = IOS16_MACS_PER_SCAN;
                        st.macs_left = sim.rng.gen_range(lo..=hi);
                        st.burst_start_us = t;
                        st.channel = 0;
                        let (a, b) = IOS16_SCAN_US;
                        st.step_us = sim.rng.gen_range(a..=b) / i64::from(st.macs_left);
                    } else {
                        st.channel += 1;
                    }
                    st.macs_left -= 1;
                    let (lo, hi) = IOS16_FRAMES_PER_MAC;
                    st.burst_left = sim.rng.gen_range(lo..=hi);
                    st.scan_mac = fresh_local(sim.rng, &mut used);
                    st.scan_seq = sim.rng.gen_range(0..4096);
                }
                st.burst_left -= 1;
                let directed = id.ssid.is_some() && st.burst_left == 1;
                kind = TxKind::Probe { directed };
                next = if st.burst_left > 0 {
                    let (a, b) = IOS16_FRAME_GAP_US;
                    t + sim.rng.gen_range(a..=b)
                } else if st.macs_left > 0 {
                    let channel_start =
                        st.burst_start_us + (i64::from(st.channel) + 1) * st.step_us;
                    channel_start.max(t + 1_000)
                } else {
                    next_scan(sim.rng, st.burst_start_us, id.scan_period_us)
                };
                scan_src = Some((st.scan_mac, st.scan_seq));
                st.scan_seq = (st.scan_seq + 1) & 0x0fff;
            } else if timer == TIMER_PROBE && style == Style::PerBurst {
                if st.burst_left == 0 {
                    // A new scan: one burst from a new MAC, the counter restarting near 0.
                    let (lo, hi) = ANDROID13_FRAMES_PER_BURST;
                    st.burst_left = sim.rng.gen_range(lo..=hi);
                    st.burst_start_us = t;
                    let (a, b) = ANDROID13_BURST_US;
                    st.step_us = sim.rng.gen_range(a..=b) / i64::from(st.burst_left);
                    st.scan_mac = fresh_local(sim.rng, &mut used);
                    st.scan_seq = sim.rng.gen_range(0..=ANDROID13_FIRST_SEQ_MAX);
                }
                st.burst_left -= 1;
                let directed = id.ssid.is_some() && st.burst_left == 1;
                kind = TxKind::Probe { directed };
                next = if st.burst_left > 0 {
                    t + st.step_us
                } else {
                    next_scan(sim.rng, st.burst_start_us, id.scan_period_us)
                };
                scan_src = Some((st.scan_mac, st.scan_seq));
                st.scan_seq = (st.scan_seq + 1) & 0x0fff;
            } else if timer == TIMER_PROBE {
                if st.burst_left == 0 {
                    st.burst_left = sim.rng.gen_range(1..=3);
                    st.burst_start_us = t;
                }
                st.burst_left -= 1;
                // The second frame of a burst asks for the remembered SSID by name.
                let directed = id.ssid.is_some() && st.burst_left == 1;
                kind = TxKind::Probe { directed };
                next = if st.burst_left > 0 {
                    t + sim.rng.gen_range(10_000..40_000)
                } else if st.assoc_stage >= 2 {
                    // Associated phones probe rarely (about every 3 minutes).
                    st.burst_start_us + sim.rng.gen_range(150 * SEC..210 * SEC)
                } else {
                    st.burst_start_us + sim.rng.gen_range(20 * SEC..40 * SEC)
                };
            } else {
                match st.assoc_stage {
                    0 => {
                        kind = TxKind::Auth;
                        st.assoc_stage = 1;
                        next = t + sim.rng.gen_range(2_000..6_000);
                    }
                    1 => {
                        kind = TxKind::AssocReq;
                        st.assoc_stage = 2;
                        next = t + sim.rng.gen_range(10 * SEC..25 * SEC);
                    }
                    _ => {
                        kind = if id.model.is_multiple_of(2) {
                            TxKind::QosNull
                        } else {
                            TxKind::NullData
                        };
                        next = t + sim.rng.gen_range(10 * SEC..25 * SEC);
                    }
                }
            }
            if next <= p.end_us {
                heap.push(Reverse((next, dev, timer)));
            }
            let (mac, frame_seq) = match scan_src {
                Some(src) => src,
                None => {
                    // The sequence counter belongs to the device: it runs on across MAC
                    // rotations.
                    let s = &mut seq[p.identity as usize];
                    let frame_seq = *s;
                    *s = (*s + 1) & 0x0fff;
                    (p.mac_at(t), frame_seq)
                }
            };
            let tx = Tx {
                t_us: t,
                src: mac,
                seq: frame_seq,
                kind,
                model: id.model,
                ssid: id.ssid,
            };
            let x = plan::position(p, &day.stays, t, &mut st.jitter, sim.rng);
            let clean = sim.transmit(&tx, x)?;
            if clean > 0 {
                day_seen.first_us[i] = day_seen.first_us[i].min(t);
                day_seen.last_us[i] = day_seen.last_us[i].max(t);
                let macs = &mut day_seen.macs[i];
                if p.tracks_macs() && macs.last() != Some(&mac) {
                    macs.push(mac);
                }
                if day.main {
                    seen.main_sightings += clean;
                    if mac[0] & 0x02 != 0 {
                        seen.main_randomized_sightings += clean;
                    }
                }
            }
        }
        seen.days.push(day_seen);
        debug_assert!(day
            .presences
            .iter()
            .all(|p| p.role != Role::Staff || p.end_us - p.start_us >= 6 * 60 * MIN));
    }
    Ok((stats, seen))
}
