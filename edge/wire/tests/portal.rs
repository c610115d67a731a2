//! Captive-portal login records: FreeRADIUS `detail` and openNDS BinAuth log fixtures, framing
//! and resynchronisation after bad records, emit/parse round trips, and never-panic properties.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use edge_wire::portal::binauth::{self, BinauthError, BinauthRepr};
use edge_wire::portal::detail::{
    self, next_accounting, next_record, AccountingRepr, AcctStatus, DetailError, DetailRecord,
    MAX_RECORD_LEN,
};
use edge_wire::portal::{format_ctime, parse_ctime};
use edge_wire::MacAddr;
use proptest::prelude::*;

const CLIENT: MacAddr = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
/// 2024-05-01 10:15:00 as naive local seconds.
const T_1015: i64 = 1_714_558_500;

// ---------------------------------------------------------------------------------------------
// FreeRADIUS detail fixtures

/// Accounting Start with every attribute store-edge reads, plus ones it does not know. LF.
const START: &str = concat!(
    "Wed May  1 10:15:00 2024\n", // ctime header, day padded with a space
    "\tPacket-Type = Accounting-Request\n", // server's own, unknown: kept, ignored
    "\tAcct-Status-Type = Start\n", // enum name, bare
    "\tUser-Name = \"13812345678\"\n", // phone as typed, quoted
    "\tCalling-Station-Id = \"AA-BB-CC-DD-EE-FF\"\n", // client MAC: dashes, upper case
    "\tCalled-Station-Id = \"00-11-22-33-44-55:Store\"\n", // AP MAC:SSID, unknown
    "\tFramed-IP-Address = 10.1.0.23\n", // bare IPv4, unknown
    "\tAcct-Session-Id = \"663188a400000001\"\n", // session id, quoted
    "\tCisco-AVPair = \"client-mac-address=aabb.ccdd.eeff\"\n", // vendor attribute ...
    "\tCisco-AVPair = \"audit-session-id=0A0100170000\"\n", // ... repeated
    "\tEvent-Timestamp = \"May  1 2024 10:15:00 CST\"\n", // NAS time, server-local + zone
    "\tNAS-Port-Type = Wireless-802.11\n", // enum, unknown
    "\tTimestamp = 1714529700\n", // Unix seconds written by the server
    "\n",                         // blank line: end of record
);

/// Interim-Update with CRLF line ends and a colon lower-case MAC.
const INTERIM: &str = concat!(
    "Wed May  1 10:20:00 2024\r\n",            // ctime header, CRLF
    "\tAcct-Status-Type = Interim-Update\r\n", // enum name with a dash
    "\tUser-Name = \"13812345678\"\r\n",       // same phone
    "\tCalling-Station-Id = \"aa:bb:cc:dd:ee:ff\"\r\n", // client MAC: colons, lower case
    "\tAcct-Session-Id = \"663188a400000001\"\r\n", // same session
    "\tAcct-Session-Time = 300\r\n",           // integer, unknown
    "\tAcct-Input-Octets = 123456\r\n",        // integer, unknown
    "\tEvent-Timestamp = \"May  1 2024 10:20:00 CST\"\r\n", // NAS time
    "\tTimestamp = 1714530000\r\n",            // server time
    "\r\n",                                    // blank CRLF line: end of record
);

/// Stop by number, Cisco dotted MAC, escapes in the user name, no `Timestamp`.
const STOP: &str = concat!(
    "Wed May  1 11:05:09 2024\n",                         // ctime header
    "\tAcct-Status-Type = 2\n",                           // numeric form of Stop
    "\tUser-Name = \"138\\\"1234\\\\5678\\t\"\n",         // \" \\ \t escapes
    "\tCalling-Station-Id = \"aabb.ccdd.eeff\"\n",        // client MAC: Cisco dotted
    "\tAcct-Session-Id = \"663188a400000001\"\n",         // session
    "\tAcct-Terminate-Cause = User-Request\n",            // enum, unknown
    "\tEvent-Timestamp = \"May  1 2024 11:05:09 CST\"\n", // NAS time
    "\n",                                                 // end of record
);

/// Interim under its old name, a bare-hex MAC, an ISO Event-Timestamp, loose spacing.
const ALIVE: &str = concat!(
    "Wed May  1 10:25:00 2024\n",                          // ctime header
    "  Acct-Status-Type=Alive\n",                          // spaces, no blanks around `=`
    "\tCalling-Station-Id = AABBCCDDEEFF   \n",            // client MAC: bare hex, unquoted
    "\tEvent-Timestamp = \"2024-05-01T10:25:00+08:00\"\n", // ISO 8601 with an offset
    "\n",                                                  // end of record
);

