//! The crate's single error type, [`Error`], and the [`Result`] alias.

use core::fmt;

/// Why a buffer could not be viewed, parsed or emitted.
///
/// Variants carry enough context (what, where) to debug a capture without a hex dump.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before a structure does.
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Offset of the structure in the buffer.
        offset: usize,
        /// Bytes the structure needs from `offset`.
        need: usize,
        /// Bytes available from `offset`.
        have: usize,
    },
    /// A field holds a value the format does not allow.
    Malformed {
        /// The offending field or rule.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
    },
    /// A version or magic number this crate does not understand.
    UnsupportedVersion {
        /// The format.
        what: &'static str,
        /// The version (or magic) found.
        version: u32,
    },
    /// An output buffer given to `emit` is too small.
    BufferTooSmall {
        /// The structure being emitted.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
}

impl Error {
    /// Shorthand for [`Error::Truncated`].
    pub(crate) const fn truncated(
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    ) -> Self {
        Error::Truncated {
            what,
            offset,
            need,
            have,
        }
    }

    /// Shorthand for [`Error::Malformed`].
    pub(crate) const fn malformed(what: &'static str, offset: usize) -> Self {
        Error::Malformed { what, offset }
    }

    /// Fails with [`Error::BufferTooSmall`] unless `have >= need`.
    pub(crate) fn check_room(what: &'static str, need: usize, have: usize) -> Result<()> {
        if have < need {
            Err(Error::BufferTooSmall { what, need, have })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated {
                what,
                offset,
                need,
                have,
            } => write!(
                f,
                "truncated {what} at offset {offset}: need {need} bytes, have {have}"
            ),
            Error::Malformed { what, offset } => write!(f, "malformed {what} at offset {offset}"),
            Error::UnsupportedVersion { what, version } => {
                write!(f, "unsupported {what} version {version:#x}")
            }
            Error::BufferTooSmall { what, need, have } => write!(
                f,
                "buffer too small to emit {what}: need {need} bytes, have {have}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Result with the crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
