//! The plan of a simulated period: who is there on which day, when, and where (no frames yet).
//!
//! Planning draws from ChaCha stream 0 of the seed in a fixed order, so the plan depends only on
//! the parameters. Frames are drawn later, while streaming (see `run`), so memory stays
//! proportional to the number of devices, not frames.

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::models::{
    ANDROID13_POOL, FIXED_POOL, GALAXY_S22_ANDROID13, GLOBAL_POOL, IOS16_POOL, IPHONE11_IOS15,
    IPHONE13_IOS16, IPHONE14_IOS16, IPHONE15_IOS17, IPHONESE3_IOS16, LEGACY_MODELS, MODELS,
    PIXEL7_ANDROID13, REMEMBERED_SSIDS, STABLE_RANDOM_POOL,
};
use crate::params::{PhoneMix, Scenario, SimParams, MIN_MAC_ROTATION_SECS};
use crate::radio::{sniffer_x, DOOR_X_M};
use crate::truth::Behaviour;

/// One second in microseconds.
pub(crate) const SEC: i64 = 1_000_000;
/// One minute in microseconds.
pub(crate) const MIN: i64 = 60 * SEC;

/// Share of visitors that are short visits (inside < 5 min, truth kind passerby).
pub(crate) const SHORT_VISIT_SHARE: f64 = 0.08;
/// Share of devices that remember an SSID and probe for it by name.
const REMEMBERED_SSID_SHARE: f64 = 0.3;
/// Connected visitors associate this long after arrival.
pub(crate) const ASSOC_DELAY_US: i64 = 2 * MIN;
/// Passers-by walk from this x to [`PASSERBY_NEAREST_X_M`] and back.
pub(crate) const PASSERBY_FAR_X_M: f64 = -25.0;
/// Closest a passer-by gets to the entrance sniffer.
pub(crate) const PASSERBY_NEAREST_X_M: f64 = -10.0;
/// Scan period of an iOS 16-like phone, seconds: drawn once per device in this range.
pub(crate) const IOS16_PERIOD_S: (f64, f64) = (17.0, 135.0);
/// Scan period of an Android 13-like phone, seconds: drawn once per device in this range.
pub(crate) const ANDROID13_PERIOD_S: (f64, f64) = (20.0, 160.0);
/// Fixed devices are on from this long before opening to this long after closing.
pub(crate) const FIXED_MARGIN_US: i64 = 60 * MIN;
/// The co-present case's phones: class and model (see [`Scenario::CoPresent`]): four iOS 16
/// models (3 + 2 + 2 + 1 units), one iOS 15 and two Android 13 models: 7 classes.
pub(crate) const CO_PRESENT_CAST: [(Behaviour, u8); 11] = [
    (Behaviour::Ios16, IPHONE14_IOS16),
    (Behaviour::Ios16, IPHONE13_IOS16),
    (Behaviour::Android13, GALAXY_S22_ANDROID13),
    (Behaviour::Ios16, IPHONE14_IOS16),
    (Behaviour::Ios16, IPHONE15_IOS17),
    (Behaviour::StableRandom, IPHONE11_IOS15),
    (Behaviour::Ios16, IPHONE13_IOS16),
    (Behaviour::Ios16, IPHONESE3_IOS16),
    (Behaviour::Android13, PIXEL7_ANDROID13),
    (Behaviour::Ios16, IPHONE14_IOS16),
    (Behaviour::Ios16, IPHONE15_IOS17),
];
/// The co-present phones arrive within this long after opening, seconds.
const CO_PRESENT_ARRIVAL_S: f64 = 30.0;
/// … and stay 7 minutes plus up to this long, seconds.
const CO_PRESENT_EXTRA_S: f64 = 30.0;

/// What a device is, as planned (truth kind follows from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A visitor staying at least 6 minutes inside.
    Visitor,
    /// A visitor inside for only 60–210 s (truth kind passerby).
    ShortVisit,
    /// Walks past the door outside.
    Passerby,
    /// Staff, present most of the day, every day.
    Staff,
    /// A fixed device of the store (truth kind staff), on all day in one zone, every day.
    Fixed,
}