/// Accounting-On: no client, a status store-edge keeps as text, no times.
const ACCOUNTING_ON: &str = concat!(
    "Wed May  1 08:00:00 2024\n",           // ctime header
    "\tAcct-Status-Type = Accounting-On\n", // NAS reboot
    "\tNAS-IP-Address = 10.1.0.1\n",        // unknown
    "\n",                                   // end of record
);

fn start_repr() -> AccountingRepr {
    AccountingRepr {
        status: AcctStatus::Start,
        user_name: Some("13812345678".into()),
        calling_station: Some(CLIENT),
        session_id: Some("663188a400000001".into()),
        time_s: Some(1_714_529_700),
        event_time_local: Some((T_1015, "CST".into())),
        header_time_local: Some(T_1015),
    }
}

fn record(s: &str) -> (DetailRecord, usize) {
    next_record(s.as_bytes()).unwrap().unwrap()
}

#[test]
fn start_record_fields() {
    let (rec, n) = record(START);
    assert_eq!(n, START.len());
    assert_eq!(rec.header, "Wed May  1 10:15:00 2024");
    assert_eq!(rec.attrs.len(), 12);
    assert_eq!(
        rec.attrs[0],
        ("Packet-Type".into(), "Accounting-Request".into())
    );
    assert_eq!(rec.get("framed-ip-address"), Some("10.1.0.23"));
    assert_eq!(
        rec.get_all("Cisco-AVPair").collect::<Vec<_>>(),
        [
            "client-mac-address=aabb.ccdd.eeff",
            "audit-session-id=0A0100170000"
        ]
    );
    assert_eq!(
        rec.get("Called-Station-Id"),
        Some("00-11-22-33-44-55:Store")
    );
    assert_eq!(AccountingRepr::parse(&rec).unwrap(), start_repr());
}

#[test]
fn interim_crlf_record() {
    let (rec, n) = record(INTERIM);
    assert_eq!(n, INTERIM.len());
    assert_eq!(rec.header, "Wed May  1 10:20:00 2024");
    assert!(rec
        .attrs
        .iter()
        .all(|(k, v)| !k.contains('\r') && !v.contains('\r')));
    let r = AccountingRepr::parse(&rec).unwrap();
    assert_eq!(r.status, AcctStatus::InterimUpdate);
    assert_eq!(r.calling_station, Some(CLIENT));
    assert_eq!(r.time_s, Some(1_714_530_000));
    assert_eq!(r.event_time_local, Some((T_1015 + 300, "CST".into())));
    assert_eq!(r.header_time_local, Some(T_1015 + 300));
}

#[test]
fn stop_record_escapes_and_no_timestamp() {
    let r = AccountingRepr::parse(&record(STOP).0).unwrap();
    assert_eq!(r.status, AcctStatus::Stop);
    assert_eq!(r.user_name.as_deref(), Some("138\"1234\\5678\t"));
    assert_eq!(r.calling_station, Some(CLIENT));
    // No Timestamp and a zone-abbreviation Event-Timestamp: no instant, only local times.
    assert_eq!(r.time_s, None);
    assert_eq!(r.event_time_local, Some((T_1015 + 3009, "CST".into())));
    assert_eq!(r.header_time_local, Some(T_1015 + 3009));
}

#[test]
fn alive_bare_hex_iso_time() {
    let r = AccountingRepr::parse(&record(ALIVE).0).unwrap();
    assert_eq!(r.status, AcctStatus::InterimUpdate);
    assert_eq!(r.calling_station, Some(CLIENT));
    assert_eq!(r.user_name, None);
    // An ISO time with an offset is an instant: 10:25 +08:00 = 02:25 UTC.
    assert_eq!(r.time_s, Some(1_714_530_300));
    assert_eq!(r.event_time_local, Some((T_1015 + 600, "+08:00".into())));
}

#[test]
fn other_status_and_absent_fields() {
    let r = AccountingRepr::parse(&record(ACCOUNTING_ON).0).unwrap();
    assert_eq!(r.status, AcctStatus::Other("Accounting-On".into()));
    assert_eq!(
        (
            r.user_name,
            r.calling_station,
            r.session_id,
            r.time_s,
            r.event_time_local
        ),
        (None, None, None, None, None)
    );
    for (v, s) in [
        ("1", AcctStatus::Start),
        ("start", AcctStatus::Start),
        ("STOP", AcctStatus::Stop),
        ("3", AcctStatus::InterimUpdate),
        ("7", AcctStatus::Other("7".into())),
    ] {
        assert_eq!(AcctStatus::parse(v), Some(s), "{v}");
    }
    assert_eq!(AcctStatus::parse(""), None);
    assert_eq!(AcctStatus::parse("St art"), None);
}

