//! The day report: the metrics of design §6 for one local date, computed from stored visits.
//!
//! A metric whose source is not configured is `None` (JSON `null`), never 0: "no counter
//! installed" and "nobody came in" are different facts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::aggregate::{dwell_bucket, DWELL_BUCKET_NAMES};
use crate::params::DEFINITIONS_VERSION;
use crate::presence::{Calibration, Estimate, PresenceRecord};
use crate::session::VisitClass;
use crate::time::LocalClock;

/// A stored visit as the report needs it (zone names rather than ids: zone ids are a config
/// detail, names are what the retailer reads).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportVisit {
    /// Classification.
    pub class: VisitClass,
    /// Start, UTC ms.
    pub start_ms: i64,
    /// Dwell, ms.
    pub dwell_ms: i64,
    /// Zone path with dwell per zone (ms).
    pub path: Vec<(String, i64)>,
    /// Logged in via the captive portal during the visit.
    pub connected: bool,
    /// Carries a person key.
    pub identified: bool,
    /// Counting group of a randomized, probe-only MAC (visits sharing it are one device).
    pub group: Option<String>,
    /// Time inside, ms.
    pub inside_ms: i64,
    /// Sightings that made the visit.
    pub sightings: u32,
    /// The MAC was randomized.
    pub randomized: bool,
}

/// Which kinds of source the store has configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredSources {
    /// Wi-Fi sniffers.
    pub wifi: bool,
    /// Captive-portal logins.
    pub portal: bool,
    /// People counters.
    pub counter: bool,
    /// POS receipts.
    pub pos: bool,
}

/// Everything the report is computed from.
#[derive(Debug, Clone)]
pub struct ReportInputs<'a> {
    /// The local date reported on.
    pub date: NaiveDate,
    /// The store's clock.
    pub clock: LocalClock,
    /// Visits that started on `date` (local).
    pub visits: &'a [ReportVisit],
    /// Configured sources.
    pub sources: ConfiguredSources,
    /// Door counts, when counters are configured.
    pub doors: Option<DoorCounts>,
    /// Receipt totals, when a POS source is configured.
    pub pos: Option<PosTotals>,
    /// Only visits that started in these local hours of `date` (footfall and sales, when
    /// given, must cover the same window).
    pub hours: Option<HourWindow>,
    /// Inside time from which a visit is a visitor's (`metrics.min_visit_dwell`), for visits
    /// merged from a rotating MAC's pieces.
    pub min_visit_dwell_ms: i64,
    /// Local hours of `date` whose hourly records a step of the gateway's clock touched
    /// (`clock_step`); their visits were cut at the step, so figures there are less certain.
    pub clock_step_hours: &'a [u8],
    /// The date's presence bins (newest revision of each), whole store and zones.
    pub presence: &'a [PresenceRecord],
    /// The calibration of devices into people the newest of those bins used.
    pub calibration: Option<&'a Calibration>,
}

/// One 10-minute presence bin of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceReportBin {
    /// Store-local start, RFC 3339.
    pub start: String,
    /// Length, minutes.
    pub minutes: u32,
    /// Zone; `null`: the whole store.
    pub zone: Option<String>,
    /// Devices present (tracked + estimated) and its interval.
    pub devices: f64,
    /// Lower end.
    pub devices_low: f64,
    /// Upper end.
    pub devices_high: f64,
    /// The tracked part of `devices` (devices with a stable identity, measured).
    pub devices_tracked: f64,
    /// The estimated part (devices probing with per-scan random MACs).
    pub devices_estimated: f64,
    /// People present; `null` while uncalibrated.
    pub people: Option<f64>,
    /// Lower end.
    pub people_low: Option<f64>,
    /// Upper end.
    pub people_high: Option<f64>,
}

/// Presence of one local hour, whole store: the mean of its bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceHour {
    /// Local hour, 0–23.
    pub hour: u32,
    /// Bins of the hour that were measured (of 6).
    pub bins: u32,
    /// Devices present, mean over the bins.
    pub devices: f64,
    /// Lower end.
    pub devices_low: f64,
    /// Upper end.
    pub devices_high: f64,
    /// People present, mean over the bins; `null` while uncalibrated.
    pub people: Option<f64>,
    /// Lower end.
    pub people_low: Option<f64>,
    /// Upper end.
    pub people_high: Option<f64>,
}

/// Defaults of the flow model while the day has too few tracked visits to learn from.
pub mod flow_defaults {
    /// Fewest tracked visits (of a class) to take their times from.
    pub const MIN_TRACKED: usize = 10;
    /// A visitor's time inside, minutes.
    pub const VISITOR_INSIDE_MIN: f64 = 20.0;
    /// A passer-by's time heard, minutes.
    pub const PASSERBY_HEARD_MIN: f64 = 2.0;
    /// Share of untracked inside time that is visitors'.
    pub const VISITOR_SHARE: f64 = 0.9;
}

/// How the untracked flows were estimated (Little's law on the presence bins: devices present
/// × time ÷ the time each one stays), with the figures the tracked devices lent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowModel {
    /// Untracked device-minutes heard inside over the window.
    pub inside_device_minutes: f64,
    /// Untracked device-minutes heard only outside.
    pub outside_device_minutes: f64,
    /// A visitor's mean time inside, minutes.
    pub visitor_inside_minutes: f64,
    /// A passer-by's mean time heard, minutes.
    pub passerby_heard_minutes: f64,
    /// Share of inside time that is visitors'.
    pub visitor_share: f64,
    /// `tracked` when the day's tracked visits gave these, `default` otherwise.
    pub from: String,
}

/// Estimated untracked visitors and passers-by with their intervals (value, low, high).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Flows {
    visitors: (f64, f64, f64),
    passersby: (f64, f64, f64),
}

impl FlowModel {
    /// The times and share the day's tracked visits give (the defaults when there are fewer
    /// than [`flow_defaults::MIN_TRACKED`] visitors or passers-by).
    fn learn(tracked: &[ReportVisit]) -> FlowModel {
        use flow_defaults as d;
        let of = |c: VisitClass| -> Vec<&ReportVisit> {
            tracked.iter().filter(|v| v.class == c).collect()
        };
        let (visitors, passersby) = (of(VisitClass::Visitor), of(VisitClass::Passerby));
        let learned = visitors.len() >= d::MIN_TRACKED && passersby.len() >= d::MIN_TRACKED;
        // At least a minute each: one frame is a minute heard.
        let mean_min = |vs: &[&ReportVisit], f: fn(&ReportVisit) -> i64| {
            vs.iter().map(|v| f(v).max(60_000) as f64).sum::<f64>()
                / vs.len().max(1) as f64
                / 60_000.0
        };
        let (vis_in, pass_heard, share) = if learned {
            let v_in: f64 = visitors.iter().map(|v| v.inside_ms as f64).sum();
            let p_in: f64 = passersby.iter().map(|v| v.inside_ms as f64).sum();
            (
                mean_min(&visitors, |v| v.inside_ms),
                mean_min(&passersby, |v| v.dwell_ms),
                if v_in + p_in > 0.0 {
                    v_in / (v_in + p_in)
                } else {
                    d::VISITOR_SHARE
                },
            )
        } else {
            (
                d::VISITOR_INSIDE_MIN,
                d::PASSERBY_HEARD_MIN,
                d::VISITOR_SHARE,
            )
        };
        FlowModel {
            inside_device_minutes: 0.0,
            outside_device_minutes: 0.0,
            visitor_inside_minutes: round2(vis_in),
            passerby_heard_minutes: round2(pass_heard),
            visitor_share: round2(share),
            from: if learned { "tracked" } else { "default" }.to_string(),
        }
    }