/// A device identity, stable across days.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub mac: [u8; 6],
    pub randomized: bool,
    /// Index into [`MODELS`].
    pub model: u8,
    /// Index into [`REMEMBERED_SSIDS`].
    pub ssid: Option<u8>,
    /// How it probes (a presence may differ: see [`Presence::behaviour`]).
    pub behaviour: Behaviour,
    /// Time between scans of a per-scan-MAC phone (`ios16`, `android13`), µs; 0 otherwise.
    pub scan_period_us: i64,
    /// The zone a fixed device stands in (0 for the others).
    pub home_zone: u8,
}

/// A stay in one zone, `[start_us, end_us)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stay {
    pub zone: u8,
    pub start_us: i64,
    pub end_us: i64,
}

/// A device's presence on one day.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    pub identity: u32,
    /// The shopper (stable across days) for visitors; `None` for passers-by and staff.
    pub person: Option<u32>,
    pub role: Role,
    pub connected: bool,
    pub start_us: i64,
    pub end_us: i64,
    /// Range into [`DayPlan::stays`]; empty for passers-by (they walk, see [`Presence::walk_x`]).
    pub stays_from: u32,
    pub stays_len: u32,
    /// The MAC the device transmits with from `start_us`.
    pub mac: [u8; 6],
    /// MAC rotations during the presence: from each instant (ascending) on, the device uses
    /// that MAC. Empty unless [`SimParams::mac_rotation_secs`] is set and the device is a
    /// probe-only randomized one.
    pub mac_changes: Vec<(i64, [u8; 6])>,
    /// The device's class on this presence: its identity's, except `Rotating` for a
    /// stable-random one whose MAC rotates ([`SimParams::mac_rotation_secs`]).
    pub behaviour: Behaviour,
}

impl Presence {
    /// This presence's stays.
    pub(crate) fn stays<'a>(&self, all: &'a [Stay]) -> &'a [Stay] {
        let from = self.stays_from as usize;
        &all[from..from + self.stays_len as usize]
    }

    /// Whether the device probes from a new MAC per scan (or per channel of a scan): a
    /// probe-only `ios16` or `android13` presence. Its MACs are drawn while streaming.
    pub(crate) fn per_scan_macs(&self) -> bool {
        !self.connected && matches!(self.behaviour, Behaviour::Ios16 | Behaviour::Android13)
    }

    /// Whether the device uses more than [`Presence::mac`]: the MACs of its clean frames are
    /// then recorded while streaming ([`crate::run::DaySeen::macs`]).
    pub(crate) fn tracks_macs(&self) -> bool {
        !self.mac_changes.is_empty() || self.per_scan_macs()
    }

    /// The MAC the device transmits with at `t_us`.
    pub(crate) fn mac_at(&self, t_us: i64) -> [u8; 6] {
        let i = self.mac_changes.partition_point(|&(from, _)| from <= t_us);
        match i.checked_sub(1) {
            Some(k) => self.mac_changes[k].1,
            None => self.mac,
        }
    }

    /// Position of a passer-by at `t_us`: out to the nearest point and back, linearly.
    pub(crate) fn walk_x(&self, t_us: i64) -> f64 {
        let span = (self.end_us - self.start_us).max(1) as f64;
        let f = ((t_us - self.start_us) as f64 / span).clamp(0.0, 1.0);
        let closeness = 1.0 - (2.0 * f - 1.0).abs();
        PASSERBY_FAR_X_M + (PASSERBY_NEAREST_X_M - PASSERBY_FAR_X_M) * closeness
    }

    /// Zone the device stands in at `t_us` (clamped to its first/last stay), if it has stays.
    pub(crate) fn zone_at(&self, all: &[Stay], t_us: i64) -> Option<u8> {
        let stays = self.stays(all);
        let i = stays.partition_point(|s| s.end_us <= t_us);
        stays
            .get(i.min(stays.len().checked_sub(1)?))
            .map(|s| s.zone)
    }
}

