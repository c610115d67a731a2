//! Milesight VS13x (VS133/VS135 ToF people counters) LoRaWAN uplinks: the TLV [`Payload`] view
//! and its [`Records`] walker, [`MilesightRepr`] (per-line in/out counts and battery), and the
//! hex/base64 text decoding of payloads that arrive inside JSON ([`decode_text`]).
//!
//! Layout (Milesight-IoT/SensorDecoders, `vs-series/vs133` decoder and README): a sequence of
//! `channel(1) type(1) data(n)` records, little-endian, `n` implied by the pair. The counts:
//!
//! | line | total in (`D2`, u32) | total out (`D2`, u32) | period in+out (`CC`, 2×u16) |
//! |------|----------------------|-----------------------|-----------------------------|
//! | 1    | `03`                 | `04`                  | `05`                        |
//! | n    | `3 + 3(n−1)`         | `4 + 3(n−1)`          | `5 + 3(n−1)`                |
//!
//! Lines 2–4 (`06`–`0E`) are derived from that pattern. It agrees with the vendor's VS133/VS135
//! README tables and decoder channel arrays, but has not been checked against a device with
//! more than one line configured.
//!
//! A record's length is only known from its pair, so an unknown pair ends the walk with
//! [`Error::Malformed`] `{ what: "milesight unknown channel/type", offset }`: the pair is
//! `bytes[offset..offset + 2]`. Nothing parsed before it is returned, on purpose: a count
//! silently missing from a half-read uplink would look like a quiet door. Known pairs that are
//! not counts (device info, downlink acknowledgements, regions, dwell times, child-node lines,
//! alarms, history) are skipped by their length. History records (`20 CE`) carry past values
//! with their own timestamps, which this Repr has no place for; the cumulative totals of the
//! live uplinks that follow include them.

use crate::bytes::{le16, le32, put, slice, u8_at};
use crate::error::{Error, Result};

/// Byte offsets in a record.
mod field {
    /// Channel id.
    pub const CHANNEL: usize = 0;
    /// Channel type.
    pub const TYPE: usize = 1;
    /// First data byte; also the header length.
    pub const DATA: usize = 2;
    /// History record data: the type byte of the archived record, after a u32 timestamp.
    pub const HISTORY_TYPE: usize = 4;
}

/// Channel ids.
pub mod channel {
    /// Battery level.
    pub const BATTERY: u8 = 0x01;
    /// Line 1 total in; line `n` is this plus `3(n−1)`.
    pub const LINE_1_TOTAL_IN: u8 = 0x03;
    /// Line 1 total out.
    pub const LINE_1_TOTAL_OUT: u8 = 0x04;
    /// Line 1 period in/out.
    pub const LINE_1_PERIOD: u8 = 0x05;
    /// History record.
    pub const HISTORY: u8 = 0x20;
    /// Device information and downlink acknowledgements.
    pub const DEVICE: u8 = 0xFF;
    /// Downlink acknowledgements.
    pub const DOWNLINK: u8 = 0xFE;
}

/// Channel types.
pub mod kind {
    /// Battery, u8 percent.
    pub const BATTERY: u8 = 0x75;
    /// Line total, u32 (little-endian, like every field here).
    pub const TOTAL: u8 = 0xD2;
    /// Line period counts, u16 in + u16 out.
    pub const PERIOD: u8 = 0xCC;
    /// History record.
    pub const HISTORY: u8 = 0xCE;
}

/// Highest line number of a VS13x.
pub const MAX_LINE: u8 = 4;
/// Data length of every count record.
const COUNT_LEN: usize = 4;

/// The `(total in, total out, period)` channels of `line` (1–4), derived as documented in the
/// module header; `None` for other lines.
pub const fn line_channels(line: u8) -> Option<(u8, u8, u8)> {
    if line == 0 || line > MAX_LINE {
        return None;
    }
    let base = channel::LINE_1_TOTAL_IN + 3 * (line - 1);
    Some((base, base + 1, base + 2))
}

/// `(line, slot)` of a count channel: slot 0 total in, 1 total out, 2 period.
const fn line_slot(channel: u8) -> Option<(u8, u8)> {
    match channel {
        0x03..=0x0E => {
            let k = channel - channel::LINE_1_TOTAL_IN;
            Some((k / 3 + 1, k % 3))
        }
        _ => None,
    }
}

