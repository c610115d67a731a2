//! Radiotap (pcap linktype 127): the [`Header`] view, its present-word and field walkers, and
//! [`Repr`], the handful of fields store-edge uses (RSSI, channel, FCS flags, per-antenna signal).
//!
//! Layout (Linux `Documentation/networking/radiotap-headers.rst`, `net/wireless/radiotap.c`):
//! `u8 version, u8 pad, le16 it_len, le32 present[...]`, then the fields of every set bit in
//! bit order, each aligned to its natural alignment measured from the start of the header.

use crate::bytes::{le16, le32, le64, put, slice, tail, u8_at};
use crate::error::{Error, Result};

/// Byte offsets of the fixed part.
mod field {
    pub const VERSION: usize = 0;
    pub const PAD: usize = 1;
    pub const LEN: usize = 2;
    pub const PRESENT: usize = 4;
    /// Fixed part: version, pad, it_len and the first present word.
    pub const FIXED_LEN: usize = 8;
}

/// Present-bit numbers of the default radiotap namespace.
pub mod bits {
    /// TSFT: u64 microseconds.
    pub const TSFT: u32 = 0;
    /// Flags: u8, see `FLAG_*`.
    pub const FLAGS: u32 = 1;
    /// Rate: u8, 500 kb/s units.
    pub const RATE: u32 = 2;
    /// Channel: le16 MHz, le16 flags.
    pub const CHANNEL: u32 = 3;
    /// FHSS: two u8.
    pub const FHSS: u32 = 4;
    /// dBm antenna signal: s8.
    pub const DBM_ANTSIGNAL: u32 = 5;
    /// dBm antenna noise: s8.
    pub const DBM_ANTNOISE: u32 = 6;
    /// Antenna index: u8.
    pub const ANTENNA: u32 = 11;
    /// RX flags: le16.
    pub const RX_FLAGS: u32 = 14;
    /// Restart radiotap numbering in the next present word.
    pub const RADIOTAP_NAMESPACE: u32 = 29;
    /// Next present word belongs to a vendor namespace.
    pub const VENDOR_NAMESPACE: u32 = 30;
    /// Another present word follows.
    pub const EXT: u32 = 31;
}

/// Flags field (bit 1): short preamble.
pub const FLAG_SHORT_PREAMBLE: u8 = 0x02;
/// Flags field (bit 1): the frame ends with a 4-byte FCS.
pub const FLAG_FCS_AT_END: u8 = 0x10;
/// Flags field (bit 1): padding between the 802.11 header and payload.
pub const FLAG_DATA_PAD: u8 = 0x20;
/// Flags field (bit 1): the frame failed its FCS check.
pub const FLAG_BAD_FCS: u8 = 0x40;

/// Channel flags: 2 GHz spectrum.
pub const CHAN_2GHZ: u16 = 0x0080;
/// Channel flags: 5 GHz spectrum.
pub const CHAN_5GHZ: u16 = 0x0100;

/// Size and alignment of a default-namespace field, `None` for bits this crate does not know
/// (the walk stops there, as Linux does, because the layout of what follows is unknowable).
pub const fn field_size_align(bit: u32) -> Option<(usize, usize)> {
    Some(match bit {
        0 => (8, 8),
        1 | 2 => (1, 1),
        3 => (4, 2),
        4 => (2, 2),
        5 | 6 => (1, 1),
        7..=9 => (2, 2),
        10..=13 => (1, 1),
        14 | 15 => (2, 2),
        16 | 17 => (1, 1),
        18 => (8, 4),
        19 => (3, 1),
        20 => (8, 4),
        21 => (12, 2),
        22 => (12, 8),
        23 | 24 => (12, 2),
        25 => (6, 2),
        26 => (1, 1),
        27 => (4, 2),
        _ => return None,
    })
}

/// Rounds `pos` up to a multiple of `align` (a power of two).
#[inline]
const fn align_up(pos: usize, align: usize) -> usize {
    (pos + align - 1) & !(align - 1)
}

