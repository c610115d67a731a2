//! Counter transport: a Modbus RTU master polling a door counter's register map (FC03/FC04)
//! on an RS-485 serial port. The registers are running totals; they go to the core tracker as
//! cumulative readings, which differences them and tells resets from wraps.
//!
//! Split in two. The core is free of the serial port and unit-tested: the request and the
//! 3.5-character line silence ([`request`], [`silence`]), one poll over any [`Line`] — a quiet
//! line, the request, the reply read with the wire crate's [`ResponseReader`] until a complete
//! frame, an exception, a rejected frame followed by silence, or the timeout, and retries
//! ([`poll_once`]) — and the reply decoded through the profile's fields into a core input
//! ([`decode_reply`], [`reading_input`]). [`run`] owns the port: it opens it with the profile's
//! line settings, reopens it with backoff when it fails or goes away, keeps the poll schedule,
//! commits readings and keeps the counters stored while the counter does not answer.
//!
//! Counters: `modbus_polls`, `modbus_missed_polls` (polls that gave no reading, whatever the
//! reason), `modbus_timeouts` (requests unanswered in time), `modbus_crc_errors`,
//! `modbus_bad_frame_<reason>`, `modbus_exceptions_<code>`, `modbus_decode_errors`,
//! `open_failures`, `reconnects`, `disconnects`, `store_errors`; `payloads_read` counts the
//! replies received. An exception or a missed poll never produces a count.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_core::counter::CountInput;
use edge_wire::modbus::{
    BadFrame, ExceptionCode, ReadEvent, ReadRequest, ResponseReader, ResponseRepr, MAX_FRAME_LEN,
    REQUEST_LEN,
};
use serialport::SerialPort;
use tokio_util::sync::CancellationToken;

use super::ingest::{CounterContext, Group};
use crate::config::counter_profile::{CounterTransport, ModbusProfile};
use crate::config::profiles::SerialSettings;
use crate::stats::SourceStats;

/// Reopen backoff of a port that failed or went away: from this …
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// … doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Longest single wait for bytes, so shutdown is noticed promptly.
const READ_SLICE: Duration = Duration::from_millis(50);
/// After a rejected frame the exchange ends once the line has been silent this long (or the
/// line's own 3.5-character time, if longer): a slave sends its reply in one burst, so silence
/// after a bad frame means no good one is coming, and a USB adapter's latency timer (up to
/// 16 ms) must not be mistaken for that silence.
const SETTLE_MIN: Duration = Duration::from_millis(50);
/// Longest wait for a chattering line to fall silent before a request is sent anyway (the
/// reader's address, length and CRC checks keep foreign bytes out of the reply).
const QUIET_MAX: Duration = Duration::from_millis(250);
/// While the counter does not answer, the counters are stored at most this often (readings
/// store them with every commit; failures alone would otherwise only be stored at shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Modbus RTU characters are 11 bits on the wire (start, 8 data, parity or a second stop
/// bit, stop); a line set to fewer bits still gets the spec's silence.
const RTU_CHAR_BITS: u32 = 11;
/// Above 19200 baud the spec fixes the inter-frame silence at 1.75 ms.
const FAST_SILENCE: Duration = Duration::from_micros(1750);

/// The FC03/FC04 request of the profile's register map to `slave`.
pub fn request(profile: &ModbusProfile, slave: u8) -> ReadRequest {
    ReadRequest {
        slave,
        function: profile.function,
        start: profile.start,
        quantity: profile.quantity,
    }
}

/// The 3.5-character inter-frame silence of a line (Modbus over Serial Line §2.5.1.1).
pub fn silence(serial: &SerialSettings, baud: u32) -> Duration {
    if baud > 19_200 {
        return FAST_SILENCE;
    }
    let bits = (1
        + u32::from(serial.data_bits)
        + u32::from(serial.parity != "none")
        + u32::from(serial.stop_bits))
    .max(RTU_CHAR_BITS);
    // 3.5 characters = 7 × bits / (2 × baud) seconds, rounded up to the microsecond; baud is
    // at least 1200 (validated), the max(1) only keeps a zero from dividing.
    let micros = (7_000_000 * u64::from(bits)).div_ceil(2 * u64::from(baud.max(1)));
    Duration::from_micros(micros)
}

