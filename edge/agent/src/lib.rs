//! `edge_agent`: the store-edge agent as a library — config, sources, SQLite store, pipeline,
//! pull API and MQTT management. The `store-edge` binary (`src/main.rs`) is the command line
//! on top of it; the fuzz targets in `fuzz/` call the parsers through it.
//!
//! Entry points for untrusted input (each has a fuzz target in `edge/agent/fuzz`):
//! - [`config::parse`] / [`config::parse_with`]: a config file's TOML text (a `--config` file
//!   or a pushed `config/desired`) into a validated [`config::Config`];
//! - [`mgmt::commands::parse`], [`mgmt::commands::command`] and [`mgmt::commands::desired`]:
//!   management request and `config/desired` payloads;
//! - [`sources::counter::mqtt::decode`]: a people counter's MQTT payload;
//! - [`calibrate::parse_headcounts`]: a head-count CSV.
//!
//! The modules the binary drives are public (and `listen`, the listeners' shared limits); `notify`, `pipeline`, `secrets` and `stats` are
//! internal.

pub mod calibrate;
pub mod config;
pub mod listen;
pub mod mgmt;
mod notify;
mod pipeline;
pub mod pull;
pub mod report;
pub mod run;
mod secrets;
pub mod sources;
mod stats;
pub mod store;
pub mod supervise;
pub mod sync;
