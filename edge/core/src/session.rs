//! The sessionizer: turns a time-ordered stream of sightings into visits.
//!
//! A visit is one device's sightings with gaps no longer than the visit timeout. While a visit
//! is open the sessionizer tracks its zone (see [`crate::zones`]) and how long the device was
//! inside the store; when the input's watermark passes `last sighting + visit_timeout` the visit
//! closes, is classified (visitor, passerby or staff), added to its hourly aggregate and handed
//! to the caller. Nothing here depends on how the input was batched: only sighting order and
//! watermarks matter.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::aggregate::{Aggregator, HourRecord};
use crate::clock::ClockStep;
use crate::key::{DeviceKey, KeyHasher};
use crate::params::MetricParams;
use crate::person::PersonKey;
use crate::presence::{PresenceBin, PresenceParams, PresenceTracker};
use crate::staff::StaffTracker;
use crate::time::LocalClock;
pub use crate::zones::ZoneDwell;
use crate::zones::ZoneTracker;
use crate::ZoneId;

/// What kind of frame produced a sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SightingKind {
    /// A probe request (the device is looking for networks).
    Probe,
    /// Authentication / (re)association request: the device is joining a network.
    Join,
    /// Data or null-data sent by an associated client.
    Data,
}

/// One device heard by one zone's sniffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    /// Frame time, UTC milliseconds.
    pub ts_ms: i64,
    /// The device's key.
    pub device: DeviceKey,
    /// The zone of the sniffer that heard it.
    pub zone: ZoneId,
    /// Received signal strength.
    pub rssi_dbm: i8,
    /// Frame kind.
    pub kind: SightingKind,
    /// The MAC was locally administered (randomized).
    pub randomized: bool,
    /// Probe requests: fingerprint of the IE layout (0: none).
    pub fingerprint: u32,
    /// 802.11 sequence number, when the frame has one.
    pub seq: Option<u16>,
}

/// Largest gap between one MAC's last sighting and the next MAC's first for the two to be one
/// device's visit under MAC rotation (phones change MAC between probe bursts).
pub const LINK_GAP_MS: i64 = 120_000;
/// Largest forward step of the 802.11 sequence counter across a MAC change (the counter is
/// not reset; a few frames go unheard on other channels).
pub const LINK_MAX_SEQ_STEP: u16 = 64;
/// Fragment ends kept for linking, at most (oldest dropped first).
const LINK_KEEP: usize = 16_384;
/// Shortest time between a randomized MAC's first and last frame for the MAC to be a stable
/// identity: phones that randomize per scan (iOS 16) or per burst (Android 13) use a MAC for
/// under 1.5 s, and scans repeat 17–135 s apart, so a MAC heard this long was used across
/// scans (an older phone's stable randomized MAC).
pub const MIN_STABLE_SPAN_MS: i64 = 10_000;

/// How a closed visit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VisitClass {
    /// Inside long enough (or logged in): counts as a store visitor.
    Visitor,
    /// Seen, but not inside long enough.
    Passerby,
    /// Meets the staff rule: excluded from visitor metrics.
    Staff,
}

impl VisitClass {
    /// Stable lowercase name, as stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitClass::Visitor => "visitor",
            VisitClass::Passerby => "passerby",
            VisitClass::Staff => "staff",
        }
    }

    /// Parses [`VisitClass::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visitor" => Some(VisitClass::Visitor),
            "passerby" => Some(VisitClass::Passerby),
            "staff" => Some(VisitClass::Staff),
            _ => None,
        }
    }
}

/// A closed visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// The device.
    pub device: DeviceKey,
    /// First sighting, UTC ms.
    pub start_ms: i64,
    /// Last sighting, UTC ms.
    pub end_ms: i64,
    /// Time with the strongest smoothed signal at or above `inside_dbm`, ms.
    pub inside_ms: i64,
    /// Sightings that made up the visit.
    pub sightings: u32,
    /// Classification.
    pub class: VisitClass,
    /// The MAC was randomized.
    pub randomized: bool,
    /// The device sent join or data frames (it was associated to a network) during the visit.
    pub associated: bool,
    /// Zone path with dwell per zone.
    pub path: Vec<ZoneDwell>,
    /// The person a captive-portal login during the visit named.
    pub person: Option<PersonKey>,
    /// The device logged in to the store Wi-Fi during the visit.
    pub connected: bool,
    /// IE fingerprint of its probe requests (0: none seen).
    pub fingerprint: u32,
    /// Sequence numbers of its first and last frames that had one.
    pub first_seq: Option<u16>,
    /// See `first_seq`.
    pub last_seq: Option<u16>,
    /// Counting group of a randomized, probe-only MAC: visits of one device under MAC
    /// rotation share the natural key of the first of them. For counting only, never an
    /// identity beyond the visit.
    pub group: Option<String>,
    /// The visit was open when the clock that stamps the input stepped
    /// ([`Sessionizer::clock_step`]): it ended at the step, and its times are those of the
    /// clock that was replaced.
    pub clock_step: bool,
}

