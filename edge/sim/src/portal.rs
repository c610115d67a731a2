//! Captive-portal logins of connected visitors: who logs in with which phone number, when, and
//! the two login logs the store's portal writes — a FreeRADIUS accounting `detail` file and an
//! openNDS BinAuth log — both laid out by edge-wire's emitters.
//!
//! [`plan`] draws everything from its own ChaCha stream (after the frames are written, because
//! login times follow the device's first and last clean frames), so adding portal data leaves
//! every other output of a seed unchanged. [`write`] turns the plan into the two files; it draws
//! nothing.
//!
//! Per connected visit (a device with at least one clean frame on its day), on every day of
//! the period, in day order:
//! - the person's mainland China mobile number (`1[3-9]` + 9 digits, from real three-digit
//!   prefixes), unique per person and drawn at the person's first login (a returning shopper
//!   logs in again with the same number), typed — at each login anew — as `13812345678` by
//!   most shoppers and as `+86 138 1234 5678`, `0086-138-1234-5678` or `138-1234-5678` by some;
//! - a login (whole Unix seconds) at the first clean frame plus U(1, 4) minutes, but at least
//!   1 minute before the last clean frame, and never before the first one;
//! - a session end [`STOP_AFTER_LAST_S`] after the last clean frame.
//!
//! `portal-detail` holds a Start at the login, an Interim-Update [`INTERIM_AFTER_S`] later if
//! the device is still seen then, and a Stop at the end; `portal-binauth.log` holds a
//! `client_auth` line at the login and a `client_deauth` line at the end. Both files are in time
//! order across devices and days and carry a fixed set of injected bad records on the main day
//! (see [`crate::truth::PortalTruth`]) that belong to no visit.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use edge_wire::portal::binauth::BinauthRepr;
use edge_wire::portal::detail::{AccountingRepr, AcctStatus};
use edge_wire::portal::format_ctime;
use edge_wire::MacAddr;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::models::{AP_BSSID, AP_SSID};
use crate::params::SimParams;
use crate::plan::{Plan, MIN, SEC};
use crate::run::Seen;
use crate::truth::PortalTruth;

/// File name of the FreeRADIUS accounting `detail` file.
pub const DETAIL_FILE: &str = "portal-detail";
/// File name of the openNDS BinAuth log.
pub const BINAUTH_FILE: &str = "portal-binauth.log";

/// The Interim-Update comes this long after the Start.
pub(crate) const INTERIM_AFTER_S: i64 = 300;
/// The session ends (Stop, `client_deauth`) this long after the device's last clean frame.
pub(crate) const STOP_AFTER_LAST_S: i64 = 30;
/// Earliest and latest login delay after the first clean frame, seconds.
const LOGIN_DELAY_S: (f64, f64) = (60.0, 240.0);
/// The login is at least this long before the last clean frame (µs).
const LOGIN_BEFORE_LAST_US: i64 = MIN;

/// Share of NASes/sessions writing `Calling-Station-Id` as `aa:bb:cc:dd:ee:ff`.
const COLON_MAC_SHARE: f64 = 0.2;
/// Share of shoppers typing the bare 11 digits; the rest split evenly over the other spellings.
const PLAIN_PHONE_SHARE: f64 = 0.7;

/// The NAS (CoovaChilli on the store router) and the portal gateway.
const NAS_IP: &str = "10.1.0.1";
/// openNDS client zone of the store LAN.
const CLIENT_ZONE: &str = "LocalZone:br-lan";

/// Three-digit mainland China mobile prefixes (MIIT numbering plan, the ones in wide use).
const MOBILE_PREFIXES: [&str; 40] = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "150",
    "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177",
    "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198",
    "199",
];

/// How a shopper typed the number into the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spelling {
    /// `13812345678`
    Plain,
    /// `+86 138 1234 5678`
    Plus86Spaced,
    /// `0086-138-1234-5678`
    Zero086Dashed,
    /// `138-1234-5678`
    Dashed,
}