/// The type a three-channel line group (counts at `03`, child-node counts at `11`) uses at
/// `channel`, if `channel` is in the group starting at `first`.
const fn group_type(channel: u8, first: u8) -> Option<u8> {
    if channel < first || channel >= first + 12 {
        return None;
    }
    Some(if (channel - first) % 3 == 2 {
        kind::PERIOD
    } else {
        kind::TOTAL
    })
}

/// Data length of the record with this pair whose data starts at `data_off` in `bytes`.
/// `Ok(None)` for an unknown pair.
fn data_len(channel: u8, ty: u8, bytes: &[u8], data_off: usize) -> Result<Option<usize>> {
    if group_type(channel, channel::LINE_1_TOTAL_IN) == Some(ty)
        || group_type(channel, 0x11) == Some(ty)
    {
        // Counts, and the child-node counts of a stitched installation (skipped).
        return Ok(Some(COUNT_LEN));
    }
    Ok(Some(match (channel, ty) {
        (channel::BATTERY, kind::BATTERY) => 1,
        // Region counts (4 × u8), dwell time (region u8, avg u16, max u16), their child-node
        // twins, and the occlusion alarm.
        (0x0F | 0x1D, 0xE3) => 4,
        (0x10 | 0x1E, 0xE4) => 5,
        (0x50, 0xFC) => 3,
        (channel::HISTORY, kind::HISTORY) => {
            let at = data_off + field::HISTORY_TYPE;
            let Some(&archived) = bytes.get(at) else {
                return Err(Error::truncated(
                    "milesight history record",
                    data_off,
                    field::HISTORY_TYPE + 1,
                    bytes.len().saturating_sub(data_off),
                ));
            };
            // u32 timestamp, the archived type byte, then its data.
            match archived {
                0x03..=0x0F | 0x11..=0x1D => 9,
                0x10 | 0x20 | 0x1E | 0x3C => 8,
                _ => return Err(Error::malformed("milesight history data type", at)),
            }
        }
        // Device information: protocol version, hardware, firmware (2-byte VS135 form and
        // 4-byte VS133 form), device status, LoRaWAN class, serial number, TSL version, reset.
        (channel::DEVICE, 0x01 | 0x0B | 0x0F | 0xFE) => 1,
        (channel::DEVICE, 0x09 | 0x0A | 0xFF) => 2,
        (channel::DEVICE, 0x1F) => 4,
        (channel::DEVICE, 0x16) => 8,
        // Acknowledgements of configuration downlinks.
        (channel::DEVICE | channel::DOWNLINK, 0x03) => 2,
        (
            channel::DEVICE | channel::DOWNLINK,
            0x04 | 0x10 | 0x27 | 0x40 | 0x42 | 0x43 | 0x44 | 0x51 | 0x68 | 0x69 | 0x6D,
        ) => 1,
        (channel::DEVICE | channel::DOWNLINK, 0x11) => 4,
        (channel::DEVICE | channel::DOWNLINK, 0x6A) => 3,
        _ => return Ok(None),
    }))
}

/// A read-only view of one uplink payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Payload<T> {
    /// Wraps `buffer` without checking it; [`Payload::records`] reports problems as it walks.
    pub const fn new_unchecked(buffer: T) -> Payload<T> {
        Payload { buffer }
    }

    /// Wraps `buffer` and runs [`Payload::check_len`].
    pub fn new_checked(buffer: T) -> Result<Payload<T>> {
        let p = Payload::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Walks every record: fails on the first truncated record or unknown pair.
    pub fn check_len(&self) -> Result<()> {
        self.records().try_for_each(|r| r.map(|_| ()))
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The records in order.
    pub fn records(&self) -> Records<'_> {
        Records {
            bytes: self.buffer.as_ref(),
            pos: 0,
            done: false,
        }
    }
}

/// One record found by [`Records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the channel byte in the payload.
    pub offset: usize,
    /// Channel id.
    pub channel: u8,
    /// Channel type.
    pub kind: u8,
    /// The data bytes (their length is implied by the pair).
    pub data: &'a [u8],
}

/// What a [`Record`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// Cumulative count in over `line`.
    TotalIn {
        /// Line 1–4.
        line: u8,
        /// Count since the device's counter was cleared.
        count: u32,
    },
    /// Cumulative count out over `line`.
    TotalOut {
        /// Line 1–4.
        line: u8,
        /// Count since the device's counter was cleared.
        count: u32,
    },
    /// Counts of the last reporting period over `line`.
    Period {
        /// Line 1–4.
        line: u8,
        /// In.
        period_in: u16,
        /// Out.
        period_out: u16,
    },
    /// Battery level, percent.
    Battery(u8),
    /// A known record that carries no count.
    Skipped,
}

