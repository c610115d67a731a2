//! [`CaptureReader`]: a streaming reader of capture files, classic pcap or pcapng, told apart
//! by their first four bytes. It yields each record's link type, timestamp, original length
//! and captured bytes, borrowed from its own buffer (no per-record copy or allocation).
//!
//! Why not libpcap's offline reader: it `fread`s through a 4 KiB stdio buffer, one record at a
//! time; on a 1.4 GB replay the page-cache copies alone cost a fifth of the run. This reader
//! refills a 1 MiB buffer and parses the records in place, with the same checks as the views
//! in [`crate::pcap`] and [`crate::pcapng`].
//!
//! Error model: a record or block that is truncated or malformed ends the file with one
//! [`ReadError`] naming the byte offset; everything yielded before it stands.
//!
//! pcapng coverage: Section Header (either byte order, several sections), Interface Description
//! (`if_tsresol` and `if_tsoffset`), Enhanced, Simple and obsolete Packet Blocks, each
//! interface with its own link type. Other blocks are skipped. A Simple Packet Block has no
//! timestamp: it gets the previous packet's (libpcap gives it 0, which would date it 1970).

use std::fmt;
use std::io::{self, Read};

use crate::bytes::{array, slice};
use crate::error::Error;
use crate::pcap::{self, ByteOrder, FileHeader, FileHeaderRepr, RecordHeader, RecordHeaderRepr};
use crate::pcapng::{BLOCK_EPB, BLOCK_IDB, BLOCK_SHB, BYTE_ORDER_MAGIC};

/// Largest classic pcap record accepted (libpcap's `MAXIMUM_SNAPLEN`).
pub const MAX_PCAP_RECORD: usize = 262_144;
/// Largest pcapng block accepted (libpcap's limit too).
pub const MAX_PCAPNG_BLOCK: usize = 16 * 1024 * 1024;
/// Bytes asked of the underlying reader per refill.
const BUFFER: usize = 1024 * 1024;

/// Simple Packet Block type.
const BLOCK_SPB: u32 = 0x0000_0003;
/// Obsolete Packet Block type.
const BLOCK_OPB: u32 = 0x0000_0002;
/// IDB option codes.
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Why a capture file could not be read further.
#[non_exhaustive]
#[derive(Debug)]
pub enum ReadError {
    /// The underlying reader failed.
    Io {
        /// File offset where the read was needed.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The bytes at `offset` are not a valid record or block. The inner error's own offset is
    /// relative to that structure.
    Format {
        /// File offset of the record or block.
        offset: u64,
        /// What is wrong.
        error: Error,
    },
    /// The file starts with neither a pcap magic nor a pcapng Section Header.
    UnknownFormat {
        /// The first four bytes, big-endian.
        magic: u32,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { offset, source } => write!(f, "read failed at byte {offset}: {source}"),
            ReadError::Format { offset, error } => write!(f, "at byte {offset}: {error}"),
            ReadError::UnknownFormat { magic } => {
                write!(f, "not a pcap or pcapng file (first bytes {magic:#010x})")
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            ReadError::Format { error, .. } => Some(error),
            ReadError::UnknownFormat { .. } => None,
        }
    }
}

/// One packet record, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedRecord<'a> {
    /// Link type of the interface that captured it (`LINKTYPE_*`).
    pub linktype: u32,
    /// Timestamp in Unix microseconds.
    pub ts_micros: i64,
    /// Length of the packet on the wire (or air); at least `data.len()` in a sane file.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap (libpcap's file format).
    Pcap,
    /// pcapng.
    Pcapng,
}

/// A refillable window over the reader: `buf[pos..len]` are bytes not consumed yet, and
/// `buf[0]` is at file offset `base`.
struct Window<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    base: u64,
}

impl<R: Read> Window<R> {
    fn new(inner: R) -> Self {
        Window {
            inner,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            base: 0,
        }
    }

