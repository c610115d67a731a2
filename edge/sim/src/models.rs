//! Device identities: phone models (probe-request IE sets), vendor OUIs and remembered SSIDs.
//!
//! A model is a fixed, ordered list of information elements, as real phones send; the agent
//! may fingerprint on them, so they stay stable per device. A model here is a hardware model
//! *with its OS*: every unit of one model sends byte-identical IEs after the SSID element (no
//! DS parameter set, whose channel would differ), so units of one model form one fingerprint
//! class, as on real captures.
//!
//! The first [`LEGACY_MODELS`] entries are the models of the `Legacy` phone mix, unchanged
//! (their indices and bytes are part of the legacy output); the `Realistic` mix draws from the
//! per-behaviour pools after them ([`IOS16_POOL`], [`ANDROID13_POOL`], …).

/// One information element: id and body.
pub(crate) type Ie = (u8, &'static [u8]);

/// A phone model: vendor OUIs for its global MACs and the IEs following the SSID in a probe.
pub(crate) struct PhoneModel {
    /// What it stands for (hardware and OS); for tests and the reader.
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// Globally unique OUIs (unicast, universally administered).
    pub ouis: &'static [[u8; 3]],
    /// IEs after the SSID element, in order (at most 7: `emit` has room for SSID + 7).
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

// Realistic models' IE bodies. HT capabilities differ in their info, A-MPDU parameters and
// MCS set; a `const fn` fills the 26 bytes so the differences stay readable.
const fn ht(info: [u8; 2], ampdu: u8, mcs: [u8; 4]) -> [u8; 26] {
    let mut b = [0u8; 26];
    b[0] = info[0];
    b[1] = info[1];
    b[2] = ampdu;
    b[3] = mcs[0];
    b[4] = mcs[1];
    b[5] = mcs[2];
    b[6] = mcs[3];
    b
}
const HT_IPHONE_A: [u8; 26] = ht([0x2d, 0x40], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_IPHONE_B: [u8; 26] = ht([0x6f, 0x40], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_IPHONE_C: [u8; 26] = ht([0x2d, 0x00], 0x1b, [0xff, 0x00, 0x00, 0x00]);
const HT_HUAWEI: [u8; 26] = ht([0xef, 0x09], 0x1b, [0xff, 0xff, 0x00, 0x00]);
const HT_SAMSUNG_A: [u8; 26] = ht([0xef, 0x11], 0x1b, [0xff, 0xff, 0x00, 0x00]);
const HT_SAMSUNG_B: [u8; 26] = ht([0x6f, 0x11], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_PIXEL: [u8; 26] = ht([0x63, 0x09], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_QCOM: [u8; 26] = ht([0xef, 0x19], 0x1f, [0xff, 0xff, 0x00, 0x00]);
const HT_QCOM_OLD: [u8; 26] = ht([0x2c, 0x01], 0x1b, [0xff, 0x00, 0x00, 0x00]);
const HT_INTEL: [u8; 26] = ht([0xad, 0x01], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_MTK: [u8; 26] = ht([0xe7, 0x09], 0x17, [0xff, 0xff, 0x00, 0x00]);
const HT_PRINTER: [u8; 26] = ht([0x20, 0x00], 0x03, [0xff, 0x00, 0x00, 0x00]);
const HT_RTL: [u8; 26] = ht([0x21, 0x00], 0x17, [0xff, 0x00, 0x00, 0x00]);
const EXT_CAPS_IOS16_A: &[u8] = &[0x04, 0x00, 0x0a, 0x82, 0x01, 0x40, 0x40, 0x00, 0x40, 0x21];
const EXT_CAPS_IOS16_B: &[u8] = &[0x04, 0x00, 0x0a, 0x02, 0x01, 0x40, 0x40, 0x00, 0x40, 0x21];
const EXT_CAPS_IOS17: &[u8] = &[
    0x04, 0x00, 0x0a, 0x82, 0x01, 0x40, 0x40, 0x00, 0x40, 0x21, 0x20,
];
const EXT_CAPS_IOS15: &[u8] = &[0x04, 0x00, 0x08, 0x82, 0x01, 0x40, 0x40, 0x80];
const EXT_CAPS_HUAWEI: &[u8] = &[0x00, 0x00, 0x08, 0x80, 0x00, 0x00, 0x00, 0x40];
const EXT_CAPS_ANDROID13_A: &[u8] = &[0x05, 0x00, 0x8a, 0x02, 0x01, 0x40, 0x40, 0xc0, 0x01, 0x21];
const EXT_CAPS_ANDROID13_B: &[u8] = &[0x05, 0x00, 0x0a, 0x02, 0x01, 0x40, 0x40, 0xc0, 0x01, 0x21];
const EXT_CAPS_INTEL: &[u8] = &[0x04, 0x00, 0x08, 0x84, 0x00, 0x00, 0x00, 0x40, 0x00, 0x20];
const EXT_CAPS_INTEL_B: &[u8] = &[0x04, 0x00, 0x08, 0x84, 0x00, 0x00, 0x01, 0x40, 0x00, 0x20];
const VHT_IPHONE_A: &[u8] = &[
    0x32, 0x00, 0x80, 0x03, 0xaa, 0xff, 0x00, 0x00, 0xaa, 0xff, 0x00, 0x20,
];
const VHT_IPHONE_B: &[u8] = &[
    0x32, 0x00, 0x80, 0x03, 0xfa, 0xff, 0x00, 0x00, 0xfa, 0xff, 0x00, 0x00,
];
const VHT_SAMSUNG: &[u8] = &[
    0xb2, 0x79, 0x91, 0x33, 0xfa, 0xff, 0x0c, 0x03, 0xfa, 0xff, 0x0c, 0x23,
];
const VHT_PIXEL: &[u8] = &[
    0xb1, 0x71, 0x80, 0x33, 0xfa, 0xff, 0x00, 0x00, 0xfa, 0xff, 0x00, 0x20,
];
const VHT_QCOM: &[u8] = &[
    0xb2, 0x71, 0xd1, 0x33, 0xfa, 0xff, 0x0c, 0x03, 0xfa, 0xff, 0x0c, 0x23,
];
const VHT_INTEL: &[u8] = &[
    0x92, 0x01, 0x80, 0x33, 0xaa, 0xff, 0x00, 0x00, 0xaa, 0xff, 0x00, 0x20,
];
const VHT_MTK: &[u8] = &[
    0xb1, 0x09, 0x80, 0x33, 0xfa, 0xff, 0x00, 0x00, 0xfa, 0xff, 0x00, 0x00,
];
/// Interworking (107): access network type "wildcard", as iPhones send it.
const INTERWORKING_IOS: &[u8] = &[0x0f];
/// HE capabilities (extension 35), abridged: fingerprints only look at the extension id.
const HE_CAPS: &[u8] = &[
    0x23, 0x01, 0x78, 0x20, 0x0a, 0xc0, 0xab, 0x0e, 0x30, 0x00, 0xfa, 0xff, 0xfa, 0xff,
];
const VENDOR_QCOM: &[u8] = &[0x8c, 0xfd, 0xf0, 0x01, 0x01, 0x02, 0x01, 0x00];
const VENDOR_MSFT: &[u8] = &[0x00, 0x50, 0xf2, 0x08, 0x00, 0x23, 0x00];

const OUI_GOOGLE: &[[u8; 3]] = &[[0x3c, 0x28, 0x6d], [0xf4, 0xf5, 0xe8]];
const OUI_INTEL: &[[u8; 3]] = &[[0x8c, 0x8d, 0x28], [0x34, 0x13, 0xe8]];
const OUI_MEDIATEK: &[[u8; 3]] = &[[0x00, 0x0c, 0xe7]];
const OUI_HP: &[[u8; 3]] = &[[0x9c, 0x8e, 0x99], [0x3c, 0xd9, 0x2b]];
const OUI_REALTEK: &[[u8; 3]] = &[[0x00, 0xe0, 0x4c]];

/// Models of the `Legacy` mix: a device picks one of the first `LEGACY_MODELS` uniformly.
pub(crate) const LEGACY_MODELS: usize = 8;

/// Every model: the legacy ones first (indices 0..[`LEGACY_MODELS`]), then the realistic ones
/// (see the pools below).
pub(crate) const MODELS: [PhoneModel; 28] = [
    PhoneModel {
        name: "legacy Apple A",
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
        name: "legacy Apple B",
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
        name: "legacy Samsung A",
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
        name: "legacy Samsung B",
        ouis: OUI_SAMSUNG,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_8),
        ],
    },
    PhoneModel {
        name: "legacy Xiaomi",
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
        name: "legacy Huawei",
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
        name: "legacy Oppo",
        ouis: OUI_OPPO,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_4),
        ],
    },
    PhoneModel {
        name: "legacy Vivo",
        ouis: OUI_VIVO,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_B),
            (127, EXT_CAPS_8),
            (221, VENDOR_WPS),
        ],
    },
    PhoneModel {
        name: "iPhone 14, iOS 16",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_A),
            (127, EXT_CAPS_IOS16_A),
            (107, INTERWORKING_IOS),
            (191, VHT_IPHONE_A),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "iPhone 13, iOS 16",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_B),
            (127, EXT_CAPS_IOS16_A),
            (107, INTERWORKING_IOS),
            (191, VHT_IPHONE_A),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "iPhone 12, iOS 16",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_B),
            (127, EXT_CAPS_IOS16_B),
            (107, INTERWORKING_IOS),
            (191, VHT_IPHONE_B),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "iPhone 15, iOS 17 (scans like iOS 16)",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_A),
            (127, EXT_CAPS_IOS17),
            (107, INTERWORKING_IOS),
            (191, VHT_IPHONE_A),
            (255, HE_CAPS),
        ],
    },
    PhoneModel {
        name: "iPhone SE (3rd gen.), iOS 16",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_C),
            (127, EXT_CAPS_IOS16_A),
            (107, INTERWORKING_IOS),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "iPhone 11, iOS 15",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_B),
            (127, EXT_CAPS_IOS15),
            (191, VHT_IPHONE_B),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "iPhone XR, iOS 15",
        ouis: OUI_APPLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_IPHONE_C),
            (127, EXT_CAPS_IOS15),
            (191, VHT_IPHONE_B),
            (221, VENDOR_APPLE),
        ],
    },
    PhoneModel {
        name: "Huawei P30, EMUI 10 (per-network random MAC)",
        ouis: OUI_HUAWEI,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, &HT_HUAWEI),
            (127, EXT_CAPS_HUAWEI),
            (191, VHT_CAPS_B),
            (221, VENDOR_WFA_P2P),
        ],
    },
    PhoneModel {
        name: "Samsung Galaxy S22, Android 13",
        ouis: OUI_SAMSUNG,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_SAMSUNG_A),
            (127, EXT_CAPS_ANDROID13_A),
            (191, VHT_SAMSUNG),
            (255, HE_CAPS),
            (221, VENDOR_BROADCOM),
        ],
    },
    PhoneModel {
        name: "Samsung Galaxy A53, Android 13",
        ouis: OUI_SAMSUNG,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_SAMSUNG_B),
            (127, EXT_CAPS_ANDROID13_A),
            (191, VHT_SAMSUNG),
            (255, HE_CAPS),
        ],
    },
    PhoneModel {
        name: "Google Pixel 7, Android 13",
        ouis: OUI_GOOGLE,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_PIXEL),
            (127, EXT_CAPS_ANDROID13_B),
            (191, VHT_PIXEL),
            (255, HE_CAPS),
        ],
    },
    PhoneModel {
        name: "Xiaomi 13, Android 13",
        ouis: OUI_XIAOMI,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_QCOM),
            (127, EXT_CAPS_ANDROID13_A),
            (191, VHT_QCOM),
            (255, HE_CAPS),
            (221, VENDOR_QCOM),
        ],
    },
    PhoneModel {
        name: "Oppo Reno8, Android 13",
        ouis: OUI_OPPO,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_QCOM),
            (127, EXT_CAPS_ANDROID13_B),
            (191, VHT_QCOM),
            (255, HE_CAPS),
        ],
    },
    PhoneModel {
        name: "Windows 11 laptop, Intel AX201",
        ouis: OUI_INTEL,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, &HT_INTEL),
            (127, EXT_CAPS_INTEL),
            (191, VHT_INTEL),
            (221, VENDOR_MSFT),
            (221, VENDOR_WPS),
        ],
    },
    PhoneModel {
        name: "Chromebook, MediaTek MT7921",
        ouis: OUI_MEDIATEK,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, &HT_MTK),
            (127, EXT_CAPS_8),
            (191, VHT_MTK),
            (255, HE_CAPS),
        ],
    },
    PhoneModel {
        name: "Vivo phone, Android 8 (no randomization)",
        ouis: OUI_VIVO,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, HT_CAPS_C),
            (127, EXT_CAPS_4),
            (221, VENDOR_WPS),
        ],
    },
    PhoneModel {
        name: "Redmi phone, Android 9 (no randomization)",
        ouis: OUI_XIAOMI,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_QCOM_OLD),
            (127, EXT_CAPS_8),
            (221, VENDOR_WFA_P2P),
        ],
    },
    PhoneModel {
        name: "Windows 11 desktop PC, Intel AX210",
        ouis: OUI_INTEL,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, &HT_INTEL),
            (127, EXT_CAPS_INTEL_B),
            (191, VHT_INTEL),
            (255, HE_CAPS),
            (221, VENDOR_MSFT),
        ],
    },
    PhoneModel {
        name: "HP LaserJet printer",
        ouis: OUI_HP,
        ies: &[
            (1, RATES_BG),
            (50, EXT_RATES),
            (45, &HT_PRINTER),
            (221, VENDOR_WPS),
        ],
    },
    PhoneModel {
        name: "Digital signage player, Realtek RTL8821",
        ouis: OUI_REALTEK,
        ies: &[
            (1, RATES_B),
            (50, EXT_RATES_G),
            (45, &HT_RTL),
            (127, EXT_CAPS_4),
            (221, VENDOR_WPS),
        ],
    },
];

