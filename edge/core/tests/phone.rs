//! Table-driven and property tests of phone-number normalisation (`edge_core::phone`) and person
//! keys (`edge_core::person`): every accepted spelling and every refusal rule, golden person keys
//! cross-checked with openssl, and redaction of digits in `Debug`/`Display`.

use edge_core::phone::{normalize, PhoneError, Region, E164};
use edge_core::{DeviceKeyer, PersonKey, PersonKeyer, Secret};
use proptest::prelude::*;

fn region(code: &str) -> Region {
    match Region::by_code(code) {
        Some(r) => r,
        None => panic!("no region {code}"),
    }
}

fn run(raw: &str, default: &str) -> Result<String, &'static str> {
    normalize(raw, region(default))
        .map(|e| e.as_str().to_owned())
        .map_err(|e| e.reason())
}

/// (input, default region, expected E.164 or error reason)
const CASES: &[(&str, &str, Result<&str, &str>)] = &[
    // China: every spelling of one mainland mobile.
    ("13812345678", "CN", Ok("+8613812345678")),
    ("+86 138 1234 5678", "CN", Ok("+8613812345678")),
    ("0086-138-1234-5678", "CN", Ok("+8613812345678")),
    ("86 13812345678", "CN", Ok("+8613812345678")),
    ("(+86) 138.1234.5678", "CN", Ok("+8613812345678")),
    ("8613812345678", "CN", Ok("+8613812345678")),
    ("138-1234-5678", "CN", Ok("+8613812345678")),
    ("138 1234 5678", "CN", Ok("+8613812345678")),
    ("+8613812345678", "CN", Ok("+8613812345678")),
    ("\t 13812345678 \n", "CN", Ok("+8613812345678")),
    ("+86 (0) 138 1234 5678", "CN", Ok("+8613812345678")),
    ("+86 138 1234 5678", "US", Ok("+8613812345678")),
    ("19912345678", "CN", Ok("+8619912345678")),
    ("14512345678", "CN", Ok("+8614512345678")),
    // China: refusals.
    ("010-12345678", "CN", Err("not_mobile")),
    ("021 6123 4567", "CN", Err("not_mobile")),
    ("0755-8765-4321", "CN", Err("not_mobile")),
    ("+86 10 1234 5678", "CN", Err("not_mobile")),
    ("12345678901", "CN", Err("not_mobile")),
    ("1440 1234 56789", "CN", Err("iot_number")),
    ("+86 146 0123 456789", "CN", Err("iot_number")),
    ("0086 1410 1234 56789", "CN", Err("iot_number")),
    ("1381234567", "CN", Err("wrong_length")),
    ("138123456789", "CN", Err("wrong_length")),
    ("+86 138 1234 567", "CN", Err("wrong_length")),
    ("861381234567", "CN", Err("wrong_length")),
    ("+86", "CN", Err("wrong_length")),
    ("13812345678", "HK", Err("wrong_length")),
    ("86 13812345678", "HK", Err("wrong_length")),
    // Characters.
    ("", "CN", Err("empty")),
    ("   ", "CN", Err("empty")),
    ("()- .", "CN", Err("empty")),
    ("+", "CN", Err("empty")),
    ("138-1234-567a", "CN", Err("bad_characters")),
    ("138*1234#5678", "CN", Err("bad_characters")),
    ("+86+13812345678", "CN", Err("bad_characters")),
    ("138+12345678", "CN", Err("bad_characters")),
    ("tel:13812345678", "CN", Err("bad_characters")),
    ("１３８１２３４５６７８", "CN", Err("bad_characters")),
    ("138\u{a0}1234\u{a0}5678", "CN", Err("bad_characters")),
    ("138/1234/5678", "CN", Err("bad_characters")),
    // Unknown country codes.
    ("+999 1234 5678", "CN", Err("unknown_country_code")),
    ("00999 1234 5678", "CN", Err("unknown_country_code")),
    ("+7 912 345 67 89", "CN", Err("unknown_country_code")),
    ("+01 212 555 1234", "US", Err("unknown_country_code")),
    ("00", "CN", Err("unknown_country_code")),
    // Hong Kong.
    ("+852 9123 4567", "CN", Ok("+85291234567")),
    ("5123 4567", "HK", Ok("+85251234567")),
    ("852 6123 4567", "HK", Ok("+85261234567")),
    ("2123 4567", "HK", Err("not_mobile")),
    ("8123 4567", "HK", Err("not_mobile")),
    ("9123 456", "HK", Err("wrong_length")),
    // Macao.
    ("+853 6612 3456", "CN", Ok("+85366123456")),
    ("6612 3456", "MO", Ok("+85366123456")),
    ("2888 1234", "MO", Err("not_mobile")),
    ("6612 345", "MO", Err("wrong_length")),
    // Taiwan.
    ("0912 345 678", "TW", Ok("+886912345678")),
    ("+886 912 345 678", "CN", Ok("+886912345678")),
    ("+886 (0)912-345-678", "CN", Ok("+886912345678")),
    ("02 2345 6789", "TW", Err("not_mobile")),
    ("0912 345 67", "TW", Err("wrong_length")),
    // Singapore.
    ("9123 4567", "SG", Ok("+6591234567")),
    ("+65 8123 4567", "CN", Ok("+6581234567")),
    ("6123 4567", "SG", Err("not_mobile")),
    ("+65 9123 45678", "CN", Err("wrong_length")),
    // US / Canada (NANP).
    ("(212) 555-1234", "US", Ok("+12125551234")),
    ("1-212-555-1234", "US", Ok("+12125551234")),
    ("+1 416 555 0123", "CN", Ok("+14165550123")),
    ("416.555.0123", "CA", Ok("+14165550123")),
    ("(212) 055-1234", "US", Err("not_mobile")),
    ("(012) 555-1234", "US", Err("not_mobile")),
    ("+1 212 555 123", "CN", Err("wrong_length")),
    // United Kingdom.
    ("07911 123456", "GB", Ok("+447911123456")),
    ("+44 7911 123456", "CN", Ok("+447911123456")),
    ("+44 (0)7911 123456", "CN", Ok("+447911123456")),
    ("020 7946 0958", "GB", Err("not_mobile")),
    ("07911 12345", "GB", Err("wrong_length")),
    // Germany.
    ("0151 12345678", "DE", Ok("+4915112345678")),
    ("+49 170 1234567", "CN", Ok("+491701234567")),
    ("0049 176 12345678", "CN", Ok("+4917612345678")),
    ("030 1234567", "DE", Err("not_mobile")),
    ("0151 123", "DE", Err("wrong_length")),
    ("+49 151 1234 5678 90", "CN", Err("wrong_length")),
    // Japan.
    ("090-1234-5678", "JP", Ok("+819012345678")),
    ("+81 80 1234 5678", "CN", Ok("+818012345678")),
    ("03-1234-5678", "JP", Err("not_mobile")),
    ("090-1234-567", "JP", Err("wrong_length")),
    // Absurd lengths.
    (
        "1111111111111111111111111111111111111111",
        "CN",
        Err("wrong_length"),
    ),
    ("+86 1381234567813812345678", "CN", Err("wrong_length")),
];