/// Counter name of an exception code.
pub fn exception_counter(code: ExceptionCode) -> String {
    let name = match code {
        ExceptionCode::IllegalFunction => "illegal_function".to_string(),
        ExceptionCode::IllegalDataAddress => "illegal_address".to_string(),
        ExceptionCode::IllegalDataValue => "illegal_value".to_string(),
        ExceptionCode::ServerDeviceFailure => "device_failure".to_string(),
        ExceptionCode::Other(5) => "acknowledge".to_string(),
        ExceptionCode::Other(6) => "busy".to_string(),
        ExceptionCode::Other(0x0A) => "gateway_path".to_string(),
        ExceptionCode::Other(0x0B) => "gateway_target".to_string(),
        ExceptionCode::Other(c) => format!("code_{c}"),
    };
    format!("modbus_exceptions_{name}")
}

/// Counter name of a rejected frame.
pub fn bad_frame_counter(bad: &BadFrame) -> &'static str {
    match bad {
        BadFrame::Crc { .. } => "modbus_crc_errors",
        BadFrame::ByteCount { .. } => "modbus_bad_frame_byte_count",
    }
}

/// The running totals a reply carried (after the profile's scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Entries.
    pub ins: u64,
    /// Exits, when the map has them.
    pub outs: Option<u64>,
}

/// What a reply says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The registers, decoded.
    Totals(Totals),
    /// The slave refused the read.
    Exception(ExceptionCode),
}

/// Decodes a reply to [`request`] through the profile's fields (registers read from
/// `profile.start`).
pub fn decode_reply(profile: &ModbusProfile, reply: &ResponseRepr) -> edge_wire::Result<Reply> {
    match reply {
        ResponseRepr::Exception { code, .. } => Ok(Reply::Exception(*code)),
        ResponseRepr::Registers { values, .. } => {
            let field = |f: &edge_wire::modbus::FieldSpec| {
                edge_wire::modbus::decode_field(values, profile.start, f)
            };
            let ins = field(&profile.ins)?;
            let outs = profile.outs.as_ref().map(field).transpose()?;
            Ok(Reply::Totals(Totals { ins, outs }))
        }
    }
}

/// The core input of totals read at `at_ms` from the counter of `door`: a cumulative reading
/// of the profile's line, with the registers' wrap; the totals never restart daily.
pub fn reading_input(door: &str, profile: &ModbusProfile, at_ms: i64, t: Totals) -> CountInput {
    CountInput::Cumulative {
        door: door.to_string(),
        line: profile.line.clone(),
        at_ms,
        ins: Some(t.ins),
        outs: t.outs,
        wrap: profile.wrap,
        resets_daily: false,
    }
}

/// The serial line as a poll uses it; a trait so the exchange runs against a scripted line in
/// tests. Every error means the port is gone (unplugged, hung up) and must be reopened.
pub trait Line {
    /// Drops what was received and not read yet.
    fn discard_input(&mut self) -> io::Result<()>;
    /// Waits up to `wait` for bytes; `Ok(0)` when none came.
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize>;
    /// Writes `frame` and waits (up to `wait`) until it has left.
    fn send(&mut self, frame: &[u8], wait: Duration) -> io::Result<()>;
}

impl Line for serialport::TTYPort {
    fn discard_input(&mut self) -> io::Result<()> {
        self.clear(serialport::ClearBuffer::Input)
            .map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
        self.set_timeout(wait).map_err(io::Error::from)?;
        match self.read(buf) {
            // End of file on a tty: the other end hung up.
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the serial port hung up",
            )),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, frame: &[u8], wait: Duration) -> io::Result<()> {
        self.set_timeout(wait).map_err(io::Error::from)?;
        self.write_all(frame)?;
        // tcdrain: the response timeout starts when the request has left.
        self.flush()
    }
}

/// Waits until the line has been silent for `gap` (the 3.5-character inter-frame time),
/// dropping stale input — a late reply to a timed-out request, another master's traffic — so
/// it cannot be taken for the reply to the next request. Gives up after [`QUIET_MAX`].
fn quiet(line: &mut impl Line, gap: Duration, cancel: &CancellationToken) -> io::Result<()> {
    line.discard_input()?;
    let until = Instant::now() + QUIET_MAX;
    let mut buf = [0u8; MAX_FRAME_LEN];
    while line.recv(&mut buf, gap)? > 0 {
        line.discard_input()?;
        if Instant::now() >= until || cancel.is_cancelled() {
            break;
        }
    }
    Ok(())
}

