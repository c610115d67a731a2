//! A minimal little-endian pcapng [`Writer`]: one Section Header Block, one Interface
//! Description Block (default `if_tsresol`, microseconds) and Enhanced Packet Blocks.
//!
//! Every block is `u32 type, u32 total_len, body, u32 total_len`, padded to 4 bytes.

use std::io;

use crate::bytes::slice;

/// Section Header Block type.
pub const BLOCK_SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block type.
pub const BLOCK_IDB: u32 = 0x0000_0001;
/// Enhanced Packet Block type.
pub const BLOCK_EPB: u32 = 0x0000_0006;
/// Byte-order magic inside the SHB.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// SHB: type, len, magic, major, minor, section length (i64), len.
const SHB_LEN: u32 = 28;
/// IDB without options: type, len, linktype, reserved, snaplen, len.
const IDB_LEN: u32 = 20;
/// EPB without data or options: type, len, if_id, ts_hi, ts_lo, cap_len, orig_len, len.
const EPB_FIXED_LEN: usize = 32;

/// Writes a little-endian pcapng file with one interface.
#[derive(Debug)]
pub struct Writer<W: io::Write> {
    inner: W,
    snaplen: u32,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl<W: io::Write> Writer<W> {
    /// Writes the SHB and the IDB for `linktype` (must fit in 16 bits).
    pub fn new(mut inner: W, linktype: u32, snaplen: u32) -> io::Result<Self> {
        let linktype =
            u16::try_from(linktype).map_err(|_| invalid("pcapng linktype exceeds 16 bits"))?;
        let mut shb = Vec::with_capacity(SHB_LEN as usize);
        shb.extend_from_slice(&BLOCK_SHB.to_le_bytes());
        shb.extend_from_slice(&SHB_LEN.to_le_bytes());
        shb.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes()); // major
        shb.extend_from_slice(&0u16.to_le_bytes()); // minor
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        shb.extend_from_slice(&SHB_LEN.to_le_bytes());
        inner.write_all(&shb)?;

        let mut idb = Vec::with_capacity(IDB_LEN as usize);
        idb.extend_from_slice(&BLOCK_IDB.to_le_bytes());
        idb.extend_from_slice(&IDB_LEN.to_le_bytes());
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes()); // reserved
        idb.extend_from_slice(&snaplen.to_le_bytes());
        idb.extend_from_slice(&IDB_LEN.to_le_bytes());
        inner.write_all(&idb)?;
        Ok(Writer { inner, snaplen })
    }

    /// Writes one Enhanced Packet Block stamped `ts_micros` (Unix µs), truncated to the
    /// snaplen (0 means unlimited in pcapng).
    pub fn write_packet(&mut self, ts_micros: i64, data: &[u8]) -> io::Result<()> {
        let ts = u64::try_from(ts_micros).map_err(|_| invalid("negative pcapng timestamp"))?;
        let orig_len = u32::try_from(data.len()).map_err(|_| invalid("packet too long"))?;
        let cap_len = if self.snaplen == 0 {
            orig_len
        } else {
            orig_len.min(self.snaplen)
        };
        let cap = cap_len as usize;
        let padded = cap.next_multiple_of(4);
        let total =
            u32::try_from(EPB_FIXED_LEN + padded).map_err(|_| invalid("packet too long"))?;
        let mut head = [0u8; 28];
        let fields = [
            BLOCK_EPB,
            total,
            0, // interface id
            (ts >> 32) as u32,
            ts as u32,
            cap_len,
            orig_len,
        ];
        for (chunk, v) in head.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        self.inner.write_all(&head)?;
        self.inner.write_all(slice(data, 0, cap))?;
        self.inner.write_all(slice(&[0u8; 3], 0, padded - cap))?;
        self.inner.write_all(&total.to_le_bytes())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Returns the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.inner
    }
}
