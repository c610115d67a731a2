//! Captive-portal login sources: a shopper logs in to the store Wi-Fi with a phone number, and
//! the login binds the device to that person. `config.rs` holds `[[sources.portal]]`,
//! `source.rs` the file followers and the keying, `webhook.rs` the HTTP endpoint.

pub mod config;
pub mod source;
pub mod webhook;