impl Visit {
    /// Dwell = last − first sighting.
    pub fn dwell_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// Stable natural key (device + start), used for idempotent storage.
    pub fn natural_key(&self) -> String {
        format!("{}:{}", self.device.to_hex(), self.start_ms)
    }
}

/// An open visit's entry in the table: its last sighting inline, so the periodic sweep for
/// expired visits reads the table's memory in order instead of following every box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slot {
    /// Mirrors `visit.last_ms`.
    last_ms: i64,
    visit: Box<OpenVisit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenVisit {
    first_ms: i64,
    last_ms: i64,
    inside_ms: i64,
    inside_now: bool,
    sightings: u32,
    randomized: bool,
    associated: bool,
    zones: ZoneTracker,
    /// Boxed: few visits have a login, and every open visit would carry 32 bytes for it.
    person: Option<Box<PersonKey>>,
    connected: bool,
    fingerprint: u32,
    first_seq: Option<u16>,
    last_seq: Option<u16>,
    /// A randomized prober's sightings whose presence is not given yet: until its MAC proves
    /// stable (tracked) or [`STABLE_DECIDE_MS`] passes without that (untracked), so a stable
    /// MAC's first scan is not counted twice. At most [`PENDING_MAX`].
    pending: Vec<Pending>,
    /// Presence decided: the device is tracked from now on.
    presence_tracked: bool,
    /// Where presence last counted the device.
    marks: crate::presence::Marks,
    /// Raw-sightings rows of the bin being heard, one per zone.
    raw: SmallVec<[RawRow; 1]>,
}

/// A sighting held for presence: time, zone, RSSI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Pending {
    ts_ms: i64,
    zone: ZoneId,
    rssi_dbm: i8,
}

/// How long after a randomized prober's first frame its presence waits for the MAC to prove
/// stable: longer than the longest scan period phones use (135 s).
pub const STABLE_DECIDE_MS: i64 = 150_000;
/// Most sightings held per device while its presence waits (a scan is a few frames).
const PENDING_MAX: usize = 64;
// A presence bin must still be open when a held sighting is given to it.
const _: () = assert!(STABLE_DECIDE_MS + SWEEP_EVERY_MS <= crate::presence::SEAL_LAG_MS);

impl OpenVisit {
    /// A visit opened at `ts_ms` with nothing seen yet.
    fn new(ts_ms: i64, randomized: bool, associated: bool) -> Self {
        OpenVisit {
            first_ms: ts_ms,
            last_ms: ts_ms,
            inside_ms: 0,
            inside_now: false,
            sightings: 0,
            randomized,
            associated,
            zones: ZoneTracker::default(),
            person: None,
            connected: false,
            fingerprint: 0,
            first_seq: None,
            last_seq: None,
            pending: Vec::new(),
            presence_tracked: false,
            marks: crate::presence::Marks::default(),
            raw: SmallVec::new(),
        }
    }
}

/// The end of a counting group's latest fragment, waiting for a successor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LinkEnd {
    group: String,
    fingerprint: u32,
    end_ms: i64,
    last_seq: u16,
    zone: Option<ZoneId>,
}

/// Length of a raw-sightings row's bin, ms (ten minutes, as presence bins).
pub const RAW_BIN_MS: i64 = crate::presence::BIN_MS;

/// A raw-sightings row: a device's sightings in one zone within one [`RAW_BIN_MS`] bin (first
/// and last, strongest signal, and a bit per minute of the bin in which it was heard). The
/// agent stores these; rows of one (bin, zone, device) given out twice (a device heard in two
/// zones by turns, a replay after a restart) merge by min, max and or.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSighting {
    /// Start of the bin, UTC ms.
    pub bin_ms: i64,
    /// The zone whose sniffer heard it.
    pub zone: ZoneId,
    /// The device.
    pub device: DeviceKey,
    /// First sighting in the bin, UTC ms.
    pub first_ms: i64,
    /// Last sighting in the bin, UTC ms.
    pub last_ms: i64,
    /// Strongest signal, dBm.
    pub best_rssi: i8,
    /// Bit i: heard in minute i of the bin.
    pub minutes: u16,
}

