//! Presence estimation for the devices that have no stable identity, and calibration of
//! devices present into people present.
//!
//! Current phones probe with a new random MAC (and, on iOS, a random sequence number) for
//! every scan, so their probes cannot be followed as visits. What stays stable is the scan's
//! shape: units of one model and OS send byte-identical information elements, and a scan is a
//! burst of frames within about a second. The [`PresenceTracker`] therefore does not follow
//! such devices; it measures, per zone and per 10-minute bin (built from 1-minute cells):
//! - **fingerprint classes** heard inside (RSSI at or above `inside_dbm`): distinct over the
//!   bin, and on average per minute (a class active in a minute is at least one device);
//! - **scans**: frames of one class folded together while less than [`SCAN_GAP_MS`] apart,
//!   across MACs and channels;
//! - **MACs** heard inside (an upper bound: a phone uses several per scan);
//! - **tracked devices** present (devices with a stable identity, which the sessionizer follows
//!   as visits), on average per minute;
//! - **classes heard only outside** (below `inside_dbm`), on average per minute: passers-by and
//!   shoppers before they come in, from which the report estimates untracked passers-by.
//!
//! From those, [`PresenceBin::devices`] estimates the devices present with an interval, and a
//! [`Calibration`] (fitted on head counts or on a door counter's occupancy, never on the bins it
//! is then judged on) turns devices into people. Whole-store figures (`zone: None`) are measured
//! on the union of the zones' frames, so a device heard by two sniffers counts once.
//!
//! Pure: time arrives with the observations and the watermark; nothing reads a clock.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::key::DeviceKey;
use crate::key::KeyHasher;
use crate::ZoneId;

/// The base cell: one minute.
pub const MINUTE_MS: i64 = 60_000;
/// Minutes per bin.
pub const BIN_MINUTES: usize = 10;
/// A presence bin: ten minutes.
pub const BIN_MS: i64 = MINUTE_MS * BIN_MINUTES as i64;
/// Frames of one fingerprint class closer than this belong to one scan. A scan lasts 0.06–1.4 s
/// on the phones measured, with gaps between its frames well under a second; scans of one
/// device repeat after 17 s or more.
pub const SCAN_GAP_MS: i64 = 1_000;
/// Units per fingerprint class among co-present phones, as measured: 11 phones (eight iPhones on
/// iOS 16, an iPhone 7 on iOS 15, two Android 13 phones) formed 7 classes. The uncalibrated
/// estimate's scale; a calibration replaces it.
pub const UNITS_PER_CLASS: f64 = 11.0 / 7.0;
/// The most units per class the interval allows for.
pub const MAX_UNITS_PER_CLASS: f64 = 3.0;
/// Default inside threshold. A room's own phones are heard at −40 to −75 dBm by a sniffer in
/// it; −90 dBm admits the corridor and the neighbours.
pub const DEFAULT_INSIDE_DBM: i8 = -75;
/// A bin is emitted once the watermark is this far past its end: late frames of a merged
/// capture arrive within seconds, and a randomized prober's presence waits up to
/// [`crate::session::STABLE_DECIDE_MS`] (plus a sweep) for its MAC to prove stable. Later
/// changes give a new revision.
pub const SEAL_LAG_MS: i64 = 180_000;
/// Bins are kept this long after their end for late frames; older frames are refused.
pub const KEEP_MS: i64 = 6 * 3_600_000;

/// What the tracker needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PresenceParams {
    /// Frames below this RSSI (dBm) are outside: heard, but not counted as present.
    pub inside_dbm: i8,
}

impl Default for PresenceParams {
    fn default() -> Self {
        PresenceParams {
            inside_dbm: DEFAULT_INSIDE_DBM,
        }
    }
}

/// A value with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Estimate {
    /// A value known exactly.
    pub fn exact(v: f64) -> Estimate {
        Estimate {
            value: v,
            low: v,
            high: v,
        }
    }

    /// The mean of several estimates (the intervals' ends averaged too: the bins of an hour
    /// are not independent, so their errors are not taken to cancel).
    pub fn mean(of: &[Estimate]) -> Option<Estimate> {
        if of.is_empty() {
            return None;
        }
        let n = of.len() as f64;
        let sum = |f: fn(&Estimate) -> f64| of.iter().map(f).sum::<f64>() / n;
        Some(Estimate {
            value: sum(|e| e.value),
            low: sum(|e| e.low),
            high: sum(|e| e.high),
        })
    }
}

/// Devices by key (only their number is read, so the order of a hashed set is harmless).
type Keys = HashSet<DeviceKey, KeyHasher>;
/// Fingerprint classes.
type Classes = HashSet<u32, KeyHasher>;

/// One minute of one bin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cell {
    /// Anything at all was heard (any RSSI, tracked or not).
    heard: bool,
    /// Untracked fingerprint classes heard inside.
    classes: Classes,
    /// Untracked fingerprint classes heard below the inside threshold (outside, or passing).
    outside: Classes,
    /// Tracked devices heard inside (each counted once a minute through its [`Marks`]).
    tracked: u32,
}

/// A bin being filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Acc {
    cells: Vec<Cell>,
    classes: Classes,
    macs: Keys,
    /// Distinct tracked devices heard inside (each counted once a bin through its [`Marks`]).
    tracked: u32,
    scans: u32,
    /// Revisions emitted so far.
    revision: u32,
    /// Changed since it was last emitted.
    dirty: bool,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            cells: vec![Cell::default(); BIN_MINUTES],
            classes: Classes::default(),
            macs: Keys::default(),
            tracked: 0,
            scans: 0,
            revision: 0,
            dirty: false,
        }
    }
}

impl Acc {
    fn cell(&mut self, ts_ms: i64) -> &mut Cell {
        let i = (ts_ms.rem_euclid(BIN_MS) / MINUTE_MS) as usize;
        // A snapshot from elsewhere may hold fewer cells: grow rather than index past the end.
        if self.cells.len() <= i {
            self.cells.resize(BIN_MINUTES.max(i + 1), Cell::default());
        }
        &mut self.cells[i]
    }
}

/// What was measured in one bin of one zone (or of the whole store), and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceBin {
    /// Bin start, UTC ms (a multiple of [`BIN_MS`]).
    pub start_ms: i64,
    /// The zone; `None`: the whole store.
    pub zone: Option<ZoneId>,
    /// 0 for the first emission; late frames give later revisions.
    pub revision: u32,
    /// Minutes in which anything was heard.
    pub minutes_heard: u8,
    /// Distinct untracked fingerprint classes heard inside over the bin.
    pub classes: u32,
    /// Untracked classes heard inside, on average per minute.
    pub class_minutes: f64,
    /// Untracked scans heard inside.
    pub scans: u32,
    /// Distinct untracked MACs heard inside.
    pub macs: u32,
    /// Tracked devices heard inside, on average per minute.
    pub tracked: f64,
    /// Distinct tracked devices heard inside over the bin.
    pub tracked_distinct: u32,
    /// Untracked classes heard only below the inside threshold, on average per minute.
    #[serde(default)]
    pub outside_class_minutes: f64,
    /// The previous bin of the same scope, when it was heard: its tracked and estimated
    /// untracked devices (the calibration's inputs are the mean of the two bins).
    #[serde(default)]
    pub previous: Option<(f64, f64)>,
}

impl PresenceBin {
    /// Devices present: the tracked ones (average per minute) plus the untracked estimate,
    /// [`UNITS_PER_CLASS`] units per class, classes taken half as distinct over the bin and
    /// half as active per minute (the first counts a phone that scanned once, the second
    /// misses a phone in the minutes it did not scan). Interval: from one unit per class active
    /// per minute to [`MAX_UNITS_PER_CLASS`] per distinct class, at most one per MAC.
    pub fn devices(&self) -> Estimate {
        let classes = (f64::from(self.classes) + self.class_minutes) / 2.0;
        let untracked = classes * UNITS_PER_CLASS;
        let high = (f64::from(self.classes) * MAX_UNITS_PER_CLASS)
            .min(f64::from(self.macs))
            .max(untracked);
        Estimate {
            value: self.tracked + untracked,
            low: self.tracked + self.class_minutes.min(untracked),
            high: self.tracked + high,
        }
    }

