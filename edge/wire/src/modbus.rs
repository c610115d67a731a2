//! Modbus RTU frames of door people-counters on RS-485: [`crc16`], the FC03/FC04
//! [`ReadRequest`], the [`Response`] view and its [`ResponseRepr`], the streaming
//! [`ResponseReader`] for a serial line, and the vendor-neutral helpers a hardware profile's
//! register map needs ([`decode_field`]). How a running count turns into people (wraps, resets)
//! is one rule, in `edge_core::counter`.
//!
//! Layout (Modbus over Serial Line V1.02, Modbus Application Protocol V1.1b3):
//! `addr(1–247) fc data... crc_lo crc_hi`, frames separated by at least 3.5 character times of
//! silence. FC03/FC04 request: `addr fc start_hi start_lo qty_hi qty_lo crc` (8 bytes); response:
//! `addr fc byte_count(2N) N×u16 big-endian crc`; exception: `addr fc|0x80 code crc` (5 bytes).
//!
//! Pure byte code: the silence and the response timeout are the caller's clock; the caller
//! resets the [`ResponseReader`] when they expire.

use crate::bytes::{array, put, slice, u8_at};
use crate::error::{Error, Result};

/// Byte offsets in an RTU frame.
mod field {
    /// Slave address.
    pub const SLAVE: usize = 0;
    /// Function code (bit 7 set in an exception).
    pub const FUNCTION: usize = 1;
    /// FC03/FC04 response: byte count of the register data.
    pub const BYTE_COUNT: usize = 2;
    /// FC03/FC04 response: first register.
    pub const DATA: usize = 3;
    /// Exception response: exception code.
    pub const EXCEPTION_CODE: usize = 2;
    /// Request: starting address (big-endian).
    pub const START: core::ops::Range<usize> = 2..4;
    /// Request: quantity of registers (big-endian).
    pub const QUANTITY: core::ops::Range<usize> = 4..6;
    /// Request: the CRC.
    pub const REQUEST_CRC: usize = 6;
}

/// Length of the CRC trailer.
pub const CRC_LEN: usize = 2;
/// Length of an FC03/FC04 request, CRC included.
pub const REQUEST_LEN: usize = 8;
/// Length of an exception response, CRC included.
pub const EXCEPTION_LEN: usize = 5;
/// Largest RTU frame (serial line spec §2.5.1): 256 bytes.
pub const MAX_FRAME_LEN: usize = 256;
/// Most registers one FC03/FC04 request may ask for (application protocol §6.3/§6.4).
pub const MAX_READ_QUANTITY: u16 = 125;
/// Highest unicast slave address; 0 is broadcast, 248–255 are reserved.
pub const MAX_SLAVE: u8 = 247;
/// Bit 7 of the function code marks an exception response.
pub const EXCEPTION_BIT: u8 = 0x80;

/// Frame + CRC length of an FC03/FC04 response carrying `byte_count` data bytes.
const fn response_len(byte_count: usize) -> usize {
    field::DATA + byte_count + CRC_LEN
}

/// CRC-16/MODBUS lookup table (reflected polynomial 0xA001), built at compile time.
const CRC_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xA001
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-16/MODBUS of `data`: init 0xFFFF, reflected polynomial 0xA001, no final XOR. On the
/// wire it is sent low byte first (`crc16(..).to_le_bytes()`).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF, |crc, &b| {
        // A u8 index into a 256-entry table cannot be out of bounds.
        (crc >> 8) ^ CRC_TABLE[usize::from((crc as u8) ^ b)]
    })
}

/// Big-endian u16 at `off`, or 0 past the end (Modbus register data is big-endian).
#[inline]
fn be16(b: &[u8], off: usize) -> u16 {
    array(b, off).map_or(0, u16::from_be_bytes)
}

/// Little-endian u16 at `off`, or 0 past the end (the CRC is sent low byte first).
#[inline]
fn le16(b: &[u8], off: usize) -> u16 {
    array(b, off).map_or(0, u16::from_le_bytes)
}

/// `(computed, received)` CRC of `frame`, whose last two bytes are the CRC.
fn crc_pair(frame: &[u8]) -> (u16, u16) {
    let body = frame.len().saturating_sub(CRC_LEN);
    (crc16(slice(frame, 0, body)), le16(frame, body))
}

/// Writes the CRC of `buf[..body]` at `buf[body..body + 2]` (the caller checked the room).
fn put_crc(buf: &mut [u8], body: usize) {
    let crc = crc16(slice(buf, 0, body));
    put(buf, body, &crc.to_le_bytes());
}

/// Fails unless `slave` is a unicast address (1–247): nothing else may ask or answer a read.
fn check_slave(slave: u8, offset: usize) -> Result<()> {
    if (1..=MAX_SLAVE).contains(&slave) {
        Ok(())
    } else {
        Err(Error::malformed("modbus slave address", offset))
    }
}

/// The read functions store-edge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// FC03, Read Holding Registers.
    ReadHolding = 3,
    /// FC04, Read Input Registers.
    ReadInput = 4,
}

impl Function {
    /// The function code byte.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The function of a code byte (exception bit clear), `None` for other functions.
    pub const fn from_code(code: u8) -> Option<Function> {
        match code {
            3 => Some(Function::ReadHolding),
            4 => Some(Function::ReadInput),
            _ => None,
        }
    }

    /// The function code of an exception response to this function.
    pub const fn exception_code(self) -> u8 {
        self.code() | EXCEPTION_BIT
    }
}

/// Exception code of an exception response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionCode {
    /// 1: the slave does not support the function.
    IllegalFunction,
    /// 2: the register range is not in the slave's map.
    IllegalDataAddress,
    /// 3: a request field (the quantity) is out of range.
    IllegalDataValue,
    /// 4: the slave failed while serving the request.
    ServerDeviceFailure,
    /// Any other code (5 acknowledge, 6 busy, 0x0B gateway target silent, vendor codes...):
    /// kept rather than refused, so the caller can log what the device said.
    Other(u8),
}

impl ExceptionCode {
    /// The code byte.
    pub const fn code(self) -> u8 {
        match self {
            ExceptionCode::IllegalFunction => 1,
            ExceptionCode::IllegalDataAddress => 2,
            ExceptionCode::IllegalDataValue => 3,
            ExceptionCode::ServerDeviceFailure => 4,
            ExceptionCode::Other(c) => c,
        }
    }

    /// The exception of a code byte.
    pub const fn from_code(code: u8) -> ExceptionCode {
        match code {
            1 => ExceptionCode::IllegalFunction,
            2 => ExceptionCode::IllegalDataAddress,
            3 => ExceptionCode::IllegalDataValue,
            4 => ExceptionCode::ServerDeviceFailure,
            c => ExceptionCode::Other(c),
        }
    }
}

/// An FC03/FC04 read request (master → slave), 8 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadRequest {
    /// Slave address, 1–247.
    pub slave: u8,
    /// Holding or input registers.
    pub function: Function,
    /// First register, protocol (0-based) address.
    pub start: u16,
    /// Number of registers, 1–125.
    pub quantity: u16,
}

impl ReadRequest {
    /// Fails unless the fields fit the protocol (`offset` 0 of a request frame).
    fn check(&self) -> Result<()> {
        check_slave(self.slave, field::SLAVE)?;
        if !(1..=MAX_READ_QUANTITY).contains(&self.quantity) {
            return Err(Error::malformed("modbus quantity", field::QUANTITY.start));
        }
        Ok(())
    }