/// Everything on one day.
#[derive(Debug, Clone)]
pub(crate) struct DayPlan {
    pub date: NaiveDate,
    /// The scored day, the last of the period (`Truth::visits` reports it).
    pub main: bool,
    /// A day of the period (visitors, passers-by and staff); otherwise a staff-only history day.
    pub period: bool,
    pub presences: Vec<Presence>,
    pub stays: Vec<Stay>,
}

impl DayPlan {
    /// Span covered by the AP's beacons: from the first arrival to the last departure.
    pub(crate) fn beacon_window(&self) -> Option<(i64, i64)> {
        let start = self.presences.iter().map(|p| p.start_us).min()?;
        let end = self.presences.iter().map(|p| p.end_us).max()?;
        Some((start, end))
    }
}

/// All days, oldest first: history days, then the period; the main day is last.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub identities: Vec<Identity>,
    pub days: Vec<DayPlan>,
}

/// Uniform duration in whole microseconds between `lo_s` and `hi_s` seconds.
fn secs(rng: &mut ChaCha8Rng, lo_s: f64, hi_s: f64) -> i64 {
    (rng.gen_range(lo_s..hi_s) * 1e6).round() as i64
}

struct IdentityMaker {
    used: HashSet<[u8; 6]>,
}

impl IdentityMaker {
    /// A device of the `Legacy` mix: one of the legacy models, a global or a random MAC.
    fn make(&mut self, rng: &mut ChaCha8Rng, randomized: bool) -> Identity {
        let model = rng.gen_range(0..LEGACY_MODELS as u8);
        let ssid = if rng.gen_bool(REMEMBERED_SSID_SHARE) {
            Some(rng.gen_range(0..REMEMBERED_SSIDS.len() as u8))
        } else {
            None
        };
        let ouis = MODELS[usize::from(model)].ouis;
        let oui = ouis[crate::draw_index(rng, ouis.len())];
        loop {
            let mut mac: [u8; 6] = rng.gen();
            if randomized {
                // Locally administered, unicast.
                mac[0] = (mac[0] & 0xfc) | 0x02;
            } else {
                mac[..3].copy_from_slice(&oui);
            }
            if self.used.insert(mac) {
                return Identity {
                    mac,
                    randomized,
                    model,
                    ssid,
                    behaviour: if randomized {
                        Behaviour::StableRandom
                    } else {
                        Behaviour::Global
                    },
                    scan_period_us: 0,
                    home_zone: 0,
                };
            }
        }
    }

    /// A device of the `Realistic` mix of class `behaviour`: its model (`model`, or one drawn
    /// uniformly from the class's pool), remembered SSID, scan period, zone (fixed devices)
    /// and MAC (global from the model's OUIs for `global` and `fixed`, else locally
    /// administered: the phone's per-network MAC, or its MAC for the visit).
    fn make_realistic(
        &mut self,
        rng: &mut ChaCha8Rng,
        behaviour: Behaviour,
        model: Option<u8>,
        zones: usize,
    ) -> Identity {
        let model = model.unwrap_or_else(|| {
            let pool = match behaviour {
                Behaviour::Ios16 => IOS16_POOL,
                Behaviour::Android13 => ANDROID13_POOL,
                Behaviour::StableRandom | Behaviour::Rotating => STABLE_RANDOM_POOL,
                Behaviour::Global => GLOBAL_POOL,
                Behaviour::Fixed => FIXED_POOL,
            };
            pool[crate::draw_index(rng, pool.len())]
        });
        let ssid = if behaviour != Behaviour::Fixed && rng.gen_bool(REMEMBERED_SSID_SHARE) {
            Some(rng.gen_range(0..REMEMBERED_SSIDS.len() as u8))
        } else {
            None
        };
        let scan_period_us = match behaviour {
            Behaviour::Ios16 => secs(rng, IOS16_PERIOD_S.0, IOS16_PERIOD_S.1),
            Behaviour::Android13 => secs(rng, ANDROID13_PERIOD_S.0, ANDROID13_PERIOD_S.1),
            _ => 0,
        };
        let home_zone = if behaviour == Behaviour::Fixed {
            crate::draw_index(rng, zones) as u8
        } else {
            0
        };
        let randomized = behaviour.randomized();
        let ouis = MODELS[usize::from(model)].ouis;
        let oui = ouis[crate::draw_index(rng, ouis.len())];
        loop {
            let mut mac: [u8; 6] = rng.gen();
            if randomized {
                mac[0] = (mac[0] & 0xfc) | 0x02;
            } else {
                mac[..3].copy_from_slice(&oui);
            }
            if self.used.insert(mac) {
                return Identity {
                    mac,
                    randomized,
                    model,
                    ssid,
                    behaviour,
                    scan_period_us,
                    home_zone,
                };
            }
        }
    }

