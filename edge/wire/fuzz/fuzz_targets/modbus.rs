//! Fuzz target for Modbus RTU: the whole input as one response frame (view, Repr round trip)
//! and as one request; then `slave, function selector, quantity, chunk size` followed by line
//! bytes pushed through the streaming `ResponseReader` in chunks: only the awaited frame is
//! delivered, every byte is delivered, skipped or buffered, the buffer stays bounded, never a
//! panic. The checks are `edge_wire::modbus::fuzz_check`, which the unit tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| edge_wire::modbus::fuzz_check(input));
