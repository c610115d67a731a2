//! Receipt text encodings: [`Encoding`] (the OEM code pages, Windows-1252, GB18030, Big5) and
//! the streaming [`TextDecoder`] the receipt decoder feeds text runs through.
//!
//! Single-byte code pages are decoded with the tables in `tables.rs` (`encoding_rs` has no OEM
//! code pages); GB18030 and Big5 go through `encoding_rs`, whose decoders keep a character cut
//! at the end of one run and finish it with the next, so serial reads may split text anywhere.
//! Every byte sequence that is not a character becomes one U+FFFD and is counted.

use encoding_rs::{DecoderResult, EncoderResult};

use super::tables;

/// A text encoding a receipt printer may be set to.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// IBM code page 437, the ESC/POS power-on default of Western printers.
    Cp437,
    /// IBM code page 850 (Multilingual Latin-1).
    Cp850,
    /// IBM code page 858: CP850 with the euro sign at 0xD5.
    Cp858,
    /// IBM code page 866 (Cyrillic).
    Cp866,
    /// Windows-1252 (Epson's `WPC1252`).
    Windows1252,
    /// GB18030 (a superset of GBK and GB2312): mainland Chinese printers.
    Gb18030,
    /// Big5 (as `encoding_rs` and browsers decode it, HKSCS included): Taiwan and Hong Kong.
    Big5,
}

/// Names [`Encoding::from_name`] accepts (lower case) and the encoding each means. The first
/// name of each encoding is the one [`Encoding::name`] returns.
const NAMES: [(&str, Encoding); 17] = [
    ("cp437", Encoding::Cp437),
    ("cp850", Encoding::Cp850),
    ("cp858", Encoding::Cp858),
    ("cp866", Encoding::Cp866),
    ("windows-1252", Encoding::Windows1252),
    ("gb18030", Encoding::Gb18030),
    ("big5", Encoding::Big5),
    ("ibm437", Encoding::Cp437),
    ("pc437", Encoding::Cp437),
    ("pc850", Encoding::Cp850),
    ("pc858", Encoding::Cp858),
    ("pc866", Encoding::Cp866),
    ("wpc1252", Encoding::Windows1252),
    ("cp1252", Encoding::Windows1252),
    ("gbk", Encoding::Gb18030),
    ("gb2312", Encoding::Gb18030),
    ("big5-hkscs", Encoding::Big5),
];

impl Encoding {
    /// Every encoding, single-byte ones first.
    pub const ALL: [Encoding; 7] = [
        Encoding::Cp437,
        Encoding::Cp850,
        Encoding::Cp858,
        Encoding::Cp866,
        Encoding::Windows1252,
        Encoding::Gb18030,
        Encoding::Big5,
    ];

    /// The encoding called `name`, any case: `cp437`, `cp850`, `cp858`, `cp866`,
    /// `windows-1252` (also `wpc1252`, `cp1252`), `gb18030` (also `gbk`, `gb2312`, which it
    /// contains), `big5`; `pcNNN` and `ibm437` are accepted for the code pages.
    pub fn from_name(name: &str) -> Option<Encoding> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|&(_, e)| e)
    }

    /// The canonical name, which [`Encoding::from_name`] reads back.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cp437 => "cp437",
            Encoding::Cp850 => "cp850",
            Encoding::Cp858 => "cp858",
            Encoding::Cp866 => "cp866",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Gb18030 => "gb18030",
            Encoding::Big5 => "big5",
        }
    }

    /// Whether characters may take more than one byte (GB18030, Big5).
    pub fn is_multi_byte(self) -> bool {
        self.multi().is_some()
    }

    /// The upper-half table of a single-byte code page.
    fn table(self) -> Option<&'static [char; 128]> {
        match self {
            Encoding::Cp437 => Some(&tables::CP437),
            Encoding::Cp850 => Some(&tables::CP850),
            Encoding::Cp858 => Some(&tables::CP858),
            Encoding::Cp866 => Some(&tables::CP866),
            Encoding::Windows1252 => Some(&tables::WINDOWS_1252),
            Encoding::Gb18030 | Encoding::Big5 => None,
        }
    }

    /// The `encoding_rs` codec of a multi-byte encoding.
    fn multi(self) -> Option<&'static encoding_rs::Encoding> {
        match self {
            Encoding::Gb18030 => Some(encoding_rs::GB18030),
            Encoding::Big5 => Some(encoding_rs::BIG5),
            _ => None,
        }
    }

    /// Decodes `bytes` completely: the text, and how many byte sequences were not characters
    /// (each became one U+FFFD; a character cut off at the end counts as one). Bytes below 0x80
    /// are ASCII in every encoding, control bytes included.
    pub fn decode(self, bytes: &[u8]) -> (String, usize) {
        let mut d = TextDecoder::new(self);
        let mut s = String::with_capacity(bytes.len());
        let bad = d.feed(bytes, &mut s) + d.flush(&mut s);
        (s, bad)
    }

    /// Encodes `text`, or `None` if a character has no byte sequence in this encoding. ASCII
    /// (control characters included) maps to itself.
    pub fn encode(self, text: &str) -> Option<Vec<u8>> {
        if let Some(table) = self.table() {
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                out.push(encode_single(table, c)?);
            }
            return Some(out);
        }
        let codec = self.multi()?;
        let mut enc = codec.new_encoder();
        let cap = enc.max_buffer_length_from_utf8_without_replacement(text.len())?;
        let mut out = Vec::with_capacity(cap);
        let (res, read) = enc.encode_from_utf8_to_vec_without_replacement(text, &mut out, true);
        match res {
            EncoderResult::InputEmpty if read == text.len() => Some(out),
            _ => None,
        }
    }
}