    /// A visitor's or passer-by's device of `params`' mix.
    fn make_visitor(&mut self, rng: &mut ChaCha8Rng, params: &SimParams) -> Identity {
        match params.phone_mix {
            PhoneMix::Legacy => {
                let randomized = rng.gen_bool(params.randomized_share);
                self.make(rng, randomized)
            }
            PhoneMix::Realistic => {
                let behaviour = draw_behaviour(rng);
                self.make_realistic(rng, behaviour, None, params.zone_count())
            }
        }
    }

    /// A fresh locally administered unicast MAC no device has used yet.
    fn fresh_local(&mut self, rng: &mut ChaCha8Rng) -> [u8; 6] {
        loop {
            let mut mac: [u8; 6] = rng.gen();
            mac[0] = (mac[0] & 0xfc) | 0x02;
            if self.used.insert(mac) {
                return mac;
            }
        }
    }
}

/// A class of the `Realistic` mix, by [`PhoneMix::REALISTIC_SHARES`].
fn draw_behaviour(rng: &mut ChaCha8Rng) -> Behaviour {
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (behaviour, share) in PhoneMix::REALISTIC_SHARES {
        acc += share;
        if u < acc {
            return behaviour;
        }
    }
    Behaviour::Global
}

/// Appends stays of `durations` (zone, µs) starting at `start`, returns the end.
fn push_stays(stays: &mut Vec<Stay>, start: i64, durations: &[(u8, i64)]) -> i64 {
    let mut t = start;
    for &(zone, d) in durations {
        stays.push(Stay {
            zone,
            start_us: t,
            end_us: t + d,
        });
        t += d;
    }
    t
}

/// Picks a zone in `from..zones` different from `prev`; `None` if there is none.
fn other_zone(rng: &mut ChaCha8Rng, from: usize, zones: usize, prev: Option<u8>) -> Option<u8> {
    let choices: Vec<u8> = (from..zones)
        .map(|z| z as u8)
        .filter(|z| Some(*z) != prev)
        .collect();
    if choices.is_empty() {
        None
    } else {
        Some(choices[crate::draw_index(rng, choices.len())])
    }
}

/// Durations of a normal visitor's zone stays (entrance first).
fn visitor_stays(rng: &mut ChaCha8Rng, zones: usize) -> Vec<(u8, i64)> {
    if zones == 1 {
        return vec![(0, secs(rng, 6.0 * 60.0, 60.0 * 60.0))];
    }
    // Entrance stays are at least 90 s so that the path step is detectable.
    let mut out = vec![(0u8, secs(rng, 90.0, 180.0))];
    let further = crate::draw_usize(rng, 1, 4);
    let mut prev = None;
    for _ in 0..further {
        let Some(z) = other_zone(rng, 1, zones, prev) else {
            break;
        };
        out.push((z, secs(rng, 120.0, 1200.0)));
        prev = Some(z);
    }
    // Guarantee ≥ 6 min inside (a clear margin over the 5 min visitor threshold).
    let total: i64 = out.iter().map(|s| s.1).sum();
    if total < 6 * MIN {
        if let Some(last) = out.last_mut() {
            last.1 += 6 * MIN - total + secs(rng, 0.0, 60.0);
        }
    }
    out
}

/// Days between a returning person's earlier visit and today: mostly the next day or a few days
/// later, sometimes one or several weeks.
fn return_gap_days(rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.gen();
    if u < 0.4 {
        1
    } else if u < 0.7 {
        crate::draw_usize(rng, 2, 3)
    } else if u < 0.9 {
        crate::draw_usize(rng, 4, 7)
    } else {
        crate::draw_usize(rng, 8, 30)
    }
}

