//! The capture hot path: [`parse`] turns one captured frame into a [`Presence`] (who, how
//! loud, on which channel) or a [`Skip`] reason for the drop counters. No allocation, and the
//! IEs are only walked for probe requests.

use core::fmt;

use crate::error::Error;
use crate::ieee80211::{self, ie, Frame, FrameKind};
use crate::mac::MacAddr;
use crate::pcap::{LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP};
use crate::{fcs, radiotap};

pub use crate::fcs::append_fcs;

/// A client transmission seen by a sniffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Presence {
    /// The client (transmitter) address.
    pub mac: MacAddr,
    /// The frame kind.
    pub kind: FrameKind,
    /// Received signal strength, dBm.
    pub rssi_dbm: i8,
    /// Channel centre frequency from radiotap, MHz.
    pub channel_mhz: Option<u16>,
    /// 802.11 sequence number (0..=4095).
    pub seq: Option<u16>,
    /// Probe requests: FNV-1a 32 of the IE layout (see [`fingerprint`]).
    pub fingerprint: Option<u32>,
}

/// Why a frame produced no [`Presence`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Radiotap header shorter than its fixed part or its `it_len`.
    TruncatedRadiotap,
    /// Radiotap header inconsistent (version, `it_len`, present chain, field past `it_len`).
    MalformedRadiotap,
    /// The driver flagged a bad FCS, or the trailing FCS does not match.
    BadFcs,
    /// No signal strength (plain 802.11, or radiotap without a dBm signal).
    NoSignal,
    /// Neither radiotap (127) nor plain 802.11 (105).
    UnsupportedLinkType,
    /// 802.11 frame shorter than its MAC header (or than its FCS).
    Truncated80211,
    /// 802.11 protocol version other than 0.
    Malformed80211,
    /// A probe request whose IEs do not parse.
    MalformedIe,
    /// Not transmitted by a client (beacons, responses, FromDS data, control...).
    NotClient,
    /// The transmitter address is a group address (invalid for a station).
    GroupAddress,
}

