//! People-counter push payloads: the HTTP bodies door counters send (or answer with), in the
//! vendor dialects store-edge supports, read into one model ([`Push`] of [`Reading`]s) by
//! [`parse`], and written back by [`emit`] for the simulator.
//!
//! | [`Dialect`] | body | readings | line |
//! |---|---|---|---|
//! | `xovis-v5` | JSON push-agent envelope(s) | [`Reading::Interval`] per logic record | logic `name` (else `id`) |
//! | `xovis-legacy` | JSON "data push" (firmware ≤ 4.x) | `Interval` per measurement | `element-name` (else `element-id`) |
//! | `brickstream` | XML `Metrics` | `Interval` per `Count` | the `Object`'s `Name` |
//! | `irisys` | JSON `CountLogs` | [`Reading::Cumulative`] per log entry and line | register `Name` (see below) |
//! | `hikvision-event` | XML `EventNotificationAlert`, plain or in multipart | one `Interval` (`timeRange`) or `Cumulative` (`realTime`) | `channel-<channelID>` |
//! | `hikvision-search` | XML `CountingStatisticsResult` (pulled) | `Interval` per `matchElement` | `channel-<channelID>`, `channel-1` if absent |
//! | `axis-live-sum` | JSON `live-sum.json` (pulled) | one `Cumulative` | `total` |
//!
//! Rules every dialect follows:
//! - Bodies over [`MAX_BODY`] are refused before parsing; names over [`MAX_NAME`] bytes are
//!   errors. JSON nesting is bounded by serde_json (128 levels). XML is bounded by a node
//!   limit and a nesting limit of 64 levels, checked by a pre-scan because roxmltree recurses
//!   once per level and would overflow the stack; XML with a DTD is refused, so entity
//!   expansion cannot happen.
//! - Counts are non-negative integers. A JSON `7.0` or `"7"` is a wrong type; an interval
//!   count above `u32::MAX` is a bad count. Every `Interval` ends after it starts.
//! - Times become Unix milliseconds. A time written without an offset is local to the store
//!   and [`ParseContext::utc_offset_s`] applies (AXIS always; ISO times without a zone);
//!   Brickstream carries its own zone.
//! - Direction labels (Xovis) are matched to [`ParseContext::direction_in`] /
//!   [`direction_out`](ParseContext::direction_out) ignoring ASCII case. A record with
//!   neither label is not a line count (zone occupancy, dwell) and yields no reading; one
//!   with only one of them counts 0 for the other.
//! - Device MAC addresses are not used as device ids where anything else exists, and
//!   errors never carry payload values.
//!
//! Dialect decisions on details our hardware reference leaves open are documented in each
//! dialect's module: [`xovis`], [`brickstream`], [`irisys`], [`hikvision`], [`axis`].
//! Nothing here does I/O or reads a clock.

mod error;
mod json;
mod time;
mod xml;

pub mod axis;
pub mod brickstream;
pub mod hikvision;
pub mod irisys;
pub mod xovis;

/// The JSON dialects of the `counter_json` fuzz target.
#[doc(hidden)]
pub const FUZZ_JSON: [Dialect; 4] = [
    Dialect::XovisV5,
    Dialect::XovisLegacy,
    Dialect::Irisys,
    Dialect::AxisLiveSum,
];

/// The XML dialects of the `counter_xml` fuzz target.
#[doc(hidden)]
pub const FUZZ_XML: [Dialect; 3] = [
    Dialect::Brickstream,
    Dialect::HikvisionEvent,
    Dialect::HikvisionSearch,
];

/// Store offsets the fuzz check uses: whole quarter hours, so every emitter can write them.
const FUZZ_OFFSETS: [i32; 4] = [0, 28_800, -18_000, 19_800];

/// The checks of the `counter_json` / `counter_xml` fuzz targets (which differ only in
/// `dialects`), also run by the unit tests: the low nibble of the first byte picks the dialect,
/// the high nibble the store's UTC offset, the rest is the body. Errors carry a known reason and
/// the right dialect; pushes hold bounded names and forward intervals; what `emit` writes
/// parses back equal.
#[doc(hidden)]
#[allow(clippy::indexing_slicing)] // a fuzz check: a panic is its finding
pub fn fuzz_check(dialects: &[Dialect], data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Some(&dialect) = dialects.get(usize::from(pick & 0x0f) % dialects.len()) else {
        return;
    };
    let ctx = ParseContext {
        utc_offset_s: FUZZ_OFFSETS[usize::from(pick >> 4) % FUZZ_OFFSETS.len()],
        ..ParseContext::default()
    };
    match parse(dialect, body, &ctx) {
        Err(e) => {
            assert!(CounterError::REASONS.contains(&e.reason()));
            assert_eq!(e.dialect(), dialect);
            assert!(!e.to_string().is_empty());
        }
        Ok(push) => {
            assert!(push.device.len() <= MAX_NAME);
            for r in &push.readings {
                assert!(!r.line().is_empty() && r.line().len() <= MAX_NAME);
                if let Reading::Interval {
                    start_ms, end_ms, ..
                } = *r
                {
                    assert!(start_ms < end_ms);
                }
            }
            if let Ok(bytes) = emit(dialect, &push, &ctx) {
                assert_eq!(parse(dialect, &bytes, &ctx), Ok(push));
            }
        }
    }
}