    /// File offset of the next unconsumed byte.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Makes `n` bytes available from `pos` if the file has them; returns how many are (less
    /// than `n` only at end of file). Callers bound `n` by the format's maximum record size.
    fn fill(&mut self, n: usize) -> Result<usize, ReadError> {
        if self.len - self.pos >= n {
            return Ok(n);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.len < n {
            let Some(room) = self.buf.get_mut(self.len..) else {
                break;
            };
            match self.inner.read(room) {
                Ok(0) => break,
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        offset: self.base + self.len as u64,
                        source,
                    })
                }
            }
        }
        Ok((self.len - self.pos).min(n))
    }

    /// The next `n` bytes (fewer if not filled).
    fn peek(&self, n: usize) -> &[u8] {
        slice(&self.buf, self.pos, (self.pos + n).min(self.len))
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

/// A pcapng interface: what its packets need from its IDB.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// `if_tsoffset`, seconds.
    offset_secs: i64,
}

enum State {
    Pcap {
        order: ByteOrder,
        nanos: bool,
        linktype: u32,
    },
    Pcapng {
        order: ByteOrder,
        interfaces: Vec<Interface>,
        last_ts_micros: i64,
    },
}

/// Streaming reader of a pcap or pcapng file.
pub struct CaptureReader<R> {
    win: Window<R>,
    state: State,
    done: bool,
}

impl<R> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format())
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

fn format_err(offset: u64, error: Error) -> ReadError {
    ReadError::Format { offset, error }
}

fn u16_in(order: ByteOrder, b: &[u8], off: usize) -> u16 {
    array(b, off).map_or(0, |a| match order {
        ByteOrder::Little => u16::from_le_bytes(a),
        ByteOrder::Big => u16::from_be_bytes(a),
    })
}

fn u32_in(order: ByteOrder, b: &[u8], off: usize) -> u32 {
    array(b, off).map_or(0, |a| match order {
        ByteOrder::Little => u32::from_le_bytes(a),
        ByteOrder::Big => u32::from_be_bytes(a),
    })
}

fn u64_in(order: ByteOrder, b: &[u8], off: usize) -> u64 {
    array(b, off).map_or(0, |a| match order {
        ByteOrder::Little => u64::from_le_bytes(a),
        ByteOrder::Big => u64::from_be_bytes(a),
    })
}

/// `ts` units (at `units_per_sec`) plus `offset_secs` as Unix microseconds, saturating.
fn to_micros(ts: u64, units_per_sec: u64, offset_secs: i64) -> i64 {
    let micros = u128::from(ts) * 1_000_000 / u128::from(units_per_sec.max(1));
    i64::try_from(micros)
        .unwrap_or(i64::MAX)
        .saturating_add(offset_secs.saturating_mul(1_000_000))
}

