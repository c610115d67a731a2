//! Brickstream 2D/3D counters' XML push ([`Dialect::Brickstream`]):
//!
//! ```text
//! <Metrics SiteId DeviceId Devicename>
//!  <Properties><Timezone>8</Timezone><DST>0</DST><SerialNumber>…</SerialNumber>…</Properties>
//!  <ReportData Interval="1"><Report Date="2024-05-01">
//!   <Object Name="Line1" …><Count StartTime="10:14:00" EndTime="10:15:00"
//!          UnixStartTime="1714529640" Enters="3" Exits="1" Status="0"/></Object>
//! </Report></ReportData></Metrics>
//! ```
//!
//! Every `Count` is one [`Reading::Interval`] of its `Object`'s `Name`.
//!
//! Times: `Date` + `StartTime` are local; the zone is `Timezone` hours east of UTC (fractions
//! such as `5.5` allowed, at most ±14) plus one hour when `DST` is `1`. Without `Timezone`,
//! [`ParseContext::utc_offset_s`] applies. When `UnixStartTime` is present it is the start:
//! it comes from the device's UTC clock, while the local time depends on zone settings that
//! installers get wrong. If the two differ by a whole number of quarter hours (a wrong
//! `Timezone` or `DST`), `UnixStartTime` wins silently; any other difference means the record
//! is corrupt and is [`CounterError::Inconsistent`]. The length comes from `EndTime` −
//! `StartTime` (an `EndTime` at or before `StartTime` crosses midnight; `24:00:00` is
//! accepted), or from `ReportData`'s `Interval` minutes when `EndTime` is absent. `Status`
//! is not interpreted.
//!
//! The device is `Properties/SerialNumber`, else the `DeviceId`, else the `Devicename`
//! attribute of `Metrics`. `MacAddress` is never used.

use super::xml::{self, Reader};
use super::{
    interval, interval_count, plain_push, time, unsupported, CounterError, Dialect, ParseContext,
    Push, Reading,
};

/// Largest `Timezone` magnitude, in seconds (UTC+14 is the easternmost zone).
const MAX_ZONE_S: i64 = 14 * 3600;

/// Seconds east of UTC of a `Timezone` value in hours: `8`, `-5`, `+5.5`, `5.75`.
fn zone_hours_s(s: &str) -> Option<i64> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let all_digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || int.len() > 2 || frac.len() > 2 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let h: i64 = int.parse().ok()?;
    // Hundredths of an hour are 36 s each: "5" -> 50 hundredths.
    let hundredths: i64 = format!("{frac:0<2}").parse().ok()?;
    let secs = h * 3600 + hundredths * 36;
    (secs <= MAX_ZONE_S).then_some(sign * secs)
}

/// `Timezone` value for `offset_s` (whole quarter hours within ±14 h): `8`, `-5`, `5.50`.
fn zone_hours_text(offset_s: i32) -> Option<String> {
    let off = i64::from(offset_s);
    if off % 900 != 0 || off.abs() > MAX_ZONE_S {
        return None;
    }
    let sign = if off < 0 { "-" } else { "" };
    let a = off.abs();
    Some(if a % 3600 == 0 {
        format!("{sign}{}", a / 3600)
    } else {
        format!("{sign}{}.{:02}", a / 3600, a % 3600 / 36)
    })
}

/// Unix ms of a `UnixStartTime`: signed decimal seconds (negative before 1970), within
/// years 1–9999.
fn unix_seconds_ms(s: &str) -> Option<i64> {
    if !is_integer(s) {
        return None;
    }
    let secs: i64 = s.trim().parse().ok()?;
    time::check_ms(secs.checked_mul(1000)?)
}