impl Spelling {
    fn draw(rng: &mut ChaCha8Rng) -> Spelling {
        let u: f64 = rng.gen();
        let rest = (1.0 - PLAIN_PHONE_SHARE) / 3.0;
        if u < PLAIN_PHONE_SHARE {
            Spelling::Plain
        } else if u < PLAIN_PHONE_SHARE + rest {
            Spelling::Plus86Spaced
        } else if u < PLAIN_PHONE_SHARE + 2.0 * rest {
            Spelling::Zero086Dashed
        } else {
            Spelling::Dashed
        }
    }

    /// `digits` (11 of them) as typed.
    pub(crate) fn apply(self, digits: &str) -> String {
        let (a, b, c) = (&digits[..3], &digits[3..7], &digits[7..]);
        match self {
            Spelling::Plain => digits.to_string(),
            Spelling::Plus86Spaced => format!("+86 {a} {b} {c}"),
            Spelling::Zero086Dashed => format!("0086-{a}-{b}-{c}"),
            Spelling::Dashed => format!("{a}-{b}-{c}"),
        }
    }
}

/// One connected visit's login.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    /// Index into [`Plan::days`].
    pub day: usize,
    /// Index into that day's presences.
    pub presence: usize,
    pub mac: [u8; 6],
    /// National number, 11 digits.
    pub digits: String,
    /// The number as typed (User-Name, `phone=` in the custom string).
    pub typed: String,
    /// `Calling-Station-Id` spelled `aa:bb:cc:dd:ee:ff` instead of `AA-BB-CC-DD-EE-FF`.
    pub colon_mac: bool,
    /// Unix seconds of the Start / `client_auth`.
    pub login_s: i64,
    /// Unix seconds of the Stop / `client_deauth`.
    pub stop_s: i64,
    /// Whether an Interim-Update is written ([`INTERIM_AFTER_S`] after the login).
    pub interim: bool,
    pub session_id: String,
    pub ip: [u8; 4],
    /// openNDS client token.
    pub token: String,
    /// Octets from and to the client over the whole session.
    pub octets_in: u64,
    pub octets_out: u64,
}

impl Login {
    /// E.164 spelling, `+8613812345678`.
    pub(crate) fn e164(&self) -> String {
        format!("+86{}", self.digits)
    }
}

/// An injected record that belongs to no visit.
#[derive(Debug, Clone)]
struct Injected {
    t_s: i64,
    mac: [u8; 6],
    /// The number as written.
    phone: String,
}

/// Everything the portal files contain.
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    /// In day order, then presence order.
    pub logins: Vec<Login>,
    /// NAS reboot before opening: `Accounting-On` without a user.
    accounting_on_s: i64,
    /// Detail Start whose `User-Name` line has no `=`.
    malformed_detail: Injected,
    /// Detail Start with a landline number.
    invalid_detail: Injected,
    /// BinAuth `client_auth` line cut off inside `clientmac`.
    broken_binauth: Injected,
    /// BinAuth `client_auth` with a 10-digit number.
    invalid_binauth: Injected,
}

impl Portal {
    /// The login of presence `i` of plan day `day`, if it has one.
    pub(crate) fn login_of(&self, day: usize, i: usize) -> Option<&Login> {
        self.logins
            .binary_search_by_key(&(day, i), |l| (l.day, l.presence))
            .ok()
            .map(|k| &self.logins[k])
    }
}

/// A mainland mobile number nobody in `used` has (walk-in POS members draw from it too).
pub(crate) fn draw_phone(rng: &mut ChaCha8Rng, used: &mut HashSet<String>) -> String {
    loop {
        let prefix = MOBILE_PREFIXES[crate::draw_index(rng, MOBILE_PREFIXES.len())];
        let rest: u32 = rng.gen_range(0..100_000_000);
        let phone = format!("{prefix}{rest:08}");
        if used.insert(phone.clone()) {
            return phone;
        }
    }
}

