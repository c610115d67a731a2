//! One ESC/POS command: [`Command::parse`] reads it zero-copy from the start of a buffer and
//! [`Command::emit`] writes it back.
//!
//! The command table follows Epson's ESC/POS reference as used by python-escpos
//! (`constants.py`, `escpos.py`) and mike42/escpos-php (`Printer.php`), plus the FS commands of
//! Chinese printers. Only commands whose length is certain are accepted: a command read with
//! the wrong length would shift every later byte, so an unknown command byte costs one
//! "unknown command" and only its prefix byte is skipped.
//!
//! Payloads that can be large are not part of the command: image commands ([`Command::Image`])
//! end after their header, and the caller skips the `bytes` that follow, so a receipt decoder
//! never has to hold a whole logo. A length field claiming more than [`MAX_PAYLOAD`] is treated
//! as noise.

use crate::error::{Error, Result};

/// Largest payload a length field may announce. A bigger claim is garbage (noise, a wrong baud
/// rate), so it cannot swallow the receipts that follow.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// Longest data of a NUL-terminated barcode (`GS k m` with m 0–6), and of `ESC D` tab stops
/// (32 positions): past that without a NUL, the bytes are not the command.
const MAX_NUL_DATA: usize = 255;
/// At most 32 tab positions follow `ESC D`.
const MAX_TABS: usize = 32;

/// Control and prefix bytes.
pub mod ctl {
    /// NUL, the terminator of some variable-length commands.
    pub const NUL: u8 = 0x00;
    /// Horizontal tab.
    pub const HT: u8 = 0x09;
    /// Print and line feed.
    pub const LF: u8 = 0x0A;
    /// Form feed (print and eject in page mode).
    pub const FF: u8 = 0x0C;
    /// Carriage return (ignored by most printers with auto line feed off).
    pub const CR: u8 = 0x0D;
    /// DLE: prefix of real-time commands.
    pub const DLE: u8 = 0x10;
    /// Cancel print data in page mode.
    pub const CAN: u8 = 0x18;
    /// ESC: prefix of most commands.
    pub const ESC: u8 = 0x1B;
    /// FS: prefix of double-byte (Kanji/Chinese) and NV image commands.
    pub const FS: u8 = 0x1C;
    /// GS: prefix of extended commands.
    pub const GS: u8 = 0x1D;
}

use ctl::{CAN, CR, DLE, ESC, FF, FS, GS, HT, LF, NUL};

/// One ESC/POS command or run of printable bytes, as parsed from a buffer (zero-copy).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// A run of bytes >= 0x20, to be decoded in the current encoding. Parsing stops the run at
    /// the first control byte or the end of the buffer, so a run may continue in the next one.
    Text(&'a [u8]),
    /// `LF`: print and line feed, the end of a text line.
    LineFeed,
    /// `CR`: carriage return.
    CarriageReturn,
    /// `HT`: horizontal tab.
    Tab,
    /// `FF`: form feed.
    FormFeed,
    /// `CAN`: cancel page-mode data.
    Cancel,
    /// `ESC @`: initialize; formatting and code table return to the power-on state.
    Init,
    /// `ESC d n`: print and feed `n` lines.
    FeedLines(u8),
    /// `ESC J n`: print and feed `n` dots.
    FeedDots(u8),
    /// `ESC e n`: print and feed `n` lines backwards.
    ReverseFeed(u8),
    /// `GS V m` (full for m 0 / 0x30, partial for 1 / 0x31) or `GS V m n` (m 65 full, 66
    /// partial: feed `n` then cut). Emitted with m 0/1 or 65/66.
    Cut {
        /// Partial cut (one point left uncut).
        partial: bool,
        /// Feed before cutting (the `GS V 65/66 n` form).
        feed: Option<u8>,
    },
    /// `ESC i` (partial cut, one point uncut) or `ESC m` (three points uncut): obsolete cuts.
    LegacyCut {
        /// `ESC m` rather than `ESC i`.
        three_points: bool,
    },
    /// `ESC p m t1 t2`: pulse a cash-drawer pin.
    DrawerKick {
        /// `m`: 0 or 0x30 for connector pin 2, 1 or 0x31 for pin 5.
        pin: u8,
        /// On time, 2 ms units.
        on: u8,
        /// Off time, 2 ms units.
        off: u8,
    },
    /// `DLE DC4 1 m t`: real-time pulse on a drawer pin.
    Pulse {
        /// `m`: 0 for connector pin 2, 1 for pin 5.
        pin: u8,
        /// Pulse time, 100 ms units (1–8).
        time: u8,
    },
    /// `ESC t n`: select character code table `n` (its encoding is model dependent).
    SelectCodeTable(u8),
    /// `FS &`: enter double-byte (Chinese) character mode.
    EnterDoubleByte,
    /// `FS .`: leave double-byte character mode.
    LeaveDoubleByte,
    /// `GS ( k pL pH 31 50 30 d…`: store QR code data (the data after cn fn m).
    QrStore(&'a [u8]),
    /// Any other `GS ( k pL pH cn fn …` 2D-symbol function (model, size, print, PDF417…).
    Symbol2d {
        /// Symbol type (0x30 PDF417, 0x31 QR, …).
        cn: u8,
        /// Function (0x41 model, 0x43 size, 0x45 error correction, 0x51 print, …).
        fn_: u8,
        /// The bytes after `fn`.
        params: &'a [u8],
    },
    /// `GS k m d… NUL` (m 0–6) or `GS k m n d…` (m 65–78): print a barcode.
    Barcode {
        /// `m`: the symbology and the form of the command.
        system: u8,
        /// The data, without length or terminator.
        data: &'a [u8],
    },
    /// An image header: `GS v 0` raster, `ESC *` column, `GS ( L` / `GS 8 L` graphics. The
    /// command is the header only; `bytes` of image data follow it in the stream.
    Image {
        /// The header bytes.
        header: &'a [u8],
        /// Length of the payload after the header.
        bytes: usize,
    },
    /// A command that changes neither the text nor the receipt boundaries (print mode, bold,
    /// size, justification, spacing, positions, barcode setup, status queries, NV logo,
    /// user-defined characters…), kept raw so that emit reproduces it.
    Setting {
        /// The whole command.
        raw: &'a [u8],
    },
}

/// Why [`parse_inner`] did not return a command; the decoder needs to tell these apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// More bytes are needed: at least `need` from the start.
    Truncated { need: usize },
    /// A prefix byte followed by a command byte this table does not know.
    Unknown,
    /// A known command with a parameter it does not allow (or a control byte that is not a
    /// command).
    Malformed { what: &'static str, offset: usize },
}

impl Reject {
    fn into_error(self, have: usize) -> Error {
        match self {
            Reject::Truncated { need } => Error::truncated("escpos command", 0, need, have),
            Reject::Unknown => Error::malformed("escpos unknown command", 1),
            Reject::Malformed { what, offset } => Error::malformed(what, offset),
        }
    }
}

type Parsed<'a> = core::result::Result<(Command<'a>, usize), Reject>;

