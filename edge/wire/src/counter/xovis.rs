//! Xovis PC2/PC3 sensors: the firmware 5 push agents ([`Dialect::XovisV5`]) and the
//! firmware ≤ 4.x "data push" ([`Dialect::XovisLegacy`]).
//!
//! # Firmware 5
//!
//! A push is one envelope object or a JSON array of them; the envelope's key names the agent
//! type:
//!
//! - `logics_data`: `package_info {id, agent_id}`, `sensor_info {serial_number, name}` and
//!   `logics[] {id, name, records[] {from, to, counts[] {name, value}}}`. Each record whose
//!   counts include the direction labels becomes one interval of the logic's `name` (its `id`
//!   when the name is missing or empty). `samples` / `samples_expected` are not checked: a
//!   record with fewer samples than expected still holds the people counted.
//! - `live_data` carries per-frame tracking events (`frames[].events[]`): every event of
//!   category `COUNT` with `attributes {counter_id, counter_value}` becomes a
//!   [`Reading::Cumulative`] of line `counter-<counter_id>` at the frame's `time`, `ins` being
//!   the counter's running value (a Xovis counter counts one direction, so each direction is
//!   its own line; the installer lists the entering counters as the door's lines). Events of
//!   other categories and tracked objects are not counts. A `live_data` envelope with a
//!   `logics` member (an agent configured to push logic records as live data) is read like
//!   `logics_data`; one without any count event is listed in [`Push::ignored`] as
//!   `"live_data"`.
//! - `status_data` and `connection_test` are listed in `ignored`.
//! - Any other key is [`CounterError::UnknownEnvelope`]; an empty array is
//!   [`CounterError::Empty`].
//!
//! Times are RFC 3339 strings or, for agents set to the `UNIX_TIME_MS` time format, integers
//! of Unix milliseconds. [`Push::sequence`] is the `(agent_id, id)` of the last data envelope
//! (`logics_data` or logic-shaped `live_data`) that has a `package_info`; `agent_id` is 0 when
//! absent. The device is the first `sensor_info` in the push: `serial_number`, else `name`.
//!
//! # Firmware ≤ 4.x
//!
//! `{"sensor-info": {serial-number, name, …}, "content": {"element": [{element-name,
//! measurement: [{from, to, value: [{value, label}]}]}]}}`: one interval per measurement of
//! the element (`element-id` when the name is missing). Value labels are matched like v5
//! count names. Because this JSON was designed from an XML schema, a list of one may be
//! written as the object itself; both are accepted for `element`, `measurement` and `value`.
//! `sensor-time` and `status` are not used.

use serde_json::{json, Map, Value};

use super::error::sanitize;
use super::json::{self, Path, Reader};
use super::{
    interval, interval_count, plain_push, time, unsupported, CounterError, Dialect, Direction,
    ParseContext, Push, Reading,
};

/// Reads a firmware 5 push.
pub(super) fn parse_v5(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::XovisV5;
    let r = Reader { d };
    let v = json::from_slice(d, body)?;
    let mut push = Push::default();
    let root = Path::ROOT;
    match &v {
        Value::Array(items) if items.is_empty() => return Err(CounterError::Empty { dialect: d }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                envelope(r, item, &root.index(i), ctx, &mut push)?;
            }
        }
        _ => envelope(r, &v, &root, ctx, &mut push)?,
    }
    Ok(push)
}