/// Draws `n` returning persons for period day `k` from the persons of earlier days
/// (`day_persons[..k]`), none twice; fewer if there are not enough. For each, a gap is drawn
/// (see [`return_gap_days`]) and the person is picked uniformly among the visitors of the day
/// that many days back (the nearest earlier day that still has a candidate if that one has
/// none).
fn pick_returning(
    rng: &mut ChaCha8Rng,
    k: usize,
    n: usize,
    day_persons: &[Vec<u32>],
    today: &mut Vec<u32>,
) {
    let mut taken: HashSet<u32> = HashSet::new();
    for _ in 0..n {
        let gap = return_gap_days(rng).min(k);
        let target = k - gap;
        // Earlier days ordered by distance from the target day (ties: the older first).
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by_key(|&d| (d.abs_diff(target), d));
        let picked = order.into_iter().find_map(|d| {
            let candidates: Vec<u32> = day_persons[d]
                .iter()
                .copied()
                .filter(|p| !taken.contains(p))
                .collect();
            (!candidates.is_empty()).then(|| candidates[crate::draw_index(rng, candidates.len())])
        });
        let Some(person) = picked else {
            return;
        };
        taken.insert(person);
        today.push(person);
    }
}

/// What the planner remembers about a person (a returning shopper's phone).
#[derive(Debug, Clone, Copy)]
struct PersonState {
    identity: u32,
    /// Planned on an earlier day of the period.
    visited: bool,
    /// The MAC the phone uses on the store network (phones keep one random MAC per network),
    /// once it has connected.
    network_mac: Option<[u8; 6]>,
}