/// The first `n` bytes of `buf`, or a request for them.
fn take(buf: &[u8], n: usize) -> core::result::Result<&[u8], Reject> {
    buf.get(..n).ok_or(Reject::Truncated { need: n })
}

/// Byte `i` of `buf`, or a request for `i + 1` bytes.
fn byte(buf: &[u8], i: usize) -> core::result::Result<u8, Reject> {
    buf.get(i).copied().ok_or(Reject::Truncated { need: i + 1 })
}

/// A fixed-length [`Command::Setting`].
fn setting(buf: &[u8], n: usize) -> Parsed<'_> {
    Ok((Command::Setting { raw: take(buf, n)? }, n))
}

const fn malformed(what: &'static str, offset: usize) -> Reject {
    Reject::Malformed { what, offset }
}

/// Little-endian 16-bit value at `i`.
fn le16_at(buf: &[u8], i: usize) -> core::result::Result<usize, Reject> {
    Ok(usize::from(byte(buf, i)?) | usize::from(byte(buf, i + 1)?) << 8)
}

/// Data terminated by NUL starting at `start`, at most `max` bytes: `(data, total length)`.
fn nul_terminated<'a>(
    buf: &'a [u8],
    start: usize,
    max: usize,
    what: &'static str,
) -> core::result::Result<(&'a [u8], usize), Reject> {
    let rest = buf.get(start..).unwrap_or(&[]);
    let window = rest.get(..=max).unwrap_or(rest);
    match window.iter().position(|&b| b == NUL) {
        Some(i) => Ok((rest.get(..i).unwrap_or(&[]), start + i + 1)),
        None if window.len() > max => Err(malformed(what, start)),
        None => Err(Reject::Truncated {
            need: buf.len() + 1,
        }),
    }
}

/// Parses the command at the start of `buf`. The result depends only on the bytes it reads:
/// a longer buffer never turns an accepted or rejected command into something else (only a
/// [`Command::Text`] run grows), which is what lets the decoder split input anywhere.
pub(crate) fn parse_inner(buf: &[u8]) -> Parsed<'_> {
    let b0 = byte(buf, 0)?;
    match b0 {
        0x20..=0xFF => {
            let n = buf.iter().position(|&b| b < 0x20).unwrap_or(buf.len());
            Ok((Command::Text(buf.get(..n).unwrap_or(&[])), n))
        }
        LF => Ok((Command::LineFeed, 1)),
        CR => Ok((Command::CarriageReturn, 1)),
        HT => Ok((Command::Tab, 1)),
        FF => Ok((Command::FormFeed, 1)),
        CAN => Ok((Command::Cancel, 1)),
        ESC => parse_esc(buf),
        GS => parse_gs(buf),
        FS => parse_fs(buf),
        DLE => parse_dle(buf),
        _ => Err(malformed("escpos control byte", 0)),
    }
}

