#!/usr/bin/env python3
"""Prints the Interface Statistics Blocks of a pcapng file, one line each:
   <interface name> ifrecv=<n> ifdrop=<n>
Parsed here, independently of bpftap's writer (host byte order files of any endianness)."""
import struct
import sys


def main(path):
    data = open(path, "rb").read()
    off, names, order = 0, [], "<"
    while off + 12 <= len(data):
        btype = struct.unpack_from(order + "I", data, off)[0]
        if btype == 0x0A0D0D0A:
            order = "<" if struct.unpack_from("<I", data, off + 8)[0] == 0x1A2B3C4D else ">"
            names = []
        blen = struct.unpack_from(order + "I", data, off + 4)[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB: options after 8 bytes
            names.append(dict(options(body[8:], order)).get(2, b"?").decode())
        elif btype == 5:  # ISB: interface id, timestamp, options
            iface = struct.unpack_from(order + "I", body, 0)[0]
            opts = dict(options(body[12:], order))
            recv = struct.unpack(order + "Q", opts[4])[0] if 4 in opts else None
            drop = struct.unpack(order + "Q", opts[5])[0] if 5 in opts else None
            print(f"{names[iface] if iface < len(names) else iface} ifrecv={recv} ifdrop={drop}")
        off += blen


def options(b, order):
    i = 0
    while i + 4 <= len(b):
        code, length = struct.unpack_from(order + "HH", b, i)
        if code == 0:
            return
        yield code, b[i + 4:i + 4 + length]
        i += 4 + ((length + 3) & ~3)


if __name__ == "__main__":
    main(sys.argv[1])