    /// The untracked devices a calibration takes: [`UNITS_PER_CLASS`] per distinct class heard
    /// inside over the bin. A phone scans every 17–135 s, so over ten minutes each class
    /// present is heard; per minute, a class is missed in the minutes its phones did not scan.
    pub fn fit_estimated(&self) -> f64 {
        f64::from(self.classes) * UNITS_PER_CLASS
    }

    /// The tracked part of [`PresenceBin::devices`].
    pub fn devices_tracked(&self) -> f64 {
        self.tracked
    }

    /// Untracked devices heard only outside (below the inside threshold): passers-by, and
    /// shoppers before they come in; the same units per class as inside.
    pub fn devices_outside(&self) -> f64 {
        self.outside_class_minutes * UNITS_PER_CLASS
    }
}

/// Where a tracked device was last counted: the minute and bin, and the scopes (a bit per zone,
/// the top bit for the whole store) it was counted in there. Kept by the sessionizer with the
/// device's open visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    minute: i64,
    in_minute: u32,
    bin: i64,
    in_bin: u32,
}

impl Default for Marks {
    fn default() -> Marks {
        Marks {
            minute: i64::MIN,
            in_minute: 0,
            bin: i64::MIN,
            in_bin: 0,
        }
    }
}

impl Marks {
    /// The bit of a scope: zones 0–30, the store 31.
    fn bit(scope: Option<ZoneId>) -> u32 {
        match scope {
            Some(z) => 1 << u32::from(z).min(30),
            None => 1 << 31,
        }
    }
}

/// Measures presence per zone and bin. Feed every Wi-Fi frame's hearing ([`Self::heard`]),
/// the untracked probes ([`Self::untracked`]) and the tracked devices' sightings
/// ([`Self::tracked`]) in time order (small disorder is fine), then [`Self::seal`] with the
/// watermark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresenceTracker {
    params: PresenceParams,
    bins: BTreeMap<(i64, Option<ZoneId>), Acc>,
    /// Last frame time per (zone, class): scan folding.
    last_frame: HashMap<(Option<ZoneId>, u32), i64>,
    watermark_ms: i64,
    /// Observations older than the kept bins, refused.
    too_late: u64,
    /// The minute last marked heard, per zone (a cache: rebuilt after a restore).
    #[serde(skip)]
    heard_minute: Vec<i64>,
}

/// The two keys an observation counts under: its zone and the whole store.
fn scopes(zone: ZoneId) -> [Option<ZoneId>; 2] {
    [Some(zone), None]
}

fn bin_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(BIN_MS).saturating_mul(BIN_MS)
}

impl PresenceTracker {
    /// An empty tracker.
    pub fn new(params: PresenceParams) -> Self {
        PresenceTracker {
            params,
            bins: BTreeMap::new(),
            last_frame: HashMap::new(),
            watermark_ms: i64::MIN,
            too_late: 0,
            heard_minute: Vec::new(),
        }
    }

    /// Applies new thresholds (a restored snapshot takes the configured ones).
    pub fn set_params(&mut self, params: PresenceParams) {
        self.params = params;
    }

    /// The thresholds in use.
    pub fn params(&self) -> PresenceParams {
        self.params
    }

    /// Observations refused because their bin was no longer kept.
    pub fn too_late(&self) -> u64 {
        self.too_late
    }

    fn late(&mut self, ts_ms: i64) -> bool {
        if self.watermark_ms != i64::MIN
            && bin_start(ts_ms).saturating_add(BIN_MS + KEEP_MS) <= self.watermark_ms
        {
            self.too_late += 1;
            return true;
        }
        false
    }

    fn acc(&mut self, ts_ms: i64, scope: Option<ZoneId>) -> &mut Acc {
        let a = self.bins.entry((bin_start(ts_ms), scope)).or_default();
        a.dirty = true;
        a
    }

    /// Something was heard in `zone` at `ts_ms` (any frame, any RSSI): the minute is covered.
    pub fn heard(&mut self, ts_ms: i64, zone: ZoneId) {
        if !self.late(ts_ms) {
            self.mark_heard(ts_ms, zone);
        }
    }

    fn mark_heard(&mut self, ts_ms: i64, zone: ZoneId) {
        // Most frames fall in a minute already marked for their zone: skip the bin lookups.
        let minute = ts_ms.div_euclid(MINUTE_MS);
        let z = usize::from(zone);
        if self.heard_minute.get(z) == Some(&minute) {
            return;
        }
        if self.heard_minute.len() <= z {
            self.heard_minute.resize(z + 1, i64::MIN);
        }
        self.heard_minute[z] = minute;
        for s in scopes(zone) {
            let a = self.bins.entry((bin_start(ts_ms), s)).or_default();
            let c = a.cell(ts_ms);
            if !c.heard {
                c.heard = true;
                a.dirty = true;
            }
        }
    }

    /// A probe of a device without a stable identity: its IE `fingerprint` class, its MAC's
    /// key, its RSSI.
    pub fn untracked(
        &mut self,
        ts_ms: i64,
        zone: ZoneId,
        rssi_dbm: i8,
        fingerprint: u32,
        mac: DeviceKey,
    ) {
        if self.late(ts_ms) {
            return;
        }
        self.mark_heard(ts_ms, zone);
        if rssi_dbm < self.params.inside_dbm {
            for s in scopes(zone) {
                self.acc(ts_ms, s).cell(ts_ms).outside.insert(fingerprint);
            }
            return;
        }
        for s in scopes(zone) {
            let last = self.last_frame.insert((s, fingerprint), ts_ms);
            let new_scan = last.is_none_or(|l| (ts_ms - l).abs() > SCAN_GAP_MS);
            let a = self.acc(ts_ms, s);
            a.cell(ts_ms).classes.insert(fingerprint);
            a.classes.insert(fingerprint);
            a.macs.insert(mac);
            if new_scan {
                a.scans += 1;
            }
        }
    }

    /// A sighting of a tracked device (one the sessionizer follows), with the device's
    /// [`Marks`]: it counts once per minute and once per bin in each scope, without a set of
    /// device keys per minute (a busy store tracks a hundred thousand devices an hour).
    pub fn tracked(&mut self, ts_ms: i64, zone: ZoneId, rssi_dbm: i8, marks: &mut Marks) {
        if self.late(ts_ms) {
            return;
        }
        self.mark_heard(ts_ms, zone);
        if rssi_dbm < self.params.inside_dbm {
            return;
        }
        let minute = ts_ms.div_euclid(MINUTE_MS);
        let bin = bin_start(ts_ms);
        if minute < marks.minute || bin < marks.bin {
            // Out of order by more than a minute: counted already, or too little to matter.
            return;
        }
        if minute > marks.minute {
            marks.minute = minute;
            marks.in_minute = 0;
        }
        if bin > marks.bin {
            marks.bin = bin;
            marks.in_bin = 0;
        }
        for s in scopes(zone) {
            let bit = Marks::bit(s);
            let (new_minute, new_bin) = (marks.in_minute & bit == 0, marks.in_bin & bit == 0);
            if !new_minute && !new_bin {
                continue;
            }
            marks.in_minute |= bit;
            marks.in_bin |= bit;
            let a = self.acc(ts_ms, s);
            if new_minute {
                a.cell(ts_ms).tracked += 1;
            }
            if new_bin {
                a.tracked += 1;
            }
        }
    }