    /// Reads the request that is exactly `frame` (one frame, as split by the line silence):
    /// length, CRC, slave address, function and quantity are checked.
    pub fn parse(frame: &[u8]) -> Result<ReadRequest> {
        if frame.len() < REQUEST_LEN {
            return Err(Error::truncated(
                "modbus request",
                0,
                REQUEST_LEN,
                frame.len(),
            ));
        }
        if frame.len() > REQUEST_LEN {
            // Another frame glued on means the silence was missed: the frame is unusable.
            return Err(Error::malformed("modbus request length", REQUEST_LEN));
        }
        let (computed, received) = crc_pair(frame);
        if computed != received {
            return Err(Error::malformed("modbus crc", field::REQUEST_CRC));
        }
        let function = Function::from_code(u8_at(frame, field::FUNCTION))
            .ok_or(Error::malformed("modbus function", field::FUNCTION))?;
        let req = ReadRequest {
            slave: u8_at(frame, field::SLAVE),
            function,
            start: be16(frame, field::START.start),
            quantity: be16(frame, field::QUANTITY.start),
        };
        req.check()?;
        Ok(req)
    }

    /// Writes the request and its CRC into `buf[..8]`; returns 8.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        Error::check_room("modbus request", REQUEST_LEN, buf.len())?;
        put(buf, field::SLAVE, &[self.slave, self.function.code()]);
        put(buf, field::START.start, &self.start.to_be_bytes());
        put(buf, field::QUANTITY.start, &self.quantity.to_be_bytes());
        put_crc(buf, field::REQUEST_CRC);
        Ok(REQUEST_LEN)
    }

    /// Length of the normal response to this request: `5 + 2 × quantity`.
    pub fn response_len(&self) -> usize {
        response_len(2 * usize::from(self.quantity))
    }
}

/// A read-only or read-write view of one FC03/FC04 response frame (normal or exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Response<T> {
    /// Wraps `buffer` without checking it. Getters return zeros / `None` for missing bytes.
    pub const fn new_unchecked(buffer: T) -> Response<T> {
        Response { buffer }
    }

    /// Wraps `buffer` and runs [`Response::check_len`].
    pub fn new_checked(buffer: T) -> Result<Response<T>> {
        let r = Response::new_unchecked(buffer);
        r.check_len()?;
        Ok(r)
    }

    /// Checks that the buffer is exactly one frame: its length against the exception form or
    /// the byte count, then the CRC (`Malformed { what: "modbus crc" }`), then the slave
    /// address (1–247), the function (3 or 4) and the byte count (even, 2–250).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < EXCEPTION_LEN {
            return Err(Error::truncated(
                "modbus response",
                0,
                EXCEPTION_LEN,
                data.len(),
            ));
        }
        let total = self.frame_len();
        if data.len() < total {
            return Err(Error::truncated("modbus response", 0, total, data.len()));
        }
        if data.len() > total {
            return Err(Error::malformed("modbus response length", total));
        }
        let (computed, received) = crc_pair(data);
        if computed != received {
            return Err(Error::malformed("modbus crc", total - CRC_LEN));
        }
        check_slave(self.slave(), field::SLAVE)?;
        if self.function().is_none() {
            return Err(Error::malformed("modbus function", field::FUNCTION));
        }
        if !self.is_exception() {
            let bc = self.byte_count();
            if bc == 0
                || !bc.is_multiple_of(2)
                || usize::from(bc) > 2 * usize::from(MAX_READ_QUANTITY)
            {
                return Err(Error::malformed("modbus byte count", field::BYTE_COUNT));
            }
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Length of the frame as its header announces it (5 for an exception, else
    /// `5 + byte_count`), CRC included.
    pub fn frame_len(&self) -> usize {
        if self.is_exception() {
            EXCEPTION_LEN
        } else {
            response_len(usize::from(self.byte_count()))
        }
    }

    /// Slave address.
    pub fn slave(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::SLAVE)
    }

    /// The raw function code byte (bit 7 set in an exception).
    pub fn function_code(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::FUNCTION)
    }

    /// The function answered (exception bit stripped); `None` for other functions.
    pub fn function(&self) -> Option<Function> {
        Function::from_code(self.function_code() & !EXCEPTION_BIT)
    }

    /// The slave answered with an exception.
    pub fn is_exception(&self) -> bool {
        self.function_code() & EXCEPTION_BIT != 0
    }

    /// The exception code, `None` for a normal response.
    pub fn exception_code(&self) -> Option<ExceptionCode> {
        self.is_exception()
            .then(|| ExceptionCode::from_code(u8_at(self.buffer.as_ref(), field::EXCEPTION_CODE)))
    }

    /// Byte count of a normal response (0 for an exception).
    pub fn byte_count(&self) -> u8 {
        if self.is_exception() {
            0
        } else {
            u8_at(self.buffer.as_ref(), field::BYTE_COUNT)
        }
    }

    /// The register bytes (clipped to the buffer, CRC excluded).
    fn data(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (field::DATA + usize::from(self.byte_count()))
            .min(b.len().saturating_sub(CRC_LEN))
            .max(field::DATA);
        slice(b, field::DATA, end)
    }

    /// Number of registers carried (0 for an exception).
    pub fn register_count(&self) -> usize {
        self.data().len() / 2
    }

    /// Register `i` (0 = the first requested one), `None` past the end.
    pub fn register(&self, i: usize) -> Option<u16> {
        let off = i.checked_mul(2)?;
        array(self.data(), off).map(u16::from_be_bytes)
    }

    /// The registers in order.
    pub fn registers(&self) -> Registers<'_> {
        Registers {
            chunks: self.data().chunks_exact(2),
        }
    }

    /// The CRC as received.
    pub fn crc(&self) -> u16 {
        le16(self.buffer.as_ref(), self.frame_len() - CRC_LEN)
    }
}

/// Iterator over the registers of a [`Response`].
#[derive(Debug, Clone)]
pub struct Registers<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for Registers<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        self.chunks
            .next()
            .and_then(|c| c.first_chunk::<2>())
            .map(|c| u16::from_be_bytes(*c))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for Registers<'_> {}

/// An FC03/FC04 response, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResponseRepr {
    /// Normal response: the registers read.
    Registers {
        /// Slave address.
        slave: u8,
        /// The function answered.
        function: Function,
        /// Register values, in address order (1–125 of them).
        values: Vec<u16>,
    },
    /// Exception response.
    Exception {
        /// Slave address.
        slave: u8,
        /// The function that failed (sent with bit 7 set).
        function: Function,
        /// Why.
        code: ExceptionCode,
    },
}

impl ResponseRepr {
    /// Reads a response view (runs [`Response::check_len`]).
    pub fn parse<T: AsRef<[u8]>>(resp: &Response<T>) -> Result<ResponseRepr> {
        resp.check_len()?;
        let function = resp
            .function()
            .ok_or(Error::malformed("modbus function", field::FUNCTION))?;
        Ok(match resp.exception_code() {
            Some(code) => ResponseRepr::Exception {
                slave: resp.slave(),
                function,
                code,
            },
            None => ResponseRepr::Registers {
                slave: resp.slave(),
                function,
                values: resp.registers().collect(),
            },
        })
    }