/// Reads one envelope object into `push`.
fn envelope(
    r: Reader,
    v: &Value,
    p: &Path<'_>,
    ctx: &ParseContext,
    push: &mut Push,
) -> Result<(), CounterError> {
    let m = r.obj(v, p)?;
    if m.is_empty() {
        return Err(CounterError::UnknownEnvelope {
            dialect: r.d,
            found: "{}".to_owned(),
        });
    }
    for (key, body) in m {
        let kp = p.key(key);
        let ignore = match key.as_str() {
            "logics_data" => None,
            "live_data" if body.get("logics").is_some() => None,
            "live_data" => Some("live_data"),
            "status_data" => Some("status_data"),
            "connection_test" => Some("connection_test"),
            other => {
                return Err(CounterError::UnknownEnvelope {
                    dialect: r.d,
                    found: sanitize(other),
                })
            }
        };
        match ignore {
            None => logics_data(r, body, &kp, ctx, push)?,
            Some("live_data") => {
                if !live_data(r, body, &kp, ctx, push)? {
                    push.ignored.push("live_data");
                }
            }
            Some(label) => {
                // Best effort: an ignored envelope names the device only if it says so cleanly.
                if push.device.is_empty() {
                    if let Some(info) = body.get("sensor_info").and_then(Value::as_object) {
                        let ip = kp.key("sensor_info");
                        push.device = r
                            .first_name(info, &["serial_number", "name"], &ip)
                            .unwrap_or_default();
                    }
                }
                push.ignored.push(label);
            }
        }
    }
    Ok(())
}

/// Reads the count events of a `live_data` envelope; false when it holds none (the envelope
/// is then listed as ignored, and its sequence number and device are not taken).
fn live_data(
    r: Reader,
    body: &Value,
    p: &Path<'_>,
    ctx: &ParseContext,
    push: &mut Push,
) -> Result<bool, CounterError> {
    let m = r.obj(body, p)?;
    let mut readings = Vec::new();
    if let Some(frames) = r.opt(m, "frames") {
        let fp = p.key("frames");
        for (i, frame) in r.array(frames, &fp)?.iter().enumerate() {
            let ip = fp.index(i);
            let fm = r.obj(frame, &ip)?;
            let Some(events) = r.opt(fm, "events") else {
                continue;
            };
            let ep = ip.key("events");
            for (j, event) in r.array(events, &ep)?.iter().enumerate() {
                let jp = ep.index(j);
                let em = r.obj(event, &jp)?;
                let category = match r.opt(em, "category") {
                    Some(c) => r.str(c, &jp.key("category"))?,
                    None => continue,
                };
                if category != "COUNT" {
                    continue;
                }
                let ap = jp.key("attributes");
                let am = r.obj(r.req(em, "attributes", &jp)?, &ap)?;
                let id = uint(r, r.req(am, "counter_id", &ap)?, &ap.key("counter_id"))?;
                let value = r.count(r.req(am, "counter_value", &ap)?, &ap.key("counter_value"))?;
                let at = r.time(
                    r.req(fm, "time", &ip)?,
                    &ip.key("time"),
                    ctx.utc_offset_s,
                    true,
                )?;
                readings.push(Reading::Cumulative {
                    line: format!("counter-{id}"),
                    at_ms: at,
                    ins: Some(value),
                    outs: None,
                });
            }
        }
    }
    if readings.is_empty() {
        return Ok(false);
    }
    if let Some(pi) = r.opt(m, "package_info") {
        let pp = p.key("package_info");
        let pm = r.obj(pi, &pp)?;
        let id = uint(r, r.req(pm, "id", &pp)?, &pp.key("id"))?;
        let agent = match r.opt(pm, "agent_id") {
            Some(a) => uint(r, a, &pp.key("agent_id"))?,
            None => 0,
        };
        push.sequence = Some((agent, id));
    }
    if push.device.is_empty() {
        if let Some(info) = r.opt(m, "sensor_info") {
            let ip = p.key("sensor_info");
            push.device = r.first_name(r.obj(info, &ip)?, &["serial_number", "name"], &ip)?;
        }
    }
    push.readings.extend(readings);
    Ok(true)
}

/// A `package_info` or `agent_id` number: a non-negative integer.
fn uint(r: Reader, v: &Value, p: &Path<'_>) -> Result<u64, CounterError> {
    v.as_u64().ok_or_else(|| r.wrong(p, "unsigned integer"))
}

