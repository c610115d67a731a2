//! Simulation parameters ([`SimParams`]) and the fixed store layout they select from.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Zone names in sniffer order; a store with `zones = n` uses the first `n`.
pub const ZONE_NAMES: [&str; 8] = [
    "entrance",
    "apparel",
    "checkout",
    "electronics",
    "grocery",
    "home",
    "beauty",
    "toys",
];

/// Everything a simulated day depends on. Same params → byte-identical output.
#[derive(Debug, Clone, PartialEq)]
pub struct SimParams {
    /// Seed of every random draw.
    pub seed: u64,
    /// The main (scored) day, in the store's timezone: the last day of the period.
    pub date: NaiveDate,
    /// Store timezone.
    pub timezone: Tz,
    /// Visitor devices per day of the period (about 8 % of them are short visits).
    pub visitors: u32,
    /// Number of zones/sniffers, 1..=8 (clamped).
    pub zones: u8,
    /// Passers-by walking past the door outside, per day of the period.
    pub passersby: u32,
    /// Staff devices, present on every day of the period and on every history day.
    pub staff: u32,
    /// Share of visitors and passers-by using locally administered random MACs.
    pub randomized_share: f64,
    /// Share of (long-enough) visitors that associate to the store AP.
    pub connected_share: f64,
    /// Local opening hour (0..=23).
    pub open_hour: u32,
    /// Opening duration, hours (at least 1).
    pub open_hours: u32,
    /// Days before the period that contain staff frames only.
    pub history_days: u32,
    /// Days in the simulated period: the `days` days ending on `date` (at least 1; clamped to
    /// 1..=[`MAX_DAYS`]). Every day of the period has visitors, passers-by and staff; 1 is a
    /// single day, exactly as before multi-day periods existed.
    pub days: u32,
    /// Share (0..=1) of each period day's visitors, from the second day on, who are persons
    /// that already visited on an earlier day of the period (returning shoppers; the gap to
    /// their earlier visit varies from the next day to weeks). Ignored when `days` is 1.
    pub return_share: f64,
    /// When set, randomized-MAC devices that are not connected (probe-only phones) change their
    /// MAC every `mac_rotation_secs` ± 20 % during a visit (clamped to at least
    /// [`MIN_MAC_ROTATION_SECS`]); `None` keeps one MAC per visit.
    pub mac_rotation_secs: Option<u32>,
    /// Share (0..=1) of visitor visits (truth kind visitor) that buy: one receipt each, in the
    /// second half of the visit (default [`DEFAULT_PURCHASE_SHARE`]).
    pub purchase_share: f64,
    /// Share (0..=1) of purchases by a logged-in visitor (one with a portal phone) that print
    /// that phone on the receipt's member line (default [`DEFAULT_MEMBER_PHONE_SHARE`]).
    pub member_phone_share: f64,
    /// Purchases per opening hour by shoppers the Wi-Fi never saw, a Poisson process over each
    /// day's opening hours (0..=[`MAX_WALKIN_PURCHASES_PER_HOUR`]; default
    /// [`DEFAULT_WALKIN_PURCHASES_PER_HOUR`]).
    pub walkin_purchases_per_hour: f64,
    /// Share (0..=[`MAX_UNDETECTED_SHARE`]) of each period day's footfall (door entries) made
    /// by people who carry no phone the Wi-Fi can detect: on a day with `n` detected entrants
    /// (visitor devices and walk-in buyers), `round(n × share / (1 − share))` such people arrive
    /// uniformly over the opening hours and stay 3–40 minutes (default
    /// [`DEFAULT_UNDETECTED_SHARE`]). They only appear in the people-counter feeds.
    pub undetected_share: f64,
}

/// Longest period [`SimParams::days`] accepts.
pub const MAX_DAYS: u32 = 400;
/// Shortest MAC rotation interval [`SimParams::mac_rotation_secs`] accepts, seconds.
pub const MIN_MAC_ROTATION_SECS: u32 = 30;
/// Default [`SimParams::purchase_share`].
pub const DEFAULT_PURCHASE_SHARE: f64 = 0.35;
/// Default [`SimParams::member_phone_share`].
pub const DEFAULT_MEMBER_PHONE_SHARE: f64 = 0.6;
/// Default [`SimParams::walkin_purchases_per_hour`].
pub const DEFAULT_WALKIN_PURCHASES_PER_HOUR: f64 = 2.0;
/// Largest [`SimParams::walkin_purchases_per_hour`] accepted: one till, one sale every 30 s.
pub const MAX_WALKIN_PURCHASES_PER_HOUR: f64 = 120.0;
/// Default [`SimParams::undetected_share`]: 30 % of footfall has no detectable phone.
pub const DEFAULT_UNDETECTED_SHARE: f64 = 0.3;
/// Largest [`SimParams::undetected_share`] accepted (a share of 1 would need infinitely many
/// people per detected one).
pub const MAX_UNDETECTED_SHARE: f64 = 0.9;