/// A global unicast MAC that no simulated device uses.
fn draw_stranger_mac(rng: &mut ChaCha8Rng, used: &mut HashSet<[u8; 6]>) -> [u8; 6] {
    loop {
        let mut mac: [u8; 6] = rng.gen();
        mac[0] &= 0xfc;
        if used.insert(mac) {
            return mac;
        }
    }
}

/// Ceiling of µs to whole seconds.
fn ceil_s(us: i64) -> i64 {
    (us + SEC - 1).div_euclid(SEC)
}

/// Plans the logins of the period's connected, captured devices and the injected records.
pub(crate) fn plan(plan: &Plan, seen: &Seen, params: &SimParams, rng: &mut ChaCha8Rng) -> Portal {
    let mut phones = HashSet::new();
    let mut phone_of: HashMap<u32, String> = HashMap::new();
    let mut macs: HashSet<[u8; 6]> = plan.identities.iter().map(|id| id.mac).collect();
    for day in &plan.days {
        for p in &day.presences {
            macs.insert(p.mac);
            macs.extend(p.mac_changes.iter().map(|c| c.1));
        }
    }
    let mut logins = Vec::new();
    let days = plan.days.iter().zip(&seen.days).enumerate();
    for (d, (day, day_seen)) in days.filter(|(_, (day, _))| day.period) {
        for (i, p) in day.presences.iter().enumerate() {
            let (first, last) = (day_seen.first_us[i], day_seen.last_us[i]);
            if !p.connected || first > last {
                continue;
            }
            let digits = match p.person {
                Some(person) => phone_of
                    .entry(person)
                    .or_insert_with(|| draw_phone(rng, &mut phones))
                    .clone(),
                None => draw_phone(rng, &mut phones),
            };
            let typed = Spelling::draw(rng).apply(&digits);
            let colon_mac = rng.gen_bool(COLON_MAC_SHARE);
            let delay_us = (rng.gen_range(LOGIN_DELAY_S.0..LOGIN_DELAY_S.1) * 1e6).round() as i64;
            let t_us = (first + delay_us)
                .min(last - LOGIN_BEFORE_LAST_US)
                .max(first);
            // Whole seconds, inside [first, last] whenever a whole second fits there.
            let mut login_s = ceil_s(t_us);
            if login_s * SEC > last {
                login_s = t_us.div_euclid(SEC);
            }
            let stop_s = ceil_s(last) + STOP_AFTER_LAST_S;
            let ip = [10, 1, rng.gen_range(1..4), rng.gen_range(2..255)];
            let token = format!("{:08x}", rng.gen::<u32>());
            let minutes = (stop_s - login_s).max(1) as u64 / 60 + 1;
            let octets_in = minutes * rng.gen_range(20_000..400_000);
            let octets_out = minutes * rng.gen_range(100_000..4_000_000);
            logins.push(Login {
                day: d,
                presence: i,
                mac: p.mac,
                digits,
                typed,
                colon_mac,
                login_s,
                stop_s,
                interim: (login_s + INTERIM_AFTER_S) * SEC <= last,
                session_id: format!("{:08x}{:08x}", login_s as u32, logins.len() + 1),
                ip,
                token,
                octets_in,
                octets_out,
            });
        }
    }

    let (open, close) = params.open_close_us(params.date);
    let open_s = open.div_euclid(SEC);
    let span_s = ((close - open) / SEC).max(1);
    let at = |rng: &mut ChaCha8Rng| open_s + rng.gen_range(0..span_s);
    let accounting_on_s = open_s - 20 * 60 + rng.gen_range(0..300);
    let mut injected = |rng: &mut ChaCha8Rng, phone: String| Injected {
        t_s: at(rng),
        mac: draw_stranger_mac(rng, &mut macs),
        phone,
    };
    let p = draw_phone(rng, &mut phones);
    let malformed_detail = injected(rng, p);
    let landline = format!("010-{}", rng.gen_range(20_000_000..90_000_000));
    let invalid_detail = injected(rng, landline);
    let p = draw_phone(rng, &mut phones);
    let broken_binauth = injected(rng, p);
    // A digit short: a typo no normaliser can repair.
    let mut short = draw_phone(rng, &mut phones);
    short.pop();
    let invalid_binauth = injected(rng, short);
    Portal {
        logins,
        accounting_on_s,
        malformed_detail,
        invalid_detail,
        broken_binauth,
        invalid_binauth,
    }
}

