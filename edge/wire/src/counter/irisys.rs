//! Irisys Vector 4D count-log push ([`Dialect::Irisys`]):
//! `{"FriendlyDeviceSerial", "CountLogs": [{"LogEntryId", "Timestamp", "Counts": [{"Name",
//! "RegisterId", "Value"}]}]}`.
//!
//! Registers are running totals that only grow until the device loses power, so every log
//! entry gives [`Reading::Cumulative`] readings at its `Timestamp`; differencing (and reset
//! detection) happens elsewhere. Registers are mapped to lines by `Name`:
//!
//! - a name ending in ` In` or ` Out` (any case) is that direction of the line named without
//!   the suffix: `Line 1 In` and `Line 1 Out` become one reading for `Line 1` with both
//!   totals;
//! - any other name is the `ins` total of the line of that name (`outs` is `None`): many
//!   installations count one direction per register;
//! - registers named `Dwell` or `Occupancy` (any case) are not people counts and are
//!   skipped (see [`SKIPPED_REGISTERS`]);
//! - two registers for the same line and direction in one entry are
//!   [`CounterError::Inconsistent`].
//!
//! Lines appear in the order of their first register in the entry. `LogEntryId` and
//! `RegisterId` are not used. The device is `FriendlyDeviceSerial`. Timestamps are UTC (`Z`);
//! one written without a zone is local ([`ParseContext::utc_offset_s`]).

use serde_json::{json, Value};

use super::json::{self, Path, Reader};
use super::{plain_push, time, unsupported, CounterError, Dialect, ParseContext, Push, Reading};

/// Register names (compared ignoring ASCII case) that hold something other than a count.
pub const SKIPPED_REGISTERS: [&str; 2] = ["Dwell", "Occupancy"];

/// The line and direction of a register name: `(line, is_out)`; `is_out` is `None` for a
/// name without a direction suffix.
fn split_register(name: &str) -> (&str, Option<bool>) {
    let b = name.as_bytes();
    let ends = |suffix: &[u8]| {
        b.len() >= suffix.len()
            && b.get(b.len() - suffix.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
    };
    // The suffixes are ASCII, so cutting them leaves a char boundary.
    if ends(b" in") {
        (name.get(..name.len() - 3).unwrap_or(name), Some(false))
    } else if ends(b" out") {
        (name.get(..name.len() - 4).unwrap_or(name), Some(true))
    } else {
        (name, None)
    }
}

/// Reads a count-log push.
pub(super) fn parse(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::Irisys;
    let r = Reader { d };
    let v = json::from_slice(d, body)?;
    let root = Path::ROOT;
    let m = r.obj(&v, &root)?;
    let mut push = Push {
        device: r.first_name(m, &["FriendlyDeviceSerial"], &root)?,
        ..Push::default()
    };
    let lp = root.key("CountLogs");
    let logs = r.array(r.req(m, "CountLogs", &root)?, &lp)?;
    for (i, log) in logs.iter().enumerate() {
        let ip = lp.index(i);
        let lm = r.obj(log, &ip)?;
        let tp = ip.key("Timestamp");
        let at = r.time(r.req(lm, "Timestamp", &ip)?, &tp, ctx.utc_offset_s, false)?;
        let cp = ip.key("Counts");
        let counts = r.array(r.req(lm, "Counts", &ip)?, &cp)?;
        // (line, ins, outs) in order of first appearance; a handful per entry.
        let mut lines: Vec<(String, Option<u64>, Option<u64>)> = Vec::new();
        for (j, c) in counts.iter().enumerate() {
            let jp = cp.index(j);
            let cm = r.obj(c, &jp)?;
            let np = jp.key("Name");
            let name = r.str(r.req(cm, "Name", &jp)?, &np)?;
            if SKIPPED_REGISTERS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name.trim()))
            {
                continue;
            }
            let value = r.count(r.req(cm, "Value", &jp)?, &jp.key("Value"))?;
            let (line, is_out) = split_register(name);
            if line.is_empty() {
                return Err(r.missing(&np));
            }
            let idx = match lines.iter().position(|(l, ..)| l == line) {
                Some(idx) => idx,
                None => {
                    lines.push((r.name(line, &np)?, None, None));
                    lines.len() - 1
                }
            };
            let Some((_, ins, outs)) = lines.get_mut(idx) else {
                continue;
            };
            let slot = if is_out == Some(true) { outs } else { ins };
            if slot.replace(value).is_some() {
                return Err(CounterError::Inconsistent {
                    dialect: d,
                    path: jp.render(),
                    what: "second register for one line and direction",
                });
            }
        }
        push.readings.extend(
            lines
                .into_iter()
                .map(|(line, ins, outs)| Reading::Cumulative {
                    line,
                    at_ms: at,
                    ins,
                    outs,
                }),
        );
    }
    Ok(push)
}

/// Writes a count-log push: one log entry per run of readings with the same time (a new
/// entry when a line repeats), registers named `<line> In` / `<line> Out` so any line name
/// reads back unchanged. `LogEntryId`s count from 1.
pub(super) fn emit(push: &Push, _ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::Irisys;
    plain_push(d, push)?;
    let mut logs: Vec<(i64, Vec<Value>, Vec<&str>)> = Vec::new();
    for r in &push.readings {
        let Reading::Cumulative {
            line,
            at_ms,
            ins,
            outs,
        } = r
        else {
            return Err(unsupported(d, "interval readings"));
        };
        if ins.is_none() && outs.is_none() {
            return Err(unsupported(d, "a reading with neither total"));
        }
        let start_new = match logs.last() {
            Some((at, _, lines)) => at != at_ms || lines.contains(&line.as_str()),
            None => true,
        };
        if start_new {
            logs.push((*at_ms, Vec::new(), Vec::new()));
        }
        let Some((_, regs, lines)) = logs.last_mut() else {
            continue;
        };
        lines.push(line);
        for (suffix, value) in [(" In", ins), (" Out", outs)] {
            if let Some(v) = value {
                let id = regs.len();
                regs.push(json!({"Name": format!("{line}{suffix}"), "RegisterId": id, "Value": v}));
            }
        }
    }
    let mut entries = Vec::with_capacity(logs.len());
    for (k, (at, regs, _)) in logs.into_iter().enumerate() {
        let ts =
            time::format_iso(at, 0, true).ok_or(unsupported(d, "times outside years 1-9999"))?;
        entries.push(json!({"LogEntryId": k + 1, "Timestamp": ts, "Counts": regs}));
    }
    let body = json!({"CountLogs": entries, "FriendlyDeviceSerial": push.device});
    Ok(body.to_string().into_bytes())
}
