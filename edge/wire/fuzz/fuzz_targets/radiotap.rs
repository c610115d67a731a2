//! Fuzz target for the radiotap view, field walker and Repr: no panics, walked fields stay
//! inside `it_len`, and a parsed Repr survives an emit/parse round trip.
#![no_main]

use edge_wire::radiotap::{Header, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Header::new_unchecked(data);
    let _ = h.present_words().count();
    for f in h.fields().flatten() {
        assert!(f.offset + f.data.len() <= usize::from(h.len()));
    }
    if let Ok(r) = Repr::parse(&h) {
        let mut buf = vec![0u8; r.buffer_len()];
        let n = r.emit(&mut buf).expect("buffer_len is enough");
        let again = Repr::parse(&Header::new_checked(&buf[..n]).expect("emitted header checks"))
            .expect("emitted header parses");
        assert_eq!(again, r);
    }
});