/// An open visit's raw-sightings row of one zone, until its bin is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RawRow {
    first_ms: i64,
    last_ms: i64,
    minutes: u16,
    zone: ZoneId,
    best_rssi: i8,
}

impl RawRow {
    fn bin_ms(&self) -> i64 {
        self.first_ms.div_euclid(RAW_BIN_MS) * RAW_BIN_MS
    }

    fn finish(&self, device: DeviceKey) -> RawSighting {
        RawSighting {
            bin_ms: self.bin_ms(),
            zone: self.zone,
            device,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            best_rssi: self.best_rssi,
            minutes: self.minutes,
        }
    }
}

/// Adds a sighting to a visit's raw rows: the rows of earlier bins are over and go to `done`,
/// the row of the sighting's bin and zone takes it. The rows live in the visit, which the
/// sighting has just looked up, so no second table keyed by device is needed.
fn note_raw(
    rows: &mut SmallVec<[RawRow; 1]>,
    done: &mut Vec<RawSighting>,
    device: DeviceKey,
    s: &Sighting,
) {
    let bin = s.ts_ms.div_euclid(RAW_BIN_MS) * RAW_BIN_MS;
    let minute = 1u16 << (s.ts_ms.rem_euclid(RAW_BIN_MS) / crate::presence::MINUTE_MS);
    if rows.iter().any(|r| r.bin_ms() < bin) {
        rows.retain(|r| {
            let over = r.bin_ms() < bin;
            if over {
                done.push(r.finish(device));
            }
            !over
        });
    }
    match rows
        .iter_mut()
        .find(|r| r.zone == s.zone && r.bin_ms() == bin)
    {
        Some(r) => {
            r.first_ms = r.first_ms.min(s.ts_ms);
            r.last_ms = r.last_ms.max(s.ts_ms);
            r.best_rssi = r.best_rssi.max(s.rssi_dbm);
            r.minutes |= minute;
        }
        None => rows.push(RawRow {
            first_ms: s.ts_ms,
            last_ms: s.ts_ms,
            minutes: minute,
            zone: s.zone,
            best_rssi: s.rssi_dbm,
        }),
    }
}

/// Counters about the input, for health reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// Sightings accepted.
    pub sightings: u64,
    /// Frames weaker than `ignore_below_dbm`.
    pub ignored_weak: u64,
    /// Sightings older than the watermark by more than the visit timeout (could not be placed).
    pub too_late: u64,
    /// Visits closed.
    pub visits_closed: u64,
    /// Most visits open at once.
    pub peak_open: u64,
    /// Probe-only randomized MACs used within one scan: counted only as presence.
    pub untracked_fragments: u64,
    /// Stable randomized MACs that continued an earlier one's counting group (rotation).
    pub linked_fragments: u64,
}

/// How often (in input time) open visits are checked for closing.
const SWEEP_EVERY_MS: i64 = 10_000;

/// Farthest a step back of the input's clock moves the watermark back. The aggregator forgets
/// sealed hours two days behind the watermark; a visit re-entering a forgotten hour would
/// start its revisions over and collide with what is stored, so a step back further than a
/// day (a broken clock, not an NTP correction) rewinds only a day, and sightings older than
/// that are refused as late (and counted). A live capture's guard never lets such a step
/// through ([`crate::ClockVerdict::Distrusted`]).
pub const MAX_REWIND_MS: i64 = crate::clock::MAX_STEP_BACK_MS;
// The oldest hour a rewound input can reach: a day back, less the longest visit timeout (6 h)
// and the hour itself; it must still be kept.
const _: () = assert!(MAX_REWIND_MS + 8 * 3_600_000 < crate::aggregate::KEEP_MS);