    /// Little's law over `store_bins` (whole-store records): inside device-minutes split by
    /// the visitor share and divided by each class's time; outside device-minutes are
    /// passers-by's. Intervals from the bins' devices intervals. Gives the flows and the
    /// model with the bins' device-minutes filled in.
    fn flows(&self, store_bins: &[&PresenceRecord]) -> (Flows, FlowModel) {
        let minutes = |f: &dyn Fn(&PresenceRecord) -> f64| -> f64 {
            store_bins
                .iter()
                .map(|r| f(r).max(0.0) * f64::from(r.minutes))
                .sum()
        };
        let inside = (
            minutes(&|r| r.devices_estimated),
            minutes(&|r| r.devices_low - r.devices_tracked),
            minutes(&|r| r.devices_high - r.devices_tracked),
        );
        let outside = (
            minutes(&|r| r.devices_outside),
            minutes(&|r| r.outside_class_minutes),
            minutes(&|r| r.outside_class_minutes * crate::presence::MAX_UNITS_PER_CLASS),
        );
        let vis_in = self.visitor_inside_minutes.max(1.0);
        let pass_heard = self.passerby_heard_minutes.max(1.0);
        let share = self.visitor_share.clamp(0.0, 1.0);
        let flow = |inside: f64, outside: f64| {
            (
                inside * share / vis_in,
                (inside * (1.0 - share) + outside) / pass_heard,
            )
        };
        let (v, p) = flow(inside.0, outside.0);
        let (v_lo, p_lo) = flow(inside.1, outside.1);
        let (v_hi, p_hi) = flow(inside.2, outside.2);
        (
            Flows {
                visitors: (v, v_lo.min(v), v_hi.max(v)),
                passersby: (p, p_lo.min(p), p_hi.max(p)),
            },
            FlowModel {
                inside_device_minutes: round2(inside.0),
                outside_device_minutes: round2(outside.0),
                ..self.clone()
            },
        )
    }
}

/// Which calibration turned devices into people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    /// `door`, `headcounts` or `default` (uncalibrated: no people figures).
    pub source: String,
    /// Version (0: the default).
    pub version: u32,
    /// Samples it was fitted on.
    pub samples: u32,
    /// When it was fitted, store-local RFC 3339; `null` for the default.
    pub fitted_at: Option<String>,
    /// Pearson r of its samples; `null` for the default.
    pub r: Option<f64>,
}

/// The door counters' figures of the reported date (or window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoorCounts {
    /// Entries and exits of the date or window, per door too
    /// ([`crate::counter::day_totals`] of the intervals starting in it).
    pub window: crate::counter::DayCounts,
    /// Occupancy of the whole day (a window's occupancy does not start at 0).
    pub peak_occupancy: u64,
    /// Occupancy after the day's last interval.
    pub occupancy_at_close: u64,
    /// (entries, exits) per local hour ([`crate::counter::footfall_by_hour`]).
    pub by_hour: BTreeMap<u32, (u64, u64)>,
}

/// The receipts of the reported date (or window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PosTotals {
    /// Receipts.
    pub transactions: u64,
    /// Sum of their totals, minor currency units.
    pub sales_minor: i64,
    /// Digits of the minor unit (2 for cents; 0 for currencies without one).
    pub minor_digits: u8,
    /// ISO 4217 code, when known.
    pub currency: Option<String>,
    /// Units sold.
    pub items: f64,
    /// Receipts attributed to a visit.
    pub attributed: u64,
}

/// Local hours `from` to `to`, both included (0–23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourWindow {
    /// First hour.
    pub from: u32,
    /// Last hour (included).
    pub to: u32,
}

impl HourWindow {
    /// A window, if `from` ≤ `to` ≤ 23.
    pub fn new(from: u32, to: u32) -> Option<HourWindow> {
        (from <= to && to <= 23).then_some(HourWindow { from, to })
    }

    /// Parses `"10"` or `"10-13"`.
    pub fn parse(s: &str) -> Option<HourWindow> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        HourWindow::new(a.trim().parse().ok()?, b.trim().parse().ok()?)
    }

    /// Whether local hour `h` is inside.
    pub fn contains(&self, h: u32) -> bool {
        (self.from..=self.to).contains(&h)
    }
}

/// Visitors per dwell bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DwellBuckets {
    /// Under 5 minutes (only logged-in visitors can be this short).
    pub under_5m: u64,
    /// 5–30 minutes.
    pub from_5m_to_30m: u64,
    /// 30–60 minutes.
    pub from_30m_to_1h: u64,
    /// 1–5 hours.
    pub from_1h_to_5h: u64,
    /// 5–8 hours.
    pub from_5h_to_8h: u64,
    /// 8 hours and more.
    pub over_8h: u64,
}

impl DwellBuckets {
    fn add(&mut self, bucket: usize) {
        let slot = match bucket {
            0 => &mut self.under_5m,
            1 => &mut self.from_5m_to_30m,
            2 => &mut self.from_30m_to_1h,
            3 => &mut self.from_1h_to_5h,
            4 => &mut self.from_5h_to_8h,
            _ => &mut self.over_8h,
        };
        *slot += 1;
    }

    fn values(&self) -> [u64; 6] {
        [
            self.under_5m,
            self.from_5m_to_30m,
            self.from_30m_to_1h,
            self.from_1h_to_5h,
            self.from_5h_to_8h,
            self.over_8h,
        ]
    }
}

/// Visits and dwell in one zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneReport {
    /// Zone name.
    pub zone: String,
    /// Visitors who stayed in the zone.
    pub visits: u64,
    /// Total visitor dwell in the zone, seconds.
    pub dwell_secs: u64,
    /// Mean dwell per visiting visitor, seconds.
    pub mean_dwell_secs: f64,
}

/// A zone path and how many visitors walked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathCount {
    /// Zone names in order.
    pub path: Vec<String>,
    /// Visitors.
    pub visits: u64,
}

/// One local hour's arrivals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourReport {
    /// Local hour, 0–23.
    pub hour: u32,
    /// Visitors who arrived.
    pub visitors: u64,
    /// Passers-by first seen.
    pub passersby: u64,
    /// Door entries in the hour (counters configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footfall: Option<u64>,
    /// Visitors who arrived (tracked and estimated) ÷ door entries of the hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_detection_ratio: Option<f64>,
    /// Visitors estimated from presence in the hour (beside the tracked `visitors`).
    #[serde(default)]
    pub visitors_estimated: f64,
    /// Passers-by estimated from presence in the hour (beside the tracked `passersby`).
    #[serde(default)]
    pub passersby_estimated: f64,
}

/// One door's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorReport {
    /// Door name, as configured.
    pub door: String,
    /// Entries.
    pub ins: u64,
    /// Exits.
    pub outs: u64,
}

