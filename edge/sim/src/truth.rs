//! Ground truth of a simulated period: the `truth.json` schema shared with the tests of other
//! crates.
//!
//! Everything here is plain serde data so that `serde_json::from_reader` on a written
//! `truth.json` gives back exactly what the simulator wrote.

use serde::{Deserialize, Serialize};

/// The whole `truth.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Seed the day was generated from.
    pub seed: u64,
    /// Main (scored) day, `YYYY-MM-DD` in the store's timezone.
    pub date: String,
    /// IANA timezone name of the store.
    pub timezone: String,
    /// Zone names in sniffer order (index 0 is the entrance).
    pub zones: Vec<String>,
    /// One entry per written pcap file.
    pub files: Vec<FileTruth>,
    /// Device populations per day as requested by the parameters (devices, not visits), and
    /// the main day's sightings.
    pub totals: Totals,
    /// One entry per device that has at least one clean frame on the main day,
    /// sorted by `start`, then `mac`: the entries of `period_visits` whose `day` is `date`.
    pub visits: Vec<Visit>,
    /// The days of the period, oldest first, `YYYY-MM-DD` (local); the last one is `date`.
    /// Empty in truth files written before the simulator simulated periods.
    #[serde(default)]
    pub period_days: Vec<String>,
    /// Every day's visits of the period (one entry per device with at least one clean frame
    /// on a period day, per day), sorted by `start`, then `mac`. History days (staff only) are
    /// not in it. Empty in truth files written before the simulator simulated periods.
    #[serde(default)]
    pub period_visits: Vec<Visit>,
    /// The captive-portal login files; all empty/zero in truth files written before the
    /// simulator wrote logins.
    #[serde(default)]
    pub portal: PortalTruth,
    /// The POS receipt printer capture; empty/zero in truth files written before the simulator
    /// wrote receipts.
    #[serde(default)]
    pub pos: PosTruth,
    /// The people-counter door feeds; empty/zero in truth files written before the simulator
    /// wrote them.
    #[serde(default)]
    pub counter: CounterTruth,
    /// Who was inside during each minute of the main day, for the whole store and per zone
    /// (see [`PresenceMinute`]): for every minute from the earlier of opening and the first
    /// arrival inside (staff and fixed devices included) to the later of closing and the last
    /// departure, one entry with `zone: null`, then one per zone in [`Truth::zones`] order.
    /// Empty in truth files written before the simulator wrote it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presence: Vec<PresenceMinute>,
}

/// Who was inside the store (or one zone) during one minute `[minute, minute + 60 s)` of the
/// main day, as planned: a person or device counts in a minute if its planned time inside
/// (a zone stay, for a zone) overlaps it, so one who walks from zone to zone within a minute
/// counts in both zones that minute, and once for the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceMinute {
    /// Unix seconds of the minute's start (a multiple of 60).
    pub minute: i64,
    /// The zone; `None` (`null`) for the whole store.
    pub zone: Option<String>,
    /// Shoppers inside: the persons of the main day's visitor presences (truth kind visitor,
    /// and short visits of kind passerby), each carrying one phone. Staff, fixed devices and
    /// passers-by on the street are not people here, and neither are the walk-in buyers and
    /// people without a detectable phone that only the door counters see (see
    /// [`CounterTruth`]). For the store it equals the number of main-day visits with a
    /// `person` whose planned time inside overlaps the minute ([`Visit::inside_from`]
    /// `..` [`Visit::inside_until`]), plus the visitor devices that were never captured (in
    /// no visit; see [`PeopleTruth::unseen_visitors`]).
    pub people: u32,
    /// The phones of `people` that are in [`Truth::visits`] (captured at least once during
    /// the visit): the shoppers' devices present, whether or not they sent a frame in that
    /// very minute. A perfect pipeline would count this many devices present.
    pub devices: u32,
    /// Staff devices inside (one per staff member).
    pub staff: u32,
    /// Fixed devices (PCs, printers, signage; truth kind staff, behaviour `fixed`), always
    /// in their zone.
    pub fixed: u32,
}

