//! The openNDS BinAuth log: [`parse_line`] reads one line of `binauthlog.log` into a
//! [`BinauthRepr`], [`BinauthRepr::field`] picks the configured phone field out of it (also
//! from inside the url-encoded `custom` payload), and [`BinauthRepr::emit`] writes a line back.
//!
//! # Format
//!
//! From openNDS's example BinAuth script, `forward_authentication_service/binauth/binauth_log.sh`
//! (repository openNDS/openNDS, versions 2020–2022), and `binauth_action()` in `src/auth.c`,
//! which calls it. The script appends `echo "$datetime, $log_entry"`, where `datetime=$(date)`
//! (C locale: `Wed May  1 10:15:00 CST 2024`) and `log_entry` is `key=value` pairs joined by
//! `", "`:
//!
//! ```text
//! <date>, method=auth_client, clientmac=…, clientip=…, useragent=…, token=…, custom=…[, client_type=…, gatewayname=…, ndsversion=…, originurl=…], client_zone=…
//! <date>, method=client_auth, clientmac=…, bytes_incoming=…, bytes_outgoing=…, session_start=…, session_end=…, token=…, custom=…[, …], client_zone=…
//! ```
//!
//! - `auth_client` (openNDS 9+) logs `clientip, useragent, token, custom`; older scripts (5–8)
//!   also logged `username, password, redir` and printed `redir`, `useragent` and `custom`
//!   **url-decoded**, so a user agent such as `(KHTML, like Gecko)` contains `", "`.
//! - Every other method (`client_auth`, `client_deauth`, `idle_deauth`, `timeout_deauth`,
//!   `downquota_deauth`, `upquota_deauth`, `ndsctl_auth`, `ndsctl_deauth`, `shutdown_deauth`)
//!   logs `bytes_incoming, bytes_outgoing, session_start, session_end, token, custom`.
//!   `session_start`/`session_end` are Unix seconds printed with `%lu`; `session_end` is `0`
//!   when the session has no time limit (`ndsctl json` prints it as `"null"`).
//! - `custom` is the FAS's payload, url-escaped by openNDS (`uh_urlencode`), `none` when the
//!   FAS sent nothing; openNDS 10 scripts note it may be base64 instead. A FAS that logs the
//!   verified phone sends e.g. `custom=phone%3D13812345678%26x%3Dy`.
//! - The script may append `client_type`, `gatewayname`, `ndsversion`, `originurl` (from the
//!   ThemeSpec client database) and `client_zone` (`LocalZone:br-lan`, with a space in mesh
//!   zones). A new file starts with `<date>, New log file created` (see [`is_log_banner`]).
//!
//! # Splitting
//!
//! A field starts at the line's start or after a comma, at `key=` where the key is a letter or
//! `_` followed by letters, digits, `_`, `.` or `-` (spaces before the `=` are allowed). Any other comma belongs to the value, so
//! an unescaped user agent stays whole. Whitespace around keys and values is dropped; values
//! are then percent-decoded (`%XX` only: `+` stays `+`, as in `+8613812345678` and base64).
//! Text before the first field is the date.

use core::fmt;

use super::{format_ctime, parse_ctime};
use crate::MacAddr;

/// Why a BinAuth log line could not be read. Names the field, never its value.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinauthError {
    /// A required field (`method`, `clientmac`) is absent or empty.
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field store-edge reads has a value it cannot use (`clientmac` that is not a MAC
    /// address, `session_start`/`session_end` that are not numbers or `null`).
    BadField {
        /// The field.
        field: &'static str,
        /// Byte offset of the field's value in the line.
        offset: usize,
    },
}

impl fmt::Display for BinauthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BinauthError::MissingField { field } => {
                write!(f, "openNDS log line has no {field} field")
            }
            BinauthError::BadField { field, offset } => write!(
                f,
                "openNDS log line: unreadable {field} value at offset {offset}"
            ),
        }
    }
}

impl std::error::Error for BinauthError {}

/// Field names store-edge reads.
pub mod key {
    /// The BinAuth method (argv\[1\]).
    pub const METHOD: &str = "method";
    /// The client's MAC address.
    pub const CLIENTMAC: &str = "clientmac";
    /// Session start, Unix seconds.
    pub const SESSION_START: &str = "session_start";
    /// Session end, Unix seconds; `0` or `null` when unlimited.
    pub const SESSION_END: &str = "session_end";
    /// The FAS's url-escaped payload.
    pub const CUSTOM: &str = "custom";
}