fn parse_esc(buf: &[u8]) -> Parsed<'_> {
    let c = byte(buf, 1)?;
    match c {
        b'@' => Ok((Command::Init, 2)),
        // ESC 2: default line spacing.
        b'2' => setting(buf, 2),
        b'i' => Ok((
            Command::LegacyCut {
                three_points: false,
            },
            2,
        )),
        b'm' => Ok((Command::LegacyCut { three_points: true }, 2)),
        // ESC ! print mode, SP right spacing, % user-defined set, - underline, 3 line spacing,
        // = peripheral, ? cancel user-defined character, E bold, G double strike, M font,
        // R international set, U unidirectional, V rotation, a justification, r colour,
        // { upside down; + and A: line spacing in 1/360 and 1/60 inch (python-escpos).
        b'!' | b' ' | b'%' | b'-' | b'3' | b'=' | b'?' | b'E' | b'G' | b'M' | b'R' | b'U'
        | b'V' | b'a' | b'r' | b'{' | b'+' | b'A' => setting(buf, 3),
        b'd' => Ok((Command::FeedLines(byte(buf, 2)?), 3)),
        b'J' => Ok((Command::FeedDots(byte(buf, 2)?), 3)),
        b'e' => Ok((Command::ReverseFeed(byte(buf, 2)?), 3)),
        b't' => Ok((Command::SelectCodeTable(byte(buf, 2)?), 3)),
        // ESC $ absolute and ESC \ relative print position.
        b'$' | b'\\' => setting(buf, 4),
        // ESC c 0/1 paper type, 3/4 paper sensors, 5 panel buttons.
        b'c' => match byte(buf, 2)? {
            b'0' | b'1' | b'3' | b'4' | b'5' => setting(buf, 4),
            _ => Err(malformed("escpos ESC c function", 2)),
        },
        b'p' => {
            let raw = take(buf, 5)?;
            match raw {
                &[_, _, pin @ (0 | 1 | 0x30 | 0x31), on, off] => {
                    Ok((Command::DrawerKick { pin, on, off }, 5))
                }
                _ => Err(malformed("escpos ESC p pin", 2)),
            }
        }
        // ESC D n1 … nk NUL: horizontal tab positions.
        b'D' => {
            let (_, n) = nul_terminated(buf, 2, MAX_TABS, "escpos ESC D tab stops")?;
            setting(buf, n)
        }
        b'*' => {
            let m = byte(buf, 2)?;
            let per_column = match m {
                0 | 1 => 1,
                32 | 33 => 3,
                _ => return Err(malformed("escpos ESC * density", 2)),
            };
            let columns = le16_at(buf, 3)?;
            let header = take(buf, 5)?;
            Ok((
                Command::Image {
                    header,
                    bytes: columns * per_column,
                },
                5,
            ))
        }
        _ => Err(Reject::Unknown),
    }
}

fn parse_gs(buf: &[u8]) -> Parsed<'_> {
    let c = byte(buf, 1)?;
    match c {
        // GS ! size, B reverse, H HRI position, I printer ID, a status back, b smoothing,
        // f HRI font, h barcode height, r status, w barcode width, | density (python-escpos),
        // / print downloaded image.
        b'!' | b'B' | b'H' | b'I' | b'a' | b'b' | b'f' | b'h' | b'r' | b'w' | b'|' | b'/' => {
            setting(buf, 3)
        }
        // GS L left margin, W print width, P motion units.
        b'L' | b'W' | b'P' => setting(buf, 4),
        b'V' => match byte(buf, 2)? {
            0 | 0x30 => Ok((
                Command::Cut {
                    partial: false,
                    feed: None,
                },
                3,
            )),
            1 | 0x31 => Ok((
                Command::Cut {
                    partial: true,
                    feed: None,
                },
                3,
            )),
            m @ (65 | 66) => Ok((
                Command::Cut {
                    partial: m == 66,
                    feed: Some(byte(buf, 3)?),
                },
                4,
            )),
            _ => Err(malformed("escpos GS V cut mode", 2)),
        },
        b'k' => parse_barcode(buf),
        b'v' => {
            if byte(buf, 2)? != b'0' {
                return Err(malformed("escpos GS v function", 2));
            }
            if !matches!(byte(buf, 3)?, 0..=3 | 0x30..=0x33) {
                return Err(malformed("escpos GS v 0 mode", 3));
            }
            let x = le16_at(buf, 4)?;
            let y = le16_at(buf, 6)?;
            let header = take(buf, 8)?;
            // At most 65535², which fits a 64-bit usize but not MAX_PAYLOAD.
            match x.checked_mul(y) {
                Some(bytes) if bytes <= MAX_PAYLOAD => Ok((Command::Image { header, bytes }, 8)),
                _ => Err(malformed("escpos GS v 0 size", 4)),
            }
        }
        b'(' => {
            match byte(buf, 2)? {
                b'k' => parse_symbol(buf, le16_at(buf, 3)?),
                b'L' => Ok((
                    Command::Image {
                        bytes: le16_at(buf, 3)?,
                        header: take(buf, 5)?,
                    },
                    5,
                )),
                // The other GS ( functions share the pL pH framing: A test print, C NV user
                // memory, D real-time enable, E user setup, H response, K print control,
                // M customize, N character style, P page mode, Q graphics, z set-up.
                b'A' | b'C' | b'D' | b'E' | b'H' | b'K' | b'M' | b'N' | b'P' | b'Q' | b'z' => {
                    setting(buf, 5 + le16_at(buf, 3)?)
                }
                _ => Err(Reject::Unknown),
            }
        }
        b'8' => {
            if byte(buf, 2)? != b'L' {
                return Err(Reject::Unknown);
            }
            let header = take(buf, 7)?;
            let len = match header {
                &[_, _, _, a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
                _ => 0,
            };
            match usize::try_from(len) {
                Ok(bytes) if bytes <= MAX_PAYLOAD => Ok((Command::Image { header, bytes }, 7)),
                _ => Err(malformed("escpos GS 8 L length", 3)),
            }
        }
        _ => Err(Reject::Unknown),
    }
}

