//! HTTP-polled door counters through the real binary, against fake devices that are real
//! HTTP/1.1 servers on 127.0.0.1 in this test process, each requiring HTTP Digest (MD5,
//! qop=auth) and checking the response hash with an MD5 written here independently of the
//! agent's:
//!
//! * an AXIS People Counter serving `live-sum.json` daily totals in the store's zone
//!   (Asia/Shanghai): 12/3 → 20/7 → 26/9 stores exactly 14/6 after the baseline, with a nonce
//!   that expires on the way (the agent answers the new challenge), an HTTP 500 and a
//!   malformed body on the way (counted; polling recovers);
//! * a Hikvision camera answering ISAPI counting searches for the window POSTed in the body
//!   (parsed here, so the `{start}`/`{end}` template is proven): every poll asks for the whole
//!   hour again, each interval is stored once and the repeats are counted as duplicates; a
//!   malformed answer is counted and the next good one still stored;
//! * the same camera polled with a wrong password: counted as `poll_errors_auth`, nothing
//!   stored, the fake saw (and refused) real Digest answers;
//! * a device that accepts connections and never answers (`poll_errors_timeout`, and the agent
//!   still stops cleanly mid-request) and one that is switched off (`poll_errors_connect`).
//!
//! Also: no panics, no password in the agent's log.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use edge_e2e::{open_db, Agent};

const DEVICE_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const TENANT_SECRET: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

const AXIS_PATH: &str = "/local/tvpc/.api?live-sum.json";
const HIK_PATH: &str = "/ISAPI/System/Video/inputs/channels/1/counting/search";
const AXIS_PASSWORD: &str = "axis-Pa55-word";
const HIK_PASSWORD: &str = "hik-Pa55-word";
const WRONG_PASSWORD: &str = "not-the-Pa55-word";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------------------------------------
// MD5 (RFC 1321), written here so that the fake devices do not share the agent's digest code.

fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((f64::from(i) + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn md5_hex(s: &str) -> String {
    hex::encode(md5(s.as_bytes()))
}

#[test]
fn the_fakes_md5_and_digest_match_the_rfcs() {
    // RFC 1321 appendix A.5.
    assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
        "57edf4a22be3c955ac49da2e2107b67a"
    );
    // RFC 2617 §3.5.
    let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
    let ha2 = md5_hex("GET:/dir/index.html");
    assert_eq!(
        md5_hex(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
        )),
        "6629fae49393a05397450978507c4ef1"
    );
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server: one thread per connection, keep-alive, Content-Length bodies.

struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

fn read_req(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
        assert!(lines.len() < 100, "request head too long");
    }
    let mut first = lines.first()?.split_whitespace();
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
    assert!(len <= 1 << 16, "request body too long");
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

fn write_resp(w: &mut TcpStream, resp: &Resp) -> std::io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\n",
        resp.status,
        resp.body.len()
    );
    for (n, v) in &resp.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)?;
    w.flush()
}