/// One BinAuth log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinauthRepr {
    /// `client_auth`, `auth_client`, `client_deauth`, `idle_deauth`, `timeout_deauth`, …
    pub method: String,
    /// `clientmac`, in any spelling.
    pub client_mac: MacAddr,
    /// Every `key=value` of the line in order (repeats kept), values percent-decoded.
    pub fields: Vec<(String, String)>,
    /// The date prefix as naive local seconds since 1970, if there is one that parses.
    pub date_local: Option<i64>,
    /// `session_start`, Unix seconds; `null`, `0`, empty or missing give `None`.
    pub session_start: Option<i64>,
    /// `session_end`, Unix seconds; `null`, `0`, empty or missing give `None`.
    pub session_end: Option<i64>,
}

/// If `s` starts with `key=` (spaces or tabs allowed before the `=`): the key's length and
/// the offset of the `=`.
fn key_at(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return None;
    }
    let n = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')))?;
    let eq = n + b[n..].iter().position(|c| !matches!(c, b' ' | b'\t'))?;
    (b[eq] == b'=').then_some((n, eq))
}

/// A field found in a line: the comma that precedes it (0 for a field at the line's start),
/// where its key starts and ends, and where its `=` is.
struct Span {
    sep: usize,
    key: usize,
    key_end: usize,
    eq: usize,
}

/// Finds the fields of `line`.
fn spans(line: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut try_at = |sep: usize, from: usize| {
        let rest = &line[from..];
        let key = from + (rest.len() - rest.trim_start().len());
        if let Some((n, eq)) = key_at(&line[key..]) {
            out.push(Span {
                sep,
                key,
                key_end: key + n,
                eq: key + eq,
            });
        }
    };
    try_at(0, 0);
    for (i, _) in line.match_indices(',') {
        try_at(i, i + 1);
    }
    out
}

/// Percent-decodes `%XX` sequences; anything else, malformed `%` included, is kept.
/// Invalid UTF-8 in the result becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            // Both digits are < 16, so the byte fits.
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte except ASCII letters, digits and `-._~:/+@`, so that the value
/// survives [`parse_line`]'s splitting, trimming and decoding unchanged.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~:/+@".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Reads a session time: `None` for `null`, empty or zero, `Err` for anything but an
/// optionally signed decimal number.
fn session_time(v: &str) -> Result<Option<i64>, ()> {
    let v = v.trim();
    if v.is_empty() || v == "0" || v.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(());
    }
    // A zero read through a sign ("-0", "00") is no time either.
    v.parse()
        .map(|n: i64| (n != 0).then_some(n))
        .map_err(|_| ())
}

/// Whether `line` is the `<date>, New log file created` line that starts every log file
/// (it has no fields and [`parse_line`] rejects it as missing `method`).
pub fn is_log_banner(line: &str) -> bool {
    line.trim_end().ends_with("New log file created")
}

