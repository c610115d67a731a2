//! [`CounterError`]: why a people-counter push could not be read or written, with the
//! dialect, the field path and what was wrong, and a stable [`reason`](CounterError::reason)
//! label for metrics.
//!
//! Errors never carry payload values: a path says where (`logics_data.logics[0].records[2].to`,
//! `Metrics/ReportData/Report/Object[1]/Count[0]/@Enters`), a static text says what.

use core::fmt;

use super::{Dialect, MAX_BODY, MAX_NAME};

/// Why a push body could not be parsed (or a [`Push`](super::Push) emitted).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterError {
    /// The body is longer than [`MAX_BODY`]; it was not looked at.
    TooLarge {
        /// The dialect asked for.
        dialect: Dialect,
        /// Length of the body in bytes.
        len: usize,
    },
    /// Nothing to read: an empty or blank body, or an empty envelope array.
    Empty {
        /// The dialect asked for.
        dialect: Dialect,
    },
    /// The body is not JSON (this includes nesting deeper than serde_json's limit of 128).
    MalformedJson {
        /// The dialect asked for.
        dialect: Dialect,
        /// serde_json's category: `"syntax"`, `"truncated"` or `"data"`.
        what: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The body is not well-formed XML, or uses what we refuse (a DTD, too many nodes).
    MalformedXml {
        /// The dialect asked for.
        dialect: Dialect,
        /// What was refused: `"syntax"`, `"dtd"`, `"entity"`, `"too_many_nodes"`,
        /// `"too_deep"` (nesting over 64 levels), `"no_root"`, `"unclosed_multipart_part"`.
        what: &'static str,
        /// 1-based line of the error (0 when unknown).
        line: u32,
        /// 1-based column of the error (0 when unknown).
        column: u32,
    },
    /// The body's bytes are not text in the charset it declares (or UTF-8 if none).
    BadEncoding {
        /// The dialect asked for.
        dialect: Dialect,
        /// The charset problem: `"invalid_utf8"`, `"unknown_charset"`, `"invalid_charset_bytes"`.
        what: &'static str,
    },
    /// The top level is not this dialect's: an unknown Xovis envelope key, another XML root
    /// element, no `EventNotificationAlert` in a multipart body.
    UnknownEnvelope {
        /// The dialect asked for.
        dialect: Dialect,
        /// The key or element name found (at most 32 printable ASCII characters; others
        /// are written `?`).
        found: String,
    },
    /// A field the dialect requires is absent (or JSON `null`, or empty where a name is
    /// needed).
    MissingField {
        /// The dialect asked for.
        dialect: Dialect,
        /// Where it should be.
        path: String,
    },
    /// A field has the wrong JSON type or XML text that is not the kind of value expected
    /// (`"value":"7"`, `<enter>seven</enter>`).
    WrongType {
        /// The dialect asked for.
        dialect: Dialect,
        /// The field.
        path: String,
        /// What was expected: `"object"`, `"array"`, `"string"`, `"unsigned integer"`, ….
        expected: &'static str,
    },
    /// A time field is not a time this dialect writes, or lies outside years 1–9999.
    BadTime {
        /// The dialect asked for.
        dialect: Dialect,
        /// The field.
        path: String,
    },
    /// A count is negative, or too large (more than `u32::MAX` people in one interval, or
    /// more than `u64::MAX` in a running total).
    BadCount {
        /// The dialect asked for.
        dialect: Dialect,
        /// The field.
        path: String,
        /// `"negative"` or `"too_large"`.
        what: &'static str,
    },
    /// Fields that are fine alone contradict each other: an interval that ends before it
    /// starts, two values for one direction, Brickstream local and Unix times that differ by
    /// something other than a time-zone offset.
    Inconsistent {
        /// The dialect asked for.
        dialect: Dialect,
        /// Where.
        path: String,
        /// What contradicts what.
        what: &'static str,
    },
    /// A device or line name is longer than [`MAX_NAME`] bytes.
    NameTooLong {
        /// The dialect asked for.
        dialect: Dialect,
        /// The field.
        path: String,
    },
    /// [`emit`](super::emit) cannot write this push in this dialect (a reading kind or value
    /// the dialect has no way to say, a dialect with no emitter).
    Unsupported {
        /// The dialect asked for.
        dialect: Dialect,
        /// What cannot be written.
        what: &'static str,
    },
}

