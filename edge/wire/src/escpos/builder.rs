//! [`ReceiptBuilder`]: writes ESC/POS byte streams the way POS software does, for tests, fuzz
//! seeds and the printer simulator.
//!
//! The builder tracks the text encoding the printer would be in (code table, double-byte mode)
//! so that [`ReceiptBuilder::text`] encodes like the receipt decoder will decode; it never
//! panics and refuses (with an error, writing nothing) text it cannot encode.

use super::command::{ctl, Command};
use super::receipt::DecoderConfig;
use super::text::Encoding;
use crate::error::{Error, Result};

/// Builds an ESC/POS byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBuilder {
    out: Vec<u8>,
    /// Single-byte encoding after `ESC @`.
    base: Encoding,
    /// Current single-byte encoding.
    single: Encoding,
    /// Encoding of double-byte mode; `None`: `FS &` has no effect.
    double_enc: Option<Encoding>,
    /// Double-byte mode is on after `ESC @`.
    starts_double: bool,
    /// Double-byte mode is on.
    double: bool,
    /// `ESC t n` → encoding, as the decoder is configured.
    code_tables: Vec<(u8, Encoding)>,
}

impl ReceiptBuilder {
    /// A builder writing text in `encoding`, with double-byte mode encoded as GB18030 and no
    /// code-table mapping ([`ReceiptBuilder::code_table`] then leaves the encoding alone).
    pub fn new(encoding: Encoding) -> Self {
        ReceiptBuilder {
            out: Vec::new(),
            base: encoding,
            single: encoding,
            double_enc: Some(Encoding::Gb18030),
            starts_double: false,
            double: false,
            code_tables: Vec::new(),
        }
    }

    /// A builder whose idea of the printer state matches a decoder configured with `cfg`
    /// (encodings, code tables, double-byte mode at start).
    pub fn for_config(cfg: &DecoderConfig) -> Self {
        let starts_double = cfg.starts_double_byte && cfg.double_byte.is_some();
        ReceiptBuilder {
            out: Vec::new(),
            base: cfg.encoding,
            single: cfg.encoding,
            double_enc: cfg.double_byte,
            starts_double,
            double: starts_double,
            code_tables: cfg.code_tables.clone(),
        }
    }

    /// The encoding [`ReceiptBuilder::text`] uses now.
    pub fn encoding(&self) -> Encoding {
        match (self.double, self.double_enc) {
            (true, Some(e)) => e,
            _ => self.single,
        }
    }

    /// Changes the single-byte encoding without writing anything (pair it with a
    /// [`ReceiptBuilder::raw`] code-table command the builder has no mapping for).
    pub fn set_encoding(&mut self, encoding: Encoding) -> &mut Self {
        self.single = encoding;
        self
    }

    /// Appends one command.
    pub fn command(&mut self, cmd: &Command<'_>) -> &mut Self {
        cmd.emit(&mut self.out);
        self
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// `ESC @`: initialize (the encoding and double-byte mode return to their start state).
    pub fn init(&mut self) -> &mut Self {
        self.single = self.base;
        self.double = self.starts_double;
        self.command(&Command::Init)
    }

    /// `ESC t n`: select code table `n`; the text encoding follows if the builder knows `n`.
    pub fn code_table(&mut self, n: u8) -> &mut Self {
        if let Some(&(_, e)) = self.code_tables.iter().find(|&&(t, _)| t == n) {
            self.single = e;
        }
        self.command(&Command::SelectCodeTable(n))
    }

    /// `FS &` / `FS .`: enter or leave double-byte mode.
    pub fn double_byte(&mut self, on: bool) -> &mut Self {
        if on {
            self.double = self.double_enc.is_some();
            self.command(&Command::EnterDoubleByte)
        } else {
            self.double = false;
            self.command(&Command::LeaveDoubleByte)
        }
    }

    /// Text in the current encoding; `\n` becomes LF and `\t` HT. Fails, writing nothing, on
    /// a character the encoding lacks or another control character (the error's offset is the
    /// byte index of the character in `text`).
    pub fn text(&mut self, text: &str) -> Result<&mut Self> {
        let enc = self.encoding();
        if let Some((i, _)) = text
            .char_indices()
            .find(|&(_, c)| c.is_ascii_control() && c != '\n' && c != '\t')
        {
            return Err(Error::malformed("control character in receipt text", i));
        }
        match enc.encode(text) {
            Some(bytes) => {
                self.out.extend_from_slice(&bytes);
                Ok(self)
            }
            None => {
                let i = text
                    .char_indices()
                    .find(|&(_, c)| enc.encode(c.encode_utf8(&mut [0; 4])).is_none())
                    .map_or(0, |(i, _)| i);
                Err(Error::malformed("character not in the printer encoding", i))
            }
        }
    }

    /// [`ReceiptBuilder::text`] followed by LF.
    pub fn line(&mut self, text: &str) -> Result<&mut Self> {
        self.text(text)?;
        Ok(self.command(&Command::LineFeed))
    }

    /// `ESC E n`: bold on or off.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.raw(&[ctl::ESC, b'E', u8::from(on)])
    }