/// A read-only or read-write view of a radiotap header followed by its 802.11 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` without checking it. Getters return zeros for missing bytes.
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Wraps `buffer` and runs [`Header::check_len`].
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let h = Header::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the fixed part, `it_len` against the buffer and the present-word chain against
    /// `it_len`. Fields themselves are checked while walking ([`Header::fields`]).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::FIXED_LEN {
            return Err(Error::truncated(
                "radiotap header",
                0,
                field::FIXED_LEN,
                data.len(),
            ));
        }
        if self.version() != 0 {
            return Err(Error::UnsupportedVersion {
                what: "radiotap",
                version: u32::from(self.version()),
            });
        }
        let it_len = usize::from(self.len());
        if it_len < field::FIXED_LEN {
            return Err(Error::malformed("radiotap it_len below 8", field::LEN));
        }
        if it_len > data.len() {
            return Err(Error::truncated("radiotap header", 0, it_len, data.len()));
        }
        self.data_start().map(|_| ())
    }

    /// Offset of the first field: just past the last present word. Fails if the chain of
    /// present words (bit 31) runs past `it_len`.
    fn data_start(&self) -> Result<usize> {
        let hdr = self.header_bytes();
        let mut off = field::PRESENT;
        loop {
            if off + 4 > hdr.len() {
                return Err(Error::malformed("radiotap present words past it_len", off));
            }
            if le32(hdr, off) & (1 << bits::EXT) == 0 {
                return Ok(off + 4);
            }
            off += 4;
        }
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `it_version` (always 0 today).
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VERSION)
    }

    /// `it_pad` (unused).
    pub fn pad(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::PAD)
    }

    /// `it_len`: the length of the whole radiotap header; the 802.11 frame starts there.
    #[allow(clippy::len_without_is_empty)] // the field is named it_len; "empty" means nothing.
    pub fn len(&self) -> u16 {
        le16(self.buffer.as_ref(), field::LEN)
    }

    /// The first present word.
    pub fn present(&self) -> u32 {
        le32(self.buffer.as_ref(), field::PRESENT)
    }

    /// The radiotap header bytes (`..it_len`, clipped to the buffer).
    pub fn header_bytes(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        slice(data, 0, usize::from(self.len()).min(data.len()))
    }

    /// The 802.11 frame after the header (FCS included if `FLAG_FCS_AT_END`).
    pub fn payload(&self) -> &[u8] {
        // An unchecked it_len below 8 would otherwise hand header bytes out as the frame.
        tail(self.buffer.as_ref(), self.payload_offset())
    }

    /// Offset of the 802.11 frame: `it_len` (at least 8).
    pub fn payload_offset(&self) -> usize {
        usize::from(self.len()).max(field::FIXED_LEN)
    }

    /// Every present word, extended bitmaps (bit 31 chaining) included, stopping at `it_len`.
    pub fn present_words(&self) -> PresentWords<'_> {
        PresentWords {
            hdr: self.header_bytes(),
            off: field::PRESENT,
            done: false,
        }
    }

    /// Walks the fields of every namespace in order. See [`Fields`].
    pub fn fields(&self) -> Fields<'_> {
        let hdr = self.header_bytes();
        match self.data_start() {
            Ok(pos) => Fields {
                hdr,
                word_off: field::PRESENT,
                word: le32(hdr, field::PRESENT),
                bit: 0,
                arg_index: 0,
                vendor: false,
                next_vendor: None,
                reset_on_ext: false,
                ns_index: 0,
                pos,
                state: WalkState::Walking,
            },
            Err(e) => Fields {
                hdr,
                word_off: 0,
                word: 0,
                bit: 0,
                arg_index: 0,
                vendor: false,
                next_vendor: None,
                reset_on_ext: false,
                ns_index: 0,
                pos: 0,
                state: WalkState::Failed(e),
            },
        }
    }
}

/// Iterator over the present words of a [`Header`].
#[derive(Debug, Clone)]
pub struct PresentWords<'a> {
    hdr: &'a [u8],
    off: usize,
    done: bool,
}