/// Builds the plan. `params` must already be clamped to sane ranges. Everything is drawn from
/// `rng`, except the MAC rotations, which come from `rotation_rng` after everything else so that
/// turning rotation on changes no other part of the plan.
pub(crate) fn plan(
    params: &SimParams,
    rng: &mut ChaCha8Rng,
    rotation_rng: &mut ChaCha8Rng,
) -> Plan {
    let zones = params.zone_count();
    let period = params.period_days() as usize;
    let mut maker = IdentityMaker {
        used: HashSet::new(),
    };
    if params.scenario == Scenario::CoPresent {
        return plan_co_present(params, rng, &mut maker);
    }
    let mut identities = Vec::new();
    for _ in 0..params.staff {
        identities.push(maker.make(rng, false));
    }
    // Fixed devices follow the staff (none in the legacy default: its draws are unchanged).
    let fixed_from = identities.len() as u32;
    for _ in 0..params.fixed_device_count() {
        identities.push(maker.make_realistic(rng, Behaviour::Fixed, None, zones));
    }
    let fixed_to = identities.len() as u32;
    // Per period day: the persons visiting (in presence order) and the first passer-by identity.
    let mut persons: Vec<PersonState> = Vec::new();
    let mut day_persons: Vec<Vec<u32>> = Vec::with_capacity(period);
    let mut first_passerby: Vec<usize> = Vec::with_capacity(period);
    let returning = (params.return_share * f64::from(params.visitors)).round() as usize;
    for k in 0..period {
        let mut today = Vec::with_capacity(params.visitors as usize);
        if k > 0 {
            pick_returning(
                rng,
                k,
                returning.min(params.visitors as usize),
                &day_persons,
                &mut today,
            );
        }
        while today.len() < params.visitors as usize {
            today.push(persons.len() as u32);
            persons.push(PersonState {
                identity: identities.len() as u32,
                visited: false,
                network_mac: None,
            });
            identities.push(maker.make_visitor(rng, params));
        }
        day_persons.push(today);
        first_passerby.push(identities.len());
        for _ in 0..params.passersby {
            identities.push(maker.make_visitor(rng, params));
        }
    }

    let mut days = Vec::new();
    let last_back = params.history_days + params.period_days() - 1;
    for back in (0..=last_back).rev() {
        let Some(date) = params.date.checked_sub_days(Days::new(u64::from(back))) else {
            continue;
        };
        // Index of the day in the period, if it is in the period.
        let k = (back < params.period_days()).then(|| period - 1 - back as usize);
        let (open, close) = params.open_close_us(date);
        let mut day = DayPlan {
            date,
            main: back == 0,
            period: k.is_some(),
            presences: Vec::new(),
            stays: Vec::new(),
        };
        for id in 0..params.staff {
            // Staff arrive ~30 min before opening and stay ≥ 6 h (longer than short openings).
            let start = open - 30 * MIN + secs(rng, 0.0, 300.0);
            let end = close.max(start + 6 * 60 * MIN + 30 * MIN) - secs(rng, 0.0, 300.0);
            let from = day.stays.len() as u32;
            let mut t = start;
            let mut prev = None;
            while t < end {
                let zone = if zones == 1 {
                    0
                } else {
                    other_zone(rng, 0, zones, prev).unwrap_or(0)
                };
                let d = secs(rng, 600.0, 2400.0).min(end - t);
                day.stays.push(Stay {
                    zone,
                    start_us: t,
                    end_us: t + d,
                });
                t += d;
                prev = Some(zone);
            }
            day.presences.push(Presence {
                identity: id,
                person: None,
                role: Role::Staff,
                connected: false,
                start_us: start,
                end_us: end,
                stays_from: from,
                stays_len: day.stays.len() as u32 - from,
                mac: identities[id as usize].mac,
                mac_changes: Vec::new(),
                behaviour: identities[id as usize].behaviour,
            });
        }
        for id in fixed_from..fixed_to {
            let identity = &identities[id as usize];
            let (start, end) = (open - FIXED_MARGIN_US, close + FIXED_MARGIN_US);
            day.stays.push(Stay {
                zone: identity.home_zone,
                start_us: start,
                end_us: end,
            });
            day.presences.push(Presence {
                identity: id,
                person: None,
                role: Role::Fixed,
                connected: false,
                start_us: start,
                end_us: end,
                stays_from: day.stays.len() as u32 - 1,
                stays_len: 1,
                mac: identity.mac,
                mac_changes: Vec::new(),
                behaviour: Behaviour::Fixed,
            });
        }
        if let Some(k) = k {
            // Last arrivals at least 20 min before closing.
            let last_arrival = (close - 20 * MIN).max(open + MIN);
            for &person in &day_persons[k] {
                let start = rng.gen_range(open..last_arrival);
                let short = rng.gen_bool(SHORT_VISIT_SHARE);
                let durations = if short {
                    vec![(0u8, secs(rng, 60.0, 210.0))]
                } else {
                    visitor_stays(rng, zones)
                };
                let connected = !short && rng.gen_bool(params.connected_share);
                let from = day.stays.len() as u32;
                let end = push_stays(&mut day.stays, start, &durations);
                let state = &mut persons[person as usize];
                let id = &identities[state.identity as usize];
                // A global MAC never changes; a randomized phone keeps its per-network MAC for
                // the store Wi-Fi, but probes from a fresh random MAC on each later visit.
                let mac = if !state.visited || !id.randomized {
                    id.mac
                } else if connected {
                    *state
                        .network_mac
                        .get_or_insert_with(|| maker.fresh_local(rng))
                } else {
                    maker.fresh_local(rng)
                };
                if connected {
                    state.network_mac.get_or_insert(mac);
                }
                state.visited = true;
                day.presences.push(Presence {
                    identity: state.identity,
                    person: Some(person),
                    role: if short {
                        Role::ShortVisit
                    } else {
                        Role::Visitor
                    },
                    connected,
                    start_us: start,
                    end_us: end,
                    stays_from: from,
                    stays_len: durations.len() as u32,
                    mac,
                    mac_changes: Vec::new(),
                    behaviour: id.behaviour,
                });
            }
            for i in 0..params.passersby as usize {
                let start = rng.gen_range(open..close);
                let end = start + secs(rng, 20.0, 120.0);
                let identity = first_passerby[k] + i;
                day.presences.push(Presence {
                    identity: identity as u32,
                    person: None,
                    role: Role::Passerby,
                    connected: false,
                    start_us: start,
                    end_us: end,
                    stays_from: day.stays.len() as u32,
                    stays_len: 0,
                    mac: identities[identity].mac,
                    mac_changes: Vec::new(),
                    behaviour: identities[identity].behaviour,
                });
            }
        }
        days.push(day);
    }
    if let Some(every_s) = params.mac_rotation_secs {
        rotate_macs(&mut days, &identities, every_s, &mut maker, rotation_rng);
    }
    Plan { identities, days }
}

