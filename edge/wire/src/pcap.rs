//! Classic pcap files: the [`FileHeader`] and [`RecordHeader`] views and Reprs, a zero-copy
//! [`Records`] iterator over an in-memory file, and a little-endian [`Writer`] (the only part
//! that does I/O).
//!
//! Layout (draft-ietf-opsawg-pcap): a 24-byte file header in the writer's byte order, given away
//! by the magic number, then records of a 16-byte header plus `incl_len` bytes.

use std::io;

use crate::bytes::{array, put, slice, tail};
use crate::error::{Error, Result};

pub use crate::pcapng;

/// Linktype: plain IEEE 802.11 (no radio information).
pub const LINKTYPE_IEEE802_11: u32 = 105;
/// Linktype: Prism monitor-mode header + 802.11.
pub const LINKTYPE_PRISM: u32 = 119;
/// Linktype: radiotap header + 802.11.
pub const LINKTYPE_IEEE802_11_RADIOTAP: u32 = 127;
/// Linktype: Per-Packet Information header + 802.11.
pub const LINKTYPE_PPI: u32 = 192;

/// Magic of a microsecond-resolution file, as written by its writer.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of a nanosecond-resolution file.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Byte offsets of the file header and record header.
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION_MAJOR: usize = 4;
    pub const VERSION_MINOR: usize = 6;
    pub const THISZONE: usize = 8;
    pub const SIGFIGS: usize = 12;
    pub const SNAPLEN: usize = 16;
    pub const LINKTYPE: usize = 20;
    pub const FILE_HEADER_LEN: usize = 24;

    pub const TS_SEC: usize = 0;
    pub const TS_FRAC: usize = 4;
    pub const INCL_LEN: usize = 8;
    pub const ORIG_LEN: usize = 12;
    pub const RECORD_HEADER_LEN: usize = 16;
}

/// Length of the file header.
pub const FILE_HEADER_LEN: usize = field::FILE_HEADER_LEN;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = field::RECORD_HEADER_LEN;

/// Byte order of a pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// Little-endian (what this crate writes).
    #[default]
    Little,
    /// Big-endian.
    Big,
}

impl ByteOrder {
    fn u16(self, b: &[u8], off: usize) -> u16 {
        array(b, off).map_or(0, |a| match self {
            ByteOrder::Little => u16::from_le_bytes(a),
            ByteOrder::Big => u16::from_be_bytes(a),
        })
    }

    fn u32(self, b: &[u8], off: usize) -> u32 {
        array(b, off).map_or(0, |a| match self {
            ByteOrder::Little => u32::from_le_bytes(a),
            ByteOrder::Big => u32::from_be_bytes(a),
        })
    }
}