/// The day report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayReport {
    /// Local date.
    pub date: String,
    /// The local hours reported on, when not the whole day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HourWindow>,
    /// Metric definitions version.
    pub definitions_version: u32,
    /// Wi-Fi visitors (staff excluded): the tracked ones (a device whose randomized MAC
    /// rotated counts once) plus the estimated untracked ones, rounded.
    pub visitors: Option<u64>,
    /// Visitors tracked as devices.
    #[serde(default)]
    pub visitors_tracked: Option<u64>,
    /// Visitors estimated from the presence of devices without a stable identity.
    #[serde(default)]
    pub visitors_estimated: Option<f64>,
    /// Lower end of `visitors` (tracked + the estimate's low).
    #[serde(default)]
    pub visitors_low: Option<f64>,
    /// Upper end of `visitors`.
    #[serde(default)]
    pub visitors_high: Option<f64>,
    /// Wi-Fi visitors counting every MAC on its own (no grouping of rotating MACs).
    pub visitors_naive: Option<u64>,
    /// Share of the day's Wi-Fi sightings that came from randomized MACs.
    pub randomized_sightings_share: Option<f64>,
    /// Wi-Fi passers-by: tracked plus estimated, rounded.
    pub passersby: Option<u64>,
    /// Passers-by tracked as devices.
    #[serde(default)]
    pub passersby_tracked: Option<u64>,
    /// Passers-by estimated from presence.
    #[serde(default)]
    pub passersby_estimated: Option<f64>,
    /// Lower end of `passersby`.
    #[serde(default)]
    pub passersby_low: Option<f64>,
    /// Upper end of `passersby`.
    #[serde(default)]
    pub passersby_high: Option<f64>,
    /// How the estimated flows were made.
    #[serde(default)]
    pub flow_model: Option<FlowModel>,
    /// Staff visits (excluded from visitor metrics).
    pub staff: Option<u64>,
    /// Visitors who logged in to the store Wi-Fi.
    pub connected: Option<u64>,
    /// Visitors ÷ (visitors + passers-by), tracked and estimated together.
    pub capture_rate: Option<f64>,
    /// People-counter entries.
    pub footfall: Option<u64>,
    /// People-counter exits.
    pub exits: Option<u64>,
    /// Most people inside at once (entries − exits, floored at 0, over the whole day).
    pub peak_occupancy: Option<u64>,
    /// People inside after the day's last counter interval.
    pub occupancy_at_close: Option<u64>,
    /// Entries and exits per door.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doors: Vec<DoorReport>,
    /// Wi-Fi visitors (tracked and estimated) ÷ footfall.
    pub wifi_detection_ratio: Option<f64>,
    /// Receipts.
    pub transactions: Option<u64>,
    /// Sales total, in currency units (minor units ÷ 10^digits).
    pub sales: Option<f64>,
    /// Sales total, minor units (exact).
    pub sales_minor: Option<i64>,
    /// Currency of the sales (ISO 4217).
    pub currency: Option<String>,
    /// Transactions ÷ footfall.
    pub conversion: Option<f64>,
    /// Sales ÷ transactions.
    pub atv: Option<f64>,
    /// Sales ÷ footfall.
    pub sales_per_visitor: Option<f64>,
    /// Units sold ÷ transactions.
    pub items_per_basket: Option<f64>,
    /// Receipts attributed to a visit (a member's receipt joined to their visit).
    pub attributed_purchases: Option<u64>,
    /// Visitors carrying a person key.
    pub identified_visitors: Option<u64>,
    /// Identified visitors ÷ visitors.
    pub identified_share: Option<f64>,
    /// Median visitor dwell, seconds.
    pub median_dwell_secs: Option<f64>,
    /// Mean visitor dwell, seconds.
    pub mean_dwell_secs: Option<f64>,
    /// Visitors per dwell bucket.
    pub dwell_buckets: Option<DwellBuckets>,
    /// Visits and dwell per zone.
    pub zones: Vec<ZoneReport>,
    /// The most walked paths (up to 10).
    pub top_paths: Vec<PathCount>,
    /// Arrivals per local hour (hours with any arrival).
    pub hourly: Vec<HourReport>,
    /// Local hours (of the window, when one is given) a step of the gateway's clock touched:
    /// visits open at the step were cut there, so these hours' figures are less certain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock_step_hours: Vec<u8>,
    /// Presence per 10-minute bin, whole store and per zone (Wi-Fi configured).
    #[serde(default)]
    pub presence: Vec<PresenceReportBin>,
    /// Presence per local hour, whole store.
    #[serde(default)]
    pub presence_hourly: Vec<PresenceHour>,
    /// How devices became people (Wi-Fi configured).
    #[serde(default)]
    pub calibration: Option<CalibrationInfo>,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The presence section: the bins of the window, and the whole store's hours.
fn presence_section(
    inp: &ReportInputs<'_>,
) -> (
    Vec<PresenceReportBin>,
    Vec<PresenceHour>,
    Option<CalibrationInfo>,
) {
    let in_window = |r: &&PresenceRecord| {
        inp.hours
            .is_none_or(|w| w.contains(inp.clock.hour(r.start_ms)))
    };
    let mut recs: Vec<&PresenceRecord> = inp.presence.iter().filter(in_window).collect();
    recs.sort_by(|a, b| (a.start_ms, &a.zone).cmp(&(b.start_ms, &b.zone)));
    let bins = recs
        .iter()
        .map(|r| PresenceReportBin {
            start: r.start.clone(),
            minutes: r.minutes,
            zone: r.zone.clone(),
            devices: r.devices,
            devices_low: r.devices_low,
            devices_high: r.devices_high,
            devices_tracked: r.devices_tracked,
            devices_estimated: r.devices_estimated,
            people: r.people,
            people_low: r.people_low,
            people_high: r.people_high,
        })
        .collect();
    let mut by_hour: BTreeMap<u32, Vec<&PresenceRecord>> = BTreeMap::new();
    for r in recs.iter().filter(|r| r.zone.is_none()) {
        by_hour
            .entry(inp.clock.hour(r.start_ms))
            .or_default()
            .push(r);
    }
    let hours = by_hour
        .into_iter()
        .filter_map(|(hour, rs)| {
            let devices: Vec<Estimate> = rs.iter().map(|r| r.devices_estimate()).collect();
            let d = Estimate::mean(&devices)?;
            let people: Option<Vec<Estimate>> = rs.iter().map(|r| r.people_estimate()).collect();
            let p = people.and_then(|p| Estimate::mean(&p));
            Some(PresenceHour {
                hour,
                bins: rs.len() as u32,
                devices: round2(d.value),
                devices_low: round2(d.low),
                devices_high: round2(d.high),
                people: p.map(|e| round2(e.value)),
                people_low: p.map(|e| round2(e.low)),
                people_high: p.map(|e| round2(e.high)),
            })
        })
        .collect();
    let calibration = inp.sources.wifi.then(|| match inp.calibration {
        Some(c) if c.is_calibrated() => CalibrationInfo {
            source: c.source.label().to_string(),
            version: c.version,
            samples: c.samples,
            fitted_at: Some(inp.clock.local(c.fitted_at_ms).to_rfc3339()),
            r: Some(round2(c.r)),
        },
        _ => CalibrationInfo {
            source: "default".to_string(),
            version: 0,
            samples: 0,
            fitted_at: None,
            r: None,
        },
    });
    (bins, hours, calibration)
}

