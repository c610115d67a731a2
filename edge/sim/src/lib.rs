//! Synthetic store days with ground truth: per-sniffer radiotap pcaps, the captive portal's
//! login logs (`portal-detail`, `portal-binauth.log`), the receipt printer's ESC/POS capture
//! (`pos-capture.bin`), the two door counters' push feeds (`counter-main.jsonl`,
//! `counter-side.jsonl`), `truth.json`, `config.toml` and `secrets.toml`, all derived
//! deterministically from [`SimParams`].
//!
//! [`generate`] plans who is in the store when and where (cheap, O(devices)); [`Day::write`]
//! streams the frames of every sniffer to disk in time order and records what was actually
//! written as [`truth::Truth`]. Same parameters → byte-identical files.
//!
//! A simulation covers a period of [`SimParams::days`] days ending on the main day
//! [`SimParams::date`] (after [`SimParams::history_days`] staff-only days). Visitors are
//! persons: from the second day on, a share [`SimParams::return_share`] of each day's visitors
//! are shoppers returning from an earlier day, with the same phone number and device (a
//! randomized probe-only phone shows a new MAC on each visit). With
//! [`SimParams::mac_rotation_secs`], probe-only randomized phones also rotate their MAC during
//! a visit, keeping their probe IEs and their sequence counter.
//!
//! [`SimParams::phone_mix`] picks how devices behave on the air: [`PhoneMix::Legacy`] (the
//! default, byte-identical to the simulator before mixes) or [`PhoneMix::Realistic`] (iOS 16-
//! and Android 13-like phones that change MAC per scan or per channel, older phones, laptops
//! and fixed devices; one probe fingerprint per model). [`SimParams::co_present_case`] is a
//! known answer for devices present: 11 phones of 7 fingerprint classes inside together.
//! `truth.json` records each visit's [`truth::Behaviour`] and, per minute of the main day,
//! who was inside ([`truth::PresenceMinute`]).

mod counter;
mod emit;
mod models;
mod params;
mod plan;
mod portal;
mod pos;
mod presence;
pub mod radio;
mod run;
pub mod truth;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use counter::{
    COUNTER_MAIN_FILE, COUNTER_MAIN_NAME, COUNTER_MAIN_PROFILE, COUNTER_SIDE_FILE,
    COUNTER_SIDE_NAME, COUNTER_SIDE_PROFILE, DUPLICATES, IRISYS_DEVICE, IRISYS_LINE,
    SIDE_DOOR_SHARE, WINDOW_AFTER_CLOSE_MS, WINDOW_BEFORE_OPEN_MS, XOVIS_AGENT_ID, XOVIS_DEVICE,
    XOVIS_IN, XOVIS_LOGIC, XOVIS_OUT,
};
pub use models::{AP_BSSID, AP_SSID};
pub use params::{
    PhoneMix, Scenario, CO_PRESENT_CLASSES, CO_PRESENT_PHONES, DEFAULT_REALISTIC_FIXED_DEVICES,
    MAX_FIXED_DEVICES,
};
pub use params::{
    SimParams, DEFAULT_MEMBER_PHONE_SHARE, DEFAULT_PURCHASE_SHARE, DEFAULT_UNDETECTED_SHARE,
    DEFAULT_WALKIN_PURCHASES_PER_HOUR, MAX_DAYS, MAX_UNDETECTED_SHARE,
    MAX_WALKIN_PURCHASES_PER_HOUR, MIN_MAC_ROTATION_SECS, ZONE_NAMES,
};
pub use portal::{BINAUTH_FILE, DETAIL_FILE};
pub use pos::{POS_CURRENCY, POS_FILE, POS_PROFILE};

use plan::{Plan, Role, SEC};

/// A uniform `usize` in `lo..=hi`, drawn as a `u64`: rand samples `usize` ranges at the
/// pointer width, so a 32-bit build (armv7) would draw other numbers and simulate another day
/// than a 64-bit one from the same seed. On 64-bit targets the draw is the same as before.
pub(crate) fn draw_usize(rng: &mut ChaCha8Rng, lo: usize, hi: usize) -> usize {
    let (lo, hi) = (lo as u64, hi as u64);
    // Indices and counts fit in u32 on every target this runs on.
    usize::try_from(rng.gen_range(lo..=hi)).unwrap_or(usize::MAX)
}

