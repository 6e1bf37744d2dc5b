#!/usr/bin/env bash
# bpftap inspect --ipfix: flows exported over IPFIX to a real collector (nfcapd, from Debian's
# nfdump, on 127.0.0.1 and a free port, killed by the trap) and read back with nfdump: the
# records are the conn.log's, both directions of each flow: same 5-tuples, packets and IP bytes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd nfcapd nfdump python3
C=$BPFTAP_CORPUS/ndpi
W=$(mktemp -d /tmp/bpftap-ipfix.XXXXXX)
collector=""
cleanup() {
  local rc=$?
  [[ -n $collector ]] && kill "$collector" 2>/dev/null && wait "$collector" 2>/dev/null
  rm -rf -- "$W"
  exit "$rc"
}
trap cleanup EXIT INT TERM HUP
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$W/nf"
nfcapd -w "$W/nf" -b 127.0.0.1 -p "$port" -t 3600 >"$W/nfcapd.log" 2>&1 &
collector=$!
sleep 0.5
kill -0 "$collector" 2>/dev/null || fail "nfcapd did not start: $(cat "$W/nfcapd.log")"

# IPv4 TCP (HTTP), IPv6 and IPv4 UDP (DNS), ICMP.
for f in WebattackSQLinj.pcap dns_fragmented.pcap synscan.pcap; do
  "$BPFTAP" inspect -r "$C/$f" --alerts /dev/null --flows "$W/conn-$f.json" --ipfix "127.0.0.1:$port" 2>"$W/$f.log" ||
    fail "inspect --ipfix on $f: $(cat "$W/$f.log")"
done
sleep 0.5
kill "$collector"; wait "$collector" 2>/dev/null || true
collector=""
nfdump -R "$W/nf" -6 -q -o "fmt:%sa %sp %da %dp %pr %pkt %byt" >"$W/nfdump.txt" || fail "nfdump cannot read nfcapd's files"

python3 - "$W" <<'PY' || fail "nfdump's records differ from the conn.log"
import collections, glob, json, sys
w = sys.argv[1]
names = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}
want = collections.Counter()
for path in glob.glob(f"{w}/conn-*.json"):
    for line in open(path):
        f = json.loads(line)
        proto = names.get(f["proto"])
        if not proto:
            continue
        ports = proto != "ICMP"  # ICMP: Zeek's type/code ports are not IPFIX ports
        for s, sp, d, dp, pkts, byts in ((f["id.orig_h"], f["id.orig_p"], f["id.resp_h"], f["id.resp_p"], f["orig_pkts"], f["orig_ip_bytes"]),
                                         (f["id.resp_h"], f["id.resp_p"], f["id.orig_h"], f["id.orig_p"], f["resp_pkts"], f["resp_ip_bytes"])):
            if pkts:
                want[(s, sp if ports else "", d, dp if ports else "", proto, pkts, byts)] += 1
got = collections.Counter()
for line in open(f"{w}/nfdump.txt"):
    sa, sp, da, dp, pr, pkt, byt = line.split()
    if pr not in ("TCP", "UDP", "ICMP"):
        continue
    ports = pr != "ICMP"
    got[(sa, int(sp) if ports else "", da, int(dp) if ports else "", pr, int(pkt), int(byt))] += 1
missing, extra = want - got, got - want
for k in list(missing)[:5]: print("  missing in nfdump:", k)
for k in list(extra)[:5]: print("  not in conn.log:", k)
assert not missing and not extra, f"{sum(missing.values())} missing, {sum(extra.values())} extra"
print(f"  nfdump read back {sum(got.values())} IPFIX records = the conn.log's flows, both directions "
      f"({len({k[4] for k in got})} protocols, {sum(1 for k in got if ':' in k[0])} IPv6)")
PY