impl Record<'_> {
    /// The record's meaning.
    pub fn value(&self) -> Value {
        let d = self.data;
        if let Some((line, slot)) = line_slot(self.channel) {
            // The walker accepted the pair, so the type matches the slot.
            return match slot {
                0 => Value::TotalIn {
                    line,
                    count: le32(d, 0),
                },
                1 => Value::TotalOut {
                    line,
                    count: le32(d, 0),
                },
                _ => Value::Period {
                    line,
                    period_in: le16(d, 0),
                    period_out: le16(d, 2),
                },
            };
        }
        if (self.channel, self.kind) == (channel::BATTERY, kind::BATTERY) {
            return Value::Battery(u8_at(d, 0));
        }
        Value::Skipped
    }
}

/// Walker over the records of a [`Payload`]. A truncated record or an unknown pair yields one
/// `Err` and ends the walk.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Records<'a> {
    fn fail(&mut self, e: Error) -> Option<Result<Record<'a>>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let at = self.pos;
        let have = self.bytes.len() - at;
        if have < field::DATA {
            return self.fail(Error::truncated(
                "milesight record header",
                at,
                field::DATA,
                have,
            ));
        }
        let channel = u8_at(self.bytes, at + field::CHANNEL);
        let ty = u8_at(self.bytes, at + field::TYPE);
        let start = at + field::DATA;
        let len = match data_len(channel, ty, self.bytes, start) {
            Ok(Some(len)) => len,
            Ok(None) => return self.fail(Error::malformed("milesight unknown channel/type", at)),
            Err(e) => return self.fail(e),
        };
        let end = start + len;
        if end > self.bytes.len() {
            return self.fail(Error::truncated(
                "milesight record",
                at,
                field::DATA + len,
                have,
            ));
        }
        self.pos = end;
        Some(Ok(Record {
            offset: at,
            channel,
            kind: ty,
            data: slice(self.bytes, start, end),
        }))
    }
}

/// The counts of one line. A field is `None` when the uplink did not carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LineCounts {
    /// Line number, 1–4.
    pub line: u8,
    /// Cumulative count in.
    pub total_in: Option<u32>,
    /// Cumulative count out.
    pub total_out: Option<u32>,
    /// Count in during the last period.
    pub period_in: Option<u16>,
    /// Count out during the last period (the device sends both period counts together).
    pub period_out: Option<u16>,
}

impl LineCounts {
    /// An entry for `line` with nothing in it.
    pub const fn new(line: u8) -> LineCounts {
        LineCounts {
            line,
            total_in: None,
            total_out: None,
            period_in: None,
            period_out: None,
        }
    }
}

/// The counts and battery level of one uplink.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MilesightRepr {
    /// One entry per line present in the uplink, in line order.
    pub lines: Vec<LineCounts>,
    /// Battery level, percent.
    pub battery: Option<u8>,
}

impl MilesightRepr {
    /// Reads an uplink's bytes. A pair repeated in one uplink keeps its last value, as the
    /// vendor decoder does. Errors as described in the module header: nothing is returned
    /// past an unknown pair or a truncated record.
    pub fn parse(bytes: &[u8]) -> Result<MilesightRepr> {
        let mut lines = [1, 2, 3, 4].map(LineCounts::new);
        let mut battery = None;
        for rec in Payload::new_unchecked(bytes).records() {
            let value = rec?.value();
            let line = match value {
                Value::TotalIn { line, .. }
                | Value::TotalOut { line, .. }
                | Value::Period { line, .. } => line,
                Value::Battery(b) => {
                    battery = Some(b);
                    continue;
                }
                Value::Skipped => continue,
            };
            // Count channels map to lines 1–4 only.
            let Some(l) = lines.get_mut(usize::from(line.wrapping_sub(1))) else {
                continue;
            };
            match value {
                Value::TotalIn { count, .. } => l.total_in = Some(count),
                Value::TotalOut { count, .. } => l.total_out = Some(count),
                Value::Period {
                    period_in,
                    period_out,
                    ..
                } => {
                    l.period_in = Some(period_in);
                    l.period_out = Some(period_out);
                }
                Value::Battery(_) | Value::Skipped => {}
            }
        }
        Ok(MilesightRepr {
            lines: lines
                .into_iter()
                .filter(|l| l.total_in.is_some() || l.total_out.is_some() || l.period_in.is_some())
                .collect(),
            battery,
        })
    }