    /// Slave address.
    pub fn slave(&self) -> u8 {
        match *self {
            ResponseRepr::Registers { slave, .. } | ResponseRepr::Exception { slave, .. } => slave,
        }
    }

    /// The function answered.
    pub fn function(&self) -> Function {
        match *self {
            ResponseRepr::Registers { function, .. } | ResponseRepr::Exception { function, .. } => {
                function
            }
        }
    }

    /// Length of the emitted frame, CRC included.
    pub fn buffer_len(&self) -> usize {
        match self {
            ResponseRepr::Registers { values, .. } => response_len(2 * values.len()),
            ResponseRepr::Exception { .. } => EXCEPTION_LEN,
        }
    }

    /// Writes the frame and its CRC into `buf[..buffer_len()]` and returns its length (for
    /// tests and the in-process slave emulator). Refuses what a slave could not send: a
    /// broadcast/reserved address, or no or more than 125 registers.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_slave(self.slave(), field::SLAVE)?;
        let len = self.buffer_len();
        match self {
            ResponseRepr::Registers {
                slave,
                function,
                values,
            } => {
                if values.is_empty() || values.len() > usize::from(MAX_READ_QUANTITY) {
                    return Err(Error::malformed("modbus register count", field::BYTE_COUNT));
                }
                Error::check_room("modbus response", len, buf.len())?;
                // At most 125 registers: 250 fits a byte.
                let bc = (2 * values.len()) as u8;
                put(buf, field::SLAVE, &[*slave, function.code(), bc]);
                for (i, v) in values.iter().enumerate() {
                    put(buf, field::DATA + 2 * i, &v.to_be_bytes());
                }
            }
            ResponseRepr::Exception {
                slave,
                function,
                code,
            } => {
                Error::check_room("modbus exception", len, buf.len())?;
                put(
                    buf,
                    field::SLAVE,
                    &[*slave, function.exception_code(), code.code()],
                );
            }
        }
        put_crc(buf, len - CRC_LEN);
        Ok(len)
    }
}

/// Why the [`ResponseReader`] rejected a frame addressed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadFrame {
    /// Our slave and function with the expected length (or an exception), but the CRC does
    /// not match: a line error, or noise that looked like our header. Only the first byte is
    /// dropped, so a real frame starting inside it is still found.
    Crc {
        /// CRC of the bytes received.
        computed: u16,
        /// CRC field received.
        received: u16,
    },
    /// A CRC-valid response from our slave and function with a byte count other than
    /// `2 × quantity`: the slave answered another request (or its register map disagrees
    /// with the profile). The whole frame is dropped.
    ByteCount {
        /// `2 × quantity` of the request.
        expected: u8,
        /// Byte count received.
        received: u8,
    },
}

/// What [`ResponseReader::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEvent {
    /// The awaited response (registers or an exception), CRC-checked; its bytes are consumed.
    Complete(ResponseRepr),
    /// No complete frame yet: push more bytes (or reset on timeout).
    NeedMore,
    /// A frame addressed to us was rejected; reading goes on past it.
    Bad(BadFrame),
}

/// What the reader knows about a possible frame start.
enum Candidate {
    /// The bytes cannot start a frame for us.
    No,
    /// They can, but more bytes are needed to decide.
    Incomplete,
    /// The awaited frame, `len` bytes long.
    Ours(usize, ResponseRepr),
    /// Our header with the right length but a bad CRC.
    Crc(BadFrame),
    /// A CRC-valid frame of ours with the wrong byte count, `len` bytes long.
    WrongCount(usize, BadFrame),
}

/// Streaming extractor of the response to one read request from a serial line whose bytes
/// arrive in arbitrary chunks.
///
/// It scans for the awaited slave address followed by the function code (or the exception
/// code), so noise before the frame and frames of other slaves are skipped byte by byte and
/// counted in [`ResponseReader::skipped`]. A candidate is accepted only with a valid CRC; a
/// later complete, CRC-valid frame wins over an earlier candidate that still waits for bytes
/// (noise that looked like a header must not hide the real frame until a timeout). The buffer
/// never holds more than [`MAX_FRAME_LEN`] bytes: everything before the first possible frame
/// start is dropped as it is scanned.
///
/// The 3.5-character silence and the response timeout are the caller's: on a timeout, or
/// before the next request, call [`ResponseReader::reset`] or [`ResponseReader::expect`].
#[derive(Debug, Clone)]
pub struct ResponseReader {
    slave: u8,
    function: Function,
    /// `2 × quantity`, `None` when no normal response can carry that many registers.
    byte_count: Option<u8>,
    buf: Vec<u8>,
    skipped: u64,
}

impl ResponseReader {
    /// A reader awaiting the response to `request`.
    pub fn new(request: &ReadRequest) -> ResponseReader {
        let mut r = ResponseReader {
            slave: 0,
            function: request.function,
            byte_count: None,
            buf: Vec::with_capacity(MAX_FRAME_LEN),
            skipped: 0,
        };
        r.expect(request);
        r
    }

    /// Awaits the response to `request` from now on, dropping buffered bytes.
    pub fn expect(&mut self, request: &ReadRequest) {
        self.slave = request.slave;
        self.function = request.function;
        self.byte_count = u8::try_from(2 * u32::from(request.quantity))
            .ok()
            .filter(|&bc| bc > 0 && u16::from(bc) <= 2 * MAX_READ_QUANTITY);
        self.reset();
    }

