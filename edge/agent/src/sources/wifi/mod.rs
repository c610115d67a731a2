//! The Wi-Fi presence source: monitor-mode capture (live) and capture-file replay, both through
//! libpcap and the same frame handling, plus optional channel hopping.

pub mod config;
pub mod hop;
pub mod source;