impl Iterator for PresentWords<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.done || self.off + 4 > self.hdr.len() {
            return None;
        }
        let w = le32(self.hdr, self.off);
        self.off += 4;
        self.done = w & (1 << bits::EXT) == 0;
        Some(w)
    }
}

/// Which namespace a [`Field`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// The radiotap namespace (the default one, or one restarted by bit 29).
    Radiotap,
    /// A vendor namespace (bit 30). Its content is opaque: it is returned as one blob.
    Vendor {
        /// Vendor OUI.
        oui: [u8; 3],
        /// Vendor sub-namespace.
        sub_ns: u8,
    },
}

/// One field found by [`Fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// 0 for the first namespace, then +1 at each namespace switch (bit 29 or 30): with
    /// mac80211 captures, namespace `n >= 1` describes antenna chain `n - 1`.
    pub ns_index: u8,
    /// The namespace.
    pub namespace: Namespace,
    /// Bit number in the namespace (see [`bits`]); 0 for a vendor blob.
    pub bit: u8,
    /// Offset of `data` from the start of the radiotap header.
    pub offset: usize,
    /// The field bytes (a vendor blob: all `skip_length` bytes).
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
enum WalkState {
    Walking,
    Failed(Error),
    Done,
}

/// Walker over the fields of a radiotap header, modelled on Linux `ieee80211_radiotap_iterator`:
/// fields are aligned from the header start, bit 29 restarts radiotap numbering for the next
/// word, bit 30 opens a vendor namespace (`OUI(3) sub_ns(1) le16 skip_length`, aligned to 2,
/// then `skip_length` bytes that are returned as one blob), and an unknown radiotap bit ends
/// the walk without error (nothing after it can be located). A field running past `it_len`
/// yields one `Err` and ends the walk.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    hdr: &'a [u8],
    word_off: usize,
    word: u32,
    /// Next bit of `word` to look at.
    bit: u32,
    /// Field number in the current namespace (continues across words unless reset).
    arg_index: u32,
    /// The current namespace is a vendor one (its fields are skipped as a blob).
    vendor: bool,
    /// Namespace chosen by bit 29/30 of the current word for the next word.
    next_vendor: Option<bool>,
    reset_on_ext: bool,
    ns_index: u8,
    /// Data cursor, from the header start.
    pos: usize,
    state: WalkState,
}

