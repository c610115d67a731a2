//! Streaming frame simulation: turns a [`Plan`] into pcap records, one file per sniffer.
//!
//! Devices are kept in a min-heap keyed by their next transmission time, so frames come out
//! globally time-ordered and go straight to each sniffer's buffered writer; memory is
//! O(devices), never O(frames). Every random draw comes from one ChaCha stream consumed in
//! that deterministic order (ties broken by device index and timer), so output depends only on
//! the parameters.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::emit::{self, RadioInfo, RecordWriter, Tx, TxKind};
use crate::models::AP_BSSID;
use crate::plan::{self, Jitter, Plan, Role, ASSOC_DELAY_US, MIN, SEC};
use crate::radio::{self, AP_TX_ADVANTAGE_DB, AP_X_M, HEARING_FLOOR_DBM, NOISE_SIGMA_DB};
use crate::truth::Injected;

/// Share of frames written with the radiotap BAD_FCS flag.
pub(crate) const BAD_FCS_FLAG_SHARE: f64 = 0.003;
/// Share of frames truncated to a random shorter length.
pub(crate) const TRUNCATED_SHARE: f64 = 0.002;
/// Share of frames with a wrong FCS (FCS-at-end sniffers only).
pub(crate) const FCS_MISMATCH_SHARE: f64 = 0.001;
/// AP beacon period as captured (sparse on purpose: the pipeline must only ignore them).
const BEACON_PERIOD_US: i64 = 10 * SEC;

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
    /// Per presence with MAC rotations: the MACs of its clean frames, in order, each once.
    /// Empty for presences without rotations (they only ever use [`plan::Presence::mac`]).
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
    burst_left: u8,
    burst_start_us: i64,
    assoc_stage: u8,
    jitter: Jitter,
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
            let first = p.start_us + sim.rng.gen_range(0..3 * SEC);
            heap.push(Reverse((first.min(p.end_us), i as u32, TIMER_PROBE)));
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
            if timer == TIMER_PROBE {
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
            // The sequence counter belongs to the device: it runs on across MAC rotations.
            let s = &mut seq[p.identity as usize];
            let mac = p.mac_at(t);
            let tx = Tx {
                t_us: t,
                src: mac,
                seq: *s,
                kind,
                model: id.model,
                ssid: id.ssid,
            };
            *s = (*s + 1) & 0x0fff;
            let x = plan::position(p, &day.stays, t, &mut st.jitter, sim.rng);
            let clean = sim.transmit(&tx, x)?;
            if clean > 0 {
                day_seen.first_us[i] = day_seen.first_us[i].min(t);
                day_seen.last_us[i] = day_seen.last_us[i].max(t);
                let macs = &mut day_seen.macs[i];
                if !p.mac_changes.is_empty() && macs.last() != Some(&mac) {
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
