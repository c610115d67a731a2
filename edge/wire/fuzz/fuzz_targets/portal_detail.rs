//! Fuzz target for the FreeRADIUS `detail` framer and `AccountingRepr`: any bytes, walked as a
//! follower walks a file, give records or errors whose consumed/skip counts move forward inside
//! the buffer, never a panic; every record and accounting Repr read survives emit → parse.
#![no_main]

use edge_wire::portal::detail::{next_accounting, next_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let framed = next_record(rest);
        let accounting = next_accounting(rest);
        let step = match framed {
            Ok(None) => {
                assert_eq!(accounting, Ok(None));
                break;
            }
            Err(e) => {
                assert!(e.skip() > 0 && e.skip() <= rest.len());
                assert_eq!(accounting, Err(e.clone()));
                e.skip()
            }
            Ok(Some((rec, n))) => {
                assert!(n > 0 && n <= rest.len());
                match accounting {
                    Ok(Some((r, m))) => {
                        assert_eq!(m, n);
                        let mut out = Vec::new();
                        r.emit(&rec.header, &mut out);
                        assert_eq!(next_accounting(&out), Ok(Some((r, out.len()))));
                    }
                    // Attribute errors skip the record and the blank lines after it.
                    Err(e) => assert!(e.skip() >= n && e.skip() <= rest.len()),
                    Ok(None) => panic!("next_record found a record, next_accounting none"),
                }
                let mut out = Vec::new();
                rec.emit(&mut out);
                assert_eq!(next_record(&out), Ok(Some((rec, out.len()))));
                n
            }
        };
        pos += step;
    }
});
