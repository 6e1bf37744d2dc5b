#!/usr/bin/env python3
"""Per-flow nDPI risks: bpftap inspect vs ndpiReader (Debian libndpi-bin), on the same file.

    ndpi_parity.py BPFTAP FILE...

For each FILE runs `ndpiReader -i FILE -v 2` and `bpftap inspect -r FILE --flows -`, keys flows
by (L4 protocol, the two endpoints unordered, VLAN) and requires the same set of risk names for
every flow either tool reports with a risk. Prints one line per file; exits 1 on a difference.
"""
import json
import re
import subprocess
import sys
import tempfile

LINE = re.compile(r"^\t\d+\t(\S+) (\[[^\]]+\]|[\d.]+):(\d+) (?:<->|->) (\[[^\]]+\]|[\d.]+):(\d+) (?:\[VLAN: (\d+)\])?\[proto: ")
RISK = re.compile(r"\[Risk: ((?:\*\* .+? \*\*)+)\]\[Risk Score: \d+\]")


def key(proto, a, pa, b, pb, vlan):
    ends = sorted([(a.strip("[]"), int(pa)), (b.strip("[]"), int(pb))])
    return (proto.upper(), ends[0], ends[1], int(vlan or 0))


def ndpireader(path):
    out = subprocess.run(["ndpiReader", "-i", path, "-v", "2"], capture_output=True, text=True, errors="replace").stdout
    flows = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        r = RISK.search(line)
        risks = set(re.findall(r"\*\* (.+?) \*\*", r.group(1))) if r else set()
        k = key(*m.groups())
        flows[k] = flows.get(k, set()) | risks
    return flows


def bpftap(binary, path):
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        subprocess.run([binary, "inspect", "-r", path, "--alerts", "/dev/null", "--flows", f.name],
                       capture_output=True, check=False)
        flows = {}
        for line in f:
            j = json.loads(line)
            proto = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}.get(j["proto"], "OTHER")
            k = key(proto, j["id.orig_h"], j["id.orig_p"], j["id.resp_h"], j["id.resp_p"], j.get("vlan", 0))
            flows[k] = flows.get(k, set()) | set(j.get("ndpi_risks", []))
        return flows


def main():
    binary, files = sys.argv[1], sys.argv[2:]
    bad = 0
    for path in files:
        ref, got = ndpireader(path), bpftap(binary, path)
        diffs = []
        for k in sorted(set(ref) | set(got)):
            r, g = ref.get(k, set()), got.get(k, set())
            if r != g and (r or g):
                diffs.append(f"{k}: ndpiReader {sorted(r)} bpftap {sorted(g)}")
        risky = sum(1 for v in ref.values() if v)
        name = path.rsplit("/", 1)[-1]
        if diffs:
            bad += 1
            print(f"FAIL {name}: {len(diffs)} flows differ")
            for d in diffs[:10]:
                print("   ", d)
        else:
            print(f"ok   {name}: {len(ref)} flows, {risky} with risks, same risks per flow")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