/// A view of the 24-byte pcap file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FileHeader<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        FileHeader { buffer }
    }

    /// Wraps `buffer` and runs [`FileHeader::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the length and the magic number.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < field::FILE_HEADER_LEN {
            return Err(Error::truncated(
                "pcap file header",
                0,
                field::FILE_HEADER_LEN,
                have,
            ));
        }
        if self.magic_order().is_none() {
            return Err(Error::UnsupportedVersion {
                what: "pcap magic",
                version: self.magic(),
            });
        }
        Ok(())
    }

    /// The magic as read little-endian.
    pub fn magic(&self) -> u32 {
        ByteOrder::Little.u32(self.buffer.as_ref(), field::MAGIC)
    }

    fn magic_order(&self) -> Option<(ByteOrder, bool)> {
        match self.magic() {
            MAGIC_MICROS => Some((ByteOrder::Little, false)),
            MAGIC_NANOS => Some((ByteOrder::Little, true)),
            m if m.swap_bytes() == MAGIC_MICROS => Some((ByteOrder::Big, false)),
            m if m.swap_bytes() == MAGIC_NANOS => Some((ByteOrder::Big, true)),
            _ => None,
        }
    }

    /// The writer's byte order (little-endian when the magic is unknown).
    pub fn byte_order(&self) -> ByteOrder {
        self.magic_order().map_or(ByteOrder::Little, |(o, _)| o)
    }

    /// Timestamps are in nanoseconds (else microseconds).
    pub fn nanosecond(&self) -> bool {
        self.magic_order().is_some_and(|(_, ns)| ns)
    }

    /// Major version (2).
    pub fn version_major(&self) -> u16 {
        self.byte_order()
            .u16(self.buffer.as_ref(), field::VERSION_MAJOR)
    }

    /// Minor version (4).
    pub fn version_minor(&self) -> u16 {
        self.byte_order()
            .u16(self.buffer.as_ref(), field::VERSION_MINOR)
    }

    /// GMT offset (0 in practice).
    pub fn thiszone(&self) -> i32 {
        self.byte_order().u32(self.buffer.as_ref(), field::THISZONE) as i32
    }

    /// Timestamp accuracy (0 in practice).
    pub fn sigfigs(&self) -> u32 {
        self.byte_order().u32(self.buffer.as_ref(), field::SIGFIGS)
    }

    /// Maximum bytes kept per packet.
    pub fn snaplen(&self) -> u32 {
        self.byte_order().u32(self.buffer.as_ref(), field::SNAPLEN)
    }

    /// Link-layer type (`LINKTYPE_*`). The upper bits (FCS length flags) are masked off.
    pub fn linktype(&self) -> u32 {
        self.byte_order().u32(self.buffer.as_ref(), field::LINKTYPE) & 0x0fff_ffff
    }
}

/// The pcap file header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHeaderRepr {
    /// Nanosecond timestamps (else microseconds).
    pub nanosecond: bool,
    /// Major version.
    pub version_major: u16,
    /// Minor version.
    pub version_minor: u16,
    /// GMT offset.
    pub thiszone: i32,
    /// Timestamp accuracy.
    pub sigfigs: u32,
    /// Snapshot length.
    pub snaplen: u32,
    /// Link-layer type.
    pub linktype: u32,
}

/// The file header Repr under its smoltcp-style name.
pub type Repr = FileHeaderRepr;

impl FileHeaderRepr {
    /// A version 2.4 microsecond header.
    pub const fn new(linktype: u32, snaplen: u32) -> Self {
        FileHeaderRepr {
            nanosecond: false,
            version_major: 2,
            version_minor: 4,
            thiszone: 0,
            sigfigs: 0,
            snaplen,
            linktype,
        }
    }

    /// Reads a checked header (either byte order).
    pub fn parse<T: AsRef<[u8]>>(h: &FileHeader<T>) -> Result<Self> {
        h.check_len()?;
        Ok(FileHeaderRepr {
            nanosecond: h.nanosecond(),
            version_major: h.version_major(),
            version_minor: h.version_minor(),
            thiszone: h.thiszone(),
            sigfigs: h.sigfigs(),
            snaplen: h.snaplen(),
            linktype: h.linktype(),
        })
    }

    /// 24.
    pub const fn buffer_len(&self) -> usize {
        field::FILE_HEADER_LEN
    }

    /// Writes the header little-endian; returns 24.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        Error::check_room("pcap file header", field::FILE_HEADER_LEN, buf.len())?;
        let magic = if self.nanosecond {
            MAGIC_NANOS
        } else {
            MAGIC_MICROS
        };
        put(buf, field::MAGIC, &magic.to_le_bytes());
        put(buf, field::VERSION_MAJOR, &self.version_major.to_le_bytes());
        put(buf, field::VERSION_MINOR, &self.version_minor.to_le_bytes());
        put(buf, field::THISZONE, &self.thiszone.to_le_bytes());
        put(buf, field::SIGFIGS, &self.sigfigs.to_le_bytes());
        put(buf, field::SNAPLEN, &self.snaplen.to_le_bytes());
        put(buf, field::LINKTYPE, &self.linktype.to_le_bytes());
        Ok(field::FILE_HEADER_LEN)
    }
}

