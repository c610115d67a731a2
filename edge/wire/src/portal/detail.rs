//! FreeRADIUS `detail` files: [`next_record`] frames one record out of a growing buffer,
//! [`DetailRecord`] holds its header and attributes, and [`AccountingRepr`] is what store-edge
//! takes from an accounting record (status, user, client MAC, session, times).
//!
//! Format (`rlm_detail`, as written by FreeRADIUS 2 and 3):
//!
//! ```text
//! Wed May  1 10:15:00 2024                      ctime(3) header, not indented
//! \tAcct-Status-Type = Start                     tab, name, " = ", value
//! \tUser-Name = "13812345678"                    strings are double-quoted, with \" \\ \n \r \t
//! \tFramed-IP-Address = 10.1.0.23                and \ooo (octal) escapes; others are bare
//! \tTimestamp = 1714529700
//!                                                one blank line ends the record
//! ```
//!
//! Real files repeat attributes, carry vendor attributes nobody knows, may have CRLF line ends,
//! and end in the middle of a record while the server is still writing it. Framing is
//! therefore separate from meaning: a record is complete once its blank line is there, any
//! framing error says how many bytes to skip to reach the next header line, and unknown
//! attributes are kept in [`DetailRecord::attrs`] and otherwise ignored.

use core::fmt;

use super::{naive_seconds, parse_ctime, small_number, time_of_day, MONTHS};
use crate::MacAddr;

/// Longest record [`next_record`] accepts, header and terminator included. A RADIUS packet is
/// at most 4096 bytes, which FreeRADIUS prints in well under this; a longer run of text with
/// no blank line is not a detail file.
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// Why a detail record could not be framed or understood. Never carries attribute values.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailError {
    /// The record's first line is indented: its ctime header is missing.
    MissingHeader {
        /// Offset of the record's first line in the buffer.
        offset: usize,
        /// Bytes to skip to reach the next header line.
        skip: usize,
    },
    /// An attribute line is not `Name = value` (no `=`, an empty name or one with spaces, an
    /// unterminated quoted value or text after its closing quote).
    MalformedLine {
        /// Line number within the record (1 is the header).
        line: usize,
        /// Offset of the line in the buffer.
        offset: usize,
        /// Bytes to skip to reach the next header line.
        skip: usize,
    },
    /// A new header line started before the record's terminating blank line (the writer was
    /// interrupted and started over).
    Unterminated {
        /// Offset of the record's header in the buffer.
        offset: usize,
        /// Bytes to skip: the offset of the header line that interrupted the record.
        skip: usize,
    },
    /// No blank line within [`MAX_RECORD_LEN`] bytes of the record's start.
    TooLong {
        /// Offset of the record's first line in the buffer.
        offset: usize,
        /// Bytes to skip: past the record's terminator if it is in the buffer, else the
        /// whole buffer.
        skip: usize,
    },
    /// A required attribute is absent (only `Acct-Status-Type` is required).
    MissingAttribute {
        /// The attribute.
        attr: &'static str,
        /// Bytes to skip past the record ([`next_accounting`]); 0 from [`AccountingRepr::parse`].
        skip: usize,
    },
    /// An attribute store-edge uses has a value it cannot read (a MAC address that is not
    /// one, a status that is not a name or number, a timestamp that is not a time).
    BadAttribute {
        /// The attribute.
        attr: &'static str,
        /// Line number within the record (1 is the header).
        line: usize,
        /// Bytes to skip past the record ([`next_accounting`]); 0 from [`AccountingRepr::parse`].
        skip: usize,
    },
}

impl DetailError {
    /// Bytes of the buffer given to [`next_record`] / [`next_accounting`] that belong to the
    /// bad record (up to the next header line): skip them and carry on. Always greater than 0
    /// and at most the buffer's length for errors from those functions; 0 for errors from
    /// [`AccountingRepr::parse`], which sees no buffer.
    pub fn skip(&self) -> usize {
        match *self {
            DetailError::MissingHeader { skip, .. }
            | DetailError::MalformedLine { skip, .. }
            | DetailError::Unterminated { skip, .. }
            | DetailError::TooLong { skip, .. }
            | DetailError::MissingAttribute { skip, .. }
            | DetailError::BadAttribute { skip, .. } => skip,
        }
    }

    /// The same error with its skip count set (for attribute errors found after framing).
    fn with_skip(self, n: usize) -> Self {
        match self {
            DetailError::MissingAttribute { attr, .. } => {
                DetailError::MissingAttribute { attr, skip: n }
            }
            DetailError::BadAttribute { attr, line, .. } => DetailError::BadAttribute {
                attr,
                line,
                skip: n,
            },
            other => other,
        }
    }
}