#[test]
fn back_to_back_records_and_a_truncated_tail() {
    let stop = STOP.as_bytes();
    let mut file = [START, "\n", INTERIM].concat().into_bytes(); // an extra blank line too
    let good_len = file.len();
    file.extend_from_slice(&stop[..stop.len() / 2]);

    let (a, n1) = next_record(&file).unwrap().unwrap();
    assert_eq!(n1, START.len());
    let (b, n2) = next_record(&file[n1..]).unwrap().unwrap();
    assert_eq!(n1 + n2, good_len); // the extra blank line is consumed before the header
    assert_eq!(AccountingRepr::parse(&a).unwrap().status, AcctStatus::Start);
    assert_eq!(
        AccountingRepr::parse(&b).unwrap().status,
        AcctStatus::InterimUpdate
    );
    // The writer is still writing the third record.
    assert_eq!(next_record(&file[n1 + n2..]), Ok(None));
    // Every prefix of a record is "read more", never an error.
    for fx in [START, INTERIM, STOP, ALIVE] {
        for k in 0..fx.len() {
            assert_eq!(next_record(&fx.as_bytes()[..k]), Ok(None), "{k} of {fx:?}");
        }
    }
    assert_eq!(next_record(b""), Ok(None));
    assert_eq!(next_record(b"\n\r\n\n"), Ok(None));
}

/// Feeds `buf` through [`next_accounting`] as a follower would: good records, bad ones
/// (counted by their error) and the bytes left for the next read.
fn follow(buf: &[u8]) -> (Vec<AccountingRepr>, Vec<DetailError>, usize) {
    let (mut good, mut bad, mut pos) = (Vec::new(), Vec::new(), 0);
    loop {
        match next_accounting(&buf[pos..]) {
            Ok(Some((r, n))) => {
                good.push(r);
                pos += n;
            }
            Ok(None) => return (good, bad, buf.len() - pos),
            Err(e) => {
                assert!(e.skip() > 0 && e.skip() <= buf.len() - pos, "{e:?}");
                pos += e.skip();
                bad.push(e);
            }
        }
    }
}

