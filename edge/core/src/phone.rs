//! Phone numbers: normalises numbers as typed into a captive portal or logged by a POS into E.164
//! and validates them as mobile numbers against a small table of national numbering plans.
//!
//! A raw number lives only as long as [`normalize`] runs; what leaves it is an [`E164`] (whose
//! `Debug` shows the country code only) or a [`PhoneError`] that names the rule that failed,
//! never the digits. [`crate::person`] turns an [`E164`] into a keyed pseudonym.
//!
//! The table ([`Region::all`]) is deliberately small and data-driven: one row per region with
//! its country code, national trunk prefix, the lengths any national significant number (NSN)
//! may have, and the mobile (and IoT) ranges as NSN prefixes plus lengths. Adding a region is
//! adding a row.

use std::fmt;

/// A validated phone number in E.164 form, e.g. `"+8613812345678"`: `+`, country code, national
/// significant number, digits only. Only [`normalize`] makes one.
///
/// `Debug` prints the country code only (`E164(+86…)`); there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

impl E164 {
    /// The E.164 spelling, e.g. `"+8613812345678"`. Treat it as personal data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code, e.g. 86.
    pub fn country_code(&self) -> u16 {
        let digits = self.0.as_bytes().get(1..).unwrap_or_default();
        // `normalize` only builds values whose digits start with a table country code, so the
        // fallback 0 is never returned.
        split_country_code(digits).map_or(0, |(region, _)| region.country_code)
    }

    fn build(country_code: u16, nsn: &[u8]) -> E164 {
        let mut s = String::with_capacity(1 + 3 + nsn.len());
        s.push('+');
        s.push_str(&country_code.to_string());
        s.extend(nsn.iter().map(|&d| char::from(d)));
        E164(s)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164(+{}…)", self.country_code())
    }
}

/// A set of national significant numbers: those starting with one of `prefixes` and having
/// `min_len..=max_len` digits. In a prefix, a digit matches itself, `N` any of 2-9 and `X` any
/// digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    prefixes: &'static [&'static str],
    min_len: u8,
    max_len: u8,
}

impl Range {
    fn has_prefix(&self, nsn: &[u8]) -> bool {
        self.prefixes.iter().any(|p| {
            p.len() <= nsn.len()
                && p.bytes().zip(nsn).all(|(pat, &d)| match pat {
                    b'N' => (b'2'..=b'9').contains(&d),
                    b'X' => true,
                    _ => pat == d,
                })
        })
    }

    fn has_len(&self, nsn: &[u8]) -> bool {
        (usize::from(self.min_len)..=usize::from(self.max_len)).contains(&nsn.len())
    }
}

/// A numbering region the agent can validate. Get one with [`Region::by_code`] or
/// [`Region::all`]; the rules are private so that every `Region` is a row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166-1 alpha-2 code, e.g. `"CN"`.
    pub code: &'static str,
    /// ITU-T E.164 country calling code, e.g. 86.
    pub country_code: u16,
    /// National trunk prefix (`0`, or `1` in the NANP), dropped from national spellings, and
    /// from after the country code in the `+44 (0)7911…` convention.
    trunk: Option<u8>,
    /// Lengths any NSN of the plan has (fixed, mobile, services): a number of such a length
    /// outside the mobile ranges is `NotMobile`, any other length `WrongLength`.
    nsn_min: u8,
    nsn_max: u8,
    /// Mobile numbers: the only ones accepted.
    mobile: Range,
    /// Machine-to-machine numbers that look like mobiles: rejected as `IotNumber`.
    iot: Option<Range>,
}

const fn range(prefixes: &'static [&'static str], min_len: u8, max_len: u8) -> Range {
    Range {
        prefixes,
        min_len,
        max_len,
    }
}

