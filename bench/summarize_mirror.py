#!/usr/bin/env python3
"""Summarises bench/mirror_rate's TSV: medians (min-max) per load and method, and the
incremental CPU per forwarded packet of each tap against no tap, as a ratio to tc's: bpftap's
VXLAN sessions (--vxlan, and --to a fixed VXLAN device) against tc mirred to a fixed VXLAN device, the others against tc mirred to mon0."""
import csv
import statistics
import sys
from collections import defaultdict


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main(path):
    with open(path) as f:
        header = f.readline().strip()
        rows = list(csv.DictReader(f, delimiter="\t"))
    by = defaultdict(list)
    for r in rows:
        by[(r["load"], r["method"])].append(r)
    print(header.lstrip("# "))
    print()
    print("| load | method | result (median, min-max) | CPU ns / forwarded pkt | incremental ns / pkt | vs tc (mirred / mirred-vxlan) | target bytes / sent bytes | BPF ns / pkt |")
    print("|---|---|---|---|---|---|---|---|")
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    for load in dict.fromkeys(r["load"] for r in rows):
        unit = "Gbit/s" if load == "tcp" else "pkt/s"
        cpu = {}
        for m in methods:
            rs = by.get((load, m))
            if rs:
                cpu[m] = med([int(r["cpu_ns"]) / max(1, int(r["delivered_pkts"])) for r in rs])
        for m in methods:
            rs = by.get((load, m))
            if not rs:
                continue
            vals = [float(r["value"]) for r in rs]
            fmt = (lambda v: f"{v:.2f}") if load == "tcp" else (lambda v: f"{v/1000:.0f}k")
            inc = cpu[m] - cpu["none"] if "none" in cpu else float("nan")
            base = "mirred-vxlan" if m in ("bpftap-vxlan", "bpftap-vxlan-tc", "bpftap-vxdev") else "mirred"
            ref = cpu.get(base, float("nan")) - cpu.get("none", float("nan"))
            ratio = f"{inc / ref:.2f}" if m.startswith("bpftap") and ref > 0 else "-"
            ratio_bytes = med([int(r["target_bytes"]) / max(1, int(r["sent_bytes"])) for r in rs])
            bpf = [int(r["bpf_ns_per_pkt"]) for r in rs if r["bpf_ns_per_pkt"] not in ("-", "")]
            print(f"| {load} | {m} | {fmt(med(vals))} {unit} ({fmt(min(vals))}-{fmt(max(vals))}) | {cpu[m]:.0f} | "
                  f"{'-' if m == 'none' else f'{inc:.0f}'} | {ratio} | {ratio_bytes:.3f} | {med(bpf) if bpf else '-'} |")


if __name__ == "__main__":
    main(sys.argv[1])