#[cfg(test)]
mod tests;

pub use error::CounterError;

/// Largest body [`parse`] looks at: 1 MiB. A minute of counts from one device is a few KiB.
pub const MAX_BODY: usize = 1 << 20;

/// Longest device or line name accepted, in bytes.
pub const MAX_NAME: usize = 256;

/// One counting line's (or logic's) counts, as a dialect reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// People counted in [start_ms, end_ms) (UTC ms).
    Interval {
        /// The counting line (see the module table for each dialect's source).
        line: String,
        /// Start of the interval, Unix ms, inclusive.
        start_ms: i64,
        /// End of the interval, Unix ms, exclusive; always after `start_ms`.
        end_ms: i64,
        /// People who crossed in the "in" direction.
        ins: u32,
        /// People who crossed in the "out" direction.
        outs: u32,
    },
    /// Running totals at `at_ms` that only grow until a reset (Irisys registers, AXIS
    /// live-sum daily totals, Hikvision `realTime`). Differencing happens elsewhere.
    Cumulative {
        /// The counting line.
        line: String,
        /// When the totals were read, Unix ms.
        at_ms: i64,
        /// Running total "in", if the payload has one.
        ins: Option<u64>,
        /// Running total "out", if the payload has one.
        outs: Option<u64>,
    },
}

impl Reading {
    /// The counting line.
    pub fn line(&self) -> &str {
        match self {
            Reading::Interval { line, .. } | Reading::Cumulative { line, .. } => line,
        }
    }
}

/// What one push (HTTP body) held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// Serial / device id / name as the payload says (for logs and keys); `""` if none.
    pub device: String,
    /// The counts, in payload order.
    pub readings: Vec<Reading>,
    /// Xovis v5 `package_info` `(agent_id, id)` of the last data envelope, for gap detection.
    pub sequence: Option<(u64, u64)>,
    /// Envelopes recognised and deliberately ignored, in payload order: `"connection_test"`,
    /// `"status_data"`, `"live_data"` (Xovis v5), `"videoloss"`, `"other_event"` (Hikvision).
    pub ignored: Vec<&'static str>,
}

/// A people-counter payload dialect.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Xovis PC2/PC3 firmware 5 push agents (`logics_data`, `live_data`, …).
    XovisV5,
    /// Xovis firmware up to 4.x "data push" (`sensor-info`, `content.element[]`).
    XovisLegacy,
    /// Brickstream 2D/3D XML `Metrics` push.
    Brickstream,
    /// Irisys Vector 4D `CountLogs` push.
    Irisys,
    /// Hikvision ISAPI `EventNotificationAlert` (HTTP listening / alarm push).
    HikvisionEvent,
    /// Hikvision ISAPI counting search response (`…/counting/search`, pulled).
    HikvisionSearch,
    /// AXIS People Counter `live-sum.json` (pulled).
    AxisLiveSum,
}

impl Dialect {
    /// Every dialect, in declaration order.
    pub const ALL: [Dialect; 7] = [
        Dialect::XovisV5,
        Dialect::XovisLegacy,
        Dialect::Brickstream,
        Dialect::Irisys,
        Dialect::HikvisionEvent,
        Dialect::HikvisionSearch,
        Dialect::AxisLiveSum,
    ];

    /// The dialect named `s` (as in configuration files), exactly as [`name`](Self::name)
    /// writes it.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The configuration name: `"xovis-v5"`, `"xovis-legacy"`, `"brickstream"`,
    /// `"irisys"`, `"hikvision-event"`, `"hikvision-search"`, `"axis-live-sum"`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::XovisV5 => "xovis-v5",
            Dialect::XovisLegacy => "xovis-legacy",
            Dialect::Brickstream => "brickstream",
            Dialect::Irisys => "irisys",
            Dialect::HikvisionEvent => "hikvision-event",
            Dialect::HikvisionSearch => "hikvision-search",
            Dialect::AxisLiveSum => "axis-live-sum",
        }
    }

    /// Whether bodies of this dialect are XML (else JSON).
    pub fn is_xml(self) -> bool {
        matches!(
            self,
            Dialect::Brickstream | Dialect::HikvisionEvent | Dialect::HikvisionSearch
        )
    }
}

impl core::fmt::Display for Dialect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the caller knows that a payload may not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseContext {
    /// The store's UTC offset at about now, in seconds east of UTC, for payloads with local
    /// times and no offset (AXIS live-sum timestamps, ISO times without a zone, Brickstream
    /// without `Timezone`). [`emit`] writes local times in this offset.
    pub utc_offset_s: i32,
    /// The direction label meaning "in" (Xovis count names and value labels); default `"fw"`.
    pub direction_in: String,
    /// The direction label meaning "out"; default `"bw"`.
    pub direction_out: String,
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext {
            utc_offset_s: 0,
            direction_in: "fw".to_owned(),
            direction_out: "bw".to_owned(),
        }
    }
}

