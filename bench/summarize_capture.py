#!/usr/bin/env python3
"""Medians (and min-max) per tool, interface count and rate from bench/capture_rate's TSV."""
import statistics
import sys
from collections import defaultdict

path = sys.argv[1]
header = open(path).readline().lstrip("# ").strip()
rows = defaultdict(list)
for line in open(path):
    if line.startswith("#") or line.startswith("tool"):
        continue
    tool, n, rate, rep, offered, cap, drop, cpu = line.split("\t")
    rows[(int(n), int(rate), tool)].append((int(offered), int(cap), int(drop), int(cpu)))

def med(xs):
    return statistics.median(xs)

print(header)
print()
print("| ifaces | offered pps | tool | captured/offered (median) | copies dropped (median, min-max) | CPU ns per captured packet (median, min-max) |")
print("|---|---|---|---|---|---|")
first_drop = {}
ratio_rows = []
for (n, rate, tool), runs in sorted(rows.items()):
    cap_ratio = med([c / o for o, c, d, u in runs])
    drops = [d for o, c, d, u in runs]
    per_pkt = [u / c for o, c, d, u in runs if c]
    print(f"| {n} | {rate} | {tool} | {cap_ratio:.4f} | {med(drops):.0f} ({min(drops)}-{max(drops)}) | "
          f"{med(per_pkt):.0f} ({min(per_pkt):.0f}-{max(per_pkt):.0f}) |")
    if med(drops) > 0 and (n, tool) not in first_drop:
        first_drop[(n, tool)] = rate
print()
for n in sorted({k[0] for k in rows}):
    for tool in ("bpftap", "tcpdump"):
        r = first_drop.get((n, tool))
        print(f"- {tool}, {n} interface(s): first rate with drops (median > 0): {r if r else 'none up to the highest rate'}")
    for rate in sorted({k[1] for k in rows if k[0] == n}):
        b = rows.get((n, rate, "bpftap")); t = rows.get((n, rate, "tcpdump"))
        if b and t:
            bb = med([u / c for o, c, d, u in b if c]); tt = med([u / c for o, c, d, u in t if c])
            print(f"  - {rate} pps: bpftap/tcpdump CPU per captured packet = {bb / tt:.2f}")