/// Open visits, the staff tracker and the hourly aggregator: the whole core state, which the
/// agent snapshots together with its source cursors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sessionizer {
    params: MetricParams,
    #[serde(skip, default = "default_clock")]
    clock: Option<LocalClock>,
    /// Boxed visits keep each table entry at 32 bytes: with a hundred thousand devices coming
    /// and going, removals leave tombstones and the table can double while both copies are
    /// live, which with 168-byte entries alone took more than the whole memory budget.
    open: HashMap<DeviceKey, Slot, KeyHasher>,
    staff: StaffTracker,
    agg: Aggregator,
    watermark_ms: i64,
    last_sweep_ms: i64,
    stats: SessionStats,
    #[serde(skip)]
    closed: Vec<Visit>,
    /// Whether `observe` records arrivals (only a live agent with subscribers needs them).
    #[serde(skip)]
    track_arrivals: bool,
    #[serde(skip)]
    arrivals: Vec<Arrival>,
    /// Person keys of the staff phone list (from the config, not the snapshot).
    #[serde(skip)]
    staff_persons: HashSet<PersonKey>,
    /// Randomized-MAC fragments that may still get a successor.
    links: std::collections::VecDeque<LinkEnd>,
    /// Presence per zone and 10-minute bin, of tracked and untracked devices.
    presence: PresenceTracker,
    /// Presence bins sealed since the last drain.
    #[serde(skip)]
    presence_sealed: Vec<PresenceBin>,
    /// Raw-sightings rows over since the last drain (the rows still open are in the visits).
    #[serde(skip)]
    raw_done: Vec<RawSighting>,
}

/// A device came into the store: its first sighting in a visit whose smoothed signal reached
/// `inside_dbm`. Marketing triggers hang off this moment, long before the visit closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The device.
    pub device: DeviceKey,
    /// First sighting of the visit (the visit key's time).
    pub visit_start_ms: i64,
    /// The sighting that made it an arrival.
    pub ts_ms: i64,
    /// Zone heard strongest at that moment.
    pub zone: Option<ZoneId>,
}

fn default_clock() -> Option<LocalClock> {
    None
}

impl Sessionizer {
    /// A sessionizer with nothing open. `params` must have been validated.
    pub fn new(params: MetricParams, clock: LocalClock) -> Self {
        let presence = PresenceTracker::new(PresenceParams {
            inside_dbm: params.inside_dbm,
        });
        Sessionizer {
            agg: Aggregator::new(params.visit_timeout_ms, params.min_visit_dwell_ms),
            params,
            clock: Some(clock),
            open: HashMap::default(),
            staff: StaffTracker::default(),
            watermark_ms: i64::MIN,
            last_sweep_ms: i64::MIN,
            stats: SessionStats::default(),
            closed: Vec::new(),
            track_arrivals: false,
            arrivals: Vec::new(),
            staff_persons: HashSet::new(),
            links: std::collections::VecDeque::new(),
            presence,
            presence_sealed: Vec::new(),
            raw_done: Vec::new(),
        }
    }

    /// Sets the staff phone list's person keys: visits of those persons are staff visits.
    pub fn set_staff_persons(&mut self, persons: HashSet<PersonKey>) {
        self.staff_persons = persons;
    }

    /// A captive-portal login of `device` as `person` at `ts_ms`: the device's visit open at
    /// that time becomes connected and carries the person; with no open visit, the login opens
    /// one (a login is presence in the store, and makes the visit a visitor's).
    pub fn login(&mut self, ts_ms: i64, device: DeviceKey, person: PersonKey) {
        if self.watermark_ms != i64::MIN
            && ts_ms
                < self
                    .watermark_ms
                    .saturating_sub(self.params.visit_timeout_ms)
        {
            self.stats.too_late += 1;
            return;
        }
        if let Some(slot) = self.open.get(&device) {
            if ts_ms.saturating_sub(slot.last_ms) > self.params.visit_timeout_ms {
                if let Some(old) = self.open.remove(&device) {
                    self.close(device, *old.visit);
                }
            }
        }
        let slot = self.open.entry(device).or_insert_with(|| Slot {
            last_ms: ts_ms,
            // A login means the device joined the store's network.
            visit: Box::new(OpenVisit::new(ts_ms, false, true)),
        });
        let v = &mut slot.visit;
        v.first_ms = v.first_ms.min(ts_ms);
        v.last_ms = v.last_ms.max(ts_ms);
        slot.last_ms = v.last_ms;
        v.person = Some(Box::new(person));
        v.connected = true;
        self.advance(ts_ms);
    }