// Sources: country codes from ITU-T E.164 assignments ("List of ITU-T Recommendation E.164
// assigned country codes", ITU Operational Bulletin annex); mobile ranges, trunk prefixes and
// lengths from the national numbering plans: CN (MIIT telecom numbering plan: mobile
// 1[3-9]xxxxxxxxx, 13-digit 14x IoT/M2M numbers), HK (OFCA numbering plan: 8 digits, mobile
// 4-7, 9), MO (CTT/DSRT: 8 digits, mobile 6), TW (NCC: trunk 0, mobile 09xx xxx xxx), SG (IMDA
// National Numbering Plan: 8 digits, mobile 8, 9), US/CA (NANPA: trunk 1, NXX-NXX-XXXX; mobile
// not distinguishable), GB (Ofcom National Telephone Numbering Plan: trunk 0, mobile 07 + 9
// digits), DE (BNetzA: trunk 0, mobile 015x/016x/017x with 10-11 NSN digits), JP (MIC: trunk 0,
// mobile 070/080/090 + 8 digits). Lengths of non-mobile numbers are the plans' usual ranges;
// they only decide between NotMobile and WrongLength.
const REGIONS: &[Region] = &[
    Region {
        code: "CN",
        country_code: 86,
        trunk: Some(b'0'),
        nsn_min: 9,
        nsn_max: 11,
        mobile: range(&["13", "14", "15", "16", "17", "18", "19"], 11, 11),
        iot: Some(range(&["14"], 13, 13)),
    },
    Region {
        code: "HK",
        country_code: 852,
        trunk: None,
        nsn_min: 8,
        nsn_max: 8,
        mobile: range(&["4", "5", "6", "7", "9"], 8, 8),
        iot: None,
    },
    Region {
        code: "MO",
        country_code: 853,
        trunk: None,
        nsn_min: 8,
        nsn_max: 8,
        mobile: range(&["6"], 8, 8),
        iot: None,
    },
    Region {
        code: "TW",
        country_code: 886,
        trunk: Some(b'0'),
        nsn_min: 8,
        nsn_max: 9,
        mobile: range(&["9"], 9, 9),
        iot: None,
    },
    Region {
        code: "SG",
        country_code: 65,
        trunk: None,
        nsn_min: 8,
        nsn_max: 8,
        mobile: range(&["8", "9"], 8, 8),
        iot: None,
    },
    // US before CA: "+1" numbers are validated with the first NANP row (the rules are equal).
    Region {
        code: "US",
        country_code: 1,
        trunk: Some(b'1'),
        nsn_min: 10,
        nsn_max: 10,
        mobile: range(&["NXXN"], 10, 10),
        iot: None,
    },
    Region {
        code: "CA",
        country_code: 1,
        trunk: Some(b'1'),
        nsn_min: 10,
        nsn_max: 10,
        mobile: range(&["NXXN"], 10, 10),
        iot: None,
    },
    Region {
        code: "GB",
        country_code: 44,
        trunk: Some(b'0'),
        nsn_min: 9,
        nsn_max: 10,
        mobile: range(&["7"], 10, 10),
        iot: None,
    },
    Region {
        code: "DE",
        country_code: 49,
        trunk: Some(b'0'),
        nsn_min: 6,
        nsn_max: 11,
        mobile: range(&["15", "16", "17"], 10, 11),
        iot: None,
    },
    Region {
        code: "JP",
        country_code: 81,
        trunk: Some(b'0'),
        nsn_min: 9,
        nsn_max: 10,
        mobile: range(&["70", "80", "90"], 10, 10),
        iot: None,
    },
];

impl Region {
    /// The region with ISO 3166-1 alpha-2 `code`, case-insensitive (`"cn"` finds CN).
    pub fn by_code(code: &str) -> Option<Region> {
        REGIONS
            .iter()
            .find(|r| r.code.eq_ignore_ascii_case(code))
            .copied()
    }

    /// Every region the agent can validate.
    pub fn all() -> &'static [Region] {
        REGIONS
    }

    /// Validates a national significant number of this region.
    fn validate(&self, nsn: &[u8]) -> Result<E164, PhoneError> {
        if let Some(iot) = &self.iot {
            if iot.has_prefix(nsn) && iot.has_len(nsn) {
                return Err(PhoneError::IotNumber);
            }
        }
        if self.mobile.has_prefix(nsn) {
            return if self.mobile.has_len(nsn) {
                Ok(E164::build(self.country_code, nsn))
            } else {
                Err(PhoneError::WrongLength)
            };
        }
        if (usize::from(self.nsn_min)..=usize::from(self.nsn_max)).contains(&nsn.len()) {
            Err(PhoneError::NotMobile)
        } else {
            Err(PhoneError::WrongLength)
        }
    }

    fn strip_trunk<'a>(&self, digits: &'a [u8]) -> &'a [u8] {
        match (self.trunk, digits.split_first()) {
            (Some(t), Some((&first, rest))) if first == t => rest,
            _ => digits,
        }
    }
}

