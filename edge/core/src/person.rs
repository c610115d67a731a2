//! Person keys: keyed HMAC-SHA256 pseudonyms for phone numbers (captive-portal logins, member
//! phones on receipts, the staff list).
//!
//! A phone number enters only as a validated [`E164`], so every spelling of one number gives one
//! key, and leaves only as a [`PersonKey`]. The key is keyed with the tenant secret: a plain hash
//! of a phone number is brute-forced in minutes (the mobile space is ~2³³), a keyed one is not
//! without the secret. The HMAC input starts with a domain tag distinct from the device key's
//! (`store-edge/person/v1` vs `store-edge/device/v1`), so a person key and a device key are never
//! computed over the same bytes.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key::Secret;
use crate::phone::E164;

/// Domain-separation tag, the first bytes of every person-key HMAC input; the E.164 spelling
/// (ASCII, e.g. `+8613812345678`) follows it.
const PERSON_KEY_TAG: &[u8] = b"store-edge/person/v1";

/// A person's pseudonymous key: HMAC-SHA256(tenant secret, domain tag ‖ E.164), full 32 bytes.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PersonKey(pub [u8; 32]);

impl PersonKey {
    /// Lowercase hex spelling (64 characters), as stored and exported.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case); anything else is `None`.
    pub fn from_hex(s: &str) -> Option<PersonKey> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s, &mut k).ok()?;
        Some(PersonKey(k))
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", hex::encode(&self.0[..4]))
    }
}

/// Derives person keys from the tenant secret.
#[derive(Clone)]
pub struct PersonKeyer {
    mac: Hmac<Sha256>,
    version: u32,
}

impl PersonKeyer {
    /// A keyer for the tenant `secret`; its version is stored next to every key it makes.
    pub fn new(secret: &Secret) -> Self {
        let subkey = hmac_key(secret);
        // HMAC accepts keys of any length, so new_from_slice cannot fail here; fall back to an
        // empty-key MAC only to satisfy the type without a panic path (as DeviceKeyer does).
        let mac = Hmac::<Sha256>::new_from_slice(&subkey)
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        PersonKeyer {
            mac,
            version: secret.version(),
        }
    }

    /// Key version of the secret in use.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The key of `phone`.
    pub fn key(&self, phone: &E164) -> PersonKey {
        let mut h = self.mac.clone();
        h.update(PERSON_KEY_TAG);
        h.update(phone.as_str().as_bytes());
        PersonKey(h.finalize().into_bytes().into())
    }
}

impl fmt::Debug for PersonKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKeyer(v{}, redacted)", self.version)
    }
}

/// The HMAC key person keys are made with: the tenant secret itself.
fn hmac_key(secret: &Secret) -> Vec<u8> {
    secret.bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_eight_hex_chars_and_no_secret() {
        let k = PersonKey([0xab; 32]);
        assert_eq!(format!("{k:?}"), "PersonKey(abababab)");
        let keyer = PersonKeyer::new(&Secret::new(
            b"super-secret-material-1234567890".to_vec(),
            7,
        ));
        assert_eq!(format!("{keyer:?}"), "PersonKeyer(v7, redacted)");
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let k = PersonKey(std::array::from_fn(|i| i as u8 * 7));
        assert_eq!(PersonKey::from_hex(&k.to_hex()), Some(k));
        assert_eq!(PersonKey::from_hex(&k.to_hex().to_uppercase()), Some(k));
        for bad in [
            "",
            "00",
            &"0".repeat(63),
            &"0".repeat(65),
            &"0".repeat(66),
            &format!("{}g", "0".repeat(63)),
            &format!(" {}", "0".repeat(63)),
        ] {
            assert_eq!(PersonKey::from_hex(bad), None, "{bad:?}");
        }
    }
}