/// `GS k`: both barcode forms.
fn parse_barcode(buf: &[u8]) -> Parsed<'_> {
    let system = byte(buf, 2)?;
    match system {
        0..=6 => {
            let (data, n) = nul_terminated(buf, 3, MAX_NUL_DATA, "escpos GS k data")?;
            Ok((Command::Barcode { system, data }, n))
        }
        65..=78 => {
            let n = usize::from(byte(buf, 3)?);
            let all = take(buf, 4 + n)?;
            Ok((
                Command::Barcode {
                    system,
                    data: all.get(4..).unwrap_or(&[]),
                },
                4 + n,
            ))
        }
        _ => Err(malformed("escpos GS k system", 2)),
    }
}

/// `GS ( k pL pH cn fn …`, with `len = pL + 256·pH` bytes after pH.
fn parse_symbol(buf: &[u8], len: usize) -> Parsed<'_> {
    if len < 2 {
        return Err(malformed("escpos GS ( k length", 3));
    }
    let all = take(buf, 5 + len)?;
    let (cn, fn_, params) = match all {
        [_, _, _, _, _, cn, fn_, params @ ..] => (*cn, *fn_, params),
        _ => return Err(malformed("escpos GS ( k length", 3)),
    };
    let cmd = match (cn, fn_, params) {
        (0x31, 0x50, [0x30, data @ ..]) => Command::QrStore(data),
        _ => Command::Symbol2d { cn, fn_, params },
    };
    Ok((cmd, 5 + len))
}

fn parse_fs(buf: &[u8]) -> Parsed<'_> {
    match byte(buf, 1)? {
        b'&' => Ok((Command::EnterDoubleByte, 2)),
        b'.' => Ok((Command::LeaveDoubleByte, 2)),
        // FS ! double-byte print mode, W quadruple size, - underline, C code system.
        b'!' | b'W' | b'-' | b'C' => setting(buf, 3),
        // FS S spacing, FS p print NV logo.
        b'S' | b'p' => setting(buf, 4),
        // FS 2 c1 c2 + 72 bytes: define a user double-byte character (24×24 dots).
        b'2' => setting(buf, 4 + 72),
        _ => Err(Reject::Unknown),
    }
}

fn parse_dle(buf: &[u8]) -> Parsed<'_> {
    match byte(buf, 1)? {
        // DLE EOT n [a]: real-time status (n 7 and 8 take a second byte).
        0x04 => match byte(buf, 2)? {
            1..=4 => setting(buf, 3),
            7 | 8 => setting(buf, 4),
            _ => Err(malformed("escpos DLE EOT status", 2)),
        },
        // DLE ENQ n: real-time request.
        0x05 => match byte(buf, 2)? {
            0..=2 => setting(buf, 3),
            _ => Err(malformed("escpos DLE ENQ request", 2)),
        },
        // DLE DC4 fn …
        0x14 => match byte(buf, 2)? {
            1 => match take(buf, 5)? {
                &[_, _, _, pin @ (0 | 1), time] => Ok((Command::Pulse { pin, time }, 5)),
                _ => Err(malformed("escpos DLE DC4 pulse pin", 3)),
            },
            // DLE DC4 2 1 8: power off.
            2 => setting(buf, 5),
            _ => Err(malformed("escpos DLE DC4 function", 2)),
        },
        _ => Err(Reject::Unknown),
    }
}

/// Writes `len` as pL pH.
fn put_le16(out: &mut Vec<u8>, len: usize) {
    let v = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&v.to_le_bytes());
}

impl<'a> Command<'a> {
    /// Parses one command at the start of `buf` and returns it with the bytes it takes.
    ///
    /// `Err(Error::Truncated{..})` means "need more bytes" (`need` is a lower bound);
    /// `Err(Error::Malformed{..})` means the bytes are not a command this table accepts (an
    /// unknown command byte, a parameter out of range, a length beyond [`MAX_PAYLOAD`], a
    /// control byte that is not a command), and the caller skips one byte as garbage. For
    /// [`Command::Image`] the count covers the header only.
    pub fn parse(buf: &'a [u8]) -> Result<(Command<'a>, usize)> {
        parse_inner(buf).map_err(|r| r.into_error(buf.len()))
    }

