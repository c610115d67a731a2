//! Hikvision ISAPI people counting: the pushed `EventNotificationAlert`
//! ([`Dialect::HikvisionEvent`]) and the pulled counting search result
//! ([`Dialect::HikvisionSearch`]). Elements are matched by local name, so any namespace
//! (`ver10`, `ver20`, none) is read.
//!
//! # Events
//!
//! `eventType` `PeopleCounting` with `peopleCounting/statisticalMethods`:
//! - `timeRange`: `TimeRange/startTime`, `endTime`, `enter`, `exit` give one
//!   [`Reading::Interval`];
//! - `realTime`: `RealTime/time` and the running `enter` / `exit` give one
//!   [`Reading::Cumulative`];
//! - absent or another method: whichever of `TimeRange` / `RealTime` is present.
//!
//! `pass` (people passing by) is not a crossing and is not read. `isDataRetransmission`
//! (data resent after a network outage) is read like any other event: deduplication by
//! interval happens later. Other event types are recognised and listed in
//! [`Push::ignored`]: `videoloss` (the heartbeat many firmwares send every few seconds) as
//! `"videoloss"`, anything else as `"other_event"`.
//!
//! Events with pictures arrive as `multipart/form-data`. A body that does not start with `<`
//! is searched for the first `<EventNotificationAlert` start tag and read up to its
//! `</EventNotificationAlert>` close tag; that part must be UTF-8 (its own declaration is not
//! consulted) and the other parts (JPEGs) are skipped unread.
//!
//! The line is `channel-<channelID>` (`dynChannelID` on NVRs). The device is
//! `<ipAddress>/channel-<channelID>` (`ipv6Address` when there is no IPv4 one; the device's
//! `macAddress` only when there is neither), because an NVR pushes for many channels from
//! one address. [`emit`](super::emit) needs `device` in that same form.
//!
//! # Search results
//!
//! `CountingStatisticsResult/matchElementList/matchElement` with `timeSpan/startTime`,
//! `timeSpan/endTime`, `enterCount`, `exitCount`: one interval each. The result does not
//! say which channel was searched (the request path does): the line is
//! `channel-<channelID>` if the result has a `channelID`, else `channel-1`, and the device
//! is `""`; the caller knows whom it asked. `responseStatusStrg` `MORE` (another page to
//! fetch) is not reported here.

use super::error::sanitize;
use super::xml::{self, Reader};
use super::{
    interval, interval_count, time, unsupported, CounterError, Dialect, ParseContext, Push, Reading,
};

/// The event root element.
const ALERT: &str = "EventNotificationAlert";

/// The part of `body` to read as XML: all of it unless it is a multipart body, then the
/// `EventNotificationAlert` element.
fn event_xml(d: Dialect, body: &[u8]) -> Result<&[u8], CounterError> {
    let head = body.trim_ascii_start();
    if head.is_empty()
        || head.starts_with(b"<")
        || head.starts_with(b"\xEF\xBB\xBF")
        || head.starts_with(b"\xFF\xFE")
        || head.starts_with(b"\xFE\xFF")
    {
        return Ok(body);
    }
    let open = b"<EventNotificationAlert";
    let start = (0..body.len())
        .find(|&i| {
            body.get(i..).is_some_and(|rest| {
                rest.starts_with(open)
                    && matches!(
                        rest.get(open.len()),
                        Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
                    )
            })
        })
        .ok_or_else(|| CounterError::UnknownEnvelope {
            dialect: d,
            found: "multipart without EventNotificationAlert".to_owned(),
        })?;
    let rest = body.get(start..).unwrap_or_default();
    let close = b"</EventNotificationAlert>";
    let len = rest
        .windows(close.len())
        .position(|w| w == close)
        .map(|p| p + close.len())
        .ok_or(CounterError::MalformedXml {
            dialect: d,
            what: "unclosed_multipart_part",
            line: 0,
            column: 0,
        })?;
    Ok(rest.get(..len).unwrap_or(rest))
}

