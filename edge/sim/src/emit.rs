//! Frame bytes for the simulator, built only through edge-wire's emitters: radiotap headers,
//! 802.11 frames (probe/auth/assoc/null/QoS-null/beacon), FCS, and pcap headers.
//!
//! Nothing here draws randomness; `run` decides what to send and this module lays it out.

use std::io::{self, Write};

use edge_wire::ieee80211::{self, ie, FrameKind, ProbeRequestRepr};
use edge_wire::pcap;
use edge_wire::radiotap::{self, AntennaSignals, Channel};
use edge_wire::MacAddr;

use crate::models::{
    AP_BSSID, AP_CHANNEL, AP_SSID, ASSOC_IES, BEACON_RATES, MODELS, REMEMBERED_SSIDS,
};

/// Radiotap channel flag: CCK (1/2/5.5/11 Mb/s) channel. edge-wire only names the band bits.
const CHAN_CCK: u16 = 0x0020;
/// Radiotap channel flag: OFDM channel.
const CHAN_OFDM: u16 = 0x0040;
/// pcap snaplen written in the file header (no record comes close).
const SNAPLEN: u32 = 65_535;

/// What a device (or the AP) transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// Probe request; `directed` asks for the device's remembered SSID instead of wildcard.
    Probe { directed: bool },
    /// Open-system authentication, transaction 1, to the store AP.
    Auth,
    /// Association request to the store AP.
    AssocReq,
    /// Null data, ToDS.
    NullData,
    /// QoS null, ToDS.
    QosNull,
    /// The store AP's beacon.
    Beacon,
}

impl TxKind {
    /// PHY rate in 500 kb/s units: management at 1 Mb/s, data at 6 Mb/s.
    pub(crate) fn rate_500k(self) -> u8 {
        match self {
            TxKind::NullData | TxKind::QosNull => 12,
            _ => 2,
        }
    }
}

/// One transmission.
#[derive(Debug, Clone)]
pub(crate) struct Tx {
    pub t_us: i64,
    pub src: [u8; 6],
    pub seq: u16,
    pub kind: TxKind,
    /// Index into [`MODELS`].
    pub model: u8,
    /// Index into [`REMEMBERED_SSIDS`].
    pub ssid: Option<u8>,
}

/// Radiotap fields of one captured copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RadioInfo {
    pub tsft: u64,
    pub fcs_at_end: bool,
    pub bad_fcs: bool,
    pub rate_500k: u8,
    pub freq_mhz: u16,
    pub rssi_dbm: i8,
    /// mac80211 layout: two per-antenna signals and no combined one.
    pub dual_antenna: bool,
}

fn wire_err(e: edge_wire::Error) -> io::Error {
    io::Error::other(e)
}

/// Emits `repr` into `out` (replacing its contents).
fn emit_repr(repr: &ieee80211::Repr<'_>, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.resize(repr.buffer_len(), 0);
    let n = repr.emit(out).map_err(wire_err)?;
    out.truncate(n);
    Ok(())
}

/// A client → AP management or data frame header.
fn to_ap(kind: FrameKind, src: [u8; 6], seq: u16) -> ieee80211::Repr<'static> {
    let ap = MacAddr(AP_BSSID);
    ieee80211::Repr {
        kind,
        flags: 0,
        duration: 314,
        addr1: ap,
        addr2: MacAddr(src),
        addr3: ap,
        addr4: None,
        seq,
        frag: 0,
        qos_control: None,
        fixed: ieee80211::Fixed::None,
        ies: &[],
        payload: &[],
    }
}

/// Writes the 802.11 frame (no FCS) of `tx` into `out`.
pub(crate) fn mpdu(tx: &Tx, out: &mut Vec<u8>) -> io::Result<()> {
    match tx.kind {
        TxKind::Probe { directed } => {
            let model = &MODELS[usize::from(tx.model) % MODELS.len()];
            let ssid: &[u8] = match (directed, tx.ssid) {
                (true, Some(i)) => REMEMBERED_SSIDS[usize::from(i) % REMEMBERED_SSIDS.len()],
                _ => &[],
            };
            // SSID first, then the model's fixed IE order (≤ 7 in total, see models.rs).
            let mut list: [(u8, &[u8]); 8] = [(0, &[]); 8];
            list[0] = (ie::SSID, ssid);
            let n = 1 + model.ies.len().min(7);
            list[1..n].copy_from_slice(&model.ies[..n - 1]);
            let repr = ProbeRequestRepr::new(MacAddr(tx.src), tx.seq, &list[..n]);
            out.clear();
            out.resize(repr.buffer_len(), 0);
            let len = repr.emit(out).map_err(wire_err)?;
            out.truncate(len);
            Ok(())
        }
        TxKind::Auth => {
            let mut r = to_ap(FrameKind::Authentication, tx.src, tx.seq);
            r.fixed = ieee80211::Fixed::Authentication {
                algorithm: 0,
                transaction: 1,
                status: 0,
            };
            emit_repr(&r, out)
        }
        TxKind::AssocReq => {
            // SSID + the 3 ASSOC_IES; the lengths must match or copy_from_slice panics.
            let mut ies = [(0u8, &[][..]); 1 + ASSOC_IES.len()];
            ies[0] = (ie::SSID, AP_SSID);
            ies[1..].copy_from_slice(ASSOC_IES);
            let mut ie_bytes = vec![0u8; ie::buffer_len(&ies)];
            ie::emit(&ies, &mut ie_bytes).map_err(wire_err)?;
            let mut r = to_ap(FrameKind::AssocRequest, tx.src, tx.seq);
            r.fixed = ieee80211::Fixed::AssocRequest {
                capability: 0x0431,
                listen_interval: 10,
            };
            r.ies = &ie_bytes;
            emit_repr(&r, out)
        }
        TxKind::NullData | TxKind::QosNull => {
            let qos = tx.kind == TxKind::QosNull;
            let kind = if qos {
                FrameKind::QosNull
            } else {
                FrameKind::NullData
            };
            let mut r = to_ap(kind, tx.src, tx.seq);
            r.flags = ieee80211::FLAG_TO_DS;
            r.qos_control = qos.then_some(0);
            emit_repr(&r, out)
        }
        TxKind::Beacon => beacon(tx, out),
    }
}