    /// For [`Command::Image`], the payload bytes that follow the command; 0 otherwise.
    pub fn payload_len(&self) -> usize {
        match *self {
            Command::Image { bytes, .. } => bytes,
            _ => 0,
        }
    }

    /// Appends the command's bytes to `out` (for an image, the header only). Lengths that do
    /// not fit their field are clipped: QR data to 65532 bytes, 2D parameters to 65533, length
    /// form barcode data to 255; NUL-terminated barcode data is written up to its first NUL.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match *self {
            Command::Text(b) => out.extend_from_slice(b),
            Command::LineFeed => out.push(LF),
            Command::CarriageReturn => out.push(CR),
            Command::Tab => out.push(HT),
            Command::FormFeed => out.push(FF),
            Command::Cancel => out.push(CAN),
            Command::Init => out.extend_from_slice(&[ESC, b'@']),
            Command::FeedLines(n) => out.extend_from_slice(&[ESC, b'd', n]),
            Command::FeedDots(n) => out.extend_from_slice(&[ESC, b'J', n]),
            Command::ReverseFeed(n) => out.extend_from_slice(&[ESC, b'e', n]),
            Command::Cut { partial, feed } => match feed {
                None => out.extend_from_slice(&[GS, b'V', u8::from(partial)]),
                Some(n) => out.extend_from_slice(&[GS, b'V', 65 + u8::from(partial), n]),
            },
            Command::LegacyCut { three_points } => {
                out.extend_from_slice(&[ESC, if three_points { b'm' } else { b'i' }]);
            }
            Command::DrawerKick { pin, on, off } => {
                out.extend_from_slice(&[ESC, b'p', pin, on, off])
            }
            Command::Pulse { pin, time } => out.extend_from_slice(&[DLE, 0x14, 1, pin, time]),
            Command::SelectCodeTable(n) => out.extend_from_slice(&[ESC, b't', n]),
            Command::EnterDoubleByte => out.extend_from_slice(&[FS, b'&']),
            Command::LeaveDoubleByte => out.extend_from_slice(&[FS, b'.']),
            Command::QrStore(data) => {
                let data = data.get(..usize::from(u16::MAX) - 3).unwrap_or(data);
                out.extend_from_slice(&[GS, b'(', b'k']);
                put_le16(out, data.len() + 3);
                out.extend_from_slice(&[0x31, 0x50, 0x30]);
                out.extend_from_slice(data);
            }
            Command::Symbol2d { cn, fn_, params } => {
                let params = params.get(..usize::from(u16::MAX) - 2).unwrap_or(params);
                out.extend_from_slice(&[GS, b'(', b'k']);
                put_le16(out, params.len() + 2);
                out.extend_from_slice(&[cn, fn_]);
                out.extend_from_slice(params);
            }
            Command::Barcode { system, data } => {
                out.extend_from_slice(&[GS, b'k', system]);
                if system <= 6 {
                    let end = data.iter().position(|&b| b == NUL).unwrap_or(data.len());
                    out.extend_from_slice(data.get(..end).unwrap_or(&[]));
                    out.push(NUL);
                } else {
                    let data = data.get(..255).unwrap_or(data);
                    // data.len() <= 255 here.
                    out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
                    out.extend_from_slice(data);
                }
            }
            Command::Image { header, .. } => out.extend_from_slice(header),
            Command::Setting { raw } => out.extend_from_slice(raw),
        }
    }

    /// The emitted bytes as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses `bytes` completely, as one command.
    fn one(bytes: &[u8]) -> Command<'_> {
        let (c, n) = Command::parse(bytes).unwrap();
        assert_eq!(n, bytes.len(), "{c:?} took {n} of {} bytes", bytes.len());
        c
    }

    /// Every command form: parse takes exactly the bytes, emit gives them back, and every
    /// shorter prefix asks for more bytes (never a different command).
    #[test]
    fn command_table_round_trip() {
        let cases: &[(&[u8], Command<'_>)] = &[
            (b"Total 12.50", Command::Text(b"Total 12.50")),
            (&[0x0A], Command::LineFeed),
            (&[0x0D], Command::CarriageReturn),
            (&[0x09], Command::Tab),
            (&[0x0C], Command::FormFeed),
            (&[0x18], Command::Cancel),
            (&[0x1B, 0x40], Command::Init),
            (&[0x1B, 0x64, 0x03], Command::FeedLines(3)),
            (&[0x1B, 0x4A, 0x20], Command::FeedDots(0x20)),
            (&[0x1B, 0x65, 0x01], Command::ReverseFeed(1)),
            (
                &[0x1D, 0x56, 0x00],
                Command::Cut {
                    partial: false,
                    feed: None,
                },
            ),
            (
                &[0x1D, 0x56, 0x01],
                Command::Cut {
                    partial: true,
                    feed: None,
                },
            ),
            (
                &[0x1D, 0x56, 0x41, 0x03],
                Command::Cut {
                    partial: false,
                    feed: Some(3),
                },
            ),
            (
                &[0x1D, 0x56, 0x42, 0x00],
                Command::Cut {
                    partial: true,
                    feed: Some(0),
                },
            ),
            (
                &[0x1B, 0x69],
                Command::LegacyCut {
                    three_points: false,
                },
            ),
            (&[0x1B, 0x6D], Command::LegacyCut { three_points: true }),
            (
                &[0x1B, 0x70, 0x00, 0x32, 0x32],
                Command::DrawerKick {
                    pin: 0,
                    on: 50,
                    off: 50,
                },
            ),
            (
                &[0x1B, 0x70, 0x31, 0x3C, 0x78],
                Command::DrawerKick {
                    pin: 0x31,
                    on: 60,
                    off: 120,
                },
            ),
            (
                &[0x10, 0x14, 0x01, 0x00, 0x01],
                Command::Pulse { pin: 0, time: 1 },
            ),
            (&[0x1B, 0x74, 0x13], Command::SelectCodeTable(19)),
            (&[0x1C, 0x26], Command::EnterDoubleByte),
            (&[0x1C, 0x2E], Command::LeaveDoubleByte),
            (
                &[
                    0x1D, 0x28, 0x6B, 0x06, 0x00, 0x31, 0x50, 0x30, b'a', b'b', b'c',
                ],
                Command::QrStore(b"abc"),
            ),
            (
                &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30],
                Command::Symbol2d {
                    cn: 0x31,
                    fn_: 0x51,
                    params: &[0x30],
                },
            ),
            (
                &[0x1D, 0x28, 0x6B, 0x02, 0x00, 0x31, 0x50],
                Command::Symbol2d {
                    cn: 0x31,
                    fn_: 0x50,
                    params: &[],
                },
            ),
            (
                &[0x1D, 0x6B, 0x04, b'A', b'B', b'1', 0x00],
                Command::Barcode {
                    system: 4,
                    data: b"AB1",
                },
            ),
            (
                &[0x1D, 0x6B, 0x49, 0x04, b'{', b'B', b'4', b'2'],
                Command::Barcode {
                    system: 73,
                    data: b"{B42",
                },
            ),
            (
                &[0x1D, 0x76, 0x30, 0x00, 0x02, 0x00, 0x03, 0x00],
                Command::Image {
                    header: &[0x1D, 0x76, 0x30, 0x00, 0x02, 0x00, 0x03, 0x00],
                    bytes: 6,
                },
            ),
            (
                &[0x1B, 0x2A, 0x21, 0x02, 0x01],
                Command::Image {
                    header: &[0x1B, 0x2A, 0x21, 0x02, 0x01],
                    bytes: 258 * 3,
                },
            ),
            (
                &[0x1D, 0x28, 0x4C, 0x02, 0x00],
                Command::Image {
                    header: &[0x1D, 0x28, 0x4C, 0x02, 0x00],
                    bytes: 2,
                },
            ),
            (
                &[0x1D, 0x38, 0x4C, 0x00, 0x00, 0x01, 0x00],
                Command::Image {
                    header: &[0x1D, 0x38, 0x4C, 0x00, 0x00, 0x01, 0x00],
                    bytes: 65536,
                },
            ),
        ];
        for &(bytes, cmd) in cases {
            assert_eq!(one(bytes), cmd, "{bytes:02x?}");
            assert_eq!(cmd.to_bytes(), bytes, "{cmd:?}");
            if !matches!(cmd, Command::Text(_)) {
                for k in 0..bytes.len() {
                    assert!(
                        matches!(parse_inner(&bytes[..k]), Err(Reject::Truncated { .. })),
                        "{cmd:?} prefix {k}"
                    );
                }
            }
        }
    }

    /// Settings keep their raw bytes; table of (bytes, length).
    #[test]
    fn settings_table() {
        let cases: &[&[u8]] = &[
            &[0x1B, 0x21, 0x30],             // ESC ! print mode: double width + height
            &[0x1B, 0x20, 0x02],             // ESC SP right-side spacing
            &[0x1B, 0x25, 0x01],             // ESC % user-defined set
            &[0x1B, 0x2D, 0x01],             // ESC - underline
            &[0x1B, 0x32],                   // ESC 2 default line spacing
            &[0x1B, 0x33, 0x18],             // ESC 3 line spacing 24 dots
            &[0x1B, 0x3D, 0x01],             // ESC = select printer
            &[0x1B, 0x3F, 0x0A],             // ESC ? cancel user-defined character 0x0A
            &[0x1B, 0x2B, 0x30],             // ESC + line spacing 48/360 inch
            &[0x1B, 0x41, 0x0C],             // ESC A line spacing 12/60 inch
            &[0x1B, 0x45, 0x01],             // ESC E bold on
            &[0x1B, 0x47, 0x00],             // ESC G double strike off
            &[0x1B, 0x4D, 0x01],             // ESC M font B
            &[0x1B, 0x52, 0x0F],             // ESC R international set (China)
            &[0x1B, 0x55, 0x01],             // ESC U unidirectional
            &[0x1B, 0x56, 0x01],             // ESC V rotate 90°
            &[0x1B, 0x61, 0x01],             // ESC a centre
            &[0x1B, 0x72, 0x01],             // ESC r red
            &[0x1B, 0x7B, 0x01],             // ESC { upside down
            &[0x1B, 0x24, 0x40, 0x00],       // ESC $ absolute position 64
            &[0x1B, 0x5C, 0xF0, 0xFF],       // ESC \ relative position −16
            &[0x1B, 0x63, 0x35, 0x01],       // ESC c 5 panel buttons off
            &[0x1B, 0x63, 0x30, 0x04],       // ESC c 0 slip (python-escpos SHEET_SLIP_MODE)
            &[0x1B, 0x44, 0x08, 0x10, 0x00], // ESC D tabs at 8 and 16, NUL
            &[0x1D, 0x21, 0x11],             // GS ! double size
            &[0x1D, 0x42, 0x01],             // GS B reverse
            &[0x1D, 0x48, 0x02],             // GS H HRI below
            &[0x1D, 0x49, 0x01],             // GS I printer ID
            &[0x1D, 0x61, 0x00],             // GS a ASB off
            &[0x1D, 0x62, 0x01],             // GS b smoothing
            &[0x1D, 0x66, 0x00],             // GS f HRI font A
            &[0x1D, 0x68, 0x40],             // GS h barcode height 64
            &[0x1D, 0x72, 0x01],             // GS r paper status
            &[0x1D, 0x77, 0x03],             // GS w barcode width 3
            &[0x1D, 0x7C, 0x04],             // GS | density 0 % (python-escpos)
            &[0x1D, 0x2F, 0x00],             // GS / print downloaded image
            &[0x1D, 0x4C, 0x10, 0x00],       // GS L left margin 16
            &[0x1D, 0x57, 0x00, 0x02],       // GS W print width 512
            &[0x1D, 0x50, 0xB4, 0xB4],       // GS P motion units
            &[0x1D, 0x28, 0x41, 0x02, 0x00, 0x00, 0x02], // GS ( A test print
            &[0x1C, 0x21, 0x0C],             // FS ! double-byte print mode
            &[0x1C, 0x57, 0x01],             // FS W quadruple
            &[0x1C, 0x2D, 0x01],             // FS - double-byte underline
            &[0x1C, 0x43, 0x00],             // FS C code system
            &[0x1C, 0x53, 0x00, 0x02],       // FS S spacing
            &[0x1C, 0x70, 0x01, 0x00],       // FS p print NV logo 1
            &[0x10, 0x04, 0x01],             // DLE EOT printer status
            &[0x10, 0x04, 0x07, 0x01],       // DLE EOT 7 ink status
            &[0x10, 0x05, 0x01],             // DLE ENQ recover
            &[0x10, 0x14, 0x02, 0x01, 0x08], // DLE DC4 power off
        ];
        for &bytes in cases {
            assert_eq!(one(bytes), Command::Setting { raw: bytes }, "{bytes:02x?}");
            assert_eq!(Command::Setting { raw: bytes }.to_bytes(), bytes);
        }
        // FS 2: user-defined character, 2 code bytes and 72 bytes of dots.
        let mut udc = vec![0x1C, 0x32, 0xFE, 0xA1];
        udc.extend_from_slice(&[0x55; 72]);
        assert_eq!(one(&udc), Command::Setting { raw: &udc });
        assert!(matches!(
            parse_inner(&udc[..75]),
            Err(Reject::Truncated { need: 76 })
        ));
    }

    #[test]
    fn rejects_table() {
        let unknown: &[&[u8]] = &[
            &[0x1B, 0x00],
            &[0x1B, 0x1B, 0x40],
            &[0x1D, 0xFF],
            &[0x1D, 0x28, 0x5A, 0x00, 0x00],
            &[0x1D, 0x38, 0x41],
            &[0x1C, 0x41],
            &[0x10, 0x20],
        ];
        for &b in unknown {
            assert_eq!(parse_inner(b), Err(Reject::Unknown), "{b:02x?}");
            assert_eq!(
                Command::parse(b),
                Err(Error::Malformed {
                    what: "escpos unknown command",
                    offset: 1
                })
            );
        }
        let malformed: &[&[u8]] = &[
            &[0x00],
            &[0x07],
            &[0x1B, 0x70, 0x02, 0x10, 0x10], // drawer pin 2 does not exist
            &[0x1B, 0x2A, 0x05, 0x01, 0x00], // ESC * density 5
            &[0x1B, 0x63, 0x32, 0x00],       // ESC c 2
            &[0x1D, 0x56, 0x07],             // cut mode 7
            &[0x1D, 0x6B, 0x20],             // barcode system 32
            &[0x1D, 0x76, 0x31],             // GS v 1
            &[0x1D, 0x76, 0x30, 0x09],       // GS v 0 mode 9
            &[0x1D, 0x76, 0x30, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], // 4 GB raster
            &[0x1D, 0x38, 0x4C, 0x01, 0x00, 0x04, 0x00], // GS 8 L past MAX_PAYLOAD
            &[0x1D, 0x28, 0x6B, 0x01, 0x00], // GS ( k without cn fn
            &[0x10, 0x04, 0x05],             // DLE EOT 5
            &[0x10, 0x14, 0x01, 0x02, 0x01], // pulse pin 2
            &[0x10, 0x14, 0x09],             // DLE DC4 9
        ];
        for &b in malformed {
            assert!(
                matches!(parse_inner(b), Err(Reject::Malformed { .. })),
                "{b:02x?}: {:?}",
                parse_inner(b)
            );
            assert!(matches!(Command::parse(b), Err(Error::Malformed { .. })));
        }
    }

    /// A fixture with per-field comments: QR store data as an e-invoice printer sends it.
    #[test]
    fn qr_store_fixture() {
        let bytes = [
            0x1D, 0x28, 0x6B, // GS ( k
            0x0B, 0x00, // pL pH: 11 bytes follow
            0x31, // cn: QR code
            0x50, // fn: store data
            0x30, // m
            b'h', b't', b't', b'p', b's', b':', b'/', b'/', // data (8 bytes)
            0x0A, // LF: the next command
        ];
        let (cmd, n) = Command::parse(&bytes).unwrap();
        assert_eq!(n, 5 + 11);
        assert_eq!(cmd, Command::QrStore(b"https://"));
    }

    #[test]
    fn raster_fixture_counts_payload_not_header() {
        let bytes = [
            0x1D, 0x76, 0x30, // GS v 0
            0x00, // m: normal density
            0x30, 0x00, // xL xH: 48 bytes per row (384 dots)
            0x20, 0x01, // yL yH: 288 rows
            0xFF, 0xFF, // first payload bytes
        ];
        let (cmd, n) = Command::parse(&bytes).unwrap();
        assert_eq!(n, 8);
        assert_eq!(cmd.payload_len(), 48 * 288);
    }

    #[test]
    fn nul_terminated_limits() {
        // 255 data bytes then NUL: accepted; 256 without NUL: not a barcode.
        let mut ok = vec![0x1D, 0x6B, 0x04];
        ok.extend_from_slice(&[b'7'; 255]);
        ok.push(0);
        assert!(matches!(one(&ok), Command::Barcode { system: 4, data } if data.len() == 255));
        let mut bad = vec![0x1D, 0x6B, 0x04];
        bad.extend_from_slice(&[b'7'; 256]);
        assert!(matches!(parse_inner(&bad), Err(Reject::Malformed { .. })));
        assert!(matches!(
            parse_inner(&bad[..200]),
            Err(Reject::Truncated { need: 201 })
        ));
        // 33 tab stops are one too many.
        let mut tabs = vec![0x1B, 0x44];
        tabs.extend(1..=33u8);
        assert!(matches!(parse_inner(&tabs), Err(Reject::Malformed { .. })));
    }

    #[test]
    fn text_run_stops_at_control_bytes() {
        assert_eq!(
            Command::parse(b"abc\x1b@").unwrap(),
            (Command::Text(b"abc"), 3)
        );
        assert_eq!(
            Command::parse(&[0xC4, 0xE3, 0x0A]).unwrap(),
            (Command::Text(&[0xC4, 0xE3]), 2)
        );
        assert!(matches!(
            Command::parse(&[]),
            Err(Error::Truncated {
                need: 1,
                have: 0,
                ..
            })
        ));
    }

    #[test]
    fn emit_clips_oversized_fields() {
        let long = vec![b'x'; 300];
        let b = Command::Barcode {
            system: 73,
            data: &long,
        }
        .to_bytes();
        assert_eq!(b.len(), 4 + 255);
        assert_eq!(
            one(&b),
            Command::Barcode {
                system: 73,
                data: &long[..255]
            }
        );
        let b = Command::Barcode {
            system: 2,
            data: b"12\x0034",
        }
        .to_bytes();
        assert_eq!(
            one(&b),
            Command::Barcode {
                system: 2,
                data: b"12"
            }
        );
        let big = vec![b'q'; 70_000];
        let b = Command::QrStore(&big).to_bytes();
        assert_eq!(one(&b), Command::QrStore(&big[..65532]));
    }

    proptest! {
        /// Whatever the bytes, parse never panics, never claims more than it has, and a
        /// longer buffer gives the same answer (except Text, which may grow).
        #[test]
        fn parse_is_prefix_stable(bytes in prop::collection::vec(any::<u8>(), 0..80), extra in prop::collection::vec(any::<u8>(), 0..8)) {
            let short = parse_inner(&bytes);
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            let long = parse_inner(&longer);
            match short {
                Ok((Command::Text(t), n)) => {
                    prop_assert_eq!(n, t.len());
                    prop_assert!(n >= 1 && n <= bytes.len());
                    prop_assert!(matches!(long, Ok((Command::Text(_), m)) if m >= n));
                }
                Ok((c, n)) => {
                    prop_assert!(n >= 1 && n <= bytes.len());
                    prop_assert_eq!(long, Ok((c, n)));
                    // Round trip through emit.
                    let again = c.to_bytes();
                    prop_assert_eq!(parse_inner(&again), Ok((c, again.len())));
                }
                Err(Reject::Truncated { need }) => {
                    prop_assert!(need > bytes.len());
                }
                Err(e) => prop_assert_eq!(long, Err(e)),
            }
        }
    }
}
