//! The 802.11 frame check sequence: CRC-32 (IEEE) over the MAC frame, sent little-endian.

/// CRC-32 of `frame` as the FCS field would carry it.
#[inline]
pub fn compute(frame: &[u8]) -> u32 {
    crc32fast::hash(frame)
}

/// Splits `frame_with_fcs` into `(frame, fcs_ok)`; `None` if it is shorter than 4 bytes.
#[inline]
pub fn split_check(frame_with_fcs: &[u8]) -> Option<(&[u8], bool)> {
    let cut = frame_with_fcs.len().checked_sub(4)?;
    let (frame, trailer) = frame_with_fcs.split_at_checked(cut)?;
    let want = u32::from_le_bytes(*trailer.first_chunk::<4>()?);
    Some((frame, compute(frame) == want))
}

/// Appends the FCS of `frame` (for emitters writing captures with `FLAG_FCS_AT_END`).
pub fn append_fcs(frame: &mut Vec<u8>) {
    let fcs = compute(frame);
    frame.extend_from_slice(&fcs.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_and_round_trip() {
        // The standard CRC-32 check value.
        assert_eq!(compute(b"123456789"), 0xCBF4_3926);
        let mut f = b"\x40\x00hello".to_vec();
        append_fcs(&mut f);
        assert_eq!(split_check(&f), Some((&b"\x40\x00hello"[..], true)));
        if let Some(last) = f.last_mut() {
            *last ^= 1;
        }
        assert_eq!(split_check(&f).map(|(_, ok)| ok), Some(false));
        assert_eq!(split_check(&[1, 2, 3]), None);
    }
}