/// Parameters of an `Authorization: Digest …` value (an independent little parser).
fn digest_params(v: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = v.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// What a fake device's Digest check saw.
#[derive(Default)]
struct AuthLog {
    /// Requests without credentials, answered with a challenge.
    challenged: u64,
    /// Digest answers with an expired nonce, answered with `stale=true`.
    stale: u64,
    /// Digest answers that did not verify (wrong password, user, uri, …).
    refused: u64,
    /// Requests let through.
    accepted: u64,
}

/// HTTP Digest (MD5, qop=auth) as a camera does it.
struct DigestGuard {
    realm: String,
    user: String,
    password: String,
    opaque: String,
    nonces: Mutex<(u64, Vec<String>)>,
    log: Mutex<AuthLog>,
}

impl DigestGuard {
    fn new(realm: &str, user: &str, password: &str) -> DigestGuard {
        DigestGuard {
            realm: realm.into(),
            user: user.into(),
            password: password.into(),
            opaque: md5_hex(realm),
            nonces: Mutex::new((0, Vec::new())),
            log: Mutex::new(AuthLog::default()),
        }
    }

    fn challenge(&self, stale: bool) -> Resp {
        let nonce = {
            let mut n = self.nonces.lock().unwrap();
            n.0 += 1;
            let nonce = md5_hex(&format!("{}:{}:{:?}", self.realm, n.0, Instant::now()));
            n.1.push(nonce.clone());
            nonce
        };
        let mut r = Resp::new(401, "text/html", "<html>401 Unauthorized</html>");
        r.headers.push((
            "WWW-Authenticate".into(),
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", qop=\"auth\", algorithm=MD5, stale={}",
                self.realm,
                self.opaque,
                if stale { "TRUE" } else { "FALSE" }
            ),
        ));
        r
    }

    /// Forgets every nonce handed out, as a camera does after a while.
    fn expire_nonces(&self) {
        self.nonces.lock().unwrap().1.clear();
    }

    /// `None` when the request may proceed, else the 401 to send.
    fn check(&self, req: &Req) -> Option<Resp> {
        let Some(auth) = req.header("authorization") else {
            self.log.lock().unwrap().challenged += 1;
            return Some(self.challenge(false));
        };
        let Some(rest) = auth.strip_prefix("Digest ") else {
            self.log.lock().unwrap().refused += 1;
            return Some(self.challenge(false));
        };
        let p = digest_params(rest);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let known_nonce = self
            .nonces
            .lock()
            .unwrap()
            .1
            .iter()
            .any(|n| n == get("nonce"));
        let ha1 = md5_hex(&format!("{}:{}:{}", self.user, self.realm, self.password));
        let ha2 = md5_hex(&format!("{}:{}", req.method, get("uri")));
        let want = md5_hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce")
        ));
        let verified = get("username") == self.user
            && get("realm") == self.realm
            && get("uri") == req.target
            && get("qop") == "auth"
            && get("nc").len() == 8
            && !get("cnonce").is_empty()
            && get("opaque") == self.opaque
            && p.get("algorithm").is_none_or(|a| a == "MD5")
            && get("response") == want;
        if !verified {
            self.log.lock().unwrap().refused += 1;
            return Some(self.challenge(false));
        }
        if !known_nonce {
            // Right password, old nonce.
            self.log.lock().unwrap().stale += 1;
            return Some(self.challenge(true));
        }
        self.log.lock().unwrap().accepted += 1;
        None
    }
}

type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// Serves `handler` behind `guard` on 127.0.0.1:0 until the test process ends.
fn serve(guard: Arc<DigestGuard>, handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (guard, handler) = (guard.clone(), handler.clone());
            std::thread::spawn(move || {
                // Idle connections end on their own, like a camera's.
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                while let Some(req) = read_req(&mut r) {
                    let resp = guard.check(&req).unwrap_or_else(|| handler(&req));
                    if write_resp(&mut w, &resp).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// The fake devices' state.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    Http500,
    Malformed,
}

struct AxisState {
    mode: Mode,
    /// Local wall time of the totals, as the camera writes it.
    at: chrono::NaiveDateTime,
    ins: u64,
    outs: u64,
}

fn axis_handler(state: Arc<Mutex<AxisState>>) -> Handler {
    Arc::new(move |req: &Req| {
        if req.method != "GET" || req.target != AXIS_PATH {
            return Resp::new(404, "text/plain", "no such API");
        }
        let s = state.lock().unwrap();
        match s.mode {
            Mode::Http500 => Resp::new(500, "text/plain", "internal error"),
            Mode::Malformed => Resp::new(
                200,
                "application/json",
                r#"{"serial":"ACCC8E000001","name":"Entrance counter","timestamp":"2024"#,
            ),
            Mode::Normal => Resp::new(
                200,
                "application/json",
                format!(
                    r#"{{"serial":"ACCC8E000001","name":"Entrance counter","timestamp":"{}","in":{},"out":{}}}"#,
                    s.at.format("%Y%m%d%H%M%S"),
                    s.ins,
                    s.outs
                ),
            ),
        }
    })
}

/// One counting interval a camera holds.
#[derive(Debug, Clone, Copy)]
struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    ins: u32,
    outs: u32,
    /// Written with `+08:00` (else as bare local time, as some firmware does).
    with_offset: bool,
}

struct HikState {
    mode: Mode,
    intervals: Vec<Interval>,
    /// Every window asked for, as POSTed.
    windows: Vec<(String, String)>,
}

fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    Some(&body[start..start + len])
}

fn hik_error(status: u16, what: &str) -> Resp {
    Resp::new(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResponseStatus version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\"><requestURL>{HIK_PATH}</requestURL><statusCode>4</statusCode><statusString>Invalid Operation</statusString><subStatusCode>{what}</subStatusCode></ResponseStatus>"
        ),
    )
}