/// A view of a 16-byte record header, read in the file's byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader<T: AsRef<[u8]>> {
    buffer: T,
    order: ByteOrder,
}

impl<T: AsRef<[u8]>> RecordHeader<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T, order: ByteOrder) -> Self {
        RecordHeader { buffer, order }
    }

    /// Wraps `buffer` and runs [`RecordHeader::check_len`].
    pub fn new_checked(buffer: T, order: ByteOrder) -> Result<Self> {
        let h = Self::new_unchecked(buffer, order);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that 16 bytes are present.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < field::RECORD_HEADER_LEN {
            return Err(Error::truncated(
                "pcap record header",
                0,
                field::RECORD_HEADER_LEN,
                have,
            ));
        }
        Ok(())
    }

    /// Seconds since the epoch.
    pub fn ts_sec(&self) -> u32 {
        self.order.u32(self.buffer.as_ref(), field::TS_SEC)
    }

    /// Microseconds or nanoseconds (see [`FileHeader::nanosecond`]).
    pub fn ts_frac(&self) -> u32 {
        self.order.u32(self.buffer.as_ref(), field::TS_FRAC)
    }

    /// Bytes captured.
    pub fn incl_len(&self) -> u32 {
        self.order.u32(self.buffer.as_ref(), field::INCL_LEN)
    }

    /// Bytes on the wire.
    pub fn orig_len(&self) -> u32 {
        self.order.u32(self.buffer.as_ref(), field::ORIG_LEN)
    }
}

/// The record header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecordHeaderRepr {
    /// Seconds since the epoch.
    pub ts_sec: u32,
    /// Microseconds or nanoseconds.
    pub ts_frac: u32,
    /// Bytes captured.
    pub incl_len: u32,
    /// Bytes on the wire.
    pub orig_len: u32,
}

impl RecordHeaderRepr {
    /// Reads a checked record header.
    pub fn parse<T: AsRef<[u8]>>(h: &RecordHeader<T>) -> Result<Self> {
        h.check_len()?;
        Ok(RecordHeaderRepr {
            ts_sec: h.ts_sec(),
            ts_frac: h.ts_frac(),
            incl_len: h.incl_len(),
            orig_len: h.orig_len(),
        })
    }

    /// 16.
    pub const fn buffer_len(&self) -> usize {
        field::RECORD_HEADER_LEN
    }

    /// Writes the header little-endian; returns 16.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        Error::check_room("pcap record header", field::RECORD_HEADER_LEN, buf.len())?;
        put(buf, field::TS_SEC, &self.ts_sec.to_le_bytes());
        put(buf, field::TS_FRAC, &self.ts_frac.to_le_bytes());
        put(buf, field::INCL_LEN, &self.incl_len.to_le_bytes());
        put(buf, field::ORIG_LEN, &self.orig_len.to_le_bytes());
        Ok(field::RECORD_HEADER_LEN)
    }

    /// Timestamp in Unix microseconds.
    pub fn ts_micros(&self, nanosecond: bool) -> i64 {
        let frac = if nanosecond {
            i64::from(self.ts_frac) / 1000
        } else {
            i64::from(self.ts_frac)
        };
        i64::from(self.ts_sec) * 1_000_000 + frac
    }
}

/// One record of an in-memory pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record header.
    pub header: RecordHeaderRepr,
    /// The captured bytes (`incl_len` of them).
    pub data: &'a [u8],
}

/// Zero-copy iterator over the records of an in-memory pcap file. A truncated record yields
/// one error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    order: ByteOrder,
    done: bool,
}