impl core::fmt::Display for Encoding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The byte of `c` in a single-byte code page. U+FFFD marks unassigned table entries, so it
/// is never encodable.
fn encode_single(table: &[char; 128], c: char) -> Option<u8> {
    if c.is_ascii() {
        return u8::try_from(u32::from(c)).ok();
    }
    if c == char::REPLACEMENT_CHARACTER {
        return None;
    }
    let i = table.iter().position(|&t| t == c)?;
    u8::try_from(i).ok().map(|i| i | 0x80)
}

/// Streaming decoder of text runs in one encoding.
///
/// For multi-byte encodings the `encoding_rs` decoder holds the bytes of a character cut at
/// the end of a run; [`TextDecoder::flush`] ends the text (a command came between) and turns
/// such a partial character into U+FFFD.
pub(crate) struct TextDecoder {
    enc: Encoding,
    multi: Option<encoding_rs::Decoder>,
}

impl core::fmt::Debug for TextDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TextDecoder")
            .field("enc", &self.enc)
            .finish_non_exhaustive()
    }
}

impl TextDecoder {
    /// A decoder for `enc` with nothing pending.
    pub(crate) fn new(enc: Encoding) -> Self {
        TextDecoder {
            enc,
            multi: enc.multi().map(|c| c.new_decoder_without_bom_handling()),
        }
    }

    /// The encoding text is decoded with.
    pub(crate) fn encoding(&self) -> Encoding {
        self.enc
    }

    /// Decodes `bytes` onto `out`; returns how many sequences were undecodable. A multi-byte
    /// character cut at the end of `bytes` is kept for the next call.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut String) -> usize {
        match (&mut self.multi, self.enc.table()) {
            (Some(dec), _) => decode_multi(dec, bytes, false, out),
            (None, Some(table)) => decode_single(table, bytes, out),
            // Every encoding has a table or a codec.
            (None, None) => 0,
        }
    }

    /// Ends the current text: a kept partial character becomes U+FFFD (counted in the return
    /// value, 0 or 1) and the decoder starts afresh.
    pub(crate) fn flush(&mut self, out: &mut String) -> usize {
        let Some(dec) = &mut self.multi else {
            return 0;
        };
        let bad = decode_multi(dec, &[], true, out);
        // A decoder that was told `last` is finished; start a new one.
        *self = TextDecoder::new(self.enc);
        bad
    }

    /// Flushes, then decodes further text with `enc`.
    pub(crate) fn switch(&mut self, enc: Encoding, out: &mut String) -> usize {
        let bad = self.flush(out);
        if enc != self.enc {
            *self = TextDecoder::new(enc);
        }
        bad
    }
}