/// Store-local wall clock of `unix_s`: naive local seconds and the zone abbreviation.
fn local(tz: Tz, unix_s: i64) -> (i64, String) {
    let dt = DateTime::<Utc>::from_timestamp(unix_s, 0)
        .unwrap_or_default()
        .with_timezone(&tz);
    (
        dt.naive_local().and_utc().timestamp(),
        dt.format("%Z").to_string(),
    )
}

fn upper_dashed(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02X}-{b:02X}-{c:02X}-{d:02X}-{e:02X}-{f:02X}")
}

/// What a detail record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DetailKind {
    AccountingOn,
    Stop(usize),
    Interim(usize),
    Start(usize),
    Malformed,
    InvalidPhone,
}

/// Attributes the agent ignores but real NASes send, written before `Event-Timestamp`.
struct Extra {
    name: &'static str,
    value: String,
    quoted: bool,
}

fn extra(name: &'static str, value: impl Into<String>, quoted: bool) -> Extra {
    Extra {
        name,
        value: value.into(),
        quoted,
    }
}

/// One detail record through edge-wire's emitter, with `extras` spliced in before
/// `Event-Timestamp` and the client MAC respelled if `colon_mac`.
fn detail_record(tz: Tz, repr: AccountingRepr, colon_mac: bool, extras: &[Extra]) -> String {
    let t = repr.time_s.unwrap_or(0);
    let (naive, zone) = local(tz, t);
    let repr = AccountingRepr {
        event_time_local: Some((naive, zone)),
        ..repr
    };
    let mut out = Vec::with_capacity(512);
    repr.emit(&format_ctime(naive), &mut out);
    // The emitter writes ASCII and the values we pass (digits, MACs, ids) need no escaping.
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if let (true, Some(mac)) = (colon_mac, repr.calling_station) {
        text = text.replacen(
            &format!("\"{}\"", upper_dashed(mac.0)),
            &format!("\"{mac}\""),
            1,
        );
    }
    let mut lines = String::new();
    for e in extras {
        if e.quoted {
            lines.push_str(&format!("\t{} = \"{}\"\n", e.name, e.value));
        } else {
            lines.push_str(&format!("\t{} = {}\n", e.name, e.value));
        }
    }
    let at = text
        .find("\tEvent-Timestamp = ")
        .unwrap_or(text.len().saturating_sub(1));
    text.insert_str(at, &lines);
    text
}

fn called_station() -> String {
    format!(
        "{}:{}",
        upper_dashed(AP_BSSID),
        String::from_utf8_lossy(AP_SSID)
    )
}

fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

fn login_record(tz: Tz, l: &Login, status: AcctStatus, t_s: i64) -> String {
    let mut extras = vec![
        extra("NAS-IP-Address", NAS_IP, false),
        extra("Called-Station-Id", called_station(), true),
        extra("Framed-IP-Address", ip_text(l.ip), false),
    ];
    let elapsed = t_s - l.login_s;
    if status != AcctStatus::Start {
        let share = |total: u64| {
            let whole = (l.stop_s - l.login_s).max(1) as u64;
            total * elapsed.max(0) as u64 / whole
        };
        extras.push(extra("Acct-Session-Time", elapsed.to_string(), false));
        extras.push(extra(
            "Acct-Input-Octets",
            share(l.octets_in).to_string(),
            false,
        ));
        extras.push(extra(
            "Acct-Output-Octets",
            share(l.octets_out).to_string(),
            false,
        ));
    }
    if status == AcctStatus::Stop {
        extras.push(extra("Acct-Terminate-Cause", "Idle-Timeout", false));
    }
    let repr = AccountingRepr {
        status,
        user_name: Some(l.typed.clone()),
        calling_station: Some(MacAddr(l.mac)),
        session_id: Some(l.session_id.clone()),
        time_s: Some(t_s),
        event_time_local: None,
        header_time_local: None,
    };
    detail_record(tz, repr, l.colon_mac, &extras)
}

