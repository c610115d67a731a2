//! Fuzz target for the pcap file reader: any bytes give a header error or a finite run of
//! records whose data lies inside the file, never a panic.
#![no_main]

use edge_wire::pcap::Records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, records)) = Records::new(data) {
        let mut total = 0usize;
        for rec in records.flatten() {
            total += rec.data.len();
            assert!(total <= data.len());
        }
    }
});