    /// Records [`Arrival`]s from now on (off by default; not part of the snapshot).
    pub fn track_arrivals(&mut self, on: bool) {
        self.track_arrivals = on;
        if !on {
            self.arrivals = Vec::new();
        }
    }

    /// Takes the arrivals recorded since the last call.
    pub fn drain_arrivals(&mut self) -> Vec<Arrival> {
        std::mem::take(&mut self.arrivals)
    }

    /// Whether arrivals are waiting to be drained (cheap enough to ask after every sighting).
    pub fn has_arrivals(&self) -> bool {
        !self.arrivals.is_empty()
    }

    fn clock(&self) -> LocalClock {
        // Always set by `new` and `restore`; UTC only if a caller built one through serde alone.
        self.clock.unwrap_or(LocalClock::new(chrono_tz::UTC))
    }

    /// The thresholds in use.
    pub fn params(&self) -> &MetricParams {
        &self.params
    }

    /// Feeds one sighting. Sightings should arrive in time order; small disorder is tolerated.
    pub fn observe(&mut self, s: &Sighting) {
        if s.rssi_dbm < self.params.ignore_below_dbm {
            self.stats.ignored_weak += 1;
            // Too weak to count, but the sniffer was listening.
            self.presence.heard(s.ts_ms, s.zone);
            return;
        }
        if self.watermark_ms != i64::MIN
            && s.ts_ms
                < self
                    .watermark_ms
                    .saturating_sub(self.params.visit_timeout_ms)
        {
            self.stats.too_late += 1;
            return;
        }
        self.stats.sightings += 1;
        let p = &self.params;
        if let Some(slot) = self.open.get(&s.device) {
            if s.ts_ms.saturating_sub(slot.last_ms) > p.visit_timeout_ms {
                if let Some(old) = self.open.remove(&s.device) {
                    self.close(s.device, *old.visit);
                }
            }
        }
        let p = &self.params;
        let slot = self.open.entry(s.device).or_insert_with(|| Slot {
            last_ms: s.ts_ms,
            visit: Box::new(OpenVisit::new(s.ts_ms, s.randomized, false)),
        });
        let v = &mut slot.visit;
        note_raw(&mut v.raw, &mut self.raw_done, s.device, s);
        if v.fingerprint == 0 {
            v.fingerprint = s.fingerprint;
        }
        if let Some(q) = s.seq {
            // Frames arrive in time order: the first numbered one starts, the latest ends.
            if v.first_seq.is_none() {
                v.first_seq = Some(q);
            }
            v.last_seq = Some(q);
        }
        if v.inside_now && s.ts_ms > v.last_ms {
            v.inside_ms += s.ts_ms - v.last_ms;
        }
        v.first_ms = v.first_ms.min(s.ts_ms);
        v.last_ms = v.last_ms.max(s.ts_ms);
        slot.last_ms = v.last_ms;
        v.sightings += 1;
        v.associated |= s.kind != SightingKind::Probe;
        v.zones.observe(s.zone, s.rssi_dbm, s.ts_ms, p);
        // Presence: a device with a stable identity is tracked (a global MAC, or a randomized
        // one that associated or logged in, or one whose MAC has lasted across scans); a
        // randomized prober is one of its class. Until that is known its sightings wait.
        let tracked = !s.randomized
            || v.associated
            || v.connected
            || v.person.is_some()
            || v.last_ms - v.first_ms >= MIN_STABLE_SPAN_MS;
        let was_inside = v.inside_now;
        v.inside_now = v
            .zones
            .strongest(s.ts_ms, p)
            .is_some_and(|r| r >= f32::from(p.inside_dbm));
        // First time inside in this visit: no inside time accrued yet and not inside before.
        let arrival = (self.track_arrivals && v.inside_now && !was_inside && v.inside_ms == 0)
            .then(|| Arrival {
                device: s.device,
                visit_start_ms: v.first_ms,
                ts_ms: s.ts_ms,
                zone: v.zones.current(),
            });
        if let Some(a) = arrival {
            // Staff coming in to work are not shoppers arriving.
            let day = self.clock().day_index(s.ts_ms);
            if !self.staff.is_staff(s.device, day, &self.params) {
                self.arrivals.push(a);
            }
        }
        // Staff and fixed devices are heard, never present.
        let day = self.clock().day_index(s.ts_ms);
        let here = Pending {
            ts_ms: s.ts_ms,
            zone: s.zone,
            rssi_dbm: s.rssi_dbm,
        };
        if self.staff.is_staff(s.device, day, &self.params) {
            self.presence.heard(s.ts_ms, s.zone);
        } else if tracked {
            if let Some(slot) = self.open.get_mut(&s.device) {
                slot.visit.presence_tracked = true;
                let held = std::mem::take(&mut slot.visit.pending);
                for h in held.into_iter().chain([here]) {
                    self.presence
                        .tracked(h.ts_ms, h.zone, h.rssi_dbm, &mut slot.visit.marks);
                }
            }
        } else if let Some(slot) = self.open.get_mut(&s.device) {
            if slot.visit.pending.len() < PENDING_MAX {
                slot.visit.pending.push(here);
            }
            // Heard now, whatever it turns out to be.
            self.presence.heard(s.ts_ms, s.zone);
        }
        let open = self.open.len() as u64;
        if open > self.stats.peak_open {
            self.stats.peak_open = open;
        }
        self.advance(s.ts_ms);
    }