/// Single-byte decoding through an upper-half table.
fn decode_single(table: &[char; 128], bytes: &[u8], out: &mut String) -> usize {
    let mut bad = 0;
    out.reserve(bytes.len());
    for &b in bytes {
        let c = if b < 0x80 {
            char::from(b)
        } else {
            table
                .get(usize::from(b & 0x7F))
                .copied()
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        if c == char::REPLACEMENT_CHARACTER {
            bad += 1;
        }
        out.push(c);
    }
    bad
}

/// Multi-byte decoding through `encoding_rs`, counting malformed sequences.
fn decode_multi(
    dec: &mut encoding_rs::Decoder,
    mut src: &[u8],
    last: bool,
    out: &mut String,
) -> usize {
    let mut bad = 0;
    loop {
        // The worst case for what is left; on overflow fall back to a generous guess (the
        // loop below grows the buffer again if it is not enough).
        let want = dec
            .max_utf8_buffer_length_without_replacement(src.len())
            .unwrap_or_else(|| src.len().saturating_mul(3))
            .max(4);
        out.reserve(want);
        let (res, read) = dec.decode_to_string_without_replacement(src, out, last);
        src = src.get(read..).unwrap_or(&[]);
        match res {
            DecoderResult::InputEmpty => return bad,
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(_, _) => {
                bad += 1;
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_any_case() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::from_name(e.name()), Some(e));
            assert_eq!(Encoding::from_name(&e.name().to_uppercase()), Some(e));
        }
        assert_eq!(Encoding::from_name("WPC1252"), Some(Encoding::Windows1252));
        assert_eq!(Encoding::from_name("GBK"), Some(Encoding::Gb18030));
        assert_eq!(Encoding::from_name("utf-8"), None);
        assert_eq!(Encoding::from_name(""), None);
    }

    /// Known code points of every table (from the code page charts), table-driven.
    #[test]
    fn known_code_points() {
        let cases: &[(Encoding, u8, char)] = &[
            (Encoding::Cp437, 0x80, 'Ç'),
            (Encoding::Cp437, 0x9B, '¢'),
            (Encoding::Cp437, 0xB0, '░'),
            (Encoding::Cp437, 0xC4, '─'),
            (Encoding::Cp437, 0xE1, 'ß'),
            (Encoding::Cp437, 0xFF, '\u{A0}'),
            (Encoding::Cp850, 0x9B, 'ø'),
            (Encoding::Cp850, 0xD5, 'ı'), // dotless i: the slot CP858 gives the euro
            (Encoding::Cp850, 0xF0, '\u{AD}'),
            (Encoding::Cp858, 0xD5, '€'),
            (Encoding::Cp858, 0x9B, 'ø'),
            (Encoding::Cp866, 0x80, 'А'), // Cyrillic capital A
            (Encoding::Cp866, 0xAF, 'п'),
            (Encoding::Cp866, 0xF0, 'Ё'),
            (Encoding::Cp866, 0xFC, '№'),
            (Encoding::Windows1252, 0x80, '€'),
            (Encoding::Windows1252, 0x99, '™'),
            (Encoding::Windows1252, 0xE9, 'é'),
        ];
        for &(enc, byte, c) in cases {
            assert_eq!(enc.decode(&[byte]), (c.to_string(), 0), "{enc} {byte:#04x}");
            assert_eq!(enc.encode(&c.to_string()), Some(vec![byte]), "{enc} {c}");
        }
    }

    #[test]
    fn cp858_differs_from_cp850_only_at_d5() {
        let diff: Vec<usize> = (0..128)
            .filter(|&i| tables::CP850[i] != tables::CP858[i])
            .collect();
        assert_eq!(diff, vec![0xD5 - 0x80]);
    }

    #[test]
    fn windows_1252_unassigned_bytes_are_undecodable() {
        let (s, bad) = Encoding::Windows1252.decode(&[b'a', 0x81, 0x8D, 0x8F, 0x90, 0x9D, b'b']);
        assert_eq!(s, "a\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}b");
        assert_eq!(bad, 5);
        assert_eq!(Encoding::Windows1252.encode("\u{FFFD}"), None);
    }

    #[test]
    fn single_byte_tables_are_bijective() {
        for e in Encoding::ALL.into_iter().filter(|e| !e.is_multi_byte()) {
            for b in 0x80..=0xFFu8 {
                let (s, bad) = e.decode(&[b]);
                if bad == 0 {
                    assert_eq!(e.encode(&s), Some(vec![b]), "{e} {b:#04x}");
                }
            }
        }
    }

    #[test]
    fn gb18030_fixture() {
        let bytes = [
            0xC4, 0xE3, // 你 (two-byte GBK)
            0xBA, 0xC3, // 好
            0x20, // space
            0x81, 0x30, 0x81, 0x30, // U+0080 (four-byte)
            0x80, // € (single byte in GB18030/CP936)
            0xC4, // lead byte with no trail: undecodable
        ];
        let (s, bad) = Encoding::Gb18030.decode(&bytes);
        assert_eq!(s, "你好 \u{80}€\u{FFFD}");
        assert_eq!(bad, 1);
        assert_eq!(
            Encoding::Gb18030.encode("你好"),
            Some(vec![0xC4, 0xE3, 0xBA, 0xC3])
        );
    }

    #[test]
    fn big5_fixture() {
        let bytes = [
            0xA4, 0xA4, // 中
            0xA4, 0xE5, // 文
            0xFF, // never a lead byte in Big5
        ];
        let (s, bad) = Encoding::Big5.decode(&bytes);
        assert_eq!(s, "中文\u{FFFD}");
        assert_eq!(bad, 1);
        assert_eq!(
            Encoding::Big5.encode("中文"),
            Some(vec![0xA4, 0xA4, 0xA4, 0xE5])
        );
        assert_eq!(Encoding::Big5.encode("€🙂"), None);
    }

    #[test]
    fn lead_byte_then_ascii_keeps_the_ascii() {
        // A lead byte followed by a byte that cannot trail it (below 0x30): the lead is
        // undecodable, the ASCII survives. (0x40–0x7E would be a valid GBK trail.)
        assert_eq!(
            Encoding::Gb18030.decode(&[0xC4, b' ', b'A']),
            ("\u{FFFD} A".to_string(), 1)
        );
        assert_eq!(
            Encoding::Gb18030.decode(&[0xC4, b'A']),
            ("腁".to_string(), 0)
        );
    }

    #[test]
    fn streaming_keeps_split_characters() {
        let mut d = TextDecoder::new(Encoding::Gb18030);
        let mut s = String::new();
        assert_eq!(d.feed(&[0xC4], &mut s), 0);
        assert_eq!(s, "");
        assert_eq!(d.feed(&[0xE3, 0x81, 0x30], &mut s), 0);
        assert_eq!(d.feed(&[0x81, 0x30], &mut s), 0);
        assert_eq!(s, "你\u{80}");
        // A lead byte left when the text ends is one undecodable character.
        assert_eq!(d.feed(&[0xBA], &mut s), 0);
        assert_eq!(d.flush(&mut s), 1);
        assert_eq!(s, "你\u{80}\u{FFFD}");
        // The decoder is usable after a flush.
        assert_eq!(d.feed(&[0xBA, 0xC3], &mut s), 0);
        assert_eq!(s, "你\u{80}\u{FFFD}好");
    }

    #[test]
    fn switch_flushes_then_changes() {
        let mut d = TextDecoder::new(Encoding::Big5);
        let mut s = String::new();
        d.feed(&[0xA4], &mut s);
        assert_eq!(d.switch(Encoding::Cp437, &mut s), 1);
        assert_eq!(d.encoding(), Encoding::Cp437);
        d.feed(&[0xA4], &mut s);
        assert_eq!(s, "\u{FFFD}ñ");
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(text in "[ -~äöüß€中文你好Ж№░]{0,40}") {
            for e in Encoding::ALL {
                if let Some(bytes) = e.encode(&text) {
                    prop_assert_eq!(e.decode(&bytes), (text.clone(), 0));
                }
            }
            // GB18030 encodes all of Unicode.
            prop_assert!(Encoding::Gb18030.encode(&text).is_some());
        }

        #[test]
        fn decode_never_panics_and_splits_freely(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            cut in 0usize..64,
        ) {
            for e in Encoding::ALL {
                let whole = e.decode(&bytes);
                let cut = cut.min(bytes.len());
                let mut d = TextDecoder::new(e);
                let mut s = String::new();
                let bad = d.feed(&bytes[..cut], &mut s) + d.feed(&bytes[cut..], &mut s)
                    + d.flush(&mut s);
                prop_assert_eq!((s, bad), whole);
            }
        }
    }
}