/// Visits that share a counting group (one device under MAC rotation) merged into one: from
/// the first start to the last end, the pieces' paths joined and their inside time added, a
/// visitor's when that reaches `min_dwell_ms` (or any piece already was). Order is kept.
fn merge_groups(visits: &[ReportVisit], min_dwell_ms: i64) -> Vec<ReportVisit> {
    let mut out: Vec<ReportVisit> = Vec::with_capacity(visits.len());
    let mut at: BTreeMap<&str, usize> = BTreeMap::new();
    for v in visits {
        let Some(g) = v.group.as_deref() else {
            out.push(v.clone());
            continue;
        };
        let Some(m) = at.get(g).and_then(|&i| out.get_mut(i)) else {
            at.insert(g, out.len());
            out.push(v.clone());
            continue;
        };
        let end = (m.start_ms + m.dwell_ms).max(v.start_ms + v.dwell_ms);
        m.start_ms = m.start_ms.min(v.start_ms);
        m.dwell_ms = end - m.start_ms;
        m.inside_ms += v.inside_ms;
        m.sightings += v.sightings;
        for (zone, ms) in &v.path {
            match m.path.last_mut() {
                Some((z, total)) if z == zone => *total += ms,
                _ => m.path.push((zone.clone(), *ms)),
            }
        }
        let visitor = m.class == VisitClass::Visitor
            || v.class == VisitClass::Visitor
            || m.inside_ms >= min_dwell_ms;
        if m.class != VisitClass::Staff && visitor {
            m.class = VisitClass::Visitor;
        }
    }
    out
}

fn ratio(num: Option<u64>, den: Option<u64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    }
}