    /// Emits every bin that ended at least [`SEAL_LAG_MS`] before `watermark_ms` and changed
    /// since it was last emitted (a first emission has revision 0), and forgets bins older
    /// than [`KEEP_MS`].
    pub fn seal(&mut self, watermark_ms: i64) -> Vec<PresenceBin> {
        self.watermark_ms = self.watermark_ms.max(watermark_ms);
        let wm = self.watermark_ms;
        let mut out = Vec::new();
        let due: Vec<(i64, Option<ZoneId>)> = self
            .bins
            .iter()
            .filter(|(&(start, _), a)| a.dirty && start.saturating_add(BIN_MS + SEAL_LAG_MS) <= wm)
            .map(|(&k, _)| k)
            .collect();
        for key in due {
            out.push(self.measure_at(key));
            if let Some(a) = self.bins.get_mut(&key) {
                a.dirty = false;
                a.revision += 1;
            }
        }
        self.bins
            .retain(|&(start, _), a| a.dirty || start.saturating_add(BIN_MS + KEEP_MS) > wm);
        self.last_frame
            .retain(|_, &mut t| t.saturating_add(SCAN_GAP_MS) >= wm.saturating_sub(KEEP_MS));
        out
    }

    /// Emits every bin changed since it was last emitted, sealed or not (the input ended); the
    /// watermark stays, so input that follows later is still taken.
    pub fn seal_all(&mut self) -> Vec<PresenceBin> {
        let due: Vec<(i64, Option<ZoneId>)> = self
            .bins
            .iter()
            .filter(|(_, a)| a.dirty)
            .map(|(&k, _)| k)
            .collect();
        let mut out = Vec::new();
        for key in due {
            out.push(self.measure_at(key));
            if let Some(a) = self.bins.get_mut(&key) {
                a.dirty = false;
                a.revision += 1;
            }
        }
        out
    }

    /// Every bin still open or kept, as measured now (for a report of the running day).
    pub fn peek(&self) -> Vec<PresenceBin> {
        self.bins.keys().map(|&k| self.measure_at(k)).collect()
    }

    /// The bin at `key` as measured now, with its previous bin's figures when that was heard
    /// (bins are kept [`KEEP_MS`], so a revision sees the same previous bin as the first seal).
    fn measure_at(&self, key: (i64, Option<ZoneId>)) -> PresenceBin {
        let (start, zone) = key;
        let Some(a) = self.bins.get(&key) else {
            return measure(start, zone, &Acc::default());
        };
        let mut bin = measure(start, zone, a);
        bin.previous = self
            .bins
            .get(&(start.saturating_sub(BIN_MS), zone))
            .map(|p| measure(start.saturating_sub(BIN_MS), zone, p))
            .filter(|p| p.minutes_heard > 0)
            .map(|p| (p.tracked, p.fit_estimated()));
        bin
    }
}

fn measure(start_ms: i64, zone: Option<ZoneId>, a: &Acc) -> PresenceBin {
    let n = BIN_MINUTES as f64;
    let per_minute = |f: fn(&Cell) -> usize| a.cells.iter().map(f).sum::<usize>() as f64 / n;
    PresenceBin {
        start_ms,
        zone,
        revision: a.revision,
        minutes_heard: a.cells.iter().filter(|c| c.heard).count() as u8,
        classes: a.classes.len() as u32,
        class_minutes: per_minute(|c| c.classes.len()),
        scans: a.scans,
        macs: a.macs.len() as u32,
        tracked: per_minute(|c| c.tracked as usize),
        tracked_distinct: a.tracked,
        outside_class_minutes: per_minute(|c| c.outside.difference(&c.classes).count()),
        previous: None,
    }
}

/// Where a calibration's samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationSource {
    /// Occupancy from a door counter (ins − outs).
    Door,
    /// Manual head counts.
    Headcounts,
    /// No samples: people are not estimated.
    Default,
}

impl CalibrationSource {
    /// The label used in reports and records.
    pub fn label(self) -> &'static str {
        match self {
            CalibrationSource::Door => "door",
            CalibrationSource::Headcounts => "headcounts",
            CalibrationSource::Default => "default",
        }
    }
}

/// The fewest samples a fit takes.
pub const MIN_SAMPLES: usize = 6;
/// The z value of the intervals: 90 % two-sided.
pub const Z90: f64 = 1.645;

/// Why a calibration was not fitted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FitError {
    /// Fewer than [`MIN_SAMPLES`] samples.
    TooFewSamples {
        /// How many there were.
        got: usize,
    },
    /// All samples have the same devices figure, or the same people figure: no slope.
    NoVariance {
        /// `devices` or `people`.
        what: &'static str,
    },
    /// More devices went with fewer people: the samples do not describe this store.
    NotIncreasing {
        /// The fitted slope.
        slope: f64,
    },
    /// A sample is not a finite number, or people is negative.
    BadSample {
        /// Its index.
        index: usize,
    },
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::TooFewSamples { got } => write!(
                f,
                "too few samples: {got}, a fit needs at least {MIN_SAMPLES}"
            ),
            FitError::NoVariance { what } => {
                write!(f, "no variance: every sample has the same {what} figure")
            }
            FitError::NotIncreasing { slope } => write!(
                f,
                "more devices went with fewer people (slope {slope:.3}): the samples do not fit this store"
            ),
            FitError::BadSample { index } => write!(
                f,
                "sample {index} is not a finite, non-negative figure"
            ),
        }
    }
}

impl std::error::Error for FitError {}

/// The reason label of a [`FitError`].
impl FitError {
    /// Snake-case reason.
    pub fn reason(&self) -> &'static str {
        match self {
            FitError::TooFewSamples { .. } => "too_few_samples",
            FitError::NoVariance { .. } => "no_variance",
            FitError::NotIncreasing { .. } => "not_increasing",
            FitError::BadSample { .. } => "bad_sample",
        }
    }
}

/// What a calibration maps to people: tracked devices and estimated untracked devices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitInput {
    /// Tracked devices present.
    pub tracked: f64,
    /// Estimated untracked devices present, with its interval.
    pub estimated: Estimate,
}

/// One point of a fit: the inputs and the people counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitPoint {
    /// Tracked devices present.
    pub tracked: f64,
    /// Estimated untracked devices present.
    pub estimated: f64,
    /// People present.
    pub people: f64,
    /// The sample's group (its day): with three groups or more, which populations the fit
    /// uses is chosen by how well each choice predicts a group left out.
    pub group: u32,
}

/// Which populations a fit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uses {
    Both,
    Estimated,
    Tracked,
}

impl Uses {
    const ALL: [Uses; 3] = [Uses::Both, Uses::Estimated, Uses::Tracked];

    /// Least squares through the origin of `points` on the populations used: (tracked slope,
    /// estimated slope); `None` when a slope would not be positive.
    fn solve<'a>(self, points: impl Iterator<Item = &'a FitPoint> + Clone) -> Option<(f64, f64)> {
        let sum = |f: &dyn Fn(&FitPoint) -> f64| points.clone().map(f).sum::<f64>();
        let (stt, stu, suu) = (
            sum(&|p| p.tracked * p.tracked),
            sum(&|p| p.tracked * p.estimated),
            sum(&|p| p.estimated * p.estimated),
        );
        let (sty, suy) = (
            sum(&|p| p.tracked * p.people),
            sum(&|p| p.estimated * p.people),
        );
        match self {
            Uses::Both => {
                let det = stt * suu - stu * stu;
                if !(det > 1e-9 * stt * suu && det > 0.0) {
                    return None;
                }
                let a = (sty * suu - suy * stu) / det;
                let b = (suy * stt - sty * stu) / det;
                (a > 0.0 && b > 0.0).then_some((a, b))
            }
            Uses::Estimated => (suu > 0.0 && suy > 0.0).then(|| (0.0, suy / suu)),
            Uses::Tracked => (stt > 0.0 && sty > 0.0).then(|| (sty / stt, 0.0)),
        }
    }

    fn slopes(self) -> f64 {
        if self == Uses::Both {
            2.0
        } else {
            1.0
        }
    }
}