/// Reads one push body of `dialect`.
///
/// Errors say which field and what was wrong ([`CounterError::reason`] for metrics); a body
/// over [`MAX_BODY`] is refused before it is looked at. Never panics.
pub fn parse(dialect: Dialect, body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    if body.len() > MAX_BODY {
        return Err(CounterError::TooLarge {
            dialect,
            len: body.len(),
        });
    }
    match dialect {
        Dialect::XovisV5 => xovis::parse_v5(body, ctx),
        Dialect::XovisLegacy => xovis::parse_legacy(body, ctx),
        Dialect::Brickstream => brickstream::parse(body, ctx),
        Dialect::Irisys => irisys::parse(body, ctx),
        Dialect::HikvisionEvent => hikvision::parse_event(body, ctx),
        Dialect::HikvisionSearch => hikvision::parse_search(body, ctx),
        Dialect::AxisLiveSum => axis::parse(body, ctx),
    }
}

/// Writes `push` as a body of `dialect`, local times in `ctx.utc_offset_s`, Xovis
/// directions labelled with `ctx`'s labels.
///
/// Every dialect but `hikvision-search` can be emitted. Whenever `emit` succeeds,
/// `parse(dialect, &emit(dialect, push, ctx)?, ctx) == Ok(push.clone())`; what each dialect
/// cannot say (cumulative readings in interval dialects, several readings in one Hikvision
/// event, milliseconds in Brickstream or AXIS times, …) is [`CounterError::Unsupported`].
pub fn emit(dialect: Dialect, push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = dialect;
    if push.device.len() > MAX_NAME {
        return Err(unsupported(d, "device name longer than MAX_NAME"));
    }
    for r in &push.readings {
        if r.line().is_empty() || r.line().len() > MAX_NAME {
            return Err(unsupported(
                d,
                "empty line name or one longer than MAX_NAME",
            ));
        }
        if let Reading::Interval {
            start_ms, end_ms, ..
        } = *r
        {
            if end_ms <= start_ms {
                return Err(unsupported(d, "interval that ends before it starts"));
            }
        }
    }
    match dialect {
        Dialect::XovisV5 => xovis::emit_v5(push, ctx),
        Dialect::XovisLegacy => xovis::emit_legacy(push, ctx),
        Dialect::Brickstream => brickstream::emit(push, ctx),
        Dialect::Irisys => irisys::emit(push, ctx),
        Dialect::HikvisionEvent => hikvision::emit_event(push, ctx),
        Dialect::AxisLiveSum => axis::emit(push, ctx),
        Dialect::HikvisionSearch => Err(unsupported(d, "hikvision-search responses")),
    }
}

/// A [`CounterError::Unsupported`].
fn unsupported(dialect: Dialect, what: &'static str) -> CounterError {
    CounterError::Unsupported { dialect, what }
}

/// Fails with `Unsupported` unless the push has no `sequence` and nothing `ignored` (for
/// dialects that have neither).
fn plain_push(d: Dialect, push: &Push) -> Result<(), CounterError> {
    if push.sequence.is_some() {
        return Err(unsupported(d, "a package sequence"));
    }
    if !push.ignored.is_empty() {
        return Err(unsupported(d, "ignored envelopes"));
    }
    Ok(())
}

/// A direction label of a Xovis count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    In,
    Out,
}

impl ParseContext {
    /// Which direction `label` names, ignoring ASCII case.
    fn direction(&self, label: &str) -> Option<Direction> {
        if label.eq_ignore_ascii_case(&self.direction_in) {
            Some(Direction::In)
        } else if label.eq_ignore_ascii_case(&self.direction_out) {
            Some(Direction::Out)
        } else {
            None
        }
    }

    /// Fails with `Unsupported` unless the two labels can be told apart when read back.
    fn check_labels(&self, d: Dialect) -> Result<(), CounterError> {
        if self.direction_in.is_empty()
            || self.direction_out.is_empty()
            || self.direction_in.eq_ignore_ascii_case(&self.direction_out)
        {
            return Err(unsupported(d, "direction labels that are empty or equal"));
        }
        Ok(())
    }
}

/// An interval count as `u32`, or [`CounterError::BadCount`] at `path`.
fn interval_count(d: Dialect, v: u64, path: impl Fn() -> String) -> Result<u32, CounterError> {
    u32::try_from(v).map_err(|_| CounterError::BadCount {
        dialect: d,
        path: path(),
        what: "too_large",
    })
}

/// An [`Reading::Interval`] once `start_ms < end_ms` is checked (else `Inconsistent` at
/// `path`).
fn interval(
    d: Dialect,
    line: String,
    (start_ms, end_ms): (i64, i64),
    (ins, outs): (u32, u32),
    path: impl Fn() -> String,
) -> Result<Reading, CounterError> {
    if end_ms <= start_ms {
        return Err(CounterError::Inconsistent {
            dialect: d,
            path: path(),
            what: "interval does not end after it starts",
        });
    }
    Ok(Reading::Interval {
        line,
        start_ms,
        end_ms,
        ins,
        outs,
    })
}
