//! Device keys: keyed HMAC-SHA256 pseudonyms for MAC addresses.
//!
//! A raw MAC never leaves this module as anything but a key. The key depends on the secret, its
//! version and the rotation epoch (time / rotation horizon), so keys stop linking a device across
//! horizons and a leaked database cannot be brute-forced without the secret (plain hashes of the
//! 2^48 MAC space, or of the much smaller vendor-prefixed spaces, can be).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A device's pseudonymous key: the first 16 bytes of HMAC-SHA256(secret, epoch ‖ MAC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceKey(pub [u8; 16]);

impl DeviceKey {
    /// Lowercase hex spelling, as stored and exported.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 bytes as an integer; keys are uniformly random, so this is a good hash.
    pub fn prefix_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl std::hash::Hash for DeviceKey {
    // One u64 write: with [`KeyHasher`] this makes the per-frame lookup cheap.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix_u64());
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({})", &self.to_hex()[..8])
    }
}

/// A secret for keyed hashing, with the version stored next to every key made from it.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    version: u32,
}

impl Secret {
    /// Wraps secret bytes. Callers guarantee at least 16 bytes of entropy (the agent checks).
    pub fn new(bytes: Vec<u8>, version: u32) -> Self {
        Secret { bytes, version }
    }

    /// The key version stored with every key derived from this secret.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The secret bytes, for the crate's keyed hashes only.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Secret(v{}, {} bytes, redacted)",
            self.version,
            self.bytes.len()
        )
    }
}

/// Hashes a [`DeviceKey`] by its first 8 bytes. Keys are HMAC outputs (uniformly random), so
/// running SipHash over them again only costs time on the per-frame path.
#[derive(Default, Clone, Copy)]
pub struct KeyHasherInner(u64);

impl Hasher for KeyHasherInner {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Generic fallback (used for tuple keys): FNV-1a.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
}

/// Build-hasher for maps keyed by [`DeviceKey`] (and by MAC, fingerprint or other integers
/// that are already well mixed in their low bits).
pub type KeyHasher = BuildHasherDefault<KeyHasherInner>;

/// Derives device keys, caching them because HMAC-SHA256 costs far more than the rest of a
/// frame's processing and a device sends many frames.
pub struct DeviceKeyer {
    mac: Hmac<Sha256>,
    version: u32,
    rotation_ms: i64,
    /// Keys of the rotation epoch `cache_epoch`, by MAC: one epoch at a time, so an entry is
    /// 24 bytes (a busy store holds a hundred thousand).
    cache: HashMap<u64, DeviceKey, KeyHasher>,
    cache_epoch: i64,
    cache_limit: usize,
}

impl DeviceKeyer {
    /// `rotation_ms` is the key rotation horizon; keys change when `ts / rotation_ms` changes.
    /// `cache_limit` bounds the cache (it is cleared when full, which only costs recomputation).
    pub fn new(secret: &Secret, rotation_ms: i64, cache_limit: usize) -> Self {
        // HMAC accepts keys of any length, so new_from_slice cannot fail here; fall back to an
        // empty-key MAC only to satisfy the type without a panic path.
        let mac = Hmac::<Sha256>::new_from_slice(&secret.bytes)
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        DeviceKeyer {
            mac,
            version: secret.version,
            rotation_ms: rotation_ms.max(1),
            cache: HashMap::with_hasher(Default::default()),
            cache_epoch: i64::MIN,
            cache_limit: cache_limit.max(1),
        }
    }

