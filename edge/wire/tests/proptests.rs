//! Property tests: Repr round trips through emit/parse, and `presence::parse` never panics.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod fixtures;

use edge_wire::ieee80211::{ie, Fixed, Frame, FrameKind, ProbeRequestRepr, Repr as FrameRepr};
use edge_wire::pcap::{LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP};
use edge_wire::radiotap::{self, AntennaSignals, Channel, Header};
use edge_wire::{presence, MacAddr};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn radiotap_repr() -> impl Strategy<Value = radiotap::Repr> {
    (
        (
            any::<Option<u64>>(),
            any::<Option<u8>>(),
            any::<Option<u8>>(),
            any::<Option<(u16, u16)>>(),
        ),
        (
            any::<Option<i8>>(),
            any::<Option<i8>>(),
            any::<Option<u8>>(),
            any::<Option<u16>>(),
        ),
        prop::collection::vec(any::<(Option<u8>, i8)>(), 0..=radiotap::MAX_ANTENNAS),
    )
        .prop_map(
            |((tsft, flags, rate, channel), (sig, noise, antenna, rx_flags), ants)| {
                radiotap::Repr {
                    tsft,
                    flags,
                    rate,
                    channel: channel.map(|(freq_mhz, flags)| Channel { freq_mhz, flags }),
                    antenna_signal_dbm: sig,
                    antenna_noise_dbm: noise,
                    antenna,
                    rx_flags,
                    antenna_signals: AntennaSignals::from_slice(&ants),
                }
            },
        )
}

fn ies() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=255)),
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn radiotap_round_trip(r in radiotap_repr(), payload in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut buf = vec![0u8; r.buffer_len()];
        prop_assert_eq!(r.emit(&mut buf), Ok(buf.len()));
        buf.extend_from_slice(&payload);
        let h = Header::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(radiotap::Repr::parse(&h).unwrap(), r);
        prop_assert_eq!(h.payload(), &payload[..]);
        prop_assert_eq!(h.present_words().count(), 1 + r.antenna_signals.len());
    }

    #[test]
    fn probe_request_round_trip(sa in mac(), da in mac(), bssid in mac(), flags in any::<u8>(),
                                seq in 0u16..4096, ies in ies()) {
        let list: Vec<(u8, &[u8])> = ies.iter().map(|(i, d)| (*i, &d[..])).collect();
        // The order flag adds an HT Control field; keep it to check header_len handles it.
        let p = ProbeRequestRepr { sa, da, bssid, flags, seq, ies: &list };
        let mut buf = vec![0u8; p.buffer_len()];
        prop_assert_eq!(p.emit(&mut buf), Ok(buf.len()));
        let f = Frame::new_checked(&buf[..]).unwrap();
        let r = FrameRepr::parse(&f).unwrap();
        prop_assert_eq!(r.kind, FrameKind::ProbeRequest);
        prop_assert_eq!((r.addr1, r.addr2, r.addr3, r.seq, r.flags), (da, sa, bssid, seq, flags));
        let back: Vec<(u8, Vec<u8>)> = ie::Iter::new(r.ies)
            .map(|e| e.map(|e| (e.id, e.data.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(&back, &ies);
        let mut again = vec![0u8; r.buffer_len()];
        r.emit(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn frame_repr_round_trip(kind in 0usize..8, flags in any::<u8>(), duration in any::<u16>(),
                             a in mac(), b in mac(), c in mac(), d in mac(), seq in 0u16..4096,
                             frag in 0u8..16, qos in any::<u16>(), cap in any::<u16>(),
                             li in any::<u16>(), ies in ies(),
                             payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let kind = FrameKind::ALL[kind];
        let mgmt = kind.type_subtype().map(|(t, _)| t) == Some(0);
        let mut raw = vec![0u8; ie::buffer_len(&ies.iter().map(|(i, d)| (*i, &d[..])).collect::<Vec<_>>())];
        ie::emit(&ies.iter().map(|(i, d)| (*i, &d[..])).collect::<Vec<_>>(), &mut raw).unwrap();
        let four = !mgmt && flags & 3 == 3;
        let is_qos = matches!(kind, FrameKind::QosData | FrameKind::QosNull);
        let r = FrameRepr {
            kind,
            flags,
            duration,
            addr1: a,
            addr2: b,
            addr3: c,
            addr4: four.then_some(d),
            seq,
            frag,
            qos_control: is_qos.then_some(qos),
            fixed: match kind {
                FrameKind::AssocRequest => Fixed::AssocRequest { capability: cap, listen_interval: li },
                FrameKind::ReassocRequest => Fixed::ReassocRequest { capability: cap, listen_interval: li, current_ap: d },
                FrameKind::Authentication => Fixed::Authentication { algorithm: cap, transaction: li, status: qos },
                _ => Fixed::None,
            },
            ies: if mgmt { &raw } else { &[] },
            payload: if mgmt { &[] } else { &payload },
        };
        let mut buf = vec![0u8; r.buffer_len()];
        prop_assert_eq!(r.emit(&mut buf), Ok(buf.len()));
        let f = Frame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(FrameRepr::parse(&f).unwrap(), r);
    }

    #[test]
    fn presence_never_panics(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = presence::parse(LINKTYPE_IEEE802_11_RADIOTAP, &data);
        let _ = presence::parse(LINKTYPE_IEEE802_11, &data);
        let h = Header::new_unchecked(&data[..]);
        let _ = h.fields().count();
        let _ = h.present_words().count();
    }

    /// Arbitrary bytes behind a valid radiotap header reach the 802.11 and IE code.
    #[test]
    fn presence_never_panics_behind_radiotap(frame in prop::collection::vec(any::<u8>(), 0..160),
                                             fc in prop::sample::select(vec![0x40u8, 0x00, 0x20, 0xb0, 0x08, 0x48, 0x88, 0xc8])) {
        let mut f = frame;
        if let Some(b) = f.first_mut() { *b = fc; }
        if let Some(b) = f.get_mut(1) { *b &= 0x7d; *b |= 0x01; }
        let _ = presence::parse(LINKTYPE_IEEE802_11_RADIOTAP, &fixtures::capture(&fixtures::RT_MAC80211, &f, false));
        let _ = presence::parse(LINKTYPE_IEEE802_11_RADIOTAP, &fixtures::capture(&fixtures::RT_SIMPLE, &f, true));
    }

    /// Random present words and field bytes after a valid fixed part.
    #[test]
    fn radiotap_walker_never_panics(words in prop::collection::vec(any::<u32>(), 1..5),
                                    body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut b = vec![0u8, 0, 0, 0];
        for w in &words { b.extend_from_slice(&w.to_le_bytes()); }
        b.extend_from_slice(&body);
        let it_len = b.len() as u16;
        b[2..4].copy_from_slice(&it_len.to_le_bytes());
        let h = Header::new_unchecked(&b[..]);
        if h.check_len().is_ok() {
            for f in h.fields().flatten() {
                prop_assert!(f.offset + f.data.len() <= b.len());
            }
        }
        let _ = radiotap::Repr::parse(&h);
        let _ = presence::parse(LINKTYPE_IEEE802_11_RADIOTAP, &b);
    }
}
