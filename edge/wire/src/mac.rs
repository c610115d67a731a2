//! [`MacAddr`]: a 48-bit IEEE MAC address, its bits and its text forms.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// A 48-bit MAC address in transmission order (octet 0 first).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Reads an address from the first 6 bytes of `b`, if there are 6.
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        b.first_chunk::<6>().copied().map(MacAddr)
    }

    /// The octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Group (multicast/broadcast) address: I/G bit 0x01 of octet 0.
    pub const fn is_group(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Locally administered (often randomized) address: U/L bit 0x02 of octet 0.
    pub const fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// All ones.
    pub const fn is_broadcast(&self) -> bool {
        u64::from_be_bytes([0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) == self.to_u64()
    }

    /// The address as a big-endian number in the low 48 bits.
    pub const fn to_u64(&self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }

    /// Inverse of [`MacAddr::to_u64`]; the high 16 bits are ignored.
    pub const fn from_u64(v: u64) -> MacAddr {
        let [_, _, a, b, c, d, e, f] = v.to_be_bytes();
        MacAddr([a, b, c, d, e, f])
    }
}

impl MacAddr {
    /// Reads a MAC address in any common spelling, or `None`:
    ///
    /// - six groups of one or two hex digits joined by `:` or `-` (one separator throughout):
    ///   `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `a:b:c:d:e:f` (macOS drops leading zeros);
    /// - Cisco's three dotted groups of four: `aabb.ccdd.eeff`;
    /// - twelve bare hex digits: `aabbccddeeff`.
    ///
    /// Any case; surrounding whitespace is ignored, quotes are the caller's to strip. Portal
    /// and RADIUS logs use all of these, depending on the NAS.
    pub fn parse_any(s: &str) -> Option<MacAddr> {
        let s = s.trim();
        if let Ok(m) = s.parse::<MacAddr>() {
            return Some(m);
        }
        let mut out = [0u8; 6];
        let b = s.as_bytes();
        if b.len() == 14 && b.get(4) == Some(&b'.') && b.get(9) == Some(&b'.') {
            // Cisco: hhhh.hhhh.hhhh
            let digits = b.iter().filter(|&&c| c != b'.');
            let mut nibbles = [0u8; 12];
            let mut n = 0;
            for (slot, &c) in nibbles.iter_mut().zip(digits) {
                *slot = hex_val(c)?;
                n += 1;
            }
            if n != 12 {
                return None;
            }
            for (i, octet) in out.iter_mut().enumerate() {
                *octet = nibbles[2 * i] << 4 | nibbles[2 * i + 1];
            }
            return Some(MacAddr(out));
        }
        // Six groups of 1-2 digits with one separator.
        let sep = *b.iter().find(|c| matches!(c, b':' | b'-'))?;
        let mut groups = s.split(char::from(sep));
        for octet in out.iter_mut() {
            let g = groups.next()?.as_bytes();
            *octet = match *g {
                [lo] => hex_val(lo)?,
                [hi, lo] => hex_val(hi)? << 4 | hex_val(lo)?,
                _ => return None,
            };
        }
        groups.next().is_none().then_some(MacAddr(out))
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

/// Value of one hex digit, any case.
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and `aabbccddeeff`, any case, with
    /// surrounding whitespace ignored (RADIUS and portal logs spell MACs all three ways).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "mac address";
        let s = s.trim().as_bytes();
        let sep = match s.len() {
            12 => None,
            17 => match s.get(2) {
                Some(&c @ (b':' | b'-')) => Some(c),
                _ => return Err(Error::malformed(WHAT, 2)),
            },
            _ => return Err(Error::malformed(WHAT, 0)),
        };
        let stride = if sep.is_some() { 3 } else { 2 };
        let mut out = [0u8; 6];
        for (i, octet) in out.iter_mut().enumerate() {
            let at = i * stride;
            let hi = s.get(at).copied().and_then(hex_val);
            let lo = s.get(at + 1).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => *octet = h << 4 | l,
                _ => return Err(Error::malformed(WHAT, at)),
            }
            // Separators must all be the same character as the first one.
            if let Some(sep) = sep {
                if i < 5 && s.get(at + 2) != Some(&sep) {
                    return Err(Error::malformed(WHAT, at + 2));
                }
            }
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let m = MacAddr([0x02, 0, 0, 0, 0, 1]);
        assert!(m.is_locally_administered());
        assert!(!m.is_group());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_group());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_group());
        assert!(!m.is_broadcast());
    }

    #[test]
    fn u64_round_trip() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(m.to_u64(), 0xaabb_ccdd_eeff);
        assert_eq!(MacAddr::from_u64(0xaabb_ccdd_eeff), m);
        assert_eq!(MacAddr::from_u64(0xffff_aabb_ccdd_eeff), m);
    }

    #[test]
    fn text_forms() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
        assert_eq!(m.to_string(), "aa:bb:cc:0d:ee:ff");
        for s in [
            "aa:bb:cc:0d:ee:ff",
            "AA-BB-CC-0D-EE-FF",
            "aabbcc0deeff",
            "AaBbCc0DeEfF",
            " aa:bb:cc:0d:ee:ff\n",
        ] {
            assert_eq!(s.parse::<MacAddr>(), Ok(m), "{s}");
        }
        for s in [
            "",
            "aa:bb:cc:0d:ee",
            "aa:bb-cc:0d:ee:ff",
            "aa:bb:cc:0d:ee:fg",
            "aabbcc0deef",
            "aa.bb.cc.0d.ee.ff",
            "+a:bb:cc:0d:ee:ff",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s}");
        }
        assert_eq!(format!("{m:?}"), "MacAddr(aa:bb:cc:0d:ee:ff)");
    }

    #[test]
    fn any_spelling() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
        for s in [
            "aa:bb:cc:0d:ee:ff",
            "AA-BB-CC-0D-EE-FF",
            "aabbcc0deeff",
            "AABBCC0DEEFF",
            "aabb.cc0d.eeff",
            "AABB.CC0D.EEFF",
            "aa:bb:cc:d:ee:ff",
            "aa-bb-cc-d-ee-ff",
            "  aabb.cc0d.eeff\t",
        ] {
            assert_eq!(MacAddr::parse_any(s), Some(m), "{s}");
        }
        assert_eq!(
            MacAddr::parse_any("0:1:2:3:4:5"),
            Some(MacAddr([0, 1, 2, 3, 4, 5]))
        );
        for s in [
            "",
            "aa:bb:cc:0d:ee",
            "aa:bb:cc:0d:ee:ff:00",
            "aa:bb-cc:0d:ee:ff",
            "aa:bb:cc:0d:ee:fg",
            "aa:bb:cc::ee:ff",
            "aa:bb:cc:0d:ee:fff",
            "aabb.cc0d.eef",
            "aabb.cc0d.eeff.",
            "aabb:cc0d:eeff",
            "aab.bcc0d.eeff",
            "aa.bb.cc.0d.ee.ff",
            "+abb.cc0d.eeff",
            "\"aa:bb:cc:0d:ee:ff\"",
            "aabbcc0deef",
            "aa:bb:cc:0d:ee:+f",
        ] {
            assert_eq!(MacAddr::parse_any(s), None, "{s}");
        }
    }
}