/// How a device's radio shows itself in probe requests ([`Visit::behaviour`]); the phone mix
/// ([`crate::PhoneMix`]) decides who behaves how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// iOS 16-like phone (`"ios16"`): a new random MAC and a random 802.11 sequence number for
    /// every channel of a scan (1–4 MACs per scan, about 2 frames each); scans every
    /// 17–135 s (a per-device period, jittered).
    Ios16,
    /// Android 13-like phone (`"android13"`): a new random MAC for every scan (burst), the
    /// sequence number restarting near 0.
    Android13,
    /// One randomized (locally administered) MAC for the whole visit and a continuing sequence
    /// counter (`"stable_random"`): iOS 15-like and older phones; every randomized phone of
    /// the `Legacy` mix without MAC rotation.
    StableRandom,
    /// A randomized MAC changed every [`crate::SimParams::mac_rotation_secs`], the sequence
    /// counter continuing (`"rotating"`): probe-only stable-random devices when rotation is on.
    Rotating,
    /// The device's global (universally administered) MAC, continuing counter (`"global"`):
    /// laptops, phones without randomization, staff phones.
    Global,
    /// A fixed device of the store, PC, printer or signage player (`"fixed"`): global MAC,
    /// present all day in one zone, truth kind staff.
    Fixed,
}

impl Behaviour {
    /// Every class, in declaration order.
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Ios16,
        Behaviour::Android13,
        Behaviour::StableRandom,
        Behaviour::Rotating,
        Behaviour::Global,
        Behaviour::Fixed,
    ];

    /// The name used in `truth.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Ios16 => "ios16",
            Behaviour::Android13 => "android13",
            Behaviour::StableRandom => "stable_random",
            Behaviour::Rotating => "rotating",
            Behaviour::Global => "global",
            Behaviour::Fixed => "fixed",
        }
    }

    /// Whether the device probes from locally administered (randomized) MACs.
    pub fn randomized(self) -> bool {
        matches!(
            self,
            Behaviour::Ios16 | Behaviour::Android13 | Behaviour::StableRandom | Behaviour::Rotating
        )
    }
}

/// What the two people-counter feeds contain: every door crossing of the period by the people
/// who entered the store, as the main door's Xovis sensor and the side door's Irisys counter
/// pushed them (the simulator's `counter` module documents the files and the dialects).
///
/// Who crosses a door: every visitor device's presence of the period (truth kind visitor, and
/// the short visits of kind passerby that have a `person`: they walked in, if only for a
/// minute or two) — one person however many MACs the device rotated through; every walk-in
/// purchase (a [`Purchase`] without `visit`); and people without a detectable phone. Each
/// enters once when their visit starts and leaves once when it ends, through one door, the
/// same both ways. Passers-by stay outside. Staff use the staff entrance, which has no
/// counter, so they are never counted.
///
/// Times are local to the store wherever a day or an hour is named. A crossing belongs to the
/// local day and hour it happens in (which may be the day after its business day when the
/// store closes after midnight).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterTruth {
    /// The doors: `main` first, then `side`.
    pub doors: Vec<DoorTruth>,
    /// Who came in over the whole period (by business day, summed); their sum is `footfall`.
    pub people: PeopleTruth,
    /// Entries over the period, both doors: the sum of every door's `ins`.
    pub footfall: u32,
    /// Exits over the period, both doors (equal to `footfall`: everyone leaves).
    pub outs: u32,
    /// Per local day, oldest first: every day of the period, plus any later day that has
    /// crossings (a store open past midnight).
    pub days: Vec<CounterDayTruth>,
    /// Pushes of the main door written twice (the retransmission is byte-identical to the
    /// original and comes later in the file): the length of `duplicates`.
    pub duplicated_pushes: u32,
    /// The retransmitted pushes, in file order of their originals.
    pub duplicates: Vec<DuplicateTruth>,
    /// The side counter's power loss on the first day of the period: its registers restart
    /// from 0, right after a log 40–70 % (or, if that one is busy, later) into the day's opening
    /// hours. `None` only if no log from then to closing was followed by a moment without
    /// crossings (never with realistic traffic).
    pub reset: Option<ResetTruth>,
}