    /// Reads an uplink whose bytes arrive as text: hex or base64 (see [`decode_text`]).
    pub fn parse_hex(text: &str) -> Result<MilesightRepr> {
        MilesightRepr::parse(&decode_text(text)?)
    }

    /// The entry of `line`, if the uplink carried it.
    pub fn line(&self, line: u8) -> Option<&LineCounts> {
        self.lines.iter().find(|l| l.line == line)
    }

    /// Length of the emitted payload.
    pub fn buffer_len(&self) -> usize {
        let rec = field::DATA + COUNT_LEN;
        let battery = if self.battery.is_some() {
            field::DATA + 1
        } else {
            0
        };
        battery
            + self
                .lines
                .iter()
                .map(|l| {
                    rec * (usize::from(l.total_in.is_some())
                        + usize::from(l.total_out.is_some())
                        + usize::from(l.period_in.is_some()))
                })
                .sum::<usize>()
    }

    /// Writes the payload into `buf[..buffer_len()]`: battery, then each line's total in,
    /// total out and period records, in `lines` order (parse gives back line order). Refuses a
    /// line outside 1–4 and a period with only one of its two counts.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        Error::check_room("milesight payload", len, buf.len())?;
        let mut pos = 0;
        let mut record = |pos: &mut usize, channel: u8, ty: u8, data: &[u8]| {
            put(buf, *pos, &[channel, ty]);
            put(buf, *pos + field::DATA, data);
            *pos += field::DATA + data.len();
        };
        if let Some(b) = self.battery {
            record(&mut pos, channel::BATTERY, kind::BATTERY, &[b]);
        }
        for l in &self.lines {
            let (ch_in, ch_out, ch_period) =
                line_channels(l.line).ok_or(Error::malformed("milesight line number", pos))?;
            if let Some(v) = l.total_in {
                record(&mut pos, ch_in, kind::TOTAL, &v.to_le_bytes());
            }
            if let Some(v) = l.total_out {
                record(&mut pos, ch_out, kind::TOTAL, &v.to_le_bytes());
            }
            match (l.period_in, l.period_out) {
                (Some(i), Some(o)) => {
                    let [a, b] = i.to_le_bytes();
                    let [c, d] = o.to_le_bytes();
                    record(&mut pos, ch_period, kind::PERIOD, &[a, b, c, d]);
                }
                (None, None) => {}
                _ => return Err(Error::malformed("milesight period needs in and out", pos)),
            }
        }
        Ok(pos)
    }
}

/// Decodes a payload that arrived as text: hex when, ignoring ASCII whitespace, it is all hex
/// digits of even length, else base64 ([`decode_base64`]). LoRaWAN network servers put the
/// bytes in base64 (`data`), MQTT bridges and the vendor's examples in hex. A base64 text made
/// only of hex digits with an even length would be misread as hex, but no uplink is: the
/// base64 of a payload starting with any known channel/type pair has a non-hex character
/// within its first three characters (tested).
pub fn decode_text(text: &str) -> Result<Vec<u8>> {
    let digits = || text.bytes().filter(|b| !b.is_ascii_whitespace());
    let is_hex = digits().all(|b| b.is_ascii_hexdigit()) && digits().count().is_multiple_of(2);
    if !is_hex {
        return decode_base64(text);
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        // Only hex digits reach here.
        _ => 0,
    };
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high = None;
    for b in digits() {
        match high.take() {
            None => high = Some(nibble(b)),
            Some(h) => out.push(h << 4 | nibble(b)),
        }
    }
    Ok(out)
}

/// Value of a base64 digit, standard or URL-safe alphabet.
const fn base64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// Decodes base64 (RFC 4648, standard or URL-safe alphabet), ignoring ASCII whitespace;
/// padding is optional but, when present, must complete the last quantum. Unused low bits of
/// the last digit are ignored rather than refused. Errors are `Malformed` with the byte offset
/// in `text`.
pub fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits, mut digits, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for (i, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            pad += 1;
            if pad > 2 {
                return Err(Error::malformed("base64 padding", i));
            }
            continue;
        }
        if pad > 0 {
            return Err(Error::malformed("base64 data after padding", i));
        }
        let v = base64_value(c).ok_or(Error::malformed("base64 digit", i))?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        digits += 1;
        if bits >= 8 {
            bits -= 8;
            // The top bits above `bits` form the next byte.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if digits % 4 == 1 {
        return Err(Error::malformed("base64 length", text.len()));
    }
    if pad > 0 && !(digits + pad).is_multiple_of(4) {
        return Err(Error::malformed("base64 padding", text.len()));
    }
    Ok(out)
}