impl<R> CaptureReader<R> {
    /// The container format.
    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap { .. } => Format::Pcap,
            State::Pcapng { .. } => Format::Pcapng,
        }
    }

    /// Link type of a classic pcap file, or of the first interface of a pcapng file seen so
    /// far (`None` before the first IDB).
    pub fn linktype(&self) -> Option<u32> {
        match &self.state {
            State::Pcap { linktype, .. } => Some(*linktype),
            State::Pcapng { interfaces, .. } => interfaces.first().map(|i| i.linktype),
        }
    }

    /// File offset of the next record or block.
    pub fn offset(&self) -> u64 {
        self.win.base + self.win.pos as u64
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (pcap) or first Section Header (pcapng).
    pub fn new(inner: R) -> Result<Self, ReadError> {
        let mut win = Window::new(inner);
        let have = win.fill(pcap::FILE_HEADER_LEN)?;
        let magic = array::<4>(win.peek(4), 0).map_or(0, u32::from_be_bytes);
        if magic == BLOCK_SHB {
            let mut r = CaptureReader {
                win,
                state: State::Pcapng {
                    order: ByteOrder::Little,
                    interfaces: Vec::new(),
                    last_ts_micros: 0,
                },
                done: false,
            };
            // The first block is the Section Header (its type was just seen); parse it now so
            // that a bad one fails here, like a bad pcap file header.
            r.pcapng_block()?;
            return Ok(r);
        }
        let h = FileHeader::new_checked(win.peek(have)).map_err(|e| match e {
            Error::UnsupportedVersion { .. } => ReadError::UnknownFormat { magic },
            e => format_err(0, e),
        })?;
        let repr = FileHeaderRepr::parse(&h).map_err(|e| format_err(0, e))?;
        let order = h.byte_order();
        win.consume(pcap::FILE_HEADER_LEN);
        Ok(CaptureReader {
            win,
            state: State::Pcap {
                order,
                nanos: repr.nanosecond,
                linktype: repr.linktype,
            },
            done: false,
        })
    }

    /// Bytes read from the input and not consumed yet. Zero after a record means the next
    /// one has not arrived: a live stream's reader flushes what it has before waiting.
    pub fn buffered(&self) -> usize {
        self.win.len - self.win.pos
    }

    /// The next packet record: `Ok(None)` at a clean end of file. After an error, every call
    /// returns `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<CapturedRecord<'_>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let r = match self.state {
            State::Pcap { .. } => self.pcap_record(),
            State::Pcapng { .. } => loop {
                match self.pcapng_block() {
                    Ok(Some(Some(span))) => break Ok(Some(span)),
                    Ok(Some(None)) => continue,
                    Ok(None) => break Ok(None),
                    Err(e) => break Err(e),
                }
            },
        };
        match r {
            Ok(Some(span)) => Ok(Some(CapturedRecord {
                linktype: span.linktype,
                ts_micros: span.ts_micros,
                orig_len: span.orig_len,
                data: slice(&self.win.buf, span.start, span.end),
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn pcap_record(&mut self) -> Result<Option<Span>, ReadError> {
        let State::Pcap {
            order,
            nanos,
            linktype,
        } = self.state
        else {
            return Ok(None);
        };
        let at = self.win.offset();
        let hl = pcap::RECORD_HEADER_LEN;
        let have = self.win.fill(hl)?;
        if have == 0 {
            return Ok(None);
        }
        let h = RecordHeader::new_checked(self.win.peek(hl), order)
            .and_then(|h| RecordHeaderRepr::parse(&h))
            .map_err(|e| format_err(at, e))?;
        let incl = h.incl_len as usize;
        if incl > MAX_PCAP_RECORD {
            return Err(format_err(at, Error::malformed("pcap record incl_len", 8)));
        }
        let have = self.win.fill(hl + incl)?;
        if have < hl + incl {
            return Err(format_err(
                at,
                Error::truncated("pcap record", 0, hl + incl, have),
            ));
        }
        let start = self.win.pos + hl;
        self.win.consume(hl + incl);
        Ok(Some(Span {
            linktype,
            ts_micros: h.ts_micros(nanos),
            orig_len: h.orig_len,
            start,
            end: start + incl,
        }))
    }

    /// Reads one pcapng block: `Ok(None)` at end of file, `Ok(Some(None))` for a block that
    /// is not a packet, `Ok(Some(Some(span)))` for a packet.
    fn pcapng_block(&mut self) -> Result<Option<Option<Span>>, ReadError> {
        let at = self.win.offset();
        let have = self.win.fill(12)?;
        if have == 0 {
            return Ok(None);
        }
        if have < 12 {
            return Err(format_err(
                at,
                Error::truncated("pcapng block", 0, 12, have),
            ));
        }
        let head = self.win.peek(12);
        let block_type_raw = array::<4>(head, 0).unwrap_or_default();
        let State::Pcapng { order, .. } = self.state else {
            return Ok(None);
        };
        // A Section Header's byte order comes from its own magic, not the previous section.
        let is_shb = u32::from_be_bytes(block_type_raw) == BLOCK_SHB;
        let order = if is_shb {
            match u32_in(ByteOrder::Little, head, 8) {
                BYTE_ORDER_MAGIC => ByteOrder::Little,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => ByteOrder::Big,
                _ => {
                    return Err(format_err(
                        at,
                        Error::malformed("pcapng byte-order magic", 8),
                    ))
                }
            }
        } else {
            order
        };
        let block_type = u32_in(order, head, 0);
        let total = u32_in(order, head, 4) as usize;
        if total < 12 || !total.is_multiple_of(4) || total > MAX_PCAPNG_BLOCK {
            return Err(format_err(at, Error::malformed("pcapng block length", 4)));
        }
        let have = self.win.fill(total)?;
        if have < total {
            return Err(format_err(
                at,
                Error::truncated("pcapng block", 0, total, have),
            ));
        }
        let block = self.win.peek(total);
        if u32_in(order, block, total - 4) as usize != total {
            return Err(format_err(
                at,
                Error::malformed("pcapng trailing block length", total - 4),
            ));
        }
        let body_start = self.win.pos + 8;
        let body = slice(block, 8, total - 4);
        let result = match block_type {
            BLOCK_SHB => {
                // magic(4) major(2) minor(2) section length(8)
                if body.len() < 16 {
                    return Err(format_err(
                        at,
                        Error::truncated("pcapng section header", 8, 16, body.len()),
                    ));
                }
                let major = u16_in(order, body, 4);
                if major != 1 {
                    return Err(format_err(
                        at,
                        Error::UnsupportedVersion {
                            what: "pcapng major version",
                            version: u32::from(major),
                        },
                    ));
                }
                if let State::Pcapng {
                    order: o,
                    interfaces,
                    ..
                } = &mut self.state
                {
                    *o = order;
                    interfaces.clear();
                }
                None
            }
            BLOCK_IDB => {
                let iface = parse_idb(order, body).map_err(|e| format_err(at, e))?;
                if let State::Pcapng { interfaces, .. } = &mut self.state {
                    interfaces.push(iface);
                }
                None
            }
            BLOCK_EPB | BLOCK_OPB => {
                // EPB: if_id(4) ts_hi(4) ts_lo(4) caplen(4) origlen(4) data
                // OPB: if_id(2) drops(2) ts_hi(4) ts_lo(4) caplen(4) origlen(4) data
                if body.len() < 20 {
                    return Err(format_err(
                        at,
                        Error::truncated("pcapng packet block", 8, 20, body.len()),
                    ));
                }
                let if_id = if block_type == BLOCK_EPB {
                    u32_in(order, body, 0) as usize
                } else {
                    usize::from(u16_in(order, body, 0))
                };
                let ts =
                    (u64::from(u32_in(order, body, 4)) << 32) | u64::from(u32_in(order, body, 8));
                let caplen = u32_in(order, body, 12) as usize;
                let orig_len = u32_in(order, body, 16);
                if caplen > body.len() - 20 {
                    return Err(format_err(
                        at,
                        Error::malformed("pcapng packet captured length", 20),
                    ));
                }
                let State::Pcapng {
                    interfaces,
                    last_ts_micros,
                    ..
                } = &mut self.state
                else {
                    return Ok(None);
                };
                let Some(iface) = interfaces.get(if_id) else {
                    return Err(format_err(at, Error::malformed("pcapng interface id", 8)));
                };
                let ts_micros = to_micros(ts, iface.units_per_sec, iface.offset_secs);
                *last_ts_micros = ts_micros;
                let start = body_start + 20;
                Some(Span {
                    linktype: iface.linktype,
                    ts_micros,
                    orig_len,
                    start,
                    end: start + caplen,
                })
            }
            BLOCK_SPB => {
                // origlen(4) data: captured length is what the block and snaplen allow.
                if body.len() < 4 {
                    return Err(format_err(
                        at,
                        Error::truncated("pcapng simple packet block", 8, 4, body.len()),
                    ));
                }
                let orig_len = u32_in(order, body, 0);
                let State::Pcapng {
                    interfaces,
                    last_ts_micros,
                    ..
                } = &self.state
                else {
                    return Ok(None);
                };
                let Some(iface) = interfaces.first() else {
                    return Err(format_err(at, Error::malformed("pcapng interface id", 8)));
                };
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let start = body_start + 4;
                Some(Span {
                    linktype: iface.linktype,
                    ts_micros: *last_ts_micros,
                    orig_len,
                    start,
                    end: start + caplen,
                })
            }
            _ => None,
        };
        self.win.consume(total);
        Ok(Some(result))
    }
}

/// A packet's place in the window (so the record can borrow the buffer after the parse).
struct Span {
    linktype: u32,
    ts_micros: i64,
    orig_len: u32,
    start: usize,
    end: usize,
}

/// Parses an IDB body: linktype(2) reserved(2) snaplen(4) options.
fn parse_idb(order: ByteOrder, body: &[u8]) -> Result<Interface, Error> {
    if body.len() < 8 {
        return Err(Error::truncated(
            "pcapng interface description",
            8,
            8,
            body.len(),
        ));
    }
    let mut iface = Interface {
        linktype: u32::from(u16_in(order, body, 0)),
        snaplen: u32_in(order, body, 4),
        units_per_sec: 1_000_000,
        offset_secs: 0,
    };
    let mut off = 8;
    while off + 4 <= body.len() {
        let code = u16_in(order, body, off);
        let len = usize::from(u16_in(order, body, off + 2));
        let value_at = off + 4;
        if value_at + len > body.len() {
            return Err(Error::malformed("pcapng option length", 8 + off + 2));
        }
        match code {
            OPT_END => break,
            OPT_IF_TSRESOL if len == 1 => {
                let v = body.get(value_at).copied().unwrap_or(6);
                let exp = u32::from(v & 0x7f);
                let units = if v & 0x80 != 0 {
                    1u64.checked_shl(exp)
                } else {
                    10u64.checked_pow(exp)
                };
                iface.units_per_sec =
                    units.ok_or(Error::malformed("pcapng if_tsresol", 8 + value_at))?;
            }
            OPT_IF_TSOFFSET if len == 8 => {
                iface.offset_secs = u64_in(order, body, value_at) as i64;
            }
            _ => {}
        }
        off = value_at + len.div_ceil(4) * 4;
    }
    Ok(iface)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::{LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP};
    use crate::pcapng;

    /// Hands out at most `chunk` bytes per `read`, to exercise refills at every boundary.
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

    type Owned = (u32, i64, u32, Vec<u8>);

    /// Every record, then the error that ended the file (if any).
    fn read_all(file: &[u8], chunk: usize) -> (Vec<Owned>, Option<ReadError>) {
        let mut out = Vec::new();
        let mut r = match CaptureReader::new(Chunked { data: file, chunk }) {
            Ok(r) => r,
            Err(e) => return (out, Some(e)),
        };
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    out.push((rec.linktype, rec.ts_micros, rec.orig_len, rec.data.to_vec()))
                }
                Ok(None) => return (out, None),
                Err(e) => {
                    // After an error the reader stays ended.
                    assert!(matches!(r.next_record(), Ok(None)));
                    return (out, Some(e));
                }
            }
        }
    }

    fn sample_packets() -> Vec<(i64, Vec<u8>, usize)> {
        (0..50u32)
            .map(|i| {
                let len = (i as usize * 37) % 300;
                let data = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
                // Every 7th record was cut short by the capture (orig_len > captured).
                let orig = if i % 7 == 0 { len + 10 } else { len };
                (1_763_600_000_000_000 + i64::from(i) * 1_234, data, orig)
            })
            .collect()
    }

    #[test]
    fn pcap_written_by_writer_reads_back_at_any_chunk_size() {
        let mut w = pcap::Writer::new(Vec::new(), LINKTYPE_IEEE802_11_RADIOTAP, 65535).unwrap();
        for (ts, data, orig) in sample_packets() {
            w.write_record(ts, &data, orig).unwrap();
        }
        let file = w.into_inner();
        let want: Vec<Owned> = sample_packets()
            .into_iter()
            .map(|(ts, d, o)| (LINKTYPE_IEEE802_11_RADIOTAP, ts, o as u32, d))
            .collect();
        for chunk in [1, 3, 16, 17, 4096, usize::MAX] {
            let (got, err) = read_all(&file, chunk);
            assert!(err.is_none(), "chunk {chunk}: {err:?}");
            assert_eq!(got, want, "chunk {chunk}");
        }
        let r = CaptureReader::new(&file[..]).unwrap();
        assert_eq!(r.format(), Format::Pcap);
        assert_eq!(r.linktype(), Some(LINKTYPE_IEEE802_11_RADIOTAP));
    }

    #[test]
    fn pcapng_written_by_writer_reads_back_at_any_chunk_size() {
        let mut w = pcapng::Writer::new(Vec::new(), LINKTYPE_IEEE802_11_RADIOTAP, 65535).unwrap();
        for (ts, data, _) in sample_packets() {
            w.write_packet(ts, &data).unwrap();
        }
        let file = w.into_inner();
        let want: Vec<Owned> = sample_packets()
            .into_iter()
            .map(|(ts, d, _)| (LINKTYPE_IEEE802_11_RADIOTAP, ts, d.len() as u32, d))
            .collect();
        for chunk in [1, 5, 12, 4096, usize::MAX] {
            let (got, err) = read_all(&file, chunk);
            assert!(err.is_none(), "chunk {chunk}: {err:?}");
            assert_eq!(got, want, "chunk {chunk}");
        }
        assert_eq!(
            CaptureReader::new(&file[..]).unwrap().format(),
            Format::Pcapng
        );
    }

    #[test]
    fn big_endian_nanosecond_pcap_fixture() {
        #[rustfmt::skip]
        let file = [
            0xa1, 0xb2, 0x3c, 0x4d, // magic: nanosecond, written big-endian
            0x00, 0x02, 0x00, 0x04, // version 2.4
            0x00, 0x00, 0x00, 0x00, // thiszone
            0x00, 0x00, 0x00, 0x00, // sigfigs
            0x00, 0x00, 0xff, 0xff, // snaplen 65535
            0x00, 0x00, 0x00, 0x69, // linktype 105 (802.11)
            // record: ts 100 s + 2_500_000 ns, incl 3, orig 9
            0x00, 0x00, 0x00, 0x64,
            0x00, 0x26, 0x25, 0xa0,
            0x00, 0x00, 0x00, 0x03,
            0x00, 0x00, 0x00, 0x09,
            0xaa, 0xbb, 0xcc,
        ];
        let (got, err) = read_all(&file, usize::MAX);
        assert!(err.is_none());
        assert_eq!(
            got,
            vec![(LINKTYPE_IEEE802_11, 100_002_500, 9, vec![0xaa, 0xbb, 0xcc])]
        );
    }

    /// A pcapng file with a big-endian section (ns resolution, 10 s offset, EPB, SPB, an
    /// unknown block), then a little-endian section whose interface has another link type.
    fn multi_section_fixture() -> Vec<u8> {
        #[rustfmt::skip]
        let be: &[u8] = &[
            // SHB, big-endian
            0x0a, 0x0d, 0x0d, 0x0a, // block type
            0x00, 0x00, 0x00, 0x1c, // total length 28
            0x1a, 0x2b, 0x3c, 0x4d, // byte-order magic (big-endian)
            0x00, 0x01, 0x00, 0x00, // version 1.0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
            0x00, 0x00, 0x00, 0x1c, // total length
            // IDB: radiotap, snaplen 4, if_tsresol 9 (ns), if_tsoffset 10 s
            0x00, 0x00, 0x00, 0x01, // block type
            0x00, 0x00, 0x00, 0x2c, // total length 44
            0x00, 0x7f, 0x00, 0x00, // linktype 127, reserved
            0x00, 0x00, 0x00, 0x04, // snaplen 4
            0x00, 0x09, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00, // if_tsresol = 9, padded
            0x00, 0x0e, 0x00, 0x08, // if_tsoffset, 8 bytes
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, // 10 s
            0x00, 0x00, 0x00, 0x00, // opt_endofopt
            0x00, 0x00, 0x00, 0x2c, // total length
            // EPB: interface 0, ts 3_000_000_000 ns, caplen 3, origlen 5
            0x00, 0x00, 0x00, 0x06, // block type
            0x00, 0x00, 0x00, 0x24, // total length 36
            0x00, 0x00, 0x00, 0x00, // interface id
            0x00, 0x00, 0x00, 0x00, // ts high
            0xb2, 0xd0, 0x5e, 0x00, // ts low (3e9)
            0x00, 0x00, 0x00, 0x03, // caplen
            0x00, 0x00, 0x00, 0x05, // origlen
            0x01, 0x02, 0x03, 0x00, // data, padded
            0x00, 0x00, 0x00, 0x24, // total length
            // unknown block type 0x0bad, skipped
            0x00, 0x00, 0x0b, 0xad,
            0x00, 0x00, 0x00, 0x10,
            0xde, 0xad, 0xbe, 0xef,
            0x00, 0x00, 0x00, 0x10,
            // SPB: origlen 6, 8 data bytes; snaplen 4 keeps 4
            0x00, 0x00, 0x00, 0x03, // block type
            0x00, 0x00, 0x00, 0x18, // total length 24
            0x00, 0x00, 0x00, 0x06, // origlen
            0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x00, 0x00, // data
            0x00, 0x00, 0x00, 0x18, // total length
        ];
        #[rustfmt::skip]
        let le: &[u8] = &[
            // SHB, little-endian
            0x0a, 0x0d, 0x0d, 0x0a,
            0x1c, 0x00, 0x00, 0x00,
            0x4d, 0x3c, 0x2b, 0x1a,
            0x01, 0x00, 0x00, 0x00,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1c, 0x00, 0x00, 0x00,
            // IDB: linktype 105, snaplen 0, if_tsresol 2^-10 (0x8a)
            0x01, 0x00, 0x00, 0x00,
            0x1c, 0x00, 0x00, 0x00, // total length 28
            0x69, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
            0x09, 0x00, 0x01, 0x00, 0x8a, 0x00, 0x00, 0x00,
            0x1c, 0x00, 0x00, 0x00,
            // OPB: interface 0, drops 0, ts 2048 units (= 2 s), caplen 1, origlen 1
            0x02, 0x00, 0x00, 0x00,
            0x24, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, // interface id (u16), drops (u16)
            0x00, 0x00, 0x00, 0x00, // ts high
            0x00, 0x08, 0x00, 0x00, // ts low 2048
            0x01, 0x00, 0x00, 0x00, // caplen
            0x01, 0x00, 0x00, 0x00, // origlen
            0x42, 0x00, 0x00, 0x00,
            0x24, 0x00, 0x00, 0x00,
        ];
        [be, le].concat()
    }

    #[test]
    fn pcapng_sections_interfaces_and_block_kinds() {
        let file = multi_section_fixture();
        for chunk in [1, 7, usize::MAX] {
            let (got, err) = read_all(&file, chunk);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(
                got,
                vec![
                    // 3 s + 10 s offset
                    (LINKTYPE_IEEE802_11_RADIOTAP, 13_000_000, 5, vec![1, 2, 3]),
                    // SPB: previous timestamp, snaplen 4
                    (
                        LINKTYPE_IEEE802_11_RADIOTAP,
                        13_000_000,
                        6,
                        vec![9, 8, 7, 6]
                    ),
                    // second section: its own interface table and byte order
                    (LINKTYPE_IEEE802_11, 2_000_000, 1, vec![0x42]),
                ]
            );
        }
    }

    #[test]
    fn truncated_pcap_keeps_what_came_before_and_names_the_offset() {
        let mut w = pcap::Writer::new(Vec::new(), LINKTYPE_IEEE802_11_RADIOTAP, 65535).unwrap();
        for (ts, data, orig) in sample_packets() {
            w.write_record(ts, &data, orig).unwrap();
        }
        let file = w.into_inner();
        let all = read_all(&file, usize::MAX).0;
        // Cut inside the 11th record's data, then inside its header.
        let eleventh: usize = 24 + all[..10].iter().map(|r| 16 + r.3.len()).sum::<usize>();
        for cut in [eleventh + 16 + 1, eleventh + 5] {
            let (got, err) = read_all(&file[..cut], 64);
            assert_eq!(got, all[..10]);
            match err {
                Some(ReadError::Format { offset, error }) => {
                    assert_eq!(offset, eleventh as u64);
                    assert!(matches!(error, Error::Truncated { .. }), "{error:?}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_headers_and_blocks_are_errors_not_panics() {
        // Not a capture at all.
        let e = CaptureReader::new(&b"GIF89a........................"[..]).unwrap_err();
        assert!(
            matches!(e, ReadError::UnknownFormat { magic: 0x4749_4638 }),
            "{e}"
        );
        // Too short for a pcap header.
        let e = CaptureReader::new(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0][..]).unwrap_err();
        assert!(matches!(e, ReadError::Format { offset: 0, .. }), "{e}");
        // A record claiming more than libpcap's largest snaplen.
        let mut w = pcap::Writer::new(Vec::new(), 127, 65535).unwrap();
        w.write_packet(0, &[1, 2, 3]).unwrap();
        let mut file = w.into_inner();
        file[24 + 8..24 + 12].copy_from_slice(&(MAX_PCAP_RECORD as u32 + 1).to_le_bytes());
        let (got, err) = read_all(&file, usize::MAX);
        assert!(got.is_empty());
        assert!(matches!(err, Some(ReadError::Format { offset: 24, .. })));

        // Corruptions of the first EPB (at byte 72 of the fixture): (byte, value, what).
        let table = [
            (72 + 35, 0x20, "pcapng trailing block length"), // trailer disagrees
            (72 + 11, 3, "pcapng interface id"),             // interface never described
            (72 + 23, 0x40, "pcapng packet captured length"), // caplen past the block
            (72 + 7, 0x25, "pcapng block length"),           // not a multiple of 4
        ];
        let good = multi_section_fixture();
        for (at, value, want) in table {
            let mut f = good.clone();
            f[at] = value;
            let (got, err) = read_all(&f, usize::MAX);
            assert!(got.is_empty(), "{want}");
            match err {
                Some(ReadError::Format {
                    offset: 72,
                    error: Error::Malformed { what, .. },
                }) => assert_eq!(what, want),
                other => panic!("{want}: {other:?}"),
            }
        }
        // Section with a bad byte-order magic.
        let mut f = good;
        f[9] = 0;
        assert!(matches!(
            CaptureReader::new(&f[..]).unwrap_err(),
            ReadError::Format { offset: 0, .. }
        ));
    }

    #[test]
    fn pcapng_block_larger_than_the_buffer() {
        let big: Vec<u8> = (0..3 * BUFFER).map(|i| i as u8).collect();
        let mut w = pcapng::Writer::new(Vec::new(), 127, u32::MAX).unwrap();
        w.write_packet(5, &[7]).unwrap();
        w.write_packet(6, &big).unwrap();
        w.write_packet(7, &[8]).unwrap();
        let (got, err) = read_all(&w.into_inner(), 100_000);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].3, big);
        assert_eq!(got[2].3, vec![8]);
    }

    #[test]
    fn io_errors_carry_the_offset() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk gone"));
                }
                let n = self.0.min(buf.len());
                buf[..n].fill(0);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut file = Vec::new();
        pcap::FileHeaderRepr::new(127, 65535)
            .emit({
                file.resize(24, 0);
                &mut file
            })
            .unwrap();
        struct Then<'a>(&'a [u8], Failing);
        impl Read for Then<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    self.1.read(buf)
                } else {
                    self.0.read(buf)
                }
            }
        }
        let mut r = CaptureReader::new(Then(&file, Failing(0))).unwrap();
        match r.next_record() {
            Err(ReadError::Io { offset: 24, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>, chunk in 1usize..64) {
            let (got, _) = read_all(&data, chunk);
            // Each record needs at least a 16-byte header (pcap) or a 32-byte block (pcapng
            // EPB/OPB) or a 16-byte SPB.
            proptest::prop_assert!(got.len() <= data.len() / 16);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(tail: Vec<u8>, ng: bool) {
            let mut file = if ng {
                pcapng::Writer::new(Vec::new(), 127, 65535).unwrap().into_inner()
            } else {
                pcap::Writer::new(Vec::new(), 127, 65535).unwrap().into_inner()
            };
            file.extend_from_slice(&tail);
            let (got, _) = read_all(&file, 7);
            proptest::prop_assert!(got.len() <= tail.len() / 16);
        }
    }
}