/// One door's feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorTruth {
    /// `"main"` or `"side"`, as `door` in the agent's `[[sources.counter]]` table.
    pub door: String,
    /// The source name in `config.toml` (`door-main`, `door-side`).
    pub name: String,
    /// Hardware profile id in `config.toml` (`counter/xovis-pc2s-v5`, `counter/irisys-vector-4d`).
    pub profile: String,
    /// The edge-wire counter dialect of the bodies (`xovis-v5`, `irisys`).
    pub dialect: String,
    /// The replay file, relative to the output directory: one push body per line.
    pub path: String,
    /// The device as the bodies name it (`serial_number` / `FriendlyDeviceSerial`).
    pub device: String,
    /// The counting line the bodies report (Xovis logic `Entrance`; Irisys `Line 1`, from the
    /// registers `Line 1 In` and `Line 1 Out`).
    pub line: String,
    /// Lines (push bodies) in the file, retransmissions included.
    pub pushes: u32,
    /// People who came in through this door over the period.
    pub ins: u32,
    /// People who went out through this door over the period.
    pub outs: u32,
}

/// Who made the period's door entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleTruth {
    /// Visitor devices of kind visitor in [`Truth::period_visits`] (one each, rotated MACs or
    /// not).
    pub visitors: u32,
    /// Short visits: visits of kind passerby with a `person` in [`Truth::period_visits`].
    pub short_visits: u32,
    /// Visitor devices that walked in but sent no clean frame, so they are in no truth visit
    /// (0 unless the radio lost every frame of a device, or, in the realistic phone mix, a
    /// phone on a short visit did not scan before it left).
    pub unseen_visitors: u32,
    /// Walk-in buyers: purchases without a `visit` (one person each).
    pub walkins: u32,
    /// People without a detectable phone ([`crate::SimParams::undetected_share`]).
    pub undetected: u32,
}

impl PeopleTruth {
    /// Everyone who came in: the period's footfall.
    pub fn total(&self) -> u32 {
        self.visitors + self.short_visits + self.unseen_visitors + self.walkins + self.undetected
    }
}

/// One local day's crossings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterDayTruth {
    /// Local day, `YYYY-MM-DD`.
    pub day: String,
    /// Entries of the day, both doors.
    pub footfall: u32,
    /// Exits of the day, both doors.
    pub outs: u32,
    /// Per door, `main` then `side`.
    pub doors: Vec<DoorDayTruth>,
    /// Entries (both doors) per local hour: 24 numbers, index = hour of the day (`hours[9]`
    /// counts 09:00–09:59). On a day when clocks go back, the repeated hour's entries are
    /// added up; on a day when they go forward, the skipped hour stays 0.
    pub hours: Vec<u32>,
}

/// One door's crossings on one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorDayTruth {
    /// `"main"` or `"side"`.
    pub door: String,
    /// Entries.
    pub ins: u32,
    /// Exits.
    pub outs: u32,
}

/// A push the main door's sensor sent twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DuplicateTruth {
    /// `"main"`.
    pub door: String,
    /// Its `package_info.id`.
    pub sequence_id: u64,
    /// Line of the original in the file, from 1.
    pub line: u32,
    /// Line of the identical retransmission, after `line`.
    pub repeated_at_line: u32,
    /// Unix seconds of the interval's start (it ends 60 s later).
    pub start: f64,
    /// The interval's in-count (counted once in the truth).
    pub ins: u32,
    /// The interval's out-count.
    pub outs: u32,
}

/// The side counter's power loss.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResetTruth {
    /// `"side"`.
    pub door: String,
    /// Local day, `YYYY-MM-DD`: the first day of the period.
    pub day: String,
    /// The last log before the power loss.
    pub last_log: RegisterLogTruth,
    /// Unix seconds (ms precision) the counter lost power, after `last_log` with no crossing
    /// between the two.
    pub power_lost: f64,
    /// Unix seconds it counted again, from 0; nobody crossed while it was off.
    pub power_back: f64,
    /// The first log after the restart: its registers are the people counted since
    /// `power_back` (less than `last_log`'s, unless nobody had crossed before).
    pub first_log: RegisterLogTruth,
}