fn stranger_start(tz: Tz, x: &Injected, n: u32) -> String {
    let repr = AccountingRepr {
        status: AcctStatus::Start,
        user_name: Some(x.phone.clone()),
        calling_station: Some(MacAddr(x.mac)),
        session_id: Some(format!("{:08x}{:08x}", x.t_s as u32, 0xffff_0000 | n)),
        time_s: Some(x.t_s),
        event_time_local: None,
        header_time_local: None,
    };
    let extras = [
        extra("NAS-IP-Address", NAS_IP, false),
        extra("Called-Station-Id", called_station(), true),
        extra("Framed-IP-Address", format!("10.1.9.{}", 10 + n), false),
    ];
    detail_record(tz, repr, false, &extras)
}

/// The records of `portal-detail`, in time order.
fn detail_text(portal: &Portal, tz: Tz) -> (String, u32) {
    let mut events: Vec<(i64, DetailKind)> =
        vec![(portal.accounting_on_s, DetailKind::AccountingOn)];
    for (k, l) in portal.logins.iter().enumerate() {
        events.push((l.login_s, DetailKind::Start(k)));
        if l.interim {
            events.push((l.login_s + INTERIM_AFTER_S, DetailKind::Interim(k)));
        }
        events.push((l.stop_s, DetailKind::Stop(k)));
    }
    events.push((portal.malformed_detail.t_s, DetailKind::Malformed));
    events.push((portal.invalid_detail.t_s, DetailKind::InvalidPhone));
    events.sort();
    let mut out = String::new();
    for &(t, kind) in &events {
        let rec = match kind {
            DetailKind::AccountingOn => {
                let repr = AccountingRepr {
                    status: AcctStatus::Other("Accounting-On".to_string()),
                    user_name: None,
                    calling_station: None,
                    session_id: Some(format!("{:08x}00000000", t as u32)),
                    time_s: Some(t),
                    event_time_local: None,
                    header_time_local: None,
                };
                let extras = [
                    extra("NAS-IP-Address", NAS_IP, false),
                    extra("NAS-Identifier", "store-router", true),
                    extra("Acct-Delay-Time", "0", false),
                ];
                detail_record(tz, repr, false, &extras)
            }
            DetailKind::Start(k) => login_record(tz, &portal.logins[k], AcctStatus::Start, t),
            DetailKind::Interim(k) => {
                login_record(tz, &portal.logins[k], AcctStatus::InterimUpdate, t)
            }
            DetailKind::Stop(k) => login_record(tz, &portal.logins[k], AcctStatus::Stop, t),
            DetailKind::Malformed => {
                // A record whose User-Name line lost its `=` (a hand-edited or corrupted file).
                let x = &portal.malformed_detail;
                stranger_start(tz, x, 1).replacen("\tUser-Name = ", "\tUser-Name ", 1)
            }
            DetailKind::InvalidPhone => {
                let x = &portal.invalid_detail;
                stranger_start(tz, x, 2)
            }
        };
        out.push_str(&rec);
    }
    (out, events.len() as u32)
}

/// What a BinAuth line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum BinauthKind {
    Deauth(usize),
    Auth(usize),
    Broken,
    InvalidPhone,
}

fn binauth_line(
    tz: Tz,
    method: &str,
    mac: [u8; 6],
    date_s: i64,
    fields: &[(&str, String)],
) -> String {
    let mut repr = BinauthRepr::new(method, MacAddr(mac));
    for (k, v) in fields {
        repr = repr.with(k, v);
    }
    repr.date_local = Some(local(tz, date_s).0);
    repr.emit()
}