#[test]
fn malformed_records_are_skipped_to_the_next_header() {
    let no_header = concat!(
        "\tAcct-Status-Type = Start\n", // attribute line where the header should be
        "\tUser-Name = \"13812345678\"\n",
        "\n",
    );
    let no_equals = concat!(
        "Wed May  1 10:16:00 2024\n",
        "\tAcct-Status-Type = Start\n",
        "\tUser-Name \"13812345678\"\n", // no `=`
        "\n",
    );
    let bad_quote = concat!(
        "Wed May  1 10:16:00 2024\n",
        "\tAcct-Status-Type = Start\n",
        "\tUser-Name = \"13812345678\n", // no closing quote
        "\n",
    );
    let bad_mac = concat!(
        "Wed May  1 10:17:00 2024\n",
        "\tAcct-Status-Type = Start\n",
        "\tCalling-Station-Id = \"AA-BB-CC-DD-EE\"\n", // five octets
        "\n",
    );
    let bad_status = concat!(
        "Wed May  1 10:18:00 2024\n",
        "\tAcct-Status-Type = \"St art\"\n", // not a name or number
        "\n",
    );
    let no_status = concat!(
        "Wed May  1 10:18:30 2024\n",
        "\tUser-Name = \"13812345678\"\n", // an authentication log, not accounting
        "\n",
    );
    let bad_timestamp = concat!(
        "Wed May  1 10:19:00 2024\n",
        "\tAcct-Status-Type = Start\n",
        "\tTimestamp = soon\n",
        "\n",
    );
    let unterminated = concat!(
        "Wed May  1 10:19:30 2024\n",
        "\tAcct-Status-Type = Start\n", // the server died here; no blank line
    );
    let file = [
        no_header,
        START,
        no_equals,
        bad_quote,
        STOP,
        bad_mac,
        "\n\n",
        bad_status,
        no_status,
        bad_timestamp,
        unterminated,
        INTERIM,
    ]
    .concat();
    let (good, bad, rest) = follow(file.as_bytes());
    assert_eq!(rest, 0);
    let statuses: Vec<_> = good.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            AcctStatus::Start,
            AcctStatus::Stop,
            AcctStatus::InterimUpdate
        ]
    );
    assert_eq!(good[0], start_repr());
    assert_eq!(
        bad,
        [
            DetailError::MissingHeader {
                offset: 0,
                skip: no_header.len()
            },
            DetailError::MalformedLine {
                line: 3,
                offset: "Wed May  1 10:16:00 2024\n\tAcct-Status-Type = Start\n".len(),
                skip: no_equals.len()
            },
            DetailError::MalformedLine {
                line: 3,
                offset: "Wed May  1 10:16:00 2024\n\tAcct-Status-Type = Start\n".len(),
                skip: bad_quote.len()
            },
            DetailError::BadAttribute {
                attr: "Calling-Station-Id",
                line: 3,
                skip: bad_mac.len() + 2 // the blank lines after it go with it
            },
            DetailError::BadAttribute {
                attr: "Acct-Status-Type",
                line: 2,
                skip: bad_status.len()
            },
            DetailError::MissingAttribute {
                attr: "Acct-Status-Type",
                skip: no_status.len()
            },
            DetailError::BadAttribute {
                attr: "Timestamp",
                line: 3,
                skip: bad_timestamp.len()
            },
            DetailError::Unterminated {
                offset: 0,
                skip: unterminated.len()
            },
        ]
    );
    // Errors name the attribute, never the value.
    for e in &bad {
        let text = e.to_string();
        for secret in ["13812345678", "AA-BB", "aa:bb", "St art", "soon"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    assert_eq!(
        bad[3].to_string(),
        "detail record line 3: unreadable Calling-Station-Id value"
    );
}

#[test]
fn record_level_errors_without_accounting() {
    // AccountingRepr::parse sees no buffer: skip is 0.
    let (rec, _) = record(
        "Wed May  1 10:17:00 2024\n\tAcct-Status-Type = Start\n\tCalling-Station-Id = 10.0.0.1\n\n",
    );
    assert_eq!(
        AccountingRepr::parse(&rec),
        Err(DetailError::BadAttribute {
            attr: "Calling-Station-Id",
            line: 3,
            skip: 0
        })
    );
    // A header-less file of junk with no blank line is cut at MAX_RECORD_LEN.
    let junk = vec![b'\t'; MAX_RECORD_LEN + 1];
    assert_eq!(
        next_record(&junk),
        Err(DetailError::TooLong {
            offset: 0,
            skip: junk.len()
        })
    );
    assert_eq!(next_record(&junk[..MAX_RECORD_LEN]), Ok(None));
    // A header immediately followed by another header.
    assert_eq!(
        next_record(b"Wed May  1 10:17:00 2024\nWed May  1 10:18:00 2024\n\n"),
        Err(DetailError::Unterminated {
            offset: 0,
            skip: 25
        })
    );
    // A vertical tab is not blank to the framer (nor to `u8::is_ascii_whitespace`): the
    // header keeps it, and re-emitting gives the same record (found by the fuzzer).
    let (rec, n) = record("\u{b}\n\n");
    assert_eq!((rec.header.as_str(), n), ("\u{b}", 3));
    let mut out = Vec::new();
    rec.emit(&mut out);
    assert_eq!(next_record(&out), Ok(Some((rec, 3))));
    // A header with no attributes is a record (and not an accounting one).
    let (rec, n) = record("Wed May  1 10:17:00 2024\n\n");
    assert_eq!((rec.attrs.len(), n), (0, 26));
}

#[test]
fn accounting_emit_is_freeradius_style() {
    let mut out = Vec::new();
    start_repr().emit(&format_ctime(T_1015), &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        concat!(
            "Wed May  1 10:15:00 2024\n",
            "\tAcct-Status-Type = Start\n",
            "\tUser-Name = \"13812345678\"\n",
            "\tCalling-Station-Id = \"AA-BB-CC-DD-EE-FF\"\n",
            "\tAcct-Session-Id = \"663188a400000001\"\n",
            "\tEvent-Timestamp = \"May  1 2024 10:15:00 CST\"\n",
            "\tTimestamp = 1714529700\n",
            "\n",
        )
    );
    assert_eq!(next_accounting(&out), Ok(Some((start_repr(), out.len()))));
    // A generic record re-emits to the same record.
    for fx in [START, INTERIM, STOP, ALIVE, ACCOUNTING_ON] {
        let (rec, _) = record(fx);
        let mut again = Vec::new();
        rec.emit(&mut again);
        assert_eq!(next_record(&again), Ok(Some((rec, again.len()))));
    }
}

// ---------------------------------------------------------------------------------------------
// openNDS BinAuth log fixtures

/// `client_auth` from binauth_log.sh (openNDS 10): the FAS passed `phone=…&x=y` in custom.
const CLIENT_AUTH: &str = concat!(
    "Wed May  1 10:15:02 CST 2024, ",       // $(date), C locale
    "method=client_auth, ",                 // argv[1]
    "clientmac=aa:bb:cc:dd:ee:ff, ",        // argv[2]
    "bytes_incoming=0, ",                   // argv[3]
    "bytes_outgoing=0, ",                   // argv[4]
    "session_start=1714529702, ",           // argv[5], Unix seconds
    "session_end=1714616102, ",             // argv[6], start + 24 h
    "token=4f5a8b2c, ",                     // argv[7]
    "custom=phone%3D13812345678%26x%3Dy, ", // argv[8], url-escaped by openNDS
    "client_type=cpd_can, ",                // ThemeSpec client database
    "gatewayname=Store%20WiFi, ",           // url-escaped gateway name
    "ndsversion=10.2.0, ",
    "originurl=http%3A%2F%2Fconnectivitycheck.gstatic.com%2Fgenerate_204, ",
    "client_zone=LocalZone:br-lan", // get_client_zone, last
);

/// `auth_client` as openNDS 9+ logs it, MAC in dashes.
const AUTH_CLIENT: &str = concat!(
    "Wed May  1 10:15:01 CST 2024, ", // date
    "method=auth_client, ",           // the request for authentication
    "clientmac=AA-BB-CC-DD-EE-FF, ",  // dashes, upper case
    "clientip=10.1.0.23, ",
    "useragent=Mozilla%2F5.0%20(Linux%3B%20Android%2014), ", // url-escaped
    "token=4f5a8b2c, ",
    "custom=phone%3D13812345678%26x%3Dy, ", // FAS payload
    "client_zone=LocalZone:br-lan",
);

/// `auth_client` as openNDS 5–8 logged it: redir, useragent and custom url-decoded, so the
/// user agent holds ", " and the custom string is the bare phone.
const AUTH_CLIENT_OLD: &str = concat!(
    "Wed May  1 10:15:01 CST 2024, ",
    "method=auth_client, ",
    "clientmac=aa:bb:cc:dd:ee:ff, ",
    "clientip=10.1.0.23, ",
    "username=, ",                              // empty (deprecated argv[3])
    "password=, ",                              // empty (deprecated argv[4])
    "redir=http://connectivitycheck.gstatic.com/generate_204, ",
    "useragent=Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36, ",
    "token=4f5a8b2c, ",
    "custom=13812345678",                       // plain custom: the phone
);

/// `client_deauth`: session_end printed as `null` (as `ndsctl json` does), custom `none`.
const DEAUTH: &str = concat!(
    "Wed May  1 11:05:09 CST 2024, ",
    "method=client_deauth, ",
    "clientmac=aa:bb:cc:dd:ee:ff, ",
    "bytes_incoming=1048576, ",
    "bytes_outgoing=20480, ",
    "session_start=1714529702, ",
    "session_end=null, ", // no end time
    "token=4f5a8b2c, ",
    "custom=none", // openNDS's "no payload"
);

#[test]
fn client_auth_line() {
    let r = binauth::parse_line(CLIENT_AUTH).unwrap();
    assert_eq!(r.method, "client_auth");
    assert_eq!(r.client_mac, CLIENT);
    assert_eq!(r.date_local, Some(T_1015 + 2));
    assert_eq!(r.session_start, Some(1_714_529_702));
    assert_eq!(r.session_end, Some(1_714_616_102));
    assert_eq!(r.fields.len(), 13);
    assert_eq!(r.get("gatewayname"), Some("Store WiFi"));
    assert_eq!(
        r.get("originurl"),
        Some("http://connectivitycheck.gstatic.com/generate_204")
    );
    assert_eq!(r.field("custom").as_deref(), Some("phone=13812345678&x=y"));
    assert_eq!(r.field("custom.phone").as_deref(), Some("13812345678"));
    assert_eq!(r.field("custom.x").as_deref(), Some("y"));
    assert_eq!(r.field("custom.nope"), None);
    assert_eq!(r.field("token").as_deref(), Some("4f5a8b2c"));
    assert_eq!(r.field("client_zone").as_deref(), Some("LocalZone:br-lan"));
}

#[test]
fn auth_client_lines() {
    let r = binauth::parse_line(AUTH_CLIENT).unwrap();
    assert_eq!((r.method.as_str(), r.client_mac), ("auth_client", CLIENT));
    assert_eq!(r.get("useragent"), Some("Mozilla/5.0 (Linux; Android 14)"));
    assert_eq!(r.field("custom.phone").as_deref(), Some("13812345678"));
    assert_eq!((r.session_start, r.session_end), (None, None));

    let r = binauth::parse_line(AUTH_CLIENT_OLD).unwrap();
    assert_eq!(
        r.get("useragent"),
        Some("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36")
    );
    assert_eq!(r.get("username"), Some(""));
    assert_eq!(r.field("custom").as_deref(), Some("13812345678"));
    assert_eq!(r.field("custom.phone"), None);
    assert_eq!(r.fields.len(), 9);

    // Other payload spellings: separators, double escaping, base64 (openNDS 10).
    for custom in [
        "phone%3D13812345678",
        "x%3D1%3Bphone%3D13812345678",
        "x=1,%20PHONE=13812345678",
        "phone%253D13812345678%2526x%253Dy",
        "cGhvbmU9MTM4MTIzNDU2Nzg%3D",
    ] {
        let line = format!("method=auth_client, clientmac=aa:bb:cc:dd:ee:ff, custom={custom}");
        let r = binauth::parse_line(&line).unwrap();
        assert_eq!(
            r.field("custom.phone").as_deref(),
            Some("13812345678"),
            "{custom}"
        );
    }
}

#[test]
fn deauth_lines() {
    let r = binauth::parse_line(DEAUTH).unwrap();
    assert_eq!(r.method, "client_deauth");
    assert_eq!(r.session_start, Some(1_714_529_702));
    assert_eq!(r.session_end, None);
    assert_eq!(r.get("session_end"), Some("null"));
    assert_eq!(r.field("custom").as_deref(), Some("none"));
    assert_eq!(r.field("custom.phone"), None);
    let idle = "Wed May  1 11:05:09 CST 2024, method=idle_deauth, clientmac=aa:bb:cc:dd:ee:ff, \
                bytes_incoming=1, bytes_outgoing=2, session_start=1714529702, session_end=0, token=t";
    let r = binauth::parse_line(idle).unwrap();
    assert_eq!((r.method.as_str(), r.session_end), ("idle_deauth", None));
}

#[test]
fn tolerant_splitting() {
    // No date, extra spaces, CRLF, Cisco MAC, unknown and repeated keys, missing fields.
    let r = binauth::parse_line(
        "  method = timeout_deauth ,clientmac=  aabb.ccdd.eeff ,, foo=bar, foo=baz ,\tx=1\r\n",
    )
    .unwrap();
    assert_eq!(r.method, "timeout_deauth");
    assert_eq!(r.client_mac, CLIENT);
    assert_eq!(r.date_local, None);
    // The empty segment of ",," is dropped with the spaces around it.
    assert_eq!(r.get("clientmac"), Some("aabb.ccdd.eeff"));
    assert_eq!(r.get("foo"), Some("bar"));
    assert_eq!(r.fields.last().unwrap(), &("x".to_owned(), "1".to_owned()));
    // A date that does not parse is no date, not an error.
    let r = binauth::parse_line("sometime, method=a, clientmac=aabbccddeeff").unwrap();
    assert_eq!(r.date_local, None);
}

#[test]
fn broken_lines_name_the_field() {
    let missing_method = BinauthError::MissingField { field: "method" };
    let missing_mac = BinauthError::MissingField { field: "clientmac" };
    for (line, err) in [
        ("", missing_method.clone()),
        (
            "Wed May  1 10:00:00 CST 2024, New log file created",
            missing_method.clone(),
        ),
        (
            "clientmac=aa:bb:cc:dd:ee:ff, token=x",
            missing_method.clone(),
        ),
        ("method=, clientmac=aa:bb:cc:dd:ee:ff", missing_method),
        ("method=client_auth, token=x", missing_mac.clone()),
        ("method=client_auth, clientmac=", missing_mac),
        (
            "method=client_auth, clientmac=aa:bb:cc:dd:ee:zz",
            BinauthError::BadField {
                field: "clientmac",
                offset: 30,
            },
        ),
        (
            // Cut mid-write.
            "Wed May  1 10:15:02 CST 2024, method=client_auth, clientmac=aa:bb:c",
            BinauthError::BadField {
                field: "clientmac",
                offset: 60,
            },
        ),
        (
            "method=client_auth, clientmac=aabbccddeeff, session_start=yesterday",
            BinauthError::BadField {
                field: "session_start",
                offset: 58,
            },
        ),
        (
            "method=client_auth, clientmac=aabbccddeeff, session_end=12:00",
            BinauthError::BadField {
                field: "session_end",
                offset: 56,
            },
        ),
    ] {
        let got = binauth::parse_line(line);
        assert_eq!(got, Err(err.clone()), "{line}");
        let text = err.to_string();
        assert!(
            !text.contains("aa:bb") && !text.contains("yesterday"),
            "{text}"
        );
    }
    assert!(binauth::is_log_banner(
        "Wed May  1 10:00:00 CST 2024, New log file created\n"
    ));
    assert!(!binauth::is_log_banner(CLIENT_AUTH));
}

#[test]
fn binauth_emit() {
    let r = BinauthRepr::new("client_auth", CLIENT)
        .with("session_start", "1714529702")
        .with("session_end", "0")
        .with("custom", "phone=13812345678&x=y");
    let line = BinauthRepr {
        date_local: Some(T_1015 + 2),
        ..r
    }
    .emit();
    assert_eq!(
        line,
        "Wed May  1 10:15:02 2024, method=client_auth, clientmac=aa:bb:cc:dd:ee:ff, \
         session_start=1714529702, session_end=0, custom=phone%3D13812345678%26x%3Dy"
    );
    let back = binauth::parse_line(&line).unwrap();
    assert_eq!(back.field("custom.phone").as_deref(), Some("13812345678"));
    assert_eq!(
        (back.session_start, back.session_end),
        (Some(1_714_529_702), None)
    );
    // Every fixture survives parse → emit → parse.
    for fx in [CLIENT_AUTH, AUTH_CLIENT, AUTH_CLIENT_OLD, DEAUTH] {
        let r = binauth::parse_line(fx).unwrap();
        assert_eq!(binauth::parse_line(&r.emit()), Ok(r), "{fx}");
    }
    // Typed fields win over disagreeing text, and missing ones are added.
    let mut r = binauth::parse_line(DEAUTH).unwrap();
    r.client_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    r.session_end = Some(1_714_532_709);
    r.method = "ndsctl_deauth".into();
    r.fields.retain(|(k, _)| k != "session_start");
    let again = binauth::parse_line(&r.emit()).unwrap();
    assert_eq!(again.client_mac, r.client_mac);
    assert_eq!(again.method, "ndsctl_deauth");
    assert_eq!(
        (again.session_start, again.session_end),
        (Some(1_714_529_702), Some(1_714_532_709))
    );
}

#[test]
fn ctime_helpers() {
    assert_eq!(parse_ctime("Wed May  1 10:15:00 2024"), Some(T_1015));
    assert_eq!(format_ctime(T_1015), "Wed May  1 10:15:00 2024");
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Lines that make random detail-like text reach every branch of the framer.
fn detail_lines() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"Wed May  1 10:15:00 2024\n".to_vec()),
        Just(b"\tAcct-Status-Type = Start\n".to_vec()),
        Just(b"\tAcct-Status-Type = 9\n".to_vec()),
        Just(b"\tCalling-Station-Id = \"aabb.ccdd.eeff\"\n".to_vec()),
        Just(b"\tCalling-Station-Id = \"zz\"\n".to_vec()),
        Just(b"\tUser-Name = \"a\\\"b\\001\"\n".to_vec()),
        Just(b"\tEvent-Timestamp = \"May  1 2024 10:15:00 CST\"\n".to_vec()),
        Just(b"\tEvent-Timestamp = \"2024-05-01T10:15:00+08:00\"\n".to_vec()),
        Just(b"\tTimestamp = 1714529700\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\t\"unterminated\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec(line, 0..24).prop_map(|ls| ls.concat())
}

fn check_framing(buf: &[u8]) -> Result<(), TestCaseError> {
    let mut pos = 0;
    let mut steps = 0;
    loop {
        steps += 1;
        prop_assert!(steps <= buf.len() + 1);
        let rest = &buf[pos..];
        match next_accounting(rest) {
            Ok(Some((r, n))) => {
                prop_assert!(n > 0 && n <= rest.len());
                // What parses re-emits to the same meaning.
                let (rec, m) = next_record(rest).unwrap().unwrap();
                prop_assert_eq!(m, n);
                let mut out = Vec::new();
                r.emit(&rec.header, &mut out);
                prop_assert_eq!(next_accounting(&out), Ok(Some((r, out.len()))));
                let mut out = Vec::new();
                rec.emit(&mut out);
                prop_assert_eq!(next_record(&out), Ok(Some((rec, out.len()))));
                pos += n;
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                prop_assert!(e.skip() > 0 && e.skip() <= rest.len(), "{:?}", e);
                pos += e.skip();
            }
        }
    }
}

fn accounting_repr() -> impl Strategy<Value = AccountingRepr> {
    let status = prop_oneof![
        Just(AcctStatus::Start),
        Just(AcctStatus::InterimUpdate),
        Just(AcctStatus::Stop),
        "Accounting-(On|Off)|Failed|[4-9]|1[0-9]|[A-Z][a-z]{3,8}".prop_map(AcctStatus::Other),
    ];
    let naive = -62_135_596_800i64..=253_402_300_799; // years 1..=9999
    (
        status,
        (
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<[u8; 6]>().prop_map(MacAddr)),
            proptest::option::of(any::<String>()),
        ),
        proptest::option::of(any::<i64>()),
        proptest::option::of((naive.clone(), "|[A-Z]{1,5}|[+-][0-9]{4}|[A-Za-z]+ [A-Za-z]+")),
        proptest::option::of(naive),
    )
        .prop_map(
            |(status, (user_name, calling_station, session_id), time_s, event, header)| {
                AccountingRepr {
                    status,
                    user_name,
                    calling_station,
                    session_id,
                    time_s,
                    event_time_local: event,
                    header_time_local: header,
                }
            },
        )
        .prop_filter("Other must not spell a known status", |r| {
            !matches!(&r.status, AcctStatus::Other(s) if matches!(AcctStatus::parse(s), Some(AcctStatus::Start | AcctStatus::Stop | AcctStatus::InterimUpdate)))
        })
}