/// One Irisys log entry's registers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterLogTruth {
    /// Its `LogEntryId`.
    pub log_entry_id: u64,
    /// Line of its push in the file, from 1.
    pub line: u32,
    /// Its `Timestamp`, Unix seconds (whole).
    pub time: f64,
    /// Register `Line 1 In`.
    pub ins: u64,
    /// Register `Line 1 Out`.
    pub outs: u64,
}

/// What the POS receipt capture contains: the ESC/POS byte stream the till sent to its receipt
/// printer (an Xprinter XP-58IIH, profile `pos/xprinter-xp-58iih-gb18030`) over the period.
///
/// Every purchase printed exactly one receipt; the file holds them in time order, each starting
/// with `ESC @` and ending with a cut (cash sales kick the drawer before it). A purchase belongs
/// either to a visitor visit of [`Truth::period_visits`] (`visit` set; its time lies in the
/// second half of the visit, at least 1 minute before its `end`) or to a walk-in shopper the
/// Wi-Fi never saw (`visit` is `None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PosTruth {
    /// The capture, relative to the output directory (`pos-capture.bin`); the agent's
    /// `config.toml` reads it as a `[[sources.pos]]` file.
    pub path: String,
    /// ISO 4217 code of every amount (`"CNY"`); amounts are in its minor unit (fen).
    pub currency: String,
    /// Receipts in the capture: purchases of the whole period.
    pub receipts: u32,
    /// Sum of the receipts' `total_minor` over the period.
    pub sales_minor: i64,
    /// Per day of the period (every day, oldest first, also days without sales).
    pub days: Vec<PosDayTruth>,
    /// Every purchase, in the order of the capture (by `time`).
    pub purchases: Vec<Purchase>,
}

/// One day's sales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosDayTruth {
    /// Business day, `YYYY-MM-DD` (local), as in [`Visit::day`].
    pub day: String,
    /// Receipts of the day.
    pub receipts: u32,
    /// Sum of their `total_minor`.
    pub sales_minor: i64,
}

/// One purchase: one printed receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    /// Transaction id as printed after `流水号：`: `1` (the till), the business day `YYYYMMDD`
    /// and a serial of at least 4 digits that restarts at `0001` every day, in time order.
    /// Unique over the period.
    pub txn_id: String,
    /// Business day, `YYYY-MM-DD` (local), as in [`Visit::day`].
    pub day: String,
    /// Unix seconds (whole) of the sale, printed after `交易时间：` as local
    /// `YYYY-MM-DD HH:MM:SS` in the store's timezone.
    pub time: f64,
    /// Amount due (`应付金额`) in minor units: the sum of the items' `amount_minor` minus a
    /// member discount, if the receipt prints one (`会员优惠`).
    pub total_minor: i64,
    /// The item lines, in receipt order.
    pub items: Vec<PurchaseItem>,
    /// Payment method as printed: `微信支付`, `支付宝`, `现金` (kicks the drawer) or `银联卡`.
    pub payment: String,
    /// E.164 member phone (`+8613812345678`) whose 11 national digits the receipt prints after
    /// `会员手机：`; `None` when no member line is printed. For a visit's purchase it is the
    /// visit's [`Visit::phone`]; for a walk-in's it is nobody's number (no visit has it).
    pub member_phone: Option<String>,
    /// The visit the purchase belongs to; `None` for a walk-in.
    pub visit: Option<VisitRef>,
}

/// One item line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseItem {
    /// Product name as printed.
    pub name: String,
    /// Units sold.
    pub qty: u32,
    /// Unit price in minor units, as printed.
    pub unit_minor: i64,
    /// Line amount in minor units: `qty × unit_minor`.
    pub amount_minor: i64,
}