/// Parses one line of the BinAuth log (a trailing `\r`/`\n` is ignored).
///
/// Tolerates extra spaces, missing fields, unknown keys, repeated keys (the first one counts
/// for the typed fields) and commas inside values. Fails only when `method` or `clientmac` is
/// missing or empty, `clientmac` is not a MAC address, or `session_start`/`session_end` is not
/// a number, `0`, empty or `null`.
pub fn parse_line(line: &str) -> Result<BinauthRepr, BinauthError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let spans = spans(line);
    let mut fields = Vec::with_capacity(spans.len());
    // Byte offset of each value in the line, for errors.
    let mut offsets = Vec::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        let end = spans.get(i + 1).map_or(line.len(), |n| n.sep);
        let raw = &line[s.eq + 1..end];
        // Commas left at the end come from empty segments (`a=1,, b=2`): real commas in
        // values are escaped (or followed by text, as in an unescaped user agent).
        let value = raw.trim().trim_end_matches(',').trim_end();
        offsets.push(s.eq + 1 + (raw.len() - raw.trim_start().len()));
        fields.push((line[s.key..s.key_end].to_owned(), percent_decode(value)));
    }
    let date = spans.first().map_or(line, |s| &line[..s.sep]).trim();
    let find = |k: &str| fields.iter().position(|(n, _)| n.eq_ignore_ascii_case(k));

    let method = find(key::METHOD)
        .map(|i| fields[i].1.clone())
        .filter(|m| !m.trim().is_empty())
        .ok_or(BinauthError::MissingField { field: key::METHOD })?;
    let mac_at = find(key::CLIENTMAC)
        .filter(|&i| !fields[i].1.trim().is_empty())
        .ok_or(BinauthError::MissingField {
            field: key::CLIENTMAC,
        })?;
    let client_mac = MacAddr::parse_any(&fields[mac_at].1).ok_or(BinauthError::BadField {
        field: key::CLIENTMAC,
        offset: offsets[mac_at],
    })?;
    let time = |field: &'static str| match find(field) {
        None => Ok(None),
        Some(i) => session_time(&fields[i].1).map_err(|()| BinauthError::BadField {
            field,
            offset: offsets[i],
        }),
    };
    let session_start = time(key::SESSION_START)?;
    let session_end = time(key::SESSION_END)?;
    Ok(BinauthRepr {
        method,
        client_mac,
        date_local: parse_ctime(date),
        session_start,
        session_end,
        fields,
    })
}

impl BinauthRepr {
    /// A line with just `method` and `clientmac` and no date; add fields with
    /// [`BinauthRepr::with`].
    pub fn new(method: &str, client_mac: MacAddr) -> BinauthRepr {
        BinauthRepr {
            method: method.to_owned(),
            client_mac,
            fields: vec![
                (key::METHOD.to_owned(), method.to_owned()),
                (key::CLIENTMAC.to_owned(), client_mac.to_string()),
            ],
            date_local: None,
            session_start: None,
            session_end: None,
        }
    }

    /// Appends a field, keeping `session_start`/`session_end` in step when it is the first of
    /// those (a value [`parse_line`] would reject reads as `None`).
    #[must_use]
    pub fn with(mut self, key: &str, value: &str) -> BinauthRepr {
        for (name, slot) in [
            (key::SESSION_START, &mut self.session_start),
            (key::SESSION_END, &mut self.session_end),
        ] {
            if key.eq_ignore_ascii_case(name)
                && self
                    .fields
                    .iter()
                    .all(|(k, _)| !k.eq_ignore_ascii_case(name))
            {
                *slot = session_time(value).ok().flatten();
            }
        }
        self.fields.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The first value of field `key` (ASCII case ignored).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The value of a configurable phone field:
    /// - a field name (`"custom"`, `"username"`, …): that field's decoded value;
    /// - `"<field>.<key>"` (`"custom.phone"`): the `key` entry of that field's value read as
    ///   `k=v` pairs separated by `&`, `,` or `;` (keys and values percent-decoded, keys
    ///   compared ignoring ASCII case). If the value holds no such entry it is tried once more
    ///   percent-decoded (a FAS that escaped its payload twice) and then base64-decoded (the
    ///   encoding openNDS 10 uses for `custom`).
    ///
    /// A field whose own name contains a dot is found by its whole name first.
    pub fn field(&self, path: &str) -> Option<String> {
        if let Some(v) = self.get(path) {
            return Some(v.to_owned());
        }
        let (name, sub) = path.split_once('.')?;
        let outer = self.get(name)?;
        lookup_pair(outer, sub)
            .or_else(|| {
                outer
                    .contains('%')
                    .then(|| lookup_pair(&percent_decode(outer), sub))
                    .flatten()
            })
            .or_else(|| {
                let text = String::from_utf8(base64_decode(outer.trim())?).ok()?;
                lookup_pair(&text, sub)
            })
    }

    /// Writes the line: the date as `ctime` (`Wed May  1 10:15:00 2024`, no zone) if there
    /// is one, then `key=value` per field joined by `", "`, values percent-encoded.
    ///
    /// The typed fields win over `fields` where they disagree: the first `method` is written
    /// as [`BinauthRepr::method`], the first `clientmac`, `session_start` and `session_end`
    /// keep their text when it reads as the typed value and are replaced otherwise;
    /// `method`/`clientmac` are put first and `session_*` last when `fields` lacks them.
    /// `parse_line(emit(x)) == x` when `x` came from [`parse_line`] or was built with
    /// [`BinauthRepr::new`]/[`BinauthRepr::with`] from keys `[A-Za-z_][A-Za-z0-9_.-]*`, a
    /// non-blank method and a date in years 1–9999.
    pub fn emit(&self) -> String {
        let mut items: Vec<(&str, String)> = Vec::with_capacity(self.fields.len() + 2);
        let has = |k: &str| self.fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(k));
        if !has(key::METHOD) {
            items.push((key::METHOD, self.method.clone()));
        }
        if !has(key::CLIENTMAC) {
            items.push((key::CLIENTMAC, self.client_mac.to_string()));
        }
        let time_text = |t: Option<i64>| t.map_or_else(|| "null".to_owned(), |t| t.to_string());
        let mut seen = [false; 4];
        for (k, v) in &self.fields {
            let slot = [
                key::METHOD,
                key::CLIENTMAC,
                key::SESSION_START,
                key::SESSION_END,
            ]
            .iter()
            .position(|s| k.eq_ignore_ascii_case(s))
            .filter(|&i| !std::mem::replace(&mut seen[i], true));
            let value = match slot {
                Some(0) => self.method.clone(),
                Some(1) if MacAddr::parse_any(v) != Some(self.client_mac) => {
                    self.client_mac.to_string()
                }
                Some(2) if session_time(v) != Ok(self.session_start) => {
                    time_text(self.session_start)
                }
                Some(3) if session_time(v) != Ok(self.session_end) => time_text(self.session_end),
                _ => v.clone(),
            };
            items.push((k, value));
        }
        if let Some(t) = self.session_start.filter(|_| !has(key::SESSION_START)) {
            items.push((key::SESSION_START, t.to_string()));
        }
        if let Some(t) = self.session_end.filter(|_| !has(key::SESSION_END)) {
            items.push((key::SESSION_END, t.to_string()));
        }
        let mut out = self
            .date_local
            .map(|d| format_ctime(d) + ", ")
            .unwrap_or_default();
        for (i, (k, v)) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            out.push_str(&percent_encode(v));
        }
        out
    }
}