/// How one request/response exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The awaited frame: registers or an exception, CRC-checked.
    Reply(ResponseRepr),
    /// No frame of ours within the timeout.
    Timeout,
    /// A frame addressed to us was rejected (counted) and no good one followed.
    Bad(BadFrame),
    /// Shutdown.
    Cancelled,
}

/// Sends `frame` (the request `reader` awaits the reply to) and reads the reply, for at most
/// `timeout`. Rejected frames are counted as they are met and reading resynchronises past
/// them. An error means the port is gone.
pub fn exchange(
    line: &mut impl Line,
    reader: &mut ResponseReader,
    frame: &[u8],
    (gap, timeout): (Duration, Duration),
    stats: &SourceStats,
    cancel: &CancellationToken,
) -> io::Result<Exchange> {
    reader.reset();
    line.send(frame, timeout)?;
    let deadline = Instant::now() + timeout;
    let settle = gap.max(SETTLE_MIN);
    let mut bad = None;
    let mut buf = [0u8; MAX_FRAME_LEN];
    loop {
        if cancel.is_cancelled() {
            return Ok(Exchange::Cancelled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(bad.map_or(Exchange::Timeout, Exchange::Bad));
        }
        let wait = if bad.is_some() { settle } else { READ_SLICE }.min(left);
        let n = line.recv(&mut buf, wait)?;
        if n == 0 {
            if let Some(b) = bad {
                return Ok(Exchange::Bad(b));
            }
            continue;
        }
        for ev in reader.feed(buf.get(..n).unwrap_or_default()) {
            match ev {
                ReadEvent::Complete(r) => return Ok(Exchange::Reply(r)),
                ReadEvent::Bad(b) => {
                    stats.count(bad_frame_counter(&b), 1);
                    bad = Some(b);
                }
                ReadEvent::NeedMore => {}
            }
        }
    }
}

/// How one poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// The registers were read.
    Totals(Totals),
    /// The slave answered with an exception (not retried: it is the slave's answer).
    Exception(ExceptionCode),
    /// No usable reply after the retries; the last attempt's failure.
    Missed(&'static str),
    /// Shutdown.
    Cancelled,
}

/// One poll: up to `1 + profile.retries` requests, each on a quiet line, until a reply.
/// Counts `modbus_polls`, `modbus_timeouts`, rejected frames, exceptions, `modbus_missed_polls`
/// and the replies received (`payloads_read`). An error means the port is gone.
pub fn poll_once(
    line: &mut impl Line,
    reader: &mut ResponseReader,
    frame: &[u8],
    (profile, gap): (&ModbusProfile, Duration),
    stats: &SourceStats,
    cancel: &CancellationToken,
) -> io::Result<Poll> {
    stats.count("modbus_polls", 1);
    let mut failure = "timeout";
    for _ in 0..=profile.retries {
        quiet(line, gap, cancel)?;
        match exchange(line, reader, frame, (gap, profile.timeout), stats, cancel)? {
            Exchange::Reply(r) => {
                stats.frames_read.fetch_add(1, Ordering::Relaxed);
                match decode_reply(profile, &r) {
                    Ok(Reply::Totals(t)) => return Ok(Poll::Totals(t)),
                    Ok(Reply::Exception(code)) => {
                        stats.count(&exception_counter(code), 1);
                        stats.count("modbus_missed_polls", 1);
                        return Ok(Poll::Exception(code));
                    }
                    Err(e) => {
                        // The reader checked the byte count and the profile the fields, so
                        // this is a register map disagreeing with itself; kept countable.
                        stats.count("modbus_decode_errors", 1);
                        tracing::debug!(error = %e, "Modbus reply does not decode");
                        failure = "undecodable reply";
                    }
                }
            }
            Exchange::Timeout => {
                stats.count("modbus_timeouts", 1);
                failure = "timeout";
            }
            Exchange::Bad(BadFrame::Crc { .. }) => failure = "CRC error",
            Exchange::Bad(BadFrame::ByteCount { .. }) => failure = "wrong byte count",
            Exchange::Cancelled => return Ok(Poll::Cancelled),
        }
    }
    stats.count("modbus_missed_polls", 1);
    Ok(Poll::Missed(failure))
}

use crate::sources::pos::source::sleep_or_cancel;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Logs when polls start and stop failing (not every failed poll) and keeps the counters
/// stored while they fail.
struct Health {
    /// The first failure of the current streak and the polls failed since, `None` while
    /// polls succeed.
    failing: Option<(String, u64)>,
    /// When the counters were last stored during the streak.
    saved: Option<Instant>,
    /// The store refused the last commit.
    store_failing: bool,
}

impl Health {
    fn ok(&mut self, ctx: &CounterContext) {
        if let Some((first, polls)) = self.failing.take() {
            tracing::info!(source = %ctx.src.name, failed_polls = polls, first_failure = %first, "Modbus counter answering again");
        }
        self.saved = None;
    }

    fn failed(&mut self, ctx: &CounterContext, what: String) {
        match &mut self.failing {
            Some((_, polls)) => *polls += 1,
            None => {
                tracing::warn!(source = %ctx.src.name, failure = %what, "Modbus counter poll failed; no counts until it answers");
                self.failing = Some((what, 1));
            }
        }
        // Stored at once when a streak starts, then every SAVE_EVERY: what went wrong is
        // visible while it lasts, without a write per poll.
        if self.saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            ctx.save_counters();
            self.saved = Some(Instant::now());
        }
    }
}

