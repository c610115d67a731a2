//! pcap / pcapng: header views and Reprs, writer → reader round trips, swapped byte order.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use edge_wire::pcap::{
    self, ByteOrder, FileHeader, FileHeaderRepr, RecordHeader, RecordHeaderRepr, Records,
    LINKTYPE_IEEE802_11_RADIOTAP,
};
use edge_wire::{pcapng, Error};

#[test]
fn file_header_round_trip() {
    let r = FileHeaderRepr {
        nanosecond: true,
        ..FileHeaderRepr::new(LINKTYPE_IEEE802_11_RADIOTAP, 4096)
    };
    let mut buf = [0u8; 24];
    assert_eq!(r.emit(&mut buf), Ok(24));
    assert_eq!(&buf[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    let h = FileHeader::new_checked(&buf[..]).unwrap();
    assert_eq!(h.byte_order(), ByteOrder::Little);
    assert!(h.nanosecond());
    assert_eq!(FileHeaderRepr::parse(&h).unwrap(), r);
    assert!(r.emit(&mut buf[..23]).is_err());
}

#[test]
fn record_header_round_trip() {
    let r = RecordHeaderRepr {
        ts_sec: 1_714_529_700,
        ts_frac: 123_456,
        incl_len: 60,
        orig_len: 1500,
    };
    let mut buf = [0u8; 16];
    assert_eq!(r.emit(&mut buf), Ok(16));
    let h = RecordHeader::new_checked(&buf[..], ByteOrder::Little).unwrap();
    assert_eq!(RecordHeaderRepr::parse(&h).unwrap(), r);
    assert_eq!(r.ts_micros(false), 1_714_529_700_123_456);
    assert!(RecordHeader::new_checked(&buf[..15], ByteOrder::Little).is_err());
}

#[test]
fn swapped_endian_header() {
    // Big-endian writer, microseconds, v2.4, snaplen 65535, linktype 127.
    let be = [
        0xa1, 0xb2, 0xc3, 0xd4, // magic (big-endian)
        0x00, 0x02, // version major 2
        0x00, 0x04, // version minor 4
        0x00, 0x00, 0x00, 0x00, // thiszone
        0x00, 0x00, 0x00, 0x00, // sigfigs
        0x00, 0x00, 0xff, 0xff, // snaplen 65535
        0x00, 0x00, 0x00, 0x7f, // linktype 127
    ];
    let h = FileHeader::new_checked(&be[..]).unwrap();
    assert_eq!(h.byte_order(), ByteOrder::Big);
    assert!(!h.nanosecond());
    assert_eq!(
        FileHeaderRepr::parse(&h).unwrap(),
        FileHeaderRepr::new(LINKTYPE_IEEE802_11_RADIOTAP, 65535)
    );
    // A big-endian record: ts 1 s + 2 µs, 3 bytes.
    let mut file = be.to_vec();
    file.extend_from_slice(&[
        0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3, 0xaa, 0xbb, 0xcc,
    ]);
    let (_, mut recs) = Records::new(&file).unwrap();
    let rec = recs.next().unwrap().unwrap();
    assert_eq!(rec.header.ts_micros(false), 1_000_002);
    assert_eq!(rec.data, [0xaa, 0xbb, 0xcc]);
    assert!(recs.next().is_none());
    // Big-endian nanosecond magic too.
    let mut ns = be;
    ns[..4].copy_from_slice(&[0xa1, 0xb2, 0x3c, 0x4d]);
    assert!(FileHeader::new_checked(&ns[..]).unwrap().nanosecond());
}

#[test]
fn bad_magic_and_truncation() {
    let mut buf = [0u8; 24];
    FileHeaderRepr::new(105, 100).emit(&mut buf).unwrap();
    for cut in 0..24 {
        assert!(matches!(
            FileHeader::new_checked(&buf[..cut]),
            Err(Error::Truncated { .. })
        ));
    }
    buf[0] = 0;
    assert!(matches!(
        FileHeader::new_checked(&buf[..]),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn writer_round_trip() {
    let mut w = pcap::Writer::new(Vec::new(), LINKTYPE_IEEE802_11_RADIOTAP, 8).unwrap();
    w.write_packet(1_714_529_700_000_001, b"short").unwrap();
    w.write_packet(1_714_529_701_999_999, b"longer than snaplen")
        .unwrap();
    // A frame the capturing driver cut short: 3 bytes kept of 40.
    w.write_record(1_714_529_702_000_000, b"cut", 40).unwrap();
    assert!(w.write_packet(-1, b"x").is_err());
    let file = w.into_inner();
    let (hdr, recs) = Records::new(&file).unwrap();
    assert_eq!(hdr, FileHeaderRepr::new(LINKTYPE_IEEE802_11_RADIOTAP, 8));
    let recs: Vec<_> = recs.collect::<Result<_, _>>().unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].header.ts_micros(false), 1_714_529_700_000_001);
    assert_eq!(recs[0].data, b"short");
    assert_eq!(recs[1].header.incl_len, 8);
    assert_eq!(recs[1].header.orig_len, 19);
    assert_eq!(recs[1].data, b"longer t");
    assert_eq!(recs[1].header.ts_micros(false), 1_714_529_701_999_999);
    assert_eq!((recs[2].header.incl_len, recs[2].header.orig_len), (3, 40));
    assert_eq!(recs[2].data, b"cut");
    // A truncated file yields one error, then stops.
    let cut = &file[..file.len() - 1];
    let (_, recs) = Records::new(cut).unwrap();
    let items: Vec<_> = recs.collect();
    assert_eq!(items.len(), 3);
    assert!(items[2].is_err());
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn pcapng_writer_blocks() {
    let mut w = pcapng::Writer::new(Vec::new(), LINKTYPE_IEEE802_11_RADIOTAP, 65535).unwrap();
    w.write_packet(0x0000_0001_0000_0005, b"abcde").unwrap();
    w.write_packet(7, b"").unwrap();
    assert!(w.write_packet(-5, b"x").is_err());
    let f = w.into_inner();
    // Walk the blocks: type, total length, trailing length copy.
    let mut blocks = Vec::new();
    let mut off = 0;
    while off < f.len() {
        let (ty, len) = (le32(&f, off), le32(&f, off + 4) as usize);
        assert_eq!(len % 4, 0);
        assert_eq!(le32(&f, off + len - 4) as usize, len);
        blocks.push((ty, off, len));
        off += len;
    }
    assert_eq!(off, f.len());
    let types: Vec<u32> = blocks.iter().map(|b| b.0).collect();
    assert_eq!(types, [pcapng::BLOCK_SHB, pcapng::BLOCK_IDB, 6, 6]);
    assert_eq!(le32(&f, 8), pcapng::BYTE_ORDER_MAGIC);
    let idb = blocks[1].1;
    assert_eq!(u16::from_le_bytes([f[idb + 8], f[idb + 9]]), 127);
    assert_eq!(le32(&f, idb + 12), 65535);
    let (_, epb, len) = blocks[2];
    assert_eq!(len, 32 + 8);
    assert_eq!(le32(&f, epb + 8), 0); // interface 0
    assert_eq!(le32(&f, epb + 12), 1); // ts high
    assert_eq!(le32(&f, epb + 16), 5); // ts low
    assert_eq!((le32(&f, epb + 20), le32(&f, epb + 24)), (5, 5));
    assert_eq!(&f[epb + 28..epb + 33], b"abcde");
    assert_eq!(&f[epb + 33..epb + 36], &[0, 0, 0]);
    assert_eq!(blocks[3].2, 32);
    // Linktypes beyond 16 bits cannot be written.
    assert!(pcapng::Writer::new(Vec::new(), 0x1_0000, 0).is_err());
}