/// The value of `key` in `k=v&k=v` (or `,`/`;` separated) text.
fn lookup_pair(s: &str, key: &str) -> Option<String> {
    s.split(['&', ',', ';']).find_map(|piece| {
        let (k, v) = piece.split_once('=')?;
        percent_decode(k.trim())
            .eq_ignore_ascii_case(key)
            .then(|| percent_decode(v.trim()))
    })
}

/// Decodes standard or url-safe base64, padding optional; `None` if `s` is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    if s.is_empty() || s.len() % 4 == 1 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        // A chunk of n sextets carries n - 1 whole bytes (n is 2..=4 here).
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(percent_decode("phone%3D138%26x%3dy"), "phone=138&x=y");
        assert_eq!(percent_decode("a+b%2"), "a+b%2");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("%e4%b8%ad"), "中");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        let s = " a,b=c%d&+é\n ";
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_encode("aa:bb +86/x@y"), "aa:bb%20+86/x@y");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("bmE=").as_deref(), Some(&b"na"[..]));
        assert_eq!(
            base64_decode("cGhvbmU9MTM4MTIzNDU2Nzg").as_deref(),
            Some(&b"phone=13812345678"[..])
        );
        assert_eq!(base64_decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base64_decode("Zg").as_deref(), Some(&b"f"[..]));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode(""), None);
        assert_eq!(base64_decode("a b="), None);
    }

    #[test]
    fn splitting() {
        let keys = |l: &str| -> Vec<String> {
            spans(l)
                .iter()
                .map(|s| l[s.key..s.key_end].to_owned())
                .collect()
        };
        assert_eq!(keys("a=1, b=2,c=3 ,  d.e-f=4"), ["a", "b", "c", "d.e-f"]);
        assert_eq!(
            keys("Wed May  1, ua=x (KHTML, like Gecko) y, z=1"),
            ["ua", "z"]
        );
        assert_eq!(keys("1a=1, =2, a b=3, -c=4"), Vec::<String>::new());
        assert_eq!(keys("a=b=c"), ["a"]);
        assert_eq!(keys(" a =1,\tb\t= 2, c d=3"), ["a", "b"]);
    }
}