impl<'a> Fields<'a> {
    fn fail(&mut self, e: Error) -> Option<Result<Field<'a>>> {
        self.state = WalkState::Done;
        Some(Err(e))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.state {
            WalkState::Walking => {}
            WalkState::Failed(e) => return self.fail(e),
            WalkState::Done => return None,
        }
        loop {
            let rest = self.word.checked_shr(self.bit).unwrap_or(0);
            if rest == 0 {
                // No more bits, and bit 31 was not set: the walk is complete.
                self.state = WalkState::Done;
                return None;
            }
            let skip = rest.trailing_zeros();
            self.bit += skip;
            self.arg_index += skip;
            let bit = self.bit;
            // Every branch below consumes this bit.
            self.bit += 1;
            self.arg_index += 1;
            match bit {
                bits::RADIOTAP_NAMESPACE => {
                    self.next_vendor = Some(false);
                    self.reset_on_ext = true;
                }
                bits::VENDOR_NAMESPACE => {
                    let at = align_up(self.pos, 2);
                    if at + 6 > self.hdr.len() {
                        return self.fail(Error::malformed("radiotap vendor namespace", at));
                    }
                    let oui = [
                        u8_at(self.hdr, at),
                        u8_at(self.hdr, at + 1),
                        u8_at(self.hdr, at + 2),
                    ];
                    let sub_ns = u8_at(self.hdr, at + 3);
                    let skip_len = usize::from(le16(self.hdr, at + 4));
                    let start = at + 6;
                    let end = start + skip_len;
                    if end > self.hdr.len() {
                        return self.fail(Error::malformed("radiotap vendor data past it_len", at));
                    }
                    self.pos = end;
                    self.next_vendor = Some(true);
                    self.reset_on_ext = true;
                    return Some(Ok(Field {
                        ns_index: self.ns_index.saturating_add(1),
                        namespace: Namespace::Vendor { oui, sub_ns },
                        bit: 0,
                        offset: start,
                        data: slice(self.hdr, start, end),
                    }));
                }
                bits::EXT => {
                    self.word_off += 4;
                    // data_start() proved the chain fits in it_len.
                    self.word = le32(self.hdr, self.word_off);
                    self.bit = 0;
                    if self.reset_on_ext {
                        self.arg_index = 0;
                        self.ns_index = self.ns_index.saturating_add(1);
                        self.vendor = self.next_vendor.take().unwrap_or(false);
                    }
                    self.reset_on_ext = false;
                }
                _ if self.vendor => {
                    // Vendor fields were skipped with the blob when the namespace opened.
                }
                _ => {
                    let Some((size, align)) = field_size_align(self.arg_index - 1) else {
                        // Unknown radiotap bit: later offsets are unknowable; stop here.
                        self.state = WalkState::Done;
                        return None;
                    };
                    let at = align_up(self.pos, align);
                    let end = at + size;
                    if end > self.hdr.len() {
                        return self.fail(Error::malformed("radiotap field past it_len", at));
                    }
                    self.pos = end;
                    return Some(Ok(Field {
                        ns_index: self.ns_index,
                        namespace: Namespace::Radiotap,
                        // Known bits are below 32.
                        bit: (self.arg_index - 1) as u8,
                        offset: at,
                        data: slice(self.hdr, at, end),
                    }));
                }
            }
        }
    }
}

/// Channel field (bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Channel {
    /// Centre frequency, MHz.
    pub freq_mhz: u16,
    /// Channel flags (`CHAN_2GHZ`, `CHAN_5GHZ`, ...).
    pub flags: u16,
}

/// Maximum number of per-antenna signals kept by [`AntennaSignals`].
pub const MAX_ANTENNAS: usize = 8;

/// Per-antenna signals from the extra radiotap namespaces: a fixed-capacity list of
/// `(antenna_index, dbm)` so that parsing never allocates.
#[derive(Clone, Copy, Default)]
pub struct AntennaSignals {
    items: [(Option<u8>, i8); MAX_ANTENNAS],
    len: u8,
}

impl AntennaSignals {
    /// An empty list.
    pub const fn new() -> Self {
        AntennaSignals {
            items: [(None, 0); MAX_ANTENNAS],
            len: 0,
        }
    }

    /// Builds a list from the first [`MAX_ANTENNAS`] entries of `items`.
    pub fn from_slice(items: &[(Option<u8>, i8)]) -> Self {
        let mut s = Self::new();
        for &(a, d) in items {
            s.push(a, d);
        }
        s
    }

