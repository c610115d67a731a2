//! Fuzz target for the people-counter JSON dialects (Xovis v5, Xovis legacy, Irisys, AXIS live-sum): the low nibble of the first byte picks the
//! dialect, the high nibble the store's UTC offset, the rest is the HTTP body. Errors carry a
//! known reason and the right dialect; parsed pushes hold only non-empty, bounded line names
//! and intervals that end after they start; whatever `emit` can write parses back equal.
//! The checks are `edge_wire::counter::fuzz_check`, which the unit tests also run. Seeds in `seeds/counter_json` (the fixtures of hardware-profiles/counter).
#![no_main]

use edge_wire::counter::{fuzz_check, FUZZ_JSON};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_check(&FUZZ_JSON, data));