/// Why a phone number was refused. The variants name the rule; none carries the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneError {
    /// No digits at all (empty, whitespace or separators only).
    Empty,
    /// A character other than digits, separators (space, `-`, `.`, `(`, `)`) and one `+`
    /// before the first digit.
    BadCharacters,
    /// An international number (`+` or `00`) whose country code is not in [`Region::all`].
    UnknownCountryCode,
    /// Too many or too few digits for the numbering plan.
    WrongLength,
    /// A valid length, but not in a mobile range of the numbering plan (a landline, a service
    /// number, or in the NANP a malformed area code or exchange).
    NotMobile,
    /// A machine-to-machine number (China's 13-digit 14x ranges), not a person's phone.
    IotNumber,
}

impl PhoneError {
    /// snake_case counter name, e.g. `"wrong_length"`.
    pub fn reason(&self) -> &'static str {
        match self {
            PhoneError::Empty => "empty",
            PhoneError::BadCharacters => "bad_characters",
            PhoneError::UnknownCountryCode => "unknown_country_code",
            PhoneError::WrongLength => "wrong_length",
            PhoneError::NotMobile => "not_mobile",
            PhoneError::IotNumber => "iot_number",
        }
    }
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneError::Empty => "phone number is empty",
            PhoneError::BadCharacters => {
                "phone number has a character other than digits, spaces, '-', '.', '(', ')' \
                 and one leading '+'"
            }
            PhoneError::UnknownCountryCode => {
                "phone number has a country code with no numbering plan in the agent"
            }
            PhoneError::WrongLength => {
                "phone number has the wrong number of digits for its numbering plan"
            }
            PhoneError::NotMobile => "phone number is not in a mobile range of its numbering plan",
            PhoneError::IotNumber => "phone number is an IoT (machine-to-machine) number",
        })
    }
}

impl std::error::Error for PhoneError {}

/// Digits kept from the input. E.164 numbers have at most 15 digits; `00`, a country code and
/// a `(0)` trunk prefix add at most 3, so anything longer is `WrongLength`.
const MAX_DIGITS: usize = 24;

/// Normalises a phone number as typed or logged by a portal/POS into E.164 and validates it as a
/// mobile number. `default_region` applies to numbers written without an international prefix.
///
/// Accepted spellings: digits with spaces, `-`, `.`, `(`, `)` as separators (surrounding
/// whitespace is ignored); international numbers with a leading `+` (before the first digit) or
/// `00`, optionally with the trunk prefix after the country code (`+44 (0)7911 123456`);
/// national numbers of `default_region`, with or without its trunk prefix (`0912 345 678` in
/// TW, `1-212-555-1234` in the US); and, when the national reading fails, the default region's
/// own country code written without `+` (`86 138 1234 5678` in CN).
pub fn normalize(raw: &str, default_region: Region) -> Result<E164, PhoneError> {
    let mut buf = [0u8; MAX_DIGITS];
    let mut n = 0usize;
    let mut plus = false;
    for c in raw.trim().chars() {
        match c {
            '0'..='9' => {
                if n < MAX_DIGITS {
                    // `c` is an ASCII digit, so it fits in one byte.
                    buf[n] = c as u8;
                }
                n += 1;
            }
            ' ' | '-' | '.' | '(' | ')' => {}
            '+' if !plus && n == 0 => plus = true,
            _ => return Err(PhoneError::BadCharacters),
        }
    }
    if n == 0 {
        return Err(PhoneError::Empty);
    }
    if n > MAX_DIGITS {
        return Err(PhoneError::WrongLength);
    }
    let digits = &buf[..n];

    if plus {
        return international(digits);
    }
    if let Some(rest) = digits.strip_prefix(b"00") {
        return international(rest);
    }
    let national = default_region.validate(default_region.strip_trunk(digits));
    if national.is_err() {
        let bare = split_country_code(digits)
            .filter(|(region, _)| region.country_code == default_region.country_code);
        if let Some(Ok(e)) = bare.map(|(_, nsn)| default_region.validate(nsn)) {
            return Ok(e);
        }
    }
    national
}

/// Validates the digits after `+` or `00`.
fn international(digits: &[u8]) -> Result<E164, PhoneError> {
    let (region, nsn) = split_country_code(digits).ok_or(PhoneError::UnknownCountryCode)?;
    region.validate(region.strip_trunk(nsn))
}