    /// Moves the watermark (the time up to which all input has been seen) forward, closing
    /// visits that can no longer be extended and sealing hours no open visit can change.
    pub fn advance(&mut self, watermark_ms: i64) {
        if watermark_ms <= self.watermark_ms {
            return;
        }
        self.watermark_ms = watermark_ms;
        if self.last_sweep_ms != i64::MIN && watermark_ms - self.last_sweep_ms < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms = watermark_ms;
        // Randomized probers whose MAC did not prove stable in time are their class.
        for (device, slot) in self.open.iter_mut() {
            let v = &mut slot.visit;
            if !v.pending.is_empty() && watermark_ms - v.first_ms > STABLE_DECIDE_MS {
                for h in v.pending.drain(..) {
                    self.presence
                        .untracked(h.ts_ms, h.zone, h.rssi_dbm, v.fingerprint, *device);
                }
            }
        }
        let timeout = self.params.visit_timeout_ms;
        let mut expired: Vec<DeviceKey> = self
            .open
            .iter()
            .filter(|(_, slot)| watermark_ms - slot.last_ms > timeout)
            .map(|(k, _)| *k)
            .collect();
        // Close in a deterministic order whatever the map's iteration order.
        expired.sort_unstable_by_key(|k| self.open.get(k).map(|slot| (slot.visit.first_ms, *k)));
        for k in expired {
            if let Some(slot) = self.open.remove(&k) {
                self.close(k, *slot.visit);
            }
        }
        self.agg.seal(watermark_ms);
        let bins = self.presence.seal(watermark_ms);
        self.presence_sealed.extend(bins);
        let clock = self.clock();
        self.staff
            .prune(clock.day_index(watermark_ms), &self.params);
    }

    /// Something was heard in `zone` that is nobody (a fixed device): the sniffer listened.
    pub fn heard(&mut self, ts_ms: i64, zone: ZoneId) {
        self.presence.heard(ts_ms, zone);
        self.advance(ts_ms);
    }

    /// Takes the presence bins sealed (or re-sealed with a new revision) since the last call.
    pub fn drain_presence(&mut self) -> Vec<PresenceBin> {
        std::mem::take(&mut self.presence_sealed)
    }

    /// The presence bins not sealed yet, as measured so far.
    pub fn presence_open(&self) -> Vec<PresenceBin> {
        self.presence.peek()
    }

    /// Closes every open visit and seals every hour: the input has ended.
    pub fn flush(&mut self) {
        let mut all: Vec<(DeviceKey, Box<OpenVisit>)> =
            self.open.drain().map(|(k, slot)| (k, slot.visit)).collect();
        // The table is empty now; give its memory back before the closed visits are built.
        self.open.shrink_to_fit();
        all.sort_unstable_by_key(|(k, v)| (v.first_ms, *k));
        for (k, v) in all {
            self.close(k, *v);
        }
        self.agg.seal_all();
        let bins = self.presence.seal_all();
        self.presence_sealed.extend(bins);
    }