impl Skip {
    /// Every variant, for registering counters up front.
    pub const ALL: &'static [Skip] = &[
        Skip::TruncatedRadiotap,
        Skip::MalformedRadiotap,
        Skip::BadFcs,
        Skip::NoSignal,
        Skip::UnsupportedLinkType,
        Skip::Truncated80211,
        Skip::Malformed80211,
        Skip::MalformedIe,
        Skip::NotClient,
        Skip::GroupAddress,
    ];

    /// snake_case name, used as a counter label.
    pub const fn label(self) -> &'static str {
        match self {
            Skip::TruncatedRadiotap => "truncated_radiotap",
            Skip::MalformedRadiotap => "malformed_radiotap",
            Skip::BadFcs => "bad_fcs",
            Skip::NoSignal => "no_signal",
            Skip::UnsupportedLinkType => "unsupported_link_type",
            Skip::Truncated80211 => "truncated_80211",
            Skip::Malformed80211 => "malformed_80211",
            Skip::MalformedIe => "malformed_ie",
            Skip::NotClient => "not_client",
            Skip::GroupAddress => "group_address",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for Skip {}

fn radiotap_skip(e: Error) -> Skip {
    match e {
        Error::Truncated { .. } => Skip::TruncatedRadiotap,
        _ => Skip::MalformedRadiotap,
    }
}

fn frame_skip(e: Error) -> Skip {
    match e {
        Error::Truncated { .. } => Skip::Truncated80211,
        _ => Skip::Malformed80211,
    }
}

/// Parses one captured frame of pcap `linktype`.
///
/// Radiotap (127): a bad-FCS flag or a mismatching trailing FCS is `BadFcs` (the FCS is
/// stripped when it matches), a missing dBm signal is `NoSignal`. Plain 802.11 (105) carries no
/// signal, so a valid frame is `NoSignal`. Then the frame must be a client transmission
/// ([`ieee80211::client_frame`]) from a unicast address.
pub fn parse(linktype: u32, data: &[u8]) -> Result<Presence, Skip> {
    parse_record(linktype, data, data.len())
}

/// Like [`parse`] for a capture record whose frame was `orig_len` bytes on the air. When the
/// capture kept less than that, a trailing FCS was cut off with the rest and cannot be
/// checked, so an FCS-at-end frame is `Truncated80211` rather than `BadFcs`.
pub fn parse_record(linktype: u32, data: &[u8], orig_len: usize) -> Result<Presence, Skip> {
    let (frame, rssi_dbm, channel_mhz) = match linktype {
        LINKTYPE_IEEE802_11_RADIOTAP => {
            let header = radiotap::Header::new_checked(data).map_err(radiotap_skip)?;
            let rt = radiotap::Repr::parse(&header).map_err(radiotap_skip)?;
            if rt.bad_fcs() {
                return Err(Skip::BadFcs);
            }
            // Sliced from `data` (not `header`) so the frame outlives the view.
            let mut frame = crate::bytes::tail(data, header.payload_offset());
            if rt.fcs_at_end() {
                if orig_len > data.len() {
                    return Err(Skip::Truncated80211);
                }
                match fcs::split_check(frame) {
                    Some((f, true)) => frame = f,
                    Some((_, false)) => return Err(Skip::BadFcs),
                    None => return Err(Skip::Truncated80211),
                }
            }
            let rssi = rt.rssi_dbm().ok_or(Skip::NoSignal)?;
            (frame, rssi, rt.channel.map(|c| c.freq_mhz))
        }
        LINKTYPE_IEEE802_11 => {
            Frame::new_checked(data).map_err(frame_skip)?;
            return Err(Skip::NoSignal);
        }
        _ => return Err(Skip::UnsupportedLinkType),
    };
    let frame = Frame::new_checked(frame).map_err(frame_skip)?;
    let (mac, kind) = ieee80211::client_frame(&frame).ok_or(Skip::NotClient)?;
    if mac.is_group() {
        return Err(Skip::GroupAddress);
    }
    let fingerprint = if kind == FrameKind::ProbeRequest {
        // Probe requests have no fixed fields: the IEs are the whole body.
        Some(fingerprint(frame.body()).map_err(|_| Skip::MalformedIe)?)
    } else {
        None
    };
    Ok(Presence {
        mac,
        kind,
        rssi_dbm,
        channel_mhz,
        seq: Some(frame.sequence_number()),
        fingerprint,
    })
}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

#[inline]
fn fnv(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a 32 over a probe request's IEs: the ordered ids, plus length and value of the IEs a
/// device keeps stable across MAC rotations (rates, extended rates, HT/VHT/extended
/// capabilities), the OUI and type of vendor IEs and the extension id of extension IEs. SSID
/// and DS parameter set are left out entirely: they change with the network searched for and
/// the channel (and 5 GHz probes often omit the DS IE). Supported rates differ per band, so
/// the same device yields one fingerprint per band.
pub fn fingerprint(ies: &[u8]) -> crate::Result<u32> {
    let mut h = FNV_OFFSET;
    for e in ie::Iter::new(ies) {
        let e = e?;
        match e.id {
            ie::SSID | ie::DS_PARAMETER => continue,
            ie::SUPPORTED_RATES
            | ie::EXTENDED_RATES
            | ie::HT_CAPABILITIES
            | ie::EXTENDED_CAPABILITIES
            | ie::VHT_CAPABILITIES => {
                // The length byte keeps `[a][b c]` and `[a b][c]` apart.
                h = fnv(h, &[e.id, e.data.len() as u8]);
                h = fnv(h, e.data);
            }
            ie::VENDOR_SPECIFIC => {
                h = fnv(h, &[e.id]);
                h = fnv(h, e.data.get(..4).unwrap_or(e.data));
            }
            ie::EXTENSION => {
                h = fnv(h, &[e.id]);
                h = fnv(h, e.data.get(..1).unwrap_or(e.data));
            }
            id => h = fnv(h, &[id]),
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for s in Skip::ALL {
            let l = s.label();
            assert!(l
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(seen.insert(l));
            assert_eq!(s.to_string(), l);
        }
    }

    #[test]
    fn fnv_reference() {
        // FNV-1a 32 test vectors.
        assert_eq!(fnv(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv(FNV_OFFSET, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn fingerprint_ignores_ssid_and_ds() {
        let a = [0, 3, b'a', b'b', b'c', 1, 2, 0x82, 0x84, 3, 1, 6];
        let b = [0, 0, 1, 2, 0x82, 0x84];
        let c = [0, 0, 1, 2, 0x82, 0x8b];
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&b), fingerprint(&c));
        assert!(fingerprint(&[1, 5, 0]).is_err());
    }
}