impl SimParams {
    /// Parameters with the defaults: Asia/Shanghai, passers-by = 2 × visitors, 6 staff,
    /// 35 % randomized MACs, 20 % connected, open 10:00 for 12 hours, 3 history days, a
    /// one-day period (30 % returning shoppers if more days are asked for), no MAC rotation,
    /// 35 % of visitors buying, 60 % of logged-in buyers printing their member phone, 2 walk-in
    /// purchases per opening hour, 30 % of footfall without a detectable phone.
    pub fn new(seed: u64, date: NaiveDate, visitors: u32, zones: u8) -> Self {
        SimParams {
            seed,
            date,
            timezone: chrono_tz::Asia::Shanghai,
            visitors,
            zones,
            passersby: visitors.saturating_mul(2),
            staff: 6,
            randomized_share: 0.35,
            connected_share: 0.2,
            open_hour: 10,
            open_hours: 12,
            history_days: 3,
            days: 1,
            return_share: 0.3,
            mac_rotation_secs: None,
            purchase_share: DEFAULT_PURCHASE_SHARE,
            member_phone_share: DEFAULT_MEMBER_PHONE_SHARE,
            walkin_purchases_per_hour: DEFAULT_WALKIN_PURCHASES_PER_HOUR,
            undetected_share: DEFAULT_UNDETECTED_SHARE,
        }
    }

    /// Checks the ranges; [`crate::generate`] clamps instead of failing, this is for front ends
    /// that prefer to reject bad input.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=8).contains(&self.zones) {
            return Err(format!("zones must be 1..=8, got {}", self.zones));
        }
        if self.open_hour > 23 {
            return Err(format!("open_hour must be 0..=23, got {}", self.open_hour));
        }
        if !(1..=24).contains(&self.open_hours) {
            return Err(format!(
                "open_hours must be 1..=24, got {}",
                self.open_hours
            ));
        }
        if !(1..=MAX_DAYS).contains(&self.days) {
            return Err(format!("days must be 1..={MAX_DAYS}, got {}", self.days));
        }
        if let Some(r) = self.mac_rotation_secs {
            if r < MIN_MAC_ROTATION_SECS {
                return Err(format!(
                    "mac_rotation_secs must be at least {MIN_MAC_ROTATION_SECS}, got {r}"
                ));
            }
        }
        for (name, v) in [
            ("randomized_share", self.randomized_share),
            ("connected_share", self.connected_share),
            ("return_share", self.return_share),
            ("purchase_share", self.purchase_share),
            ("member_phone_share", self.member_phone_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be within 0..=1, got {v}"));
            }
        }
        let rate = self.walkin_purchases_per_hour;
        if !(0.0..=MAX_WALKIN_PURCHASES_PER_HOUR).contains(&rate) {
            return Err(format!(
                "walkin_purchases_per_hour must be within 0..={MAX_WALKIN_PURCHASES_PER_HOUR}, got {rate}"
            ));
        }
        let share = self.undetected_share;
        if !(0.0..=MAX_UNDETECTED_SHARE).contains(&share) {
            return Err(format!(
                "undetected_share must be within 0..={MAX_UNDETECTED_SHARE}, got {share}"
            ));
        }
        Ok(())
    }

    /// Zone count clamped to 1..=8.
    pub fn zone_count(&self) -> usize {
        usize::from(self.zones.clamp(1, 8))
    }

    /// Names of the zones in use.
    pub fn zone_names(&self) -> &'static [&'static str] {
        &ZONE_NAMES[..self.zone_count()]
    }

    /// Number of days in the period, clamped to 1..=[`MAX_DAYS`].
    pub fn period_days(&self) -> u32 {
        self.days.clamp(1, MAX_DAYS)
    }

    /// UTC unix microseconds of `hour:00` local time on `day`.
    pub(crate) fn local_hour_us(&self, day: NaiveDate, hour: u32) -> i64 {
        let midnight = day.and_time(NaiveTime::MIN);
        // Resolve local midnight (if it falls in a DST gap, treat it as UTC rather than fail),
        // then add elapsed hours, so opening hours stay exact across DST changes.
        let base: DateTime<Utc> = match self.timezone.from_local_datetime(&midnight).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => Utc.from_utc_datetime(&midnight),
        };
        (base + Duration::hours(i64::from(hour))).timestamp_micros()
    }

    /// Opening and closing instants of `day`, UTC unix microseconds.
    pub(crate) fn open_close_us(&self, day: NaiveDate) -> (i64, i64) {
        let open = self.local_hour_us(day, self.open_hour.min(23));
        let hours = i64::from(self.open_hours.clamp(1, 24));
        (open, open + hours * 3_600_000_000)
    }
}
