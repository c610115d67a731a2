//! Fuzz target for the streaming capture reader (pcap and pcapng): any bytes, handed over in
//! reads of a size the input picks, give an error or a finite run of records whose data fits
//! in the file, never a panic.
#![no_main]

use std::io::{self, Read};

use edge_wire::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

/// Hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(first).max(1);
    let Ok(mut r) = CaptureReader::new(Chunked { data, chunk }) else {
        return;
    };
    let mut total = 0usize;
    let mut records = 0usize;
    while let Ok(Some(rec)) = r.next_record() {
        total += rec.data.len();
        records += 1;
        assert!(total <= data.len());
        assert!(records <= data.len() / 16);
    }
});
