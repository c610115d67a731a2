//! [`ReceiptDecoder`]: ESC/POS bytes in (chunks of any size, split anywhere), [`RawReceipt`]s
//! out, with their exact stream offsets so that a restart can resume after the last one.
//!
//! The stream is cut into consecutive segments; each ends at a boundary (a cut, an `ESC @`
//! after text, optionally a drawer kick, an idle gap, the size limit, the end of input) and
//! becomes a receipt if it holds any text, QR code or barcode. Segments tile the stream, so a
//! receipt's `start_offset` is the previous segment's `end_offset`.
//!
//! Memory is bounded: a partial command at a chunk end is buffered only up to what parsing it
//! needs (an image is parsed up to its header, then its payload is skipped as it streams by),
//! and a receipt ends once it took `max_receipt_bytes` bytes (image payloads not counted).

use super::command::{parse_inner, Command, Reject};
use super::text::{Encoding, TextDecoder};

/// Default [`DecoderConfig::max_receipt_bytes`]: receipts are a few KiB.
pub const DEFAULT_MAX_RECEIPT_BYTES: usize = 64 * 1024;

/// The `ESC t n` tables of Epson TM printers for the encodings of [`Encoding`]. Other makes
/// number them differently, which is why [`DecoderConfig::code_tables`] is configuration.
pub const EPSON_CODE_TABLES: [(u8, Encoding); 5] = [
    (0, Encoding::Cp437),
    (2, Encoding::Cp850),
    (16, Encoding::Windows1252),
    (17, Encoding::Cp866),
    (19, Encoding::Cp858),
];

/// How a printer's stream is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Text encoding at start and after `ESC @`.
    pub encoding: Encoding,
    /// `ESC t n` → encoding; an unmapped `n` keeps the current encoding and is counted.
    pub code_tables: Vec<(u8, Encoding)>,
    /// Encoding between `FS &` and `FS .` (GB18030 or Big5); `None`: both are ignored.
    pub double_byte: Option<Encoding>,
    /// The printer is in double-byte mode at start and after `ESC @`.
    pub starts_double_byte: bool,
    /// `ESC @` ends a receipt that already has text.
    pub boundary_on_init: bool,
    /// A drawer kick ends a receipt that has text.
    pub boundary_on_drawer_kick: bool,
    /// A receipt reaching this many bytes (image payloads not counted) is ended with
    /// [`Boundary::Oversize`]. 0 acts as 1.
    pub max_receipt_bytes: usize,
}

impl DecoderConfig {
    /// Text in `encoding`, no code tables, no double-byte mode, `ESC @` ends a receipt, a
    /// drawer kick does not, [`DEFAULT_MAX_RECEIPT_BYTES`].
    pub fn new(encoding: Encoding) -> Self {
        DecoderConfig {
            encoding,
            code_tables: Vec::new(),
            double_byte: None,
            starts_double_byte: false,
            boundary_on_init: true,
            boundary_on_drawer_kick: false,
            max_receipt_bytes: DEFAULT_MAX_RECEIPT_BYTES,
        }
    }

    /// A Chinese-market printer: CP437 single-byte text, `double` (GB18030 or Big5) between
    /// `FS &` and `FS .`, and double-byte mode on at start (most of them power up in it).
    pub fn chinese(double: Encoding) -> Self {
        DecoderConfig {
            double_byte: Some(double),
            starts_double_byte: true,
            ..DecoderConfig::new(Encoding::Cp437)
        }
    }

    /// The encoding `ESC t n` selects, if configured (the first entry for `n` wins).
    pub fn code_table(&self, n: u8) -> Option<Encoding> {
        self.code_tables
            .iter()
            .find(|&&(t, _)| t == n)
            .map(|&(_, e)| e)
    }
}

/// What ended a receipt.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// A paper cut (`GS V`, `ESC i`, `ESC m`); the receipt includes it.
    Cut,
    /// An `ESC @` after text; the receipt ends just before it (it starts the next one).
    Init,
    /// A drawer kick (`ESC p`, `DLE DC4 1`), with
    /// [`DecoderConfig::boundary_on_drawer_kick`]; the receipt includes it.
    DrawerKick,
    /// Nothing arrived for the idle gap ([`ReceiptDecoder::idle`]).
    Idle,
    /// The receipt reached [`DecoderConfig::max_receipt_bytes`].
    Oversize,
    /// The input ended ([`ReceiptDecoder::finish`]).
    End,
}

/// What went wrong while decoding one receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptIssues {
    /// Bytes that are neither text nor part of a command (stray control bytes, malformed
    /// commands, a partial command at the end of input).
    pub garbage_bytes: u32,
    /// Prefix bytes (ESC, GS, FS, DLE) followed by a command byte this decoder does not know.
    pub unknown_commands: u32,
    /// Byte sequences that are not characters of the encoding (each one U+FFFD in the text).
    pub undecodable: u32,
    /// `ESC t n` with an `n` missing from [`DecoderConfig::code_tables`].
    pub unmapped_code_tables: u32,
    /// Image payload bytes skipped.
    pub skipped_payload_bytes: u64,
}

/// One receipt as printed: its place in the stream and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReceipt {
    /// Stream offset of the receipt's first byte.
    pub start_offset: u64,
    /// Stream offset just after its last byte (after the boundary command, except for
    /// [`Boundary::Init`]).
    pub end_offset: u64,
    /// Arrival time (as passed to [`ReceiptDecoder::push`]) of its first byte.
    pub first_ms: i64,
    /// Arrival time of its last byte.
    pub last_ms: i64,
    /// Text lines: LF ends a line, CR is ignored, HT becomes `\t`, trailing whitespace is
    /// trimmed, empty lines are kept; text left without LF at the end is a last line.
    pub lines: Vec<String>,
    /// QR code data (`GS ( k` store), lossy UTF-8.
    pub qr: Vec<String>,
    /// Barcode data (`GS k`), lossy UTF-8, as sent (CODE128 keeps its `{A`/`{B`/`{C` prefix).
    pub barcodes: Vec<String>,
    /// What ended it.
    pub boundary: Boundary,
    /// Decoding problems inside it.
    pub issues: ReceiptIssues,
}