/// Gives every probe-only stable-random presence (in the legacy mix: every probe-only
/// randomized one) a new MAC every `every_s` ± 20 % (the first change comes after a random
/// part of one interval: the phone's MAC was already in use before it came into range).
fn rotate_macs(
    days: &mut [DayPlan],
    identities: &[Identity],
    every_s: u32,
    maker: &mut IdentityMaker,
    rng: &mut ChaCha8Rng,
) {
    let every = f64::from(every_s.max(MIN_MAC_ROTATION_SECS));
    for day in days.iter_mut().filter(|d| d.period) {
        for p in &mut day.presences {
            let id = &identities[p.identity as usize];
            if p.connected || !id.randomized || id.behaviour != Behaviour::StableRandom {
                continue;
            }
            p.behaviour = Behaviour::Rotating;
            let first = secs(rng, 0.8 * every, 1.2 * every);
            let mut t = p.start_us + (first as f64 * rng.gen_range(0.2..1.0)).round() as i64;
            while t <= p.end_us {
                p.mac_changes.push((t, maker.fresh_local(rng)));
                t += secs(rng, 0.8 * every, 1.2 * every);
            }
        }
    }
}

/// The plan of [`Scenario::CoPresent`]: one day (the main day) with the 11 phones of
/// [`CO_PRESENT_CAST`], all inside together for about 7 minutes after opening.
fn plan_co_present(params: &SimParams, rng: &mut ChaCha8Rng, maker: &mut IdentityMaker) -> Plan {
    let zones = params.zone_count();
    let (open, _) = params.open_close_us(params.date);
    let mut day = DayPlan {
        date: params.date,
        main: true,
        period: true,
        presences: Vec::new(),
        stays: Vec::new(),
    };
    let mut identities = Vec::with_capacity(CO_PRESENT_CAST.len());
    for (k, &(behaviour, model)) in CO_PRESENT_CAST.iter().enumerate() {
        let id = maker.make_realistic(rng, behaviour, Some(model), zones);
        let start = open + secs(rng, 0.0, CO_PRESENT_ARRIVAL_S);
        let stay = 7 * MIN + secs(rng, 0.0, CO_PRESENT_EXTRA_S);
        let from = day.stays.len() as u32;
        let end = push_stays(&mut day.stays, start, &[((k % zones) as u8, stay)]);
        day.presences.push(Presence {
            identity: k as u32,
            person: Some(k as u32),
            role: Role::Visitor,
            connected: false,
            start_us: start,
            end_us: end,
            stays_from: from,
            stays_len: 1,
            mac: id.mac,
            mac_changes: Vec::new(),
            behaviour,
        });
        identities.push(id);
    }
    Plan {
        identities,
        days: vec![day],
    }
}

/// Per-device position state while streaming: the zone jitter is re-drawn every minute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Jitter {
    minute: i64,
    offset_m: f32,
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter {
            minute: i64::MIN,
            offset_m: 0.0,
        }
    }
}

/// Position of `p` at `t_us`, re-drawing the in-zone offset when the minute changed.
pub(crate) fn position(
    p: &Presence,
    stays: &[Stay],
    t_us: i64,
    jitter: &mut Jitter,
    rng: &mut ChaCha8Rng,
) -> f64 {
    match p.zone_at(stays, t_us) {
        None => p.walk_x(t_us),
        Some(zone) => {
            let minute = t_us.div_euclid(MIN);
            if minute != jitter.minute {
                jitter.minute = minute;
                let r = crate::radio::ZONE_JITTER_M as f32;
                jitter.offset_m = rng.gen_range(-r..r);
            }
            let x = sniffer_x(usize::from(zone)) + f64::from(jitter.offset_m);
            // Inside devices never cross the shop front.
            x.max(DOOR_X_M + 0.5)
        }
    }
}
