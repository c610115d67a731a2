//! Fuzz target for the 802.11 view and Repr: no getter panics on a checked frame, and every
//! frame `Repr::parse` accepts survives an emit/parse round trip unchanged.
#![no_main]

use edge_wire::ieee80211::{ie, Frame, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::new_checked(data) else {
        return;
    };
    let _ = (frame.kind(), frame.addr1(), frame.addr2(), frame.addr3(), frame.addr4());
    let _ = (frame.sequence_number(), frame.qos_control(), frame.header_len());
    if let Ok(r) = Repr::parse(&frame) {
        // Validated IEs iterate to the end without error.
        assert!(ie::Iter::new(r.ies).all(|e| e.is_ok()));
        let mut buf = vec![0u8; r.buffer_len()];
        let n = r.emit(&mut buf).expect("buffer_len is enough");
        let again = Frame::new_checked(&buf[..n]).expect("emitted frame checks");
        assert_eq!(Repr::parse(&again).expect("emitted frame parses"), r);
    }
});