impl CounterError {
    /// Every label [`reason`](Self::reason) returns, for registering metric series up front.
    pub const REASONS: [&'static str; 13] = [
        "too_large",
        "empty",
        "malformed_json",
        "malformed_xml",
        "bad_encoding",
        "unknown_envelope",
        "missing_field",
        "wrong_type",
        "bad_time",
        "bad_count",
        "inconsistent",
        "name_too_long",
        "unsupported",
    ];

    /// A stable snake_case label for counters and logs (one of [`REASONS`](Self::REASONS)).
    pub fn reason(&self) -> &'static str {
        match self {
            CounterError::TooLarge { .. } => "too_large",
            CounterError::Empty { .. } => "empty",
            CounterError::MalformedJson { .. } => "malformed_json",
            CounterError::MalformedXml { .. } => "malformed_xml",
            CounterError::BadEncoding { .. } => "bad_encoding",
            CounterError::UnknownEnvelope { .. } => "unknown_envelope",
            CounterError::MissingField { .. } => "missing_field",
            CounterError::WrongType { .. } => "wrong_type",
            CounterError::BadTime { .. } => "bad_time",
            CounterError::BadCount { .. } => "bad_count",
            CounterError::Inconsistent { .. } => "inconsistent",
            CounterError::NameTooLong { .. } => "name_too_long",
            CounterError::Unsupported { .. } => "unsupported",
        }
    }

    /// The dialect that was being read or written.
    pub fn dialect(&self) -> Dialect {
        match *self {
            CounterError::TooLarge { dialect, .. }
            | CounterError::Empty { dialect }
            | CounterError::MalformedJson { dialect, .. }
            | CounterError::MalformedXml { dialect, .. }
            | CounterError::BadEncoding { dialect, .. }
            | CounterError::UnknownEnvelope { dialect, .. }
            | CounterError::MissingField { dialect, .. }
            | CounterError::WrongType { dialect, .. }
            | CounterError::BadTime { dialect, .. }
            | CounterError::BadCount { dialect, .. }
            | CounterError::Inconsistent { dialect, .. }
            | CounterError::NameTooLong { dialect, .. }
            | CounterError::Unsupported { dialect, .. } => dialect,
        }
    }

    /// The field path the error is about, if it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            CounterError::MissingField { path, .. }
            | CounterError::WrongType { path, .. }
            | CounterError::BadTime { path, .. }
            | CounterError::BadCount { path, .. }
            | CounterError::Inconsistent { path, .. }
            | CounterError::NameTooLong { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for CounterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dialect().name();
        match self {
            CounterError::TooLarge { len, .. } => {
                write!(
                    f,
                    "{d}: body of {len} bytes is over the {MAX_BODY}-byte limit"
                )
            }
            CounterError::Empty { .. } => write!(f, "{d}: empty push"),
            CounterError::MalformedJson {
                what, line, column, ..
            } => write!(
                f,
                "{d}: malformed JSON ({what}) at line {line} column {column}"
            ),
            CounterError::MalformedXml {
                what, line, column, ..
            } => write!(
                f,
                "{d}: malformed XML ({what}) at line {line} column {column}"
            ),
            CounterError::BadEncoding { what, .. } => write!(f, "{d}: bad text encoding ({what})"),
            CounterError::UnknownEnvelope { found, .. } => {
                write!(f, "{d}: unknown envelope `{found}`")
            }
            CounterError::MissingField { path, .. } => write!(f, "{d}: missing {path}"),
            CounterError::WrongType { path, expected, .. } => {
                write!(f, "{d}: {path} is not {expected}")
            }
            CounterError::BadTime { path, .. } => write!(f, "{d}: {path} is not a valid time"),
            CounterError::BadCount { path, what, .. } => write!(f, "{d}: count {path} is {what}"),
            CounterError::Inconsistent { path, what, .. } => write!(f, "{d}: {path}: {what}"),
            CounterError::NameTooLong { path, .. } => {
                write!(f, "{d}: {path} is longer than {MAX_NAME} bytes")
            }
            CounterError::Unsupported { what, .. } => write!(f, "{d}: cannot emit {what}"),
        }
    }
}

impl std::error::Error for CounterError {}

/// A payload key or element name made safe for an error: at most 32 characters, printable
/// ASCII only (others become `?`), so a hostile body cannot put its bytes in our logs.
pub(super) fn sanitize(found: &str) -> String {
    found
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