    /// The clock that stamps the input stepped (see [`crate::clock`]); the input continues on
    /// the new clock, which is the one to trust.
    ///
    /// No visit spans a step: every open visit ends at its last sighting before the step and is
    /// flagged (`Visit::clock_step`), so sightings after the step can never be merged into a
    /// visit, or an hour, on the other side of it. The hours the step touched are flagged in
    /// their hourly records ([`Aggregator::flag_step`]): a sealed one gets a new revision.
    /// After a step back the watermark moves back with the clock (by at most
    /// [`MAX_REWIND_MS`]), so what the new clock stamps is not refused as late: the hours it
    /// re-enters take the new visits as further revisions, flagged.
    pub fn clock_step(&mut self, step: ClockStep) {
        let mut all: Vec<(DeviceKey, Box<OpenVisit>)> =
            self.open.drain().map(|(k, slot)| (k, slot.visit)).collect();
        all.sort_unstable_by_key(|(k, v)| (v.first_ms, *k));
        for (k, v) in all {
            self.close_flagged(k, *v, true);
        }
        // A fragment before the step and one after it are on different clocks: never linked.
        self.links.clear();
        let clock = self.clock();
        self.agg.flag_step(step, &clock);
        let by = step.by_ms();
        if by < 0 && self.watermark_ms != i64::MIN {
            let back = by.saturating_neg().min(MAX_REWIND_MS);
            self.watermark_ms = self.watermark_ms.saturating_sub(back);
            self.last_sweep_ms = self.watermark_ms;
        }
    }

    fn close(&mut self, device: DeviceKey, v: OpenVisit) {
        self.close_flagged(device, v, false);
    }

    /// Closes a visit; `clock_step`: it is closed because the input's clock stepped.
    fn close_flagged(&mut self, device: DeviceKey, v: OpenVisit, clock_step: bool) {
        self.raw_done.extend(v.raw.iter().map(|r| r.finish(device)));
        // Closed before its presence was decided (a flush, a clock step): its class.
        for h in &v.pending {
            self.presence
                .untracked(h.ts_ms, h.zone, h.rssi_dbm, v.fingerprint, device);
        }
        let clock = self.clock();
        let p = &self.params;
        let parts = clock.split_by_day(v.first_ms, v.last_ms.max(v.first_ms + 1));
        let staff = self.staff.record(device, &parts, p)
            || v.person
                .as_ref()
                .is_some_and(|k| self.staff_persons.contains(&**k));
        let class = if staff {
            VisitClass::Staff
        } else if v.inside_ms >= p.min_visit_dwell_ms || v.connected {
            VisitClass::Visitor
        } else {
            VisitClass::Passerby
        };
        // Two populations: a randomized MAC that only probed, and only within one scan, has no
        // identity of its own (phones draw a new one per scan or burst): it is presence.
        let probe_only = v.randomized && !v.associated && !v.connected && v.person.is_none();
        let stable = v.last_ms - v.first_ms >= MIN_STABLE_SPAN_MS;
        let visit = Visit {
            device,
            start_ms: v.first_ms,
            end_ms: v.last_ms,
            inside_ms: v.inside_ms,
            sightings: v.sightings,
            class,
            randomized: v.randomized,
            associated: v.associated,
            path: v.zones.path(v.last_ms, p),
            person: v.person.map(|k| *k),
            connected: v.connected,
            fingerprint: v.fingerprint,
            first_seq: v.first_seq,
            last_seq: v.last_seq,
            group: None,
            clock_step,
        };
        if !probe_only || class == VisitClass::Staff {
            self.emit(visit);
        } else if stable {
            self.link(visit);
        } else {
            // One scan's MAC: presence only (its sightings went to the presence tracker).
            self.stats.untracked_fragments += 1;
        }
    }

    /// Gives out a closed visit: into the hours and the closed list.
    fn emit(&mut self, visit: Visit) {
        let clock = self.clock();
        self.agg.add(&visit, &clock);
        self.stats.visits_closed += 1;
        self.closed.push(visit);
    }

    /// Drops link ends past the horizon (nothing still to close can continue them) and, oldest
    /// first, beyond `max`.
    fn drop_links(&mut self, max: usize) {
        let horizon = self
            .watermark_ms
            .saturating_sub(self.params.visit_timeout_ms.saturating_mul(2) + LINK_GAP_MS);
        while self
            .links
            .front()
            .is_some_and(|e| e.end_ms < horizon || self.links.len() > max)
        {
            self.links.pop_front();
        }
    }

