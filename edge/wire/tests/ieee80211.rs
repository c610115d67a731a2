//! 802.11 fixtures: header fields, IEs, client detection, Repr round trips, truncation.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod fixtures;

use edge_wire::ieee80211::{
    client_frame, ie, Fixed, Frame, FrameKind, ProbeRequestRepr, Repr, FLAG_PROTECTED, FLAG_RETRY,
};
use edge_wire::{Error, MacAddr};
use fixtures::*;

fn ies(frame: &[u8]) -> Vec<(u8, Vec<u8>)> {
    Frame::new_checked(frame)
        .unwrap()
        .ies()
        .unwrap()
        .map(|e| e.map(|e| (e.id, e.data.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn probe_request_fields() {
    let f = Frame::new_checked(&PROBE_REQ[..]).unwrap();
    assert_eq!(f.frame_control(), 0x0040);
    assert_eq!((f.frame_type(), f.subtype()), (0, 4));
    assert_eq!(f.kind(), FrameKind::ProbeRequest);
    assert!(!f.to_ds() && !f.from_ds() && !f.retry() && !f.protected());
    assert_eq!(f.addr1(), MacAddr::BROADCAST);
    assert_eq!(f.addr2(), CLIENT);
    assert_eq!(f.addr3(), MacAddr::BROADCAST);
    assert_eq!(f.seq_ctrl(), 0x1230);
    assert_eq!(f.sequence_number(), 291);
    assert_eq!(f.fragment_number(), 0);
    assert_eq!(f.header_len(), 24);
    assert_eq!(f.body().len(), PROBE_REQ.len() - 24);
    let ids: Vec<u8> = ies(&PROBE_REQ).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [0, 1, 3, 45, 221, 127]);
    assert_eq!(ies(&PROBE_REQ)[0].1, b"Shop");
    assert_eq!(ies(&PROBE_REQ)[3].1.len(), 26);
    let vendor = f.ies().unwrap().nth(4).unwrap().unwrap();
    assert_eq!(vendor.vendor_oui_type(), Some(([0x00, 0x50, 0xf2], 8)));
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::ProbeRequest)));
}

#[test]
fn assoc_reassoc_auth_fixed_fields() {
    let f = Frame::new_checked(&ASSOC_REQ[..]).unwrap();
    assert_eq!(f.fixed_fields(), [0x31, 0x04, 0x0a, 0x00]);
    assert_eq!(ies(&ASSOC_REQ).len(), 2);
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::AssocRequest)));
    let r = Repr::parse(&f).unwrap();
    assert_eq!(
        r.fixed,
        Fixed::AssocRequest {
            capability: 0x0431,
            listen_interval: 10
        }
    );
    assert_eq!(r.duration, 314);

    let f = Frame::new_checked(&REASSOC_REQ[..]).unwrap();
    assert!(f.retry());
    assert_eq!((f.sequence_number(), f.fragment_number()), (6, 1));
    assert_eq!(ies(&REASSOC_REQ), [(0, b"Shop".to_vec())]);
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::ReassocRequest)));
    assert_eq!(
        Repr::parse(&f).unwrap().fixed,
        Fixed::ReassocRequest {
            capability: 0x0431,
            listen_interval: 10,
            current_ap: HOST
        }
    );

    let f = Frame::new_checked(&AUTH_REQ[..]).unwrap();
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::Authentication)));
    assert_eq!(
        Repr::parse(&f).unwrap().fixed,
        Fixed::Authentication {
            algorithm: 0,
            transaction: 1,
            status: 0
        }
    );
    assert_eq!(f.ies().unwrap().count(), 0);
    // The AP's answer has addr2 == addr3.
    let f = Frame::new_checked(&AUTH_RESP[..]).unwrap();
    assert_eq!(f.kind(), FrameKind::Authentication);
    assert_eq!(client_frame(&f), None);
}

#[test]
fn data_frames() {
    let f = Frame::new_checked(&DATA_TODS[..]).unwrap();
    assert!(f.to_ds() && !f.from_ds() && f.protected());
    assert_eq!(f.sequence_number(), 4095);
    assert_eq!(f.header_len(), 24);
    assert_eq!(f.body().len(), 12);
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::Data)));

    let f = Frame::new_checked(&NULL_DATA[..]).unwrap();
    assert_eq!(f.kind(), FrameKind::NullData);
    assert!(f.body().is_empty());
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::NullData)));

    let f = Frame::new_checked(&QOS_NULL[..]).unwrap();
    assert_eq!(f.header_len(), 26);
    assert_eq!(f.qos_control(), Some(7));
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::QosNull)));

    let f = Frame::new_checked(&QOS_DATA[..]).unwrap();
    assert_eq!(f.header_len(), 26);
    assert_eq!(f.body(), [0xaa, 0xaa, 0x03, 0x00]);
    assert_eq!(client_frame(&f), Some((CLIENT, FrameKind::QosData)));
}

