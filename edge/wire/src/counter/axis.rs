//! AXIS People Counter live sum ([`Dialect::AxisLiveSum`]): the answer to
//! `GET /local/tvpc/.api?live-sum.json`,
//! `{"serial", "name", "timestamp": "YYYYMMDDhhmmss", "in": 12, "out": 318}`.
//!
//! `in` and `out` are today's running totals, so the body is one [`Reading::Cumulative`] for
//! the line `total` at `timestamp`. The timestamp is the camera's local time with no offset:
//! [`ParseContext::utc_offset_s`] applies (an ISO 8601 timestamp, which some firmware
//! writes, is accepted too). A missing `in` or `out` is `None`; both missing is
//! [`CounterError::MissingField`]. The device is `serial`, else `name`.

use serde_json::{Map, Value};

use super::json::{self, Path, Reader};
use super::{plain_push, time, unsupported, CounterError, Dialect, ParseContext, Push, Reading};

/// The line name of the live-sum reading.
pub const LINE: &str = "total";

/// Reads a live-sum answer.
pub(super) fn parse(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::AxisLiveSum;
    let r = Reader { d };
    let v = json::from_slice(d, body)?;
    let root = Path::ROOT;
    let m = r.obj(&v, &root)?;
    let device = r.first_name(m, &["serial", "name"], &root)?;
    let tp = root.key("timestamp");
    let ts = r.str(r.req(m, "timestamp", &root)?, &tp)?;
    let at = time::parse_compact(ts, ctx.utc_offset_s)
        .or_else(|| time::parse_iso(ts, ctx.utc_offset_s))
        .ok_or_else(|| CounterError::BadTime {
            dialect: d,
            path: tp.render(),
        })?;
    let total = |key: &'static str| -> Result<Option<u64>, CounterError> {
        r.opt(m, key)
            .map(|v| r.count(v, &root.key(key)))
            .transpose()
    };
    let (ins, outs) = (total("in")?, total("out")?);
    if ins.is_none() && outs.is_none() {
        return Err(r.missing(&root.key("in")));
    }
    Ok(Push {
        device,
        readings: vec![Reading::Cumulative {
            line: LINE.to_owned(),
            at_ms: at,
            ins,
            outs,
        }],
        ..Push::default()
    })
}

/// Writes a live-sum answer for a push of exactly one cumulative reading of line `total` at
/// a whole second.
pub(super) fn emit(push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::AxisLiveSum;
    plain_push(d, push)?;
    let [Reading::Cumulative {
        line,
        at_ms,
        ins,
        outs,
    }] = push.readings.as_slice()
    else {
        return Err(unsupported(d, "anything but one cumulative reading"));
    };
    if line != LINE {
        return Err(unsupported(d, "a line other than `total`"));
    }
    if ins.is_none() && outs.is_none() {
        return Err(unsupported(d, "a reading with neither total"));
    }
    let ts = time::format_compact(*at_ms, ctx.utc_offset_s)
        .ok_or(unsupported(d, "milliseconds or times outside years 1-9999"))?;
    let mut m = Map::new();
    m.insert("serial".to_owned(), Value::from(push.device.as_str()));
    m.insert("name".to_owned(), Value::from(push.device.as_str()));
    m.insert("timestamp".to_owned(), Value::from(ts));
    if let Some(i) = ins {
        m.insert("in".to_owned(), Value::from(*i));
    }
    if let Some(o) = outs {
        m.insert("out".to_owned(), Value::from(*o));
    }
    Ok(Value::Object(m).to_string().into_bytes())
}