    /// Gives out a closed fragment of a stable randomized MAC (a probe-only phone that keeps
    /// its MAC across scans, and may rotate it every few minutes) with its counting group: it
    /// continues the group of the one fragment that ended shortly before (within
    /// [`LINK_GAP_MS`]) with the same IE fingerprint, in the same zone, when that is the only
    /// such fragment and the sequence counter carries on from it (1–[`LINK_MAX_SEQ_STEP`]);
    /// otherwise it starts a group of its own. Where several phones of one model could be the
    /// predecessor, a sequence number fits one of them by chance too often to link any.
    ///
    /// One-scan MACs never come here: phones that draw a MAC per scan or burst also draw a
    /// random sequence number (iOS 16) or restart it (Android 13), so their pieces only ever
    /// fit by chance; measured on the realistic simulated mix, such links were all chance.
    fn link(&mut self, mut v: Visit) {
        let (Some(first_seq), Some(last_seq)) = (v.first_seq, v.last_seq) else {
            self.emit(v);
            return;
        };
        if v.fingerprint == 0 {
            self.emit(v);
            return;
        }
        self.drop_links(LINK_KEEP);
        let first_zone = v.path.first().map(|z| z.zone);
        let mut candidates = self.links.iter().enumerate().filter(|(_, e)| {
            e.fingerprint == v.fingerprint
                && e.end_ms <= v.start_ms
                && v.start_ms - e.end_ms <= LINK_GAP_MS
                && (e.zone.is_none() || first_zone.is_none() || e.zone == first_zone)
        });
        let only = match (candidates.next(), candidates.next()) {
            (Some((i, e)), None) => {
                let step = first_seq.wrapping_sub(e.last_seq) & 0x0fff;
                (1..=LINK_MAX_SEQ_STEP).contains(&step).then_some(i)
            }
            _ => None,
        };
        let group = match only.and_then(|i| self.links.remove(i)) {
            Some(e) => {
                self.stats.linked_fragments += 1;
                e.group
            }
            None => v.natural_key(),
        };
        self.drop_links(LINK_KEEP - 1);
        // Kept in end order, so the oldest go first.
        let at = self.links.partition_point(|e| e.end_ms <= v.end_ms);
        self.links.insert(
            at,
            LinkEnd {
                group: group.clone(),
                fingerprint: v.fingerprint,
                end_ms: v.end_ms,
                last_seq,
                zone: v.path.last().map(|z| z.zone),
            },
        );
        v.group = Some(group);
        self.emit(v);
    }

    /// Takes the visits closed since the last call.
    pub fn drain_closed(&mut self) -> Vec<Visit> {
        std::mem::take(&mut self.closed)
    }

    /// Takes the raw-sightings rows that are over (their bin ended for the device, or its visit
    /// closed) since the last call. The rows still open travel in the snapshot.
    pub fn drain_raw(&mut self) -> Vec<RawSighting> {
        std::mem::take(&mut self.raw_done)
    }

    /// Raw-sightings rows over and not drained yet.
    pub fn raw_pending(&self) -> usize {
        self.raw_done.len()
    }

    /// Takes the hourly records sealed (or re-sealed with a new revision) since the last call.
    pub fn drain_sealed(&mut self) -> Vec<HourRecord> {
        self.agg.drain_sealed()
    }

    /// Visits open now.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Input counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The watermark reached.
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// The zone a device is in now, if it has an open visit.
    pub fn current_zone(&self, device: &DeviceKey) -> Option<ZoneId> {
        self.open
            .get(device)
            .and_then(|slot| slot.visit.zones.current())
    }

    /// Moves the whole state out, leaving in its place an empty sessionizer with the same
    /// thresholds and clock. The agent lends its core to the store's writer for a checkpoint,
    /// which encodes it straight into the database instead of through a buffer of megabytes,
    /// and puts it back after; the stand-in is never fed.
    pub fn take(&mut self) -> Sessionizer {
        let mut empty = Sessionizer::new(self.params.clone(), LocalClock::new(chrono_tz::UTC));
        empty.clock = self.clock;
        std::mem::replace(self, empty)
    }

    /// Re-attaches the clock after [`crate::snapshot::decode`].
    pub(crate) fn set_clock(&mut self, clock: LocalClock) {
        self.clock = Some(clock);
    }

    /// Replaces the thresholds after a restore (they come from the current config).
    pub(crate) fn set_params(&mut self, params: MetricParams) {
        self.agg
            .set_params(params.visit_timeout_ms, params.min_visit_dwell_ms);
        self.presence.set_params(PresenceParams {
            inside_dbm: params.inside_dbm,
        });
        self.params = params;
    }
}
