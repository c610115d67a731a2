//! Fuzz target for Milesight VS13x uplinks: the input as payload bytes (records tile it in
//! order, a parsed Repr survives an emit/parse round trip) and as hex/base64 text, never a
//! panic. The checks are `edge_wire::milesight::fuzz_check`, which the unit tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| edge_wire::milesight::fuzz_check(input));
