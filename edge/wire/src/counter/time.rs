//! Times in counter payloads: ISO 8601 / RFC 3339 date-times with or without an offset,
//! AXIS's compact `YYYYMMDDhhmmss`, Brickstream's separate date and time of day; and the
//! writers `emit` needs. Everything is Unix milliseconds (UTC) once read.
//!
//! A time written without an offset is the store's wall-clock time: the caller passes the
//! offset to apply ([`ParseContext::utc_offset_s`](super::ParseContext::utc_offset_s) or a
//! device's own time-zone field). Calendar arithmetic is the portal module's.

use crate::portal::{civil_from_days, naive_seconds, small_number};

/// Unix ms of year 1, January 1st, 00:00:00 UTC: the earliest instant we accept.
pub(super) const MIN_MS: i64 = -62_135_596_800_000;
/// Unix ms of the last millisecond of year 9999 UTC: the latest instant we accept.
pub(super) const MAX_MS: i64 = 253_402_300_799_999;

/// Seconds of the day and milliseconds of `HH:MM[:SS[.fraction]]`. The hour has two digits
/// (one is accepted), a leap second `:60` counts into the next minute, the fraction is cut to
/// milliseconds; `24:00[:00]` only when `allow_24` (an end of day).
fn time_of_day_ms(s: &str, allow_24: bool) -> Option<i64> {
    let (hms, frac_ms) = match s.split_once(['.', ',']) {
        Some((hms, frac)) => (hms, fraction_ms(frac)?),
        None => (s, 0),
    };
    let mut parts = hms.split(':');
    let h = small_number(parts.next()?, 2)?;
    let m = small_number(parts.next().filter(|p| p.len() == 2)?, 2)?;
    let sec = match parts.next() {
        Some(p) if p.len() == 2 => small_number(p, 2)?,
        Some(_) => return None,
        None => 0,
    };
    if parts.next().is_some() || m > 59 || sec > 60 {
        return None;
    }
    if h == 24 && allow_24 && m == 0 && sec == 0 && frac_ms == 0 {
        return Some(86_400_000);
    }
    if h > 23 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) * 1000 + frac_ms)
}