    /// Drops buffered bytes (after a timeout or a completed transaction) and zeroes
    /// [`ResponseReader::skipped`].
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skipped = 0;
    }

    /// Bytes buffered, waiting for the rest of a possible frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes dropped since the last reset: noise, other slaves' frames, rejected frames. With
    /// no response in sight this hints at a wrong baud rate or parity.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Appends as much of `chunk` as the bounded buffer takes and returns how many bytes it
    /// took. After [`ResponseReader::poll`] returned [`ReadEvent::NeedMore`] it takes at least
    /// one byte of a non-empty chunk; [`ResponseReader::feed`] does the push/poll loop.
    pub fn push(&mut self, chunk: &[u8]) -> usize {
        let n = (MAX_FRAME_LEN - self.buf.len().min(MAX_FRAME_LEN)).min(chunk.len());
        self.buf.extend_from_slice(slice(chunk, 0, n));
        n
    }

    /// Looks for the awaited frame in the buffered bytes.
    pub fn poll(&mut self) -> ReadEvent {
        loop {
            match self.candidate(0) {
                Candidate::No => {
                    // Resync: drop up to the next byte that may start our frame.
                    let next = (1..self.buf.len())
                        .find(|&i| !matches!(self.candidate(i), Candidate::No))
                        .unwrap_or(self.buf.len());
                    self.drop_front(next);
                    if self.buf.is_empty() {
                        return ReadEvent::NeedMore;
                    }
                }
                Candidate::Incomplete => return self.look_ahead(),
                Candidate::Ours(len, repr) => {
                    self.consume(len);
                    return ReadEvent::Complete(repr);
                }
                Candidate::Crc(bad) => {
                    self.drop_front(1);
                    return ReadEvent::Bad(bad);
                }
                Candidate::WrongCount(len, bad) => {
                    self.drop_front(len);
                    return ReadEvent::Bad(bad);
                }
            }
        }
    }

    /// Pushes `chunk` and polls until it is consumed: the iterator yields every
    /// [`ReadEvent::Complete`] and [`ReadEvent::Bad`] and ends when more bytes are needed.
    /// Bytes of `chunk` after the last event taken stay unread if it is dropped early, which
    /// is what a caller wants once its response is complete.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Feed<'a> {
        Feed {
            reader: self,
            rest: chunk,
        }
    }

    /// The candidate at 0 waits for bytes: a complete, CRC-valid frame of ours further on wins.
    fn look_ahead(&mut self) -> ReadEvent {
        for i in 1..self.buf.len() {
            if let Candidate::Ours(len, repr) = self.candidate(i) {
                self.drop_front(i);
                self.consume(len);
                return ReadEvent::Complete(repr);
            }
        }
        ReadEvent::NeedMore
    }

    /// Drops `n` bytes as skipped.
    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.skipped += n as u64;
    }

    /// Drops the `n` bytes of a delivered frame.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }

    /// Classifies the bytes buffered from `at`.
    fn candidate(&self, at: usize) -> Candidate {
        let b = self.buf.get(at..).unwrap_or(&[]);
        let (Some(&slave), fc) = (b.first(), b.get(field::FUNCTION)) else {
            return Candidate::No;
        };
        if slave != self.slave {
            return Candidate::No;
        }
        let Some(&fc) = fc else {
            return Candidate::Incomplete;
        };
        if fc == self.function.exception_code() {
            let Some(frame) = b.get(..EXCEPTION_LEN) else {
                return Candidate::Incomplete;
            };
            return match crc_pair(frame) {
                (c, r) if c == r => Candidate::Ours(
                    EXCEPTION_LEN,
                    ResponseRepr::Exception {
                        slave,
                        function: self.function,
                        code: ExceptionCode::from_code(u8_at(frame, field::EXCEPTION_CODE)),
                    },
                ),
                (computed, received) => Candidate::Crc(BadFrame::Crc { computed, received }),
            };
        }
        if fc != self.function.code() {
            return Candidate::No;
        }
        let Some(&bc) = b.get(field::BYTE_COUNT) else {
            return Candidate::Incomplete;
        };
        if bc == 0 || !bc.is_multiple_of(2) || u16::from(bc) > 2 * MAX_READ_QUANTITY {
            return Candidate::No;
        }
        let len = response_len(usize::from(bc));
        let Some(frame) = b.get(..len) else {
            return Candidate::Incomplete;
        };
        let (computed, received) = crc_pair(frame);
        match (Some(bc) == self.byte_count, computed == received) {
            (true, true) => Candidate::Ours(
                len,
                ResponseRepr::Registers {
                    slave,
                    function: self.function,
                    values: Response::new_unchecked(frame).registers().collect(),
                },
            ),
            (true, false) => Candidate::Crc(BadFrame::Crc { computed, received }),
            (false, true) => Candidate::WrongCount(
                len,
                BadFrame::ByteCount {
                    expected: self.byte_count.unwrap_or(0),
                    received: bc,
                },
            ),
            // A wrong length and a bad CRC: noise that looked like our header.
            (false, false) => Candidate::No,
        }
    }
}

/// Iterator returned by [`ResponseReader::feed`].
#[derive(Debug)]
pub struct Feed<'a> {
    reader: &'a mut ResponseReader,
    rest: &'a [u8],
}

impl Iterator for Feed<'_> {
    type Item = ReadEvent;

    fn next(&mut self) -> Option<ReadEvent> {
        loop {
            let n = self.reader.push(self.rest);
            self.rest = self.rest.get(n..).unwrap_or(&[]);
            match self.reader.poll() {
                // NeedMore leaves room in the buffer, so a non-empty rest always progresses;
                // the `n == 0` guard only keeps a broken invariant from spinning.
                ReadEvent::NeedMore if self.rest.is_empty() || n == 0 => return None,
                ReadEvent::NeedMore => {}
                ev => return Some(ev),
            }
        }
    }
}

/// Width of a register-map field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// One register.
    U16,
    /// Two consecutive registers.
    U32,
}

impl FieldKind {
    /// Registers the field occupies.
    pub const fn registers(self) -> usize {
        match self {
            FieldKind::U16 => 1,
            FieldKind::U32 => 2,
        }
    }
}

/// Order of the two registers of a [`FieldKind::U32`] (bytes within a register are always
/// big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordOrder {
    /// High word first, "ABCD" (the Modbus convention).
    HighFirst,
    /// Low word first, "CDAB" (word-swapped, common on PLC-derived firmware).
    LowFirst,
}

/// One field of a vendor register map, as a hardware profile describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Register address of the field, in the same (protocol, 0-based) addressing as the
    /// request's start; the profile converts 1-based or 4xxxx notation before this.
    pub offset: u16,
    /// Width.
    pub kind: FieldKind,
    /// Word order of a U32 (ignored for U16).
    pub word_order: WordOrder,
    /// The raw value is divided by this (integer division, truncating); 1 for plain counts.
    pub scale: u32,
}

/// Decodes `spec` from `values`, the registers read starting at register address `base`.
///
/// Errors: a field below `base` or a zero scale is `Malformed`; a field past the registers
/// read is `Truncated`, with offsets and sizes in bytes of the register data.
pub fn decode_field(values: &[u16], base: u16, spec: &FieldSpec) -> Result<u64> {
    if spec.scale == 0 {
        return Err(Error::malformed("modbus field scale 0", 0));
    }
    let index = usize::from(
        spec.offset
            .checked_sub(base)
            .ok_or(Error::malformed("modbus field below first register", 0))?,
    );
    let reg = |i: usize| values.get(index + i).copied().map(u64::from);
    let raw = match (spec.kind, spec.word_order) {
        (FieldKind::U16, _) => reg(0),
        (FieldKind::U32, WordOrder::HighFirst) => reg(0).zip(reg(1)).map(|(hi, lo)| hi << 16 | lo),
        (FieldKind::U32, WordOrder::LowFirst) => reg(0).zip(reg(1)).map(|(lo, hi)| hi << 16 | lo),
    };
    let raw = raw.ok_or_else(|| {
        let have = values.len().saturating_sub(index);
        Error::truncated(
            "modbus field",
            2 * index,
            2 * spec.kind.registers(),
            2 * have,
        )
    })?;
    Ok(raw / u64::from(spec.scale))
}