/// The checks of the `milesight` fuzz target (`fuzz/fuzz_targets/milesight.rs` mirrors
/// them): the input as payload bytes and as text.
#[doc(hidden)]
#[allow(clippy::unwrap_used)] // a fuzz check: a panic is its finding
pub fn fuzz_check(input: &[u8]) {
    let p = Payload::new_unchecked(input);
    // Records tile the input from 0, in order, inside it.
    let mut next = 0;
    for rec in p.records().flatten() {
        assert_eq!(rec.offset, next);
        next = rec.offset + 2 + rec.data.len();
        assert!(next <= input.len());
        let _ = rec.value();
    }
    if let Ok(r) = MilesightRepr::parse(input) {
        assert!(p.check_len().is_ok());
        assert_eq!(next, input.len());
        let mut buf = vec![0u8; r.buffer_len()];
        let n = r.emit(&mut buf).expect("a parsed repr emits");
        assert_eq!(n, buf.len());
        assert_eq!(
            MilesightRepr::parse(&buf).expect("emitted payload parses"),
            r
        );
    }
    let text = String::from_utf8_lossy(input);
    if let Ok(bytes) = decode_text(&text) {
        assert!(bytes.len() <= text.len());
        let _ = MilesightRepr::parse(&bytes);
    }
    let _ = decode_base64(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        decode_text(s).unwrap()
    }

    /// Reference encoder for the tests (standard alphabet, padded).
    fn encode_base64(data: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in data.chunks(3) {
            let n = c.len();
            let v = u32::from(c[0]) << 16
                | u32::from(*c.get(1).unwrap_or(&0)) << 8
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= n {
                    s.push(ABC[(v >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    fn line(
        line: u8,
        total_in: Option<u32>,
        total_out: Option<u32>,
        period: Option<(u16, u16)>,
    ) -> LineCounts {
        LineCounts {
            line,
            total_in,
            total_out,
            period_in: period.map(|p| p.0),
            period_out: period.map(|p| p.1),
        }
    }

    fn round_trip(r: &MilesightRepr) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut buf).unwrap(), buf.len());
        assert_eq!(&MilesightRepr::parse(&buf).unwrap(), r);
        buf
    }

    #[test]
    fn line_channel_numbering() {
        assert_eq!(line_channels(1), Some((0x03, 0x04, 0x05)));
        assert_eq!(line_channels(2), Some((0x06, 0x07, 0x08)));
        assert_eq!(line_channels(3), Some((0x09, 0x0A, 0x0B)));
        assert_eq!(line_channels(4), Some((0x0C, 0x0D, 0x0E)));
        assert_eq!(line_channels(0), None);
        assert_eq!(line_channels(5), None);
    }

    #[test]
    fn example_line_1_total_in() {
        let bytes = hex("03 \
             D2 \
             48000000");
        // channel 3 (line 1 total in), type D2 (u32), 0x00000048 little-endian = 72.
        let r = MilesightRepr::parse(&bytes).unwrap();
        assert_eq!(
            r,
            MilesightRepr {
                lines: vec![line(1, Some(72), None, None)],
                battery: None,
            }
        );
        assert_eq!(r.line(1).and_then(|l| l.total_in), Some(72));
        assert_eq!(r.line(2), None);
        assert_eq!(round_trip(&r), bytes);
    }

    #[test]
    fn vendor_totals_example() {
        let bytes = hex("03D2 48000000 \
             04D2 C8000000 \
             06D2 00000000 \
             07D2 00000000 \
             09D2 00000000 \
             0AD2 00000000 \
             0CD2 B4140000 \
             0DD2 8D1A0000");
        // line 1 in 72, out 200; lines 2 and 3 in/out 0; line 4 in 0x14B4 = 5300,
        // out 0x1A8D = 6797 (the SensorDecoders VS133 README example).
        let r = MilesightRepr::parse(&bytes).unwrap();
        assert_eq!(
            r.lines,
            vec![
                line(1, Some(72), Some(200), None),
                line(2, Some(0), Some(0), None),
                line(3, Some(0), Some(0), None),
                line(4, Some(5300), Some(6797), None),
            ]
        );
        assert_eq!(round_trip(&r), bytes);
    }

    #[test]
    fn vendor_period_example() {
        let bytes = hex("05CC 0000 0000 \
             08CC 0000 0000 \
             0BCC 0000 0000 \
             0ECC 0500 0700");
        // lines 1–3 period in/out 0/0; line 4 period in 5, out 7.
        let r = MilesightRepr::parse(&bytes).unwrap();
        assert_eq!(
            r.lines,
            vec![
                line(1, None, None, Some((0, 0))),
                line(2, None, None, Some((0, 0))),
                line(3, None, None, Some((0, 0))),
                line(4, None, None, Some((5, 7))),
            ]
        );
        assert_eq!(round_trip(&r), bytes);
    }

    #[test]
    fn battery_and_skipped_records() {
        let bytes = hex("FF01 01 \
             FF09 0110 \
             FF0A 0110 \
             FF16 6791D19604220011 \
             FF0F 00 \
             FFFF 0100 \
             FFFE 00 \
             FF0B 01 \
             FF1F 00010001 \
             0175 5A \
             0FE3 02100709 \
             10E4 01 0910 1121 \
             11D2 01000000 \
             12D2 02000000 \
             13CC 0100 0200 \
             1DE3 00000000 \
             1EE4 02 0100 0200 \
             50FC 00 01 01 \
             20CE 00E1F505 03 05000000 \
             20CE 00E1F505 10 01 2C01 \
             FE03 2C01 \
             FF6A 00 3C00 \
             04D2 07000000");
        // Device info (protocol, hardware, firmware ×2, serial, class, TSL, reset, status),
        // battery 0x5A = 90 %, region counts, dwell, child-node line 1 totals and period,
        // child regions and dwell, occlusion alarm, two history records (line 1 total in and
        // a dwell time), two downlink acks, then line 1 total out 7.
        let r = MilesightRepr::parse(&bytes).unwrap();
        assert_eq!(
            r,
            MilesightRepr {
                lines: vec![line(1, None, Some(7), None)],
                battery: Some(90),
            }
        );
        let p = Payload::new_checked(&bytes[..]).unwrap();
        let recs: Vec<_> = p.records().map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 23);
        assert_eq!(recs[9].value(), Value::Battery(90));
        assert_eq!(recs[10].value(), Value::Skipped);
        assert_eq!(
            (recs[1].offset, recs[1].channel, recs[1].kind),
            (3, 0xFF, 0x09)
        );
        assert_eq!(recs[1].data, &[0x01, 0x10]);
        assert_eq!(recs[22].value(), Value::TotalOut { line: 1, count: 7 });
        assert_eq!(p.into_inner().len(), bytes.len());
        // Emitting keeps only what the Repr holds: battery first, then the line.
        assert_eq!(round_trip(&r), hex("0175 5A 04D2 07000000"));
    }

    #[test]
    fn unknown_pair_names_its_offset() {
        // Line 1 total in 72, then the unknown pair 03 67 (a temperature on other models),
        // then line 1 total out: nothing is returned, the error points at the pair.
        let bytes = hex("03D2 48000000 0367 1001 04D2 C8000000");
        let err = MilesightRepr::parse(&bytes).unwrap_err();
        assert_eq!(err, Error::malformed("milesight unknown channel/type", 6));
        if let Error::Malformed { offset, .. } = err {
            assert_eq!(&bytes[offset..offset + 2], &[0x03, 0x67]);
        }
        assert_eq!(
            err.to_string(),
            "malformed milesight unknown channel/type at offset 6"
        );
        // A count channel with the other count type is unknown too.
        assert_eq!(
            MilesightRepr::parse(&hex("03CC 0000 0000")),
            Err(Error::malformed("milesight unknown channel/type", 0))
        );
        // An archived record type the history walker does not know.
        assert_eq!(
            MilesightRepr::parse(&hex("20CE 00000000 99 00000000")),
            Err(Error::malformed("milesight history data type", 6))
        );
    }

    #[test]
    fn truncated_records() {
        assert_eq!(
            MilesightRepr::parse(&hex("03D2 480000")),
            Err(Error::truncated("milesight record", 0, 6, 5))
        );
        assert_eq!(
            MilesightRepr::parse(&hex("0175 5A 03")),
            Err(Error::truncated("milesight record header", 3, 2, 1))
        );
        assert_eq!(
            MilesightRepr::parse(&hex("20CE 000000")),
            Err(Error::truncated("milesight history record", 2, 5, 3))
        );
        assert!(Payload::new_checked(&hex("0175")[..]).is_err());
        assert_eq!(MilesightRepr::parse(&[]), Ok(MilesightRepr::default()));
    }

    #[test]
    fn repeated_pair_keeps_last_value() {
        let r = MilesightRepr::parse(&hex("03D2 01000000 03D2 02000000")).unwrap();
        assert_eq!(r.lines, vec![line(1, Some(2), None, None)]);
    }

    #[test]
    fn lines_come_back_in_order() {
        // Line 3 before line 1 on the wire.
        let r = MilesightRepr::parse(&hex("09D2 05000000 03D2 01000000")).unwrap();
        assert_eq!(
            r.lines,
            vec![line(1, Some(1), None, None), line(3, Some(5), None, None)]
        );
    }

    #[test]
    fn emit_errors() {
        let bad_line = MilesightRepr {
            lines: vec![line(5, Some(1), None, None)],
            battery: None,
        };
        assert_eq!(
            bad_line.emit(&mut [0u8; 6]),
            Err(Error::malformed("milesight line number", 0))
        );
        let half_period = MilesightRepr {
            lines: vec![LineCounts {
                period_in: Some(1),
                ..LineCounts::new(1)
            }],
            battery: Some(1),
        };
        assert_eq!(
            half_period.emit(&mut [0u8; 16]),
            Err(Error::malformed("milesight period needs in and out", 3))
        );
        let r = MilesightRepr {
            lines: vec![line(1, Some(1), None, None)],
            battery: None,
        };
        assert_eq!(
            r.emit(&mut [0u8; 5]),
            Err(Error::BufferTooSmall {
                what: "milesight payload",
                need: 6,
                have: 5
            })
        );
    }

    #[test]
    fn text_hex_and_base64() {
        let bytes = vec![0x03, 0xD2, 0x48, 0x00, 0x00, 0x00];
        assert_eq!(decode_text("03D248000000").unwrap(), bytes);
        assert_eq!(decode_text("03d2 4800 0000\n").unwrap(), bytes);
        // The same bytes as a network server's base64 `data`.
        assert_eq!(encode_base64(&bytes), "A9JIAAAA");
        assert_eq!(decode_text("A9JIAAAA").unwrap(), bytes);
        assert_eq!(
            MilesightRepr::parse_hex("A9JIAAAA").unwrap().lines,
            vec![line(1, Some(72), None, None)]
        );
        assert_eq!(
            MilesightRepr::parse_hex("03D248000000"),
            MilesightRepr::parse_hex("A9JIAAAA")
        );
        // Odd-length hex is not hex: it is read as base64 (five digits cannot be base64).
        assert_eq!(
            decode_text("03D2F"),
            Err(Error::malformed("base64 length", 5))
        );
        assert_eq!(decode_text("03D").unwrap(), vec![0xD3, 0x70]);
        assert_eq!(decode_text("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn base64_of_known_records_is_never_hex() {
        // The third base64 character mixes the type's low nibble with the top two bits of the
        // first data byte: those four values cover every case.
        let mut known = 0;
        for ch in 0..=255u8 {
            for ty in 0..=255u8 {
                let data = [0u8; 16];
                if !matches!(data_len(ch, ty, &data, 0), Ok(Some(_))) {
                    continue;
                }
                known += 1;
                for x in [0x00, 0x40, 0x80, 0xC0] {
                    let text = encode_base64(&[ch, ty, x]);
                    assert!(
                        !text[..3].bytes().all(|b| b.is_ascii_hexdigit()),
                        "{ch:02X}{ty:02X}"
                    );
                }
            }
        }
        assert!(known > 40);
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(decode_base64(enc).unwrap(), plain.as_bytes(), "{enc}");
            assert_eq!(encode_base64(plain.as_bytes()), enc);
            // Padding is optional.
            assert_eq!(
                decode_base64(enc.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        // URL-safe alphabet and whitespace.
        assert_eq!(decode_base64("-_8=").unwrap(), vec![0xFB, 0xFF]);
        assert_eq!(decode_base64("+/8=").unwrap(), vec![0xFB, 0xFF]);
        assert_eq!(decode_base64(" Zm9v\r\nYmFy ").unwrap(), b"foobar");
        let errors: &[(&str, Error)] = &[
            ("Zm9v!", Error::malformed("base64 digit", 4)),
            ("Z", Error::malformed("base64 length", 1)),
            ("Zm9vY", Error::malformed("base64 length", 5)),
            ("Zg===", Error::malformed("base64 padding", 4)),
            ("Zg=x", Error::malformed("base64 data after padding", 3)),
            ("Zm8==", Error::malformed("base64 padding", 5)),
        ];
        for (text, want) in errors {
            assert_eq!(decode_base64(text), Err(*want), "{text}");
        }
    }

    /// Seeds for the `milesight` fuzz target: vendor examples as bytes, hex and base64.
    fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
        let payloads = [
            (
                "totals",
                concat!(
                    "03D248000000 04D2C8000000 06D200000000 07D200000000 ",
                    "09D200000000 0AD200000000 0CD2B4140000 0DD28D1A0000"
                ),
            ),
            (
                "periods",
                "05CC00000000 08CC00000000 0BCC00000000 0ECC05000700",
            ),
            ("regions", "0FE302100709 10E40109101121 10E40275217533"),
            (
                "info_battery",
                "FF0101 FF090110 FF166791D19604220011 FFFE00 017564 03D248000000",
            ),
            (
                "history",
                "20CE00E1F5050305000000 20CE00E1F5051001 2C01 04D207000000",
            ),
            ("unknown", "03D248000000 0367 1001"),
        ];
        let mut seeds = Vec::new();
        for (name, text) in payloads {
            let bytes = hex(text);
            seeds.push((format!("{name}_hex"), text.replace(' ', "").into_bytes()));
            seeds.push((format!("{name}_b64"), encode_base64(&bytes).into_bytes()));
            seeds.push((format!("{name}_bin"), bytes));
        }
        seeds
    }

    #[test]
    fn fuzz_target_body_on_seeds() {
        for (name, seed) in fuzz_seeds() {
            fuzz_check(&seed);
            if !name.starts_with("unknown") && name.ends_with("_bin") {
                assert!(MilesightRepr::parse(&seed).is_ok(), "{name}");
            }
        }
    }

    /// Writes the seeds to `fuzz/seeds/milesight` (run with `--ignored` after changing them).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/milesight");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in fuzz_seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    /// A Repr in the form `parse` returns: lines in order, each with something in it, and
    /// periods complete.
    fn repr_strategy() -> impl Strategy<Value = MilesightRepr> {
        let counts = (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<(u16, u16)>>(),
        );
        (
            prop::collection::vec(prop::option::of(counts), 4),
            any::<Option<u8>>(),
        )
            .prop_map(|(per_line, battery)| MilesightRepr {
                lines: per_line
                    .into_iter()
                    .zip(1u8..)
                    .filter_map(|(c, n)| c.map(|(i, o, p)| line(n, i, o, p)))
                    .filter(|l| {
                        l.total_in.is_some() || l.total_out.is_some() || l.period_in.is_some()
                    })
                    .collect(),
                battery,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>) {
            fuzz_check(&data);
        }

        #[test]
        fn record_soup_never_panics(
            parts in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(vec![
                        vec![0x03, 0xD2], vec![0x05, 0xCC], vec![0x0E, 0xCC], vec![0x01, 0x75],
                        vec![0x20, 0xCE], vec![0xFF, 0x16], vec![0x10, 0xE4],
                    ]),
                    prop::collection::vec(any::<u8>(), 0..6),
                ],
                0..20,
            ),
        ) {
            let bytes: Vec<u8> = parts.concat();
            fuzz_check(&bytes);
        }

        #[test]
        fn repr_round_trip(r in repr_strategy()) {
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&mut buf).unwrap(), buf.len());
            prop_assert_eq!(&MilesightRepr::parse(&buf).unwrap(), &r);
            let text = encode_base64(&buf);
            // A payload starting with a channel byte below 0x20 is never all hex in base64.
            prop_assert_eq!(&MilesightRepr::parse_hex(&text).unwrap(), &r);
        }

        #[test]
        fn base64_round_trip(data: Vec<u8>) {
            prop_assert_eq!(decode_base64(&encode_base64(&data)).unwrap(), data);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[ -~\\s]{0,64}") {
            let _ = decode_text(&text);
            let _ = decode_base64(&text);
            let _ = MilesightRepr::parse_hex(&text);
        }
    }
}