fn hik_handler(state: Arc<Mutex<HikState>>) -> Handler {
    Arc::new(move |req: &Req| {
        if req.method != "POST" || req.target != HIK_PATH {
            return Resp::new(404, "text/plain", "no such API");
        }
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/xml"))
        {
            return hik_error(400, "badContentType");
        }
        let body = String::from_utf8_lossy(&req.body).to_string();
        let (Some(s), Some(e)) = (xml_text(&body, "startTime"), xml_text(&body, "endTime")) else {
            return hik_error(400, "badXmlContent");
        };
        let (Ok(ws), Ok(we)) = (
            DateTime::parse_from_rfc3339(s),
            DateTime::parse_from_rfc3339(e),
        ) else {
            return hik_error(400, "badParameters");
        };
        let mut st = state.lock().unwrap();
        st.windows.push((s.to_string(), e.to_string()));
        match st.mode {
            Mode::Http500 => return Resp::new(500, "text/plain", "internal error"),
            Mode::Malformed => {
                return Resp::new(
                    200,
                    "application/xml",
                    "<?xml version=\"1.0\"?><CountingStatisticsResult><matchElementList><matchElement><timeSpan>",
                )
            }
            Mode::Normal => {}
        }
        let offset = FixedOffset::east_opt(8 * 3600).unwrap();
        let local = |t: DateTime<Utc>, with_offset: bool| {
            let l = t.with_timezone(&offset);
            if with_offset {
                l.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            } else {
                l.format("%Y-%m-%dT%H:%M:%S").to_string()
            }
        };
        let matches: Vec<String> = st
            .intervals
            .iter()
            .filter(|iv| iv.start >= ws && iv.end <= we)
            .map(|iv| {
                format!(
                    "<matchElement>\n<timeSpan><startTime>{}</startTime><endTime>{}</endTime></timeSpan>\n<enterCount>{}</enterCount>\n<exitCount>{}</exitCount>\n<passCount>{}</passCount>\n</matchElement>\n",
                    local(iv.start, iv.with_offset),
                    local(iv.end, iv.with_offset),
                    iv.ins,
                    iv.outs,
                    iv.ins + iv.outs + 7
                )
            })
            .collect();
        Resp::new(
            200,
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CountingStatisticsResult version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n<responseStatus>true</responseStatus>\n<responseStatusStrg>{}</responseStatusStrg>\n<numOfMatches>{n}</numOfMatches>\n<totalMatches>{n}</totalMatches>\n<matchElementList>\n{}</matchElementList>\n</CountingStatisticsResult>\n",
                if matches.is_empty() { "NO MATCHES" } else { "OK" },
                matches.concat(),
                n = matches.len()
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The agent and its database.

/// A device that accepts connections and never answers (a hung web server).
fn silent_device() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            // Read and discard until the agent gives up and closes.
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// An address nothing listens on (a device that is switched off).
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn write_config(
    d: &Path,
    axis: SocketAddr,
    hik: SocketAddr,
    silent: SocketAddr,
    gone: SocketAddr,
) -> PathBuf {
    std::fs::write(
        d.join("secrets.toml"),
        format!("device_key_secret = \"{DEVICE_SECRET}\"\ntenant_secret = \"{TENANT_SECRET}\"\n"),
    )
    .unwrap();
    // Local copies of the shipped profiles, as an installer would reference a file.
    for (from, to) in [
        ("axis-people-counter.toml", "ax.toml"),
        ("hikvision-ds-2cd6825g0-search.toml", "hik.toml"),
    ] {
        std::fs::copy(
            repo().join("hardware-profiles/counter").join(from),
            d.join(to),
        )
        .unwrap();
    }
    // A shorter request timeout for the hung device ([poll] is the profile's last table).
    let mut fast = std::fs::read_to_string(d.join("ax.toml")).unwrap();
    fast.push_str("timeout = \"500ms\"\n");
    std::fs::write(d.join("ax-fast.toml"), fast).unwrap();
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nstore_id = \"poll-store\"\ngateway_id = \"gw-1\"\ntimezone = \"{}\"\n\n\
             [privacy]\nsecrets_file = \"secrets.toml\"\n\n\
             [storage]\ndata_dir = \"data\"\ncommit_interval = \"200ms\"\ncheckpoint_interval = \"200ms\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\n\n\
             [[sources.counter]]\nname = \"axis\"\nprofile = \"ax.toml\"\ndoor = \"entrance\"\n\
             url = \"http://{axis}\"\ninterval = \"1s\"\nusername = \"viewer\"\npassword = \"{AXIS_PASSWORD}\"\n\n\
             [[sources.counter]]\nname = \"hik\"\nprofile = \"hik.toml\"\ndoor = \"side\"\n\
             url = \"http://{hik}\"\ninterval = \"1s\"\nusername = \"counting\"\npassword = \"{HIK_PASSWORD}\"\n\n\
             [[sources.counter]]\nname = \"hik-wrong\"\nprofile = \"hik.toml\"\ndoor = \"back\"\n\
             url = \"http://{hik}\"\ninterval = \"1s\"\nusername = \"counting\"\npassword = \"{WRONG_PASSWORD}\"\n\n\
             [[sources.counter]]\nname = \"hung\"\nprofile = \"ax-fast.toml\"\ndoor = \"hung\"\n\
             url = \"http://{silent}\"\ninterval = \"1s\"\n\n\
             [[sources.counter]]\nname = \"gone\"\nprofile = \"ax.toml\"\ndoor = \"gone\"\n\
             url = \"http://{gone}\"\ninterval = \"1s\"\n",
            TZ.name()
        ),
    )
    .unwrap();
    config
}

/// Stored intervals of a source: (start_ms, end_ms, ins, outs, revision), by start. A new key
/// is revision 1; a repeat with the same counts adds none.
fn intervals(data: &Path, source: &str) -> Vec<(i64, i64, u32, u32, i64)> {
    if !data.join("store-edge.db").exists() {
        return Vec::new();
    }
    let db = open_db(data);
    let mut st = db
        .prepare(
            "SELECT start_ms, end_ms, ins, outs, revision FROM counter_intervals
             WHERE source = ?1 ORDER BY start_ms, revision",
        )
        .unwrap();
    st.query_map([source], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn totals(data: &Path, source: &str) -> (u32, u32) {
    intervals(data, source)
        .iter()
        .fold((0, 0), |(i, o), iv| (i + iv.2, o + iv.3))
}

fn counter(data: &Path, source: &str, name: &str) -> u64 {
    if !data.join("store-edge.db").exists() {
        return 0;
    }
    edge_e2e::counter(data, source, name)
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    let deadline = start + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{what}: after {:?}", start.elapsed());
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn axis_and_hikvision_pollers_behind_digest_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");

    // AXIS: totals of the current local day, at times of that day chosen by the test.
    let today: NaiveDate = Utc::now().with_timezone(&TZ).date_naive();
    let at = |h: u32, m: u32| today.and_hms_opt(h, m, 0).unwrap();
    let ms = |t: chrono::NaiveDateTime| TZ.from_local_datetime(&t).unwrap().timestamp_millis();
    let (t0, t1, t2) = (at(0, 10), at(0, 20), at(0, 30));
    let axis_state = Arc::new(Mutex::new(AxisState {
        mode: Mode::Normal,
        at: t0,
        ins: 12,
        outs: 3,
    }));
    let axis_guard = Arc::new(DigestGuard::new(
        "AXIS_ACCC8E000001",
        "viewer",
        AXIS_PASSWORD,
    ));
    let axis = serve(axis_guard.clone(), axis_handler(axis_state.clone()));

    // Hikvision: intervals of the last hour, whole minutes, relative to the test's start (the
    // test ends long before the hour's window moves past them).
    let started = Utc::now();
    let q = DateTime::from_timestamp(started.timestamp() / 60 * 60, 0).unwrap();
    let min = |m: i64| q - chrono::Duration::minutes(m);
    let iv = |s: i64, e: i64, ins: u32, outs: u32, with_offset: bool| Interval {
        start: min(s),
        end: min(e),
        ins,
        outs,
        with_offset,
    };
    let first_two = [iv(30, 15, 3, 1, true), iv(15, 0, 8, 2, false)];
    let late = iv(45, 30, 21, 17, true);
    let hik_state = Arc::new(Mutex::new(HikState {
        mode: Mode::Normal,
        intervals: first_two.to_vec(),
        windows: Vec::new(),
    }));
    let hik_guard = Arc::new(DigestGuard::new(
        "IP Camera(D1234)",
        "counting",
        HIK_PASSWORD,
    ));
    let hik = serve(hik_guard.clone(), hik_handler(hik_state.clone()));

    let config = write_config(d, axis, hik, silent_device(), closed_port());
    let mut agent = Agent::start_live(&config);

    // --- AXIS: the first answer only sets the baseline.
    wait_until(LIMIT, "the AXIS baseline", || {
        counter(&data, "axis", "baselined") == 1
    });
    assert!(intervals(&data, "axis").is_empty());
    // The camera forgets its nonces: the agent's next answer is stale and it takes the new one.
    axis_guard.expire_nonces();
    {
        let mut s = axis_state.lock().unwrap();
        (s.at, s.ins, s.outs) = (t1, 20, 7);
    }
    wait_until(LIMIT, "AXIS 20/7", || totals(&data, "axis") == (8, 4));
    // An HTTP 500, then a malformed body: counted, and polling goes on.
    axis_state.lock().unwrap().mode = Mode::Http500;
    wait_until(LIMIT, "the HTTP 500 counted", || {
        counter(&data, "axis", "poll_errors_http_500") >= 1
    });
    axis_state.lock().unwrap().mode = Mode::Malformed;
    wait_until(LIMIT, "the malformed JSON counted", || {
        counter(&data, "axis", "rejected_malformed_json") >= 1
    });
    {
        let mut s = axis_state.lock().unwrap();
        (s.mode, s.at, s.ins, s.outs) = (Mode::Normal, t2, 26, 9);
    }
    wait_until(LIMIT, "AXIS 26/9 after recovering", || {
        totals(&data, "axis") == (14, 6)
    });

    // --- Hikvision: the same hour asked for again and again, each interval stored once.
    wait_until(LIMIT, "the Hikvision intervals and their repeats", || {
        intervals(&data, "hik").len() == 2 && counter(&data, "hik", "duplicates") >= 2
    });
    hik_state.lock().unwrap().mode = Mode::Malformed;
    wait_until(LIMIT, "the malformed XML counted", || {
        counter(&data, "hik", "rejected_malformed_xml") >= 1
    });
    {
        // An interval that was missing before appears in the window: fetched by the next
        // search, which repeats the other two.
        let mut s = hik_state.lock().unwrap();
        s.mode = Mode::Normal;
        s.intervals.push(late);
    }
    wait_until(LIMIT, "the late Hikvision interval", || {
        intervals(&data, "hik").len() == 3
    });

    // --- Wrong password.
    wait_until(LIMIT, "the refused password counted", || {
        counter(&data, "hik-wrong", "poll_errors_auth") >= 2
    });

    // --- A hung device and one that is switched off.
    wait_until(LIMIT, "the hung device's timeout counted", || {
        counter(&data, "hung", "poll_errors_timeout") >= 1
    });
    wait_until(LIMIT, "the refused connection counted", || {
        counter(&data, "gone", "poll_errors_connect") >= 1
    });

    // The stop does not wait for the hung device's request.
    agent.terminate();
    let status = agent.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}"
    );
    let log = agent.log_lines();

    // AXIS: exactly the two differences, at the camera's local times.
    assert_eq!(
        intervals(&data, "axis"),
        [(ms(t0), ms(t1), 8, 4, 1), (ms(t1), ms(t2), 6, 2, 1)],
        "AXIS intervals"
    );
    assert_eq!(totals(&data, "axis"), (14, 6));
    assert_eq!(counter(&data, "axis", "baselined"), 1);
    assert_eq!(counter(&data, "axis", "intervals"), 2);
    assert!(
        counter(&data, "axis", "duplicates") >= 1,
        "unchanged totals repeat"
    );
    assert!(counter(&data, "axis", "polls") >= 6);
    assert_eq!(counter(&data, "axis", "poll_errors_auth"), 0);
    {
        let a = axis_guard.log.lock().unwrap();
        // One challenge at the start; afterwards the agent answers with the cached nonce, and
        // the expired one is renewed through a stale challenge, not a refusal.
        assert_eq!(a.challenged, 1, "nonce reused between polls");
        assert!(a.stale >= 1, "the expired nonce was used once");
        assert_eq!(a.refused, 0, "the right password always verifies");
        assert!(a.accepted >= 6);
    }

    // Hikvision: each interval once, the sum of what was served, repeats counted.
    let mut want: Vec<(i64, i64, u32, u32, i64)> = first_two
        .iter()
        .chain([&late])
        .map(|i| {
            (
                i.start.timestamp_millis(),
                i.end.timestamp_millis(),
                i.ins,
                i.outs,
                1,
            )
        })
        .collect();
    want.sort();
    assert_eq!(intervals(&data, "hik"), want, "Hikvision intervals");
    assert_eq!(totals(&data, "hik"), (32, 20));
    assert_eq!(counter(&data, "hik", "intervals"), 3);
    assert!(counter(&data, "hik", "duplicates") >= 3);
    assert_eq!(counter(&data, "hik", "poll_errors_auth"), 0);
    // Every search asked for the hour before the poll, in the store's zone.
    let windows = hik_state.lock().unwrap().windows.clone();
    assert!(windows.len() >= 4, "{windows:?}");
    let ended = Utc::now();
    for (s, e) in &windows {
        assert!(s.ends_with("+08:00") && e.ends_with("+08:00"), "{s} {e}");
        let (s, e) = (
            DateTime::parse_from_rfc3339(s).unwrap(),
            DateTime::parse_from_rfc3339(e).unwrap(),
        );
        assert_eq!(e - s, chrono::Duration::hours(1), "the profile's lookback");
        assert!(
            e >= started - chrono::Duration::seconds(2) && e <= ended,
            "the window ends at the poll: {e}"
        );
    }

    // Wrong password: refused by the camera's hash check, counted, nothing stored.
    assert!(intervals(&data, "hik-wrong").is_empty());
    assert_eq!(counter(&data, "hik-wrong", "readings"), 0);
    assert!(counter(&data, "hik-wrong", "poll_errors_auth") >= 2);
    assert!(counter(&data, "hik-wrong", "polls") >= 2);
    assert!(
        hik_guard.log.lock().unwrap().refused >= 2,
        "the wrong password's digests reached the camera and failed"
    );

    for (source, reason) in [
        ("hung", "poll_errors_timeout"),
        ("gone", "poll_errors_connect"),
    ] {
        assert!(intervals(&data, source).is_empty(), "{source}");
        assert!(counter(&data, source, reason) >= 1, "{source}");
        assert_eq!(counter(&data, source, "readings"), 0, "{source}");
    }
    assert!(
        log.iter()
            .any(|l| l.contains("counter poll failed") && l.contains("hik-wrong")),
        "the refusal is logged"
    );
    for l in &log {
        assert!(!l.contains("panicked"), "agent panicked: {l}");
        for p in [AXIS_PASSWORD, HIK_PASSWORD, WRONG_PASSWORD] {
            assert!(!l.contains(p), "a password reached the log: {l}");
        }
    }
}
