//! ESC/POS receipt streams, as POS software sends them to a receipt printer: the command
//! table ([`Command`]), the text encodings ([`Encoding`]), the streaming [`ReceiptDecoder`]
//! that turns bytes tapped from a printer port into [`RawReceipt`]s, and the
//! [`ReceiptBuilder`] that writes such streams for tests and the simulator.
//!
//! Layering: `command` knows bytes and lengths only; `text` knows encodings; `receipt` keeps
//! the printer state (code table, double-byte mode), decodes text and finds receipt
//! boundaries. Commands are found before text is decoded, which is safe for every supported
//! encoding: GB18030 and Big5 trail bytes are at least 0x30, so ESC, GS, FS, DLE, LF and CR
//! never occur inside a character.

mod builder;
mod command;
mod receipt;
mod tables;
mod text;

pub use builder::ReceiptBuilder;
pub use command::{ctl, Command, MAX_PAYLOAD};
pub use receipt::{
    fuzz_check, Boundary, DecoderConfig, DecoderStats, RawReceipt, ReceiptDecoder, ReceiptIssues,
    DEFAULT_MAX_RECEIPT_BYTES, EPSON_CODE_TABLES,
};
pub use text::Encoding;
