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
    /// Share of visitors and passers-by using locally administered random MACs
    /// ([`PhoneMix::Legacy`] only: the `Realistic` mix has its own shares).
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
    /// When set, randomized-MAC devices that are not connected (probe-only phones) and keep one
    /// MAC per visit (every randomized phone of the `Legacy` mix, the `stable_random` class of
    /// the `Realistic` one) change their MAC every `mac_rotation_secs` ± 20 % during a visit
    /// (clamped to at least [`MIN_MAC_ROTATION_SECS`]); `None` keeps one MAC per visit.
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
    /// How the visitors' and passers-by's devices behave on the air (see [`PhoneMix`]);
    /// default [`PhoneMix::Legacy`].
    pub phone_mix: PhoneMix,
    /// Fixed devices of the store (PCs, printers, signage players: global MACs, present from
    /// an hour before opening to an hour after closing on every day, each in one zone, truth
    /// kind staff). `None`: the mix's default ([`PhoneMix::default_fixed_devices`]: none for
    /// `Legacy`, [`DEFAULT_REALISTIC_FIXED_DEVICES`] for `Realistic`). Clamped to
    /// [`MAX_FIXED_DEVICES`].
    pub fixed_devices: Option<u32>,
    /// What is simulated: a store day ([`Scenario::StoreDay`], the default) or a fixed cast
    /// ([`Scenario::CoPresent`], see [`SimParams::co_present_case`]).
    pub scenario: Scenario,
}

/// The population of devices and how each behaves on the air: MAC randomization, 802.11
/// sequence numbers, scan timing and probe IEs ([`crate::truth::Behaviour`] names the classes).
///
/// Whatever the mix, a connected visitor (one that associates with the store AP and logs in
/// through the portal) uses one per-network MAC for its whole visit (randomized unless its
/// class is `global`), the same on every visit, and a continuing sequence counter; staff
/// phones keep their global MAC. RSSI and zones are modelled the same way for every class,
/// and every sniffer hears every frame (a frame's 802.11 channel is not modelled; radiotap
/// shows the sniffer's channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PhoneMix {
    /// Exactly the simulator's population before mixes existed (same seed, same bytes):
    /// a share [`SimParams::randomized_share`] of phones use one locally administered MAC per
    /// visit (rotated with [`SimParams::mac_rotation_secs`]), the others their global MAC;
    /// all keep their sequence counter and send bursts of 1–3 probes every 20–40 s; eight
    /// phone models, drawn uniformly; no fixed devices by default.
    #[default]
    Legacy,
    /// A realistic 2026 mix, as measured on real captures, for visitors and passers-by
    /// (shares of devices, drawn per device; [`SimParams::randomized_share`] is ignored):
    /// - 55 % iOS 16-like iPhones (`ios16`): every scan (every 17–135 s, a per-device period
    ///   ± 10 %) lasts 0.06–1.4 s and crosses 1–4 channels, each with a new random MAC and a
    ///   random sequence number, 1–3 probes (about 2) per MAC;
    /// - 25 % Android 13-like phones (`android13`): every scan (every 20–160 s, a per-device
    ///   period ± 10 %) is one burst of 2–6 probes over 0.1–1 s from a new random MAC, the
    ///   sequence number starting at 0–2;
    /// - 10 % stable randomized MACs (`stable_random`): 8 % older phones (iOS 15-like) plus 2 %
    ///   of the other devices (tablets, watches, EMUI phones with per-network MACs): one
    ///   random MAC per visit, continuing counter, bursts of 1–3 probes every 20–40 s;
    /// - 10 % global MACs (`global`): 7 % laptops and phones without randomization plus 3 % of
    ///   the other devices; continuing counter, bursts as above.
    ///
    /// Every unit of one model (hardware and OS) sends byte-identical probe IEs, so the mix
    /// has one fingerprint class per model: 5 iOS 16-like, 5 Android 13-like, 3 stable and 4
    /// global models, drawn uniformly within the class. With it come
    /// [`DEFAULT_REALISTIC_FIXED_DEVICES`] fixed devices unless
    /// [`SimParams::fixed_devices`] says otherwise.
    Realistic,
}