impl RawReceipt {
    /// The lines joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Running totals of a [`ReceiptDecoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Receipts handed out.
    pub receipts: u64,
    /// Segments that ended without text and were not handed out.
    pub empty_segments: u64,
    /// Of the receipts handed out, those ended by [`Boundary::Oversize`].
    pub oversize_receipts: u64,
    /// Bytes pushed.
    pub bytes: u64,
    /// See [`ReceiptIssues::garbage_bytes`].
    pub garbage_bytes: u64,
    /// See [`ReceiptIssues::unknown_commands`].
    pub unknown_commands: u64,
    /// See [`ReceiptIssues::undecodable`].
    pub undecodable: u64,
    /// See [`ReceiptIssues::unmapped_code_tables`].
    pub unmapped_code_tables: u64,
    /// See [`ReceiptIssues::skipped_payload_bytes`].
    pub skipped_payload_bytes: u64,
}

/// The receipt being decoded.
#[derive(Debug)]
struct Segment {
    start: u64,
    first_ms: Option<i64>,
    last_ms: i64,
    /// Bytes taken, image payloads excluded (for the size limit).
    bytes: usize,
    lines: Vec<String>,
    /// The line being printed (no LF yet).
    line: String,
    qr: Vec<String>,
    barcodes: Vec<String>,
    issues: ReceiptIssues,
    /// Holds non-whitespace text, a QR code or a barcode.
    content: bool,
}

impl Segment {
    fn new(start: u64) -> Self {
        Segment {
            start,
            first_ms: None,
            last_ms: 0,
            bytes: 0,
            lines: Vec::new(),
            line: String::new(),
            qr: Vec::new(),
            barcodes: Vec::new(),
            issues: ReceiptIssues::default(),
            content: false,
        }
    }
}

/// What [`ReceiptDecoder::step`] did.
enum Step {
    /// Took this many bytes (at least 1).
    Took(usize),
    /// The command needs at least `need` bytes from its start.
    Truncated { need: usize },
}

/// `n` as a u32 count, saturating.
fn count32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `n` as a u64 count (usize is at most 64 bits on supported targets).
fn count64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Streaming decoder: bytes in (in chunks of any size, split anywhere), receipts out.
///
/// Feeding a stream in any chunking gives the same receipts as feeding it whole (arrival times
/// aside). Nothing here reads a clock: times arrive with the bytes.
#[derive(Debug)]
pub struct ReceiptDecoder {
    cfg: DecoderConfig,
    /// Offset the decoder started at.
    origin: u64,
    /// Offset after the last byte pushed.
    fed: u64,
    /// Offset after the last byte taken (by a command, as garbage or skipped payload).
    pos: u64,
    /// Offset after the last segment closed.
    committed: u64,
    /// The start of a command cut by a chunk end; its first byte is at `pos`.
    pending: Vec<u8>,
    /// Arrival time of the first pending byte.
    pending_ms: i64,
    /// Image payload bytes still to skip.
    skip: usize,
    /// Arrival time of the last push.
    last_arrival_ms: Option<i64>,
    /// Current single-byte encoding.
    single: Encoding,
    /// In double-byte mode (only ever set with `cfg.double_byte`).
    double: bool,
    text: TextDecoder,
    seg: Segment,
    stats: DecoderStats,
}

impl ReceiptDecoder {
    /// A decoder at stream offset 0.
    pub fn new(cfg: DecoderConfig) -> Self {
        Self::with_offset(cfg, 0)
    }

