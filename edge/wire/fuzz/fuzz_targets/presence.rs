//! Fuzz target for `presence::parse`: the first byte picks the linktype (radiotap, plain
//! 802.11 or something unsupported), the rest is the captured frame.
#![no_main]

use edge_wire::pcap::{LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP, LINKTYPE_PPI};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let linktype = match sel % 3 {
        0 => LINKTYPE_IEEE802_11_RADIOTAP,
        1 => LINKTYPE_IEEE802_11,
        _ => LINKTYPE_PPI,
    };
    if let Ok(p) = edge_wire::presence::parse(linktype, frame) {
        // Invariants of an accepted frame.
        assert_eq!(linktype, LINKTYPE_IEEE802_11_RADIOTAP);
        assert!(!p.mac.is_group());
        assert!(p.seq.is_some_and(|s| s < 4096));
    }
});