/// Splits a country code in the table off `digits`. Country codes are prefix-free (E.164), so
/// at most one length matches; for `+1` this returns the first NANP row.
fn split_country_code(digits: &[u8]) -> Option<(Region, &[u8])> {
    if digits.first() == Some(&b'0') {
        return None; // no country code starts with 0 ("+01…" is not "+1…")
    }
    let mut cc: u16 = 0;
    for (i, &d) in digits.iter().enumerate().take(3) {
        cc = cc * 10 + u16::from(d.wrapping_sub(b'0'));
        if let Some(r) = REGIONS.iter().find(|r| r.country_code == cc) {
            return Some((*r, &digits[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_prefix_free_and_distinct_per_plan() {
        for a in REGIONS {
            for b in REGIONS {
                let (sa, sb) = (a.country_code.to_string(), b.country_code.to_string());
                if a.country_code != b.country_code {
                    assert!(!sb.starts_with(&sa), "{} is a prefix of {}", sa, sb);
                } else {
                    // Regions sharing a code must share rules, or `+cc` would be ambiguous.
                    assert_eq!(
                        (a.trunk, a.nsn_min, a.nsn_max, a.mobile, a.iot),
                        (b.trunk, b.nsn_min, b.nsn_max, b.mobile, b.iot),
                        "{} vs {}",
                        a.code,
                        b.code
                    );
                }
            }
        }
    }

    #[test]
    fn rows_are_consistent() {
        for r in REGIONS {
            assert_eq!(r.code.len(), 2, "{}", r.code);
            assert!(r.code.bytes().all(|b| b.is_ascii_uppercase()), "{}", r.code);
            assert!(r.nsn_min <= r.nsn_max, "{}", r.code);
            assert!(r.mobile.min_len <= r.mobile.max_len, "{}", r.code);
            // Mobile lengths are lengths of the plan, so a short or long mobile is WrongLength.
            assert!(r.mobile.min_len >= r.nsn_min, "{}", r.code);
            assert!(r.mobile.max_len <= r.nsn_max, "{}", r.code);
            assert!(
                usize::from(r.mobile.max_len) + r.country_code.to_string().len() <= 15,
                "{}: longer than E.164 allows",
                r.code
            );
            for p in r.mobile.prefixes {
                assert!(
                    p.bytes()
                        .all(|b| b.is_ascii_digit() || b == b'N' || b == b'X'),
                    "{p}"
                );
                // An output NSN never starts with the trunk prefix, so outputs re-normalize to
                // themselves even though a trunk after the country code is dropped.
                let first = p.as_bytes()[0];
                assert!(
                    r.trunk != Some(first)
                        && !(first == b'N' && r.trunk.is_some_and(|t| t >= b'2')),
                    "{}: mobile prefix {p} starts with the trunk prefix",
                    r.code
                );
            }
        }
    }

    #[test]
    fn by_code_is_case_insensitive() {
        for (code, want) in [
            ("CN", Some(86)),
            ("cn", Some(86)),
            ("Gb", Some(44)),
            ("ca", Some(1)),
        ] {
            assert_eq!(
                Region::by_code(code).map(|r| r.country_code),
                want,
                "{code}"
            );
        }
        for code in ["", "C", "CNN", "XX", "中国"] {
            assert_eq!(Region::by_code(code), None, "{code}");
        }
    }

    #[test]
    fn country_code_of_every_region() {
        let samples = [
            ("CN", "13812345678"),
            ("HK", "91234567"),
            ("MO", "66123456"),
            ("TW", "912345678"),
            ("SG", "91234567"),
            ("US", "2125551234"),
            ("CA", "4165550123"),
            ("GB", "7911123456"),
            ("DE", "15112345678"),
            ("JP", "9012345678"),
        ];
        assert_eq!(samples.len(), REGIONS.len());
        for (code, nsn) in samples {
            let r = Region::by_code(code).unwrap();
            let e = normalize(nsn, r).unwrap();
            assert_eq!(e.country_code(), r.country_code, "{code}");
            assert_eq!(e.as_str(), format!("+{}{nsn}", r.country_code));
            assert_eq!(format!("{e:?}"), format!("E164(+{}…)", r.country_code));
        }
    }

    #[test]
    fn prefix_pattern_n_matches_two_to_nine() {
        let r = range(&["NXXN"], 10, 10);
        for (nsn, want) in [
            ("2125551234", true),
            ("9995551234", true),
            ("1125551234", false),
            ("0125551234", false),
            ("2121551234", false),
            ("2120551234", false),
            ("212", false),
        ] {
            assert_eq!(r.has_prefix(nsn.as_bytes()), want, "{nsn}");
        }
    }
}
