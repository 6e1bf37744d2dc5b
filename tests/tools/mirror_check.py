#!/usr/bin/env python3
"""Checks a sampled / cut-off mirror capture against the reference capture of the source hook.

    mirror_check.py REF.pcap MIRROR.pcap [--cutoff BYTES] [--sample N] [--snaplen N]

Written independently of the BPF program, from the documented semantics (README, `bpftap
mirror`): a flow is (proto, {addr:port, addr:port}); the kernel's VLAN tag, which tcpdump puts
back at offset 12, is transparent; a TCP/UDP payload counts toward the cutoff; a packet is
mirrored when its flow carried fewer than BYTES of payload before it, and always with SYN, FIN
or RST; sampling keeps whole flows; a copy is the original cut to the snaplen (tag included). Prints a summary; exits 1 on any violation.
"""
import argparse
import struct
import sys
from collections import defaultdict


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + caplen], wirelen
        off += 16 + caplen


def parse(f, wirelen):
    """(flow key, tcp flags, payload bytes); key None for non-IP."""
    if len(f) < 14:
        return None, 0, 0
    et = struct.unpack("!H", f[12:14])[0]
    l3 = 14
    if et in (0x8100, 0x88A8) and len(f) >= 18:  # the tag the kernel held in metadata
        et = struct.unpack("!H", f[16:18])[0]
        l3 = 18
    end = wirelen
    if et == 0x0800 and len(f) >= l3 + 20 and f[l3] >> 4 == 4:
        tot = struct.unpack("!H", f[l3 + 2:l3 + 4])[0]
        if tot and l3 + tot < end:
            end = l3 + tot
        proto, src, dst = f[l3 + 9], f[l3 + 12:l3 + 16], f[l3 + 16:l3 + 20]
        l4 = l3 + (f[l3] & 0xF) * 4
        first = (struct.unpack("!H", f[l3 + 6:l3 + 8])[0] & 0x1FFF) == 0
    elif et == 0x86DD and len(f) >= l3 + 40 and f[l3] >> 4 == 6:
        plen = struct.unpack("!H", f[l3 + 4:l3 + 6])[0]
        if plen and l3 + 40 + plen < end:
            end = l3 + 40 + plen
        proto, src, dst = f[l3 + 6], f[l3 + 8:l3 + 24], f[l3 + 24:l3 + 40]
        l4 = l3 + 40
        first = True
    else:
        return None, 0, 0
    sport = dport = 0
    flags = 0
    hdr = 0
    if first and proto == 6 and len(f) >= l4 + 14:
        sport, dport = struct.unpack("!HH", f[l4:l4 + 4])
        flags = f[l4 + 13]
        hdr = (f[l4 + 12] >> 4) * 4
    elif first and proto == 17 and len(f) >= l4 + 4:
        sport, dport = struct.unpack("!HH", f[l4:l4 + 4])
        hdr = 8
    payload = max(0, end - l4 - hdr)
    a, b = (src, sport), (dst, dport)
    key = (proto,) + (a + b if a <= b else b + a)
    return key, flags, payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("mirror")
    ap.add_argument("--cutoff", type=int, default=1 << 62)
    ap.add_argument("--sample", type=int, default=1)
    ap.add_argument("--snaplen", type=int, default=0)
    a = ap.parse_args()

    ref = [(f, w) + parse(f, w) for f, w in frames(a.ref)]
    got = list(frames(a.mirror))
    # The mirror keeps the reference's order: walk both, matching each mirrored frame to the next
    # reference frame with the same (truncated) bytes.
    keep = a.snaplen or 1 << 30
    i = 0
    mirrored = [False] * len(ref)
    for g, _ in got:
        while i < len(ref) and ref[i][0][:keep] != g:
            i += 1
        if i == len(ref):
            print("FAIL: a mirrored frame is not in the reference (or out of order)")
            return 1
        if len(g) != min(ref[i][1], keep) or _ != len(g):
            print(f"FAIL: reference frame {i} of {ref[i][1]} bytes was mirrored as {len(g)} (wire length {_})")
            return 1
        mirrored[i] = True
        i += 1

    errors = []
    flows = defaultdict(list)
    for idx, (_, _, key, flags, payload) in enumerate(ref):
        if key is None:
            if not mirrored[idx] and a.sample <= 1:
                errors.append(f"frame {idx}: not IP, not mirrored")
            continue
        flows[key].append((idx, flags, payload))
    sampled = 0
    for key, pkts in flows.items():
        states = {mirrored[i] for i, _, _ in pkts}
        in_sample = any(states)
        sampled += in_sample
        if not in_sample:
            continue
        before = 0
        for i, flags, payload in pkts:
            want = before < a.cutoff or (key[0] == 6 and flags & 0x07)
            if bool(want) != mirrored[i]:
                errors.append(f"flow {key}: frame {i} (flags {flags:#x}, {before} bytes before) "
                              f"{'missing' if want else 'should be cut off'}")
            before += payload
    print(f"{len(ref)} reference frames, {len(got)} mirrored; {len(flows)} flows, {sampled} in the sample; "
          f"{sum(1 for r in ref if r[2] is not None and r[3] & 0x07 and r[2][0] == 6)} SYN/FIN/RST frames")
    if a.sample > 1 and len(flows) >= 40:
        frac = sampled / len(flows)
        if not (0.5 / a.sample <= frac <= 2.0 / a.sample):
            errors.append(f"{frac:.2f} of flows sampled for 1 in {a.sample}")
    for e in errors[:20]:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