    /// Appends an entry; returns false (and drops it) when full.
    pub fn push(&mut self, antenna_index: Option<u8>, dbm: i8) -> bool {
        match self.items.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = (antenna_index, dbm);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The entries.
    pub fn as_slice(&self) -> &[(Option<u8>, i8)] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Strongest signal, dBm.
    pub fn max_dbm(&self) -> Option<i8> {
        self.as_slice().iter().map(|&(_, d)| d).max()
    }
}

impl PartialEq for AntennaSignals {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for AntennaSignals {}

impl core::fmt::Debug for AntennaSignals {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The radiotap fields store-edge uses. Other fields are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// TSFT, µs.
    pub tsft: Option<u64>,
    /// Flags (`FLAG_*`).
    pub flags: Option<u8>,
    /// Rate, 500 kb/s units.
    pub rate: Option<u8>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Combined dBm antenna signal of the first namespace.
    pub antenna_signal_dbm: Option<i8>,
    /// dBm antenna noise.
    pub antenna_noise_dbm: Option<i8>,
    /// Antenna index of the first namespace.
    pub antenna: Option<u8>,
    /// RX flags.
    pub rx_flags: Option<u16>,
    /// Signals of the extra radiotap namespaces (one per antenna chain with mac80211).
    pub antenna_signals: AntennaSignals,
}

impl Repr {
    /// Collects the known fields. Extra radiotap namespaces that carry a dBm signal each
    /// contribute one `antenna_signals` entry (with their antenna index, if any).
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>) -> Result<Repr> {
        header.check_len()?;
        let mut r = Repr::default();
        // Signal/antenna of the extra namespace being walked, flushed at each switch.
        let mut cur_ns = 0u8;
        let mut pending: (Option<u8>, Option<i8>) = (None, None);
        for f in header.fields() {
            let f = f?;
            if f.ns_index != cur_ns {
                if let (a, Some(d)) = pending {
                    r.antenna_signals.push(a, d);
                }
                pending = (None, None);
                cur_ns = f.ns_index;
            }
            if f.namespace != Namespace::Radiotap {
                continue;
            }
            let d = f.data;
            if f.ns_index == 0 {
                match u32::from(f.bit) {
                    bits::TSFT => r.tsft = Some(le64(d, 0)),
                    bits::FLAGS => r.flags = Some(u8_at(d, 0)),
                    bits::RATE => r.rate = Some(u8_at(d, 0)),
                    bits::CHANNEL => {
                        r.channel = Some(Channel {
                            freq_mhz: le16(d, 0),
                            flags: le16(d, 2),
                        })
                    }
                    bits::DBM_ANTSIGNAL => r.antenna_signal_dbm = Some(u8_at(d, 0) as i8),
                    bits::DBM_ANTNOISE => r.antenna_noise_dbm = Some(u8_at(d, 0) as i8),
                    bits::ANTENNA => r.antenna = Some(u8_at(d, 0)),
                    bits::RX_FLAGS => r.rx_flags = Some(le16(d, 0)),
                    _ => {}
                }
            } else {
                match u32::from(f.bit) {
                    bits::DBM_ANTSIGNAL => pending.1 = Some(u8_at(d, 0) as i8),
                    bits::ANTENNA => pending.0 = Some(u8_at(d, 0)),
                    _ => {}
                }
            }
        }
        if let (a, Some(d)) = pending {
            r.antenna_signals.push(a, d);
        }
        Ok(r)
    }

    /// The RSSI to use: the combined signal, else the strongest per-antenna signal.
    pub fn rssi_dbm(&self) -> Option<i8> {
        self.antenna_signal_dbm
            .or_else(|| self.antenna_signals.max_dbm())
    }

    /// The frame carries a trailing FCS.
    pub fn fcs_at_end(&self) -> bool {
        self.flags.is_some_and(|f| f & FLAG_FCS_AT_END != 0)
    }

    /// The driver says the FCS check failed.
    pub fn bad_fcs(&self) -> bool {
        self.flags.is_some_and(|f| f & FLAG_BAD_FCS != 0)
    }

    /// The first present word this Repr emits.
    fn first_word(&self) -> u32 {
        let mut w = 0u32;
        let mut set = |present: bool, bit: u32| {
            if present {
                w |= 1 << bit;
            }
        };
        set(self.tsft.is_some(), bits::TSFT);
        set(self.flags.is_some(), bits::FLAGS);
        set(self.rate.is_some(), bits::RATE);
        set(self.channel.is_some(), bits::CHANNEL);
        set(self.antenna_signal_dbm.is_some(), bits::DBM_ANTSIGNAL);
        set(self.antenna_noise_dbm.is_some(), bits::DBM_ANTNOISE);
        set(self.antenna.is_some(), bits::ANTENNA);
        set(self.rx_flags.is_some(), bits::RX_FLAGS);
        if !self.antenna_signals.is_empty() {
            w |= 1 << bits::RADIOTAP_NAMESPACE | 1 << bits::EXT;
        }
        w
    }