/// Beacon from the store AP. edge-wire's `Repr` does not model beacons (they are `Other`), so
/// the MAC header is emitted as a probe-request `Repr` with the AP's addresses and its frame
/// control byte is then set to beacon (type 0, subtype 8); fixed fields and IEs follow, the
/// IEs emitted by edge-wire.
fn beacon(tx: &Tx, out: &mut Vec<u8>) -> io::Result<()> {
    let ap = MacAddr(AP_BSSID);
    let header = ieee80211::Repr {
        kind: FrameKind::ProbeRequest,
        flags: 0,
        duration: 0,
        addr1: MacAddr::BROADCAST,
        addr2: ap,
        addr3: ap,
        addr4: None,
        seq: tx.seq,
        frag: 0,
        qos_control: None,
        fixed: ieee80211::Fixed::None,
        ies: &[],
        payload: &[],
    };
    emit_repr(&header, out)?;
    if let Some(fc) = out.first_mut() {
        *fc = ieee80211::subtype::BEACON << 4 | ieee80211::TYPE_MGMT << 2;
    }
    // Fixed fields: AP TSF (unix µs; the AP's clock is never compared with the sniffers'),
    // beacon interval 100 TU, capability ESS + short preamble + short slot.
    out.extend_from_slice(&u64::try_from(tx.t_us).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&100u16.to_le_bytes());
    out.extend_from_slice(&0x0421u16.to_le_bytes());
    let ies: [(u8, &[u8]); 3] = [
        (ie::SSID, AP_SSID),
        (ie::SUPPORTED_RATES, BEACON_RATES),
        (ie::DS_PARAMETER, &[AP_CHANNEL]),
    ];
    let at = out.len();
    out.resize(at + ie::buffer_len(&ies), 0);
    ie::emit(&ies, &mut out[at..]).map_err(wire_err)?;
    Ok(())
}

/// Appends the radiotap header of `info` to `out`.
pub(crate) fn radiotap(info: &RadioInfo, out: &mut Vec<u8>) -> io::Result<()> {
    let mut flags = 0u8;
    if info.fcs_at_end {
        flags |= radiotap::FLAG_FCS_AT_END;
    }
    if info.bad_fcs {
        flags |= radiotap::FLAG_BAD_FCS;
    }
    let modulation = if info.rate_500k <= 22 && info.rate_500k != 12 {
        CHAN_CCK
    } else {
        CHAN_OFDM
    };
    let mut repr = radiotap::Repr {
        tsft: Some(info.tsft),
        flags: Some(flags),
        rate: Some(info.rate_500k),
        channel: Some(Channel {
            freq_mhz: info.freq_mhz,
            flags: radiotap::CHAN_2GHZ | modulation,
        }),
        ..radiotap::Repr::default()
    };
    if info.dual_antenna {
        // Chain 0 carries the modelled RSSI, chain 1 is 1–4 dB weaker (varies with the TSF so
        // it is deterministic without a random draw); the strongest chain is the RSSI.
        let weaker = info.rssi_dbm.saturating_sub(1 + (info.tsft % 4) as i8);
        repr.antenna_signals =
            AntennaSignals::from_slice(&[(Some(0), info.rssi_dbm), (Some(1), weaker)]);
    } else {
        repr.antenna_signal_dbm = Some(info.rssi_dbm);
    }
    let at = out.len();
    out.resize(at + repr.buffer_len(), 0);
    repr.emit(&mut out[at..]).map_err(wire_err)?;
    Ok(())
}

/// Appends the FCS of the last `mpdu_len` bytes of `record`; `corrupt` makes it wrong.
pub(crate) fn append_fcs(record: &mut Vec<u8>, mpdu_len: usize, corrupt: bool) {
    let start = record.len().saturating_sub(mpdu_len);
    let mut fcs = edge_wire::fcs::compute(&record[start..]);
    if corrupt {
        // Any non-zero xor breaks the CRC; flip bits in two bytes like a real bit error burst.
        fcs ^= 0x0000_8010;
    }
    record.extend_from_slice(&fcs.to_le_bytes());
}

/// The simulator's radiotap pcap writer: edge-wire's, with the simulator's snaplen.
pub(crate) struct RecordWriter<W: Write> {
    w: pcap::Writer<W>,
}

impl<W: Write> RecordWriter<W> {
    /// Writes the file header.
    pub(crate) fn new(w: W) -> io::Result<Self> {
        Ok(RecordWriter {
            w: pcap::Writer::new(w, pcap::LINKTYPE_IEEE802_11_RADIOTAP, SNAPLEN)?,
        })
    }

    /// Writes one record: `data` captured out of a frame of `orig_len` bytes.
    pub(crate) fn write(&mut self, ts_us: i64, data: &[u8], orig_len: usize) -> io::Result<()> {
        self.w.write_record(ts_us, data, orig_len)
    }

    /// The underlying writer (not flushed).
    pub(crate) fn into_inner(self) -> W {
        self.w.into_inner()
    }
}