fn auth_fields(
    start_s: i64,
    end_s: i64,
    bytes: (u64, u64),
    token: &str,
    phone: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("bytes_incoming", bytes.0.to_string()),
        ("bytes_outgoing", bytes.1.to_string()),
        ("session_start", start_s.to_string()),
        ("session_end", end_s.to_string()),
        ("token", token.to_string()),
        // The FAS's payload; the emitter url-encodes it as openNDS does.
        ("custom", format!("phone={phone}")),
        ("client_zone", CLIENT_ZONE.to_string()),
    ]
}

/// The lines of `portal-binauth.log`, in time order.
fn binauth_text(portal: &Portal, tz: Tz) -> (String, u32) {
    let mut events: Vec<(i64, BinauthKind)> = Vec::new();
    for (k, l) in portal.logins.iter().enumerate() {
        events.push((l.login_s, BinauthKind::Auth(k)));
        events.push((l.stop_s, BinauthKind::Deauth(k)));
    }
    events.push((portal.broken_binauth.t_s, BinauthKind::Broken));
    events.push((portal.invalid_binauth.t_s, BinauthKind::InvalidPhone));
    events.sort();
    let mut out = String::new();
    for &(t, kind) in &events {
        let line = match kind {
            BinauthKind::Auth(k) => {
                let l = &portal.logins[k];
                // session_end 0: no session time limit.
                let f = auth_fields(l.login_s, 0, (0, 0), &l.token, &l.typed);
                binauth_line(tz, "client_auth", l.mac, t, &f)
            }
            BinauthKind::Deauth(k) => {
                let l = &portal.logins[k];
                let f = auth_fields(
                    l.login_s,
                    l.stop_s,
                    (l.octets_in, l.octets_out),
                    &l.token,
                    &l.typed,
                );
                binauth_line(tz, "client_deauth", l.mac, t, &f)
            }
            BinauthKind::Broken => {
                // The logger died while writing the MAC address.
                let x = &portal.broken_binauth;
                let f = auth_fields(x.t_s, 0, (0, 0), "0badc0de", &x.phone);
                let full = binauth_line(tz, "client_auth", x.mac, t, &f);
                let cut = full.find("clientmac=").map_or(full.len(), |i| i + 18);
                full[..cut].to_string()
            }
            BinauthKind::InvalidPhone => {
                let x = &portal.invalid_binauth;
                let f = auth_fields(x.t_s, 0, (0, 0), "5eed1e55", &x.phone);
                binauth_line(tz, "client_auth", x.mac, t, &f)
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    (out, events.len() as u32)
}

fn write_synced(path: &Path, text: &str) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    w.write_all(text.as_bytes())?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Writes `portal-detail` and `portal-binauth.log` into `dir`; returns their truth.
pub(crate) fn write(dir: &Path, portal: &Portal, tz: Tz) -> io::Result<PortalTruth> {
    let (detail, detail_records) = detail_text(portal, tz);
    write_synced(&dir.join(DETAIL_FILE), &detail)?;
    let (binauth, binauth_lines) = binauth_text(portal, tz);
    write_synced(&dir.join(BINAUTH_FILE), &binauth)?;
    // One of each kind of injected record (see `Portal`).
    let (malformed_detail, invalid_phones_detail, accounting_on_detail) = (1, 1, 1);
    let (malformed_binauth, invalid_phones_binauth) = (1, 1);
    Ok(PortalTruth {
        detail_path: DETAIL_FILE.to_string(),
        binauth_path: BINAUTH_FILE.to_string(),
        logins: portal.logins.len() as u32,
        interims: portal.logins.iter().filter(|l| l.interim).count() as u32,
        detail_records,
        binauth_lines,
        injected_bad_detail: malformed_detail + invalid_phones_detail + accounting_on_detail,
        malformed_detail,
        invalid_phones_detail,
        accounting_on_detail,
        injected_bad_binauth: malformed_binauth + invalid_phones_binauth,
        malformed_binauth,
        invalid_phones_binauth,
    })
}