/// A linear map from devices present to people present, with what its interval needs.
///
/// Fits since definitions version 3 go through the origin (no devices, no people) with a
/// non-negative slope for each population: `people = slope_tracked × tracked + slope ×
/// estimated`. Head counts are mostly taken when people are there, and a free intercept then
/// predicts people in an empty store; a store where one population does not follow people
/// (laptops next door, say) gets a zero slope for it. Calibrations stored before carry no
/// `slope_tracked` and keep their old form, `intercept + slope × devices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Where the samples came from.
    pub source: CalibrationSource,
    /// Version (1, 2, …; 0 for the default).
    pub version: u32,
    /// When it was fitted, UTC ms.
    pub fitted_at_ms: i64,
    /// Samples it was fitted on.
    pub samples: u32,
    /// People at zero devices (0 for fits through the origin).
    pub intercept: f64,
    /// People per estimated untracked device (per device in the old form).
    pub slope: f64,
    /// People per tracked device; `None`: the old form, one slope for all devices.
    #[serde(default)]
    pub slope_tracked: Option<f64>,
    /// Residual standard deviation, people.
    pub residual_sd: f64,
    /// Mean devices figure of the samples.
    pub mean_devices: f64,
    /// Sum of squared deviations of the samples' devices figures.
    pub sxx: f64,
    /// Pearson r of fitted and counted people on the samples.
    pub r: f64,
}

impl Calibration {
    /// The default: no samples, no people figure.
    pub fn uncalibrated() -> Calibration {
        Calibration {
            source: CalibrationSource::Default,
            version: 0,
            fitted_at_ms: 0,
            samples: 0,
            intercept: 0.0,
            slope: 1.0,
            slope_tracked: None,
            residual_sd: 0.0,
            mean_devices: 0.0,
            sxx: 0.0,
            r: 0.0,
        }
    }

    /// Whether people can be estimated.
    pub fn is_calibrated(&self) -> bool {
        self.source != CalibrationSource::Default
    }

    /// Fits people on the two populations through the origin by non-negative least squares
    /// (both slopes, or the better of one alone). Refused with too few samples, no spread in
    /// devices or people, or devices and people going opposite ways.
    pub fn fit(
        points: &[FitPoint],
        source: CalibrationSource,
        version: u32,
        fitted_at_ms: i64,
    ) -> Result<Calibration, FitError> {
        if let Some(index) = points.iter().position(|p| {
            [p.tracked, p.estimated, p.people]
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
        }) {
            return Err(FitError::BadSample { index });
        }
        if points.len() < MIN_SAMPLES {
            return Err(FitError::TooFewSamples { got: points.len() });
        }
        let n = points.len() as f64;
        let x = |p: &FitPoint| p.tracked + p.estimated;
        let mx = points.iter().map(x).sum::<f64>() / n;
        let my = points.iter().map(|p| p.people).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (x(p) - mx).powi(2)).sum();
        let syy: f64 = points.iter().map(|p| (p.people - my).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (x(p) - mx) * (p.people - my)).sum();
        // Below a hundredth of a device (or person) of spread there is nothing to fit.
        if sxx <= 1e-4 * n {
            return Err(FitError::NoVariance { what: "devices" });
        }
        if syy <= 1e-4 * n {
            return Err(FitError::NoVariance { what: "people" });
        }
        if sxy <= 0.0 {
            return Err(FitError::NotIncreasing { slope: sxy / sxx });
        }
        let sse = |(a, b): (f64, f64), of: &mut dyn Iterator<Item = &FitPoint>| {
            of.map(|p| (p.people - a * p.tracked - b * p.estimated).powi(2))
                .sum::<f64>()
        };
        let groups: std::collections::BTreeSet<u32> = points.iter().map(|p| p.group).collect();
        // The populations used: with three groups or more, the choice that best predicts each
        // group from the others (a population that only follows people on the days it was
        // fitted on is left out); otherwise the smallest squared error.
        let score = |uses: Uses| -> Option<f64> {
            if groups.len() >= 3 {
                let mut err = 0.0;
                for &g in &groups {
                    let slopes = uses.solve(points.iter().filter(|p| p.group != g))?;
                    err += sse(slopes, &mut points.iter().filter(|p| p.group == g));
                }
                Some(err)
            } else {
                Some(sse(uses.solve(points.iter())?, &mut points.iter()))
            }
        };
        let Some(uses) = Uses::ALL
            .into_iter()
            .filter_map(|u| Some((u, score(u)?)))
            .min_by(|l, r| l.1.total_cmp(&r.1))
            .map(|(u, _)| u)
        else {
            return Err(FitError::NotIncreasing { slope: sxy / sxx });
        };
        let Some((a, b)) = uses.solve(points.iter()) else {
            return Err(FitError::NotIncreasing { slope: sxy / sxx });
        };
        let k = uses.slopes();
        let fitted: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (a * p.tracked + b * p.estimated, p.people))
            .collect();
        Ok(Calibration {
            source,
            version,
            fitted_at_ms,
            samples: points.len() as u32,
            intercept: 0.0,
            slope: b,
            slope_tracked: Some(a),
            residual_sd: (sse((a, b), &mut points.iter()) / (n - k).max(1.0)).sqrt(),
            mean_devices: mx,
            sxx,
            r: pearson(&fitted),
        })
    }

    /// People present for the inputs; `None` while uncalibrated. The interval is the fit's
    /// 90 % prediction interval around the point estimate, widened by the estimated devices'
    /// interval mapped through the fit. Never below zero.
    pub fn people(&self, input: &FitInput) -> Option<Estimate> {
        if !self.is_calibrated() {
            return None;
        }
        let n = f64::from(self.samples.max(1));
        let (t, e) = (input.tracked, &input.estimated);
        // The old form (no tracked slope) has one slope for all devices.
        let a = self.slope_tracked.unwrap_or(self.slope);
        let at = |u: f64| (self.intercept + a * t + self.slope * u).max(0.0);
        // The old form's interval also widens with the distance from the samples' devices.
        let spread = |u: f64| {
            let lever = match self.slope_tracked {
                None if self.sxx > 0.0 => (t + u - self.mean_devices).powi(2) / self.sxx,
                _ => 0.0,
            };
            Z90 * self.residual_sd * (1.0 + 1.0 / n + lever).sqrt()
        };
        let value = at(e.value);
        Some(Estimate {
            value,
            low: (at(e.low) - spread(e.low)).max(0.0).min(value),
            high: (at(e.high) + spread(e.high)).max(value),
        })
    }
}

/// Two decimals: stored figures stay compact and replay to the same text.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A sealed presence bin as stored and sent: what was measured, the devices estimate, and
/// people through the calibration in force for the bin (none while uncalibrated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// Bin start, UTC ms.
    pub start_ms: i64,
    /// Store-local date of the start.
    pub local_date: String,
    /// Store-local start, RFC 3339 with offset.
    pub start: String,
    /// Length, minutes.
    pub minutes: u32,
    /// Zone name; `None`: the whole store.
    pub zone: Option<String>,
    /// Minutes in which anything was heard.
    pub minutes_heard: u8,
    /// Distinct untracked fingerprint classes heard inside.
    pub classes: u32,
    /// Untracked classes per minute.
    pub class_minutes: f64,
    /// Untracked scans.
    pub scans: u32,
    /// Distinct untracked MACs.
    pub macs: u32,
    /// Tracked devices present, per minute.
    pub devices_tracked: f64,
    /// Estimated untracked devices present.
    pub devices_estimated: f64,
    /// Untracked classes heard only outside, per minute.
    #[serde(default)]
    pub outside_class_minutes: f64,
    /// Estimated untracked devices heard only outside (passers-by, shoppers before coming in).
    #[serde(default)]
    pub devices_outside: f64,
    /// Devices present (tracked + estimated), with its interval.
    pub devices: f64,
    /// Lower end.
    pub devices_low: f64,
    /// Upper end.
    pub devices_high: f64,
    /// The calibration's inputs: tracked devices, and estimated untracked devices, each the
    /// mean of this bin and the previous one when that was heard (a phone scans every 17–135 s,
    /// so one bin's count of classes is noisy). `None` in records stored before they existed:
    /// the bin's own figures are used.
    #[serde(default)]
    pub fit_tracked: Option<f64>,
    /// See `fit_tracked`.
    #[serde(default)]
    pub fit_estimated: Option<f64>,
    /// People present; `None` while uncalibrated.
    pub people: Option<f64>,
    /// Lower end.
    pub people_low: Option<f64>,
    /// Upper end.
    pub people_high: Option<f64>,
    /// Where the calibration came from.
    pub calibration: CalibrationSource,
    /// Its version (0: the default).
    pub calibration_version: u32,
}

