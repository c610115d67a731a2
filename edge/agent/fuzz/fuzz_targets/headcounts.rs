//! Fuzz target for head-count files (`store-edge calibrate --headcounts`): the input, as text,
//! goes through `calibrate::parse_headcounts` in a time zone with daylight saving (skipped and
//! repeated local hours) and must either give counts (finite, non-negative people, a known zone
//! or none) or an error naming a line within the file and one of the three columns; never a
//! panic.
#![no_main]

use edge_agent::calibrate::parse_headcounts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zones = ["entrance".to_string(), "checkout".to_string()];
    match parse_headcounts(text, "h.csv", chrono_tz::Europe::Paris, &zones) {
        Ok(counts) => {
            assert!(!counts.is_empty());
            for c in &counts {
                assert!(c.people.is_finite() && c.people >= 0.0, "{c:?}");
                assert!(c.zone.as_ref().is_none_or(|z| zones.contains(z)), "{c:?}");
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}");
            assert!(["time", "people", "zone"].contains(&e.column), "{e}");
            assert!(e.to_string().starts_with("h.csv:"), "{e}");
        }
    }
});