/// A uniform index below `n` (`n` > 0), the same on 32- and 64-bit targets.
pub(crate) fn draw_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    draw_usize(rng, 0, n.saturating_sub(1))
}
use truth::{
    CounterTruth, FileTruth, PathStep, PortalTruth, PosTruth, RepeatClass, Totals, Truth, Visit,
    VisitKind,
};

/// ChaCha stream numbers: each use of the seed gets its own stream so they never interfere.
const STREAM_PLAN: u64 = 0;
const STREAM_FRAMES: u64 = 1;
const STREAM_SECRET: u64 = 2;
const STREAM_PORTAL: u64 = 3;
const STREAM_TENANT_SECRET: u64 = 4;
const STREAM_ROTATION: u64 = 5;
const STREAM_POS: u64 = 6;
const STREAM_COUNTER: u64 = 7;

/// Buffer per pcap writer; large enough that the disk sees big sequential writes.
const WRITE_BUFFER: usize = 1 << 20;

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A planned period (its days, plus the history days before it), ready to be written.
#[derive(Debug, Clone)]
pub struct Day {
    params: SimParams,
    plan: Plan,
}

/// One pcap file written by [`Day::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Zone of the sniffer.
    pub zone: String,
    /// Full path of the file.
    pub path: PathBuf,
    /// Number of pcap records in it.
    pub frames: u64,
}

/// What [`Day::write`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    /// The pcap files, in zone order.
    pub files: Vec<WrittenFile>,
    /// `truth.json`.
    pub truth_path: PathBuf,
    /// `config.toml`.
    pub config_path: PathBuf,
    /// `secrets.toml`.
    pub secrets_path: PathBuf,
    /// `portal-detail`: the FreeRADIUS accounting `detail` file of the portal logins.
    pub portal_detail_path: PathBuf,
    /// `portal-binauth.log`: the same logins as an openNDS BinAuth log.
    pub portal_binauth_path: PathBuf,
    /// `pos-capture.bin`: the ESC/POS byte stream of the period's receipts.
    pub pos_path: PathBuf,
    /// `counter-main.jsonl`: the main door's Xovis pushes, one body per line.
    pub counter_main_path: PathBuf,
    /// `counter-side.jsonl`: the side door's Irisys pushes, one body per line.
    pub counter_side_path: PathBuf,
    /// The truth as written to `truth.json`.
    pub truth: Truth,
}

/// Plans a period. Out-of-range parameters are clamped (zones to 1..=8, shares to 0..=1,
/// open_hour to 0..=23, open_hours to 1..=24, days to 1..=[`MAX_DAYS`], mac_rotation_secs to
/// at least [`MIN_MAC_ROTATION_SECS`], walkin_purchases_per_hour to
/// 0..=[`MAX_WALKIN_PURCHASES_PER_HOUR`], undetected_share to 0..=[`MAX_UNDETECTED_SHARE`],
/// fixed_devices to at most [`MAX_FIXED_DEVICES`]); use [`SimParams::validate`] to reject
/// instead. [`Scenario::CoPresent`] first sets the population parameters it implies.
pub fn generate(params: &SimParams) -> Day {
    let mut params = params.clone();
    if params.scenario == Scenario::CoPresent {
        params.co_present_population();
    }
    params.fixed_devices = params.fixed_devices.map(|n| n.min(MAX_FIXED_DEVICES));
    params.zones = params.zones.clamp(1, 8);
    params.randomized_share = clamp_share(params.randomized_share);
    params.connected_share = clamp_share(params.connected_share);
    params.return_share = clamp_share(params.return_share);
    params.purchase_share = clamp_share(params.purchase_share);
    params.member_phone_share = clamp_share(params.member_phone_share);
    params.walkin_purchases_per_hour = if params.walkin_purchases_per_hour.is_nan() {
        0.0
    } else {
        params
            .walkin_purchases_per_hour
            .clamp(0.0, MAX_WALKIN_PURCHASES_PER_HOUR)
    };
    params.undetected_share = clamp_share(params.undetected_share).min(MAX_UNDETECTED_SHARE);
    params.open_hour = params.open_hour.min(23);
    params.open_hours = params.open_hours.clamp(1, 24);
    params.days = params.period_days();
    params.mac_rotation_secs = params
        .mac_rotation_secs
        .map(|r| r.max(MIN_MAC_ROTATION_SECS));
    let mut rng = rng_for(params.seed, STREAM_PLAN);
    let mut rotation_rng = rng_for(params.seed, STREAM_ROTATION);
    let plan = plan::plan(&params, &mut rng, &mut rotation_rng);
    Day { params, plan }
}