#[test]
fn not_clients() {
    let f = Frame::new_checked(&BEACON[..]).unwrap();
    assert_eq!(f.kind(), FrameKind::Other);
    assert_eq!(f.sequence_number(), 1000);
    // Beacon IEs start after 12 bytes of fixed fields.
    assert_eq!(ies(&BEACON), [(0, b"Shop".to_vec())]);
    assert_eq!(client_frame(&f), None);
    assert!(Repr::parse(&f).is_err());

    let f = Frame::new_checked(&DATA_FROMDS[..]).unwrap();
    assert!(f.from_ds() && !f.to_ds());
    assert_eq!(client_frame(&f), None);

    // ACK (control): 10-byte header, never a client.
    let ack = [0xd4, 0x00, 0x00, 0x00, 0xda, 0xa1, 0x19, 0x12, 0x34, 0x56];
    let f = Frame::new_checked(&ack[..]).unwrap();
    assert_eq!(f.header_len(), 10);
    assert_eq!(client_frame(&f), None);

    // 4-address data (WDS) is not a client transmission.
    let mut wds = [0u8; 30];
    wds[..2].copy_from_slice(&[0x08, 0x03]);
    let f = Frame::new_checked(&wds[..]).unwrap();
    assert_eq!(f.header_len(), 30);
    assert!(f.addr4().is_some());
    assert_eq!(client_frame(&f), None);
}

#[test]
fn every_truncation_fails_or_is_shorter() {
    let all: [&[u8]; 11] = [
        &PROBE_REQ,
        &ASSOC_REQ,
        &REASSOC_REQ,
        &AUTH_REQ,
        &AUTH_RESP,
        &DATA_TODS,
        &NULL_DATA,
        &QOS_NULL,
        &QOS_DATA,
        &BEACON,
        &DATA_FROMDS,
    ];
    for fx in all {
        let header_len = Frame::new_checked(fx).unwrap().header_len();
        let full_ok = Frame::new_checked(fx).map(|f| Repr::parse(&f).is_ok());
        for cut in 0..fx.len() {
            let b = &fx[..cut];
            let checked = Frame::new_checked(b);
            assert_eq!(checked.is_err(), cut < header_len, "cut {cut}");
            // Any cut inside the IEs or fixed fields breaks Repr::parse for mgmt frames.
            if let (Ok(f), Ok(true)) = (&checked, &full_ok) {
                let mgmt = f.frame_type() == 0;
                let ies_complete =
                    ie::Iter::new(f.body().get(f.kind().fixed_len()..).unwrap_or(&[9]))
                        .all(|e| e.is_ok())
                        && f.body().len() >= f.kind().fixed_len();
                assert_eq!(Repr::parse(f).is_ok(), !mgmt || ies_complete, "cut {cut}");
            }
            // Unchecked getters never panic.
            let u = Frame::new_unchecked(b);
            let _ = (
                u.addr1(),
                u.addr2(),
                u.addr3(),
                u.seq_ctrl(),
                u.body(),
                u.qos_control(),
            );
            let _ = client_frame(&u);
            if let Ok(it) = u.ies() {
                let _ = it.count();
            }
        }
    }
}

#[test]
fn ie_length_past_end() {
    let mut f = PROBE_REQ.to_vec();
    // Last IE (ext caps, len 8) now claims 9 bytes.
    let last = f.len() - 10;
    f[last + 1] = 9;
    let frame = Frame::new_checked(&f[..]).unwrap();
    let items: Vec<_> = frame.ies().unwrap().collect();
    assert_eq!(items.len(), 6);
    assert!(matches!(items[5], Err(Error::Truncated { .. })));
    assert!(Repr::parse(&frame).is_err());
}

#[test]
fn version_must_be_zero() {
    let mut f = PROBE_REQ;
    f[0] |= 0x01;
    assert!(matches!(
        Frame::new_checked(&f[..]),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn repr_round_trips_every_fixture() {
    let all: [&[u8]; 9] = [
        &PROBE_REQ,
        &ASSOC_REQ,
        &REASSOC_REQ,
        &AUTH_REQ,
        &AUTH_RESP,
        &DATA_TODS,
        &NULL_DATA,
        &QOS_NULL,
        &QOS_DATA,
    ];
    for fx in all.into_iter().chain([&DATA_FROMDS[..]]) {
        let frame = Frame::new_checked(fx).unwrap();
        let r = Repr::parse(&frame).unwrap();
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut buf), Ok(fx.len()));
        assert_eq!(&buf[..], fx, "{:?}", r.kind);
        assert_eq!(
            Repr::parse(&Frame::new_checked(&buf[..]).unwrap()).unwrap(),
            r
        );
        assert!(r.emit(&mut buf[..fx.len() - 1]).is_err());
    }
}

#[test]
fn repr_rejects_mismatched_fixed() {
    let frame = Frame::new_checked(&AUTH_REQ[..]).unwrap();
    let mut r = Repr::parse(&frame).unwrap();
    r.fixed = Fixed::None;
    assert!(r.emit(&mut [0u8; 64]).is_err());
    r.kind = FrameKind::Other;
    assert!(r.emit(&mut [0u8; 64]).is_err());
}

#[test]
fn probe_request_builder_matches_fixture() {
    let f = Frame::new_checked(&PROBE_REQ[..]).unwrap();
    let owned: Vec<(u8, Vec<u8>)> = ies(&PROBE_REQ);
    let list: Vec<(u8, &[u8])> = owned.iter().map(|(i, d)| (*i, &d[..])).collect();
    let p = ProbeRequestRepr::new(CLIENT, f.sequence_number(), &list);
    let mut buf = vec![0u8; p.buffer_len()];
    assert_eq!(p.emit(&mut buf), Ok(PROBE_REQ.len()));
    assert_eq!(&buf[..], &PROBE_REQ[..]);
    let p = ProbeRequestRepr {
        flags: FLAG_RETRY | FLAG_PROTECTED,
        ..p
    };
    p.emit(&mut buf).unwrap();
    assert_eq!(buf[1], FLAG_RETRY | FLAG_PROTECTED);
}