/// Commits a reading (or, for a line the source does not count, only its tally).
fn commit(ctx: &CounterContext, profile: &ModbusProfile, counted: bool, t: Totals, h: &mut Health) {
    let at_ms = now_ms();
    let result = if counted {
        let input = reading_input(&ctx.src.door, profile, at_ms, t);
        ctx.commit_inputs(vec![input], at_ms, None)
    } else {
        let group = Group {
            received_ms: at_ms,
            other_lines: 1,
            ..Group::default()
        };
        ctx.commit_groups(vec![group], None)
    };
    match result {
        Ok(_) => {
            if h.store_failing {
                tracing::info!(source = %ctx.src.name, "counter readings stored again");
            }
            h.store_failing = false;
        }
        Err(e) => {
            // The tracker was rolled back: the next reading is differenced against the last
            // stored one, so nothing is lost but the interval's boundary.
            ctx.stats.count("store_errors", 1);
            if !h.store_failing {
                tracing::error!(source = %ctx.src.name, error = %e, "cannot store counter readings; polling on");
            }
            h.store_failing = true;
        }
    }
}

/// Polls the slave on `port` until cancelled. Blocking.
pub fn run(
    ctx: Arc<CounterContext>,
    port: PathBuf,
    slave: u8,
    baud: u32,
    cancel: CancellationToken,
) {
    let CounterTransport::Modbus(profile) = &ctx.src.profile.transport else {
        // run.rs starts this loop only for Modbus profiles.
        tracing::error!(source = %ctx.src.name, "not a Modbus RTU profile; the source reads nothing");
        return;
    };
    let req = request(profile, slave);
    let mut frame = [0u8; REQUEST_LEN];
    if let Err(e) = req.emit(&mut frame) {
        // The profile and the source were validated (slave 1–247, quantity 1–125).
        tracing::error!(source = %ctx.src.name, error = %e, "cannot build the Modbus request; the source reads nothing");
        return;
    }
    let gap = silence(&profile.serial, baud);
    let counted = ctx.src.counts_line(&profile.line);
    if !counted {
        tracing::warn!(source = %ctx.src.name, line = %profile.line, "the source's `lines` leave out the counter's line: its readings are counted as other_lines, never stored");
    }
    let stats = &ctx.stats;
    let mut reader = ResponseReader::new(&req);
    let mut health = Health {
        failing: None,
        saved: None,
        store_failing: false,
    };
    let mut backoff = BACKOFF_MIN;
    let mut opened_before = false;
    let mut open_failing = false;
    'outer: while !cancel.is_cancelled() {
        let mut tty = match profile.serial.open(&port, baud, READ_SLICE) {
            Ok(t) => t,
            Err(e) => {
                stats.count("open_failures", 1);
                if !open_failing {
                    open_failing = true;
                    tracing::warn!(source = %ctx.src.name, port = %port.display(), error = %e, "cannot open the serial port; retrying with backoff");
                    // Once per streak: the failure is visible in the store while it lasts.
                    ctx.save_counters();
                }
                if sleep_or_cancel(backoff, &cancel) {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if opened_before {
            stats.count("reconnects", 1);
        }
        opened_before = true;
        open_failing = false;
        tracing::info!(source = %ctx.src.name, port = %port.display(), baud, slave, interval = ?profile.interval, "serial port open");
        let mut next = Instant::now();
        loop {
            if sleep_or_cancel(next.saturating_duration_since(Instant::now()), &cancel) {
                break 'outer;
            }
            next += profile.interval;
            let polled = poll_once(
                &mut tty,
                &mut reader,
                &frame,
                (profile, gap),
                stats,
                &cancel,
            );
            match polled {
                Ok(Poll::Totals(t)) => {
                    // The port works: a later failure starts the backoff afresh.
                    backoff = BACKOFF_MIN;
                    health.ok(&ctx);
                    commit(&ctx, profile, counted, t, &mut health);
                }
                Ok(Poll::Exception(code)) => {
                    backoff = BACKOFF_MIN;
                    health.failed(&ctx, format!("exception {}", code.code()));
                }
                Ok(Poll::Missed(why)) => health.failed(&ctx, why.to_string()),
                Ok(Poll::Cancelled) => break 'outer,
                Err(e) => {
                    stats.count("disconnects", 1);
                    tracing::warn!(source = %ctx.src.name, port = %port.display(), error = %e, "serial port went away; reopening");
                    ctx.save_counters();
                    break;
                }
            }
            // A poll that overran the interval (timeouts and retries) is followed at once,
            // not by a burst catching up.
            next = next.max(Instant::now());
        }
        drop(tty);
        // Give a re-plugged adapter a moment; a port that keeps failing backs off further.
        if sleep_or_cancel(backoff, &cancel) {
            break;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    ctx.save_counters();
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use edge_wire::modbus::{FieldKind, FieldSpec, Function, WordOrder};

    use super::*;
    use crate::config::counter_profile::{parse_counter, resolve_counter, CounterProfile};
    use crate::config::FileReads;

    const FIXTURE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hardware-profiles/counter/fixtures/generic-ir-beam-modbus.hex"
    ));

    fn beam() -> CounterProfile {
        resolve_counter(
            "counter/generic-ir-beam-modbus",
            std::path::Path::new("."),
            FileReads::Disk,
        )
        .unwrap()
    }

    fn modbus(p: &CounterProfile) -> &ModbusProfile {
        match &p.transport {
            CounterTransport::Modbus(m) => m,
            other => panic!("not a Modbus profile: {other:?}"),
        }
    }

    /// Hex text with `#` comments and any whitespace.
    fn unhex(text: &str) -> Vec<u8> {
        let digits: String = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        hex::decode(digits).unwrap()
    }

    fn emit(r: &ResponseRepr) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf).unwrap();
        buf
    }

    fn regs(values: &[u16]) -> ResponseRepr {
        ResponseRepr::Registers {
            slave: 1,
            function: Function::ReadHolding,
            values: values.to_vec(),
        }
    }

    fn exception(code: u8) -> ResponseRepr {
        ResponseRepr::Exception {
            slave: 1,
            function: Function::ReadHolding,
            code: ExceptionCode::from_code(code),
        }
    }

    /// Runs the bytes of a line through the reader as one exchange's receive side would and
    /// decodes the first complete frame.
    fn receive(p: &ModbusProfile, bytes: &[u8], chunk: usize) -> (Option<Reply>, Vec<BadFrame>) {
        let mut reader = ResponseReader::new(&request(p, 1));
        let mut bad = Vec::new();
        for part in bytes.chunks(chunk) {
            for ev in reader.feed(part) {
                match ev {
                    ReadEvent::Complete(r) => return (Some(decode_reply(p, &r).unwrap()), bad),
                    ReadEvent::Bad(b) => bad.push(b),
                    ReadEvent::NeedMore => {}
                }
            }
        }
        (None, bad)
    }

    #[test]
    fn recorded_fixture_decodes_through_the_profile() {
        let profile = beam();
        let m = modbus(&profile);
        let bytes = unhex(FIXTURE);
        // The request the fixture answers, as the poller sends it.
        let mut req = [0u8; REQUEST_LEN];
        request(m, m.slave).emit(&mut req).unwrap();
        assert_eq!(req, [0x01, 0x03, 0x00, 0x00, 0x00, 0x04, 0x44, 0x09]);
        let t = Totals {
            ins: 123_456,
            outs: Some(119_980),
        };
        for chunk in [1, 3, bytes.len()] {
            let got = receive(m, &bytes, chunk);
            assert_eq!(got, (Some(Reply::Totals(t)), vec![]), "{chunk}");
        }
        assert_eq!(
            reading_input("main", m, 1_700_000_000_000, t),
            CountInput::Cumulative {
                door: "main".into(),
                line: "beam".into(),
                at_ms: 1_700_000_000_000,
                ins: Some(123_456),
                outs: Some(119_980),
                wrap: Some(1 << 32),
                resets_daily: false,
            }
        );
    }

    #[test]
    fn replies_table() {
        let profile = beam();
        let m = modbus(&profile);
        let good = emit(&regs(&[0x0001, 0x0002, 0x0000, 0x0007]));
        let mut crc_bad = good.clone();
        crc_bad[5] ^= 0x10;
        let noise_then_good = [vec![0x00, 0xFF, 0x7E, 0x03], good.clone()].concat();
        let crc_bad_then_good = [crc_bad.clone(), good.clone()].concat();
        let other_slave = emit(&ResponseRepr::Registers {
            slave: 2,
            function: Function::ReadHolding,
            values: vec![9, 9, 9, 9],
        });
        let short = emit(&regs(&[1, 2]));
        let totals = Some(Reply::Totals(Totals {
            ins: 0x0001_0002,
            outs: Some(7),
        }));
        let crc = |b: &[u8]| {
            let n = b.len() - 2;
            BadFrame::Crc {
                computed: edge_wire::modbus::crc16(&b[..n]),
                received: u16::from_le_bytes([b[n], b[n + 1]]),
            }
        };
        let table: Vec<(&str, Vec<u8>, (Option<Reply>, Vec<BadFrame>))> = vec![
            ("good", good.clone(), (totals, vec![])),
            ("noise first", noise_then_good, (totals, vec![])),
            (
                "crc error alone",
                crc_bad.clone(),
                (None, vec![crc(&crc_bad)]),
            ),
            (
                "crc error, then the retransmission",
                crc_bad_then_good,
                (totals, vec![crc(&crc_bad)]),
            ),
            ("another slave's frame", other_slave, (None, vec![])),
            (
                "two registers where four were asked",
                short,
                (
                    None,
                    vec![BadFrame::ByteCount {
                        expected: 8,
                        received: 4,
                    }],
                ),
            ),
            (
                "illegal data address",
                emit(&exception(2)),
                (
                    Some(Reply::Exception(ExceptionCode::IllegalDataAddress)),
                    vec![],
                ),
            ),
            (
                "busy",
                emit(&exception(6)),
                (Some(Reply::Exception(ExceptionCode::Other(6))), vec![]),
            ),
        ];
        for (name, bytes, want) in table {
            for chunk in [1, 2, 5, 64] {
                assert_eq!(receive(m, &bytes, chunk), want, "{name}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn fields_follow_the_profile() {
        let text = r#"
kind = "counter"
vendor = "Test"
model = "Low-first 1-based map"
transport = "modbus-rtu"
dialect = "registers"
[modbus]
slave = 7
function = 4
addressing = 1
start = 11
quantity = 3
line = "door"
[modbus.serial]
baud = 19200
parity = "even"
[modbus.ins]
offset = 11
type = "u32"
word_order = "low-first"
[modbus.outs]
offset = 13
type = "u16"
scale = 2
"#;
        let p = parse_counter("test", text).unwrap();
        let m = modbus(&p);
        assert_eq!(
            request(m, 7),
            ReadRequest {
                slave: 7,
                function: Function::ReadInput,
                start: 10,
                quantity: 3
            }
        );
        assert_eq!(
            m.ins,
            FieldSpec {
                offset: 10,
                kind: FieldKind::U32,
                word_order: WordOrder::LowFirst,
                scale: 1
            }
        );
        let reply = ResponseRepr::Registers {
            slave: 7,
            function: Function::ReadInput,
            values: vec![0x0005, 0x0001, 41],
        };
        assert_eq!(
            decode_reply(m, &reply),
            Ok(Reply::Totals(Totals {
                ins: 0x0001_0005,
                outs: Some(20)
            }))
        );
        // A reply too short for the map (cannot pass the reader; refused all the same).
        let short = ResponseRepr::Registers {
            slave: 7,
            function: Function::ReadInput,
            values: vec![1],
        };
        assert!(decode_reply(m, &short).is_err());
        // The wrap of a u32 entries field; u16 outs do not narrow it.
        assert_eq!(m.wrap, Some(1 << 32));
    }

    #[test]
    fn silence_per_line() {
        let s = |parity: &str, stop_bits: u8| SerialSettings {
            baud: 9600,
            data_bits: 8,
            parity: parity.into(),
            stop_bits,
            flow_control: "none".into(),
        };
        // 3.5 × 11 bits at 9600 baud = 4.0104 ms.
        assert_eq!(silence(&s("none", 1), 9600), Duration::from_micros(4011));
        assert_eq!(silence(&s("even", 1), 9600), Duration::from_micros(4011));
        // 12 bits (parity and two stop bits).
        assert_eq!(silence(&s("odd", 2), 9600), Duration::from_micros(4375));
        assert_eq!(silence(&s("none", 1), 1200), Duration::from_micros(32_084));
        assert_eq!(silence(&s("none", 1), 19_200), Duration::from_micros(2006));
        assert_eq!(silence(&s("none", 1), 38_400), FAST_SILENCE);
        assert_eq!(silence(&s("none", 1), 115_200), FAST_SILENCE);
    }

    #[test]
    fn counter_names() {
        let table = [
            (1, "modbus_exceptions_illegal_function"),
            (2, "modbus_exceptions_illegal_address"),
            (3, "modbus_exceptions_illegal_value"),
            (4, "modbus_exceptions_device_failure"),
            (6, "modbus_exceptions_busy"),
            (0x0B, "modbus_exceptions_gateway_target"),
            (0x42, "modbus_exceptions_code_66"),
        ];
        for (code, name) in table {
            assert_eq!(exception_counter(ExceptionCode::from_code(code)), name);
        }
        assert_eq!(
            bad_frame_counter(&BadFrame::Crc {
                computed: 1,
                received: 2
            }),
            "modbus_crc_errors"
        );
    }

    /// What a scripted slave does with each request.
    enum Answer {
        /// These bytes arrive, in these chunks.
        Bytes(Vec<Vec<u8>>),
        /// Nothing arrives.
        Silent,
    }

    /// A line whose slave answers requests from a script; stale bytes wait before the first
    /// request; `gone` fails every call once the script is used up.
    struct Scripted {
        stale: Vec<u8>,
        answers: VecDeque<Answer>,
        pending: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
        discarded: usize,
        gone_after_script: bool,
    }

    impl Scripted {
        fn new(answers: Vec<Answer>) -> Scripted {
            Scripted {
                stale: Vec::new(),
                answers: answers.into(),
                pending: VecDeque::new(),
                sent: Vec::new(),
                discarded: 0,
                gone_after_script: false,
            }
        }
    }

    impl Line for Scripted {
        fn discard_input(&mut self) -> io::Result<()> {
            self.discarded += self.stale.len() + self.pending.iter().map(Vec::len).sum::<usize>();
            self.stale.clear();
            self.pending.clear();
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
            let Some(chunk) = self.pending.pop_front() else {
                // Silence lasts the whole wait, as on a real line.
                std::thread::sleep(wait);
                return Ok(0);
            };
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }

        fn send(&mut self, frame: &[u8], _wait: Duration) -> io::Result<()> {
            self.sent.push(frame.to_vec());
            match self.answers.pop_front() {
                Some(Answer::Bytes(chunks)) => self.pending.extend(chunks),
                Some(Answer::Silent) => {}
                None if self.gone_after_script => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "unplugged"))
                }
                None => {}
            }
            Ok(())
        }
    }

    fn fast_profile(retries: u32) -> ModbusProfile {
        let mut m = modbus(&beam()).clone();
        // Short timeouts keep the timeout cases quick; nothing asserts on time.
        m.timeout = Duration::from_millis(30);
        m.retries = retries;
        m
    }

    fn run_poll(line: &mut Scripted, m: &ModbusProfile) -> (io::Result<Poll>, Vec<(String, u64)>) {
        let stats = SourceStats::of_kind("t", "counter");
        let req = request(m, 1);
        let mut frame = [0u8; REQUEST_LEN];
        req.emit(&mut frame).unwrap();
        let mut reader = ResponseReader::new(&req);
        let cancel = CancellationToken::new();
        let got = poll_once(
            line,
            &mut reader,
            &frame,
            (m, Duration::from_millis(1)),
            &stats,
            &cancel,
        );
        let mut counters: Vec<(String, u64)> = stats
            .values()
            .into_iter()
            .filter(|(k, v)| *v > 0 && (k.starts_with("modbus_") || k == "payloads_read"))
            .collect();
        counters.sort();
        (got, counters)
    }

    fn c(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        v.sort();
        v
    }

    #[test]
    fn poll_retries_and_counts() {
        let m = fast_profile(2);
        let fixture = unhex(FIXTURE);
        let mut crc_bad = fixture.clone();
        crc_bad[4] ^= 0x01;
        let fixture_totals = Poll::Totals(Totals {
            ins: 123_456,
            outs: Some(119_980),
        });
        let split = |b: &[u8], at: usize| Answer::Bytes(vec![b[..at].to_vec(), b[at..].to_vec()]);

        // A clean reply in two pieces, after stale bytes of an earlier exchange.
        let mut line = Scripted::new(vec![split(&fixture, 5)]);
        line.stale = vec![0x01, 0x03, 0x08, 0x00];
        let (got, counters) = run_poll(&mut line, &m);
        assert_eq!(got.unwrap(), fixture_totals);
        assert_eq!(
            line.discarded, 4,
            "stale input is flushed before the request"
        );
        assert_eq!(line.sent, vec![hex::decode("0103000000044409").unwrap()]);
        assert_eq!(c(&[("modbus_polls", 1), ("payloads_read", 1)]), counters);

        // A CRC error, a timeout, then the reply: two retries used.
        let mut line = Scripted::new(vec![
            Answer::Bytes(vec![crc_bad.clone()]),
            Answer::Silent,
            Answer::Bytes(vec![fixture.clone()]),
        ]);
        let (got, counters) = run_poll(&mut line, &m);
        assert_eq!(got.unwrap(), fixture_totals);
        assert_eq!(line.sent.len(), 3);
        assert_eq!(
            counters,
            c(&[
                ("modbus_polls", 1),
                ("modbus_crc_errors", 1),
                ("modbus_timeouts", 1),
                ("payloads_read", 1)
            ])
        );

        // Nothing usable within the retries: a missed poll.
        let mut line = Scripted::new(vec![
            Answer::Silent,
            Answer::Bytes(vec![crc_bad.clone()]),
            Answer::Silent,
            Answer::Bytes(vec![fixture.clone()]),
        ]);
        let (got, counters) = run_poll(&mut line, &m);
        assert_eq!(got.unwrap(), Poll::Missed("timeout"));
        assert_eq!(line.sent.len(), 3, "1 + retries requests");
        assert_eq!(
            counters,
            c(&[
                ("modbus_polls", 1),
                ("modbus_crc_errors", 1),
                ("modbus_timeouts", 2),
                ("modbus_missed_polls", 1)
            ])
        );

        // An exception is the slave's answer: no retry, no totals.
        let mut line = Scripted::new(vec![
            Answer::Bytes(vec![emit(&exception(2))]),
            Answer::Bytes(vec![fixture.clone()]),
        ]);
        let (got, counters) = run_poll(&mut line, &m);
        assert_eq!(
            got.unwrap(),
            Poll::Exception(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(line.sent.len(), 1);
        assert_eq!(
            counters,
            c(&[
                ("modbus_polls", 1),
                ("modbus_exceptions_illegal_address", 1),
                ("modbus_missed_polls", 1),
                ("payloads_read", 1)
            ])
        );

        // A CRC error as the last attempt names the failure.
        let mut line = Scripted::new(vec![Answer::Bytes(vec![crc_bad.clone()])]);
        let (got, _) = run_poll(&mut line, &fast_profile(0));
        assert_eq!(got.unwrap(), Poll::Missed("CRC error"));

        // The port goes away: an error, not a missed poll.
        let mut line = Scripted::new(vec![]);
        line.gone_after_script = true;
        let (got, counters) = run_poll(&mut line, &m);
        assert_eq!(
            got.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "{counters:?}"
        );
    }

    #[test]
    fn cancelled_exchange_stops() {
        let m = fast_profile(5);
        let stats = SourceStats::of_kind("t", "counter");
        let req = request(&m, 1);
        let mut frame = [0u8; REQUEST_LEN];
        req.emit(&mut frame).unwrap();
        let mut reader = ResponseReader::new(&req);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut line = Scripted::new(vec![Answer::Silent]);
        let got = poll_once(
            &mut line,
            &mut reader,
            &frame,
            (&m, Duration::from_millis(1)),
            &stats,
            &cancel,
        );
        assert_eq!(got.unwrap(), Poll::Cancelled);
        assert_eq!(line.sent.len(), 1);
    }
}
