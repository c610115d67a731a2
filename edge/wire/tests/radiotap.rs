//! Radiotap fixtures (hardware.md §1.2 worked examples, vendor namespace), walker offsets,
//! Repr round trips and bad-input handling.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod fixtures;

use edge_wire::radiotap::{
    AntennaSignals, Channel, Field, Header, Namespace, Repr, FLAG_BAD_FCS, FLAG_FCS_AT_END,
};
use edge_wire::Error;
use fixtures::*;

/// `(ns_index, bit, offset)` of every radiotap-namespace field.
fn offsets(buf: &[u8]) -> Vec<(u8, u8, usize)> {
    Header::new_checked(buf)
        .unwrap()
        .fields()
        .map(|f| f.unwrap())
        .filter(|f| f.namespace == Namespace::Radiotap)
        .map(|f: Field<'_>| (f.ns_index, f.bit, f.offset))
        .collect()
}

#[test]
fn simple_offsets_and_repr() {
    let h = Header::new_checked(&RT_SIMPLE[..]).unwrap();
    assert_eq!((h.version(), h.pad(), h.len()), (0, 0, 23));
    assert_eq!(h.present_words().collect::<Vec<_>>(), [0x2f]);
    // TSFT@8, Flags@16, Rate@17, Channel@18, Signal@22.
    assert_eq!(
        offsets(&RT_SIMPLE),
        [(0, 0, 8), (0, 1, 16), (0, 2, 17), (0, 3, 18), (0, 5, 22)]
    );
    let r = Repr::parse(&h).unwrap();
    assert_eq!(r.tsft, Some(0x0807_0605_0403_0201));
    assert_eq!(r.flags, Some(FLAG_FCS_AT_END));
    assert_eq!(r.rate, Some(2));
    assert_eq!(
        r.channel,
        Some(Channel {
            freq_mhz: 2437,
            flags: 0x00a0
        })
    );
    assert_eq!(r.antenna_signal_dbm, Some(-42));
    assert_eq!(r.rssi_dbm(), Some(-42));
    assert!(r.fcs_at_end());
    assert!(!r.bad_fcs());
    assert!(r.antenna_signals.is_empty());
}

#[test]
fn extended_bitmap_offsets() {
    let h = Header::new_checked(&RT_EXT[..]).unwrap();
    assert_eq!(h.present_words().collect::<Vec<_>>(), [0x8000_002f, 0]);
    // Extension word at 8–11, padding 12–15, TSFT@16, Flags@24, Rate@25, Channel@26, Signal@30.
    assert_eq!(
        offsets(&RT_EXT),
        [(0, 0, 16), (0, 1, 24), (0, 2, 25), (0, 3, 26), (0, 5, 30)]
    );
    let r = Repr::parse(&h).unwrap();
    assert_eq!(r.tsft, Some(0x8877_6655_4433_2211));
    assert_eq!(r.channel.map(|c| c.freq_mhz), Some(5180));
    assert_eq!(r.rssi_dbm(), Some(-65));
}

#[test]
fn mac80211_offsets() {
    let h = Header::new_checked(&RT_MAC80211[..]).unwrap();
    assert_eq!(
        h.present_words().collect::<Vec<_>>(),
        [0xa000_402e, 0x0000_0820]
    );
    // Flags@12, Rate@13, Channel@14, Signal@18, RX flags@20; namespace 1: Signal@22, Antenna@23.
    assert_eq!(
        offsets(&RT_MAC80211),
        [
            (0, 1, 12),
            (0, 2, 13),
            (0, 3, 14),
            (0, 5, 18),
            (0, 14, 20),
            (1, 5, 22),
            (1, 11, 23)
        ]
    );
    let r = Repr::parse(&h).unwrap();
    assert_eq!(r.antenna_signal_dbm, Some(-60));
    assert_eq!(r.rx_flags, Some(0));
    assert_eq!(r.antenna, None);
    assert_eq!(r.antenna_signals.as_slice(), [(Some(0), -61)]);
    // mac80211 emits this exact layout back.
    let mut buf = [0u8; 64];
    let n = r.emit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &RT_MAC80211[..]);
}

#[test]
fn vendor_namespace_is_skipped() {
    let h = Header::new_checked(&RT_VENDOR[..]).unwrap();
    let fields: Vec<_> = h.fields().map(|f| f.unwrap()).collect();
    assert_eq!(fields.len(), 5);
    assert_eq!(
        fields[2],
        Field {
            ns_index: 1,
            namespace: Namespace::Vendor {
                oui: [0x00, 0x11, 0x22],
                sub_ns: 1
            },
            bit: 0,
            offset: 24,
            data: &[0xaa, 0xbb, 0xcc],
        }
    );
    assert_eq!(
        offsets(&RT_VENDOR),
        [(0, 1, 16), (0, 5, 17), (2, 5, 27), (2, 11, 28)]
    );
    let r = Repr::parse(&h).unwrap();
    assert_eq!(r.flags, Some(FLAG_FCS_AT_END));
    assert_eq!(r.antenna_signal_dbm, Some(-53));
    assert_eq!(r.antenna_signals.as_slice(), [(Some(1), -50)]);
}