/// A visit of [`Truth::period_visits`], by its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitRef {
    /// The visit's [`Visit::mac`].
    pub mac: String,
    /// The visit's [`Visit::start`].
    pub start: f64,
}

/// What the two captive-portal login files contain.
///
/// Every connected visit of the period (see [`Visit::connected`], [`Truth::period_visits`])
/// logged in once: it has exactly one `Start` in `detail_path` and one `client_auth` line in
/// `binauth_path`, both at its [`Visit::login`] time, with its MAC and a spelling of its
/// [`Visit::phone`]. A returning shopper logs in again on each day they are connected, with the
/// same number. The injected records counted here (all on the main day) belong to no visit:
/// their MACs are not those of any simulated device and their numbers are nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalTruth {
    /// FreeRADIUS accounting `detail` file, relative to the output directory
    /// (`portal-detail`). Per login: `Start` at the login, one `Interim-Update` 5 minutes
    /// later if the device was still seen then, `Stop` 30 s after its last clean frame; all
    /// records in time order. The agent's `config.toml` reads this file.
    pub detail_path: String,
    /// openNDS BinAuth log, relative to the output directory (`portal-binauth.log`). Per
    /// login: `client_auth` (session_start = login, custom = url-encoded `phone=<as typed>`) and
    /// `client_deauth` at the end (session_end = end); lines in time order. Not in
    /// `config.toml` (it holds the same logins as `detail_path`); to read it instead, configure
    /// `format = "opennds-binauth"` with `phone_field = "custom.phone"`.
    pub binauth_path: String,
    /// Logins: connected visits of the whole period, one `Start` and one `client_auth` each.
    pub logins: u32,
    /// `Interim-Update` records in `detail_path` (at most one per login).
    pub interims: u32,
    /// Records in `detail_path`, everything included:
    /// `2 × logins + interims + injected_bad_detail`.
    pub detail_records: u32,
    /// Lines in `binauth_path`, everything included: `2 × logins + injected_bad_binauth`.
    pub binauth_lines: u32,
    /// Injected records in `detail_path` that are no login of any visit:
    /// `malformed_detail + invalid_phones_detail + accounting_on_detail`.
    pub injected_bad_detail: u32,
    /// `detail_path` records a parser must reject: a `Start` whose `User-Name` line has no `=`.
    pub malformed_detail: u32,
    /// Well-formed `Start` records in `detail_path` whose `User-Name` is not a mobile number
    /// (a Beijing landline, `010-…`).
    pub invalid_phones_detail: u32,
    /// `Accounting-On` records in `detail_path` (the NAS rebooted, before opening): no
    /// `User-Name`, no `Calling-Station-Id`.
    pub accounting_on_detail: u32,
    /// Injected lines in `binauth_path` that are no login of any visit:
    /// `malformed_binauth + invalid_phones_binauth`.
    pub injected_bad_binauth: u32,
    /// `binauth_path` lines a parser must reject: a `client_auth` line cut off inside its
    /// `clientmac` value.
    pub malformed_binauth: u32,
    /// Well-formed `client_auth` lines in `binauth_path` whose phone is not a mobile number
    /// (10 digits).
    pub invalid_phones_binauth: u32,
}

/// What one pcap file contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTruth {
    /// Zone whose sniffer wrote the file.
    pub zone: String,
    /// Path relative to the output directory.
    pub path: String,
    /// Number of pcap records in the file (all days, beacons and injected bad frames included).
    pub frames: u64,
    /// Deliberately bad or ignorable records inside `frames`.
    pub injected: Injected,
}

/// Counts of records a correct pipeline must drop or ignore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    /// Records whose radiotap Flags carry `BAD_FCS`.
    pub bad_fcs_flag: u64,
    /// Records cut short (`incl_len` smaller than the real frame).
    pub truncated: u64,
    /// Records on an FCS-at-end sniffer whose FCS does not match (flag not set).
    pub fcs_mismatch: u64,
    /// AP beacon records.
    pub beacons: u64,
}

