//! POS receipts from the printer line: `[[sources.pos]]` config, and the serial, capture-file
//! and TCP-passthrough readers that turn the ESC/POS byte stream into stored purchases.

pub mod config;
pub mod passthrough;
pub mod source;
