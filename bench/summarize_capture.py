#!/usr/bin/env python3
"""Medians (and min-max) per tool, interface count and rate from bench/capture_rate's TSV."""
import statistics
import sys
from collections import defaultdict

path = sys.argv[1]
header = open(path).readline().lstrip("# ").strip()
rows = defaultdict(list)
ach = defaultdict(list)
for line in open(path):
    if line.startswith("#") or line.startswith("tool"):
        continue
    tool, n, rate, rep, offered, cap, drop, cpu, achieved = line.split("\t")
    rate = 10**9 if rate == "max" else int(rate)  # sorts last
    rows[(int(n), rate, tool)].append((int(offered), int(cap), int(drop), int(cpu)))
    ach[(int(n), rate, tool)].append(int(achieved))

def med(xs):
    return statistics.median(xs)

print(header)
print()
print("| ifaces | asked pps | achieved pps (median) | tool | captured/offered (median) | copies dropped (median, min-max) | CPU ns per captured packet (median, min-max) |")
print("|---|---|---|---|---|---|---|")
first_drop = {}
ratio_rows = []
for (n, rate, tool), runs in sorted(rows.items()):
    cap_ratio = med([c / o for o, c, d, u in runs])
    drops = [d for o, c, d, u in runs]
    per_pkt = [u / c for o, c, d, u in runs if c]
    shown = "max" if rate == 10**9 else rate
    print(f"| {n} | {shown} | {med(ach[(n, rate, tool)]):.0f} | {tool} | {cap_ratio:.4f} | {med(drops):.0f} ({min(drops)}-{max(drops)}) | "
          f"{med(per_pkt):.0f} ({min(per_pkt):.0f}-{max(per_pkt):.0f}) |")
    if med(drops) > 0 and (n, tool) not in first_drop:
        first_drop[(n, tool)] = f"asked {'max' if rate == 10**9 else rate}, achieved {med(ach[(n, rate, tool)]):.0f} pps"
print()
tools = sorted({k[2] for k in rows})
for n in sorted({k[0] for k in rows}):
    for tool in tools:
        r = first_drop.get((n, tool))
        print(f"- {tool}, {n} interface(s): first rate with drops (median > 0): {r if r else 'none up to the highest rate'}")
    for rate in sorted({k[1] for k in rows if k[0] == n}):
        t = rows.get((n, rate, "tcpdump"))
        for tool in tools:
            b = rows.get((n, rate, tool))
            if tool == "tcpdump" or not b or not t:
                continue
            bb = med([u / c for o, c, d, u in b if c]); tt = med([u / c for o, c, d, u in t if c])
            print(f"  - {n} if, asked {'max' if rate == 10**9 else rate} pps: {tool}/tcpdump CPU per captured packet = {bb / tt:.2f}")