impl<'a> Records<'a> {
    /// Parses the file header of `file` and returns it with an iterator over the records.
    pub fn new(file: &'a [u8]) -> Result<(FileHeaderRepr, Records<'a>)> {
        let h = FileHeader::new_checked(file)?;
        let repr = FileHeaderRepr::parse(&h)?;
        Ok((
            repr,
            Records {
                data: file,
                pos: field::FILE_HEADER_LEN,
                order: h.byte_order(),
                done: false,
            },
        ))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let rest = tail(self.data, self.pos);
        let header = match RecordHeader::new_checked(rest, self.order)
            .and_then(|h| RecordHeaderRepr::parse(&h))
        {
            Ok(h) => h,
            Err(_) => {
                self.done = true;
                return Some(Err(Error::truncated(
                    "pcap record header",
                    self.pos,
                    field::RECORD_HEADER_LEN,
                    rest.len(),
                )));
            }
        };
        let incl = header.incl_len as usize;
        let body = tail(rest, field::RECORD_HEADER_LEN);
        if body.len() < incl {
            self.done = true;
            return Some(Err(Error::truncated(
                "pcap record",
                self.pos,
                field::RECORD_HEADER_LEN + incl,
                rest.len(),
            )));
        }
        self.pos += field::RECORD_HEADER_LEN + incl;
        Some(Ok(Record {
            header,
            data: slice(body, 0, incl),
        }))
    }
}

/// Splits Unix microseconds into `(seconds, microseconds)` for a u32-seconds format.
pub(crate) fn split_micros(ts_micros: i64) -> io::Result<(u32, u32)> {
    let secs = u32::try_from(ts_micros.div_euclid(1_000_000)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "timestamp outside the pcap range",
        )
    })?;
    // rem_euclid of 1e6 is in 0..1e6, so it fits.
    let frac = u32::try_from(ts_micros.rem_euclid(1_000_000)).unwrap_or(0);
    Ok((secs, frac))
}

/// Writes a little-endian, microsecond pcap file.
#[derive(Debug)]
pub struct Writer<W: io::Write> {
    inner: W,
    snaplen: u32,
}

impl<W: io::Write> Writer<W> {
    /// Writes the file header.
    pub fn new(mut inner: W, linktype: u32, snaplen: u32) -> io::Result<Self> {
        let mut hdr = [0u8; FILE_HEADER_LEN];
        FileHeaderRepr::new(linktype, snaplen)
            .emit(&mut hdr)
            .map_err(io::Error::other)?;
        inner.write_all(&hdr)?;
        Ok(Writer { inner, snaplen })
    }

    /// Writes one record stamped `ts_micros` (Unix µs), truncated to the snaplen.
    pub fn write_packet(&mut self, ts_micros: i64, data: &[u8]) -> io::Result<()> {
        self.write_record(ts_micros, data, data.len())
    }

    /// Writes one record: `data` captured out of a frame that was `orig_len` bytes on the air
    /// (a capture cut short by its snaplen or by a bad driver has `orig_len > data.len()`).
    /// `data` is itself truncated to the snaplen.
    pub fn write_record(&mut self, ts_micros: i64, data: &[u8], orig_len: usize) -> io::Result<()> {
        let (ts_sec, ts_frac) = split_micros(ts_micros)?;
        let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "packet too long");
        let len = u32::try_from(data.len()).map_err(|_| too_long())?;
        let orig_len = u32::try_from(orig_len.max(data.len())).map_err(|_| too_long())?;
        let incl_len = len.min(self.snaplen);
        let mut hdr = [0u8; RECORD_HEADER_LEN];
        RecordHeaderRepr {
            ts_sec,
            ts_frac,
            incl_len,
            orig_len,
        }
        .emit(&mut hdr)
        .map_err(io::Error::other)?;
        self.inner.write_all(&hdr)?;
        self.inner.write_all(slice(data, 0, incl_len as usize))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_micros_edges() {
        assert_eq!(split_micros(1_500_000).unwrap(), (1, 500_000));
        assert_eq!(split_micros(0).unwrap(), (0, 0));
        assert!(split_micros(-1).is_err());
        assert!(split_micros(i64::MAX).is_err());
    }

    #[test]
    fn ts_micros_ns() {
        let r = RecordHeaderRepr {
            ts_sec: 2,
            ts_frac: 5_000,
            ..Default::default()
        };
        assert_eq!(r.ts_micros(true), 2_000_005);
        assert_eq!(r.ts_micros(false), 2_005_000);
    }
}