/// Reads a `logics_data` (or logic-shaped `live_data`) envelope body.
fn logics_data(
    r: Reader,
    body: &Value,
    p: &Path<'_>,
    ctx: &ParseContext,
    push: &mut Push,
) -> Result<(), CounterError> {
    let d = r.d;
    let m = r.obj(body, p)?;
    if let Some(pi) = r.opt(m, "package_info") {
        let pp = p.key("package_info");
        let pm = r.obj(pi, &pp)?;
        let id = uint(r, r.req(pm, "id", &pp)?, &pp.key("id"))?;
        let agent = match r.opt(pm, "agent_id") {
            Some(a) => uint(r, a, &pp.key("agent_id"))?,
            None => 0,
        };
        push.sequence = Some((agent, id));
    }
    if let Some(info) = r.opt(m, "sensor_info") {
        let ip = p.key("sensor_info");
        let device = r.first_name(r.obj(info, &ip)?, &["serial_number", "name"], &ip)?;
        if push.device.is_empty() {
            push.device = device;
        }
    }
    let lp = p.key("logics");
    let logics = r.array(r.req(m, "logics", p)?, &lp)?;
    for (i, logic) in logics.iter().enumerate() {
        let ip = lp.index(i);
        let lm = r.obj(logic, &ip)?;
        let line = name_or_id(r, lm, ("name", "id"), &ip)?;
        let Some(records) = r.opt(lm, "records") else {
            continue;
        };
        let rp = ip.key("records");
        for (j, rec) in r.array(records, &rp)?.iter().enumerate() {
            let jp = rp.index(j);
            let rm = r.obj(rec, &jp)?;
            let off = ctx.utc_offset_s;
            let from = r.time(r.req(rm, "from", &jp)?, &jp.key("from"), off, true)?;
            let to = r.time(r.req(rm, "to", &jp)?, &jp.key("to"), off, true)?;
            let cp = jp.key("counts");
            let counts = r.array(r.req(rm, "counts", &jp)?, &cp)?;
            let mut dirs = Directions::default();
            for (k, c) in counts.iter().enumerate() {
                let kp = cp.index(k);
                let cm = r.obj(c, &kp)?;
                let Some(name) = r.opt(cm, "name") else {
                    continue;
                };
                let Some(dir) = ctx.direction(r.str(name, &kp.key("name"))?) else {
                    continue;
                };
                let vp = kp.key("value");
                let value = r.count(r.req(cm, "value", &kp)?, &vp)?;
                let value = interval_count(d, value, || vp.render())?;
                dirs.set(d, dir, value, || kp.render())?;
            }
            if let Some(counts) = dirs.counts() {
                let reading = interval(d, line.clone(), (from, to), counts, || jp.render())?;
                push.readings.push(reading);
            }
        }
    }
    Ok(())
}

/// The in/out values of one record or measurement.
#[derive(Default)]
struct Directions {
    ins: Option<u32>,
    outs: Option<u32>,
}

impl Directions {
    /// Records `value` for `dir`; a second value for the same direction is inconsistent.
    fn set(
        &mut self,
        d: Dialect,
        dir: Direction,
        value: u32,
        path: impl Fn() -> String,
    ) -> Result<(), CounterError> {
        let slot = match dir {
            Direction::In => &mut self.ins,
            Direction::Out => &mut self.outs,
        };
        if slot.replace(value).is_some() {
            return Err(CounterError::Inconsistent {
                dialect: d,
                path: path(),
                what: "second value for one direction",
            });
        }
        Ok(())
    }

    /// `(ins, outs)` with 0 for a missing side, or `None` if neither direction was seen.
    fn counts(&self) -> Option<(u32, u32)> {
        (self.ins.is_some() || self.outs.is_some())
            .then(|| (self.ins.unwrap_or(0), self.outs.unwrap_or(0)))
    }
}