impl PresenceRecord {
    /// The record of `bin`, its zone named `zone`, its start in store-local time.
    pub fn new(
        bin: &PresenceBin,
        zone: Option<String>,
        clock: &crate::LocalClock,
        calibration: &Calibration,
    ) -> PresenceRecord {
        let d = bin.devices();
        let estimated = bin.fit_estimated();
        let (fit_tracked, fit_estimated) = match bin.previous {
            Some((t, e)) => ((bin.tracked + t) / 2.0, (estimated + e) / 2.0),
            None => (bin.tracked, estimated),
        };
        let local = clock.local(bin.start_ms);
        let mut r = PresenceRecord {
            start_ms: bin.start_ms,
            local_date: local.date_naive().to_string(),
            start: local.to_rfc3339(),
            minutes: BIN_MINUTES as u32,
            zone,
            minutes_heard: bin.minutes_heard,
            classes: bin.classes,
            class_minutes: round2(bin.class_minutes),
            scans: bin.scans,
            macs: bin.macs,
            devices_tracked: round2(bin.tracked),
            devices_estimated: round2(d.value - bin.tracked),
            outside_class_minutes: round2(bin.outside_class_minutes),
            devices_outside: round2(bin.devices_outside()),
            devices: round2(d.value),
            devices_low: round2(d.low),
            devices_high: round2(d.high),
            fit_tracked: Some(round2(fit_tracked)),
            fit_estimated: Some(round2(fit_estimated)),
            people: None,
            people_low: None,
            people_high: None,
            calibration: CalibrationSource::Default,
            calibration_version: 0,
        };
        r.calibrate(calibration);
        r
    }

    /// Sets the people figure (and which calibration gave it) from the devices figure.
    pub fn calibrate(&mut self, calibration: &Calibration) {
        let p = calibration.people(&self.fit_input());
        self.people = p.map(|e| round2(e.value));
        self.people_low = p.map(|e| round2(e.low));
        self.people_high = p.map(|e| round2(e.high));
        self.calibration = calibration.source;
        self.calibration_version = calibration.version;
    }

    /// The devices estimate.
    pub fn devices_estimate(&self) -> Estimate {
        Estimate {
            value: self.devices,
            low: self.devices_low,
            high: self.devices_high,
        }
    }

    /// What a calibration maps to people: the (smoothed) tracked and estimated devices, the
    /// estimated part's interval carried over from the bin's devices interval.
    pub fn fit_input(&self) -> FitInput {
        let tracked = self.fit_tracked.unwrap_or(self.devices_tracked);
        let estimated = self.fit_estimated.unwrap_or(self.devices_estimated);
        FitInput {
            tracked,
            estimated: Estimate {
                value: estimated,
                low: (estimated - (self.devices - self.devices_low).max(0.0)).max(0.0),
                high: estimated + (self.devices_high - self.devices).max(0.0),
            },
        }
    }

    /// The people estimate, when calibrated.
    pub fn people_estimate(&self) -> Option<Estimate> {
        Some(Estimate {
            value: self.people?,
            low: self.people_low?,
            high: self.people_high?,
        })
    }
}

/// Fewest minutes of a bin the sniffers must have heard for the bin to be a calibration
/// sample: a bin heard only in part (capture down, adapter unplugged) shows few devices
/// whatever the people, and one such sample bends the whole fit.
pub const MIN_MINUTES_HEARD_TO_FIT: u8 = 8;

/// Longest silence of a door counter after which its occupancy is not taken as a sample.
pub const DOOR_MAX_GAP_MS: i64 = 30 * MINUTE_MS;

/// One calibration sample: a bin's devices figure and the people present then.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The bin's start, UTC ms.
    pub start_ms: i64,
    /// Its store-local date (held-out checks leave out a day at a time).
    pub local_date: String,
    /// Devices present.
    pub devices: f64,
    /// The calibration's inputs ([`PresenceRecord::fit_input`]).
    pub input: FitInput,
    /// People present.
    pub people: f64,
}

/// Counts of people joined with the bins holding them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Joined {
    /// The samples.
    pub samples: Vec<Sample>,
    /// Counts with no stored bin at their time.
    pub no_bin: usize,
    /// Counts whose bin was heard less than [`MIN_MINUTES_HEARD_TO_FIT`] minutes.
    pub unheard: usize,
}

impl PresenceRecord {
    /// Whether the bin can be a calibration sample ([`MIN_MINUTES_HEARD_TO_FIT`]).
    pub fn fit_worthy(&self) -> bool {
        self.minutes_heard >= MIN_MINUTES_HEARD_TO_FIT
    }

    fn sample(&self, people: f64) -> Sample {
        Sample {
            start_ms: self.start_ms,
            local_date: self.local_date.clone(),
            devices: self.devices,
            input: self.fit_input(),
            people,
        }
    }
}

/// Joins counts of people present at instants (head counts) with the records of one scope
/// (the whole store, or one zone) holding them: each (time, people) becomes a sample of the
/// bin containing the time.
pub fn samples_at(records: &[PresenceRecord], counts: &[(i64, f64)]) -> Joined {
    let by_start: HashMap<i64, &PresenceRecord> = records.iter().map(|r| (r.start_ms, r)).collect();
    let mut out = Joined::default();
    for &(t, people) in counts {
        match by_start.get(&bin_start(t)) {
            None => out.no_bin += 1,
            Some(r) if !r.fit_worthy() => out.unheard += 1,
            Some(r) => out.samples.push(r.sample(people)),
        }
    }
    out
}

/// Samples from a door counter: each whole-store record heard enough, with the occupancy
/// ([`crate::counter::occupancy_series`], days concatenated in order) at the bin's middle.
/// Bins the counter was silent for longer than [`DOOR_MAX_GAP_MS`] are left out.
pub fn door_samples(records: &[PresenceRecord], occupancy: &[(i64, u64)]) -> Vec<Sample> {
    records
        .iter()
        .filter(|r| r.zone.is_none() && r.fit_worthy())
        .filter_map(|r| {
            let occ =
                crate::counter::occupancy_at(occupancy, r.start_ms + BIN_MS / 2, DOOR_MAX_GAP_MS)?;
            Some(r.sample(occ as f64))
        })
        .collect()
}

/// How a calibration does on days it was not fitted on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    /// Days judged (each with a fit on the other days).
    pub days: usize,
    /// Samples judged.
    pub samples: usize,
    /// Mean absolute error, people.
    pub mae: f64,
    /// Pearson r of predicted and counted people (0 when either does not vary).
    pub r: f64,
}