    /// Lays the header out, calling `out(offset, bytes)` for every byte run; returns `it_len`.
    fn layout(&self, mut out: impl FnMut(usize, &[u8])) -> usize {
        let signals = self.antenna_signals.as_slice();
        // Fixed part, then one word per antenna (mac80211 layout).
        let mut pos = field::FIXED_LEN + 4 * signals.len();
        out(field::PRESENT, &self.first_word().to_le_bytes());
        for (i, &(antenna, _)) in signals.iter().enumerate() {
            let mut w = 1u32 << bits::DBM_ANTSIGNAL;
            if antenna.is_some() {
                w |= 1 << bits::ANTENNA;
            }
            if i + 1 < signals.len() {
                w |= 1 << bits::RADIOTAP_NAMESPACE | 1 << bits::EXT;
            }
            out(field::FIXED_LEN + 4 * i, &w.to_le_bytes());
        }
        let mut field = |pos: &mut usize, align: usize, bytes: &[u8]| {
            *pos = align_up(*pos, align);
            out(*pos, bytes);
            *pos += bytes.len();
        };
        if let Some(v) = self.tsft {
            field(&mut pos, 8, &v.to_le_bytes());
        }
        if let Some(v) = self.flags {
            field(&mut pos, 1, &[v]);
        }
        if let Some(v) = self.rate {
            field(&mut pos, 1, &[v]);
        }
        if let Some(c) = self.channel {
            let [a, b] = c.freq_mhz.to_le_bytes();
            let [c0, c1] = c.flags.to_le_bytes();
            field(&mut pos, 2, &[a, b, c0, c1]);
        }
        if let Some(v) = self.antenna_signal_dbm {
            field(&mut pos, 1, &v.to_le_bytes());
        }
        if let Some(v) = self.antenna_noise_dbm {
            field(&mut pos, 1, &v.to_le_bytes());
        }
        if let Some(v) = self.antenna {
            field(&mut pos, 1, &[v]);
        }
        if let Some(v) = self.rx_flags {
            field(&mut pos, 2, &v.to_le_bytes());
        }
        for &(antenna, dbm) in signals {
            field(&mut pos, 1, &dbm.to_le_bytes());
            if let Some(a) = antenna {
                field(&mut pos, 1, &[a]);
            }
        }
        pos
    }

    /// Length of the emitted header (`it_len`).
    pub fn buffer_len(&self) -> usize {
        self.layout(|_, _| {})
    }

    /// Writes the header into `buf[..buffer_len()]` (alignment padding zeroed) and returns its
    /// length. With `antenna_signals` it uses the mac80211 layout: first word with bits 29 and
    /// 31, then one word per antenna with bits 5, 11 and 29/31 chaining.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        Error::check_room("radiotap header", len, buf.len())?;
        let it_len = u16::try_from(len).map_err(|_| Error::malformed("radiotap it_len", 2))?;
        if let Some(b) = buf.get_mut(..len) {
            b.fill(0);
        }
        put(buf, field::LEN, &it_len.to_le_bytes());
        self.layout(|off, bytes| put(buf, off, bytes));
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antenna_signals_capacity() {
        let mut s = AntennaSignals::new();
        for i in 0..MAX_ANTENNAS {
            assert!(s.push(Some(i as u8), -(i as i8)));
        }
        assert!(!s.push(None, 0));
        assert_eq!(s.len(), MAX_ANTENNAS);
        assert_eq!(s.max_dbm(), Some(0));
        assert_eq!(AntennaSignals::from_slice(s.as_slice()), s);
    }

    #[test]
    fn align() {
        assert_eq!(align_up(12, 8), 16);
        assert_eq!(align_up(19, 2), 20);
        assert_eq!(align_up(16, 8), 16);
    }

    #[test]
    fn unchecked_short_buffer_never_panics() {
        let h = Header::new_unchecked(&[0u8, 0, 0xff][..]);
        assert_eq!(h.len(), 0);
        assert_eq!(h.present_words().count(), 0);
        assert!(h.fields().next().is_some_and(|r| r.is_err()));
        assert!(h.payload().is_empty());
    }
}
