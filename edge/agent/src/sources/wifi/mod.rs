//! The Wi-Fi presence source: monitor-mode capture (live, libpcap) and capture-file replay
//! (edge-wire's pcap/pcapng reader), both through the same frame handling, plus optional
//! channel hopping.

pub mod config;
pub mod hop;
pub mod source;
