//! The pure core of store-edge: turns timestamped sightings into visits, zone paths, hourly
//! aggregates and day reports.
//!
//! Nothing here performs I/O, spawns tasks or reads a clock: time arrives inside the inputs
//! (frame timestamps and watermarks), keys arrive as arguments. That keeps every result
//! reproducible, so tests are table-driven and the same frames always give the same visits.

pub mod aggregate;
pub mod clock;
pub mod counter;
pub mod key;
pub mod params;
pub mod person;
pub mod phone;
pub mod pos;
pub mod presence;
pub mod report;
pub mod session;
pub mod snapshot;
pub mod staff;
pub mod time;
pub mod zones;

pub use aggregate::{Aggregator, HourRecord};
pub use clock::{
    judge_input_time, ClockGuard, ClockStep, ClockVerdict, InputTimeError, MAX_STEP_BACK_MS,
};
pub use counter::{
    day_totals, footfall_by_hour, newest_revisions, Applied, CountInput, CounterError,
    CounterInterval, CounterTracker, DayCounts,
};
pub use key::{DeviceKey, DeviceKeyer, Secret};
pub use params::{MetricParams, ParamError, DEFINITIONS_VERSION};
pub use person::{PersonKey, PersonKeyer};
pub use phone::{PhoneError, Region, E164};
pub use pos::{
    attribute, ExtractContext, ExtractError, ExtractRules, ExtractRulesRaw, Item, RuleError,
    Transaction, VisitSpan, DEFAULT_ATTRIBUTION_GRACE_MS,
};
pub use report::{DayReport, ReportInputs};
pub use session::{
    Arrival, RawSighting, Sessionizer, Sighting, SightingKind, Visit, VisitClass, ZoneDwell,
};
pub use time::LocalClock;

/// Index of a zone (one per sniffer zone name) in the configured zone list.
pub type ZoneId = u8;

/// The most zones a store may configure (bounded so per-device state has a fixed size).
pub const MAX_ZONES: usize = 16;