#[test]
fn normalize_table() {
    assert!(CASES.len() >= 40);
    let mut failures = Vec::new();
    for &(raw, default, want) in CASES {
        let got = run(raw, default);
        if got.as_deref().map_err(|e| *e) != want {
            failures.push(format!("{raw:?} in {default}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_reason_is_covered_and_distinct() {
    let all = [
        PhoneError::Empty,
        PhoneError::BadCharacters,
        PhoneError::UnknownCountryCode,
        PhoneError::WrongLength,
        PhoneError::NotMobile,
        PhoneError::IotNumber,
    ];
    let reasons: Vec<&str> = all.iter().map(|e| e.reason()).collect();
    assert_eq!(
        reasons,
        [
            "empty",
            "bad_characters",
            "unknown_country_code",
            "wrong_length",
            "not_mobile",
            "iot_number"
        ]
    );
    for r in reasons {
        assert!(CASES.iter().any(|c| c.2 == Err(r)), "no table case for {r}");
    }
    for e in all {
        let text = e.to_string();
        assert!(!text.is_empty());
        assert!(!text.bytes().any(|b| b.is_ascii_digit()), "{text}");
        let _: &dyn std::error::Error = &e;
    }
}

#[test]
fn every_region_has_an_accepted_case_and_is_found_by_code() {
    for r in Region::all() {
        assert_eq!(Region::by_code(&r.code.to_lowercase()), Some(*r));
        assert!(
            CASES.iter().any(|c| c.1 == r.code && c.2.is_ok()),
            "no accepted case with default region {}",
            r.code
        );
    }
}

#[test]
fn debug_and_display_never_show_subscriber_digits() {
    let e164 = normalize("+86 138 1234 5678", region("CN")).unwrap();
    assert_eq!(e164.country_code(), 86);
    assert_eq!(format!("{e164:?}"), "E164(+86…)");
    let keyer = PersonKeyer::new(&secret(1));
    let key = keyer.key(&e164);
    let err = normalize("010-12345678", region("CN")).unwrap_err();
    for text in [
        format!("{e164:?}"),
        format!("{:?}", Some(&e164)),
        format!("{key:?}"),
        format!("{keyer:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{:?}", normalize("13812345678x", region("CN"))),
    ] {
        for digits in ["13812345678", "1381234", "12345678", "5678"] {
            assert!(!text.contains(digits), "{text:?} contains {digits}");
        }
    }
    assert_eq!(
        format!("{key:?}"),
        format!("PersonKey({})", &key.to_hex()[..8])
    );
}

fn secret_bytes() -> Vec<u8> {
    (0u8..32).collect()
}

fn secret(version: u32) -> Secret {
    Secret::new(secret_bytes(), version)
}

fn e164(raw: &str) -> E164 {
    match normalize(raw, region("CN")) {
        Ok(e) => e,
        Err(e) => panic!("{raw:?}: {e}"),
    }
}

#[test]
fn person_key_golden() {
    // Secret = bytes 0x00..=0x1f, number +8613812345678; independently computed with openssl
    // 3.0:
    //   S=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
    //   printf 'store-edge/person/v1+8613812345678' \
    //       | openssl dgst -sha256 -mac HMAC -macopt hexkey:$S -r
    //   # 4a66dca1c87f374429c1135aaff77c51c3d918701775fe105c6cb9a53f541e48
    const GOLDEN: &str = "4a66dca1c87f374429c1135aaff77c51c3d918701775fe105c6cb9a53f541e48";
    let keyer = PersonKeyer::new(&secret(1));
    let key = keyer.key(&e164("13812345678"));
    assert_eq!(key.to_hex(), GOLDEN);
    assert_eq!(PersonKey::from_hex(GOLDEN), Some(key));
}

#[test]
fn spellings_of_one_number_share_a_key() {
    let keyer = PersonKeyer::new(&secret(1));
    let base = keyer.key(&e164("13812345678"));
    for raw in [
        "+86 138 1234 5678",
        "0086-138-1234-5678",
        "86 13812345678",
        "(+86) 138.1234.5678",
        "138-1234-5678",
        "8613812345678",
    ] {
        assert_eq!(keyer.key(&e164(raw)), base, "{raw}");
    }
    assert_ne!(keyer.key(&e164("13812345679")), base);
}

#[test]
fn secrets_and_versions_separate_keys() {
    let phone = e164("13812345678");
    let base = PersonKeyer::new(&secret(1));
    let mut other_bytes = secret_bytes();
    other_bytes[31] ^= 1;
    let other = PersonKeyer::new(&Secret::new(other_bytes, 1));
    let v2 = PersonKeyer::new(&secret(2));
    assert_ne!(base.key(&phone), other.key(&phone));
    assert_eq!(base.version(), 1);
    assert_eq!(v2.version(), 2);
    // The version is stored next to the key; the key itself depends on the secret bytes only.
    assert_eq!(base.key(&phone), v2.key(&phone));
}

#[test]
fn person_keys_never_equal_device_keys() {
    let s = secret(1);
    let people = PersonKeyer::new(&s);
    let mut devices = DeviceKeyer::new(&s, 86_400_000, 64);
    // MACs spelled with the phone's digits, and ordinary ones, across a few epochs.
    let macs = [
        0x0138_1234_5678u64,
        0x8613_8123_4567,
        0x0000_0000_0000,
        0x0011_2233_4455,
    ];
    for raw in ["13812345678", "+85291234567", "+12125551234"] {
        let p = people.key(&e164(raw));
        for mac in macs {
            for ts in [0, 1_700_000_000_000, i64::MAX] {
                let d = devices.key(mac, ts);
                assert_ne!(&p.0[..16], &d.0[..], "{raw} vs {mac:x}");
                assert_ne!(&p.0[16..], &d.0[..], "{raw} vs {mac:x}");
            }
        }
    }
}

/// An independent restatement of the mobile plans the table must accept: region, NSN prefixes
/// (`N` = any of 2-9), NSN lengths, trunk prefix.
const MOBILE_PLANS: &[(&str, &[&str], &[usize], &str)] = &[
    (
        "CN",
        &["13", "14", "15", "16", "17", "18", "19"],
        &[11],
        "0",
    ),
    ("HK", &["4", "5", "6", "7", "9"], &[8], ""),
    ("MO", &["6"], &[8], ""),
    ("TW", &["9"], &[9], "0"),
    ("SG", &["8", "9"], &[8], ""),
    ("US", &["N00N", "N99N"], &[10], "1"),
    ("CA", &["N00N", "N99N"], &[10], "1"),
    ("GB", &["7"], &[10], "0"),
    ("DE", &["15", "16", "17"], &[10, 11], "0"),
    ("JP", &["70", "80", "90"], &[10], "0"),
];

/// A mobile NSN from a plan: prefix `p`, then `fill` digits up to `len` (the NANP's `N00N` and
/// `N99N` prefixes get their middle digits from `fill` too, so any NXXN area/exchange occurs).
fn mobile_nsn(p: &str, len: usize, fill: &[u8]) -> String {
    let mut nsn = String::new();
    for (i, c) in p.chars().enumerate() {
        let d = fill[i % fill.len()];
        nsn.push(match c {
            'N' => char::from(b'2' + d % 8),
            _ if p.len() == 4 => char::from(b'0' + d % 10),
            _ => c,
        });
    }
    for &d in fill.iter().skip(nsn.len()).take(len - nsn.len()) {
        nsn.push(char::from(b'0' + d % 10));
    }
    nsn
}

#[test]
fn mobile_plans_cover_every_region() {
    let codes: Vec<&str> = MOBILE_PLANS.iter().map(|p| p.0).collect();
    let table: Vec<&str> = Region::all().iter().map(|r| r.code).collect();
    assert_eq!(codes, table);
}

fn check_idempotent(raw: &str) -> Result<(), TestCaseError> {
    for r in Region::all() {
        if let Ok(e) = normalize(raw, *r) {
            let s = e.as_str();
            prop_assert!(s.starts_with('+'));
            prop_assert!(s[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(s.len() <= 16, "{} longer than E.164", s.len());
            for again in Region::all() {
                prop_assert_eq!(&normalize(s, *again), &Ok(e.clone()));
            }
            prop_assert!(Region::all()
                .iter()
                .any(|r| r.country_code == e.country_code()));
            prop_assert_eq!(format!("{e:?}"), format!("E164(+{}…)", e.country_code()));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_strings(raw in any::<String>()) {
        check_idempotent(&raw)?;
    }

    #[test]
    fn never_panics_on_phone_like_strings(raw in "[+]?[0-9 ().+-]{0,28}") {
        check_idempotent(&raw)?;
    }

    #[test]
    fn valid_mobiles_in_any_spelling_normalize(
        plan in prop::sample::select(MOBILE_PLANS),
        pick in 0usize..16,
        fill in proptest::collection::vec(0u8..10, 16),
        style in 0usize..5,
        sep in prop::sample::select(vec!["", " ", "-", "."]),
    ) {
        let (code, prefixes, lens, trunk) = plan;
        let r = region(code);
        let nsn = mobile_nsn(prefixes[pick % prefixes.len()], lens[pick % lens.len()], &fill);
        let want = format!("+{}{nsn}", r.country_code);
        let grouped: String = nsn
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let s = if i > 0 && i % 4 == 3 { sep } else { "" };
                s.chars().chain(std::iter::once(c))
            })
            .collect();
        let raw = match style {
            0 => format!("+{}{sep}{grouped}", r.country_code),
            1 => format!("00{}{sep}{grouped}", r.country_code),
            2 => format!("(+{}){sep}{grouped}", r.country_code),
            3 => grouped,
            _ => format!("{trunk}{grouped}"),
        };
        prop_assert_eq!(run(&raw, code), Ok(want), "{:?}", raw);
        check_idempotent(&raw)?;
    }
}
