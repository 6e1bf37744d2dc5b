#!/usr/bin/env bash
# bpftap inspect live, the formats end to end: Zeek's TSV conn.log read back with zeek-cut (or,
# as Debian 12 has no Zeek, an awk script with zeek-cut's semantics: columns by #fields name),
# the EVE stream's flow events, and wall-clock expiry: a single UDP datagram on an otherwise quiet
# link must reach conn.log within udp_timeout_s + 1 s, with no later packet to trigger it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd python3
make_workdir
lab_up
W=$WORKDIR
TIMEOUT=2

# zeek_cut FILE COLUMNS...: zeek-cut's output (the named columns of each row, tab-separated).
zeek_cut() {
  local file=$1; shift
  if command -v zeek-cut >/dev/null; then zeek-cut "$@" <"$file"; return; fi
  awk -v want="$*" 'BEGIN { FS = OFS = "\t"; n = split(want, w, " ") }
    /^#fields/ { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
    /^#/ { next }
    { line = ""; for (j = 1; j <= n; j++) line = line (j > 1 ? OFS : "") $(col[w[j]]); print line }' "$file"
}

printf 'udp_timeout_s: %s\nclosed_timeout_s: 1\n' "$TIMEOUT" >"$W/inspect.yaml"
ns_exec host "$BPFTAP" inspect -i tap-vm1 --config "$W/inspect.yaml" --flows "$W/conn.log" --flows-format tsv \
  --alerts "$W/eve.json" --status-interval 0 2>"$W/live.log" &
pid=$!
wait_for_line "$W/live.log" "inspecting"
ns_exec vm1 ping -c 1 -W 1 10.77.0.2 >/dev/null || fail "vm1 cannot ping vm2"
ns_exec vm1 bash -c 'echo hello >/dev/udp/10.77.0.2/9999'
sent=$(date +%s.%N)
# The datagram's flow must be written by the timer: poll for it (a cheap grep, so the poll adds
# little under load), stamp the moment it is seen.
seen=""
for _ in $(seq 200); do
  if grep -q "$(printf '\t9999\tudp\t')" "$W/conn.log" 2>/dev/null; then seen=$(date +%s.%N); break; fi
  sleep 0.02
done
[[ -n $seen ]] || seen=$(date +%s.%N)
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$sent" "$seen")
zeek_cut "$W/conn.log" id.resp_p | grep -qx 9999 || fail "the quiet link's UDP flow never reached conn.log: $(cat "$W/conn.log")"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= $TIMEOUT + 1 else 1)" "$took" ||
  fail "the UDP flow reached conn.log after ${took}s (timeout ${TIMEOUT}s + 1 s allowed)"
echo "  a lone UDP datagram's flow reached conn.log ${took}s after it was sent (udp_timeout_s ${TIMEOUT})"

row=$(zeek_cut "$W/conn.log" id.orig_h id.resp_h id.resp_p proto service conn_state history local_orig | grep 9999)
assert_eq "$(printf '10.77.0.1\t10.77.0.2\t9999\tudp\t-\tS0\tD\tT')" "$row" "conn.log row of the datagram (zeek-cut)"
# vm2 answered with ICMP port unreachable: type 3 and code 3 are the ICMP flow's ports.
zeek_cut "$W/conn.log" proto id.orig_p id.resp_p | grep -q "$(printf '^icmp\t8\t0$')" ||
  fail "no ICMP echo flow with type 8 / code 0 in the port fields: $(zeek_cut "$W/conn.log" proto id.orig_p id.resp_p)"

signal_job INT "$pid"
wait "$pid" || fail "live inspect exited $?: $(tail -3 "$W/live.log")"
tail -1 "$W/conn.log" | grep -q "^#close" || fail "conn.log has no #close line"
python3 - "$W/eve.json" <<'PY' || fail "EVE flow events wrong"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
udp = [e for e in ev if e["event_type"] == "flow" and e.get("dest_port") == 9999]
assert len(udp) == 1, f"{len(udp)} flow events for the datagram"
e = udp[0]
assert e["flow"]["reason"] == "timeout" and e["flow"]["state"] == "new", e
assert e["in_iface"] == "tap-vm1" and e["community_id"].startswith("1:"), e
print(f"  EVE flow event: {e['proto']} {e['src_ip']} -> {e['dest_ip']}:{e['dest_port']}, reason {e['flow']['reason']}, {e['community_id']}")
PY