#[test]
fn unknown_bit_stops_walk() {
    // Flags, then bit 28 (TLVs, whose layout is not modelled), then a field in an extension
    // word that can never be located: the walk keeps Flags and stops without error.
    let buf = [
        0x00, 0x00, 0x0e, 0x00, // version, pad, it_len 14
        0x02, 0x00, 0x00, 0x90, // present 0: Flags(1), bit 28, EXT
        0x20, 0x00, 0x00, 0x00, // present 1: bit 37 in the default namespace: unknown too
        0x10, // Flags
        0x99, // unknown data
    ];
    let h = Header::new_checked(&buf[..]).unwrap();
    assert_eq!(offsets(&buf), [(0, 1, 12)]);
    let r = Repr::parse(&h).unwrap();
    assert_eq!(r.flags, Some(0x10));
    assert_eq!(r.rssi_dbm(), None);
}

#[test]
fn bad_headers() {
    // it_len below 8.
    let mut b = RT_SIMPLE;
    b[2] = 7;
    assert!(matches!(
        Header::new_checked(&b[..]),
        Err(Error::Malformed { .. })
    ));
    // it_len larger than the buffer.
    let mut b = RT_SIMPLE;
    b[2] = 24;
    assert!(matches!(
        Header::new_checked(&b[..]),
        Err(Error::Truncated { .. })
    ));
    // Present-word chain past it_len: every word has bit 31.
    let b = [0, 0, 12, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80];
    assert!(matches!(
        Header::new_checked(&b[..]),
        Err(Error::Malformed { .. })
    ));
    // Unsupported version.
    let mut b = RT_SIMPLE;
    b[0] = 1;
    assert!(matches!(
        Header::new_checked(&b[..]),
        Err(Error::UnsupportedVersion { .. })
    ));
    // A field running past it_len (claims Channel, it_len ends after Flags).
    let b = [0, 0, 10, 0, 0x0a, 0, 0, 0, 0x00, 0x00];
    let h = Header::new_checked(&b[..]).unwrap();
    assert!(matches!(Repr::parse(&h), Err(Error::Malformed { .. })));
    // Vendor skip_length past it_len.
    let mut b = RT_VENDOR;
    b[22] = 0x20;
    let h = Header::new_checked(&b[..]).unwrap();
    assert!(Repr::parse(&h).is_err());
}

#[test]
fn every_truncation_fails() {
    for fx in [&RT_SIMPLE[..], &RT_EXT, &RT_MAC80211, &RT_VENDOR] {
        for cut in 0..fx.len() {
            let b = &fx[..cut];
            assert!(Header::new_checked(b).is_err(), "cut {cut}");
            // The unchecked view and walkers must not panic either.
            let h = Header::new_unchecked(b);
            let _ = h.present_words().count();
            let _ = h.fields().count();
            assert!(Repr::parse(&h).is_err());
        }
    }
}

#[test]
fn repr_round_trip_single_word() {
    let r = Repr {
        tsft: Some(123_456_789),
        flags: Some(FLAG_FCS_AT_END | FLAG_BAD_FCS),
        rate: Some(12),
        channel: Some(Channel {
            freq_mhz: 2462,
            flags: 0x00a0,
        }),
        antenna_signal_dbm: Some(-70),
        antenna_noise_dbm: Some(-95),
        antenna: Some(1),
        rx_flags: Some(0x0002),
        antenna_signals: AntennaSignals::new(),
    };
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(r.emit(&mut buf), Ok(buf.len()));
    let h = Header::new_checked(&buf[..]).unwrap();
    assert_eq!(h.present_words().count(), 1);
    assert_eq!(usize::from(h.len()), buf.len());
    assert_eq!(Repr::parse(&h).unwrap(), r);
    assert!(r.bad_fcs());
    // Too small a buffer is an error, not a panic.
    assert!(r.emit(&mut buf[..5]).is_err());
}

#[test]
fn repr_round_trip_antennas() {
    let r = Repr {
        flags: Some(0),
        antenna_signals: AntennaSignals::from_slice(&[(Some(0), -61), (None, -70), (Some(2), -55)]),
        ..Repr::default()
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf).unwrap();
    let h = Header::new_checked(&buf[..]).unwrap();
    assert_eq!(
        h.present_words().collect::<Vec<_>>(),
        [0xa000_0002, 0xa000_0820, 0xa000_0020, 0x0000_0820]
    );
    let p = Repr::parse(&h).unwrap();
    assert_eq!(p, r);
    assert_eq!(p.rssi_dbm(), Some(-55));
}

#[test]
fn he_mu_other_user_field_is_walked_past() {
    // Bit 25 (HE-MU-other-user, 6 bytes, 2-aligned) followed by a second namespace whose only
    // signal is per-antenna: the walker must step over bit 25 to reach it.
    let rt: [u8; 22] = [
        0x00, // @0 it_version = 0
        0x00, // @1 it_pad
        0x16, 0x00, // @2 it_len = 22
        0x02, 0x00, 0x00,
        0xa2, // @4 present 0: Flags, HE-MU-other-user(25), radiotap NS(29), EXT(31)
        0x20, 0x08, 0x00, 0x00, // @8 present 1: dBm signal(5), antenna(11)
        0x00, // @12 Flags = none
        0x00, // @13 padding: bit 25 aligns to 2
        0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, // @14 HE-MU-other-user (per_user_1/2, position, known)
        0xce, // @20 antenna signal = -50 dBm
        0x00, // @21 antenna index 0
    ];
    let r = Repr::parse(&Header::new_checked(&rt[..]).unwrap()).unwrap();
    assert_eq!(r.antenna_signal_dbm, None);
    assert_eq!(r.rssi_dbm(), Some(-50));
}