/// Model index: iPhone 14, iOS 16.
pub(crate) const IPHONE14_IOS16: u8 = 8;
/// Model index: iPhone 13, iOS 16.
pub(crate) const IPHONE13_IOS16: u8 = 9;
/// Model index: iPhone 12, iOS 16.
pub(crate) const IPHONE12_IOS16: u8 = 10;
/// Model index: iPhone 15, iOS 17 (scans like iOS 16).
pub(crate) const IPHONE15_IOS17: u8 = 11;
/// Model index: iPhone SE (3rd gen.), iOS 16.
pub(crate) const IPHONESE3_IOS16: u8 = 12;
/// Model index: iPhone 11, iOS 15.
pub(crate) const IPHONE11_IOS15: u8 = 13;
/// Model index: iPhone XR, iOS 15.
pub(crate) const IPHONEXR_IOS15: u8 = 14;
/// Model index: Huawei P30, EMUI 10 (per-network random MAC).
pub(crate) const HUAWEI_P30_EMUI10: u8 = 15;
/// Model index: Samsung Galaxy S22, Android 13.
pub(crate) const GALAXY_S22_ANDROID13: u8 = 16;
/// Model index: Samsung Galaxy A53, Android 13.
pub(crate) const GALAXY_A53_ANDROID13: u8 = 17;
/// Model index: Google Pixel 7, Android 13.
pub(crate) const PIXEL7_ANDROID13: u8 = 18;
/// Model index: Xiaomi 13, Android 13.
pub(crate) const XIAOMI13_ANDROID13: u8 = 19;
/// Model index: Oppo Reno8, Android 13.
pub(crate) const OPPO_RENO8_ANDROID13: u8 = 20;
/// Model index: Windows 11 laptop, Intel AX201.
pub(crate) const LAPTOP_AX201_WIN11: u8 = 21;
/// Model index: Chromebook, MediaTek MT7921.
pub(crate) const CHROMEBOOK_MT7921: u8 = 22;
/// Model index: Vivo phone, Android 8 (no randomization).
pub(crate) const VIVO_ANDROID8: u8 = 23;
/// Model index: Redmi phone, Android 9 (no randomization).
pub(crate) const REDMI_ANDROID9: u8 = 24;
/// Model index: Windows 11 desktop PC, Intel AX210.
pub(crate) const DESKTOP_AX210_WIN11: u8 = 25;
/// Model index: HP LaserJet printer.
pub(crate) const PRINTER_HP: u8 = 26;
/// Model index: Digital signage player, Realtek RTL8821.
pub(crate) const SIGNAGE_RTL8821: u8 = 27;

