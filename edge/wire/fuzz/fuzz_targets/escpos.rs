//! Fuzz target for the ESC/POS receipt decoder: any bytes, pushed in chunks of a size the input
//! picks with one of four printer configurations, give receipts whose offsets tile the stream
//! in order and stay inside what was fed, never a panic. The unit test
//! `escpos::receipt::tests::fuzz_one` runs the same checks on the seeds.
#![no_main]

use edge_wire::escpos::{DecoderConfig, Encoding, ReceiptDecoder, EPSON_CODE_TABLES};
use libfuzzer_sys::fuzz_target;

/// The configuration picked by the second input byte.
fn config(sel: u8) -> DecoderConfig {
    match sel % 4 {
        0 => DecoderConfig::chinese(Encoding::Gb18030),
        1 => DecoderConfig {
            double_byte: Some(Encoding::Big5),
            ..DecoderConfig::new(Encoding::Cp437)
        },
        2 => DecoderConfig {
            code_tables: EPSON_CODE_TABLES.to_vec(),
            boundary_on_drawer_kick: true,
            ..DecoderConfig::new(Encoding::Cp858)
        },
        _ => DecoderConfig {
            max_receipt_bytes: 64,
            ..DecoderConfig::new(Encoding::Windows1252)
        },
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: chunk size (1–255); second: configuration; the rest is the stream.
    let [chunk, sel, data @ ..] = input else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let mut d = ReceiptDecoder::new(config(*sel));
    let mut out = Vec::new();
    let mut fed = 0u64;
    let mut t = 0i64;
    for part in data.chunks(chunk) {
        fed += part.len() as u64;
        t += 10;
        d.push(part, t, &mut out);
        assert_eq!(d.offset(), fed);
        assert!(d.committed_offset() <= fed);
        if t % 70 == 0 {
            out.extend(d.idle(t + 1_000, 500));
        }
    }
    out.extend(d.finish());
    assert_eq!(d.committed_offset(), fed);
    let mut last_end = 0;
    for r in &out {
        assert!(last_end <= r.start_offset && r.start_offset < r.end_offset);
        assert!(r.end_offset <= fed);
        assert!(r.first_ms <= r.last_ms);
        assert!(!r.lines.is_empty() || !r.qr.is_empty() || !r.barcodes.is_empty());
        last_end = r.end_offset;
    }
    let s = d.stats();
    assert_eq!(s.receipts, out.len() as u64);
    assert_eq!(s.bytes, fed);
});