impl fmt::Display for DetailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DetailError::MissingHeader { offset, .. } => {
                write!(f, "detail record at offset {offset} has no header line")
            }
            DetailError::MalformedLine { line, offset, .. } => write!(
                f,
                "detail record line {line} (offset {offset}) is not `Name = value`"
            ),
            DetailError::Unterminated { offset, skip } => write!(
                f,
                "detail record at offset {offset} interrupted by a new header at offset {skip}"
            ),
            DetailError::TooLong { offset, .. } => write!(
                f,
                "detail record at offset {offset} has no end within {MAX_RECORD_LEN} bytes"
            ),
            DetailError::MissingAttribute { attr, .. } => {
                write!(f, "detail record has no {attr} attribute")
            }
            DetailError::BadAttribute { attr, line, .. } => {
                write!(f, "detail record line {line}: unreadable {attr} value")
            }
        }
    }
}

impl std::error::Error for DetailError {}

/// One framed detail record: its header line and its attributes in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DetailRecord {
    /// The header line (normally a ctime time), without line end or trailing ASCII whitespace.
    pub header: String,
    /// `(name, value)` per attribute line, repeats kept; values unquoted and unescaped.
    pub attrs: Vec<(String, String)>,
}

impl DetailRecord {
    /// The first value of attribute `name` (names compare ignoring ASCII case, as in
    /// FreeRADIUS dictionaries).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|(_, v)| v)
    }

    /// Every value of attribute `name`, in file order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first attribute `name` with its line number in the record (the header is line 1).
    fn find(&self, name: &str) -> Option<(usize, &str)> {
        self.attrs
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|i| (i + 2, self.attrs[i].1.as_str()))
    }

    /// Writes the record as FreeRADIUS does, every value quoted and escaped. [`next_record`]
    /// reads it back unchanged if the header is one line that does not start with a space or
    /// tab and has no trailing whitespace, and names are non-empty without spaces or `=`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.header.as_bytes());
        out.push(b'\n');
        for (name, value) in &self.attrs {
            emit_attr(out, name, value, true);
        }
        out.push(b'\n');
    }
}

/// Writes `\tName = value\n`, the value quoted and escaped if `quote`.
fn emit_attr(out: &mut Vec<u8>, name: &str, value: &str, quote: bool) {
    out.push(b'\t');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" = ");
    if quote {
        out.push(b'"');
        escape_into(out, value);
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'\n');
}

/// FreeRADIUS 3 string escaping (`fr_snprint`): `\\`, `\"`, `\n`, `\r`, `\t`, other control
/// bytes as three octal digits; UTF-8 text as is.
fn escape_into(out: &mut Vec<u8>, value: &str) {
    for &c in value.as_bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(&[
                    b'\\',
                    b'0' + (c >> 6),
                    b'0' + (c >> 3 & 7),
                    b'0' + (c & 7),
                ]);
            }
            c => out.push(c),
        }
    }
}

/// One line of the buffer: its content (without `\n` and one `\r` before it) and where the
/// next line starts, or `None` for a last line without its `\n` yet.
struct Line<'a> {
    text: &'a [u8],
    start: usize,
    next: Option<usize>,
}

/// The line starting at `start` (which is `< buf.len()`).
fn line_at(buf: &[u8], start: usize) -> Line<'_> {
    let rest = buf.get(start..).unwrap_or_default();
    match rest.iter().position(|&c| c == b'\n') {
        Some(nl) => {
            let text = &rest[..nl];
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            Line {
                text,
                start,
                next: Some(start + nl + 1),
            }
        }
        None => Line {
            text: rest,
            start,
            next: None,
        },
    }
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

fn is_indented(text: &[u8]) -> bool {
    matches!(text.first(), Some(b' ' | b'\t'))
}

/// Offset of the first line at or after `pos` that is not a complete blank line (or the
/// buffer's end).
fn skip_blank_lines(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() {
        let line = line_at(buf, pos);
        match line.next {
            Some(next) if is_blank(line.text) => pos = next,
            _ => break,
        }
    }
    pos
}