/// iOS 16-like iPhones of the `Realistic` mix (a new random MAC and sequence number per
/// channel of every scan).
pub(crate) const IOS16_POOL: &[u8] = &[
    IPHONE14_IOS16,
    IPHONE13_IOS16,
    IPHONE12_IOS16,
    IPHONE15_IOS17,
    IPHONESE3_IOS16,
];
/// Android 13-like phones (a new random MAC per scan, sequence numbers from 0).
pub(crate) const ANDROID13_POOL: &[u8] = &[
    GALAXY_S22_ANDROID13,
    GALAXY_A53_ANDROID13,
    PIXEL7_ANDROID13,
    XIAOMI13_ANDROID13,
    OPPO_RENO8_ANDROID13,
];
/// Older phones with one randomized MAC per visit (iOS 15-like, EMUI 10).
pub(crate) const STABLE_RANDOM_POOL: &[u8] = &[IPHONE11_IOS15, IPHONEXR_IOS15, HUAWEI_P30_EMUI10];
/// Laptops and phones that probe from their global MAC.
pub(crate) const GLOBAL_POOL: &[u8] = &[
    LAPTOP_AX201_WIN11,
    CHROMEBOOK_MT7921,
    VIVO_ANDROID8,
    REDMI_ANDROID9,
];
/// Fixed devices of the store (PCs, printers, signage).
pub(crate) const FIXED_POOL: &[u8] = &[DESKTOP_AX210_WIN11, PRINTER_HP, SIGNAGE_RTL8821];

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

    /// Every model fits `emit`'s IE list, has no DS parameter set (its channel would make
    /// units differ) and its own fingerprint; the pools split the realistic models.
    #[test]
    fn models_are_distinct_fingerprint_classes() {
        use edge_wire::ieee80211::ie;
        let mut fingerprints = std::collections::HashMap::new();
        for (i, m) in MODELS.iter().enumerate() {
            assert!(!m.ies.is_empty() && m.ies.len() <= 7, "{}", m.name);
            assert!(m
                .ies
                .iter()
                .all(|e| e.0 != ie::SSID && e.0 != ie::DS_PARAMETER));
            let mut bytes = vec![0; ie::buffer_len(m.ies)];
            ie::emit(m.ies, &mut bytes).unwrap();
            let fp = edge_wire::presence::fingerprint(&bytes).unwrap();
            if let Some(other) = fingerprints.insert(fp, i) {
                panic!("{} and {} share a fingerprint", MODELS[other].name, m.name);
            }
        }
        let pools = [
            IOS16_POOL,
            ANDROID13_POOL,
            STABLE_RANDOM_POOL,
            GLOBAL_POOL,
            FIXED_POOL,
        ];
        let mut all: Vec<u8> = pools.concat();
        all.sort_unstable();
        let realistic: Vec<u8> = (LEGACY_MODELS as u8..MODELS.len() as u8).collect();
        assert_eq!(all, realistic, "every realistic model in exactly one pool");
    }
}