/// Keys as openNDS writes them, minus the ones with typed twins.
fn extra_key() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_.-]{0,12}".prop_filter("typed keys are set apart", |k| {
        !["method", "clientmac", "session_start", "session_end"].contains(&k.as_str())
    })
}

fn binauth_repr() -> impl Strategy<Value = BinauthRepr> {
    (
        "[a-z_]{1,16}|.*\\PC",
        any::<[u8; 6]>().prop_map(MacAddr),
        proptest::option::of(-62_135_596_800i64..=253_402_300_799),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        prop::collection::vec((extra_key(), any::<String>()), 0..8),
    )
        .prop_filter("method must not be blank", |t| !t.0.trim().is_empty())
        .prop_map(|(method, mac, date, start, end, extra)| {
            let mut r = BinauthRepr::new(&method, mac);
            for (k, t) in [("session_start", start), ("session_end", end)] {
                if let Some(t) = t {
                    r = r.with(k, &t.to_string());
                }
            }
            for (k, v) in &extra {
                r = r.with(k, v);
            }
            r.date_local = date;
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn detail_arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..512)) {
        check_framing(&buf)?;
    }

    #[test]
    fn detail_like_text_never_panics(buf in detail_lines()) {
        check_framing(&buf)?;
    }

    #[test]
    fn accounting_round_trip(r in accounting_repr()) {
        let header = r.header_time_local.map_or_else(|| "not a date".to_owned(), format_ctime);
        let mut out = Vec::new();
        r.emit(&header, &mut out);
        let (rec, n) = next_record(&out).unwrap().unwrap();
        prop_assert_eq!(n, out.len());
        prop_assert_eq!(AccountingRepr::parse(&rec).unwrap(), r);
    }

    #[test]
    fn binauth_arbitrary_text_never_panics(line in ".*", raw in prop::collection::vec(any::<u8>(), 0..256)) {
        for line in [line, String::from_utf8_lossy(&raw).into_owned()] {
            if let Ok(r) = binauth::parse_line(&line) {
                prop_assert!(!r.method.trim().is_empty());
                prop_assert_eq!(binauth::parse_line(&r.emit()), Ok(r));
            }
        }
    }

    #[test]
    fn binauth_like_text_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("method=client_auth".to_owned()),
        Just("clientmac=aa:bb:cc:dd:ee:ff".to_owned()),
        Just("clientmac=aabb.ccdd.eeff".to_owned()),
        Just("session_start=1714529702".to_owned()),
        Just("session_end=null".to_owned()),
        Just("custom=phone%3D138%26x%3Dy".to_owned()),
        Just("Wed May  1 10:15:02 CST 2024".to_owned()),
        "[a-z_=%, ]{0,12}",
        ".{0,12}",
    ], 0..10), sep in prop_oneof![Just(", "), Just(","), Just(" , ")]) {
        let line = parts.join(sep);
        if let Ok(r) = binauth::parse_line(&line) {
            prop_assert_eq!(binauth::parse_line(&r.emit()), Ok(r.clone()));
            let _ = (r.field("custom.phone"), r.field("custom"), r.field("a.b.c"));
        }
    }

    #[test]
    fn binauth_round_trip(r in binauth_repr()) {
        let line = r.emit();
        prop_assert!(!line.contains('\n'));
        prop_assert_eq!(binauth::parse_line(&line), Ok(r));
    }

    #[test]
    fn mac_spellings(m in any::<[u8; 6]>().prop_map(MacAddr)) {
        let [a, b, c, d, e, f] = m.octets();
        for s in [
            m.to_string(),
            format!("{a:02X}-{b:02X}-{c:02X}-{d:02X}-{e:02X}-{f:02X}"),
            format!("{a:02x}{b:02x}.{c:02x}{d:02x}.{e:02x}{f:02x}"),
            format!("{a:02X}{b:02X}{c:02X}{d:02X}{e:02X}{f:02X}"),
            format!("{a:x}:{b:x}:{c:x}:{d:x}:{e:x}:{f:x}"),
        ] {
            prop_assert_eq!(MacAddr::parse_any(&s), Some(m), "{}", s);
        }
    }
}

#[test]
fn detail_module_is_reexported() {
    // The attribute names the agent matches on are public.
    assert_eq!(detail::attr::CALLING_STATION_ID, "Calling-Station-Id");
    assert_eq!(binauth::key::CUSTOM, "custom");
}