/// A line name: member `keys.0` if it is a non-empty string, else member `keys.1` (a number or
/// non-empty string), else [`CounterError::MissingField`] for `keys.0`.
fn name_or_id(
    r: Reader,
    m: &Map<String, Value>,
    keys: (&'static str, &'static str),
    p: &Path<'_>,
) -> Result<String, CounterError> {
    let (name_key, id_key) = keys;
    if let Some(v) = r.opt(m, name_key) {
        let np = p.key(name_key);
        let name = r.str(v, &np)?;
        if !name.is_empty() {
            return r.name(name, &np);
        }
    }
    let ip = p.key(id_key);
    match r.opt(m, id_key) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => r.name(s, &ip),
        Some(Value::String(_)) | None => Err(r.missing(&p.key(name_key))),
        Some(_) => Err(r.wrong(&ip, "number or string")),
    }
}

/// Reads a firmware ≤ 4.x data push.
pub(super) fn parse_legacy(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::XovisLegacy;
    let r = Reader { d };
    let v = json::from_slice(d, body)?;
    let root = Path::ROOT;
    let m = r.obj(&v, &root)?;
    let mut push = Push::default();
    if let Some(info) = r.opt(m, "sensor-info") {
        let ip = root.key("sensor-info");
        push.device = r.first_name(r.obj(info, &ip)?, &["serial-number", "name"], &ip)?;
    }
    let cp = root.key("content");
    let content = r.obj(r.req(m, "content", &root)?, &cp)?;
    let ep = cp.key("element");
    let elements = r.list(r.req(content, "element", &cp)?, &ep)?;
    let off = ctx.utc_offset_s;
    for (i, el) in elements.iter().enumerate() {
        let ip = ep.index(i);
        let em = r.obj(el, &ip)?;
        let line = name_or_id(r, em, ("element-name", "element-id"), &ip)?;
        let Some(ms) = r.opt(em, "measurement") else {
            continue;
        };
        let mp = ip.key("measurement");
        for (j, meas) in r.list(ms, &mp)?.iter().enumerate() {
            let jp = mp.index(j);
            let mm = r.obj(meas, &jp)?;
            let from = r.time(r.req(mm, "from", &jp)?, &jp.key("from"), off, false)?;
            let to = r.time(r.req(mm, "to", &jp)?, &jp.key("to"), off, false)?;
            let vp = jp.key("value");
            let values = r.list(r.req(mm, "value", &jp)?, &vp)?;
            let mut dirs = Directions::default();
            for (k, val) in values.iter().enumerate() {
                let kp = vp.index(k);
                let vm = r.obj(val, &kp)?;
                let Some(label) = r.opt(vm, "label") else {
                    continue;
                };
                let Some(dir) = ctx.direction(r.str(label, &kp.key("label"))?) else {
                    continue;
                };
                let np = kp.key("value");
                let n = r.count(r.req(vm, "value", &kp)?, &np)?;
                let n = interval_count(d, n, || np.render())?;
                dirs.set(d, dir, n, || kp.render())?;
            }
            if let Some(counts) = dirs.counts() {
                let reading = interval(d, line.clone(), (from, to), counts, || jp.render())?;
                push.readings.push(reading);
            }
        }
    }
    Ok(push)
}

/// An emitted interval: `(line, from, to, seconds, ins, outs)`.
type Row<'a> = (&'a str, String, String, i64, u32, u32);

/// The intervals of `push` with their times written in `ctx`'s offset, grouped into runs of
/// consecutive readings of one line (so reading order survives the round trip).
fn interval_runs<'a>(
    d: Dialect,
    push: &'a Push,
    ctx: &ParseContext,
) -> Result<Vec<Vec<Row<'a>>>, CounterError> {
    let mut runs: Vec<Vec<Row<'a>>> = Vec::new();
    for r in &push.readings {
        let Reading::Interval {
            line,
            start_ms,
            end_ms,
            ins,
            outs,
        } = r
        else {
            return Err(unsupported(d, "cumulative readings"));
        };
        let fmt = |t| {
            time::format_iso(t, ctx.utc_offset_s, false).ok_or(unsupported(
                d,
                "times outside years 1-9999 or an offset that is not whole minutes",
            ))
        };
        let row = (
            line.as_str(),
            fmt(*start_ms)?,
            fmt(*end_ms)?,
            (end_ms - start_ms) / 1000,
            *ins,
            *outs,
        );
        match runs.last_mut() {
            Some(run) if run.first().is_some_and(|first| first.0 == line) => run.push(row),
            _ => runs.push(vec![row]),
        }
    }
    Ok(runs)
}

