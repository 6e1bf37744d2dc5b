#!/usr/bin/env python3
"""Rewrites a Linux cooked (SLL, linktype 113) pcap as Ethernet, so it can be replayed onto a
veth: each frame gets a 14-byte Ethernet header (the SLL source address when it is a MAC, the
protocol as EtherType) in place of the 16-byte SLL header.   sll2eth.py IN.pcap OUT.pcap"""
import struct
import sys


def main(src, dst):
    data = open(src, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    hdr = list(struct.unpack(e + "IHHiIII", data[:24]))
    if hdr[6] != 113:
        sys.exit(f"{src}: linktype {hdr[6]}, not Linux SLL (113)")
    hdr[6] = 1
    out = [struct.pack(e + "IHHiIII", *hdr)]
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack(e + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(pkt) < 16:
            continue
        alen = struct.unpack("!H", pkt[4:6])[0]
        smac = pkt[6:12] if alen == 6 else b"\x02\x00\x00\x00\x00\x01"
        eth = b"\x02\x00\x00\x00\x00\x02" + smac + pkt[14:16]
        frame = eth + pkt[16:]
        out.append(struct.pack(e + "IIII", sec, frac, len(frame), wirelen - 2) + frame)
    open(dst, "wb").write(b"".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
