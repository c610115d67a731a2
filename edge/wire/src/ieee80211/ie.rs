//! Information elements (`u8 id, u8 len, data`) of 802.11 management frame bodies: the [`Iter`]
//! walker and an emitter for `(id, data)` lists.

use crate::bytes::{put, slice, u8_at};
use crate::error::{Error, Result};

/// SSID.
pub const SSID: u8 = 0;
/// Supported Rates.
pub const SUPPORTED_RATES: u8 = 1;
/// DS Parameter Set (current channel).
pub const DS_PARAMETER: u8 = 3;
/// HT Capabilities.
pub const HT_CAPABILITIES: u8 = 45;
/// Extended Supported Rates.
pub const EXTENDED_RATES: u8 = 50;
/// Supported Operating Classes.
pub const SUPPORTED_OPERATING_CLASSES: u8 = 59;
/// Interworking.
pub const INTERWORKING: u8 = 107;
/// Extended Capabilities.
pub const EXTENDED_CAPABILITIES: u8 = 127;
/// VHT Capabilities.
pub const VHT_CAPABILITIES: u8 = 191;
/// Vendor Specific (OUI(3) + type, then vendor data).
pub const VENDOR_SPECIFIC: u8 = 221;
/// Element ID Extension (first data byte = extension id).
pub const EXTENSION: u8 = 255;

/// One information element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Element<'a> {
    /// Element id.
    pub id: u8,
    /// Element data (without id and length).
    pub data: &'a [u8],
}

impl Element<'_> {
    /// Extension id of an [`EXTENSION`] element.
    pub fn ext_id(&self) -> Option<u8> {
        (self.id == EXTENSION).then(|| self.data.first().copied())?
    }

    /// `(OUI, type)` of a [`VENDOR_SPECIFIC`] element with at least 4 data bytes.
    pub fn vendor_oui_type(&self) -> Option<([u8; 3], u8)> {
        if self.id != VENDOR_SPECIFIC {
            return None;
        }
        let [a, b, c, t] = *self.data.first_chunk::<4>()?;
        Some(([a, b, c], t))
    }
}

/// Iterator over the elements of a byte run. A truncated trailing element yields one
/// `Err(Error::Truncated)` and ends the iteration.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iter<'a> {
    /// Walks `data` from its first byte.
    pub const fn new(data: &'a [u8]) -> Self {
        Iter {
            data,
            pos: 0,
            done: false,
        }
    }

    /// Checks that the whole run parses.
    pub fn validate(data: &'a [u8]) -> Result<()> {
        Iter::new(data).try_for_each(|e| e.map(|_| ()))
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Element<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let have = self.data.len() - self.pos;
        if have < 2 {
            self.done = true;
            return Some(Err(Error::truncated(
                "information element",
                self.pos,
                2,
                have,
            )));
        }
        let id = u8_at(self.data, self.pos);
        let len = usize::from(u8_at(self.data, self.pos + 1));
        if have < 2 + len {
            self.done = true;
            return Some(Err(Error::truncated(
                "information element",
                self.pos,
                2 + len,
                have,
            )));
        }
        let start = self.pos + 2;
        self.pos = start + len;
        Some(Ok(Element {
            id,
            data: slice(self.data, start, start + len),
        }))
    }
}

/// Bytes needed to emit `ies`.
pub fn buffer_len(ies: &[(u8, &[u8])]) -> usize {
    ies.iter().map(|(_, d)| 2 + d.len()).sum()
}

/// Writes `ies` into `buf` and returns the bytes written. An element longer than 255 bytes is
/// an error.
pub fn emit(ies: &[(u8, &[u8])], buf: &mut [u8]) -> Result<usize> {
    Error::check_room("information elements", buffer_len(ies), buf.len())?;
    let mut pos = 0;
    for &(id, data) in ies {
        let len = u8::try_from(data.len())
            .map_err(|_| Error::malformed("information element longer than 255", pos))?;
        put(buf, pos, &[id, len]);
        put(buf, pos + 2, data);
        pos += 2 + data.len();
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_and_truncation() {
        let good = [0u8, 0, 1, 2, 0x82, 0x84, 221, 4, 0x00, 0x50, 0xf2, 4];
        let ies: Vec<_> = Iter::new(&good).collect::<Result<_>>().unwrap();
        assert_eq!(ies.len(), 3);
        assert_eq!(ies[2].vendor_oui_type(), Some(([0x00, 0x50, 0xf2], 4)));
        for cut in 1..good.len() {
            let n_ok = Iter::new(&good[..cut]).filter(|e| e.is_ok()).count();
            let n_err = Iter::new(&good[..cut]).filter(|e| e.is_err()).count();
            let complete = [2usize, 6, 12].contains(&cut);
            assert_eq!(n_err, usize::from(!complete), "cut {cut}");
            assert!(n_ok <= 3);
        }
        let mut buf = [0u8; 12];
        let raw: [(u8, &[u8]); 3] = [(0, &[]), (1, &[0x82, 0x84]), (221, &[0, 0x50, 0xf2, 4])];
        assert_eq!(emit(&raw, &mut buf), Ok(12));
        assert_eq!(buf, good);
        assert!(emit(&raw, &mut buf[..11]).is_err());
        assert!(emit(&[(1, &[0u8; 256][..])], &mut [0u8; 300]).is_err());
    }

    #[test]
    fn ext_id() {
        let e = Element {
            id: EXTENSION,
            data: &[35, 1],
        };
        assert_eq!(e.ext_id(), Some(35));
        assert_eq!(Element { id: 1, data: &[35] }.ext_id(), None);
    }
}