fn clamp_share(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0)
    }
}

/// File name of a zone's pcap.
pub fn pcap_file_name(zone: &str) -> String {
    format!("wifi-{zone}.pcap")
}

impl Day {
    /// The (clamped) parameters of this day.
    pub fn params(&self) -> &SimParams {
        &self.params
    }

    /// Zone names in sniffer order.
    pub fn zone_names(&self) -> &'static [&'static str] {
        self.params.zone_names()
    }

    /// The agent configuration for the written directory (relative paths).
    pub fn config_toml(&self) -> String {
        let mut s = format!(
            "# store-edge configuration written by `store-edge simulate` (seed {}).\n\
             [store]\n\
             store_id = \"sim-store\"\n\
             gateway_id = \"sim-gw-1\"\n\
             timezone = \"{}\"\n\
             \n\
             [privacy]\n\
             secrets_file = \"secrets.toml\"\n\
             \n\
             [storage]\n\
             data_dir = \"data\"\n",
            self.params.seed,
            self.params.timezone.name()
        );
        for zone in self.zone_names() {
            s.push_str(&format!(
                "\n[[sources.wifi]]\nzone = \"{zone}\"\npcap = \"{}\"\n",
                pcap_file_name(zone)
            ));
        }
        s.push_str(&format!(
            "\n[[sources.pos]]\nname = \"pos\"\nprofile = \"{POS_PROFILE}\"\nfile = \"{POS_FILE}\"\n"
        ));
        s.push_str(&counter_tables());
        s.push_str(&format!(
            "\n[[sources.portal]]\nformat = \"freeradius-detail\"\npath = \"{DETAIL_FILE}\"\n# a saved log: read it to its end\nfollow = false\n"
        ));
        s
    }

    /// `secrets.toml` contents: a device-key secret and a tenant secret (phone keys), both
    /// derived from the seed (not secret!).
    pub fn secrets_toml(&self) -> String {
        let device_key: [u8; 32] = rng_for(self.params.seed, STREAM_SECRET).gen();
        let tenant: [u8; 32] = rng_for(self.params.seed, STREAM_TENANT_SECRET).gen();
        format!(
            "# SIMULATION ONLY: derived from the seed, not secret\ndevice_key_secret = \"{}\"\n\
             # SIMULATION ONLY: derived from the seed, not secret\ntenant_secret = \"{}\"\n",
            hex::encode(device_key),
            hex::encode(tenant)
        )
    }

    /// Writes the pcaps, the portal login files, the POS capture, the counter feeds,
    /// `truth.json`, `config.toml` and `secrets.toml` into `dir` (created if missing; existing
    /// files are replaced).
    pub fn write(&self, dir: &Path) -> io::Result<Written> {
        fs::create_dir_all(dir)?;
        let zones = self.zone_names();
        let epoch_us = self
            .plan
            .days
            .first()
            .map(|d| self.params.local_hour_us(d.date, 0))
            .unwrap_or(0);
        let sniffers: Vec<run::Sniffer> = (0..zones.len())
            .map(|z| run::Sniffer::for_zone(z, epoch_us))
            .collect();
        let mut writers = Vec::with_capacity(zones.len());
        let mut paths = Vec::with_capacity(zones.len());
        for zone in zones {
            let path = dir.join(pcap_file_name(zone));
            let file = BufWriter::with_capacity(WRITE_BUFFER, File::create(&path)?);
            writers.push(emit::RecordWriter::new(file)?);
            paths.push(path);
        }
        let mut rng = rng_for(self.params.seed, STREAM_FRAMES);
        let (stats, seen) = run::run(&self.plan, &sniffers, &mut writers, &mut rng)?;
        for w in writers {
            w.into_inner()
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
        }

        let portal = portal::plan(
            &self.plan,
            &seen,
            &self.params,
            &mut rng_for(self.params.seed, STREAM_PORTAL),
        );
        let portal_truth = portal::write(dir, &portal, self.params.timezone)?;

        // Last, from its own stream: receipts print portal phones, and adding them changes no
        // other output.
        let pos = pos::plan(
            &self.plan,
            &seen,
            &portal,
            &self.params,
            &mut rng_for(self.params.seed, STREAM_POS),
        );
        let pos_truth = pos::write(dir, &pos, self.params.timezone)?;

        // After the receipts, from its own stream: walk-in buyers come through the doors, and
        // adding the counters changes no other output.
        let counter = counter::plan(
            &self.plan,
            &seen,
            &pos,
            &self.params,
            &mut rng_for(self.params.seed, STREAM_COUNTER),
        );
        let counter_truth = counter::write(dir, &counter, self.params.timezone)?;

        let presence = presence::minutes(&self.plan, &seen, &self.params);
        let mut truth = self.truth(
            &stats,
            &seen,
            &portal,
            portal_truth,
            pos_truth,
            counter_truth,
        );
        truth.presence = presence;
        let truth_path = dir.join("truth.json");
        let mut w = BufWriter::new(File::create(&truth_path)?);
        serde_json::to_writer_pretty(&mut w, &truth)?;
        w.write_all(b"\n")?;
        w.flush()?;

        let config_path = dir.join("config.toml");
        fs::write(&config_path, self.config_toml())?;
        let secrets_path = dir.join("secrets.toml");
        write_private(&secrets_path, self.secrets_toml().as_bytes())?;

        let files = zones
            .iter()
            .zip(paths)
            .zip(&stats)
            .map(|((zone, path), st)| WrittenFile {
                zone: (*zone).to_string(),
                path,
                frames: st.frames,
            })
            .collect();
        Ok(Written {
            files,
            truth_path,
            config_path,
            secrets_path,
            portal_detail_path: dir.join(DETAIL_FILE),
            portal_binauth_path: dir.join(BINAUTH_FILE),
            pos_path: dir.join(POS_FILE),
            counter_main_path: dir.join(COUNTER_MAIN_FILE),
            counter_side_path: dir.join(COUNTER_SIDE_FILE),
            truth,
        })
    }

    fn truth(
        &self,
        stats: &[run::FileStats],
        seen: &run::Seen,
        portal: &portal::Portal,
        portal_truth: PortalTruth,
        pos_truth: PosTruth,
        counter_truth: CounterTruth,
    ) -> Truth {
        let zones = self.zone_names();
        let files = zones
            .iter()
            .zip(stats)
            .map(|(zone, st)| FileTruth {
                zone: (*zone).to_string(),
                path: pcap_file_name(zone),
                frames: st.frames,
                injected: st.injected.clone(),
            })
            .collect();
        let mut period_visits = Vec::new();
        let days = self.plan.days.iter().zip(&seen.days).enumerate();
        for (d, (day, day_seen)) in days.filter(|(_, (day, _))| day.period) {
            let date = day.date.format("%Y-%m-%d").to_string();
            for (i, p) in day.presences.iter().enumerate() {
                let (first, last) = (day_seen.first_us[i], day_seen.last_us[i]);
                if first > last {
                    // Never captured cleanly: a perfect pipeline cannot know it existed.
                    continue;
                }
                let id = &self.plan.identities[p.identity as usize];
                let path: Vec<PathStep> = p
                    .stays(&day.stays)
                    .iter()
                    .map(|s| PathStep {
                        zone: zones[usize::from(s.zone)].to_string(),
                        secs: (s.end_us - s.start_us) as f64 / SEC as f64,
                    })
                    .collect();
                // fold from +0.0: an empty f64 `sum()` is -0.0, which would print as `-0.0`.
                let inside_secs = path.iter().fold(0.0, |acc, s| acc + s.secs);
                let login = portal.login_of(d, i);
                // The legacy mix's visits stay byte-identical to the simulator's before mixes.
                let stays = p.stays(&day.stays);
                let (behaviour, inside_from, inside_until) =
                    if self.params.phone_mix == PhoneMix::Legacy {
                        (None, None, None)
                    } else {
                        (
                            Some(p.behaviour),
                            stays.first().map(|s| us_to_s(s.start_us)),
                            stays.last().map(|s| us_to_s(s.end_us)),
                        )
                    };
                let macs: Vec<String> = if !p.tracks_macs() {
                    vec![edge_wire::MacAddr(p.mac).to_string()]
                } else {
                    day_seen.macs[i]
                        .iter()
                        .map(|m| edge_wire::MacAddr(*m).to_string())
                        .collect()
                };
                period_visits.push(Visit {
                    mac: macs[0].clone(),
                    kind: match p.role {
                        Role::Visitor => VisitKind::Visitor,
                        Role::ShortVisit | Role::Passerby => VisitKind::Passerby,
                        Role::Staff | Role::Fixed => VisitKind::Staff,
                    },
                    randomized: id.randomized,
                    connected: p.connected,
                    phone: login.map(portal::Login::e164),
                    login: login.map(|l| l.login_s as f64),
                    start: first as f64 / SEC as f64,
                    end: last as f64 / SEC as f64,
                    inside_secs,
                    path,
                    day: date.clone(),
                    person: p.person,
                    repeat: None,
                    macs,
                    behaviour,
                    inside_from,
                    inside_until,
                });
            }
        }
        period_visits.sort_by(|a, b| a.start.total_cmp(&b.start).then_with(|| a.mac.cmp(&b.mac)));
        // Repeat classes by person, from the end of the person's previous visit.
        let mut previous_end: HashMap<u32, f64> = HashMap::new();
        for v in &mut period_visits {
            if let Some(person) = v.person {
                let class = RepeatClass::of(previous_end.get(&person).copied(), v.start);
                v.repeat = Some(class.as_str().to_string());
                let end = previous_end.entry(person).or_insert(v.end);
                *end = end.max(v.end);
            }
        }
        let main_date = self.params.date.format("%Y-%m-%d").to_string();
        let visits = period_visits
            .iter()
            .filter(|v| v.day == main_date)
            .cloned()
            .collect();
        let period_days = self
            .plan
            .days
            .iter()
            .filter(|d| d.period)
            .map(|d| d.date.format("%Y-%m-%d").to_string())
            .collect();
        Truth {
            seed: self.params.seed,
            date: self.params.date.format("%Y-%m-%d").to_string(),
            timezone: self.params.timezone.name().to_string(),
            zones: zones.iter().map(|z| (*z).to_string()).collect(),
            files,
            totals: Totals {
                visitors: self.params.visitors,
                passersby: self.params.passersby,
                staff: self.params.staff,
                sightings: seen.main_sightings,
                randomized_sightings: seen.main_randomized_sightings,
                randomized_sightings_share: if seen.main_sightings == 0 {
                    0.0
                } else {
                    seen.main_randomized_sightings as f64 / seen.main_sightings as f64
                },
                fixed: self.params.fixed_device_count(),
            },
            visits,
            period_days,
            period_visits,
            portal: portal_truth,
            pos: pos_truth,
            counter: counter_truth,
            presence: Vec::new(),
        }
    }
}

/// Unix µs as Unix seconds.
fn us_to_s(us: i64) -> f64 {
    us as f64 / SEC as f64
}

/// The two `[[sources.counter]]` tables of `config.toml`, each after a blank line.
fn counter_tables() -> String {
    [
        (COUNTER_MAIN_NAME, COUNTER_MAIN_PROFILE, "main", COUNTER_MAIN_FILE),
        (COUNTER_SIDE_NAME, COUNTER_SIDE_PROFILE, "side", COUNTER_SIDE_FILE),
    ]
    .iter()
    .map(|(name, profile, door, file)| {
        format!(
            "\n[[sources.counter]]\nname = \"{name}\"\nprofile = \"{profile}\"\ndoor = \"{door}\"\nfile = \"{file}\"\n"
        )
    })
    .collect()
}

/// Writes `bytes` to `path` readable by the owner only (unix), replacing any old file.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        // `mode` only applies on creation; an existing file keeps its bits unless reset.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = opts.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }
}

#[cfg(test)]
mod counter_tests;
#[cfg(test)]
mod mix_tests;
#[cfg(test)]
mod period_tests;
#[cfg(test)]
mod portal_tests;
#[cfg(test)]
mod pos_tests;
#[cfg(test)]
mod tests;
