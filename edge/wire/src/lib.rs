//! Byte formats that store-edge reads from hardware: radiotap, IEEE 802.11, pcap files,
//! captive-portal login records and ESC/POS receipt-printer streams ([`escpos`]).
//!
//! The crate follows the layout of smoltcp's `wire` module: every binary format has a zero-copy
//! view (`Header<T>` / `Frame<T>`) whose getters never panic once `check_len` succeeded, and a
//! `Repr` that can be parsed from a view and emitted into a byte buffer. The text formats of
//! [`portal`] are parsed into owned `Repr`s with the same checked-once, never-panic rule. Nothing here allocates on the
//! capture hot path ([`presence::parse`]); only the pcap writers do I/O.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bytes;
mod error;
mod mac;

pub mod capture;
pub mod counter;
pub mod escpos;
pub mod fcs;
pub mod ieee80211;
pub mod milesight;
pub mod modbus;
pub mod pcap;
pub mod pcapng;
pub mod portal;
pub mod presence;
pub mod radiotap;

pub use error::{Error, Result};
pub use mac::MacAddr;