/// Milliseconds of a decimal fraction of a second (1 to 9 digits, cut, not rounded).
fn fraction_ms(frac: &str) -> Option<i64> {
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ms = frac.bytes().chain(core::iter::repeat(b'0')).take(3);
    Some(ms.fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
}

/// Naive (local calendar) ms since 1970 of `YYYY-MM-DD`, or `None`.
fn date_ms(s: &str) -> Option<i64> {
    let mut d = s.split('-');
    let year = small_number(d.next().filter(|p| p.len() == 4)?, 4)?;
    let month = u32::try_from(small_number(d.next().filter(|p| p.len() == 2)?, 2)?).ok()?;
    let day = u32::try_from(small_number(d.next().filter(|p| p.len() == 2)?, 2)?).ok()?;
    if d.next().is_some() {
        return None;
    }
    Some(naive_seconds(year, month, day, 0)? * 1000)
}

/// Offset in seconds of `Z`, `±HH:MM`, `±HHMM` or `±HH` (hours up to 23); `None` for an
/// empty zone, `Some(None)` for a bad one.
fn zone_offset_s(zone: &str) -> Option<Option<i64>> {
    let (sign, hm) = match zone.as_bytes() {
        [] => return None,
        [b'Z' | b'z'] => return Some(Some(0)),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return Some(None),
    };
    let digits = |b: &[u8]| -> Option<i64> {
        if b.len() != 2 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    };
    let (h, m) = match hm.len() {
        2 => (digits(hm), Some(0)),
        4 => (digits(hm.get(..2)?), digits(hm.get(2..)?)),
        5 if hm.get(2) == Some(&b':') => (digits(hm.get(..2)?), digits(hm.get(3..)?)),
        _ => return Some(None),
    };
    Some(match (h, m) {
        (Some(h), Some(m)) if h <= 23 && m <= 59 => Some(sign * (h * 3600 + m * 60)),
        _ => None,
    })
}

/// Unix ms of `t` once checked to lie in years 1–9999.
fn in_range(t: i64) -> Option<i64> {
    (MIN_MS..=MAX_MS).contains(&t).then_some(t)
}

/// Unix ms of an ISO 8601 date-time: `YYYY-MM-DD[T| ]HH:MM[:SS[.fff]]` followed by `Z`,
/// `±HH:MM`, `±HHMM`, `±HH` or nothing. Without a zone the time is local and `default_offset_s`
/// (east of UTC) is applied. `None` unless the whole string is such a time in years 1–9999.
pub(super) fn parse_iso(s: &str, default_offset_s: i32) -> Option<i64> {
    let (date, rest) = (s.get(..10)?, s.get(11..)?);
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let day = date_ms(date)?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let tod = time_of_day_ms(time, false)?;
    let offset = zone_offset_s(zone).unwrap_or(Some(i64::from(default_offset_s)))?;
    in_range(day + tod - offset * 1000)
}

/// Unix ms of AXIS's `YYYYMMDDhhmmss`, a local time: `offset_s` is applied.
pub(super) fn parse_compact(s: &str, offset_s: i32) -> Option<i64> {
    if s.len() != 14 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let date = format!("{}-{}-{}", s.get(..4)?, s.get(4..6)?, s.get(6..8)?);
    let time = format!("{}:{}:{}", s.get(8..10)?, s.get(10..12)?, s.get(12..)?);
    let local = date_ms(&date)? + time_of_day_ms(&time, false)?;
    in_range(local - i64::from(offset_s) * 1000)
}

/// Naive (local calendar) ms of a `YYYY-MM-DD` date and an `HH:MM[:SS]` time of day on it;
/// `24:00:00` is the end of the day when `allow_24`.
pub(super) fn local_date_time_ms(date: &str, time: &str, allow_24: bool) -> Option<i64> {
    Some(date_ms(date)? + time_of_day_ms(time, allow_24)?)
}

/// Milliseconds of the day of an `HH:MM[:SS]` time of day; `24:00:00` when `allow_24`.
pub(super) fn time_of_day(time: &str, allow_24: bool) -> Option<i64> {
    time_of_day_ms(time, allow_24)
}

/// Checks Unix ms read as a number (Xovis `UNIX_TIME_MS`) against years 1–9999.
pub(super) fn check_ms(t: i64) -> Option<i64> {
    in_range(t)
}

/// Calendar fields of naive ms: `(year, month, day, hour, minute, second, ms)`, or `None`
/// outside years 1–9999.
fn fields(naive_ms: i64) -> Option<(i64, u32, u32, i64, i64, i64, i64)> {
    let secs = naive_ms.div_euclid(1000);
    let ms = naive_ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    (1..=9999)
        .contains(&y)
        .then_some((y, m, d, sod / 3600, sod / 60 % 60, sod % 60, ms))
}

/// Writes `t` as ISO 8601 in the zone `offset_s` east of UTC: `2024-05-01T10:15:00+08:00`,
/// with `.mmm` when `t` has milliseconds, `Z` instead of the offset when `zulu` (then
/// `offset_s` must be 0). `None` if the offset is not whole minutes within ±23:59 or the
/// local time is outside years 1–9999.
pub(super) fn format_iso(t: i64, offset_s: i32, zulu: bool) -> Option<String> {
    let off = i64::from(offset_s);
    if off % 60 != 0 || off.abs() >= 86_400 || (zulu && off != 0) {
        return None;
    }
    let (y, mo, d, h, mi, s, ms) = fields(t.checked_add(off * 1000)?)?;
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if ms != 0 {
        out.push_str(&format!(".{ms:03}"));
    }
    if zulu {
        out.push('Z');
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60));
    }
    Some(out)
}

/// Writes `t` as AXIS's local `YYYYMMDDhhmmss`; `None` if `t` has milliseconds or the local
/// time is outside years 1–9999.
pub(super) fn format_compact(t: i64, offset_s: i32) -> Option<String> {
    if t.rem_euclid(1000) != 0 {
        return None;
    }
    let (y, mo, d, h, mi, s, _) = fields(t.checked_add(i64::from(offset_s) * 1000)?)?;
    Some(format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}"))
}