/// Device populations of each day of the period, and what the sniffers wrote on the main day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Devices generated as visitors per day (short visits included).
    pub visitors: u32,
    /// Devices generated as passers-by on the street per day.
    pub passersby: u32,
    /// Staff devices.
    pub staff: u32,
    /// Sightings on the main day: clean client frame records written for the main day's
    /// devices, over all sniffers (each sniffer's copy of a frame counts once; frames with a
    /// bad FCS, truncated frames and beacons are not sightings). 0 in older truth files.
    #[serde(default)]
    pub sightings: u64,
    /// Those of `sightings` sent from locally administered (randomized) MACs.
    #[serde(default)]
    pub randomized_sightings: u64,
    /// `randomized_sightings / sightings` (0 when there are none): the share of randomized
    /// sightings the agent should report for the main day (frames under the agent's
    /// `ignore_below_dbm` included: the sniffers write frames down to −92 dBm).
    #[serde(default)]
    pub randomized_sightings_share: f64,
    /// Fixed devices (PCs, printers, signage), present on every day; their visits are of kind
    /// staff with behaviour `fixed`. Not written when 0 (0 in older truth files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fixed: u32,
}

/// serde helper: skips a zero count.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Truth kind of a visit, by the agent's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VisitKind {
    /// Inside dwell of at least 5 minutes.
    Visitor,
    /// Never inside, or inside for less than 5 minutes.
    Passerby,
    /// A staff device (present on most days for most of the opening hours).
    Staff,
}

/// One device's presence on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// MAC address, `aa:bb:cc:dd:ee:ff`: the first one of `macs`.
    pub mac: String,
    /// Truth kind.
    pub kind: VisitKind,
    /// Whether the MAC is a locally administered random one.
    pub randomized: bool,
    /// Whether the device associated to the store AP (and then logged in through the portal).
    pub connected: bool,
    /// E.164 mobile number (`+8613812345678`) the device's shopper logged in with: set for
    /// connected visits only, unique per person (a returning shopper's connected visits all
    /// carry the same number).
    #[serde(default)]
    pub phone: Option<String>,
    /// Unix seconds (whole) of the login: the `Start` record and the `client_auth` line of
    /// [`PortalTruth`]'s files. Set for connected visits only; it lies within
    /// `start..=end`, U(1, 4) minutes after `start` but at least 1 minute before `end` when the
    /// visit allows it.
    #[serde(default)]
    pub login: Option<f64>,
    /// Unix seconds of the first clean frame written for the device (any sniffer).
    pub start: f64,
    /// Unix seconds of the last clean frame written for the device.
    pub end: f64,
    /// Planned time inside the store, seconds (sum of `path`).
    pub inside_secs: f64,
    /// Planned zone stays in order.
    pub path: Vec<PathStep>,
    /// Day of the visit, `YYYY-MM-DD` in the store's timezone (empty in older truth files).
    #[serde(default)]
    pub day: String,
    /// The shopper, stable across the days of the period: set for every visitor device
    /// (short visits included); `None` for passers-by and staff.
    #[serde(default)]
    pub person: Option<u32>,
    /// Repeat class of the person's visit (see [`RepeatClass`]): `"first"`, `"within_1d"`,
    /// `"within_7d"`, `"within_30d"` or `"older"`, measured from the `end` of the person's
    /// previous visit in [`Truth::period_visits`] to this visit's `start`. Set exactly when
    /// `person` is.
    #[serde(default)]
    pub repeat: Option<String>,
    /// Every MAC the device sent clean frames from during the visit, in order of first use
    /// (each used for one stretch of time): `[mac]` unless the device rotates its MAC
    /// ([`crate::SimParams::mac_rotation_secs`]) or changes it per scan (behaviours `ios16`
    /// and `android13`: then every MAC of every scan heard, often dozens). Empty in older
    /// truth files.
    #[serde(default)]
    pub macs: Vec<String>,
    /// How the device's radio behaves ([`Behaviour`]). A connected visit (see `connected`)
    /// uses its per-network MAC, stable for the whole visit, whatever its behaviour. Written
    /// by every mix but [`crate::PhoneMix::Legacy`], whose visits stay byte-identical to the
    /// simulator's before mixes (there, and in older files, it is `None`:
    /// [`Visit::behaviour_class`] derives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
    /// Unix seconds (µs precision) of the planned entry into the store: the start of the
    /// first zone stay in `path`. Unlike `start` (the first frame captured) it does not depend
    /// on when the device happened to transmit. `None` for a passer-by on the street (never
    /// inside), and, like `behaviour`, in the `Legacy` mix and older truth files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside_from: Option<f64>,
    /// Unix seconds (µs precision) of the planned exit: the end of the last zone stay
    /// (`inside_until − inside_from` is `inside_secs`, up to rounding). `None` when
    /// `inside_from` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside_until: Option<f64>,
}