/// Leave-one-day-out: for each day, fits on the other days and predicts that day's samples.
/// `None` with fewer than two days or when no day could be judged (too few samples elsewhere).
pub fn held_out(samples: &[Sample]) -> Option<HeldOut> {
    let days: std::collections::BTreeSet<&str> =
        samples.iter().map(|s| s.local_date.as_str()).collect();
    if days.len() < 2 {
        return None;
    }
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut judged = 0;
    for day in &days {
        let train: Vec<FitPoint> = samples
            .iter()
            .filter(|s| s.local_date != *day)
            .map(Sample::point)
            .collect();
        let Ok(fit) = Calibration::fit(&train, CalibrationSource::Headcounts, 0, 0) else {
            continue;
        };
        judged += 1;
        pairs.extend(
            samples
                .iter()
                .filter(|s| s.local_date == *day)
                .filter_map(|s| Some((fit.people(&s.input)?.value, s.people))),
        );
    }
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let mae = pairs.iter().map(|p| (p.0 - p.1).abs()).sum::<f64>() / n;
    Some(HeldOut {
        days: judged,
        samples: pairs.len(),
        mae,
        r: pearson(&pairs),
    })
}

/// Pearson r of pairs; 0 when either side does not vary.
pub fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return 0.0;
    }
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// The samples' (devices, people) pairs.
pub fn pairs(samples: &[Sample]) -> Vec<(f64, f64)> {
    samples.iter().map(|s| (s.devices, s.people)).collect()
}

/// A store-local date (`YYYY-MM-DD`) as a number (days since the common era; 0 if malformed),
/// the group of a sample.
fn day_number(date: &str) -> u32 {
    use chrono::Datelike;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| u32::try_from(d.num_days_from_ce()).unwrap_or(0))
        .unwrap_or(0)
}

/// The samples' fit points, for [`Calibration::fit`].
pub fn points(samples: &[Sample]) -> Vec<FitPoint> {
    samples.iter().map(Sample::point).collect()
}

impl Sample {
    /// The sample as a fit point.
    pub fn point(&self) -> FitPoint {
        FitPoint {
            tracked: self.input.tracked,
            estimated: self.input.estimated.value,
            people: self.people,
            group: day_number(&self.local_date),
        }
    }
}