/// Parses the first complete record in `buf`.
///
/// Blank lines before the record are skipped. A record is complete once its terminating blank
/// line (`\n` or `\r\n`) is in `buf`. Returns:
/// - `Ok(None)` when `buf` holds only part of a record (or nothing): read more and call again
///   with the same bytes at the front;
/// - `Ok(Some((record, consumed)))`: `consumed` (> 0) bytes, through the blank line, belong
///   to the record;
/// - `Err(e)` for a malformed record: skip `e.skip()` (> 0) bytes, which reach the next
///   header line after the bad record, count it, and call again.
///
/// A new header line before a record's blank line ends it as [`DetailError::Unterminated`];
/// no blank line within [`MAX_RECORD_LEN`] bytes is [`DetailError::TooLong`]. Invalid UTF-8
/// is replaced with U+FFFD.
pub fn next_record(buf: &[u8]) -> Result<Option<(DetailRecord, usize)>, DetailError> {
    let start = skip_blank_lines(buf, 0);
    if start >= buf.len() {
        return Ok(None);
    }
    let first = line_at(buf, start);
    let headerless = is_indented(first.text);
    // Walk the lines after the first up to the blank terminator.
    let mut lines = Vec::new();
    let mut pos = first.next;
    let end = loop {
        let Some(p) = pos.filter(|&p| p < buf.len()) else {
            // The buffer ends inside the record.
            if buf.len() - start > MAX_RECORD_LEN {
                return Err(DetailError::TooLong {
                    offset: start,
                    skip: buf.len(),
                });
            }
            return Ok(None);
        };
        let line = line_at(buf, p);
        if let Some(next) = line.next.filter(|_| is_blank(line.text)) {
            break next;
        }
        if !is_indented(line.text) && !is_blank(line.text) {
            // A header line: the record before it never got its blank line.
            return Err(if headerless {
                DetailError::MissingHeader {
                    offset: start,
                    skip: p,
                }
            } else {
                DetailError::Unterminated {
                    offset: start,
                    skip: p,
                }
            });
        }
        // An attribute line, or the start of one (a blank-so-far tail waits for more bytes).
        pos = line.next;
        lines.push(line);
    };
    let skip = skip_blank_lines(buf, end);
    if end - start > MAX_RECORD_LEN {
        return Err(DetailError::TooLong {
            offset: start,
            skip,
        });
    }
    if headerless {
        return Err(DetailError::MissingHeader {
            offset: start,
            skip,
        });
    }
    let header = String::from_utf8_lossy(first.text.trim_ascii_end()).into_owned();
    let mut attrs = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let attr = parse_attr(line.text).ok_or(DetailError::MalformedLine {
            line: i + 2,
            offset: line.start,
            skip,
        })?;
        attrs.push(attr);
    }
    Ok(Some((DetailRecord { header, attrs }, end)))
}

/// Parses `\tName = value` (leading whitespace already known to be there or not).
fn parse_attr(text: &[u8]) -> Option<(String, String)> {
    let eq = text.iter().position(|&c| c == b'=')?;
    let name = text[..eq].trim_ascii();
    if name.is_empty() || name.iter().any(|&c| c.is_ascii_whitespace() || c == b'"') {
        return None;
    }
    let raw = text[eq + 1..].trim_ascii();
    let value = match raw.strip_prefix(b"\"") {
        Some(quoted) => unquote(quoted)?,
        None => String::from_utf8_lossy(raw).into_owned(),
    };
    Some((String::from_utf8_lossy(name).into_owned(), value))
}

/// Unescapes a quoted value after its opening quote; only whitespace may follow the closing
/// quote. Unknown escapes are kept as written.
fn unquote(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    loop {
        let c = *s.get(i)?;
        i += 1;
        match c {
            b'"' => break,
            b'\\' => {
                let e = *s.get(i)?;
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'\\' | b'"' | b'\'' => out.push(e),
                    b'0'..=b'3'
                        if s.get(i).is_some_and(|c| (b'0'..=b'7').contains(c))
                            && s.get(i + 1).is_some_and(|c| (b'0'..=b'7').contains(c)) =>
                    {
                        out.push((e - b'0') << 6 | (s[i] - b'0') << 3 | (s[i + 1] - b'0'));
                        i += 2;
                    }
                    _ => out.extend_from_slice(&[b'\\', e]),
                }
            }
            c => out.push(c),
        }
    }
    if !is_blank(s.get(i..).unwrap_or_default()) {
        return None;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `Acct-Status-Type` (RADIUS attribute 40).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AcctStatus {
    /// `Start` (1): the session began.
    Start,
    /// `Interim-Update` (3, formerly `Alive`): the session goes on.
    InterimUpdate,
    /// `Stop` (2): the session ended.
    Stop,
    /// Any other status (`Accounting-On`, `Failed`, `7`, …), as written.
    Other(String),
}

impl AcctStatus {
    /// Reads a status name (any case) or number; `None` unless the value is a non-empty
    /// run of letters, digits, `-` and `_`.
    pub fn parse(value: &str) -> Option<AcctStatus> {
        let v = value.trim();
        if v.is_empty()
            || !v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return None;
        }
        Some(if v.eq_ignore_ascii_case("Start") || v == "1" {
            AcctStatus::Start
        } else if v.eq_ignore_ascii_case("Stop") || v == "2" {
            AcctStatus::Stop
        } else if v.eq_ignore_ascii_case("Interim-Update")
            || v.eq_ignore_ascii_case("Alive")
            || v == "3"
        {
            AcctStatus::InterimUpdate
        } else {
            AcctStatus::Other(v.to_owned())
        })
    }

    /// The name FreeRADIUS writes.
    pub fn as_str(&self) -> &str {
        match self {
            AcctStatus::Start => "Start",
            AcctStatus::InterimUpdate => "Interim-Update",
            AcctStatus::Stop => "Stop",
            AcctStatus::Other(s) => s,
        }
    }
}

