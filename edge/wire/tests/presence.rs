//! `presence::parse` on radiotap + 802.11 captures: accepted frames, every skip reason, FCS
//! handling, fingerprints and every truncation.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod fixtures;

use edge_wire::ieee80211::FrameKind;
use edge_wire::pcap::{LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP, LINKTYPE_PPI};
use edge_wire::presence::{fingerprint, parse, parse_record, Presence, Skip};
use edge_wire::radiotap::{self, AntennaSignals, Channel};
use fixtures::*;

const RT: u32 = LINKTYPE_IEEE802_11_RADIOTAP;

/// A radiotap header with a dBm signal and a channel, optionally with FCS flags.
fn rt(flags: u8) -> Vec<u8> {
    let r = radiotap::Repr {
        flags: Some(flags),
        channel: Some(Channel {
            freq_mhz: 2437,
            flags: radiotap::CHAN_2GHZ,
        }),
        antenna_signal_dbm: Some(-48),
        ..radiotap::Repr::default()
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b).unwrap();
    b
}

#[test]
fn probe_request_with_fcs() {
    // hardware.md example 1 has FLAG_FCS_AT_END.
    let cap = capture(&RT_SIMPLE, &PROBE_REQ, true);
    let p = parse(RT, &cap).unwrap();
    assert_eq!(
        p,
        Presence {
            mac: CLIENT,
            kind: FrameKind::ProbeRequest,
            rssi_dbm: -42,
            channel_mhz: Some(2437),
            seq: Some(291),
            fingerprint: Some(fingerprint(&PROBE_REQ[24..]).unwrap()),
        }
    );
}

