#!/usr/bin/env python3
"""Writes the seed corpora of the radio fuzz targets from a radiotap pcap (by default the
independent scapy fixture, tests/fixtures/independent/scapy-radiotap.pcap):
  seeds/pcap/      the file itself and its first 1, 2 and 5 records as files of their own
  seeds/radiotap/  each record's bytes (radiotap header first)
  seeds/ieee80211/ each record's 802.11 frame (after the radiotap header)
  seeds/presence/  a selector byte 0 (radiotap) then each record's bytes
Usage: from_pcap.py [PCAP]   (run from edge/wire/fuzz)"""
import os
import struct
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "../../../tests/fixtures/independent/scapy-radiotap.pcap"
raw = open(src, "rb").read()
magic = raw[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
header, off, records = raw[:24], 24, []
while off + 16 <= len(raw):
    _, _, incl, _ = struct.unpack(endian + "IIII", raw[off:off + 16])
    records.append((raw[off:off + 16 + incl], raw[off + 16:off + 16 + incl]))
    off += 16 + incl


def write(kind, name, data):
    os.makedirs(os.path.join("seeds", kind), exist_ok=True)
    with open(os.path.join("seeds", kind, name), "wb") as f:
        f.write(data)


write("pcap", "whole", raw)
for n in (1, 2, 5):
    write("pcap", "first_%d" % n, header + b"".join(r for r, _ in records[:n]))
for i, (_, data) in enumerate(records):
    write("radiotap", "rec_%02d" % i, data)
    write("presence", "rec_%02d" % i, b"\x00" + data)
    if len(data) >= 4:
        rt_len = struct.unpack("<H", data[2:4])[0]
        write("ieee80211", "rec_%02d" % i, data[rt_len:])
print("%d records from %s" % (len(records), src))