/// A channel number written canonically (decimal digits, no leading zeros) as a `u32`.
fn channel_number(s: &str) -> Option<u32> {
    let n: u32 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// The device id built from an address and a channel (see the module docs).
pub(super) fn device_id(addr: Option<&str>, channel: Option<u32>) -> String {
    match (addr, channel) {
        (Some(a), Some(c)) => format!("{a}/channel-{c}"),
        (None, Some(c)) => format!("channel-{c}"),
        (Some(a), None) => a.to_owned(),
        (None, None) => String::new(),
    }
}

/// The inverse of [`device_id`]: `(address, channel)`.
fn split_device(device: &str) -> (Option<&str>, Option<u32>) {
    if let Some(at) = device.rfind("channel-") {
        let digits = device.get(at + 8..).unwrap_or_default();
        let prefix = device.get(..at).unwrap_or_default();
        if let Some(c) = channel_number(digits) {
            if prefix.is_empty() {
                return (None, Some(c));
            }
            if let Some(addr) = prefix.strip_suffix('/').filter(|a| !a.is_empty()) {
                return (Some(addr), Some(c));
            }
        }
    }
    ((!device.is_empty()).then_some(device), None)
}

/// Reads an `EventNotificationAlert` push (plain or multipart).
pub(super) fn parse_event(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::HikvisionEvent;
    let r = Reader { d };
    let text = xml::decode(d, event_xml(d, body)?)?;
    let doc = xml::document(d, &text)?;
    let root = doc.root_element();
    if root.tag_name().name() != ALERT {
        return Err(CounterError::UnknownEnvelope {
            dialect: d,
            found: sanitize(root.tag_name().name()),
        });
    }
    let addr = ["ipAddress", "ipv6Address", "macAddress"]
        .into_iter()
        .find_map(|tag| r.opt_text(root, tag));
    let channel = match ["channelID", "dynChannelID"]
        .into_iter()
        .find_map(|tag| r.opt_text(root, tag))
    {
        None => None,
        Some((n, c)) => Some(c.parse::<u32>().map_err(|_| CounterError::WrongType {
            dialect: d,
            path: xml::path(n),
            expected: "channel number",
        })?),
    };
    let device = device_id(addr.as_ref().map(|(_, a)| a.as_ref()), channel);
    let device = match &addr {
        Some((n, _)) => r.name(&device, || xml::path(*n))?,
        None => device,
    };
    let mut push = Push {
        device,
        ..Push::default()
    };
    let (_, event_type) = r.req_text(root, "eventType")?;
    if !event_type.eq_ignore_ascii_case("PeopleCounting") {
        let label = if event_type.eq_ignore_ascii_case("videoloss") {
            "videoloss"
        } else {
            "other_event"
        };
        push.ignored.push(label);
        return Ok(push);
    }
    let channel = channel.ok_or_else(|| r.missing(root, "channelID"))?;
    let line = format!("channel-{channel}");
    let pc = r.req_child(root, "peopleCounting")?;
    let method = r.opt_text(pc, "statisticalMethods").map(|(_, m)| m);
    let real_time = match method.as_deref() {
        Some(m) if m.eq_ignore_ascii_case("timeRange") => false,
        Some(m) if m.eq_ignore_ascii_case("realTime") => true,
        _ => xml::child(pc, "TimeRange").is_none() && xml::child(pc, "RealTime").is_some(),
    };
    let count = |tag: &str| -> Result<u64, CounterError> {
        let (n, t) = r.req_text(pc, tag)?;
        r.count(&t, || xml::path(n))
    };
    let (enter, exit) = (count("enter")?, count("exit")?);
    let when = |parent, tag: &str| -> Result<i64, CounterError> {
        let (n, t) = r.req_text(parent, tag)?;
        time::parse_iso(&t, ctx.utc_offset_s).ok_or_else(|| CounterError::BadTime {
            dialect: d,
            path: xml::path(n),
        })
    };
    let reading = if real_time {
        let rt = r.req_child(pc, "RealTime")?;
        Reading::Cumulative {
            line,
            at_ms: when(rt, "time")?,
            ins: Some(enter),
            outs: Some(exit),
        }
    } else {
        let tr = r.req_child(pc, "TimeRange")?;
        let span = (when(tr, "startTime")?, when(tr, "endTime")?);
        let at = |tag: &'static str| move || format!("{}/{tag}", xml::path(pc));
        let counts = (
            interval_count(d, enter, at("enter"))?,
            interval_count(d, exit, at("exit"))?,
        );
        interval(d, line, span, counts, || xml::path(tr))?
    };
    push.readings.push(reading);
    Ok(push)
}

/// Reads a counting search result.
pub(super) fn parse_search(body: &[u8], ctx: &ParseContext) -> Result<Push, CounterError> {
    let d = Dialect::HikvisionSearch;
    let r = Reader { d };
    let text = xml::decode(d, body)?;
    let doc = xml::document(d, &text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "CountingStatisticsResult" {
        return Err(CounterError::UnknownEnvelope {
            dialect: d,
            found: sanitize(root.tag_name().name()),
        });
    }
    let line = match r.opt_text(root, "channelID") {
        None => "channel-1".to_owned(),
        Some((n, c)) => {
            let c: u32 = c.parse().map_err(|_| CounterError::WrongType {
                dialect: d,
                path: xml::path(n),
                expected: "channel number",
            })?;
            format!("channel-{c}")
        }
    };
    let mut push = Push::default();
    let Some(list) = xml::child(root, "matchElementList") else {
        return Ok(push);
    };
    for me in xml::children(list, "matchElement") {
        let span = r.req_child(me, "timeSpan")?;
        let when = |tag: &str| -> Result<i64, CounterError> {
            let (n, t) = r.req_text(span, tag)?;
            time::parse_iso(&t, ctx.utc_offset_s).ok_or_else(|| CounterError::BadTime {
                dialect: d,
                path: xml::path(n),
            })
        };
        let count = |tag: &str| -> Result<u32, CounterError> {
            let (n, t) = r.req_text(me, tag)?;
            let v = r.count(&t, || xml::path(n))?;
            interval_count(d, v, || xml::path(n))
        };
        let times = (when("startTime")?, when("endTime")?);
        let counts = (count("enterCount")?, count("exitCount")?);
        let reading = interval(d, line.clone(), times, counts, || xml::path(span))?;
        push.readings.push(reading);
    }
    Ok(push)
}

/// Writes an `EventNotificationAlert`: a `PeopleCounting` event for a push of one reading
/// (`timeRange` for an interval, `realTime` for a cumulative reading with both totals), or a
/// `videoLoss` / `VMD` event for a push with no readings and `ignored` `["videoloss"]` /
/// `["other_event"]`. `device` must be `[<address>/]channel-<n>` with the reading's channel.
pub(super) fn emit_event(push: &Push, ctx: &ParseContext) -> Result<Vec<u8>, CounterError> {
    let d = Dialect::HikvisionEvent;
    if push.sequence.is_some() {
        return Err(unsupported(d, "a package sequence"));
    }
    let (addr, channel) = split_device(&push.device);
    if addr.is_some_and(|a| !xml::writable_text(a)) {
        return Err(unsupported(d, "a device address XML text cannot carry"));
    }
    let iso = |t| {
        time::format_iso(t, ctx.utc_offset_s, false).ok_or(unsupported(
            d,
            "times outside years 1-9999 or an offset that is not whole minutes",
        ))
    };
    let (event_type, body) = match (push.readings.as_slice(), push.ignored.as_slice()) {
        ([reading], []) => {
            let want = channel
                .map(|c| format!("channel-{c}"))
                .ok_or(unsupported(d, "a device without a channel"))?;
            if reading.line() != want {
                return Err(unsupported(d, "a line that is not the device's channel"));
            }
            let pc = match *reading {
                Reading::Interval {
                    start_ms,
                    end_ms,
                    ins,
                    outs,
                    ..
                } => format!(
                    "<statisticalMethods>timeRange</statisticalMethods>\n<TimeRange>\n<startTime>{}</startTime>\n<endTime>{}</endTime>\n</TimeRange>\n<enter>{ins}</enter>\n<exit>{outs}</exit>\n<pass>0</pass>",
                    iso(start_ms)?,
                    iso(end_ms)?
                ),
                Reading::Cumulative {
                    at_ms,
                    ins: Some(ins),
                    outs: Some(outs),
                    ..
                } => format!(
                    "<statisticalMethods>realTime</statisticalMethods>\n<RealTime>\n<time>{}</time>\n</RealTime>\n<enter>{ins}</enter>\n<exit>{outs}</exit>\n<pass>0</pass>",
                    iso(at_ms)?
                ),
                Reading::Cumulative { .. } => {
                    return Err(unsupported(d, "a cumulative reading without both totals"))
                }
            };
            (
                "PeopleCounting",
                format!("<peopleCounting>\n{pc}\n</peopleCounting>\n"),
            )
        }
        ([], ["videoloss"]) => ("videoLoss", String::new()),
        ([], ["other_event"]) => ("VMD", String::new()),
        _ => {
            return Err(unsupported(
                d,
                "anything but one reading, or one ignored event and no reading",
            ))
        }
    };
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n",
    );
    if let Some(a) = addr {
        out.push_str("<ipAddress>");
        xml::escape_text(&mut out, a);
        out.push_str("</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n");
    }
    if let Some(c) = channel {
        out.push_str(&format!("<channelID>{c}</channelID>\n"));
    }
    if let Some(t) = push.readings.first().map(|r| match *r {
        Reading::Interval { end_ms, .. } => end_ms,
        Reading::Cumulative { at_ms, .. } => at_ms,
    }) {
        out.push_str(&format!("<dateTime>{}</dateTime>\n", iso(t)?));
    }
    out.push_str(&format!(
        "<activePostCount>1</activePostCount>\n<eventType>{event_type}</eventType>\n<eventState>active</eventState>\n<eventDescription>{event_type} alarm</eventDescription>\n{body}</EventNotificationAlert>\n"
    ));
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_hikvision_device_ids() {
        for (addr, ch, dev) in [
            (Some("192.168.1.64"), Some(1), "192.168.1.64/channel-1"),
            (None, Some(12), "channel-12"),
            (Some("fe80::1"), None, "fe80::1"),
            (Some("a/channel-3"), Some(2), "a/channel-3/channel-2"),
        ] {
            assert_eq!(device_id(addr, ch), dev);
            assert_eq!(split_device(dev), (addr, ch), "{dev}");
        }
        assert_eq!(device_id(None, None), "");
        assert_eq!(split_device(""), (None, None));
        // Not canonical, or no address before the slash: the whole string is the address.
        assert_eq!(split_device("channel-01"), (Some("channel-01"), None));
        assert_eq!(split_device("/channel-1"), (Some("/channel-1"), None));
        assert_eq!(split_device("xchannel-1"), (Some("xchannel-1"), None));
        assert_eq!(channel_number("4294967295"), Some(u32::MAX));
        assert_eq!(channel_number("4294967296"), None);
        assert_eq!(channel_number("+1"), None);
    }
}