/// Writes a firmware 5 push: a `logics_data` envelope (one logic per run of readings of a
/// line, ids from 1000), followed, when `ignored` is not empty, by one envelope per ignored
/// label in an array.
pub(super) fn emit_v5(push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::XovisV5;
    ctx.check_labels(d)?;
    let logics: Vec<Value> = interval_runs(d, push, ctx)?
        .into_iter()
        .enumerate()
        .map(|(k, run)| {
            let name = run.first().map_or("", |row| row.0);
            let records: Vec<Value> = run
                .into_iter()
                .map(|(_, from, to, secs, ins, outs)| {
                    json!({
                        "from": from,
                        "to": to,
                        "samples": secs,
                        "samples_expected": secs,
                        "counts": [
                            {"id": 1, "name": ctx.direction_in, "value": ins},
                            {"id": 2, "name": ctx.direction_out, "value": outs},
                        ],
                    })
                })
                .collect();
            json!({"id": 1000 + k, "name": name, "info": "", "records": records})
        })
        .collect();
    let mut env = Map::new();
    if let Some((agent, id)) = push.sequence {
        env.insert(
            "package_info".to_owned(),
            json!({"version": "5.0", "id": id, "agent_id": agent}),
        );
    }
    env.insert(
        "sensor_info".to_owned(),
        json!({"serial_number": push.device, "type": "SINGLE_SENSOR"}),
    );
    env.insert("logics".to_owned(), Value::Array(logics));
    let data = json!({ "logics_data": env });
    let body = if push.ignored.is_empty() {
        data
    } else {
        let mut all = vec![data];
        for &label in &push.ignored {
            all.push(match label {
                "status_data" => json!({"status_data": {"sensor_info": {"serial_number": push.device}, "status": "OK"}}),
                "connection_test" => json!({"connection_test": {"status": "OK"}}),
                "live_data" => json!({"live_data": {"frames": []}}),
                _ => return Err(unsupported(d, "an ignored envelope xovis-v5 does not have")),
            });
        }
        Value::Array(all)
    };
    Ok(body.to_string().into_bytes())
}

/// Writes a firmware ≤ 4.x data push: one element per run of readings of a line.
pub(super) fn emit_legacy(push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::XovisLegacy;
    ctx.check_labels(d)?;
    plain_push(d, push)?;
    let elements: Vec<Value> = interval_runs(d, push, ctx)?
        .into_iter()
        .enumerate()
        .map(|(k, run)| {
            let name = run.first().map_or("", |row| row.0);
            let from = run.first().map_or(String::new(), |row| row.1.clone());
            let to = run.last().map_or(String::new(), |row| row.2.clone());
            let measurements: Vec<Value> = run
                .into_iter()
                .map(|(_, from, to, _, ins, outs)| {
                    json!({
                        "from": from,
                        "to": to,
                        "value": [
                            {"value": ins, "label": ctx.direction_in},
                            {"value": outs, "label": ctx.direction_out},
                        ],
                    })
                })
                .collect();
            json!({
                "element-id": k,
                "element-name": name,
                "sensor-type": "SINGLE_SENSOR",
                "data-type": "LINE",
                "from": from,
                "to": to,
                "resolution": "ONE_MINUTE",
                "measurement": measurements,
            })
        })
        .collect();
    let body = json!({
        "sensor-info": {"serial-number": push.device, "name": push.device, "device-type": "PC2"},
        "status": {"code": "OK"},
        "content": {"element": elements},
    });
    Ok(body.to_string().into_bytes())
}