    /// Key version of the secret in use.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The rotation epoch a timestamp falls in.
    pub fn epoch(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.rotation_ms)
    }

    /// The key of `mac` (48-bit MAC in the low bits of a u64) at time `ts_ms`.
    pub fn key(&mut self, mac: u64, ts_ms: i64) -> DeviceKey {
        let epoch = self.epoch(ts_ms);
        if epoch == self.cache_epoch {
            if let Some(k) = self.cache.get(&mac) {
                return *k;
            }
        } else if epoch > self.cache_epoch {
            // A new epoch: the old keys are not asked for again, but for frames a few seconds
            // late around the rotation, which are computed without the cache (below).
            self.cache.clear();
            self.cache_epoch = epoch;
        } else {
            return self.compute(mac, epoch);
        }
        let key = self.compute(mac, epoch);
        if self.cache.len() >= self.cache_limit {
            self.cache.clear();
        }
        self.cache.insert(mac, key);
        key
    }

    fn compute(&self, mac: u64, epoch: i64) -> DeviceKey {
        let mut h = self.mac.clone();
        h.update(b"store-edge/device/v1");
        h.update(&epoch.to_be_bytes());
        h.update(&mac.to_be_bytes()[2..]);
        let out = h.finalize().into_bytes();
        let mut k = [0u8; 16];
        k.copy_from_slice(&out[..16]);
        DeviceKey(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn keyer(secret: &[u8]) -> DeviceKeyer {
        DeviceKeyer::new(&Secret::new(secret.to_vec(), 1), 30 * DAY, 4)
    }

    #[test]
    fn same_mac_same_epoch_same_key() {
        let mut k = keyer(b"0123456789abcdef0123456789abcdef");
        let a = k.key(0x0011_2233_4455, 1_000);
        let b = k.key(0x0011_2233_4455, 29 * DAY);
        assert_eq!(a, b);
    }

    #[test]
    fn key_changes_with_secret_epoch_and_mac() {
        let mut k1 = keyer(b"0123456789abcdef0123456789abcdef");
        let mut k2 = keyer(b"fedcba9876543210fedcba9876543210");
        let base = k1.key(0x0011_2233_4455, 0);
        let table = [
            ("other secret", k2.key(0x0011_2233_4455, 0)),
            ("next epoch", k1.key(0x0011_2233_4455, 30 * DAY)),
            ("other mac", k1.key(0x0011_2233_4456, 0)),
        ];
        for (what, k) in table {
            assert_ne!(base, k, "{what}");
        }
    }

    #[test]
    fn cache_eviction_keeps_keys_stable() {
        let mut k = keyer(b"0123456789abcdef0123456789abcdef");
        let first = k.key(1, 0);
        for mac in 2..20 {
            k.key(mac, 0);
        }
        assert_eq!(first, k.key(1, 0));
    }

    /// Frames around a rotation arrive slightly out of order: a late frame of the old epoch
    /// gets the old epoch's key, and the new epoch's keys stay cached and right.
    #[test]
    fn keys_around_a_rotation_are_those_of_each_frames_epoch() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let mut k = keyer(secret);
        let fresh = |mac: u64, ts: i64| keyer(secret).key(mac, ts);
        let frames = [
            (1, 30 * DAY - 5),
            (1, 30 * DAY + 1),
            (2, 30 * DAY - 2),
            (1, 30 * DAY - 1),
            (2, 30 * DAY + 3),
            (1, 30 * DAY + 9),
        ];
        for (mac, ts) in frames {
            assert_eq!(k.key(mac, ts), fresh(mac, ts), "mac {mac} at {ts}");
        }
        assert_ne!(fresh(1, 30 * DAY - 1), fresh(1, 30 * DAY));
    }

    #[test]
    fn key_is_not_a_plain_hash_of_the_mac() {
        use sha2::Digest;
        let mut k = keyer(b"0123456789abcdef0123456789abcdef");
        let key = k.key(0x0011_2233_4455, 0);
        let plain = Sha256::digest([0x00u8, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_ne!(&key.0[..], &plain[..16]);
    }

    #[test]
    fn debug_never_prints_the_full_key_or_secret() {
        let s = Secret::new(b"super-secret-material-1234567890".to_vec(), 3);
        assert!(!format!("{s:?}").contains("super"));
        let k = DeviceKey([0xab; 16]);
        assert_eq!(format!("{k:?}"), "DeviceKey(abababab)");
    }
}
