//! Store-local calendar arithmetic: which local day and hour a UTC instant falls in.
//!
//! Reports and aggregates are in the store's time zone (a retailer reads "10:00–11:00" as the
//! store's 10 o'clock), while every timestamp inside the pipeline is UTC milliseconds.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Converts UTC milliseconds to the store's local calendar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalClock {
    tz: Tz,
}

impl LocalClock {
    /// A clock for the given IANA zone.
    pub fn new(tz: Tz) -> Self {
        LocalClock { tz }
    }

    /// The zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The local date and time of an instant.
    pub fn local(&self, ts_ms: i64) -> DateTime<Tz> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ts_ms).unwrap_or(DateTime::UNIX_EPOCH);
        utc.with_timezone(&self.tz)
    }

    /// The local date of an instant.
    pub fn date(&self, ts_ms: i64) -> NaiveDate {
        self.local(ts_ms).date_naive()
    }

    /// Days since 1970-01-01 of the local date (used as a compact day index).
    pub fn day_index(&self, ts_ms: i64) -> i32 {
        let d = self.date(ts_ms);
        (d - NaiveDate::default()).num_days() as i32
    }

    /// UTC milliseconds at which the local hour containing `ts_ms` starts.
    pub fn hour_start(&self, ts_ms: i64) -> i64 {
        let l = self.local(ts_ms);
        // Truncating minutes/seconds in local time: for whole-hour offsets this equals UTC
        // truncation; for half-hour zones (e.g. India) it differs, hence done locally.
        let secs_into_hour = i64::from(l.minute()) * 60 + i64::from(l.second());
        let ms_into_second = ts_ms.rem_euclid(1000);
        ts_ms - secs_into_hour * 1000 - ms_into_second
    }

    /// The local hour (0–23) of an instant.
    pub fn hour(&self, ts_ms: i64) -> u32 {
        self.local(ts_ms).hour()
    }

    /// UTC milliseconds of local midnight starting `date` (the earliest if ambiguous).
    pub fn day_start(&self, date: NaiveDate) -> i64 {
        let naive = date.and_time(NaiveTime::MIN);
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.timestamp_millis(),
            chrono::LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
            // Midnight skipped by a DST jump: the day starts an hour later.
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
                .map(|t| t.timestamp_millis())
                .unwrap_or(0),
        }
    }

    /// Splits the interval [start, end) into its parts per local day: (day index, ms).
    pub fn split_by_day(&self, start_ms: i64, end_ms: i64) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        let mut t = start_ms;
        while t < end_ms {
            let day = self.date(t);
            let next = day
                .succ_opt()
                .map(|d| self.day_start(d))
                .unwrap_or(end_ms)
                .max(t + 1);
            let stop = next.min(end_ms);
            out.push((self.day_index(t), stop - t));
            t = stop;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn local_date_hour_and_hour_start() {
        let table = [
            // (tz, instant, local date, local hour, hour start)
            (
                "Asia/Shanghai",
                "2026-11-20T01:59:59Z",
                "2026-11-20",
                9,
                "2026-11-20T01:00:00Z",
            ),
            (
                "Asia/Shanghai",
                "2026-11-20T16:30:00Z",
                "2026-11-21",
                0,
                "2026-11-20T16:00:00Z",
            ),
            (
                "Asia/Kolkata",
                "2026-11-20T10:00:00Z",
                "2026-11-20",
                15,
                "2026-11-20T09:30:00Z",
            ),
            (
                "Europe/Berlin",
                "2026-03-29T01:30:00Z",
                "2026-03-29",
                3,
                "2026-03-29T01:00:00Z",
            ),
        ];
        for (tz, t, date, hour, start) in table {
            let c = LocalClock::new(tz.parse().unwrap());
            assert_eq!(c.date(ms(t)).to_string(), date, "{tz} {t}");
            assert_eq!(c.hour(ms(t)), hour, "{tz} {t}");
            assert_eq!(c.hour_start(ms(t)), ms(start), "{tz} {t}");
        }
    }

    #[test]
    fn split_by_day_covers_the_interval() {
        let c = LocalClock::new("Asia/Shanghai".parse().unwrap());
        let parts = c.split_by_day(ms("2026-11-20T15:00:00Z"), ms("2026-11-20T17:30:00Z"));
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].1, 3_600_000);
        assert_eq!(parts[1].1, 5_400_000);
        assert_eq!(parts[1].0, parts[0].0 + 1);
    }
}
