//! Captive-portal login records: FreeRADIUS `detail` accounting files ([`detail`]) and the
//! openNDS BinAuth log ([`binauth`]), plus the small calendar helpers both need.
//!
//! Both formats are text written by other programs that may still be writing them, so the
//! parsers take untrusted bytes or lines, never panic, and say precisely what was wrong (the
//! field or attribute, never its value: values are phone numbers and MAC addresses).
//!
//! Times in these files are wall-clock times of the store with at most a zone abbreviation.
//! edge-wire has no time-zone database, so they come out as *naive local seconds*: seconds
//! since 1970-01-01 00:00:00 of the local calendar, as if the local zone were UTC. The agent
//! resolves them with the store's zone.

pub mod binauth;
pub mod detail;

/// English month abbreviations, January first.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// English month names, for the long spelling some `date` locales print.
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// English weekday abbreviations, Sunday first (the order of `(days + 4) % 7`).
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// English weekday names.
const WEEKDAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Earliest and latest year the date parsers accept (four digits, like the writers print).
const YEARS: core::ops::RangeInclusive<i64> = 1..=9999;

/// Days from 1970-01-01 to `year-month-day` in the proleptic Gregorian calendar
/// (H. Hinnant's `days_from_civil`). `month` is 1–12, `day` 1–31.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month 1–12, day 1–31)`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both casts are exact: 1 <= d <= 31 and 1 <= m <= 12 by construction.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days in `month` of `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Naive seconds since 1970 of a checked calendar date and time of day, or `None` if the
/// date does not exist or the year is outside 1–9999.
pub(crate) fn naive_seconds(year: i64, month: u32, day: u32, secs_of_day: i64) -> Option<i64> {
    if !YEARS.contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + secs_of_day)
}

/// Month number (1–12) of an English month token: `May`, `may`, `MAY`, `September`.
pub(crate) fn month_number(tok: &str) -> Option<u32> {
    let i = MONTHS.iter().zip(MONTH_NAMES).position(|(abbr, name)| {
        tok.eq_ignore_ascii_case(abbr) || tok.eq_ignore_ascii_case(name)
    })?;
    // i < 12.
    u32::try_from(i + 1).ok()
}

/// Whether `tok` is an English weekday, abbreviated or not, any case.
fn is_weekday(tok: &str) -> bool {
    WEEKDAYS
        .iter()
        .zip(WEEKDAY_NAMES)
        .any(|(abbr, name)| tok.eq_ignore_ascii_case(abbr) || tok.eq_ignore_ascii_case(name))
}

/// A decimal number of 1 to `max_digits` ASCII digits (no sign).
pub(crate) fn small_number(tok: &str, max_digits: usize) -> Option<i64> {
    if tok.is_empty() || tok.len() > max_digits || !tok.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok()
}

/// Seconds of the day of `HH:MM:SS` (one- or two-digit hour, an optional `.fraction` that is
/// dropped); a leap second `:60` is accepted and counts into the next minute.
pub(crate) fn time_of_day(tok: &str) -> Option<i64> {
    let tok = match tok.split_once('.') {
        Some((hms, frac))
            if !frac.is_empty() && frac.len() <= 9 && frac.bytes().all(|c| c.is_ascii_digit()) =>
        {
            hms
        }
        Some(_) => return None,
        None => tok,
    };
    let mut parts = tok.split(':');
    let h = small_number(parts.next()?, 2)?;
    let m = parts.next().filter(|p| p.len() == 2)?;
    let s = parts.next().filter(|p| p.len() == 2)?;
    let (m, s) = (small_number(m, 2)?, small_number(s, 2)?);
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// Parses a `ctime`/`date` style time as naive local seconds since 1970.
///
/// Accepted, any case, runs of spaces allowed (ctime pads the day with a space):
/// - `Wed May  1 10:15:00 2024` (`ctime(3)`, the FreeRADIUS `detail` record header);
/// - `Wed May  1 10:15:00 CST 2024` (`date(1)` in the C locale, the openNDS log prefix); the
///   zone (any tokens between the time and the year) is ignored;
/// - `Wed  1 May 10:15:00 CST 2024` (day before month, as some locales print it);
/// - the weekday may be missing; it is not checked against the date.
///
/// Years 1–9999. Returns `None` for anything else.
pub fn parse_ctime(s: &str) -> Option<i64> {
    let mut toks: Vec<&str> = s.split_whitespace().collect();
    if toks
        .first()
        .is_some_and(|t| is_weekday(t.trim_end_matches(',')))
    {
        toks.remove(0);
    }
    let (&year, rest) = toks.split_last()?;
    let [a, b, time, ..] = *rest else {
        return None;
    };
    let (month, day) = match (month_number(a), month_number(b)) {
        (Some(m), None) => (m, b),
        (None, Some(m)) => (m, a),
        _ => return None,
    };
    let day = u32::try_from(small_number(day, 2)?).ok()?;
    let secs = time_of_day(time)?;
    let year = small_number(year, 4)?;
    naive_seconds(year, month, day, secs)
}

/// Writes naive local seconds as a `ctime(3)` line without the newline:
/// `Wed May  1 10:15:00 2024`. [`parse_ctime`] reads it back for years 1–9999.
pub fn format_ctime(naive: i64) -> String {
    let days = naive.div_euclid(86_400);
    let secs = naive.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // rem_euclid(7) is in 0..7 and m in 1..=12, so both indexes are in bounds.
    let wday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let mon = MONTHS[(m - 1) as usize];
    format!(
        "{wday} {mon} {d:>2} {:02}:{:02}:{:02} {y}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 5, 1), 19_844);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-719_162, -1, 0, 1, 19_844, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn ctime_forms() {
        // 2024-05-01 10:15:00 naive = 1714558500.
        let t = 1_714_558_500;
        for s in [
            "Wed May  1 10:15:00 2024",
            "Wed May 1 10:15:00 2024",
            "wed may 01 10:15:00 2024",
            "Wed May  1 10:15:00 CST 2024",
            "Wed  1 May 10:15:00 CST 2024",
            "May  1 10:15:00 2024",
            "Wednesday May  1 10:15:00.250 UTC 2024\r",
        ] {
            assert_eq!(parse_ctime(s), Some(t), "{s}");
        }
        for s in [
            "",
            "Wed May 32 10:15:00 2024",
            "Wed Feb 30 10:15:00 2024",
            "Wed Foo  1 10:15:00 2024",
            "Wed May  1 24:15:00 2024",
            "Wed May  1 10:15 2024",
            "Wed May  1 10:15:00 20245",
            "Wed May  1 10:15:00 0",
            "Wed May May 10:15:00 2024",
            "Wed May  1 10:15:00",
        ] {
            assert_eq!(parse_ctime(s), None, "{s}");
        }
        assert_eq!(format_ctime(t), "Wed May  1 10:15:00 2024");
        assert_eq!(format_ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(parse_ctime("Thu Feb 29 23:59:60 2024"), Some(1_709_251_200));
    }
}