/// Which keys (by their [`DeviceKey`]) are fixed devices: never people.
pub type FixedDevices = HashSet<DeviceKey>;

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_200_000 - 1_795_000_200_000 % BIN_MS; // a bin start

    fn key(n: u8) -> DeviceKey {
        DeviceKey([n; 16])
    }

    #[test]
    fn classes_heard_only_outside_are_counted_apart() {
        let mut p = PresenceTracker::new(PresenceParams::default());
        let weak = DEFAULT_INSIDE_DBM - 10;
        // Minute 0: class A outside only; class B outside then inside (inside wins).
        p.untracked(T, 0, weak, 0xA, key(1));
        p.untracked(T + 1_000, 0, weak, 0xB, key(2));
        p.untracked(T + 5_000, 0, -50, 0xB, key(3));
        // Minute 1: class A outside again.
        p.untracked(T + MINUTE_MS, 0, weak, 0xA, key(4));
        let bins = p.seal(T + BIN_MS + SEAL_LAG_MS);
        let store = bins.iter().find(|b| b.zone.is_none()).unwrap();
        assert_eq!(store.classes, 1, "only B inside");
        // Two outside-only class-minutes over the 10 minutes.
        assert!(
            (store.outside_class_minutes - 0.2).abs() < 1e-9,
            "{store:?}"
        );
        assert!((store.devices_outside() - 0.2 * UNITS_PER_CLASS).abs() < 1e-9);
        assert_eq!(store.macs, 1, "outside MACs are not inside devices");
    }

    /// The calibration's inputs average a bin with the previous one of its scope when that was
    /// heard; a bin after a silent one (or the first) stands alone; a revision sees the same
    /// previous bin.
    #[test]
    fn calibration_inputs_average_a_bin_with_the_one_before() {
        let mut p = PresenceTracker::new(PresenceParams::default());
        let mut marks = Marks::default();
        // Bin 0: four classes inside. Bin 1: none, one tracked device in every minute.
        // Bin 2: silent. Bin 3: two classes.
        for c in 0..4u32 {
            p.untracked(T + 1_000, 0, -50, c, key(c as u8));
        }
        for m in 0..10 {
            p.tracked(T + BIN_MS + m * MINUTE_MS, 0, -50, &mut marks);
        }
        for c in 0..2u32 {
            p.untracked(T + 3 * BIN_MS, 0, -50, 10 + c, key(10 + c as u8));
        }
        let clock = crate::LocalClock::new(chrono_tz::UTC);
        let records: Vec<PresenceRecord> = p
            .seal(T + 4 * BIN_MS + SEAL_LAG_MS)
            .iter()
            .filter(|b| b.zone.is_none())
            .map(|b| PresenceRecord::new(b, None, &clock, &Calibration::uncalibrated()))
            .collect();
        let starts: Vec<i64> = records.iter().map(|r| (r.start_ms - T) / BIN_MS).collect();
        assert_eq!(starts, vec![0, 1, 3], "a silent bin is not emitted");
        // Four distinct classes in bin 0, two in bin 3.
        let est0 = 4.0 * UNITS_PER_CLASS;
        // (tracked, estimated) inputs per bin.
        let want = [(0.0, est0), (0.5, est0 / 2.0), (0.0, 2.0 * UNITS_PER_CLASS)];
        for (r, (t, e)) in records.iter().zip(want) {
            let (ft, fe) = (r.fit_tracked.unwrap(), r.fit_estimated.unwrap());
            assert!((ft - t).abs() < 0.01 && (fe - e).abs() < 0.01, "{r:?}");
        }
        // A late frame in bin 1 gives a revision, still averaged with bin 0.
        p.tracked(T + BIN_MS + 30_000, 1, -50, &mut Marks::default());
        let rev = p.seal(T + 4 * BIN_MS + SEAL_LAG_MS);
        let store = rev
            .iter()
            .find(|b| b.zone.is_none() && b.start_ms == T + BIN_MS)
            .unwrap();
        assert_eq!(store.previous.map(|p| p.0), Some(0.0));
        assert!((store.previous.unwrap().1 - est0).abs() < 0.01);
    }

    #[test]
    fn frames_of_a_class_within_a_second_are_one_scan_across_macs() {
        let mut p = PresenceTracker::new(PresenceParams::default());
        // An iPhone: one scan, three MACs (one per channel), 0.3 s apart; another scan 30 s
        // later; a second model's scan at the same time.
        for (dt, mac, fp) in [
            (0, 1, 0xA),
            (300, 2, 0xA),
            (600, 3, 0xA),
            (30_000, 4, 0xA),
            (30_200, 5, 0xA),
            (100, 6, 0xB),
        ] {
            p.untracked(T + dt, 0, -50, fp, key(mac));
        }
        let bins = p.seal(T + BIN_MS + SEAL_LAG_MS);
        let store = bins.iter().find(|b| b.zone.is_none()).unwrap();
        let zone = bins.iter().find(|b| b.zone == Some(0)).unwrap();
        assert_eq!(
            &store.clone().with_zone(Some(0)),
            zone,
            "one zone: the store is the zone"
        );
        assert_eq!(zone.scans, 3);
        assert_eq!(zone.classes, 2);
        assert_eq!(zone.macs, 6);
        assert_eq!(zone.minutes_heard, 1);
        assert!((zone.class_minutes - 0.2).abs() < 1e-9);
    }

    impl PresenceBin {
        fn with_zone(mut self, z: Option<ZoneId>) -> Self {
            self.zone = z;
            self
        }
    }

    #[test]
    fn outside_frames_are_heard_but_not_present() {
        let mut marks = [Marks::default(); 4];
        let mut p = PresenceTracker::new(PresenceParams { inside_dbm: -70 });
        p.untracked(T, 0, -80, 0xA, key(1));
        p.tracked(T + 61_000, 0, -85, &mut marks[2]);
        let b = &p.seal(T + BIN_MS + SEAL_LAG_MS)[0];
        assert_eq!((b.minutes_heard, b.classes, b.macs, b.scans), (2, 0, 0, 0));
        assert_eq!(b.tracked_distinct, 0);
        assert_eq!(b.devices(), Estimate::exact(0.0));
    }

    #[test]
    fn the_store_counts_a_device_heard_by_two_zones_once() {
        let mut marks = [Marks::default(); 4];
        let mut p = PresenceTracker::new(PresenceParams::default());
        p.tracked(T, 0, -50, &mut marks[1]);
        p.tracked(T + 1_000, 1, -60, &mut marks[1]);
        p.untracked(T + 2_000, 0, -50, 0xA, key(2));
        p.untracked(T + 2_100, 1, -55, 0xA, key(3));
        let bins = p.seal(T + BIN_MS + SEAL_LAG_MS);
        assert_eq!(bins.len(), 3);
        let store = bins.iter().find(|b| b.zone.is_none()).unwrap();
        assert_eq!(store.tracked_distinct, 1);
        assert_eq!(store.classes, 1);
        assert_eq!(store.scans, 1, "one scan heard by both sniffers");
        for z in [0, 1] {
            let b = bins.iter().find(|b| b.zone == Some(z)).unwrap();
            assert_eq!((b.tracked_distinct, b.classes, b.scans), (1, 1, 1));
        }
    }

    /// Table: per-minute classes and distinct classes give the estimate and its interval.
    #[test]
    fn devices_estimate_and_interval() {
        let bin = |classes, class_minutes, macs, tracked| PresenceBin {
            start_ms: T,
            zone: None,
            revision: 0,
            minutes_heard: 10,
            classes,
            class_minutes,
            scans: 0,
            macs,
            tracked,
            tracked_distinct: 0,
            outside_class_minutes: 0.0,
            previous: None,
        };
        let table = [
            // classes, per minute, macs, tracked → value, low, high
            (bin(0, 0.0, 0, 0.0), (0.0, 0.0, 0.0)),
            (bin(0, 0.0, 0, 3.0), (3.0, 3.0, 3.0)),
            (bin(7, 7.0, 40, 0.0), (11.0, 7.0, 21.0)),
            // Few MACs cap the high end, never below the point estimate.
            (bin(7, 7.0, 12, 0.0), (11.0, 7.0, 12.0)),
            (bin(7, 7.0, 9, 2.0), (13.0, 9.0, 13.0)),
            (bin(4, 2.0, 30, 0.0), (3.0 * UNITS_PER_CLASS, 2.0, 12.0)),
        ];
        for (b, (v, lo, hi)) in table {
            let e = b.devices();
            assert!(
                (e.value - v).abs() < 1e-9
                    && (e.low - lo).abs() < 1e-9
                    && (e.high - hi).abs() < 1e-9,
                "{b:?}: {e:?}"
            );
        }
    }

    #[test]
    fn late_frames_revise_a_sealed_bin_and_old_ones_are_refused() {
        let mut p = PresenceTracker::new(PresenceParams::default());
        p.untracked(T, 0, -50, 0xA, key(1));
        assert!(p.seal(T + BIN_MS).is_empty(), "not before the lag");
        let first = p.seal(T + BIN_MS + SEAL_LAG_MS);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|b| b.revision == 0 && b.classes == 1));
        assert!(p.seal(T + BIN_MS + SEAL_LAG_MS + 1).is_empty(), "unchanged");
        p.untracked(T + 5_000, 0, -50, 0xB, key(2));
        let second = p.seal(T + 2 * BIN_MS);
        assert!(second.iter().all(|b| b.revision == 1 && b.classes == 2));
        p.seal(T + BIN_MS + KEEP_MS + 1);
        p.untracked(T + 6_000, 0, -50, 0xC, key(3));
        assert_eq!(p.too_late(), 1);
        assert!(p.seal(T + BIN_MS + KEEP_MS + 2).is_empty());
    }

    #[test]
    fn the_end_of_the_input_seals_everything_and_later_input_is_taken() {
        let mut p = PresenceTracker::new(PresenceParams::default());
        p.untracked(T, 0, -50, 0xA, key(1));
        assert_eq!(p.seal_all().len(), 2);
        assert!(p.seal_all().is_empty());
        // The next file of the same store, a day later.
        p.untracked(T + 86_400_000, 0, -50, 0xA, key(2));
        assert_eq!(p.too_late(), 0);
        assert_eq!(p.seal_all().len(), 2);
    }

    #[test]
    fn the_tracker_survives_a_snapshot() {
        let mut marks = [Marks::default(); 4];
        let mut p = PresenceTracker::new(PresenceParams::default());
        p.untracked(T, 0, -50, 0xA, key(1));
        p.tracked(T + 1, 0, -50, &mut marks[2]);
        let bytes = postcard::to_stdvec(&p).unwrap();
        let mut q: PresenceTracker = postcard::from_bytes(&bytes).unwrap();
        q.untracked(T + 500, 0, -50, 0xA, key(3));
        let b = q.seal(T + BIN_MS + SEAL_LAG_MS);
        let z = b.iter().find(|b| b.zone == Some(0)).unwrap();
        assert_eq!((z.scans, z.macs, z.tracked_distinct), (1, 2, 1));
    }

    fn input(tracked: f64, estimated: f64) -> FitInput {
        FitInput {
            tracked,
            estimated: Estimate::exact(estimated),
        }
    }

    /// Table: the fit goes through the origin with a non-negative slope per population, and
    /// finds which population follows people.
    #[test]
    fn a_fit_maps_both_populations_to_people_through_the_origin() {
        let noise = |i: i32| if i % 2 == 0 { 0.4 } else { -0.4 };
        // (name, points, slope_tracked, slope)
        type Gen = Box<dyn Fn(i32) -> FitPoint>;
        let table: Vec<(&str, Gen, f64, f64)> = vec![
            (
                "people follow the estimated devices; tracked ones are laptops next door",
                Box::new(move |i| FitPoint {
                    tracked: f64::from((i * 7) % 5),
                    estimated: f64::from(i),
                    people: 2.0 * f64::from(i) + noise(i),
                    group: 0,
                }),
                0.0,
                2.0,
            ),
            (
                "both populations are people",
                Box::new(move |i| FitPoint {
                    tracked: f64::from(i % 4),
                    estimated: f64::from(i),
                    people: f64::from(i % 4) + 1.5 * f64::from(i) + noise(i),
                    group: 0,
                }),
                1.0,
                1.5,
            ),
            (
                "only tracked devices follow people",
                Box::new(move |i| FitPoint {
                    tracked: f64::from(i),
                    estimated: f64::from((i * 3) % 4),
                    people: 1.2 * f64::from(i) + noise(i),
                    group: 0,
                }),
                1.2,
                0.0,
            ),
        ];
        for (name, gen, want_t, want_u) in table {
            let points: Vec<FitPoint> = (0..16).map(&gen).collect();
            let c = Calibration::fit(&points, CalibrationSource::Headcounts, 1, 5).unwrap();
            let a = c.slope_tracked.unwrap();
            assert!(a >= 0.0 && c.slope >= 0.0, "{name}: {c:?}");
            assert!((a - want_t).abs() < 0.15, "{name}: tracked slope {a}");
            assert!((c.slope - want_u).abs() < 0.15, "{name}: slope {}", c.slope);
            assert_eq!(c.intercept, 0.0, "{name}");
            assert!(c.r > 0.95, "{name}: {c:?}");
            // No devices, no people.
            assert_eq!(c.people(&input(0.0, 0.0)).unwrap().value, 0.0, "{name}");
        }
    }

    /// With samples of several days, a population that follows people only on some days (the
    /// laptops of a class next door on the day they met) is left out: each choice is judged on
    /// days it was not fitted on.
    #[test]
    fn a_population_that_does_not_predict_other_days_is_left_out() {
        let points: Vec<FitPoint> = (0..4u32)
            .flat_map(|day| {
                (0..10).map(move |i| {
                    let u = f64::from(i);
                    // Tracked devices rise with people on day 0 only.
                    let t = if day == 0 {
                        u
                    } else {
                        f64::from((i * 7 + day as i32) % 10)
                    };
                    FitPoint {
                        tracked: t,
                        estimated: u,
                        people: 1.5 * u + if i % 2 == 0 { 0.5 } else { -0.5 },
                        group: day,
                    }
                })
            })
            .collect();
        let c = Calibration::fit(&points, CalibrationSource::Headcounts, 1, 5).unwrap();
        assert_eq!(c.slope_tracked, Some(0.0), "{c:?}");
        assert!((c.slope - 1.5).abs() < 0.05, "{c:?}");
        // Without days to judge by, the smallest squared error decides.
        let one_day: Vec<FitPoint> = points.iter().map(|p| FitPoint { group: 0, ..*p }).collect();
        let c1 = Calibration::fit(&one_day, CalibrationSource::Headcounts, 1, 5).unwrap();
        assert!(c1.slope_tracked.unwrap() >= 0.0 && c1.slope > 1.0, "{c1:?}");
    }

    #[test]
    fn people_have_an_interval_that_widens_with_the_devices_interval() {
        let points: Vec<FitPoint> = (0..12)
            .map(|i| FitPoint {
                tracked: 0.0,
                estimated: f64::from(i),
                people: 2.0 * f64::from(i) + if i % 2 == 0 { 0.5 } else { -0.5 },
                group: 0,
            })
            .collect();
        let c = Calibration::fit(&points, CalibrationSource::Headcounts, 1, 5).unwrap();
        let p = c.people(&input(0.0, 5.0)).unwrap();
        assert!((p.value - 10.0).abs() < 0.3, "{p:?}");
        assert!(
            p.low < p.value && p.high > p.value && p.high - p.low < 3.0,
            "{p:?}"
        );
        let wide = c
            .people(&FitInput {
                tracked: 0.0,
                estimated: Estimate {
                    value: 5.0,
                    low: 3.0,
                    high: 9.0,
                },
            })
            .unwrap();
        assert!(wide.high - wide.low > p.high - p.low + 5.0, "{wide:?}");
        assert!(c.people(&input(0.0, 0.0)).unwrap().low >= 0.0);
        assert_eq!(Calibration::uncalibrated().people(&input(1.0, 5.0)), None);
    }

    /// A calibration stored before the two slopes keeps its form: intercept + slope × devices.
    #[test]
    fn a_stored_calibration_of_the_old_form_keeps_its_meaning() {
        let old: Calibration = serde_json::from_str(
            r#"{"source":"door","version":2,"fitted_at_ms":1,"samples":50,"intercept":1.0,
                "slope":2.0,"residual_sd":0.0,"mean_devices":4.0,"sxx":100.0,"r":0.9}"#,
        )
        .unwrap();
        assert_eq!(old.slope_tracked, None);
        let p = old.people(&input(1.0, 2.0)).unwrap();
        assert!((p.value - 7.0).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn degenerate_fits_are_refused_with_their_reason() {
        let line: Vec<(f64, f64)> = (0..8).map(|i| (f64::from(i), f64::from(i))).collect();
        let table: Vec<(Vec<(f64, f64)>, &str)> = vec![
            (line[..5].to_vec(), "too_few_samples"),
            ((0..8).map(|i| (3.0, f64::from(i))).collect(), "no_variance"),
            ((0..8).map(|i| (f64::from(i), 4.0)).collect(), "no_variance"),
            (
                (0..8)
                    .map(|i| (f64::from(i), 10.0 - f64::from(i)))
                    .collect(),
                "not_increasing",
            ),
            (
                {
                    let mut s = line.clone();
                    s[3].1 = f64::NAN;
                    s
                },
                "bad_sample",
            ),
            (
                {
                    let mut s = line.clone();
                    s[2].1 = -1.0;
                    s
                },
                "bad_sample",
            ),
        ];
        for (samples, reason) in table {
            let points: Vec<FitPoint> = samples
                .iter()
                .map(|&(x, y)| FitPoint {
                    tracked: 0.0,
                    estimated: x,
                    people: y,
                    group: 0,
                })
                .collect();
            let e = Calibration::fit(&points, CalibrationSource::Headcounts, 1, 0).unwrap_err();
            assert_eq!(e.reason(), reason, "{samples:?}: {e}");
        }
    }

    fn record(start_ms: i64, local_date: &str, devices: f64, minutes_heard: u8) -> PresenceRecord {
        let mut r = PresenceRecord::new(
            &PresenceBin {
                start_ms,
                zone: None,
                revision: 0,
                minutes_heard,
                classes: 0,
                class_minutes: 0.0,
                scans: 0,
                macs: 0,
                tracked: 0.0,
                tracked_distinct: 0,
                outside_class_minutes: 0.0,
                previous: None,
            },
            None,
            &crate::LocalClock::new(chrono_tz::UTC),
            &Calibration::uncalibrated(),
        );
        r.local_date = local_date.to_string();
        r.devices = devices;
        r
    }

    #[test]
    fn samples_join_the_bin_holding_each_count_and_skip_unheard_bins() {
        let recs = [
            record(T, "d1", 4.0, 10),
            record(T + BIN_MS, "d1", 6.0, 10),
            record(T + 2 * BIN_MS, "d1", 1.0, 3),
        ];
        let j = samples_at(
            &recs,
            &[
                (T + 1, 2.0),
                (T + BIN_MS + 5, 3.0),
                (T + 2 * BIN_MS, 5.0),
                (T + 9 * BIN_MS, 1.0),
            ],
        );
        assert_eq!((j.no_bin, j.unheard), (1, 1));
        let got: Vec<(f64, f64)> = pairs(&j.samples);
        assert_eq!(got, vec![(4.0, 2.0), (6.0, 3.0)]);
    }

    #[test]
    fn door_samples_read_occupancy_at_the_bin_middle_while_the_counter_talks() {
        let recs = [
            record(T, "d1", 4.0, 10),
            record(T + BIN_MS, "d1", 6.0, 10),
            record(T + 2 * BIN_MS, "d1", 6.0, 2),
            record(T + 9 * BIN_MS, "d1", 6.0, 10),
        ];
        // Steps at T+3 min (5 inside) and T+12 min (8 inside), then silence.
        let occ = [(T + 3 * MINUTE_MS, 5), (T + 12 * MINUTE_MS, 8)];
        let got = pairs(&door_samples(&recs, &occ));
        assert_eq!(got, vec![(4.0, 5.0), (6.0, 8.0)]);
    }

    #[test]
    fn held_out_days_are_judged_by_fits_on_the_other_days() {
        // Three days of people = 0.5 × devices, the third with a bias of +2 people.
        let mut samples = Vec::new();
        for (d, bias) in [("d1", 0.0), ("d2", 0.0), ("d3", 2.0)] {
            for i in 0..8 {
                let x = f64::from(i) * 2.0;
                samples.push(Sample {
                    start_ms: T,
                    local_date: d.to_string(),
                    devices: x,
                    input: FitInput {
                        tracked: 0.0,
                        estimated: Estimate::exact(x),
                    },
                    people: 0.5 * x + bias,
                });
            }
        }
        let h = held_out(&samples).unwrap();
        assert_eq!((h.days, h.samples), (3, 24));
        assert!(h.r > 0.8, "{h:?}");
        // d3 is predicted from d1 and d2 (slope 0.5, 2 below each sample); d1 and d2 from a
        // fit pulled up by d3 (slope (280 + 280 + 112) / 1120 = 0.6, 0.1 × 7 above on average):
        // the mean error is (0.7 + 0.7 + 2) / 3.
        assert!((h.mae - 3.4 / 3.0).abs() < 0.01, "{h:?}");
        // One day alone cannot be held out.
        let one: Vec<Sample> = samples
            .iter()
            .filter(|s| s.local_date == "d1")
            .cloned()
            .collect();
        assert_eq!(held_out(&one), None);
    }
}
