//! Fuzz target for the ESC/POS receipt decoder: any bytes, pushed in chunks of a size the input
//! picks with one of four printer configurations, give receipts whose offsets tile the stream
//! in order and stay inside what was fed, never a panic. The checks are
//! `edge_wire::escpos::fuzz_check`, which the unit tests also run on the seeds.
#![no_main]

use edge_wire::escpos::fuzz_check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| fuzz_check(input));
