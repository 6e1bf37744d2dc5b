#!/usr/bin/env bash
# bpftap inspect --alert-pcap DIR on the SQL-injection capture, files read back with tshark: one
# pcapng per alerted flow, named <flow_id>_<community_id>, holding exactly the flow's packets
# from its first one (count = the EVE flow event's, first timestamp = flow.start); the per-flow
# byte limit cuts files; a zero memory budget keeps only what follows the alert.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd tshark python3
C=$BPFTAP_CORPUS/ndpi
W=$(mktemp -d /tmp/bpftap-alertpcap.XXXXXX)
trap 'rm -rf -- "$W"' EXIT

run() {  # run NAME [options...]
  local name=$1; shift
  "$BPFTAP" inspect -r "$C/WebattackSQLinj.pcap" --alerts "$W/$name.json" --alert-pcap "$W/$name" "$@" 2>"$W/$name.log" ||
    fail "inspect --alert-pcap $*: $(cat "$W/$name.log")"
}
run full
run cut --alert-pcap-flow-bytes 300
run nobudget --alert-pcap-budget 0

python3 - "$W" <<'PY' || fail "alert pcaps do not match the flows"
import base64, json, os, subprocess, sys
w = sys.argv[1]

def tshark(path, *fields):
    out = subprocess.run(["tshark", "-r", path, "-T", "fields", *sum((["-e", f] for f in fields), [])],
                         capture_output=True, text=True, check=True).stdout
    return [l.split("\t") for l in out.splitlines()]

def flows(name):
    ev = [json.loads(l) for l in open(f"{w}/{name}.json")]
    return {e["flow_id"]: e for e in ev if e["event_type"] == "flow" and e["flow"]["alerted"]}

def file_of(name, f):
    cid = f["community_id"].replace("+", "-").replace("/", "_").replace(":", "_").rstrip("=")
    return f"{w}/{name}/{f['flow_id']}_{cid}.pcapng"

full = flows("full")
assert full, "no alerted flow"
assert len(os.listdir(f"{w}/full")) == len(full), (os.listdir(f"{w}/full"), len(full))
for fid, f in full.items():
    rows = tshark(file_of("full", f), "frame.time_epoch", "ip.src", "tcp.srcport")
    want = f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"]
    assert len(rows) == want, f"flow {fid}: {len(rows)} packets in its pcap, {want} in the flow"
    assert rows[0][1] == f["src_ip"] and int(rows[0][2]) == f["src_port"], (rows[0], f["src_ip"])
    start = f["flow"]["start"]  # 2017-07-06T13:40:07.424132+0000
    import datetime
    t0 = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    assert abs(float(rows[0][0]) - t0) < 1e-6, (rows[0][0], start)
print(f"  full: {len(full)} alerted flows, each pcap = the flow's packets from its first (tshark)")

for fid, f in flows("cut").items():
    lens = [int(r[0]) for r in tshark(file_of("cut", f), "frame.cap_len")]
    assert lens and sum(lens) <= 300, f"flow {fid}: {sum(lens)} bytes over the 300-byte limit"
print("  --alert-pcap-flow-bytes 300: every file within 300 bytes")

kept = 0
for fid, f in flows("nobudget").items():
    path = file_of("nobudget", f)
    n = len(tshark(path, "frame.number"))
    assert n < f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"], f"flow {fid}: budget 0 kept all {n}"
    kept += n
print(f"  --alert-pcap-budget 0: only the packets after each alert ({kept} in all)")
PY
grep -q "packets over the memory budget" "$W/nobudget.log" && ! grep -q " 0 packets over the memory budget" "$W/nobudget.log" ||
  fail "budget 0 counted nothing over budget: $(cat "$W/nobudget.log")"
