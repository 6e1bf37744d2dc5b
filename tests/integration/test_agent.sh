#!/usr/bin/env bash
# bpftap agent in a lab of its own:
#  - sessions from a YAML config attach to the taps present; a new VM (namespace + tap) is attached
#    within 1 s and its traffic captured and mirrored; deleting it detaches it, counters kept;
#  - REST API: unauthenticated and wrong-token writes get 401; a session created, updated and
#    deleted over the API changes what the monitor receives (created with attach: tc, a tc filter
#    with mirred's action that goes when an update takes it back to auto);
#  - /metrics is valid Prometheus text and its counters grow with traffic;
#  - POST /v1/bypass stops mirroring one flow while the others go on;
#  - SIGHUP with a broken config keeps the old sessions running and logs why;
#  - capture.files: per-session writes one file for its taps, each packet under its tap's IDB, and
#    no per-interface file; a tap that comes back takes its IDB again; SIGHUP starts a moved file anew;
#  - SIGTERM exits 0 with nothing of bpftap's attached.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 tcpdump capinfos tshark
make_workdir
lab_up
W=$WORKDIR
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: vm-capture
    interfaces: ["tap-*"]
    direction: in
    filter: "icmp"
    capture: { dir: $W/pcap, rotate_mb: 10, keep_files: 3 }
  - name: ids-feed
    interfaces: ["tap-*"]
    direction: in
    rules: ["10 accept proto icmp", "20 reject"]
    flow_cutoff: 16384
    mirror: { to: mon0 }
  - name: one-file
    interfaces: [tap-vm1, tap-atk, tap-vm3]
    direction: in
    filter: icmp
    capture: { dir: $W/one, files: per-session }
YAML