    /// A decoder whose stream offsets start at `offset` (resuming after a checkpoint, in the
    /// state the printer has after `ESC @`).
    pub fn with_offset(cfg: DecoderConfig, offset: u64) -> Self {
        let double = cfg.starts_double_byte && cfg.double_byte.is_some();
        let single = cfg.encoding;
        let active = match (double, cfg.double_byte) {
            (true, Some(e)) => e,
            _ => single,
        };
        ReceiptDecoder {
            cfg,
            origin: offset,
            fed: offset,
            pos: offset,
            committed: offset,
            pending: Vec::new(),
            pending_ms: 0,
            skip: 0,
            last_arrival_ms: None,
            single,
            double,
            text: TextDecoder::new(active),
            seg: Segment::new(offset),
            stats: DecoderStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// The encoding text is decoded with now.
    pub fn encoding(&self) -> Encoding {
        self.text.encoding()
    }

    /// Feeds a chunk that arrived at `at_ms`; completed receipts are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], at_ms: i64, out: &mut Vec<RawReceipt>) {
        if bytes.is_empty() {
            return;
        }
        self.fed = self.fed.saturating_add(count64(bytes.len()));
        self.last_arrival_ms = Some(at_ms);
        let mut input = bytes;
        loop {
            if self.skip > 0 {
                // Payload bytes can only be buffered if an image header completed inside
                // the pending buffer; skip those first, then stream the rest.
                let n = if self.pending.is_empty() {
                    let n = self.skip.min(input.len());
                    input = input.get(n..).unwrap_or(&[]);
                    n
                } else {
                    let n = self.skip.min(self.pending.len());
                    self.pending.drain(..n);
                    n
                };
                if n == 0 {
                    break;
                }
                self.skipped(n, at_ms);
                continue;
            }
            if !self.pending.is_empty() {
                let mut pend = core::mem::take(&mut self.pending);
                match self.step(&pend, self.pending_ms, at_ms, out) {
                    Step::Took(n) => {
                        pend.drain(..n.min(pend.len()));
                    }
                    Step::Truncated { need } => {
                        if input.is_empty() {
                            self.pending = pend;
                            break;
                        }
                        // Top up with just what the command asks for, so that the buffer
                        // never holds more than one command's header.
                        let want = need.saturating_sub(pend.len()).clamp(1, input.len());
                        pend.extend_from_slice(input.get(..want).unwrap_or(&[]));
                        input = input.get(want..).unwrap_or(&[]);
                    }
                }
                self.pending = pend;
                continue;
            }
            if input.is_empty() {
                break;
            }
            match self.step(input, at_ms, at_ms, out) {
                Step::Took(n) => input = input.get(n..).unwrap_or(&[]),
                Step::Truncated { .. } => {
                    self.pending.extend_from_slice(input);
                    self.pending_ms = at_ms;
                    input = &[];
                }
            }
        }
    }

    /// Ends the current receipt ([`Boundary::Idle`]) if it has content and nothing arrived
    /// for `gap_ms` before `now_ms`. A command cut by the gap stays buffered for the next
    /// receipt.
    pub fn idle(&mut self, now_ms: i64, gap_ms: i64) -> Option<RawReceipt> {
        let last = self.last_arrival_ms?;
        if !self.seg.content || now_ms.saturating_sub(last) < gap_ms {
            return None;
        }
        let r = self.close(Boundary::Idle, self.pos);
        if !self.pending.is_empty() {
            self.seg.first_ms = Some(self.pending_ms);
        }
        r
    }

    /// End of input: the pending receipt ([`Boundary::End`]) if it has any text; a partial
    /// command at the end counts as garbage. The decoder then starts afresh (state as after
    /// `ESC @`) at the same offset.
    pub fn finish(&mut self) -> Option<RawReceipt> {
        if !self.pending.is_empty() {
            let n = self.pending.len();
            self.pending.clear();
            self.flush_text();
            self.touch(self.pending_ms);
            self.garbage(n);
            let at = self.last_arrival_ms.unwrap_or(self.pending_ms);
            self.advance(n, at);
        }
        // A payload cut by the end of input: its missing bytes never come.
        self.skip = 0;
        let r = self.close(Boundary::End, self.pos);
        self.reset_modes();
        r
    }

    /// Offset just after the last receipt handed out, or after a later segment that ended
    /// without text (where a restart should resume).
    pub fn committed_offset(&self) -> u64 {
        self.committed
    }

    /// Offset after the last byte pushed (the receipt in progress and a buffered partial
    /// command included).
    pub fn offset(&self) -> u64 {
        self.fed
    }

    /// Running totals.
    pub fn stats(&self) -> DecoderStats {
        DecoderStats {
            bytes: self.fed.saturating_sub(self.origin),
            ..self.stats
        }
    }

    /// Handles the command (or garbage byte) at the start of `buf`. Its first byte arrived
    /// at `first_ms`, its last at `at_ms`.
    fn step(&mut self, buf: &[u8], first_ms: i64, at_ms: i64, out: &mut Vec<RawReceipt>) -> Step {
        match parse_inner(buf) {
            Ok((cmd, n)) => Step::Took(self.apply(cmd, n, first_ms, at_ms, out)),
            Err(Reject::Truncated { need }) => Step::Truncated { need },
            Err(reject) => {
                self.flush_text();
                self.touch(first_ms);
                if reject == Reject::Unknown {
                    self.seg.issues.unknown_commands =
                        self.seg.issues.unknown_commands.saturating_add(1);
                    self.stats.unknown_commands = self.stats.unknown_commands.saturating_add(1);
                } else {
                    self.garbage(1);
                }
                // Only the first byte goes: what follows may be a command or text.
                self.advance(1, at_ms);
                self.check_size(out);
                Step::Took(1)
            }
        }
    }

    /// Applies a parsed command of `n` bytes; returns the bytes taken (less than `n` only
    /// for text cut by the size limit).
    fn apply(
        &mut self,
        cmd: Command<'_>,
        n: usize,
        first_ms: i64,
        at_ms: i64,
        out: &mut Vec<RawReceipt>,
    ) -> usize {
        if let Command::Text(bytes) = cmd {
            self.touch(first_ms);
            // Text is taken byte-exactly up to the limit, so the split does not depend on how
            // the input was chunked.
            let room = self.max_bytes().saturating_sub(self.seg.bytes).max(1);
            let take = bytes.get(..room).unwrap_or(bytes);
            let before = self.seg.line.len();
            let bad = self.text.feed(take, &mut self.seg.line);
            self.undecodable(bad);
            self.note_text(before);
            self.advance(take.len(), at_ms);
            self.check_size(out);
            return take.len();
        }
        // Any command ends a text run: a character cut by it is undecodable.
        self.flush_text();
        if cmd == Command::Init {
            if self.cfg.boundary_on_init && self.seg.content {
                let end = self.pos;
                if let Some(r) = self.close(Boundary::Init, end) {
                    out.push(r);
                }
            }
            self.touch(first_ms);
            self.advance(n, at_ms);
            self.reset_modes();
            self.check_size(out);
            return n;
        }
        self.touch(first_ms);
        self.advance(n, at_ms);
        let mut boundary = None;
        match cmd {
            Command::LineFeed => self.end_line(),
            Command::Tab => self.seg.line.push('\t'),
            Command::FormFeed
            | Command::FeedDots(_)
            | Command::ReverseFeed(_)
            | Command::FeedLines(0) => {
                // The buffer is printed: text that follows starts a new line.
                if !self.seg.line.is_empty() {
                    self.end_line();
                }
            }
            Command::FeedLines(k) => {
                for _ in 0..k {
                    self.end_line();
                }
            }
            Command::Cut { .. } | Command::LegacyCut { .. } => boundary = Some(Boundary::Cut),
            Command::DrawerKick { .. } | Command::Pulse { .. } => {
                if self.cfg.boundary_on_drawer_kick && self.seg.content {
                    boundary = Some(Boundary::DrawerKick);
                }
            }
            Command::SelectCodeTable(t) => match self.cfg.code_table(t) {
                Some(e) => {
                    self.single = e;
                    if !self.double {
                        self.switch_text(e);
                    }
                }
                None => {
                    self.seg.issues.unmapped_code_tables =
                        self.seg.issues.unmapped_code_tables.saturating_add(1);
                    self.stats.unmapped_code_tables =
                        self.stats.unmapped_code_tables.saturating_add(1);
                }
            },
            Command::EnterDoubleByte => {
                if let Some(e) = self.cfg.double_byte {
                    self.double = true;
                    self.switch_text(e);
                }
            }
            Command::LeaveDoubleByte => {
                if self.double {
                    self.double = false;
                    self.switch_text(self.single);
                }
            }
            Command::QrStore(data) => {
                self.seg.content |= !data.is_empty();
                self.seg.qr.push(String::from_utf8_lossy(data).into_owned());
            }
            Command::Barcode { data, .. } => {
                self.seg.content |= !data.is_empty();
                self.seg
                    .barcodes
                    .push(String::from_utf8_lossy(data).into_owned());
            }
            Command::Image { bytes, .. } => {
                self.skip = bytes;
                self.seg.issues.skipped_payload_bytes = self
                    .seg
                    .issues
                    .skipped_payload_bytes
                    .saturating_add(count64(bytes));
                self.stats.skipped_payload_bytes = self
                    .stats
                    .skipped_payload_bytes
                    .saturating_add(count64(bytes));
            }
            Command::Text(_)
            | Command::Init
            | Command::CarriageReturn
            | Command::Cancel
            | Command::Symbol2d { .. }
            | Command::Setting { .. } => {}
        }
        match boundary {
            Some(b) => {
                if let Some(r) = self.close(b, self.pos) {
                    out.push(r);
                }
            }
            None => self.check_size(out),
        }
        n
    }

    fn max_bytes(&self) -> usize {
        self.cfg.max_receipt_bytes.max(1)
    }

    /// The segment's first byte arrived at `ms`, if it had none yet.
    fn touch(&mut self, ms: i64) {
        if self.seg.first_ms.is_none() {
            self.seg.first_ms = Some(ms);
        }
    }

    /// Takes `n` bytes into the segment.
    fn advance(&mut self, n: usize, at_ms: i64) {
        self.pos = self.pos.saturating_add(count64(n));
        self.seg.bytes = self.seg.bytes.saturating_add(n);
        self.seg.last_ms = at_ms;
    }

    /// Skips `n` payload bytes (not counted against the size limit).
    fn skipped(&mut self, n: usize, at_ms: i64) {
        self.touch(at_ms);
        self.skip = self.skip.saturating_sub(n);
        self.pos = self.pos.saturating_add(count64(n));
        self.seg.last_ms = at_ms;
    }

    fn garbage(&mut self, n: usize) {
        self.seg.issues.garbage_bytes = self.seg.issues.garbage_bytes.saturating_add(count32(n));
        self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(count64(n));
    }

    fn undecodable(&mut self, n: usize) {
        self.seg.issues.undecodable = self.seg.issues.undecodable.saturating_add(count32(n));
        self.stats.undecodable = self.stats.undecodable.saturating_add(count64(n));
    }

    /// Marks the segment as having content if the line grew non-whitespace past `before`.
    fn note_text(&mut self, before: usize) {
        if !self.seg.content {
            let added = self.seg.line.get(before..).unwrap_or("");
            self.seg.content = added.chars().any(|c| !c.is_whitespace());
        }
    }

    /// Ends the text run: a partial multi-byte character becomes U+FFFD.
    fn flush_text(&mut self) {
        let before = self.seg.line.len();
        let bad = self.text.flush(&mut self.seg.line);
        if bad > 0 {
            self.undecodable(bad);
            self.note_text(before);
        }
    }

    /// Decodes further text with `enc` (the run was flushed already).
    fn switch_text(&mut self, enc: Encoding) {
        let bad = self.text.switch(enc, &mut self.seg.line);
        self.undecodable(bad);
    }

    /// Encodings as after `ESC @`.
    fn reset_modes(&mut self) {
        self.single = self.cfg.encoding;
        self.double = self.cfg.starts_double_byte && self.cfg.double_byte.is_some();
        let enc = match (self.double, self.cfg.double_byte) {
            (true, Some(e)) => e,
            _ => self.single,
        };
        self.switch_text(enc);
    }

    /// LF: the line ends (trailing whitespace trimmed). `ESC d n` can add many empty lines
    /// per byte, so a segment keeps at most `max_receipt_bytes` lines.
    fn end_line(&mut self) {
        let mut line = core::mem::take(&mut self.seg.line);
        line.truncate(line.trim_end().len());
        if self.seg.lines.len() < self.max_bytes() {
            self.seg.lines.push(line);
        }
    }

    /// Ends the segment with [`Boundary::Oversize`] if it reached the size limit.
    fn check_size(&mut self, out: &mut Vec<RawReceipt>) {
        if self.seg.bytes >= self.max_bytes() {
            if let Some(r) = self.close(Boundary::Oversize, self.pos) {
                out.push(r);
            }
        }
    }

    /// Closes the segment at `end` and starts the next one there; the receipt, if the segment
    /// had content.
    fn close(&mut self, boundary: Boundary, end: u64) -> Option<RawReceipt> {
        self.flush_text();
        if self.seg.line.trim_end().is_empty() {
            self.seg.line.clear();
        } else {
            self.end_line();
        }
        let seg = core::mem::replace(&mut self.seg, Segment::new(end));
        self.committed = end;
        if !seg.content {
            if end > seg.start {
                self.stats.empty_segments = self.stats.empty_segments.saturating_add(1);
            }
            return None;
        }
        self.stats.receipts = self.stats.receipts.saturating_add(1);
        if boundary == Boundary::Oversize {
            self.stats.oversize_receipts = self.stats.oversize_receipts.saturating_add(1);
        }
        Some(RawReceipt {
            start_offset: seg.start,
            end_offset: end,
            first_ms: seg.first_ms.unwrap_or(seg.last_ms),
            last_ms: seg.last_ms,
            lines: seg.lines,
            qr: seg.qr,
            barcodes: seg.barcodes,
            boundary,
            issues: seg.issues,
        })
    }
}

/// The decoder configuration a fuzz case picks with its second byte.
fn fuzz_config(sel: u8) -> DecoderConfig {
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

/// The checks of the `escpos` fuzz target, also run by the unit tests on its seeds: the first
/// input byte picks the chunk size (1–255), the second one of four printer configurations,
/// the rest is the stream. Receipts' offsets tile the stream in order and stay inside what was
/// fed; the decoder's counters agree with what it returned.
#[doc(hidden)]
#[allow(clippy::indexing_slicing)] // a fuzz check: a panic is its finding
pub fn fuzz_check(input: &[u8]) {
    let [chunk, sel, data @ ..] = input else {
        return;
    };
    let cfg = fuzz_config(*sel);
    let chunk = usize::from(*chunk).max(1);
    let mut d = ReceiptDecoder::new(cfg.clone());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escpos::ReceiptBuilder;
    use proptest::prelude::*;

    /// Feeds `bytes` whole at time 0 and finishes.
    fn decode_all(cfg: &DecoderConfig, bytes: &[u8]) -> (Vec<RawReceipt>, ReceiptDecoder) {
        let mut d = ReceiptDecoder::new(cfg.clone());
        let mut out = Vec::new();
        d.push(bytes, 0, &mut out);
        out.extend(d.finish());
        (out, d)
    }

    /// Feeds `bytes` in chunks of the given sizes (cycled) at time 0 and finishes.
    fn decode_chunked(cfg: &DecoderConfig, bytes: &[u8], sizes: &[usize]) -> Vec<RawReceipt> {
        let mut d = ReceiptDecoder::new(cfg.clone());
        let mut out = Vec::new();
        let mut rest = bytes;
        for &s in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(s.clamp(1, rest.len()));
            d.push(a, 0, &mut out);
            rest = b;
        }
        out.extend(d.finish());
        out
    }

    fn lines(r: &RawReceipt) -> Vec<&str> {
        r.lines.iter().map(String::as_str).collect()
    }

    fn western() -> DecoderConfig {
        DecoderConfig {
            code_tables: EPSON_CODE_TABLES.to_vec(),
            ..DecoderConfig::new(Encoding::Cp437)
        }
    }

    #[test]
    fn western_receipt_fixture() {
        let bytes = [
            0x1B, 0x40, // ESC @: initialize
            0x1B, 0x74, 0x13, // ESC t 19: CP858 on Epson
            0x1B, 0x61, 0x01, // ESC a 1: centre
            0x1B, 0x45, 0x01, // ESC E 1: bold
            b'C', b'A', b'F', 0x90, // "CAFÉ" (É is 0x90)
            0x0A, // LF
            0x1B, 0x45, 0x00, // ESC E 0
            0x1B, 0x61, 0x00, // ESC a 0: left
            b'C', b'o', b'l', b'a', // "Cola"
            0x09, // HT
            b'2', b'.', b'5', b'0', b' ', b' ', // "2.50" and trailing spaces
            0x0D, 0x0A, // CR LF
            b'T', b'o', b't', b'a', b'l', b' ', 0xD5, b'2', // "Total €2" (€ is 0xD5)
            0x0A, // LF
            0x1B, 0x64, 0x02, // ESC d 2: two empty lines
            0x1D, 0x56, 0x42, 0x03, // GS V 66 3: feed 3, partial cut
            0x1B, 0x40, // ESC @ of the next job (not a receipt yet)
        ];
        let (out, d) = decode_all(&western(), &bytes);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(lines(r), ["CAFÉ", "Cola\t2.50", "Total €2", "", ""]);
        assert_eq!((r.start_offset, r.end_offset), (0, bytes.len() as u64 - 2));
        assert_eq!(r.boundary, Boundary::Cut);
        assert_eq!(r.issues, ReceiptIssues::default());
        // The trailing ESC @ was an empty segment: committed past it at the end of input.
        assert_eq!(d.committed_offset(), bytes.len() as u64);
        assert_eq!(d.stats().receipts, 1);
        assert_eq!(d.stats().empty_segments, 1);
    }

    #[test]
    fn chinese_receipt_fixture() {
        let bytes = [
            0xC9, 0xCC, 0xB5, 0xEA, // "商店" in GBK: the printer starts in double-byte mode
            0x0A, // LF
            0x1C, 0x2E, // FS .: leave double-byte mode
            b'N', b'o', b'.', b'7', 0x0A, // "No.7" LF, single-byte
            0x1C, 0x26, // FS &: enter double-byte mode
            0xBA, 0xCF, 0xBC, 0xC6, b':', b'9', 0x0A, // "合计:9" LF
            0x1D, 0x28, 0x6B, 0x08, 0x00, // GS ( k, 8 bytes follow
            0x31, 0x50, 0x30, // QR, store, m
            b'h', b't', b't', b'p', b'!', // data "http!"
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30, // QR print
            0x1D, 0x6B, 0x43, 0x02, b'4', b'2', // GS k 67 (EAN13 length form) "42"
            0x1D, 0x56, 0x00, // GS V 0: full cut
        ];
        let (out, _) = decode_all(&DecoderConfig::chinese(Encoding::Gb18030), &bytes);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(lines(r), ["商店", "No.7", "合计:9"]);
        assert_eq!(r.qr, ["http!"]);
        assert_eq!(r.barcodes, ["42"]);
        assert_eq!(r.issues, ReceiptIssues::default());
    }

    #[test]
    fn big5_receipt_split_inside_characters() {
        let cfg = DecoderConfig::chinese(Encoding::Big5);
        let mut b = ReceiptBuilder::for_config(&cfg);
        b.line("中文收據").unwrap().cut(false);
        let bytes = b.into_bytes();
        for split in 0..bytes.len() {
            let out = decode_chunked(&cfg, &bytes, &[split, bytes.len()]);
            assert_eq!(out.len(), 1);
            assert_eq!(lines(&out[0]), ["中文收據"], "split at {split}");
            assert_eq!(out[0].issues.undecodable, 0);
        }
    }

    #[test]
    fn boundaries_table() {
        struct Case {
            name: &'static str,
            cfg: fn(&mut DecoderConfig),
            build: fn(&mut ReceiptBuilder),
            want: &'static [(&'static [&'static str], Boundary)],
        }
        let cases = [
            Case {
                name: "cut",
                cfg: |_| {},
                build: |b| {
                    b.line("a").unwrap().cut(false).line("b").unwrap().cut(true);
                },
                want: &[(&["a"], Boundary::Cut), (&["b"], Boundary::Cut)],
            },
            Case {
                name: "legacy cut",
                cfg: |_| {},
                build: |b| {
                    b.line("a").unwrap().raw(&[0x1B, 0x6D]).line("b").unwrap();
                },
                want: &[(&["a"], Boundary::Cut), (&["b"], Boundary::End)],
            },
            Case {
                name: "init after text",
                cfg: |_| {},
                build: |b| {
                    b.init().line("a").unwrap().init().line("b").unwrap();
                },
                want: &[(&["a"], Boundary::Init), (&["b"], Boundary::End)],
            },
            Case {
                name: "init before text does not split",
                cfg: |_| {},
                build: |b| {
                    b.init().feed(1).init().line("a").unwrap().cut(false);
                },
                want: &[(&["", "a"], Boundary::Cut)],
            },
            Case {
                name: "init boundary off",
                cfg: |c| c.boundary_on_init = false,
                build: |b| {
                    b.line("a").unwrap().init().line("b").unwrap().cut(false);
                },
                want: &[(&["a", "b"], Boundary::Cut)],
            },
            Case {
                name: "drawer kick ignored by default",
                cfg: |_| {},
                build: |b| {
                    b.line("a")
                        .unwrap()
                        .drawer_kick()
                        .line("b")
                        .unwrap()
                        .cut(false);
                },
                want: &[(&["a", "b"], Boundary::Cut)],
            },
            Case {
                name: "drawer kick boundary",
                cfg: |c| c.boundary_on_drawer_kick = true,
                build: |b| {
                    b.drawer_kick().line("a").unwrap().drawer_kick();
                    b.line("b").unwrap().raw(&[0x10, 0x14, 0x01, 0x00, 0x02]);
                },
                want: &[
                    (&["a"], Boundary::DrawerKick),
                    (&["b"], Boundary::DrawerKick),
                ],
            },
            Case {
                name: "empty segments are dropped",
                cfg: |_| {},
                build: |b| {
                    b.init()
                        .cut(false)
                        .feed(3)
                        .cut(false)
                        .line("x")
                        .unwrap()
                        .cut(false);
                },
                want: &[(&["x"], Boundary::Cut)],
            },
            Case {
                name: "qr only is a receipt",
                cfg: |_| {},
                build: |b| {
                    b.qr("https://e.invalid/i?x=1").unwrap().cut(false);
                },
                want: &[(&[], Boundary::Cut)],
            },
            Case {
                name: "text without LF ends the receipt as a line",
                cfg: |_| {},
                build: |b| {
                    b.text("tail  ").unwrap().cut(false);
                },
                want: &[(&["tail"], Boundary::Cut)],
            },
            Case {
                name: "oversize",
                cfg: |c| c.max_receipt_bytes = 4,
                build: |b| {
                    b.text("abcdefghij").unwrap();
                },
                want: &[
                    (&["abcd"], Boundary::Oversize),
                    (&["efgh"], Boundary::Oversize),
                    (&["ij"], Boundary::End),
                ],
            },
        ];
        for c in cases {
            let mut cfg = DecoderConfig::new(Encoding::Cp437);
            (c.cfg)(&mut cfg);
            let mut b = ReceiptBuilder::for_config(&cfg);
            (c.build)(&mut b);
            let bytes = b.into_bytes();
            let (out, d) = decode_all(&cfg, &bytes);
            let got: Vec<(Vec<&str>, Boundary)> =
                out.iter().map(|r| (lines(r), r.boundary)).collect();
            let want: Vec<(Vec<&str>, Boundary)> =
                c.want.iter().map(|(l, b)| (l.to_vec(), *b)).collect();
            assert_eq!(got, want, "{}", c.name);
            // Segments tile the stream up to the end.
            for w in out.windows(2) {
                assert!(w[0].end_offset <= w[1].start_offset, "{}", c.name);
            }
            assert_eq!(d.committed_offset(), bytes.len() as u64, "{}", c.name);
        }
    }

    #[test]
    fn init_boundary_ends_before_the_init() {
        let bytes = [
            b'a', 0x0A, // "a" LF
            0x1B, 0x40, // ESC @: starts the next receipt
            b'b', 0x0A, // "b" LF
        ];
        let (out, _) = decode_all(&DecoderConfig::new(Encoding::Cp437), &bytes);
        assert_eq!(out[0].boundary, Boundary::Init);
        assert_eq!((out[0].start_offset, out[0].end_offset), (0, 2));
        assert_eq!((out[1].start_offset, out[1].end_offset), (2, 6));
    }

    #[test]
    fn idle_gap_and_arrival_times() {
        let cfg = DecoderConfig::new(Encoding::Cp437);
        let mut d = ReceiptDecoder::new(cfg);
        let mut out = Vec::new();
        d.push(b"one\n", 1_000, &mut out);
        d.push(b"two\n\x1b", 1_200, &mut out); // ends with a lone ESC
        assert_eq!(d.idle(1_500, 500), None); // 300 ms of silence only
        let r = d.idle(1_700, 500).unwrap();
        assert_eq!(lines(&r), ["one", "two"]);
        assert_eq!((r.first_ms, r.last_ms), (1_000, 1_200));
        assert_eq!(r.boundary, Boundary::Idle);
        // The lone ESC is not part of it: it starts the next receipt.
        assert_eq!((r.start_offset, r.end_offset), (0, 8));
        assert_eq!(d.committed_offset(), 8);
        assert_eq!(d.offset(), 9);
        assert_eq!(d.idle(10_000, 500), None); // nothing new: no empty receipt
        d.push(b"@x\n\x1dV\x00", 5_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(lines(&out[0]), ["x"]);
        assert_eq!((out[0].first_ms, out[0].last_ms), (1_200, 5_000));
        assert_eq!((out[0].start_offset, out[0].end_offset), (8, 15));
    }

    #[test]
    fn restart_from_committed_offset_reads_the_rest() {
        let cfg = western();
        let mut b = ReceiptBuilder::for_config(&cfg);
        for i in 0..3 {
            b.init()
                .code_table(19)
                .line(&format!("receipt {i} €"))
                .unwrap();
            b.raster(4, 2).feed_cut(false, 2);
        }
        let bytes = b.into_bytes();
        let (whole, _) = decode_all(&cfg, &bytes);
        assert_eq!(whole.len(), 3);
        // Stop in the middle of the third receipt, restart from the checkpoint.
        let stop = (whole[2].start_offset + whole[2].end_offset) / 2;
        let mut d = ReceiptDecoder::new(cfg.clone());
        let mut first = Vec::new();
        d.push(&bytes[..stop as usize], 0, &mut first);
        assert_eq!(first, whole[..2]);
        let cp = d.committed_offset();
        assert_eq!(cp, whole[1].end_offset);
        let mut d = ReceiptDecoder::with_offset(cfg, cp);
        let mut rest = Vec::new();
        d.push(&bytes[cp as usize..], 0, &mut rest);
        rest.extend(d.finish());
        assert_eq!(rest, whole[2..]);
    }

    #[test]
    fn garbage_and_unknown_commands_are_counted_and_skipped() {
        let bytes = [
            0x00, 0x07, // NUL, BEL: stray control bytes
            0x1B, 0x00, // ESC + unknown command byte: ESC skipped, then 0x00 garbage
            0x1D, 0x76, 0x30, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, // GS v 0 claiming 4 GB
            b'o', b'k', 0x0A, // "ok" LF
            0x1B, 0x74, 0x63, // ESC t 99: no such table configured
            0x1D, 0x56, 0x00, // GS V 0
        ];
        let (out, d) = decode_all(&DecoderConfig::new(Encoding::Cp437), &bytes);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        // The huge raster header costs one garbage byte (GS); "v0" then read as text, the
        // 0x00 after it as garbage, and 0xFF bytes as CP437 no-break spaces.
        assert_eq!(lines(r), ["v0\u{A0}\u{A0}\u{A0}\u{A0}ok"]);
        assert_eq!(r.issues.unknown_commands, 1);
        assert_eq!(r.issues.garbage_bytes, 2 + 1 + 1 + 1);
        assert_eq!(r.issues.unmapped_code_tables, 1);
        assert_eq!(r.issues.skipped_payload_bytes, 0);
        let s = d.stats();
        assert_eq!(
            (s.garbage_bytes, s.unknown_commands, s.bytes),
            (5, 1, bytes.len() as u64)
        );
    }

    #[test]
    fn image_payloads_stream_through_a_small_buffer() {
        let cfg = DecoderConfig::new(Encoding::Cp437);
        let mut b = ReceiptBuilder::for_config(&cfg);
        b.line("logo below")
            .unwrap()
            .raster(80, 2_500)
            .line("after")
            .unwrap()
            .cut(false);
        let bytes = b.into_bytes();
        let mut d = ReceiptDecoder::new(cfg);
        let mut out = Vec::new();
        let mut max_pending = 0;
        for chunk in bytes.chunks(7) {
            d.push(chunk, 0, &mut out);
            max_pending = max_pending.max(d.pending.capacity());
        }
        assert!(max_pending <= 16, "buffered {max_pending} bytes");
        assert_eq!(out.len(), 1);
        assert_eq!(lines(&out[0]), ["logo below", "after"]);
        assert_eq!(out[0].issues.skipped_payload_bytes, 200_000);
    }

    #[test]
    fn double_byte_garbage_is_undecodable() {
        let bytes = [
            0xC4, 0x0A, // GB18030 lead byte cut by LF
            0xFF, 0x0A, // never a GB18030 byte
            0xC4, 0xE3, 0x0A, // 你
        ];
        let (out, d) = decode_all(&DecoderConfig::chinese(Encoding::Gb18030), &bytes);
        assert_eq!(lines(&out[0]), ["\u{FFFD}", "\u{FFFD}", "你"]);
        assert_eq!(out[0].issues.undecodable, 2);
        assert_eq!(d.stats().undecodable, 2);
    }

    #[test]
    fn double_byte_commands_ignored_without_double_byte_encoding() {
        let bytes = [
            0x1C, 0x26, // FS &: no double-byte encoding configured
            0xC4, 0xE3, 0x0A, // two CP437 characters
        ];
        let (out, _) = decode_all(&DecoderConfig::new(Encoding::Cp437), &bytes);
        assert_eq!(lines(&out[0]), ["─π"]);
    }

    #[test]
    fn partial_command_at_end_is_garbage() {
        let bytes = [
            b'x', 0x0A, // "x" LF
            0x1D, 0x28, 0x6B, 0x10, // GS ( k with its length cut
        ];
        let (out, d) = decode_all(&DecoderConfig::new(Encoding::Cp437), &bytes);
        assert_eq!(out[0].boundary, Boundary::End);
        assert_eq!(out[0].issues.garbage_bytes, 4);
        assert_eq!(out[0].end_offset, 6);
        assert_eq!(d.offset(), 6);
    }

    #[test]
    fn feed_lines_are_capped_by_the_size_limit() {
        let cfg = DecoderConfig {
            max_receipt_bytes: 100,
            ..DecoderConfig::new(Encoding::Cp437)
        };
        let mut b = ReceiptBuilder::for_config(&cfg);
        b.line("x").unwrap();
        for _ in 0..20 {
            b.feed(255);
        }
        let (out, _) = decode_all(&cfg, b.as_bytes());
        assert_eq!(out[0].lines.len(), 100);
    }

    #[test]
    fn fuzz_target_body_on_seeds() {
        for seed in fuzz_seeds() {
            super::fuzz_check(&seed.1);
        }
    }

    /// Seeds for the `escpos` fuzz target: one stream per configuration and a few chunkings.
    fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
        let mut seeds = Vec::new();
        for sel in 0..4u8 {
            let cfg = super::fuzz_config(sel);
            let mut b = ReceiptBuilder::for_config(&cfg);
            b.init().align(1).bold(true);
            b.line("STORE 42").unwrap();
            b.bold(false).align(0).line("Item\t1.00").unwrap();
            match cfg.double_byte {
                Some(Encoding::Big5) => b.double_byte(true).line("合計 中文").unwrap(),
                Some(_) => b.double_byte(true).line("合计 中文").unwrap(),
                None => &mut b,
            };
            b.double_byte(false).code_table(19);
            let euro = b.encoding().encode("€").is_some();
            b.line(if euro {
                "Total €1.00"
            } else {
                "Total EUR 1.00"
            })
            .unwrap();
            b.qr("https://e.invalid/inv?id=1").unwrap();
            b.barcode(73, "{B1234").unwrap();
            b.raster(2, 3).feed(2).drawer_kick().feed_cut(false, 3);
            b.init().line("second").unwrap().cut(true);
            let stream = b.into_bytes();
            let (receipts, _) = decode_all(&cfg, &stream);
            assert!(receipts.len() >= 2, "config {sel}: {receipts:?}");
            for chunk in [1u8, 7, 255] {
                let mut v = vec![chunk, sel];
                v.extend_from_slice(&stream);
                seeds.push((format!("cfg{sel}_chunk{chunk}"), v));
            }
        }
        seeds
    }

    /// Writes the seeds to `fuzz/seeds/escpos` (run with `--ignored` after changing them).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/escpos");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in fuzz_seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    /// One item of a generated receipt.
    #[derive(Debug, Clone)]
    enum Item {
        Line(String),
        Chinese(String),
        Qr(String),
        Barcode(String),
        Raster(u16, u16),
        Feed(u8),
        Bold(bool),
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            4 => "[ -~äéß€]{0,16}".prop_map(Item::Line),
            1 => "[a-z中文合计商店 ]{0,8}".prop_map(Item::Chinese),
            1 => "[ -~]{1,40}".prop_map(Item::Qr),
            1 => "[0-9]{1,12}".prop_map(Item::Barcode),
            1 => (1u16..4, 1u16..6).prop_map(|(w, h)| Item::Raster(w, h)),
            1 => (0u8..3).prop_map(Item::Feed),
            1 => any::<bool>().prop_map(Item::Bold),
        ]
    }

    /// A stream of receipts ending in varied cuts, and the receipts it must decode to
    /// (lines, QR codes, barcodes).
    fn valid_stream(
        receipts: &[(Vec<Item>, u8)],
    ) -> (
        DecoderConfig,
        Vec<u8>,
        Vec<(Vec<String>, Vec<String>, Vec<String>)>,
    ) {
        let cfg = DecoderConfig {
            code_tables: EPSON_CODE_TABLES.to_vec(),
            double_byte: Some(Encoding::Gb18030),
            ..DecoderConfig::new(Encoding::Cp437)
        };
        let mut b = ReceiptBuilder::for_config(&cfg);
        let mut want = Vec::new();
        for (items, cut) in receipts {
            b.init().code_table(19);
            let (mut ls, mut qr, mut bc) = (Vec::new(), Vec::new(), Vec::new());
            for it in items {
                match it {
                    Item::Line(s) => {
                        b.line(s).unwrap();
                        ls.push(s.trim_end().to_string());
                    }
                    Item::Chinese(s) => {
                        b.double_byte(true).line(s).unwrap().double_byte(false);
                        ls.push(s.trim_end().to_string());
                    }
                    Item::Qr(s) => {
                        b.qr(s).unwrap();
                        qr.push(s.clone());
                    }
                    Item::Barcode(s) => {
                        b.barcode(73, s).unwrap();
                        bc.push(s.clone());
                    }
                    Item::Raster(w, h) => {
                        b.raster(*w, *h);
                    }
                    Item::Feed(n) => {
                        b.feed(*n);
                        ls.extend((0..*n).map(|_| String::new()));
                    }
                    Item::Bold(on) => {
                        b.bold(*on);
                    }
                }
            }
            match cut % 4 {
                0 => b.cut(false),
                1 => b.cut(true),
                2 => b.feed_cut(true, 3),
                _ => b.raw(&[0x1B, 0x69]),
            };
            if ls.iter().any(|l| !l.is_empty()) || !qr.is_empty() || !bc.is_empty() {
                want.push((ls, qr, bc));
            }
        }
        (cfg, b.into_bytes(), want)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Arbitrary bytes in arbitrary chunkings: no panic, sane offsets, and the same
        /// receipts as feeding them whole.
        #[test]
        fn arbitrary_bytes_any_chunking(
            data in prop::collection::vec(
                prop_oneof![
                    3 => any::<u8>(),
                    1 => prop::sample::select(vec![0x0A, 0x1B, 0x1D, 0x1C, 0x10, 0x40, 0x56, 0x28, 0x6B, 0x76, 0x30]),
                ],
                0..600,
            ),
            sizes in prop::collection::vec(1usize..40, 1..8),
            sel in any::<u8>(),
        ) {
            let cfg = super::fuzz_config(sel);
            let (whole, _) = decode_all(&cfg, &data);
            let chunked = decode_chunked(&cfg, &data, &sizes);
            prop_assert_eq!(&chunked, &whole);
            let mut input = vec![sizes[0] as u8, sel];
            input.extend_from_slice(&data);
            super::fuzz_check(&input);
        }

        /// A valid stream decodes to what was built, split at any single point or in random
        /// chunks.
        #[test]
        fn valid_stream_every_split_point(
            receipts in prop::collection::vec((prop::collection::vec(item(), 0..6), any::<u8>()), 1..4),
            sizes in prop::collection::vec(1usize..64, 1..6),
        ) {
            let (cfg, bytes, want) = valid_stream(&receipts);
            let (whole, d) = decode_all(&cfg, &bytes);
            let got: Vec<_> = whole
                .iter()
                .map(|r| (r.lines.clone(), r.qr.clone(), r.barcodes.clone()))
                .collect();
            prop_assert_eq!(&got, &want);
            for r in &whole {
                prop_assert_eq!(&r.issues.garbage_bytes, &0);
                prop_assert_eq!(&r.issues.unknown_commands, &0);
                prop_assert_eq!(&r.issues.undecodable, &0);
                prop_assert_eq!(r.boundary, Boundary::Cut);
            }
            prop_assert_eq!(d.committed_offset(), bytes.len() as u64);
            for split in 0..=bytes.len() {
                let two = decode_chunked(&cfg, &bytes, &[split, bytes.len()]);
                prop_assert_eq!(&two, &whole, "split at {}", split);
            }
            prop_assert_eq!(&decode_chunked(&cfg, &bytes, &sizes), &whole);
        }
    }
}