/// The checks of the `modbus` fuzz target (`fuzz/fuzz_targets/modbus.rs` mirrors them).
///
/// Input: `slave, function selector, quantity, chunk size`, then the line bytes.
#[doc(hidden)]
#[allow(clippy::unwrap_used)] // a fuzz check: a panic is its finding
pub fn fuzz_check(input: &[u8]) {
    // The whole input as one frame: the view and the Repr round trip.
    if let Ok(resp) = Response::new_checked(input) {
        let _ = (resp.slave(), resp.exception_code(), resp.crc());
        assert_eq!(resp.registers().count(), resp.register_count());
        let repr = ResponseRepr::parse(&resp).expect("checked view parses");
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).expect("parsed repr emits");
        assert_eq!(&buf[..n], input);
    }
    if let Ok(rq) = ReadRequest::parse(input) {
        let mut buf = [0u8; REQUEST_LEN];
        rq.emit(&mut buf).expect("parsed request emits");
        assert_eq!(&buf[..], input);
    }
    let [slave, sel, quantity, chunk, line @ ..] = input else {
        return;
    };
    let function = if sel & 1 == 0 {
        Function::ReadHolding
    } else {
        Function::ReadInput
    };
    let request = ReadRequest {
        slave: *slave,
        function,
        start: 0,
        quantity: u16::from(*quantity),
    };
    let mut r = ResponseReader::new(&request);
    let mut delivered = 0u64;
    for part in line.chunks(usize::from(*chunk).max(1)) {
        for ev in r.feed(part) {
            match ev {
                ReadEvent::Complete(repr) => {
                    assert_eq!(repr.slave(), *slave);
                    assert_eq!(repr.function(), function);
                    if let ResponseRepr::Registers { values, .. } = &repr {
                        assert_eq!(values.len(), usize::from(*quantity));
                    }
                    delivered += repr.buffer_len() as u64;
                }
                ReadEvent::Bad(_) => {}
                ReadEvent::NeedMore => panic!("feed never yields NeedMore"),
            }
        }
        assert!(r.buffered() <= MAX_FRAME_LEN);
    }
    // Every byte fed is delivered in a frame, skipped, or still buffered.
    assert_eq!(
        delivered + r.skipped() + r.buffered() as u64,
        line.len() as u64
    );
    // Register maps over whatever the line gave.
    let values: Vec<u16> = line
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let spec = FieldSpec {
        offset: u16::from(*quantity),
        kind: if sel & 2 == 0 {
            FieldKind::U16
        } else {
            FieldKind::U32
        },
        word_order: if sel & 4 == 0 {
            WordOrder::HighFirst
        } else {
            WordOrder::LowFirst
        },
        scale: u32::from(*chunk),
    };
    let _ = decode_field(&values, u16::from(*slave), &spec);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `body` followed by its CRC, low byte first.
    fn with_crc(body: &[u8]) -> Vec<u8> {
        let mut v = body.to_vec();
        v.extend_from_slice(&crc16(body).to_le_bytes());
        v
    }

    fn req(slave: u8, function: Function, start: u16, quantity: u16) -> ReadRequest {
        ReadRequest {
            slave,
            function,
            start,
            quantity,
        }
    }

    #[test]
    fn crc_check_value_and_vectors() {
        // CRC-16/MODBUS catalogue check value.
        assert_eq!(crc16(b"123456789"), 0x4B37);
        assert_eq!(crc16(&[]), 0xFFFF);
        // Wire order is low byte first: 84 0A means 0x0A84.
        assert_eq!(crc16(&hex("01 03 00 00 00 01")).to_le_bytes(), [0x84, 0x0A]);
        assert_eq!(crc16(&hex("01 03 00 02 00 01")).to_le_bytes(), [0x25, 0xCA]);
        assert_eq!(crc16(&hex("01 04 00 00 00 0A")).to_le_bytes(), [0x70, 0x0D]);
    }

    #[test]
    fn crc_table_matches_bitwise() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc = 0xFFFFu16;
            for &b in data {
                crc ^= u16::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xA001
                    } else {
                        crc >> 1
                    };
                }
            }
            crc
        }
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc16(&data[..n]), bitwise(&data[..n]));
        }
    }

    #[test]
    fn request_fixture_fc03() {
        let bytes = hex("01 \
             03 \
             00 00 \
             00 01 \
             84 0A");
        // slave 1, FC03, start 0x0000, quantity 1, CRC 0x0A84 low byte first.
        let r = ReadRequest::parse(&bytes).unwrap();
        assert_eq!(r, req(1, Function::ReadHolding, 0, 1));
        assert_eq!(r.response_len(), 7);
        let mut buf = [0u8; 8];
        assert_eq!(r.emit(&mut buf).unwrap(), 8);
        assert_eq!(&buf[..], &bytes[..]);
    }

    #[test]
    fn request_fixture_fc04() {
        // slave 1, FC04, start 0x0000, quantity 10, CRC 70 0D.
        let bytes = hex("01 04 0000 000A 700D");
        let r = ReadRequest::parse(&bytes).unwrap();
        assert_eq!(r, req(1, Function::ReadInput, 0, 10));
        // slave 1, FC03, start 2, quantity 1, CRC 25 CA.
        let r = req(1, Function::ReadHolding, 2, 1);
        let mut buf = [0u8; 9];
        assert_eq!(r.emit(&mut buf).unwrap(), 8);
        assert_eq!(&buf[..8], &hex("01 03 0002 0001 25CA")[..]);
    }

    #[test]
    fn request_errors() {
        let good = hex("01 03 0000 0001 840A");
        assert!(matches!(
            ReadRequest::parse(&good[..7]),
            Err(Error::Truncated {
                need: 8,
                have: 7,
                ..
            })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            ReadRequest::parse(&long),
            Err(Error::malformed("modbus request length", 8))
        );
        let mut bad = good.clone();
        bad[7] ^= 1;
        assert_eq!(
            ReadRequest::parse(&bad),
            Err(Error::malformed("modbus crc", 6))
        );
        // FC06 (write single register) is not a read.
        assert_eq!(
            ReadRequest::parse(&with_crc(&hex("01 06 0000 0001"))),
            Err(Error::malformed("modbus function", 1))
        );
        // Broadcast address 0 cannot be read.
        assert_eq!(
            ReadRequest::parse(&with_crc(&hex("00 03 0000 0001"))),
            Err(Error::malformed("modbus slave address", 0))
        );
        // Quantity 126 is above the FC03 limit.
        assert_eq!(
            ReadRequest::parse(&with_crc(&hex("01 03 0000 007E"))),
            Err(Error::malformed("modbus quantity", 4))
        );
        let mut small = [0u8; 7];
        assert!(matches!(
            req(1, Function::ReadHolding, 0, 1).emit(&mut small),
            Err(Error::BufferTooSmall {
                need: 8,
                have: 7,
                ..
            })
        ));
        assert!(req(248, Function::ReadHolding, 0, 1)
            .emit(&mut [0u8; 8])
            .is_err());
        assert!(req(1, Function::ReadHolding, 0, 0)
            .emit(&mut [0u8; 8])
            .is_err());
    }

    #[test]
    fn response_fixture_registers() {
        let bytes = with_crc(&hex("11 \
             03 \
             06 \
             AE41 \
             5652 \
             4340"));
        // slave 17, FC03, 6 data bytes = 3 registers, 0xAE41 0x5652 0x4340, then the CRC.
        let r = Response::new_checked(&bytes[..]).unwrap();
        assert_eq!(r.slave(), 17);
        assert_eq!(r.function(), Some(Function::ReadHolding));
        assert_eq!(r.function_code(), 3);
        assert!(!r.is_exception());
        assert_eq!(r.exception_code(), None);
        assert_eq!(r.byte_count(), 6);
        assert_eq!(r.frame_len(), 11);
        assert_eq!(r.register_count(), 3);
        assert_eq!(r.register(0), Some(0xAE41));
        assert_eq!(r.register(2), Some(0x4340));
        assert_eq!(r.register(3), None);
        assert_eq!(r.register(usize::MAX), None);
        assert_eq!(r.registers().len(), 3);
        assert_eq!(
            r.registers().collect::<Vec<_>>(),
            vec![0xAE41, 0x5652, 0x4340]
        );
        assert_eq!(r.crc(), crc16(&bytes[..9]));
        let repr = ResponseRepr::parse(&r).unwrap();
        assert_eq!(
            repr,
            ResponseRepr::Registers {
                slave: 17,
                function: Function::ReadHolding,
                values: vec![0xAE41, 0x5652, 0x4340],
            }
        );
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf).unwrap(), 11);
        assert_eq!(buf, bytes);
    }

    #[test]
    fn response_fixture_fc04_one_register() {
        // slave 1, FC04, 2 data bytes, register 0x0048 (72), CRC.
        let bytes = with_crc(&hex("01 04 02 0048"));
        let repr = ResponseRepr::parse(&Response::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            ResponseRepr::Registers {
                slave: 1,
                function: Function::ReadInput,
                values: vec![72],
            }
        );
        assert_eq!(repr.slave(), 1);
        assert_eq!(repr.function(), Function::ReadInput);
    }

    #[test]
    fn response_fixture_exception() {
        let bytes = hex("01 \
             83 \
             02 \
             C0 F1");
        // slave 1, FC03 | 0x80, exception 2 (illegal data address), CRC 0xF1C0 low byte first.
        let r = Response::new_checked(&bytes[..]).unwrap();
        assert_eq!(r.slave(), 1);
        assert!(r.is_exception());
        assert_eq!(r.function(), Some(Function::ReadHolding));
        assert_eq!(r.function_code(), 0x83);
        assert_eq!(r.exception_code(), Some(ExceptionCode::IllegalDataAddress));
        assert_eq!(r.byte_count(), 0);
        assert_eq!(r.register_count(), 0);
        assert_eq!(r.register(0), None);
        assert_eq!(r.frame_len(), 5);
        assert_eq!(r.crc(), 0xF1C0);
        let repr = ResponseRepr::parse(&r).unwrap();
        assert_eq!(
            repr,
            ResponseRepr::Exception {
                slave: 1,
                function: Function::ReadHolding,
                code: ExceptionCode::IllegalDataAddress,
            }
        );
        let mut buf = [0u8; 5];
        assert_eq!(repr.emit(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..], &bytes[..]);
        // The same for FC04, slave 10, device failure.
        let exc = ResponseRepr::Exception {
            slave: 10,
            function: Function::ReadInput,
            code: ExceptionCode::ServerDeviceFailure,
        };
        exc.emit(&mut buf).unwrap();
        assert_eq!(&buf[..3], &[0x0A, 0x84, 0x04]);
        assert_eq!(
            ResponseRepr::parse(&Response::new_checked(&buf[..]).unwrap()).unwrap(),
            exc
        );
    }

    #[test]
    fn exception_codes() {
        for c in 0..=255u8 {
            assert_eq!(ExceptionCode::from_code(c).code(), c);
        }
        assert_eq!(ExceptionCode::from_code(1), ExceptionCode::IllegalFunction);
        assert_eq!(ExceptionCode::from_code(3), ExceptionCode::IllegalDataValue);
        assert_eq!(
            ExceptionCode::from_code(4),
            ExceptionCode::ServerDeviceFailure
        );
        assert_eq!(ExceptionCode::from_code(6), ExceptionCode::Other(6));
    }

    #[test]
    fn response_errors() {
        let good = with_crc(&hex("01 03 02 0048"));
        assert!(matches!(
            Response::new_checked(&good[..4]),
            Err(Error::Truncated {
                need: 5,
                have: 4,
                ..
            })
        ));
        assert!(matches!(
            Response::new_checked(&good[..6]),
            Err(Error::Truncated {
                need: 7,
                have: 6,
                ..
            })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            Response::new_checked(&long[..]),
            Err(Error::malformed("modbus response length", 7))
        );
        let mut bad = good.clone();
        bad[3] ^= 0x10;
        assert_eq!(
            Response::new_checked(&bad[..]),
            Err(Error::malformed("modbus crc", 5))
        );
        assert_eq!(
            Response::new_checked(&with_crc(&hex("F8 03 02 0048"))[..]),
            Err(Error::malformed("modbus slave address", 0))
        );
        assert_eq!(
            Response::new_checked(&with_crc(&hex("01 06 02 0048"))[..]),
            Err(Error::malformed("modbus function", 1))
        );
        assert_eq!(
            Response::new_checked(&with_crc(&hex("01 83 02 0048"))[..]),
            Err(Error::malformed("modbus response length", 5))
        );
        assert_eq!(
            Response::new_checked(&with_crc(&hex("01 03 03 004800"))[..]),
            Err(Error::malformed("modbus byte count", 2))
        );
        assert_eq!(
            Response::new_checked(&with_crc(&hex("01 03 00"))[..]),
            Err(Error::malformed("modbus byte count", 2))
        );
        let big = ResponseRepr::Registers {
            slave: 1,
            function: Function::ReadHolding,
            values: vec![0; 126],
        };
        assert!(big.emit(&mut [0u8; 300]).is_err());
        let small = ResponseRepr::Registers {
            slave: 1,
            function: Function::ReadHolding,
            values: vec![1, 2],
        };
        assert!(matches!(
            small.emit(&mut [0u8; 8]),
            Err(Error::BufferTooSmall {
                need: 9,
                have: 8,
                ..
            })
        ));
    }

    #[test]
    fn unchecked_short_buffers_never_panic() {
        for len in 0..8 {
            let b = vec![0x83u8; len];
            let r = Response::new_unchecked(&b[..]);
            let _ = (r.slave(), r.function(), r.exception_code(), r.crc());
            assert!(r.registers().count() <= r.register_count());
            assert!(r.register(0).is_none() || len > 3);
        }
        // A byte count far past the buffer.
        let r = Response::new_unchecked(&[1u8, 3, 250, 0, 1][..]);
        assert_eq!(r.register_count(), 0);
        assert_eq!(r.crc(), 0);
    }

    /// Feeds `stream` in chunks of `chunk` bytes and collects the events.
    fn read_all(request: &ReadRequest, stream: &[u8], chunk: usize) -> Vec<ReadEvent> {
        let mut r = ResponseReader::new(request);
        let mut events = Vec::new();
        for part in stream.chunks(chunk.max(1)) {
            events.extend(r.feed(part));
            assert!(r.buffered() <= MAX_FRAME_LEN);
        }
        events
    }

    fn registers(slave: u8, function: Function, values: &[u16]) -> ResponseRepr {
        ResponseRepr::Registers {
            slave,
            function,
            values: values.to_vec(),
        }
    }

    fn emit(r: &ResponseRepr) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf).unwrap();
        buf
    }

    #[test]
    fn reader_whole_and_byte_by_byte() {
        let rq = req(5, Function::ReadInput, 0x10, 2);
        let resp = registers(5, Function::ReadInput, &[0x0102, 0xFFFF]);
        let frame = emit(&resp);
        for chunk in 1..=frame.len() {
            assert_eq!(
                read_all(&rq, &frame, chunk),
                vec![ReadEvent::Complete(resp.clone())]
            );
        }
        let mut r = ResponseReader::new(&rq);
        assert_eq!(r.push(&frame[..3]), 3);
        assert_eq!(r.poll(), ReadEvent::NeedMore);
        assert_eq!(r.buffered(), 3);
        assert_eq!(r.push(&frame[3..]), frame.len() - 3);
        assert_eq!(r.poll(), ReadEvent::Complete(resp));
        assert_eq!(r.poll(), ReadEvent::NeedMore);
        assert_eq!((r.buffered(), r.skipped()), (0, 0));
    }

    #[test]
    fn reader_skips_noise_and_other_slaves() {
        let rq = req(5, Function::ReadHolding, 0, 2);
        let ours = registers(5, Function::ReadHolding, &[7, 8]);
        let theirs = registers(6, Function::ReadHolding, &[0x0102, 0x0304]);
        let mut stream = hex("00 FF 05 05 10 03");
        stream.extend(emit(&theirs));
        stream.extend(emit(&ours));
        let noise = 6 + emit(&theirs).len() as u64;
        for chunk in [1, 2, 5, 64] {
            let mut r = ResponseReader::new(&rq);
            let events: Vec<_> = stream
                .chunks(chunk)
                .flat_map(|c| r.feed(c).collect::<Vec<_>>())
                .collect();
            assert_eq!(events, vec![ReadEvent::Complete(ours.clone())]);
            assert_eq!(r.skipped(), noise);
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn reader_foreign_frame_holding_our_header() {
        // Slave 2's registers 0x0103 0x0400 contain `01 03 04`, our header with the awaited
        // byte count: that false start costs one Bad(Crc), never the real frame after it.
        let rq = req(1, Function::ReadHolding, 0, 2);
        let theirs = registers(2, Function::ReadHolding, &[0x0103, 0x0400]);
        let ours = registers(1, Function::ReadHolding, &[0x0048, 0x00C8]);
        let mut stream = emit(&theirs);
        stream.extend(emit(&ours));
        for chunk in [1, 4, 64] {
            let events = read_all(&rq, &stream, chunk);
            assert!(matches!(events[0], ReadEvent::Bad(BadFrame::Crc { .. })));
            assert_eq!(events[1..], [ReadEvent::Complete(ours.clone())]);
        }
    }

    #[test]
    fn reader_exception() {
        let rq = req(9, Function::ReadHolding, 0, 4);
        let exc = ResponseRepr::Exception {
            slave: 9,
            function: Function::ReadHolding,
            code: ExceptionCode::ServerDeviceFailure,
        };
        let mut stream = hex("AA 09");
        stream.extend(emit(&exc));
        for chunk in [1, 3, 100] {
            assert_eq!(
                read_all(&rq, &stream, chunk),
                vec![ReadEvent::Complete(exc.clone())]
            );
        }
    }

    #[test]
    fn reader_crc_error_then_good_frame() {
        let rq = req(1, Function::ReadHolding, 0, 1);
        let good = emit(&registers(1, Function::ReadHolding, &[0x0042]));
        let mut bad = good.clone();
        bad[4] ^= 0xFF;
        let (computed, received) = crc_pair(&bad);
        let mut stream = bad.clone();
        stream.extend(&good);
        for chunk in [1, 4, 64] {
            assert_eq!(
                read_all(&rq, &stream, chunk),
                vec![
                    ReadEvent::Bad(BadFrame::Crc { computed, received }),
                    ReadEvent::Complete(registers(1, Function::ReadHolding, &[0x42])),
                ]
            );
        }
    }

    #[test]
    fn reader_wrong_byte_count() {
        // Asked for 2 registers; the slave answers 1 (a CRC-valid frame) then the right one.
        let rq = req(1, Function::ReadInput, 0, 2);
        let mut stream = emit(&registers(1, Function::ReadInput, &[0x0104]));
        let right = registers(1, Function::ReadInput, &[1, 2]);
        stream.extend(emit(&right));
        assert_eq!(
            read_all(&rq, &stream, 3),
            vec![
                ReadEvent::Bad(BadFrame::ByteCount {
                    expected: 4,
                    received: 2
                }),
                ReadEvent::Complete(right),
            ]
        );
    }

    #[test]
    fn reader_false_header_does_not_hide_a_later_frame() {
        // `01 03 F0` looks like the header of a 245-byte frame; the real exception follows and
        // must be delivered without waiting for 245 bytes.
        let rq = req(1, Function::ReadHolding, 0, 120);
        let exc = ResponseRepr::Exception {
            slave: 1,
            function: Function::ReadHolding,
            code: ExceptionCode::IllegalDataValue,
        };
        let mut stream = hex("01 03 F0");
        stream.extend(emit(&exc));
        assert_eq!(read_all(&rq, &stream, 2), vec![ReadEvent::Complete(exc)]);
    }

    #[test]
    fn reader_garbage_is_bounded() {
        let rq = req(1, Function::ReadHolding, 0, 125);
        let mut r = ResponseReader::new(&rq);
        // A candidate header that never completes, then a flood of non-matching bytes.
        // (byte count 240, not the awaited 250, and no valid CRC: silently noise).
        let mut stream = hex("01 03 F0");
        stream.extend(std::iter::repeat_n(0x55u8, 10_000));
        let events: Vec<_> = r.feed(&stream).collect();
        assert!(events.is_empty());
        assert!(r.buffered() <= MAX_FRAME_LEN);
        assert!(r.skipped() >= 10_000 - MAX_FRAME_LEN as u64);
        r.reset();
        assert_eq!((r.buffered(), r.skipped()), (0, 0));
        // The reader still works after the flood.
        let resp = registers(1, Function::ReadHolding, &[3; 125]);
        assert_eq!(
            r.feed(&emit(&resp)).collect::<Vec<_>>(),
            vec![ReadEvent::Complete(resp)]
        );
    }

    #[test]
    fn reader_expect_switches_request() {
        let mut r = ResponseReader::new(&req(1, Function::ReadHolding, 0, 1));
        assert_eq!(r.feed(&[1, 3]).count(), 0);
        r.expect(&req(2, Function::ReadInput, 0, 1));
        assert_eq!(r.buffered(), 0);
        let resp = registers(2, Function::ReadInput, &[9]);
        assert_eq!(
            r.feed(&emit(&resp)).collect::<Vec<_>>(),
            vec![ReadEvent::Complete(resp)]
        );
    }

    #[test]
    fn reader_quantity_out_of_range_still_takes_exceptions() {
        // Quantity 200 cannot be answered normally; the slave's exception 3 still arrives.
        let rq = ReadRequest {
            quantity: 200,
            ..req(1, Function::ReadHolding, 0, 1)
        };
        let exc = ResponseRepr::Exception {
            slave: 1,
            function: Function::ReadHolding,
            code: ExceptionCode::IllegalDataValue,
        };
        assert_eq!(
            read_all(&rq, &emit(&exc), 1),
            vec![ReadEvent::Complete(exc)]
        );
    }

    fn spec(offset: u16, kind: FieldKind, word_order: WordOrder, scale: u32) -> FieldSpec {
        FieldSpec {
            offset,
            kind,
            word_order,
            scale,
        }
    }

    #[test]
    fn decode_field_table() {
        use FieldKind::*;
        use WordOrder::*;
        // Registers read from address 100: 100=0x0001 101=0x0002 102=0xFFFF 103=0x000A.
        let values = [0x0001, 0x0002, 0xFFFF, 0x000A];
        let ok: &[(FieldSpec, u64)] = &[
            (spec(100, U16, HighFirst, 1), 1),
            (spec(102, U16, LowFirst, 1), 0xFFFF),
            (spec(103, U16, HighFirst, 10), 1),
            (spec(102, U16, HighFirst, 10), 6553),
            // ABCD: 0x0001_0002.
            (spec(100, U32, HighFirst, 1), 0x0001_0002),
            // CDAB: 0x0002_0001.
            (spec(100, U32, LowFirst, 1), 0x0002_0001),
            (spec(102, U32, HighFirst, 1), 0xFFFF_000A),
            (spec(102, U32, LowFirst, 1), 0x000A_FFFF),
            (spec(101, U32, HighFirst, 2), 0x0002_FFFF / 2),
        ];
        for (s, want) in ok {
            assert_eq!(decode_field(&values, 100, s), Ok(*want), "{s:?}");
        }
        let bad: &[(FieldSpec, Error)] = &[
            (
                spec(99, U16, HighFirst, 1),
                Error::malformed("modbus field below first register", 0),
            ),
            (
                spec(104, U16, HighFirst, 1),
                Error::truncated("modbus field", 8, 2, 0),
            ),
            (
                spec(103, U32, HighFirst, 1),
                Error::truncated("modbus field", 6, 4, 2),
            ),
            (
                spec(u16::MAX, U32, LowFirst, 1),
                Error::truncated("modbus field", 2 * (65535 - 100), 4, 0),
            ),
            (
                spec(100, U16, HighFirst, 0),
                Error::malformed("modbus field scale 0", 0),
            ),
        ];
        for (s, want) in bad {
            assert_eq!(decode_field(&values, 100, s), Err(*want), "{s:?}");
        }
        assert!(decode_field(&[], 0, &spec(0, U16, HighFirst, 1)).is_err());
    }

    /// Seeds for the `modbus` fuzz target.
    fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
        let mut seeds = Vec::new();
        let ours = registers(1, Function::ReadHolding, &[0x0048, 0x00C8]);
        let theirs = registers(2, Function::ReadHolding, &[0x0103, 0x0400]);
        let exc = ResponseRepr::Exception {
            slave: 1,
            function: Function::ReadHolding,
            code: ExceptionCode::IllegalDataAddress,
        };
        let mut noisy = hex("00 FF 01 01 03");
        noisy.extend(emit(&theirs));
        let mut bad = emit(&ours);
        bad[4] ^= 0x20;
        noisy.extend(&bad);
        noisy.extend(emit(&ours));
        let streams: [(&str, u8, Vec<u8>); 3] = [
            ("clean", 0, emit(&ours)),
            ("noisy", 0, noisy),
            ("exception", 0, emit(&exc)),
        ];
        for (name, sel, stream) in streams {
            for chunk in [1u8, 3, 255] {
                let mut v = vec![1, sel, 2, chunk];
                v.extend_from_slice(&stream);
                seeds.push((format!("{name}_chunk{chunk}"), v));
            }
        }
        let input = registers(247, Function::ReadInput, &(0..10).collect::<Vec<_>>());
        let mut v = vec![247, 1, 10, 4];
        v.extend(emit(&input));
        seeds.push(("fc04_ten".into(), v));
        // Whole-input frames for the view and the request parser.
        seeds.push(("frame_registers".into(), emit(&ours)));
        seeds.push(("frame_exception".into(), emit(&exc)));
        seeds.push(("frame_request".into(), hex("01 04 0000 000A 700D")));
        seeds
    }

    #[test]
    fn fuzz_target_body_on_seeds() {
        for (name, seed) in fuzz_seeds() {
            fuzz_check(&seed);
            if name.starts_with("clean") || name.starts_with("noisy") {
                // The stream seeds do reach the awaited frame.
                let rq = req(1, Function::ReadHolding, 0, 2);
                assert!(read_all(&rq, &seed[4..], 3)
                    .iter()
                    .any(|e| matches!(e, ReadEvent::Complete(_))));
            }
        }
    }

    /// Writes the seeds to `fuzz/seeds/modbus` (run with `--ignored` after changing them).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/modbus");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in fuzz_seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    fn repr_strategy() -> impl Strategy<Value = ResponseRepr> {
        let function = prop_oneof![Just(Function::ReadHolding), Just(Function::ReadInput)];
        prop_oneof![
            (
                1u8..=247,
                function.clone(),
                prop::collection::vec(any::<u16>(), 1..=125)
            )
                .prop_map(|(slave, function, values)| ResponseRepr::Registers {
                    slave,
                    function,
                    values
                }),
            (1u8..=247, function, any::<u8>()).prop_map(|(slave, function, c)| {
                ResponseRepr::Exception {
                    slave,
                    function,
                    code: ExceptionCode::from_code(c),
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>) {
            fuzz_check(&data);
            let r = Response::new_unchecked(&data[..]);
            let _ = (r.slave(), r.function(), r.exception_code(), r.crc(), r.frame_len());
            prop_assert!(r.registers().count() == r.register_count());
        }

        #[test]
        fn arbitrary_line_never_panics(
            head in (1u8..=5, any::<u8>(), 0u8..=130, 1u8..=40),
            line in prop::collection::vec(
                prop_oneof![
                    3 => any::<u8>(),
                    1 => prop::sample::select(vec![1u8, 2, 3, 4, 0x83, 0x84]),
                ],
                0..700,
            ),
        ) {
            let mut input = vec![head.0, head.1, head.2, head.3];
            input.extend(line);
            fuzz_check(&input);
        }

        #[test]
        fn repr_round_trip(repr in repr_strategy()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(n, buf.len());
            let back = ResponseRepr::parse(&Response::new_checked(&buf[..]).unwrap()).unwrap();
            prop_assert_eq!(back, repr);
        }

        #[test]
        fn request_round_trip(
            slave in 1u8..=247,
            input in any::<bool>(),
            start: u16,
            quantity in 1u16..=125,
        ) {
            let function = if input { Function::ReadInput } else { Function::ReadHolding };
            let r = req(slave, function, start, quantity);
            let mut buf = [0u8; REQUEST_LEN];
            r.emit(&mut buf).unwrap();
            prop_assert_eq!(ReadRequest::parse(&buf).unwrap(), r);
        }

        /// The awaited frame, surrounded by noise without its header and by other slaves'
        /// frames, is found in any chunking.
        #[test]
        fn reader_finds_frame_in_noise(
            repr in repr_strategy(),
            noise in prop::collection::vec(any::<u8>(), 0..300),
            other in repr_strategy(),
            chunk in 1usize..64,
        ) {
            let (slave, function) = (repr.slave(), repr.function());
            let quantity = match &repr {
                ResponseRepr::Registers { values, .. } => values.len() as u16,
                ResponseRepr::Exception { .. } => 1,
            };
            // Noise and foreign frames must not contain our address.
            let noise: Vec<u8> = noise.into_iter().filter(|&b| b != slave).collect();
            let mut foreign = emit(&other);
            if other.slave() == slave || foreign.contains(&slave) {
                foreign.clear();
            }
            let mut stream = noise.clone();
            stream.extend(&foreign);
            stream.extend(emit(&repr));
            let rq = req(slave, function, 0, quantity);
            let events = read_all(&rq, &stream, chunk);
            prop_assert_eq!(events, vec![ReadEvent::Complete(repr)]);
        }
    }
}