impl DayReport {
    /// Computes the report. `zone_order` lists configured zone names, for a stable zone order.
    pub fn compute(inp: &ReportInputs<'_>, zone_order: &[String]) -> DayReport {
        let wifi = inp.sources.wifi;
        let (presence, presence_hourly, calibration) = presence_section(inp);
        let windowed: Vec<ReportVisit>;
        let all: &[ReportVisit] = match inp.hours {
            Some(w) => {
                windowed = inp
                    .visits
                    .iter()
                    .filter(|v| w.contains(inp.clock.hour(v.start_ms)))
                    .cloned()
                    .collect();
                &windowed
            }
            None => inp.visits,
        };
        let naive_visitors = all
            .iter()
            .filter(|v| v.class == VisitClass::Visitor)
            .count() as u64;
        let sightings: u64 = all.iter().map(|v| u64::from(v.sightings)).sum();
        let randomized_sightings: u64 = all
            .iter()
            .filter(|v| v.randomized)
            .map(|v| u64::from(v.sightings))
            .sum();
        let merged = merge_groups(all, inp.min_visit_dwell_ms);
        let all: &[ReportVisit] = &merged;
        let count = |c: VisitClass| all.iter().filter(|v| v.class == c).count() as u64;
        let visitors: Vec<&ReportVisit> = all
            .iter()
            .filter(|v| v.class == VisitClass::Visitor)
            .collect();
        let n_visitors = visitors.len() as u64;
        let n_passersby = count(VisitClass::Passerby);
        // The untracked population: flows from the whole store's presence bins of the window,
        // per hour with the day's model.
        let store_bins: Vec<&PresenceRecord> = inp
            .presence
            .iter()
            .filter(|r| {
                r.zone.is_none()
                    && inp
                        .hours
                        .is_none_or(|w| w.contains(inp.clock.hour(r.start_ms)))
            })
            .collect();
        let model = FlowModel::learn(all);
        let (flows, model) = model.flows(&store_bins);
        let mut bins_by_hour: BTreeMap<u32, Vec<&PresenceRecord>> = BTreeMap::new();
        for r in &store_bins {
            bins_by_hour
                .entry(inp.clock.hour(r.start_ms))
                .or_default()
                .push(r);
        }
        let hour_flows: BTreeMap<u32, Flows> = bins_by_hour
            .iter()
            .map(|(h, bins)| (*h, model.flows(bins).0))
            .collect();
        let total = |tracked: u64, est: (f64, f64, f64)| tracked + est.0.round() as u64;
        let visitors_all = total(n_visitors, flows.visitors);
        let passersby_all = total(n_passersby, flows.passersby);

        let mut dwell: Vec<i64> = visitors.iter().map(|v| v.dwell_ms).collect();
        dwell.sort_unstable();
        let median = match dwell.len() {
            0 => None,
            n if n % 2 == 1 => dwell.get(n / 2).map(|&d| d as f64 / 1000.0),
            n => match (dwell.get(n / 2 - 1), dwell.get(n / 2)) {
                (Some(&a), Some(&b)) => Some((a + b) as f64 / 2000.0),
                _ => None,
            },
        };
        let mean = (!dwell.is_empty())
            .then(|| dwell.iter().sum::<i64>() as f64 / 1000.0 / dwell.len() as f64);
        let mut buckets = DwellBuckets::default();
        for d in &dwell {
            buckets.add(dwell_bucket(*d));
        }

        let mut zones: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut paths: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        let mut hours: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for v in &visitors {
            let mut seen: Vec<&str> = Vec::new();
            for (z, ms) in &v.path {
                let e = zones.entry(z.clone()).or_default();
                if !seen.contains(&z.as_str()) {
                    seen.push(z);
                    e.0 += 1;
                }
                e.1 += ms;
            }
            *paths
                .entry(v.path.iter().map(|(z, _)| z.clone()).collect())
                .or_default() += 1;
        }
        // Hours with presence, and hours in which people came in, are listed even when no
        // tracked phone was seen.
        for h in hour_flows.keys() {
            hours.entry(*h).or_default();
        }
        if let Some(d) = &inp.doors {
            for (h, (ins, _)) in &d.by_hour {
                if *ins > 0 && inp.hours.is_none_or(|w| w.contains(*h)) {
                    hours.entry(*h).or_default();
                }
            }
        }
        for v in all {
            let e = hours.entry(inp.clock.hour(v.start_ms)).or_default();
            match v.class {
                VisitClass::Visitor => e.0 += 1,
                VisitClass::Passerby => e.1 += 1,
                VisitClass::Staff => {}
            }
        }
        let rank = |name: &str| {
            zone_order
                .iter()
                .position(|z| z == name)
                .unwrap_or(usize::MAX)
        };
        let mut zone_list: Vec<ZoneReport> = zones
            .into_iter()
            .map(|(zone, (visits, ms))| ZoneReport {
                mean_dwell_secs: if visits > 0 {
                    ms as f64 / 1000.0 / visits as f64
                } else {
                    0.0
                },
                zone,
                visits,
                dwell_secs: (ms / 1000) as u64,
            })
            .collect();
        zone_list.sort_by(|a, b| rank(&a.zone).cmp(&rank(&b.zone)).then(a.zone.cmp(&b.zone)));
        let mut top: Vec<PathCount> = paths
            .into_iter()
            .map(|(path, visits)| PathCount { path, visits })
            .collect();
        top.sort_by(|a, b| b.visits.cmp(&a.visits).then(a.path.cmp(&b.path)));
        top.truncate(10);

        let visitors_opt = wifi.then_some(visitors_all);
        let doors = inp.doors.as_ref();
        let footfall = doors.map(|d| d.window.footfall);
        let pos = inp.pos.as_ref();
        let sales_units = pos.map(|p| p.sales_minor as f64 / 10f64.powi(i32::from(p.minor_digits)));
        let connected = (wifi && inp.sources.portal)
            .then(|| visitors.iter().filter(|v| v.connected).count() as u64);
        let identified = (wifi && inp.sources.portal)
            .then(|| visitors.iter().filter(|v| v.identified).count() as u64);
        DayReport {
            date: inp.date.to_string(),
            hours: inp.hours,
            definitions_version: DEFINITIONS_VERSION,
            visitors: visitors_opt,
            visitors_tracked: wifi.then_some(n_visitors),
            visitors_estimated: wifi.then_some(round2(flows.visitors.0)),
            visitors_low: wifi.then_some(round2(n_visitors as f64 + flows.visitors.1)),
            visitors_high: wifi.then_some(round2(n_visitors as f64 + flows.visitors.2)),
            visitors_naive: wifi.then_some(naive_visitors),
            randomized_sightings_share: (wifi && sightings > 0)
                .then(|| randomized_sightings as f64 / sightings as f64),
            passersby: wifi.then_some(passersby_all),
            passersby_tracked: wifi.then_some(n_passersby),
            passersby_estimated: wifi.then_some(round2(flows.passersby.0)),
            passersby_low: wifi.then_some(round2(n_passersby as f64 + flows.passersby.1)),
            passersby_high: wifi.then_some(round2(n_passersby as f64 + flows.passersby.2)),
            flow_model: wifi.then_some(model),
            staff: wifi.then(|| count(VisitClass::Staff)),
            connected,
            capture_rate: wifi
                .then(|| ratio(Some(visitors_all), Some(visitors_all + passersby_all)))
                .flatten(),
            footfall,
            exits: doors.map(|d| d.window.outs),
            peak_occupancy: doors.map(|d| d.peak_occupancy),
            occupancy_at_close: doors.map(|d| d.occupancy_at_close),
            doors: doors
                .map(|d| {
                    d.window
                        .by_door
                        .iter()
                        .map(|(door, (ins, outs))| DoorReport {
                            door: door.clone(),
                            ins: *ins,
                            outs: *outs,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            wifi_detection_ratio: ratio(visitors_opt, footfall),
            transactions: pos.map(|p| p.transactions),
            sales: sales_units,
            sales_minor: pos.map(|p| p.sales_minor),
            currency: pos.and_then(|p| p.currency.clone()),
            conversion: ratio(pos.map(|p| p.transactions), footfall),
            sales_per_visitor: match (sales_units, footfall) {
                (Some(s), Some(f)) if f > 0 => Some(s / f as f64),
                _ => None,
            },
            atv: match (sales_units, pos.map(|p| p.transactions)) {
                (Some(s), Some(t)) if t > 0 => Some(s / t as f64),
                _ => None,
            },
            items_per_basket: pos
                .filter(|p| p.transactions > 0)
                .map(|p| p.items / p.transactions as f64),
            attributed_purchases: pos.map(|p| p.attributed),
            identified_visitors: identified,
            identified_share: ratio(identified, visitors_opt),
            median_dwell_secs: wifi.then_some(median).flatten(),
            mean_dwell_secs: wifi.then_some(mean).flatten(),
            dwell_buckets: wifi.then_some(buckets),
            zones: zone_list,
            top_paths: top,
            hourly: hours
                .into_iter()
                .map(|(hour, (visitors, passersby))| {
                    let entries = doors.map(|d| d.by_hour.get(&hour).map_or(0, |h| h.0));
                    let est = hour_flows.get(&hour);
                    let v_est = est.map_or(0.0, |f| f.visitors.0);
                    HourReport {
                        hour,
                        visitors,
                        passersby,
                        footfall: entries,
                        wifi_detection_ratio: ratio(
                            wifi.then_some(total(visitors, (v_est, 0.0, 0.0))),
                            entries,
                        ),
                        visitors_estimated: round2(v_est),
                        passersby_estimated: round2(est.map_or(0.0, |f| f.passersby.0)),
                    }
                })
                .collect(),
            clock_step_hours: {
                let mut h: Vec<u8> = inp
                    .clock_step_hours
                    .iter()
                    .copied()
                    .filter(|&h| inp.hours.is_none_or(|w| w.contains(u32::from(h))))
                    .collect();
                h.sort_unstable();
                h.dedup();
                h
            },
            presence,
            presence_hourly,
            calibration,
        }
    }

    /// A readable terminal table.
    pub fn render_text(&self, store: &str) -> String {
        let mut s = String::new();
        let num = |v: Option<u64>| v.map_or("n/a (no source)".to_string(), |v| v.to_string());
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0));
        let mins = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.1} min", v / 60.0));
        match self.hours {
            Some(w) => {
                let _ = writeln!(
                    s,
                    "store-edge report — {store} — {} {:02}:00–{:02}:59",
                    self.date, w.from, w.to
                );
            }
            None => {
                let _ = writeln!(s, "store-edge day report — {store} — {}", self.date);
            }
        }
        let _ = writeln!(s, "{}", "=".repeat(60));
        // "412 (tracked 300 + estimated 112, 380–470)"
        let split = |total: Option<u64>,
                     tracked: Option<u64>,
                     est: Option<f64>,
                     lo: Option<f64>,
                     hi: Option<f64>| match (total, tracked, est, lo, hi) {
            (Some(t), Some(k), Some(e), Some(l), Some(h)) if e > 0.0 => {
                format!("{t} (tracked {k} + estimated {e:.0}, {l:.0}–{h:.0})")
            }
            _ => num(total),
        };
        let rows: Vec<(&str, String)> = vec![
            (
                "Visitors",
                split(
                    self.visitors,
                    self.visitors_tracked,
                    self.visitors_estimated,
                    self.visitors_low,
                    self.visitors_high,
                ),
            ),
            ("Tracked visitors, each MAC apart", num(self.visitors_naive)),
            (
                "Randomized-MAC sightings",
                pct(self.randomized_sightings_share),
            ),
            (
                "Passers-by",
                split(
                    self.passersby,
                    self.passersby_tracked,
                    self.passersby_estimated,
                    self.passersby_low,
                    self.passersby_high,
                ),
            ),
            ("Staff (excluded)", num(self.staff)),
            ("Capture rate (tracked + estimated)", pct(self.capture_rate)),
            ("Median dwell", mins(self.median_dwell_secs)),
            ("Mean dwell", mins(self.mean_dwell_secs)),
            ("Connected (portal)", num(self.connected)),
            ("Identified visitors", num(self.identified_visitors)),
            ("Footfall (door)", num(self.footfall)),
            ("Exits (door)", num(self.exits)),
            ("Peak occupancy", num(self.peak_occupancy)),
            ("Occupancy at close", num(self.occupancy_at_close)),
            (
                "Wi-Fi detection ratio (tracked + estimated)",
                pct(self.wifi_detection_ratio),
            ),
            ("Transactions", num(self.transactions)),
            (
                "Sales",
                self.sales.map_or("n/a (no source)".to_string(), |v| {
                    format!("{v:.2} {}", self.currency.as_deref().unwrap_or(""))
                        .trim_end()
                        .to_string()
                }),
            ),
            (
                "Average ticket",
                self.atv.map_or("n/a".to_string(), |v| format!("{v:.2}")),
            ),
            (
                "Items per basket",
                self.items_per_basket
                    .map_or("n/a".to_string(), |v| format!("{v:.2}")),
            ),
            ("Attributed to a visit", num(self.attributed_purchases)),
            ("Conversion", pct(self.conversion)),
            (
                "Sales per visitor",
                self.sales_per_visitor
                    .map_or("n/a".to_string(), |v| format!("{v:.2}")),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(s, "  {k:<24} {v:>20}");
        }
        if let Some(b) = &self.dwell_buckets {
            let _ = writeln!(s, "\nDwell (visitors)");
            for (name, v) in DWELL_BUCKET_NAMES.iter().zip(b.values()) {
                let _ = writeln!(s, "  {name:<24} {v:>20}");
            }
        }
        if !self.zones.is_empty() {
            let _ = writeln!(
                s,
                "\n  {:<16} {:>10} {:>16} {:>14}",
                "Zone", "Visitors", "Total dwell", "Mean dwell"
            );
            for z in &self.zones {
                let _ = writeln!(
                    s,
                    "  {:<16} {:>10} {:>12.1} min {:>10.1} min",
                    z.zone,
                    z.visits,
                    z.dwell_secs as f64 / 60.0,
                    z.mean_dwell_secs / 60.0
                );
            }
        }
        if !self.top_paths.is_empty() {
            let _ = writeln!(s, "\nTop paths");
            for p in &self.top_paths {
                let _ = writeln!(s, "  {:>6}  {}", p.visits, p.path.join(" → "));
            }
        }
        if !self.doors.is_empty() {
            let _ = writeln!(s, "\n  {:<16} {:>10} {:>10}", "Door", "Entries", "Exits");
            for d in &self.doors {
                let _ = writeln!(s, "  {:<16} {:>10} {:>10}", d.door, d.ins, d.outs);
            }
        }
        if !self.hourly.is_empty() {
            let doors = self.footfall.is_some();
            let _ = write!(
                s,
                "\n  {:<8} {:>10} {:>12}",
                "Hour", "Visitors", "Passers-by"
            );
            if doors {
                let _ = write!(s, " {:>10} {:>10}", "Footfall", "Detected");
            }
            s.push('\n');
            for h in &self.hourly {
                let _ = write!(
                    s,
                    "  {:02}:00    {:>10} {:>12}",
                    h.hour, h.visitors, h.passersby
                );
                if doors {
                    let _ = write!(
                        s,
                        " {:>10} {:>10}",
                        h.footfall.map_or("-".to_string(), |f| f.to_string()),
                        h.wifi_detection_ratio
                            .map_or("-".to_string(), |r| format!("{:.0} %", r * 100.0))
                    );
                }
                s.push('\n');
            }
        }
        if !self.presence_hourly.is_empty() {
            let calibrated = self.presence_hourly.iter().all(|h| h.people.is_some());
            let what = if calibrated { "People" } else { "Devices" };
            let cal = self.calibration.as_ref().map_or(String::new(), |c| {
                if c.source == "default" {
                    " — uncalibrated: devices, not people (store-edge calibrate)".to_string()
                } else {
                    format!(" — calibrated from {} ({} samples)", c.source, c.samples)
                }
            });
            let _ = writeln!(s, "\nPresent per hour, whole store{cal}");
            let _ = writeln!(s, "  {:<8} {:>8} {:>15}", "Hour", what, "interval");
            let top = self
                .presence_hourly
                .iter()
                .map(|h| {
                    if calibrated {
                        h.people_high.unwrap_or(0.0)
                    } else {
                        h.devices_high
                    }
                })
                .fold(1.0_f64, f64::max);
            for h in &self.presence_hourly {
                let (v, lo, hi) = if calibrated {
                    (
                        h.people.unwrap_or(0.0),
                        h.people_low.unwrap_or(0.0),
                        h.people_high.unwrap_or(0.0),
                    )
                } else {
                    (h.devices, h.devices_low, h.devices_high)
                };
                // A bar of up to 30 cells scaled to the day's highest interval end.
                let cells = ((v / top) * 30.0).round().clamp(0.0, 30.0) as usize;
                let _ = writeln!(
                    s,
                    "  {:02}:00    {:>8.1} {:>7.1}–{:<7.1} {}",
                    h.hour,
                    v,
                    lo,
                    hi,
                    "█".repeat(cells)
                );
            }
        }
        if !self.clock_step_hours.is_empty() {
            let hours: Vec<String> = self
                .clock_step_hours
                .iter()
                .map(|h| format!("{h:02}:00"))
                .collect();
            let _ = writeln!(
                s,
                "\nThe gateway's clock stepped in {}: visits open then were cut at the step.",
                hours.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(class: VisitClass, start_h: i64, dwell_min: i64, path: &[&str]) -> ReportVisit {
        ReportVisit {
            class,
            start_ms: start_h * 3_600_000,
            dwell_ms: dwell_min * 60_000,
            path: path.iter().map(|z| (z.to_string(), 60_000)).collect(),
            connected: false,
            identified: false,
            group: None,
            inside_ms: dwell_min * 60_000,
            sightings: 10,
            randomized: false,
        }
    }

    fn inputs<'a>(visits: &'a [ReportVisit], sources: ConfiguredSources) -> ReportInputs<'a> {
        ReportInputs {
            date: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            clock: LocalClock::new(chrono_tz::UTC),
            visits,
            sources,
            doors: None,
            pos: None,
            hours: None,
            min_visit_dwell_ms: 5 * 60_000,
            clock_step_hours: &[],
            presence: &[],
            calibration: None,
        }
    }

    #[test]
    fn pieces_of_a_rotating_mac_count_as_one_visitor() {
        let piece = |start_min: i64, dwell_min: i64, group: Option<&str>, zone: &str| ReportVisit {
            class: VisitClass::Passerby,
            start_ms: start_min * 60_000,
            dwell_ms: dwell_min * 60_000,
            path: vec![(zone.to_string(), dwell_min * 60_000)],
            connected: false,
            identified: false,
            group: group.map(str::to_string),
            inside_ms: dwell_min * 60_000,
            sightings: 5,
            randomized: true,
        };
        let visits = vec![
            // One device, MAC rotating every 4 minutes: 12 minutes in the store.
            piece(600, 4, Some("g1"), "entrance"),
            piece(604, 4, Some("g1"), "apparel"),
            piece(608, 4, Some("g1"), "apparel"),
            // A short passer-by with a randomized MAC of its own.
            piece(610, 2, Some("g2"), "entrance"),
            // A visitor with a stable MAC.
            v(VisitClass::Visitor, 10, 30, &["entrance"]),
        ];
        let sources = ConfiguredSources {
            wifi: true,
            ..ConfiguredSources::default()
        };
        let r = DayReport::compute(
            &inputs(&visits, sources),
            &["entrance".into(), "apparel".into()],
        );
        assert_eq!(r.visitors, Some(2));
        assert_eq!(r.visitors_naive, Some(1));
        assert_eq!(r.passersby, Some(1));
        assert_eq!(r.randomized_sightings_share, Some(20.0 / 30.0));
        let merged = r.top_paths.iter().find(|p| p.path.len() == 2).unwrap();
        assert_eq!(merged.path, vec!["entrance", "apparel"]);
        assert_eq!(r.dwell_buckets.unwrap().values().iter().sum::<u64>(), 2);
    }

    #[test]
    fn an_hour_window_counts_only_visits_that_started_in_it() {
        let visits = vec![
            v(VisitClass::Visitor, 9, 10, &["entrance"]),
            v(VisitClass::Visitor, 10, 40, &["entrance", "apparel"]),
            v(VisitClass::Passerby, 11, 1, &["entrance"]),
            v(VisitClass::Visitor, 12, 20, &["checkout"]),
        ];
        let sources = ConfiguredSources {
            wifi: true,
            ..ConfiguredSources::default()
        };
        let zones = ["entrance".to_string(), "apparel".into(), "checkout".into()];
        // Hours a clock step touched (as the store lists them, any order, repeated).
        let stepped = [12, 10, 10];
        // (window, visitors, passers-by, hours present, clock-step hours reported)
        let table: [(Option<&str>, u64, u64, Vec<u32>, Vec<u8>); 4] = [
            (None, 3, 1, vec![9, 10, 11, 12], vec![10, 12]),
            (Some("10-11"), 1, 1, vec![10, 11], vec![10]),
            (Some("12"), 1, 0, vec![12], vec![12]),
            (Some("13-23"), 0, 0, vec![], vec![]),
        ];
        for (window, visitors, passersby, hours, step_hours) in table {
            let inp = ReportInputs {
                hours: window.map(|w| HourWindow::parse(w).unwrap()),
                clock_step_hours: &stepped,
                presence: &[],
                calibration: None,
                ..inputs(&visits, sources)
            };
            let r = DayReport::compute(&inp, &zones);
            assert_eq!(r.visitors, Some(visitors), "{window:?}");
            assert_eq!(r.passersby, Some(passersby), "{window:?}");
            let got: Vec<u32> = r.hourly.iter().map(|h| h.hour).collect();
            assert_eq!(got, hours, "{window:?}");
            assert_eq!(r.hours, inp.hours);
            assert_eq!(r.clock_step_hours, step_hours, "{window:?}");
            let text = r.render_text("s");
            let json = serde_json::to_value(&r).unwrap();
            if step_hours.is_empty() {
                assert!(!text.contains("clock stepped"), "{text}");
                assert!(json.get("clock_step_hours").is_none());
            } else {
                let listed: Vec<String> = step_hours.iter().map(|h| format!("{h:02}:00")).collect();
                assert!(
                    text.contains(&format!("clock stepped in {}:", listed.join(", "))),
                    "{text}"
                );
                assert_eq!(json["clock_step_hours"], serde_json::json!(step_hours));
            }
        }
        for bad in ["", "24", "13-12", "a-b", "1-2-3"] {
            assert_eq!(HourWindow::parse(bad), None, "{bad:?}");
        }
        assert_eq!(HourWindow::parse("7"), HourWindow::new(7, 7));
    }

    #[test]
    fn metrics_of_a_small_day() {
        let visits = vec![
            v(VisitClass::Visitor, 10, 10, &["entrance", "apparel"]),
            v(VisitClass::Visitor, 10, 40, &["entrance", "apparel"]),
            v(VisitClass::Visitor, 11, 90, &["entrance", "checkout"]),
            v(VisitClass::Passerby, 11, 1, &["entrance"]),
            v(VisitClass::Staff, 9, 600, &["checkout"]),
        ];
        let wifi_only = ConfiguredSources {
            wifi: true,
            ..Default::default()
        };
        let r = DayReport::compute(
            &inputs(&visits, wifi_only),
            &["entrance".into(), "apparel".into(), "checkout".into()],
        );
        assert_eq!(
            (r.visitors, r.passersby, r.staff),
            (Some(3), Some(1), Some(1))
        );
        assert_eq!(r.capture_rate, Some(0.75));
        assert_eq!(r.median_dwell_secs, Some(2400.0));
        let b = r.dwell_buckets.clone().unwrap();
        assert_eq!(b.values(), [0, 1, 1, 1, 0, 0]);
        let zones: Vec<(&str, u64)> = r
            .zones
            .iter()
            .map(|z| (z.zone.as_str(), z.visits))
            .collect();
        assert_eq!(
            zones,
            vec![("entrance", 3), ("apparel", 2), ("checkout", 1)]
        );
        assert_eq!(r.top_paths[0].path, vec!["entrance", "apparel"]);
        assert_eq!(r.top_paths[0].visits, 2);
        assert_eq!(r.hourly.len(), 3);
        // Sources not configured are null, not zero.
        for (name, v) in [
            ("connected", r.connected),
            ("footfall", r.footfall),
            ("transactions", r.transactions),
            ("identified", r.identified_visitors),
        ] {
            assert_eq!(v, None, "{name}");
        }
        assert_eq!(r.conversion, None);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["footfall"].is_null());
        assert_eq!(json["dwell_buckets"]["from_5m_to_30m"], 1);
        assert!(r.render_text("s1").contains("Capture rate"));
    }

    #[test]
    fn door_counts_give_footfall_occupancy_detection_and_conversion() {
        use crate::counter::{day_totals, footfall_by_hour, CounterInterval};
        let clock = LocalClock::new(chrono_tz::UTC);
        let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let iv = |door: &str, h: i64, ins: u32, outs: u32, revision: u32| CounterInterval {
            door: door.into(),
            line: "l".into(),
            start_ms: h * 3_600_000,
            end_ms: h * 3_600_000 + 900_000,
            ins,
            outs,
            revision,
        };
        // Hour 10: 6 in (a revision corrects 5 → 4 at the main door), hour 11: 2 in, 7 out.
        let intervals = vec![
            iv("main", 10, 5, 0, 0),
            iv("main", 10, 4, 0, 1),
            iv("side", 10, 2, 1, 0),
            iv("main", 11, 2, 7, 0),
        ];
        let day = day_totals(&intervals, &clock, date);
        let doors = DoorCounts {
            peak_occupancy: day.peak_occupancy,
            occupancy_at_close: day.occupancy_at_close,
            by_hour: footfall_by_hour(&intervals, &clock, date),
            window: day,
        };
        let visits = vec![
            v(VisitClass::Visitor, 10, 10, &["entrance"]),
            v(VisitClass::Visitor, 10, 40, &["entrance"]),
            v(VisitClass::Visitor, 11, 40, &["entrance"]),
            v(VisitClass::Passerby, 11, 1, &["entrance"]),
        ];
        let sources = ConfiguredSources {
            wifi: true,
            counter: true,
            pos: true,
            ..Default::default()
        };
        let mut inp = inputs(&visits, sources);
        inp.doors = Some(doors);
        inp.pos = Some(PosTotals {
            transactions: 4,
            sales_minor: 8000,
            minor_digits: 2,
            currency: Some("EUR".into()),
            items: 8.0,
            attributed: 1,
        });
        let r = DayReport::compute(&inp, &["entrance".into()]);
        assert_eq!(r.footfall, Some(8));
        assert_eq!(r.exits, Some(8));
        // 10:00 nets +5 (both doors start together), 11:00 nets −5: peak 5, closed empty.
        assert_eq!((r.peak_occupancy, r.occupancy_at_close), (Some(5), Some(0)));
        assert_eq!(
            r.doors,
            vec![
                DoorReport {
                    door: "main".into(),
                    ins: 6,
                    outs: 7
                },
                DoorReport {
                    door: "side".into(),
                    ins: 2,
                    outs: 1
                },
            ]
        );
        assert_eq!(r.wifi_detection_ratio, Some(3.0 / 8.0));
        assert_eq!(r.conversion, Some(0.5));
        assert_eq!(r.sales_per_visitor, Some(10.0));
        let hours: Vec<(u32, Option<u64>, Option<f64>)> = r
            .hourly
            .iter()
            .map(|h| (h.hour, h.footfall, h.wifi_detection_ratio))
            .collect();
        assert_eq!(
            hours,
            vec![(10, Some(6), Some(2.0 / 6.0)), (11, Some(2), Some(0.5))]
        );
        let text = r.render_text("s1");
        assert!(
            text.contains("Peak occupancy") && text.contains("Footfall"),
            "{text}"
        );
        // A window counts the doors of its hours only, the occupancy stays the day's.
        let mut win = inputs(&visits, sources);
        let day = day_totals(&intervals[3..], &clock, date);
        win.doors = Some(DoorCounts {
            window: day,
            peak_occupancy: 5,
            occupancy_at_close: 0,
            by_hour: footfall_by_hour(&intervals, &clock, date),
        });
        win.hours = HourWindow::new(11, 11);
        let r = DayReport::compute(&win, &["entrance".into()]);
        assert_eq!((r.footfall, r.visitors), (Some(2), Some(1)));
        assert_eq!(r.hourly.len(), 1);
    }

    #[test]
    fn nothing_configured_is_all_null() {
        let r = DayReport::compute(&inputs(&[], ConfiguredSources::default()), &[]);
        assert_eq!(
            (r.visitors, r.capture_rate, r.median_dwell_secs),
            (None, None, None)
        );
    }

    #[test]
    fn even_count_median_and_empty_day_with_wifi() {
        let visits = vec![
            v(VisitClass::Visitor, 1, 10, &["a"]),
            v(VisitClass::Visitor, 1, 20, &["a"]),
        ];
        let src = ConfiguredSources {
            wifi: true,
            ..Default::default()
        };
        let r = DayReport::compute(&inputs(&visits, src), &[]);
        assert_eq!(r.median_dwell_secs, Some(900.0));
        let r = DayReport::compute(&inputs(&[], src), &[]);
        assert_eq!(
            (r.visitors, r.capture_rate, r.median_dwell_secs),
            (Some(0), None, None)
        );
    }

    /// A whole-store bin of 1970-01-01 starting at `start_min` with `est` untracked devices
    /// inside (interval ±1) and `outside` devices outside.
    fn bin(start_min: i64, est: f64, outside: f64) -> PresenceRecord {
        PresenceRecord {
            start_ms: start_min * 60_000,
            local_date: "1970-01-01".into(),
            start: String::new(),
            minutes: 10,
            zone: None,
            minutes_heard: 10,
            classes: 0,
            class_minutes: 0.0,
            scans: 0,
            macs: 0,
            devices_tracked: 0.0,
            devices_estimated: est,
            outside_class_minutes: outside / crate::presence::UNITS_PER_CLASS,
            devices_outside: outside,
            devices: est,
            devices_low: (est - 1.0).max(0.0),
            devices_high: est + 1.0,
            fit_tracked: None,
            fit_estimated: None,
            people: None,
            people_low: None,
            people_high: None,
            calibration: crate::presence::CalibrationSource::Default,
            calibration_version: 0,
        }
    }

    #[test]
    fn untracked_flows_are_estimated_by_littles_law_and_added_to_the_tracked() {
        struct Case {
            name: &'static str,
            visits: Vec<ReportVisit>,
            bins: Vec<PresenceRecord>,
            // visitors (total, tracked, estimated), passers-by (total, tracked, estimated),
            // the model's origin
            want: ((u64, u64, f64), (u64, u64, f64), &'static str),
        }
        let many = |class, n, dwell| -> Vec<ReportVisit> {
            (0..n).map(|_| v(class, 10, dwell, &["a"])).collect()
        };
        let table = vec![
            Case {
                name: "no presence: the tracked only",
                visits: many(VisitClass::Visitor, 3, 10),
                bins: vec![],
                want: ((3, 3, 0.0), (0, 0, 0.0), "default"),
            },
            Case {
                // 6 bins × 2 devices × 10 min = 120 device-minutes inside: 0.9 × 120 / 20 min
                // = 5.4 visitors; 0.1 × 120 + 6 × 1 × 10 outside = 72 / 2 min = 36 passers-by.
                name: "few tracked: the defaults",
                visits: many(VisitClass::Visitor, 3, 10),
                bins: (0..6).map(|i| bin(600 + i * 10, 2.0, 1.0)).collect(),
                want: ((8, 3, 5.4), (36, 0, 36.0), "default"),
            },
            Case {
                // Visitors inside 30 min, passers-by heard 4 min and never inside: share 1;
                // 120 / 30 = 4 visitors, 60 / 4 = 15 passers-by.
                name: "learned from the tracked",
                visits: [
                    many(VisitClass::Visitor, 10, 30),
                    (0..10)
                        .map(|_| ReportVisit {
                            inside_ms: 0,
                            ..v(VisitClass::Passerby, 10, 4, &[])
                        })
                        .collect(),
                ]
                .concat(),
                bins: (0..6).map(|i| bin(600 + i * 10, 2.0, 1.0)).collect(),
                want: ((14, 10, 4.0), (25, 10, 15.0), "tracked"),
            },
        ];
        for c in table {
            let mut inp = inputs(
                &c.visits,
                ConfiguredSources {
                    wifi: true,
                    ..Default::default()
                },
            );
            inp.presence = &c.bins;
            let r = DayReport::compute(&inp, &[]);
            let got = (
                (
                    r.visitors.unwrap(),
                    r.visitors_tracked.unwrap(),
                    r.visitors_estimated.unwrap(),
                ),
                (
                    r.passersby.unwrap(),
                    r.passersby_tracked.unwrap(),
                    r.passersby_estimated.unwrap(),
                ),
                r.flow_model.as_ref().unwrap().from.as_str(),
            );
            assert_eq!(got, c.want, "{}", c.name);
            // The interval holds the figure.
            assert!(
                r.visitors_low.unwrap()
                    <= r.visitors_tracked.unwrap() as f64 + r.visitors_estimated.unwrap()
                    && r.visitors_high.unwrap()
                        >= r.visitors_tracked.unwrap() as f64 + r.visitors_estimated.unwrap(),
                "{}",
                c.name
            );
            let total = (r.visitors.unwrap() + r.passersby.unwrap()) as f64;
            assert_eq!(
                r.capture_rate,
                (total > 0.0).then(|| r.visitors.unwrap() as f64 / total),
                "{}",
                c.name
            );
        }
    }
}