#[test]
fn fingerprint_stable_across_ssid_and_mac() {
    let a = parse(RT, &capture(&RT_SIMPLE, &PROBE_REQ, true)).unwrap();
    // Another MAC, another SSID, another channel: same fingerprint.
    let mut other = PROBE_REQ.to_vec();
    other[10..16].copy_from_slice(&[0x2a, 1, 2, 3, 4, 5]);
    other[26..30].copy_from_slice(b"Cafe");
    other[38] = 11; // DS channel
    let b = parse(RT, &capture(&RT_SIMPLE, &other, true)).unwrap();
    assert_ne!(a.mac, b.mac);
    assert_eq!(a.fingerprint, b.fingerprint);
    // Different rates: different fingerprint.
    other[35] = 0x96;
    let c = parse(RT, &capture(&RT_SIMPLE, &other, true)).unwrap();
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn client_kinds() {
    let cases: [(&[u8], FrameKind); 8] = [
        (&PROBE_REQ, FrameKind::ProbeRequest),
        (&ASSOC_REQ, FrameKind::AssocRequest),
        (&REASSOC_REQ, FrameKind::ReassocRequest),
        (&AUTH_REQ, FrameKind::Authentication),
        (&DATA_TODS, FrameKind::Data),
        (&NULL_DATA, FrameKind::NullData),
        (&QOS_NULL, FrameKind::QosNull),
        (&QOS_DATA, FrameKind::QosData),
    ];
    for (frame, kind) in cases {
        for header in [&RT_MAC80211[..], &RT_EXT[..]] {
            let p = parse(RT, &capture(header, frame, false)).unwrap();
            assert_eq!((p.mac, p.kind), (CLIENT, kind));
            assert_eq!(p.fingerprint.is_some(), kind == FrameKind::ProbeRequest);
        }
    }
    // mac80211 example: combined signal wins over the per-antenna one.
    let p = parse(RT, &capture(&RT_MAC80211, &DATA_TODS, false)).unwrap();
    assert_eq!(
        (p.rssi_dbm, p.channel_mhz, p.seq),
        (-60, Some(2412), Some(4095))
    );
}

#[test]
fn per_antenna_signal_only() {
    // Vendor fixture has FCS at end and its combined signal; drop the combined one by
    // emitting a header with only per-antenna signals.
    let r = radiotap::Repr {
        antenna_signals: AntennaSignals::from_slice(&[(Some(0), -71), (Some(1), -66)]),
        ..radiotap::Repr::default()
    };
    let mut h = vec![0u8; r.buffer_len()];
    r.emit(&mut h).unwrap();
    let p = parse(RT, &capture(&h, &NULL_DATA, false)).unwrap();
    assert_eq!(p.rssi_dbm, -66);
    assert_eq!(p.channel_mhz, None);
    let p = parse(RT, &capture(&RT_VENDOR, &NULL_DATA, true)).unwrap();
    assert_eq!(p.rssi_dbm, -53);
}

#[test]
fn skips() {
    // Not clients.
    for f in [&BEACON[..], &DATA_FROMDS, &AUTH_RESP] {
        assert_eq!(parse(RT, &capture(&rt(0), f, false)), Err(Skip::NotClient));
    }
    // Bad FCS flag, even with a correct FCS.
    let cap = capture(&rt(radiotap::FLAG_BAD_FCS), &PROBE_REQ, false);
    assert_eq!(parse(RT, &cap), Err(Skip::BadFcs));
    // FCS mismatch.
    let mut cap = capture(&rt(radiotap::FLAG_FCS_AT_END), &PROBE_REQ, true);
    assert!(parse(RT, &cap).is_ok());
    let n = cap.len();
    cap[n - 1] ^= 0x80;
    assert_eq!(parse(RT, &cap), Err(Skip::BadFcs));
    // Flipped bit in the frame instead.
    let mut cap = capture(&rt(radiotap::FLAG_FCS_AT_END), &PROBE_REQ, true);
    let n = cap.len();
    cap[n - 20] ^= 0x01;
    assert_eq!(parse(RT, &cap), Err(Skip::BadFcs));
    // No signal.
    let r = radiotap::Repr {
        flags: Some(0),
        ..radiotap::Repr::default()
    };
    let mut h = vec![0u8; r.buffer_len()];
    r.emit(&mut h).unwrap();
    assert_eq!(
        parse(RT, &capture(&h, &PROBE_REQ, false)),
        Err(Skip::NoSignal)
    );
    // Plain 802.11: valid frame but no signal; truncated frame first.
    assert_eq!(parse(LINKTYPE_IEEE802_11, &PROBE_REQ), Err(Skip::NoSignal));
    assert_eq!(
        parse(LINKTYPE_IEEE802_11, &PROBE_REQ[..10]),
        Err(Skip::Truncated80211)
    );
    // Unknown link types.
    for lt in [0, 1, 119, LINKTYPE_PPI, u32::MAX] {
        assert_eq!(parse(lt, &PROBE_REQ), Err(Skip::UnsupportedLinkType));
    }
    // Group transmitter.
    let mut f = PROBE_REQ;
    f[10] |= 0x01;
    assert_eq!(
        parse(RT, &capture(&rt(0), &f, false)),
        Err(Skip::GroupAddress)
    );
    // IE length past the end.
    let mut f = PROBE_REQ;
    f[PROBE_REQ.len() - 9] = 20;
    assert_eq!(
        parse(RT, &capture(&rt(0), &f, false)),
        Err(Skip::MalformedIe)
    );
    // A malformed IE in a data frame body is never looked at.
    assert!(parse(RT, &capture(&rt(0), &DATA_TODS, false)).is_ok());
    // Radiotap problems.
    assert_eq!(parse(RT, &RT_SIMPLE[..5]), Err(Skip::TruncatedRadiotap));
    let mut b = capture(&RT_SIMPLE, &PROBE_REQ, true);
    b[2] = 4; // it_len below 8
    assert_eq!(parse(RT, &b), Err(Skip::MalformedRadiotap));
    let mut b = RT_SIMPLE.to_vec();
    b[2] = 200; // it_len past the buffer
    assert_eq!(parse(RT, &b), Err(Skip::TruncatedRadiotap));
    // 802.11 frame too short, or shorter than its FCS.
    assert_eq!(
        parse(RT, &capture(&rt(0), &PROBE_REQ[..20], false)),
        Err(Skip::Truncated80211)
    );
    assert_eq!(
        parse(
            RT,
            &capture(&rt(radiotap::FLAG_FCS_AT_END), &[0x40, 0], false)
        ),
        Err(Skip::Truncated80211)
    );
    // Protocol version 1.
    let mut f = PROBE_REQ;
    f[0] |= 2;
    assert_eq!(
        parse(RT, &capture(&rt(0), &f, false)),
        Err(Skip::Malformed80211)
    );
}

#[test]
fn every_truncation_is_skipped() {
    let caps = [
        capture(&RT_SIMPLE, &PROBE_REQ, true),
        capture(&RT_MAC80211, &ASSOC_REQ, false),
        capture(&RT_VENDOR, &QOS_NULL, true),
        capture(&RT_EXT, &AUTH_REQ, false),
    ];
    for cap in &caps {
        assert!(parse(RT, cap).is_ok());
        for cut in 0..cap.len() {
            let r = parse(RT, &cap[..cut]);
            // Cutting a frame without FCS may leave a shorter but valid body (auth/assoc IEs
            // cut at an IE boundary are fine); cutting into the header or an FCS must fail.
            if let Ok(p) = r {
                assert_ne!(p.kind, FrameKind::ProbeRequest, "cut {cut}");
            }
        }
        for cut in 0..cap.len() {
            let _ = parse(LINKTYPE_IEEE802_11, &cap[..cut]);
        }
    }
    // With an FCS, every cut must be rejected; when the record says how long the frame was,
    // a cut past the radiotap header is a truncation, not a bad FCS.
    for cap in [&caps[0], &caps[2]] {
        let it_len = usize::from(u16::from_le_bytes([cap[2], cap[3]]));
        for cut in 0..cap.len() {
            assert!(parse(RT, &cap[..cut]).is_err(), "cut {cut}");
            let r = parse_record(RT, &cap[..cut], cap.len());
            if cut >= it_len {
                assert_eq!(r, Err(Skip::Truncated80211), "cut {cut}");
            } else {
                assert_eq!(r, Err(Skip::TruncatedRadiotap), "cut {cut}");
            }
        }
        assert!(parse_record(RT, cap, cap.len()).is_ok());
    }
}

#[test]
fn skip_all_labels() {
    assert_eq!(Skip::ALL.len(), 10);
    assert_eq!(Skip::BadFcs.label(), "bad_fcs");
    assert_eq!(Skip::Truncated80211.label(), "truncated_80211");
}