/// The local `(YYYY-MM-DD, HH:MM:SS)` of `t` (whole seconds) in the zone `offset_s` east of
/// UTC, or `None` outside years 1–9999.
pub(super) fn format_local_date_time(t: i64, offset_s: i32) -> Option<(String, String)> {
    let (y, mo, d, h, mi, s, _) = fields(t.checked_add(i64::from(offset_s) * 1000)?)?;
    Some((
        format!("{y:04}-{mo:02}-{d:02}"),
        format!("{h:02}:{mi:02}:{s:02}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01T02:15:00Z.
    const T: i64 = 1_714_529_700_000;

    #[test]
    fn counter_iso_forms() {
        let h8 = 8 * 3600;
        for (s, default, want) in [
            ("2024-05-01T10:15:00+08:00", 0, Some(T)),
            ("2024-05-01T10:15:00+0800", 0, Some(T)),
            ("2024-05-01T10:15:00+08", 0, Some(T)),
            ("2024-05-01T02:15:00Z", h8, Some(T)),
            ("2024-05-01t02:15:00z", h8, Some(T)),
            ("2024-05-01 02:15:00Z", h8, Some(T)),
            ("2024-05-01T10:15:00", h8, Some(T)),
            ("2024-05-01T10:15", h8, Some(T)),
            ("2024-05-01T02:15:00.5Z", 0, Some(T + 500)),
            ("2024-05-01T02:15:00.123456789Z", 0, Some(T + 123)),
            ("2024-05-01T02:15:00,25Z", 0, Some(T + 250)),
            ("2024-04-30T21:15:00-05:00", 0, Some(T)),
            ("2024-05-01T02:14:60Z", 0, Some(T)),
            ("0001-01-01T00:00:00Z", 0, Some(MIN_MS)),
            ("9999-12-31T23:59:59.999Z", 0, Some(MAX_MS)),
            ("", 0, None),
            ("2024-05-01", 0, None),
            ("2024-05-01T", 0, None),
            ("2024-05-01X10:15:00Z", 0, None),
            ("2024-5-01T10:15:00Z", 0, None),
            ("2024-02-30T10:15:00Z", 0, None),
            ("2024-05-01T24:00:00Z", 0, None),
            ("2024-05-01T10:60:00Z", 0, None),
            ("2024-05-01T10:15:00+8", 0, None),
            ("2024-05-01T10:15:00+24:00", 0, None),
            ("2024-05-01T10:15:00+08:00:00", 0, None),
            ("2024-05-01T10:15:00.Z", 0, None),
            ("2024-05-01T10:15:00.1234567890Z", 0, None),
            ("2024-05-01T10:15:00 Z", 0, None),
            ("0001-01-01T00:00:00+01:00", 0, None),
            ("0000-12-31T23:00:00Z", 0, None),
            ("2024-05-01T10:15:00Zjunk", 0, None),
            ("2024-05-01T1０:15:00Z", 0, None),
        ] {
            assert_eq!(parse_iso(s, default), want, "{s}");
        }
    }

    #[test]
    fn counter_compact_and_local_forms() {
        assert_eq!(parse_compact("20240501101500", 8 * 3600), Some(T));
        assert_eq!(parse_compact("20240501021500", 0), Some(T));
        for s in [
            "2024050110150",
            "202405011015000",
            "2024050110150x",
            "20241301101500",
        ] {
            assert_eq!(parse_compact(s, 0), None, "{s}");
        }
        assert_eq!(local_date_time_ms("2024-05-01", "02:15:00", false), Some(T));
        assert_eq!(local_date_time_ms("2024-05-01", "02:15", false), Some(T));
        assert_eq!(
            local_date_time_ms("2024-04-30", "24:00:00", true),
            Some(T - 8_100_000)
        );
        assert_eq!(local_date_time_ms("2024-04-30", "24:00:00", false), None);
        assert_eq!(local_date_time_ms("2024-04-30", "24:00:01", true), None);
        assert_eq!(time_of_day("23:59:59", false), Some(86_399_000));
    }

    #[test]
    fn counter_time_writers() {
        assert_eq!(
            format_iso(T, 8 * 3600, false).as_deref(),
            Some("2024-05-01T10:15:00+08:00")
        );
        assert_eq!(
            format_iso(T + 7, -(5 * 3600 + 1800), false).as_deref(),
            Some("2024-04-30T20:45:00.007-05:30")
        );
        assert_eq!(
            format_iso(T, 0, true).as_deref(),
            Some("2024-05-01T02:15:00Z")
        );
        assert_eq!(format_iso(T, 30, false), None);
        assert_eq!(format_iso(T, 3600, true), None);
        assert_eq!(format_iso(MIN_MS - 1, 0, true), None);
        assert_eq!(format_iso(i64::MAX, 3600, false), None);
        assert_eq!(
            format_compact(T, 8 * 3600).as_deref(),
            Some("20240501101500")
        );
        assert_eq!(format_compact(T + 1, 0), None);
        assert_eq!(
            format_local_date_time(T, 8 * 3600),
            Some(("2024-05-01".to_owned(), "10:15:00".to_owned()))
        );
        for (t, off) in [
            (T, 0),
            (T + 999, 3600),
            (MIN_MS, 0),
            (MAX_MS, 0),
            (-1, -3600),
        ] {
            let s = format_iso(t, off, false).unwrap();
            assert_eq!(parse_iso(&s, 0), Some(t), "{s}");
        }
    }
}
