//! Device identities: phone models (probe-request IE sets), vendor OUIs and remembered SSIDs.
//!
//! A model is a fixed, ordered list of information elements, as real phones send; the agent
//! may fingerprint on them, so they stay stable per device.

/// One information element: id and body.
pub(crate) type Ie = (u8, &'static [u8]);

/// A phone model: vendor OUIs for its global MACs and the IEs following the SSID in a probe.
pub(crate) struct PhoneModel {
    /// Globally unique OUIs (unicast, universally administered).
    pub ouis: &'static [[u8; 3]],
    /// IEs after the SSID element, in order.
    pub ies: &'static [Ie],
}

const RATES_B: &[u8] = &[0x02, 0x04, 0x0b, 0x16];
const RATES_BG: &[u8] = &[0x02, 0x04, 0x0b, 0x16, 0x0c, 0x12, 0x18, 0x24];
const EXT_RATES: &[u8] = &[0x30, 0x48, 0x60, 0x6c];
const EXT_RATES_G: &[u8] = &[0x0c, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6c];
const HT_CAPS_A: &[u8] = &[
    0x2d, 0x40, 0x17, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
const HT_CAPS_B: &[u8] = &[
    0xef, 0x01, 0x1b, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
const HT_CAPS_C: &[u8] = &[
    0x21, 0x01, 0x17, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
const EXT_CAPS_8: &[u8] = &[0x04, 0x00, 0x0a, 0x02, 0x01, 0x40, 0x40, 0x80];
const EXT_CAPS_10: &[u8] = &[0x00, 0x00, 0x0a, 0x82, 0x01, 0x40, 0x00, 0x40, 0x00, 0x21];
const EXT_CAPS_4: &[u8] = &[0x00, 0x00, 0x08, 0x00];
const VHT_CAPS_A: &[u8] = &[
    0x32, 0x00, 0x80, 0x03, 0xaa, 0xff, 0x00, 0x00, 0xaa, 0xff, 0x00, 0x00,
];
const VHT_CAPS_B: &[u8] = &[
    0xb2, 0x79, 0x91, 0x33, 0xfa, 0xff, 0x0c, 0x03, 0xfa, 0xff, 0x0c, 0x03,
];
const VENDOR_APPLE: &[u8] = &[
    0x00, 0x17, 0xf2, 0x0a, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
];
const VENDOR_BROADCOM: &[u8] = &[0x00, 0x10, 0x18, 0x02, 0x00, 0x00, 0x1c, 0x00, 0x00];
const VENDOR_WPS: &[u8] = &[
    0x00, 0x50, 0xf2, 0x04, 0x10, 0x4a, 0x00, 0x01, 0x10, 0x10, 0x3a, 0x00, 0x01, 0x00,
];
const VENDOR_WFA_P2P: &[u8] = &[0x50, 0x6f, 0x9a, 0x09, 0x02, 0x02, 0x00, 0x21, 0x00];

const OUI_APPLE: &[[u8; 3]] = &[[0xf0, 0x18, 0x98], [0x3c, 0x22, 0xfb], [0xa4, 0x83, 0xe7]];
const OUI_SAMSUNG: &[[u8; 3]] = &[[0x8c, 0xf5, 0xa3], [0x5c, 0x49, 0x7d]];
const OUI_XIAOMI: &[[u8; 3]] = &[[0x28, 0x6c, 0x07], [0x64, 0x09, 0x80]];
const OUI_HUAWEI: &[[u8; 3]] = &[[0x48, 0xdb, 0x50], [0x00, 0xe0, 0xfc]];
const OUI_OPPO: &[[u8; 3]] = &[[0xa4, 0x3d, 0x78]];
const OUI_VIVO: &[[u8; 3]] = &[[0x18, 0xe2, 0x9f]];

/// The phone models; a device picks one uniformly.
pub(crate) const MODELS: [PhoneModel; 8] = [
    PhoneModel {
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, HT_CAPS_A),
            (127, EXT_CAPS_10),
            (191, VHT_CAPS_A),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, HT_CAPS_A),
            (127, EXT_CAPS_8),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        ouis: OUI_SAMSUNG,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_B),
            (127, EXT_CAPS_10),
            (191, VHT_CAPS_B),
            (221, VENDOR_BROADCOM),
        ],
    },
    PhoneModel {
        ouis: OUI_SAMSUNG,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_8),
        ],
    },
    PhoneModel {
        ouis: OUI_XIAOMI,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_8),
            (221, VENDOR_WPS),
        ],
    },
    PhoneModel {
        ouis: OUI_HUAWEI,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, HT_CAPS_B),
            (127, EXT_CAPS_10),
            (191, VHT_CAPS_B),
            (221, VENDOR_WFA_P2P),
        ],
    },
    PhoneModel {
        ouis: OUI_OPPO,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_4),
        ],
    },
    PhoneModel {
        ouis: OUI_VIVO,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_B),
            (127, EXT_CAPS_8),
            (221, VENDOR_WPS),
        ],
    },
];

/// SSIDs some devices remember and probe for by name.
pub(crate) const REMEMBERED_SSIDS: [&[u8]; 8] = [
    b"HomeNet",
    b"CMCC-5G",
    b"ChinaNet-2F",
    b"TP-LINK_8A3C",
    b"Starbucks",
    b"xiaomi_home",
    b"MyHotspot",
    b"Office-Guest",
];

/// The store AP: a fixed, globally unique BSSID (TP-Link OUI).
pub const AP_BSSID: [u8; 6] = [0xf4, 0xf2, 0x6d, 0x00, 0x00, 0x01];
/// The store AP's SSID.
pub const AP_SSID: &[u8] = b"Store-WiFi";
/// The channel the store AP beacons on (channel 6).
pub(crate) const AP_CHANNEL: u8 = 6;

/// Beacon IEs after SSID: rates, DS parameter set, extended rates.
pub(crate) const BEACON_RATES: &[u8] = &[0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24];
/// Association request IEs after SSID.
pub(crate) const ASSOC_IES: &[Ie] = &[(1, RATES_BG), (50, EXT_RATES), (45, HT_CAPS_C)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ouis_are_global_unicast() {
        for m in &MODELS {
            for oui in m.ouis {
                assert_eq!(oui[0] & 0x03, 0, "{oui:02x?}");
            }
        }
        assert_eq!(AP_BSSID[0] & 0x03, 0);
    }
}