    /// `ESC - n`: underline 0 (off), 1 or 2 dots.
    pub fn underline(&mut self, n: u8) -> &mut Self {
        self.raw(&[ctl::ESC, b'-', n])
    }

    /// `ESC a n`: 0 left, 1 centre, 2 right.
    pub fn align(&mut self, n: u8) -> &mut Self {
        self.raw(&[ctl::ESC, b'a', n])
    }

    /// `GS ! n`: character width and height multipliers, each clamped to 1–8.
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        self.raw(&[ctl::GS, b'!', w << 4 | h])
    }

    /// `ESC d n`: print and feed `n` lines.
    pub fn feed(&mut self, n: u8) -> &mut Self {
        self.command(&Command::FeedLines(n))
    }

    /// A native QR code as python-escpos and escpos-php send it: model 2, module size 3,
    /// error correction L, store the data, print. Fails on data over 65532 bytes.
    pub fn qr(&mut self, data: &str) -> Result<&mut Self> {
        let data = data.as_bytes();
        if data.len() > usize::from(u16::MAX) - 3 {
            return Err(Error::malformed("QR data longer than 65532 bytes", 0));
        }
        let qr = |fn_: u8, params: &'static [u8]| Command::Symbol2d {
            cn: 0x31,
            fn_,
            params,
        };
        self.command(&qr(0x41, &[0x32, 0x00]))
            .command(&qr(0x43, &[0x03]))
            .command(&qr(0x45, &[0x30]))
            .command(&Command::QrStore(data))
            .command(&qr(0x51, &[0x30]));
        Ok(self)
    }

    /// `GS k m …`: a barcode of system `m` (0–6: NUL-terminated data; 65–78: length byte).
    /// Fails on another system, a NUL in NUL-terminated data or more than 255 bytes.
    pub fn barcode(&mut self, system: u8, data: &str) -> Result<&mut Self> {
        let data = data.as_bytes();
        match system {
            0..=6 if data.contains(&ctl::NUL) => Err(Error::malformed("NUL in barcode data", 0)),
            0..=6 | 65..=78 if data.len() > 255 => {
                Err(Error::malformed("barcode data longer than 255 bytes", 0))
            }
            0..=6 | 65..=78 => Ok(self.command(&Command::Barcode { system, data })),
            _ => Err(Error::malformed("barcode system", 0)),
        }
    }

    /// `GS v 0`: a blank raster image of `width_bytes` × `height` bytes (all zero).
    pub fn raster(&mut self, width_bytes: u16, height: u16) -> &mut Self {
        let [xl, xh] = width_bytes.to_le_bytes();
        let [yl, yh] = height.to_le_bytes();
        self.raw(&[ctl::GS, b'v', b'0', 0, xl, xh, yl, yh]);
        let n = usize::from(width_bytes) * usize::from(height);
        self.out.resize(self.out.len().saturating_add(n), 0);
        self
    }

    /// `ESC p 0 50 50`: kick the drawer on pin 2 (python-escpos `CD_KICK_2`).
    pub fn drawer_kick(&mut self) -> &mut Self {
        self.command(&Command::DrawerKick {
            pin: 0,
            on: 50,
            off: 50,
        })
    }

    /// `GS V 0` / `GS V 1`: full or partial cut.
    pub fn cut(&mut self, partial: bool) -> &mut Self {
        self.command(&Command::Cut {
            partial,
            feed: None,
        })
    }

    /// `GS V 65 n` / `GS V 66 n`: feed `n` then cut (escpos-php's default cut).
    pub fn feed_cut(&mut self, partial: bool, n: u8) -> &mut Self {
        self.command(&Command::Cut {
            partial,
            feed: Some(n),
        })
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.out
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_receipt_byte_for_byte() {
        let mut b = ReceiptBuilder::new(Encoding::Cp858);
        b.init().align(1).bold(true);
        b.line("Café €1").unwrap();
        b.bold(false).size(2, 1).cut(true);
        let expected = [
            0x1B, 0x40, // ESC @
            0x1B, 0x61, 0x01, // ESC a 1: centre
            0x1B, 0x45, 0x01, // ESC E 1: bold
            b'C', b'a', b'f', 0x82, // "Caf" + é in CP858
            b' ', 0xD5, b'1', // " €1": the euro is 0xD5 in CP858
            0x0A, // LF
            0x1B, 0x45, 0x00, // ESC E 0
            0x1D, 0x21, 0x10, // GS ! 0x10: double width
            0x1D, 0x56, 0x01, // GS V 1: partial cut
        ];
        assert_eq!(b.as_bytes(), expected);
    }

    #[test]
    fn qr_sequence_matches_python_escpos() {
        let mut b = ReceiptBuilder::new(Encoding::Cp437);
        b.qr("ab").unwrap();
        let expected = [
            0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00, // model 2
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 0x03, // module size 3
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x30, // error correction L
            0x1D, 0x28, 0x6B, 0x05, 0x00, 0x31, 0x50, 0x30, b'a', b'b', // store "ab"
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30, // print
        ];
        assert_eq!(b.into_bytes(), expected);
    }

    #[test]
    fn refuses_what_it_cannot_encode_and_writes_nothing() {
        let mut b = ReceiptBuilder::new(Encoding::Cp437);
        assert_eq!(
            b.text("ok €").err(),
            Some(Error::Malformed {
                what: "character not in the printer encoding",
                offset: 3
            })
        );
        assert!(b.text("a\u{1b}@").is_err());
        assert!(b.as_bytes().is_empty());
        // In double-byte mode the same text encodes as GB18030.
        b.double_byte(true);
        assert_eq!(b.encoding(), Encoding::Gb18030);
        b.text("€").unwrap();
        // GB18030 decodes 0x80 as the euro too, but encodes it as A2 E3.
        assert_eq!(b.as_bytes(), [0x1C, 0x26, 0xA2, 0xE3]);
    }

    #[test]
    fn tracks_code_tables_and_init() {
        let mut cfg = DecoderConfig::new(Encoding::Cp437);
        cfg.code_tables = vec![(19, Encoding::Cp858)];
        cfg.double_byte = Some(Encoding::Big5);
        cfg.starts_double_byte = true;
        let mut b = ReceiptBuilder::for_config(&cfg);
        assert_eq!(b.encoding(), Encoding::Big5);
        b.double_byte(false).code_table(19);
        assert_eq!(b.encoding(), Encoding::Cp858);
        b.code_table(3); // unknown: unchanged, as the decoder does
        assert_eq!(b.encoding(), Encoding::Cp858);
        b.init();
        assert_eq!(b.encoding(), Encoding::Big5);
    }

    #[test]
    fn barcode_and_raster() {
        let mut b = ReceiptBuilder::new(Encoding::Cp437);
        b.barcode(73, "{B12").unwrap().barcode(4, "AB").unwrap();
        assert!(b.barcode(7, "1").is_err());
        assert!(b.barcode(2, "1\u{0}").is_err());
        assert!(b.barcode(73, &"9".repeat(256)).is_err());
        b.raster(2, 3).drawer_kick().feed_cut(false, 3);
        let expected = [
            0x1D, 0x6B, 0x49, 0x04, b'{', b'B', b'1', b'2', // CODE128, length form
            0x1D, 0x6B, 0x04, b'A', b'B', 0x00, // CODE39, NUL form
            0x1D, 0x76, 0x30, 0x00, 0x02, 0x00, 0x03, 0x00, // GS v 0: 2 × 3 bytes
            0, 0, 0, 0, 0, 0, // the image
            0x1B, 0x70, 0x00, 0x32, 0x32, // ESC p 0 50 50
            0x1D, 0x56, 0x41, 0x03, // GS V 65 3
        ];
        assert_eq!(b.as_bytes(), expected);
    }
}