/// Attribute names store-edge reads.
pub mod attr {
    /// RADIUS 40.
    pub const ACCT_STATUS_TYPE: &str = "Acct-Status-Type";
    /// RADIUS 1: the login name, here the phone number as typed.
    pub const USER_NAME: &str = "User-Name";
    /// RADIUS 31: the client's MAC address.
    pub const CALLING_STATION_ID: &str = "Calling-Station-Id";
    /// RADIUS 44.
    pub const ACCT_SESSION_ID: &str = "Acct-Session-Id";
    /// RADIUS 55: when the NAS saw the event, printed in the server's local time.
    pub const EVENT_TIMESTAMP: &str = "Event-Timestamp";
    /// FreeRADIUS's own: Unix seconds when the server wrote the record.
    pub const TIMESTAMP: &str = "Timestamp";
}

/// What store-edge needs from an accounting record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRepr {
    /// `Acct-Status-Type`, by name or number.
    pub status: AcctStatus,
    /// `User-Name`: the phone number as typed, not validated here.
    pub user_name: Option<String>,
    /// `Calling-Station-Id` in any MAC spelling; `None` when absent.
    pub calling_station: Option<MacAddr>,
    /// `Acct-Session-Id`.
    pub session_id: Option<String>,
    /// Unix seconds: the `Timestamp` attribute if present, else `Event-Timestamp` when it is
    /// an instant (a bare integer, or ISO 8601 with `Z` or an offset), else `None`.
    pub time_s: Option<i64>,
    /// `Event-Timestamp` as naive local seconds since 1970 and the zone text after the time
    /// (`"CST"`, or `""` when there is none): `May  1 2024 10:15:00 CST` (FreeRADIUS 2/3) or
    /// `2024-05-01T10:15:00+08:00` (ISO 8601). `None` when absent or a bare integer.
    pub event_time_local: Option<(i64, String)>,
    /// The record's ctime header as naive local seconds since 1970, `None` if it is not one.
    pub header_time_local: Option<i64>,
}

/// An `Event-Timestamp` value.
#[derive(Debug, PartialEq, Eq)]
struct EventTime {
    local: Option<(i64, String)>,
    instant: Option<i64>,
}