/// Whether `s` (trimmed) is an optionally negative run of decimal digits.
fn is_integer(s: &str) -> bool {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// Reads a `Metrics` push.
pub(super) fn parse(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::Brickstream;
    let r = Reader { d };
    let text = xml::decode(d, body)?;
    let doc = xml::document(d, &text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "Metrics" {
        return Err(CounterError::UnknownEnvelope {
            dialect: d,
            found: super::error::sanitize(root.tag_name().name()),
        });
    }
    let props = xml::child(root, "Properties");
    let serial = props.and_then(|p| r.opt_text(p, "SerialNumber"));
    let device = match serial {
        Some((n, s)) => r.name(&s, || xml::path(n))?,
        None => {
            let attr = ["DeviceId", "Devicename"]
                .into_iter()
                .find_map(|a| root.attribute(a).filter(|v| !v.is_empty()).map(|v| (a, v)));
            match attr {
                Some((a, v)) => r.name(v, || format!("{}/@{a}", xml::path(root)))?,
                None => String::new(),
            }
        }
    };
    let offset_s = match props.and_then(|p| r.opt_text(p, "Timezone")) {
        None => i64::from(ctx.utc_offset_s),
        Some((n, tz)) => {
            let zone = zone_hours_s(&tz).ok_or_else(|| CounterError::BadTime {
                dialect: d,
                path: xml::path(n),
            })?;
            let dst = match props.and_then(|p| r.opt_text(p, "DST")) {
                None => 0,
                Some((_, v)) if v == "0" || v.eq_ignore_ascii_case("false") => 0,
                Some((_, v)) if v == "1" || v.eq_ignore_ascii_case("true") => 3600,
                Some((n, _)) => {
                    return Err(CounterError::WrongType {
                        dialect: d,
                        path: xml::path(n),
                        expected: "0 or 1",
                    })
                }
            };
            zone + dst
        }
    };
    let rd = r.req_child(root, "ReportData")?;
    let interval_ms = match rd.attribute("Interval") {
        None => None,
        Some(v) => {
            let at = || format!("{}/@Interval", xml::path(rd));
            match r.count(v, at)? {
                m @ 1..=1440 => Some(i64::try_from(m).unwrap_or(1) * 60_000),
                _ => {
                    return Err(CounterError::WrongType {
                        dialect: d,
                        path: at(),
                        expected: "minutes from 1 to 1440",
                    })
                }
            }
        }
    };
    let mut push = Push {
        device,
        ..Push::default()
    };
    for report in xml::children(rd, "Report") {
        let date = r.req_attr(report, "Date")?;
        let bad_time = |n, what: &str| CounterError::BadTime {
            dialect: d,
            path: format!("{}/@{what}", xml::path(n)),
        };
        let midnight = time::local_date_time_ms(date, "00:00:00", false)
            .ok_or_else(|| bad_time(report, "Date"))?;
        for object in xml::children(report, "Object") {
            let name = r.req_attr(object, "Name")?;
            if name.is_empty() {
                return Err(r.missing(object, "@Name"));
            }
            let line = r.name(name, || format!("{}/@Name", xml::path(object)))?;
            for count in xml::children(object, "Count") {
                let st = r.req_attr(count, "StartTime")?;
                let start_tod =
                    time::time_of_day(st, false).ok_or_else(|| bad_time(count, "StartTime"))?;
                let local_start = midnight + start_tod - offset_s * 1000;
                let start = match count.attribute("UnixStartTime") {
                    None => local_start,
                    Some(u) => {
                        let at = || format!("{}/@UnixStartTime", xml::path(count));
                        let ms = match unix_seconds_ms(u) {
                            Some(ms) => ms,
                            // Digits that do not fit are a time out of range.
                            None if is_integer(u) => return Err(bad_time(count, "UnixStartTime")),
                            None => {
                                return Err(CounterError::WrongType {
                                    dialect: d,
                                    path: at(),
                                    expected: "integer Unix seconds",
                                })
                            }
                        };
                        if (ms - local_start) % 900_000 != 0 {
                            return Err(CounterError::Inconsistent {
                                dialect: d,
                                path: at(),
                                what: "UnixStartTime and local StartTime differ by other than a zone offset",
                            });
                        }
                        ms
                    }
                };
                let len = match count.attribute("EndTime") {
                    Some(et) => {
                        let end_tod = time::time_of_day(et, true)
                            .ok_or_else(|| bad_time(count, "EndTime"))?;
                        let len = end_tod - start_tod;
                        // Counts are shorter than a day, so an end at or before the start
                        // is on the next day.
                        if len <= 0 {
                            len + 86_400_000
                        } else {
                            len
                        }
                    }
                    None => interval_ms.ok_or_else(|| r.missing(count, "@EndTime"))?,
                };
                let end = time::check_ms(start + len).ok_or_else(|| bad_time(count, "EndTime"))?;
                let start = time::check_ms(start).ok_or_else(|| bad_time(count, "StartTime"))?;
                let dir = |attr: &str| -> Result<u32, CounterError> {
                    let at = || format!("{}/@{attr}", xml::path(count));
                    let n = r.count(r.req_attr(count, attr)?, at)?;
                    interval_count(d, n, at)
                };
                let counts = (dir("Enters")?, dir("Exits")?);
                let reading = interval(d, line.clone(), (start, end), counts, || xml::path(count))?;
                push.readings.push(reading);
            }
        }
    }
    Ok(push)
}

/// Writes a `Metrics` push in the zone of `ctx.utc_offset_s` (whole quarter hours): one
/// `Report`/`Object` per run of consecutive readings with the same local date and line, every
/// `Count` with `StartTime`, `EndTime` and `UnixStartTime`. Times must be whole seconds and
/// intervals at most a day long.
pub(super) fn emit(push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::Brickstream;
    plain_push(d, push)?;
    let tz = zone_hours_text(ctx.utc_offset_s).ok_or(unsupported(
        d,
        "an offset that is not whole quarter hours within 14 h",
    ))?;
    let dev = push.device.as_str();
    if !xml::writable_text(dev) {
        return Err(unsupported(d, "a device name XML text cannot carry"));
    }
    let mut counts = String::new();
    let mut run: Option<(String, &str)> = None;
    let mut transmit = 0;
    let mut first_len = None;
    for (k, rd) in push.readings.iter().enumerate() {
        let Reading::Interval {
            line,
            start_ms,
            end_ms,
            ins,
            outs,
        } = rd
        else {
            return Err(unsupported(d, "cumulative readings"));
        };
        let len = end_ms - start_ms;
        if start_ms % 1000 != 0 || end_ms % 1000 != 0 || len > 86_400_000 {
            return Err(unsupported(
                d,
                "milliseconds or intervals longer than a day",
            ));
        }
        if !xml::writable_attr(line) {
            return Err(unsupported(d, "a line name an XML attribute cannot carry"));
        }
        let local = |t| {
            time::format_local_date_time(t, ctx.utc_offset_s)
                .ok_or(unsupported(d, "times outside years 1-9999"))
        };
        let (date, start) = local(*start_ms)?;
        let (_, end) = local(*end_ms)?;
        first_len.get_or_insert(len);
        transmit = transmit.max(end_ms / 1000);
        if run.as_ref() != Some(&(date.clone(), line.as_str())) {
            if run.is_some() {
                counts.push_str("</Object></Report>\n");
            }
            counts.push_str(&format!("  <Report Date=\"{date}\"><Object Id=\"{k}\""));
            if !dev.is_empty() {
                counts.push_str(" DeviceId=\"");
                xml::escape_attr(&mut counts, dev);
                counts.push_str("\" Devicename=\"");
                xml::escape_attr(&mut counts, dev);
                counts.push('"');
            }
            counts.push_str(" ObjectType=\"0\" Name=\"");
            xml::escape_attr(&mut counts, line);
            counts.push_str(&format!("\" ExternalId=\"{k}\">\n"));
            run = Some((date, line.as_str()));
        }
        counts.push_str(&format!(
            "   <Count StartTime=\"{start}\" EndTime=\"{end}\" UnixStartTime=\"{}\" Enters=\"{ins}\" Exits=\"{outs}\" Status=\"0\"/>\n",
            start_ms / 1000
        ));
    }
    if run.is_some() {
        counts.push_str("</Object></Report>\n");
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Metrics SiteId=\"\" Sitename=\"\"",
    );
    if !dev.is_empty() {
        out.push_str(" DeviceId=\"");
        xml::escape_attr(&mut out, dev);
        out.push_str("\" Devicename=\"");
        xml::escape_attr(&mut out, dev);
        out.push('"');
    }
    out.push_str(&format!(
        ">\n <Properties><Version>5</Version><TransmitTime>{transmit}</TransmitTime><Timezone>{tz}</Timezone><DST>0</DST>"
    ));
    if !dev.is_empty() {
        out.push_str("<SerialNumber>");
        xml::escape_text(&mut out, dev);
        out.push_str("</SerialNumber>");
    }
    out.push_str("</Properties>\n <ReportData");
    if let Some(len) = first_len.filter(|l| l % 60_000 == 0) {
        out.push_str(&format!(" Interval=\"{}\"", len / 60_000));
    }
    out.push_str(">\n");
    out.push_str(&counts);
    out.push_str(" </ReportData>\n</Metrics>\n");
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_brickstream_zone_hours() {
        for (s, want) in [
            ("8", Some(28_800)),
            ("+8", Some(28_800)),
            ("-5", Some(-18_000)),
            ("5.5", Some(19_800)),
            ("5.75", Some(20_700)),
            ("-3.50", Some(-12_600)),
            ("0", Some(0)),
            ("14", Some(50_400)),
            ("14.25", None),
            ("15", None),
            ("", None),
            ("8h", None),
            ("5.555", None),
            ("-", None),
            (".5", None),
        ] {
            assert_eq!(zone_hours_s(s), want, "{s}");
        }
        for off in [0, 28_800, -18_000, 19_800, 20_700, -1800, -50_400] {
            let t = zone_hours_text(off).unwrap();
            assert_eq!(zone_hours_s(&t), Some(i64::from(off)), "{t}");
        }
        assert_eq!(zone_hours_text(100), None);
        assert_eq!(unix_seconds_ms("1714529640"), Some(1_714_529_640_000));
        assert_eq!(unix_seconds_ms(" -39972342600 "), Some(-39_972_342_600_000));
        for s in [
            "",
            "-",
            "+1",
            "1.5",
            "99999999999999",
            "-99999999999999999999",
        ] {
            assert_eq!(unix_seconds_ms(s), None, "{s}");
        }
        assert_eq!(zone_hours_text(15 * 3600), None);
    }
}