impl PhoneMix {
    /// Every mix, as the CLI names them.
    pub const ALL: [PhoneMix; 2] = [PhoneMix::Legacy, PhoneMix::Realistic];
    /// The names [`PhoneMix::from_str`](std::str::FromStr) accepts, in [`PhoneMix::ALL`] order.
    pub const NAMES: [&'static str; 2] = ["legacy", "realistic"];
    /// Shares of the `Realistic` classes among visitors and passers-by (they add up to 1).
    pub const REALISTIC_SHARES: [(crate::truth::Behaviour, f64); 4] = [
        (crate::truth::Behaviour::Ios16, 0.55),
        (crate::truth::Behaviour::Android13, 0.25),
        (crate::truth::Behaviour::StableRandom, 0.10),
        (crate::truth::Behaviour::Global, 0.10),
    ];

    /// The mix's name: `legacy` or `realistic`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneMix::Legacy => "legacy",
            PhoneMix::Realistic => "realistic",
        }
    }

    /// Fixed devices the mix brings when [`SimParams::fixed_devices`] is `None`.
    pub fn default_fixed_devices(self) -> u32 {
        match self {
            PhoneMix::Legacy => 0,
            PhoneMix::Realistic => DEFAULT_REALISTIC_FIXED_DEVICES,
        }
    }
}

impl std::fmt::Display for PhoneMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PhoneMix {
    type Err = String;

    /// `legacy` or `realistic` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneMix::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown phone mix {s:?}: expected one of {}",
                    PhoneMix::NAMES.join(", ")
                )
            })
    }
}

/// What [`crate::generate`] simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scenario {
    /// A store period as the other parameters describe it.
    #[default]
    StoreDay,
    /// Eleven phones inside together for about 7 minutes and nobody else, for checking devices
    /// present against a known answer: eight iOS 16-like iPhones of four models (3 + 2 + 2 +
    /// 1 units), one iOS 15-like iPhone and two Android 13-like phones of two models, so 7
    /// fingerprint classes. Each arrives U(0, 30) s after opening and stays 7 min + U(0, 30) s
    /// in one zone (phone `k` in zone `k mod zones`); none connects. [`crate::generate`] sets
    /// the population parameters to match (11 visitors, no passers-by, staff or fixed
    /// devices, one day without history, no returns, rotation, purchases or phoneless
    /// people, the `Realistic` mix); see [`SimParams::co_present_case`].
    CoPresent,
}

/// Phones in [`Scenario::CoPresent`].
pub const CO_PRESENT_PHONES: u32 = 11;
/// Fingerprint classes (models) among the [`Scenario::CoPresent`] phones.
pub const CO_PRESENT_CLASSES: usize = 7;
/// Fixed devices a `Realistic` mix brings by default.
pub const DEFAULT_REALISTIC_FIXED_DEVICES: u32 = 4;
/// Largest [`SimParams::fixed_devices`] accepted.
pub const MAX_FIXED_DEVICES: u32 = 64;

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
    /// purchases per opening hour, 30 % of footfall without a detectable phone, the
    /// [`PhoneMix::Legacy`] population (fixed devices: the mix's default, none) and the
    /// [`Scenario::StoreDay`] scenario.
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
            phone_mix: PhoneMix::Legacy,
            fixed_devices: None,
            scenario: Scenario::StoreDay,
        }
    }

    /// The co-present case ([`Scenario::CoPresent`]): 11 phones in 7 fingerprint classes, all
    /// inside together for about 7 minutes right after opening on `date`, and nobody else; one
    /// zone (set `zones` to spread them), open 1 hour. Its truth's `presence` says 11 people
    /// and 11 devices for the minutes they are all in.
    pub fn co_present_case(seed: u64, date: NaiveDate) -> Self {
        let mut p = SimParams::new(seed, date, CO_PRESENT_PHONES, 1);
        p.scenario = Scenario::CoPresent;
        p.open_hours = 1;
        p.co_present_population();
        p
    }

    /// Forces the population parameters of [`Scenario::CoPresent`].
    pub(crate) fn co_present_population(&mut self) {
        self.visitors = CO_PRESENT_PHONES;
        self.passersby = 0;
        self.staff = 0;
        self.fixed_devices = Some(0);
        self.history_days = 0;
        self.days = 1;
        self.return_share = 0.0;
        self.connected_share = 0.0;
        self.mac_rotation_secs = None;
        self.purchase_share = 0.0;
        self.walkin_purchases_per_hour = 0.0;
        self.undetected_share = 0.0;
        self.phone_mix = PhoneMix::Realistic;
    }

    /// Fixed devices simulated: [`SimParams::fixed_devices`], or the mix's default, at most
    /// [`MAX_FIXED_DEVICES`].
    pub fn fixed_device_count(&self) -> u32 {
        self.fixed_devices
            .unwrap_or_else(|| self.phone_mix.default_fixed_devices())
            .min(MAX_FIXED_DEVICES)
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
        if let Some(n) = self.fixed_devices {
            if n > MAX_FIXED_DEVICES {
                return Err(format!(
                    "fixed_devices must be at most {MAX_FIXED_DEVICES}, got {n}"
                ));
            }
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