/// Reads `Event-Timestamp` in the spellings FreeRADIUS has used.
fn parse_event_time(v: &str) -> Option<EventTime> {
    let v = v.trim();
    if let Some(n) = parse_int(v) {
        return Some(EventTime {
            local: None,
            instant: Some(n),
        });
    }
    if v.as_bytes().get(4) == Some(&b'-') {
        return parse_iso8601(v);
    }
    // "May  1 2024 10:15:00 CST": month, day, year, time, then the zone (maybe empty).
    let mut rest = v;
    let mut tok = || {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        rest = &t[end..];
        &t[..end]
    };
    let month = super::month_number(tok())?;
    let day = u32::try_from(small_number(tok(), 2)?).ok()?;
    let year = small_number(tok(), 4)?;
    let secs = time_of_day(tok())?;
    let naive = naive_seconds(year, month, day, secs)?;
    Some(EventTime {
        local: Some((naive, rest.trim().to_owned())),
        instant: None,
    })
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH[:MM]]`.
fn parse_iso8601(v: &str) -> Option<EventTime> {
    let (date, rest) = (v.get(..10)?, v.get(11..)?);
    if !matches!(v.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut d = date.split('-');
    let year = small_number(d.next().filter(|p| p.len() == 4)?, 4)?;
    let month = u32::try_from(small_number(d.next().filter(|p| p.len() == 2)?, 2)?).ok()?;
    let day = u32::try_from(small_number(d.next().filter(|p| p.len() == 2)?, 2)?).ok()?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let naive = naive_seconds(year, month, day, time_of_day(time)?)?;
    let offset = match zone.as_bytes() {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), hm @ ..] => {
            let hm: Vec<u8> = hm.iter().copied().filter(|&c| c != b':').collect();
            let (h, m) = match hm[..] {
                [h1, h2] => ([h1, h2], [b'0', b'0']),
                [h1, h2, m1, m2] => ([h1, h2], [m1, m2]),
                _ => return None,
            };
            let h = small_number(core::str::from_utf8(&h).ok()?, 2)?;
            let m = small_number(core::str::from_utf8(&m).ok()?, 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            Some(if *sign == b'-' { -off } else { off })
        }
        _ => return None,
    };
    Some(EventTime {
        local: Some((naive, zone.to_owned())),
        instant: offset.map(|o| naive - o),
    })
}

/// An optionally signed decimal integer that fits in i64.
fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

impl AccountingRepr {
    /// Reads the accounting attributes of `r`. The first of repeated attributes wins; unknown
    /// attributes are ignored. Errors name the attribute, never its value; their
    /// [`skip`](DetailError::skip) is 0.
    pub fn parse(r: &DetailRecord) -> Result<AccountingRepr, DetailError> {
        let bad = |attr, line| DetailError::BadAttribute {
            attr,
            line,
            skip: 0,
        };
        let (line, status) =
            r.find(attr::ACCT_STATUS_TYPE)
                .ok_or(DetailError::MissingAttribute {
                    attr: attr::ACCT_STATUS_TYPE,
                    skip: 0,
                })?;
        let status = AcctStatus::parse(status).ok_or(bad(attr::ACCT_STATUS_TYPE, line))?;
        let calling_station = match r.find(attr::CALLING_STATION_ID) {
            None => None,
            Some((line, v)) => {
                Some(MacAddr::parse_any(v).ok_or(bad(attr::CALLING_STATION_ID, line))?)
            }
        };
        let event = match r.find(attr::EVENT_TIMESTAMP) {
            None => None,
            Some((line, v)) => Some(parse_event_time(v).ok_or(bad(attr::EVENT_TIMESTAMP, line))?),
        };
        let timestamp = match r.find(attr::TIMESTAMP) {
            None => None,
            Some((line, v)) => Some(parse_int(v.trim()).ok_or(bad(attr::TIMESTAMP, line))?),
        };
        let (event_local, event_instant) = match event {
            Some(EventTime { local, instant }) => (local, instant),
            None => (None, None),
        };
        Ok(AccountingRepr {
            status,
            user_name: r.get(attr::USER_NAME).map(str::to_owned),
            calling_station,
            session_id: r.get(attr::ACCT_SESSION_ID).map(str::to_owned),
            time_s: timestamp.or(event_instant),
            event_time_local: event_local,
            header_time_local: parse_ctime(&r.header),
        })
    }

    /// Writes a record as FreeRADIUS does: `header`, then `Acct-Status-Type` (bare),
    /// `User-Name`, `Calling-Station-Id` (`AA-BB-CC-DD-EE-FF`), `Acct-Session-Id`,
    /// `Event-Timestamp` (`"May  1 2024 10:15:00 CST"`) quoted, `Timestamp` (bare), then the
    /// blank line. Absent fields are left out.
    ///
    /// `header` is written as given; use [`format_ctime`](super::format_ctime) of `header_time_local` for a real
    /// one. `parse(emit(x)) == x` when the header parses to `x.header_time_local`, an
    /// [`AcctStatus::Other`] is a name or number other than the three known ones, and
    /// `event_time_local` lies in years 1–9999 with a zone that has no surrounding
    /// whitespace (the written `Event-Timestamp` is never an instant, so `time_s` comes back
    /// from `Timestamp` alone).
    pub fn emit(&self, header: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        emit_attr(out, attr::ACCT_STATUS_TYPE, self.status.as_str(), false);
        if let Some(u) = &self.user_name {
            emit_attr(out, attr::USER_NAME, u, true);
        }
        if let Some(m) = self.calling_station {
            let [a, b, c, d, e, f] = m.octets();
            let mac = format!("{a:02X}-{b:02X}-{c:02X}-{d:02X}-{e:02X}-{f:02X}");
            emit_attr(out, attr::CALLING_STATION_ID, &mac, true);
        }
        if let Some(s) = &self.session_id {
            emit_attr(out, attr::ACCT_SESSION_ID, s, true);
        }
        if let Some((naive, zone)) = &self.event_time_local {
            emit_attr(
                out,
                attr::EVENT_TIMESTAMP,
                &format_event_time(*naive, zone),
                true,
            );
        }
        if let Some(t) = self.time_s {
            emit_attr(out, attr::TIMESTAMP, &t.to_string(), false);
        }
        out.push(b'\n');
    }
}

/// `May  1 2024 10:15:00 CST`, as FreeRADIUS prints `Event-Timestamp` (`%b %e %Y %H:%M:%S %Z`).
fn format_event_time(naive: i64, zone: &str) -> String {
    let (y, m, d) = super::civil_from_days(naive.div_euclid(86_400));
    let secs = naive.rem_euclid(86_400);
    // m is 1..=12.
    let mon = MONTHS[(m - 1) as usize];
    let mut s = format!(
        "{mon} {d:>2} {y} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if !zone.is_empty() {
        s.push(' ');
        s.push_str(zone);
    }
    s
}

/// [`next_record`] followed by [`AccountingRepr::parse`]: attribute errors come back with
/// their [`skip`](DetailError::skip) set past the record (and the blank lines after it, up to
/// the next header), so a follower handles every error the same way.
pub fn next_accounting(buf: &[u8]) -> Result<Option<(AccountingRepr, usize)>, DetailError> {
    let Some((rec, n)) = next_record(buf)? else {
        return Ok(None);
    };
    match AccountingRepr::parse(&rec) {
        Ok(r) => Ok(Some((r, n))),
        Err(e) => Err(e.with_skip(skip_blank_lines(buf, n))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let v = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h中";
        let mut out = Vec::new();
        escape_into(&mut out, v);
        assert_eq!(out, b"a\\\"b\\\\c\\nd\\re\\tf\\001g\\177h\xe4\xb8\xad");
        out.push(b'"');
        assert_eq!(unquote(&out).as_deref(), Some(v));
        assert_eq!(unquote(b"x\\qy\"").as_deref(), Some("x\\qy"));
        assert_eq!(unquote(b"x\\400\"").as_deref(), Some("x\\400"));
        assert_eq!(unquote(b"abc"), None);
        assert_eq!(unquote(b"abc\\\""), None);
        assert_eq!(unquote(b"abc\" x"), None);
        assert_eq!(unquote(b"abc\"  ").as_deref(), Some("abc"));
    }

    #[test]
    fn event_times() {
        let t = 1_714_558_500; // 2024-05-01 10:15:00 naive
        let local = |z: &str| Some((t, z.to_owned()));
        let p = |s| parse_event_time(s).map(|e| (e.local, e.instant));
        assert_eq!(p("May  1 2024 10:15:00 CST"), Some((local("CST"), None)));
        assert_eq!(p("May 1 2024 10:15:00"), Some((local(""), None)));
        assert_eq!(
            p("May  1 2024 10:15:00.5 China Standard Time"),
            Some((local("China Standard Time"), None))
        );
        assert_eq!(p("1714529700"), Some((None, Some(1_714_529_700))));
        assert_eq!(p("2024-05-01T10:15:00Z"), Some((local("Z"), Some(t))));
        assert_eq!(
            p("2024-05-01T10:15:00+08:00"),
            Some((local("+08:00"), Some(1_714_529_700)))
        );
        assert_eq!(
            p("2024-05-01 10:15:00-0130"),
            Some((local("-0130"), Some(t + 5400)))
        );
        assert_eq!(p("2024-05-01T10:15:00"), Some((local(""), None)));
        for s in [
            "",
            "May 32 2024 10:15:00",
            "Foo 1 2024 10:15:00",
            "May 1 2024",
            "2024-05-01",
            "2024-05-01T10:15:00+8",
            "2024-05-01T10:15:00+08:00:00",
            "2024-13-01T10:15:00",
            "2024-05-01X10:15:00",
            "-",
        ] {
            assert_eq!(parse_event_time(s), None, "{s}");
        }
        assert_eq!(format_event_time(t, "CST"), "May  1 2024 10:15:00 CST");
        assert_eq!(format_event_time(t, ""), "May  1 2024 10:15:00");
    }
}