api() { ns_exec host curl -s -m 5 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
assert_eq "tap-atk tap-vm1 tap-vm2" "$(attached vm-capture)" "interfaces attached at start"
assert_eq "tap-atk tap-vm1 tap-vm2" "$(attached ids-feed)" "mirror interfaces attached at start"

# A new VM appears: namespace + tap on the bridge.
new_vm_tap vm-capture ids-feed one-file
echo "  new VM: tap-vm3 attached to both sessions within $ms ms of its creation (seen through the API after $seen ms)"

tcpdump_in mon mon1 eth0 icmp
ns_exec vm3 ping -c 5 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm3 cannot ping vm2"
sleep 1.2
stop_tcpdumps
assert_eq 5 "$(counter vm-capture tap-vm3 captured)" "echo requests captured from tap-vm3"
# An ingress-only session: its counts are the "in" hook's, and there is no "out" series.
assert_eq 5 "$(metric bpftap_packets_captured_total 'session="vm-capture",interface="tap-vm3",direction="in"')" "captured in, /metrics"
get /metrics | grep -q 'bpftap_packets_[a-z]*_total{session="vm-capture",[^}]*direction="out"' && fail "an ingress-only session has out series"
assert_eq 5 "$(counter ids-feed tap-vm3 mirrored)" "echo requests mirrored from tap-vm3"
got=$(capinfos -M -c "$W/mon1.pcap" | awk '/Number of packets/ { print $NF }')
(( got >= 10 )) || fail "the monitor saw $got ICMP packets, expected 10 (5 requests + 5 replies)"

# The VM goes away: detached, counters kept, no error.
ip netns del "${P}vm3"
for _ in $(seq 50); do [[ " $(attached ids-feed) " != *" tap-vm3 "* ]] && break; sleep 0.02; done
[[ " $(attached ids-feed) " == *" tap-vm3 "* ]] && fail "tap-vm3 still attached after it was deleted"
assert_eq 5 "$(counter ids-feed tap-vm3 mirrored)" "tap-vm3's counters kept after it went away"
grep -E " (error|warning) " "$W/agent.log" && fail "the agent logged an error"
echo "  VM deleted: detached, counters kept"

# Pcap files were written for the taps.
ls "$W"/pcap/vm-capture-tap-vm3*.pcapng >/dev/null || fail "no capture file for tap-vm3"

# API: writes need the token.
code=$(api -o /dev/null -w '%{http_code}' -X DELETE "$API/v1/sessions/ids-feed")
assert_eq 401 "$code" "unauthenticated DELETE"
code=$(api -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer wrong-token-0123456789" "$API/v1/sessions/ids-feed")
assert_eq 401 "$code" "DELETE with a wrong token"
code=$(api -o /dev/null -w '%{http_code}' -X POST -d '{}' "$API/v1/bypass")
assert_eq 401 "$code" "unauthenticated bypass"

# Create a session over the API: UDP from vm1 to the monitor, copied by tc's mirred action
# (attach: tc) behind bpftap's classifier.
assert_eq 201 "$(write POST /v1/sessions -d '{"name":"api-udp","interfaces":["tap-vm1"],"direction":"in","filter":"udp port 9999","attach":"tc","mirror":{"to":"mon0"}}')" "create api-udp"
tc_has tap-vm1 ingress "mirred (Egress Mirror to device mon0)" || fail "attach: tc: no mirred action to mon0 on tap-vm1: $(tc_filters tap-vm1 ingress)"
get /v1/sessions/api-udp | grep -q '"attach":"tc"' || fail "GET /v1/sessions/api-udp does not say attach: tc: $(get /v1/sessions/api-udp)"
assert_eq 400 "$(write POST /v1/sessions -d '{"name":"bad","interfaces":["tap-vm1"],"mirror":{"to":"mon0"},"colour":"red"}')" "create with an unknown key"
grep -q "unknown key 'colour'" "$W/resp" || fail "400 without the reason: $(cat "$W/resp")"
assert_eq 409 "$(write POST /v1/sessions -d '{"name":"api-udp","interfaces":["tap-vm1"],"mirror":{"to":"mon0"}}')" "create an existing session"
send_udp() { ns_exec vm1 bash -c "for i in 1 2 3; do echo hi >/dev/udp/10.77.0.2/$1; done"; }
send_udp 9999
sleep 0.3
assert_eq 3 "$(counter api-udp tap-vm1 mirrored)" "api-udp mirrored the UDP datagrams"
# Update it: now port 9998 only.
assert_eq 200 "$(write PUT /v1/sessions/api-udp -d '{"name":"api-udp","interfaces":["tap-vm1"],"direction":"in","filter":"udp port 9998","mirror":{"to":"mon0"}}')" "update api-udp"
send_udp 9999
send_udp 9998
sleep 0.3
assert_eq 3 "$(counter api-udp tap-vm1 mirrored)" "after the update only port 9998 is mirrored (fresh counters)"
# The update (attach: auto) took the tc filter away with the old session.
tc_has tap-vm1 ingress mirred && fail "the tc filter of the updated session stayed: $(tc_filters tap-vm1 ingress)"
assert_eq 204 "$(write DELETE /v1/sessions/api-udp)" "delete api-udp"
assert_eq 404 "$(api -o /dev/null -w '%{http_code}' "$API/v1/sessions/api-udp")" "api-udp gone"
echo "  API: 401 without the token; create / update / delete take effect"

# Metrics: valid exposition format; counters grow with traffic.
metric() { get /metrics | awk -v m="$1" -v l="$2" 'index($0, m "{") == 1 && index($0, l) { s += $NF } END { print s + 0 }'; }
get /metrics >"$W/metrics.txt"
python3 - "$W/metrics.txt" <<'PY' || fail "invalid /metrics"
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample = re.compile(rf'^{name}(\{{({name}="([^"\\]|\\.)*"(,{name}="([^"\\]|\\.)*")*)?\}})? -?[0-9.eE+]+$')
lines = open(sys.argv[1]).read().splitlines()
assert lines, "empty"
for l in lines:
    if l.startswith("# HELP ") or re.match(rf"^# TYPE {name} (counter|gauge|histogram|summary|untyped)$", l):
        continue
    assert sample.match(l), f"bad line: {l!r}"
print(f"  /metrics: {len(lines)} lines, all valid")
PY
before=$(metric bpftap_packets_mirrored_total 'session="ids-feed",interface="tap-vm1"')
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
after=$(metric bpftap_packets_mirrored_total 'session="ids-feed",interface="tap-vm1"')
assert_eq $((before + 3)) "$after" "bpftap_packets_mirrored_total grew with traffic"
# Ring buffer usage of the capture session: three rings for all its interfaces (at full snapshot
# length: 8 MiB for copies of up to 512 bytes, 8 MiB for longer ones, 32 MiB they spill into);
# the pings above (98-byte frames) waited in the small one before a drain, and nothing came to
# the others.
size=$(metric bpftap_ring_buffer_bytes 'session="vm-capture",ring="small"')
peak=$(metric bpftap_ring_buffer_peak_used_bytes 'session="vm-capture",ring="small"')
used=$(metric bpftap_ring_buffer_used_bytes 'session="vm-capture",ring="small"')
big=$(metric bpftap_ring_buffer_bytes 'session="vm-capture",ring="big"')
big_peak=$(metric bpftap_ring_buffer_peak_used_bytes 'session="vm-capture",ring="big"')
spill=$(metric bpftap_ring_buffer_bytes 'session="vm-capture",ring="spill"')
(( size == 8 * 1048576 )) || fail "bpftap_ring_buffer_bytes small: $size, expected 8 MiB"
(( big == 8 * 1048576 )) || fail "bpftap_ring_buffer_bytes big: $big, expected 8 MiB"
(( spill == 32 * 1048576 )) || fail "bpftap_ring_buffer_bytes spill: $spill, expected 32 MiB"
(( peak > 0 && peak <= size && used <= size )) || fail "small ring usage: peak $peak, used $used of $size"
(( big_peak == 0 )) || fail "the big ring held $big_peak bytes of pings"
echo "  /metrics: counters grow with traffic; ring buffers: $size + $big + $spill bytes, peak $peak waiting at a drain"

# Bypass: vm1<->vm2 ICMP is shunted, atk's pings still mirrored.
assert_eq 201 "$(write POST /v1/bypass -d '{"proto":"icmp","src":"10.77.0.1","dst":"10.77.0.2","seconds":30}')" "bypass"
b1=$(counter ids-feed tap-vm1 mirrored); a1=$(counter ids-feed tap-atk mirrored)
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
ns_exec atk ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
assert_eq "$b1" "$(counter ids-feed tap-vm1 mirrored)" "the bypassed flow is no longer mirrored"
assert_eq $((a1 + 3)) "$(counter ids-feed tap-atk mirrored)" "other flows are still mirrored"
(( $(counter ids-feed tap-vm1 bypassed) >= 3 )) || fail "bypassed counter did not grow"
echo "  bypass: vm1<->vm2 shunted, atk still mirrored"
# The same flow the other way round renews that bypass (200, one entry), not a second one.
assert_eq 200 "$(write POST /v1/bypass -d '{"proto":"icmp","src":"10.77.0.2","dst":"10.77.0.1","seconds":30}')" "bypass renewed"
assert_eq 1 "$(get /v1/bypass | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "bypasses listed after a renewal"
# Listed, then deleted: the flow is mirrored again at once.
id=$(get /v1/bypass | python3 -c 'import json,sys; print(" ".join(b["id"] for b in json.load(sys.stdin) if b["src"] == "10.77.0.1" and b["proto"] == "icmp"))')
[[ -n "$id" && "$id" != *" "* ]] || fail "GET /v1/bypass: expected the one bypass, got '$id': $(get /v1/bypass)"
assert_eq 204 "$(write DELETE "/v1/bypass/$id")" "DELETE /v1/bypass/$id"
assert_eq 404 "$(write DELETE "/v1/bypass/$id")" "DELETE of a bypass already deleted"
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
(( $(counter ids-feed tap-vm1 mirrored) >= b1 + 3 )) || fail "the flow is not mirrored again after DELETE /v1/bypass/$id"
echo "  bypass $id listed and deleted: vm1<->vm2 mirrored again"
# Every write is in the log with its client and answer, the refused ones too.
grep -q "api: DELETE /v1/sessions/ids-feed from 127.0.0.1: 401" "$W/agent.log" || fail "no audit line for the refused DELETE: $(grep 'api:' "$W/agent.log" | head -5)"
grep -q "api: POST /v1/bypass {.*} from 127.0.0.1: 201" "$W/agent.log" || fail "no audit line for the bypass: $(grep 'api:' "$W/agent.log" | head -5)"
grep -q "api: DELETE /v1/bypass/$id from 127.0.0.1: 204" "$W/agent.log" || fail "no audit line for the bypass delete"
echo "  audit: $(grep -c 'api: ' "$W/agent.log") API writes logged"

# tap-vm3 comes back: in the per-session file, under the IDB it had.
new_vm_tap one-file
ns_exec vm3 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm3 cannot ping vm2"

# A broken config on SIGHUP: refused, sessions keep running; the per-session file, moved away
# (logrotate), is started anew.
mv "$W/one/one-file-0.pcapng" "$W/moved.pcapng"
cp "$W/agent.yaml" "$W/good.yaml"
printf 'sessions:\n  - name: x\n    interfaces: ["tap-*"]\n    capture: { dir: /tmp, rotate: 1 }\n' >"$W/agent.yaml"
signal_job HUP "$AGENT"
wait_for_line "$W/agent.log" "reload refused"
grep "reload refused" "$W/agent.log" | sed "s/^/  /"
c1=$(counter vm-capture tap-vm1 captured)
ns_exec vm1 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null
sleep 0.5
assert_eq $((c1 + 2)) "$(counter vm-capture tap-vm1 captured)" "vm-capture still running after a refused reload"
# A good change on SIGHUP: only the changed session restarts.
sed 's/filter: "icmp"/filter: "icmp or udp"/' "$W/good.yaml" >"$W/agent.yaml"
m1=$(counter ids-feed tap-vm1 mirrored)
signal_job HUP "$AGENT"
wait_for_line "$W/agent.log" "reloaded"
assert_eq "$m1" "$(counter ids-feed tap-vm1 mirrored)" "the unchanged session kept running (its counters too)"

# The per-session file's counts, before the agent closes it (the pings above went through both
# taps); no file of its own per interface.
n_vm1=$(counter one-file tap-vm1 captured); n_atk=$(counter one-file tap-atk captured); n_vm3=$(counter one-file tap-vm3 captured)
(( n_vm1 >= 3 && n_atk >= 3 )) || fail "one-file captured $n_vm1 packets on tap-vm1, $n_atk on tap-atk: expected 3 or more each"
assert_eq 7 "$n_vm3" "one-file's packets of tap-vm3 (5, then 2 after it came back)"
get /v1/sessions/one-file | python3 -c "import json,sys
d=json.load(sys.stdin); assert d['capture']['files'] == 'per-session' and d['file_lost'] == 0, d
assert all(c['unwritten'] == 0 for c in d['counters']), d" || fail "one-file's JSON: $(get /v1/sessions/one-file)"

# SIGTERM: exit 0, nothing left.
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
assert_eq "one-file-0.pcapng" "$(ls "$W/one")" "files of the per-session capture"
ls "$W"/one/one-file-tap-* "$W"/pcap/one-file* 2>/dev/null && fail "per-interface files for a per-session capture"
# Packets per interface id and IDB name, in the moved file and the one started at SIGHUP.
for f in "$W/moved.pcapng" "$W/one/one-file-0.pcapng"; do
  tshark -r "$f" -T fields -e frame.interface_id -e frame.interface_name 2>/dev/null || fail "tshark cannot read $f"
done | sort -k2 | uniq -c | awk '{ print $1, $3 }' >"$W/one.txt"
assert_eq "$n_atk tap-atk
$n_vm1 tap-vm1
$n_vm3 tap-vm3" "$(awk '{ n[$2] += $1 } END { for (i in n) print n[i], i }' "$W/one.txt" | sort -k2)" "packets per interface (IDB name) in the per-session files"
# One interface id per tap (the same file, the same id for tap-vm3 before and after it left).
assert_eq "tap-atk tap-vm1 tap-vm3" "$(awk '{ print $2 }' "$W/one.txt" | xargs)" "one (id, name) pair per tap"
(( $(tshark -r "$W/one/one-file-0.pcapng" 2>/dev/null | wc -l) > 0 )) || fail "no packet in the file started anew at SIGHUP"
echo "  files: per-session: one file, $n_vm1 packets of tap-vm1, $n_atk of tap-atk, $n_vm3 of tap-vm3 (which came back) under their IDBs"
assert_nothing_attached tap-vm1 tap-vm2 tap-atk mon0
echo "PASS: agent: auto-attach within ${ms} ms, API with token, metrics, bypass, reload, clean exit"
