//! Bad input never stops the agent: garbled and truncated frames, unknown link types, corrupt
//! pcap headers and files cut mid-record are skipped and counted per reason, and everything
//! else in the capture is still processed.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use edge_e2e::{counter, counters, run_once, simulate, visits};
use edge_wire::pcap::{Records, Writer};
use edge_wire::presence;

/// A tiny deterministic generator for garbage bytes (xorshift64*).
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Radiotap length of a frame (bytes 2..4, little endian).
fn it_len(d: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([d[2], d[3]]))
}

/// One surgical corruption per reason, applied to a record that parsed as a sighting.
fn corrupt(kind: usize, d: &[u8]) -> (Vec<u8>, &'static str) {
    let mut v = d.to_vec();
    let h = it_len(d);
    match kind {
        0 => (v[..3].to_vec(), "truncated_radiotap"),
        1 => {
            v[0] = 1; // radiotap version must be 0
            (v, "malformed_radiotap")
        }
        2 => (v[..h + 10].to_vec(), "truncated_80211"),
        3 => {
            v[h] |= 0x01; // 802.11 protocol version 1
            (v, "malformed_80211")
        }
        _ => {
            v[h + 10] |= 0x01; // transmitter address becomes a group address
            (v, "group_address")
        }
    }
}

fn write_pcap(path: &Path, linktype: u32, records: &[(i64, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = Writer::new(f, linktype, 65_535).unwrap();
    for (ts, d) in records {
        w.write_packet(*ts, d).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn every_bad_record_is_skipped_and_counted_and_the_rest_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut p = edge_sim::SimParams::new(21, date, 60, 1);
    p.history_days = 1;
    let w = simulate(dir.path(), &p);
    let good_path = &w.files[0].path;
    let bytes = std::fs::read(good_path).unwrap();
    let (hdr, records) = Records::new(&bytes).unwrap();
    let records: Vec<(i64, Vec<u8>)> = records
        .map(|r| {
            let r = r.unwrap();
            (r.header.ts_micros(hdr.nanosecond), r.data.to_vec())
        })
        .collect();
    let n = records.len();
    assert!(n > 5_000);

    // "garbled": every 50th clean sighting gets one of five corruptions, every 97th record is
    // replaced by garbage of random length.
    let mut g = Garbage(0x5eed);
    let mut want: Vec<(&str, u64)> = Vec::new();
    let mut garbage = 0u64;
    let mut clean_seen = 0usize;
    let garbled: Vec<(i64, Vec<u8>)> = records
        .iter()
        .enumerate()
        .map(|(i, (ts, d))| {
            if i % 97 == 96 {
                garbage += 1;
                let len = (g.next() % 300) as usize;
                return (*ts, g.bytes(len));
            }
            if presence::parse(hdr.linktype, d).is_ok() {
                clean_seen += 1;
                if clean_seen.is_multiple_of(50) {
                    let (v, reason) = corrupt(clean_seen / 50 % 5, d);
                    match want.iter_mut().find(|(r, _)| *r == reason) {
                        Some(e) => e.1 += 1,
                        None => want.push((reason, 1)),
                    }
                    return (*ts, v);
                }
            }
            (*ts, d.clone())
        })
        .collect();
    write_pcap(&dir.path().join("garbled.pcap"), hdr.linktype, &garbled);
    // "ethernet": the same records under link type 1.
    write_pcap(&dir.path().join("ethernet.pcap"), 1, &records[..500]);
    // "corrupt-header": the file header is garbage.
    let mut bad_header = bytes.clone();
    bad_header[..24].copy_from_slice(&g.bytes(24));
    std::fs::write(dir.path().join("corrupt-header.pcap"), bad_header).unwrap();
    // "cut": the file ends in the middle of a record.
    let full_records_in_cut = 1000;
    let cut_at = {
        let mut off = 24;
        for (_, d) in &records[..full_records_in_cut] {
            off += 16 + d.len();
        }
        off + 16 + 5 // header of the next record and 5 of its bytes
    };
    std::fs::write(dir.path().join("cut.pcap"), &bytes[..cut_at]).unwrap();

    let mut config = std::fs::read_to_string(&w.config_path).unwrap();
    for name in ["garbled", "ethernet", "corrupt-header", "cut"] {
        config.push_str(&format!(
            "\n[[sources.wifi]]\nname = \"{name}\"\nzone = \"{name}\"\npcap = \"{name}.pcap\"\n"
        ));
    }
    std::fs::write(&w.config_path, config).unwrap();
    let out = run_once(&w.config_path);
    let summary = String::from_utf8_lossy(&out.stderr);
    println!("{summary}");

    let data = dir.path().join("data");
    let good = w.files[0].zone.as_str();
    let base = |reason: &str| counter(&data, good, &format!("skipped_{reason}"));
    // The clean source is fully processed, with the simulator's injected bad frames counted.
    assert_eq!(counter(&data, good, "frames_read"), n as u64);
    let injected = &w.truth.files[0].injected;
    assert!(base("bad_fcs") >= injected.bad_fcs_flag + injected.fcs_mismatch);
    assert_eq!(base("not_client"), injected.beacons);
    assert!(visits(&data).iter().any(|v| v.class == "visitor"));

    // Garbled: each surgical corruption lands in its own reason, on top of what the clean
    // copy already had; garbage lands somewhere, and every record is accounted for.
    let garbled_counts = counters(&data, "garbled");
    println!("garbled: {garbled_counts:?}");
    assert_eq!(counter(&data, "garbled", "frames_read"), n as u64);
    for (reason, extra) in &want {
        let got = counter(&data, "garbled", &format!("skipped_{reason}"));
        assert!(
            got >= base(reason) + extra,
            "{reason}: {got} < {} + {extra}",
            base(reason)
        );
    }
    assert!(want.len() == 5 && garbage > 50);
    let skipped: u64 = garbled_counts
        .iter()
        .filter(|(k, _)| k.starts_with("skipped_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        skipped + counter(&data, "garbled", "sightings"),
        n as u64,
        "every record is a sighting or a counted skip"
    );

    // Unknown link type: every record counted as such.
    assert_eq!(counter(&data, "ethernet", "frames_read"), 500);
    assert_eq!(
        counter(&data, "ethernet", "skipped_unsupported_link_type"),
        500
    );
    // Corrupt header: the file is refused and counted, nothing read from it.
    assert_eq!(counter(&data, "corrupt-header", "read_errors"), 1);
    assert_eq!(counter(&data, "corrupt-header", "frames_read"), 0);
    // Cut file: every whole record before the cut is read, the torn one is an error.
    assert_eq!(
        counter(&data, "cut", "frames_read"),
        full_records_in_cut as u64
    );
    assert_eq!(counter(&data, "cut", "read_errors"), 1);
    assert!(
        summary.contains("source cut: 1000 records read"),
        "{summary}"
    );
}