impl Visit {
    /// The visit's [`Behaviour`]: `behaviour` if written, else derived as the `Legacy` mix
    /// assigns it: `rotating` for a randomized visit with several MACs, `stable_random` for
    /// another randomized one, `global` otherwise.
    pub fn behaviour_class(&self) -> Behaviour {
        match self.behaviour {
            Some(b) => b,
            None if self.randomized && self.macs.len() > 1 => Behaviour::Rotating,
            None if self.randomized => Behaviour::StableRandom,
            None => Behaviour::Global,
        }
    }
}

/// Time since a person's previous visit, as the agent classifies it (records.proto names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepeatClass {
    /// No earlier visit.
    First,
    /// Previous visit ended at most 24 h before this one started.
    Within1d,
    /// … at most 7 days before.
    Within7d,
    /// … at most 30 days before.
    Within30d,
    /// … longer ago.
    Older,
}

impl RepeatClass {
    /// Every class, by growing gap.
    pub const ALL: [RepeatClass; 5] = [
        RepeatClass::First,
        RepeatClass::Within1d,
        RepeatClass::Within7d,
        RepeatClass::Within30d,
        RepeatClass::Older,
    ];

    /// The class of a visit starting at `start` (Unix seconds) whose person's previous visit
    /// ended at `previous_end` (`None`: no previous visit).
    pub fn of(previous_end: Option<f64>, start: f64) -> RepeatClass {
        const DAY: f64 = 86_400.0;
        match previous_end.map(|e| start - e) {
            None => RepeatClass::First,
            Some(gap) if gap <= DAY => RepeatClass::Within1d,
            Some(gap) if gap <= 7.0 * DAY => RepeatClass::Within7d,
            Some(gap) if gap <= 30.0 * DAY => RepeatClass::Within30d,
            Some(_) => RepeatClass::Older,
        }
    }

    /// The name used in `truth.json` ([`Visit::repeat`]).
    pub fn as_str(self) -> &'static str {
        match self {
            RepeatClass::First => "first",
            RepeatClass::Within1d => "within_1d",
            RepeatClass::Within7d => "within_7d",
            RepeatClass::Within30d => "within_30d",
            RepeatClass::Older => "older",
        }
    }
}

/// One stay in a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStep {
    /// Zone name.
    pub zone: String,
    /// Planned stay length, seconds.
    pub secs: f64,
}

impl Truth {
    /// Visits of one kind (main day).
    pub fn visits_of(&self, kind: VisitKind) -> impl Iterator<Item = &Visit> + '_ {
        self.visits.iter().filter(move |v| v.kind == kind)
    }

    /// Purchases of the period on day `day` (`YYYY-MM-DD`).
    pub fn purchases_on<'a>(&'a self, day: &'a str) -> impl Iterator<Item = &'a Purchase> + 'a {
        self.pos.purchases.iter().filter(move |p| p.day == day)
    }

    /// Visits of the period on day `day` (`YYYY-MM-DD`).
    pub fn visits_on<'a>(&'a self, day: &'a str) -> impl Iterator<Item = &'a Visit> + 'a {
        self.period_visits.iter().filter(move |v| v.day == day)
    }
}
