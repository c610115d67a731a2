//! Fuzz target for the openNDS BinAuth log line parser: any text gives a Repr or an error,
//! never a panic; every Repr read survives emit → parse unchanged, and field lookups (also
//! inside the custom payload) never panic.
#![no_main]

use edge_wire::portal::binauth::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Ok(r) = parse_line(&line) {
        assert!(!r.method.trim().is_empty());
        let again = r.emit();
        assert!(!again.contains('\n'));
        assert_eq!(parse_line(&again).as_ref(), Ok(&r));
        let _ = (r.field("custom.phone"), r.field("custom"), r.field("x.y.z"));
    }
});
