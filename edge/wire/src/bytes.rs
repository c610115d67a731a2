//! Bounds-checked little/big-endian reads and writes shared by all views.
//!
//! Views may be built with `new_unchecked` over short buffers, so every read falls back to zero
//! instead of panicking; `check_len` is what guarantees the value is real.

/// `N` bytes at `off`, if the buffer holds them.
#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..).and_then(|s| s.first_chunk::<N>()).copied()
}

/// Byte at `off`, or 0 past the end.
#[inline]
pub(crate) fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

/// Little-endian u16 at `off`, or 0 past the end.
#[inline]
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    array(b, off).map_or(0, u16::from_le_bytes)
}

/// Little-endian u32 at `off`, or 0 past the end.
#[inline]
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    array(b, off).map_or(0, u32::from_le_bytes)
}

/// Little-endian u64 at `off`, or 0 past the end.
#[inline]
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    array(b, off).map_or(0, u64::from_le_bytes)
}

/// Copies `src` to `buf[off..]`; silently does nothing if it does not fit. Emitters check the
/// total length first, so the silent branch is unreachable in practice.
#[inline]
pub(crate) fn put(buf: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = buf.get_mut(off..).and_then(|s| s.get_mut(..src.len())) {
        dst.copy_from_slice(src);
    }
}

/// `b[range]` or an empty slice when out of range.
#[inline]
pub(crate) fn slice(b: &[u8], start: usize, end: usize) -> &[u8] {
    b.get(start..end).unwrap_or(&[])
}

/// `b[start..]` or an empty slice when out of range.
#[inline]
pub(crate) fn tail(b: &[u8], start: usize) -> &[u8] {
    b.get(start..).unwrap_or(&[])
}
