//! Door people counters: `[[sources.counter]]` config, and the transports that bring their
//! counts in — an HTTP listener devices push to, HTTP pollers, a Modbus RTU poller, an MQTT
//! subscriber and a replay of recorded pushes — all ending in [`ingest::CounterContext`].

pub mod config;
pub mod file;
pub mod http;
pub mod ingest;
pub mod modbus;
pub mod mqtt;
pub mod poll;
