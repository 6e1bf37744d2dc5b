#!/usr/bin/env bash
# One slow filter stalls nothing else (issue 13, item 4). A 300-port expression takes libpcap's
# optimizer 3-12 s depending on the machine (the cost grows steeply: 400 ports took 13 s where
# 300 took 3 s), and a cloud VM's speed varies from minute to minute, so the test picks the
# smallest count whose compile outlasts 8 s, twice what its checks take; while a session with it
# is created over the API:
#  - a new VM's tap is attached to the running session within 1 s (it took 12 s),
#  - GET /v1/sessions and /metrics answer within 1 s (they took 11.5 s);
# the session is created once it compiled. Should the compile still end before the tap is made,
# the test tries once more with 100 more ports; it fails, never passes, if nothing overlapped.
# SIGTERM while a 600-port filter compiles stops the agent within 3 s (it took 27 s, past
# systemd's 20 s). `bpftap capture` stops at Ctrl-C while it compiles (it ignored SIGINT then).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 tcpdump timeout
make_workdir
lab_up
W=$WORKDIR
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token
ports() { python3 -c "import sys; print(' or '.join(f'port {p}' for p in range(1, int(sys.argv[1]) + 1)))" "$1"; }
# The checks below take ~4 s after the POST; tcpdump -d runs the same libpcap optimizer as the
# agent's compiler process.
N=
for n in 300 350 400 450 500; do
  rc=0
  timeout 8 tcpdump -d "$(ports $n)" >/dev/null 2>&1 || rc=$?
  (( rc == 124 )) && { N=$n; break; }
  (( rc == 0 )) || fail "tcpdump -d on a $n-port filter exited $rc"
done
[[ -n "$N" ]] || fail "even a 500-port filter compiles in under 8 s here: the test cannot overlap its checks with a compile"
echo "  a $N-port filter compiles in 8 s or more here"

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: vm-capture
    interfaces: ["tap-*"]
    direction: in
    filter: icmp
    capture: { dir: $W/pcap }
YAML

api() { ns_exec host curl -s -m 30 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15

post_slow_session() {
  body=$(printf '{"name":"many-ports-%s","interfaces":["tap-vm1"],"filter":"%s","capture":{"dir":"%s/pcap"}}' "$N" "$(ports "$N")" "$W")
  t0=$(date +%s%3N)
  (write POST /v1/sessions --data-binary "$body" >"$W/post.code") &
  POST=$!
  sleep 1
}
post_slow_session
if ! kill -0 "$POST" 2>/dev/null; then
  echo "  the $N-port session was created within 1 s ($(cat "$W/post.code")): once more with $((N + 100)) ports"
  N=$((N + 100))
  post_slow_session
  kill -0 "$POST" 2>/dev/null || fail "the $N-port POST finished within 1 s ($(cat "$W/post.code")): nothing was tested"
fi
new_vm_tap vm-capture
kill -0 "$POST" 2>/dev/null || fail "the POST finished before the tap appeared: nothing was tested"
worst=0
for _ in $(seq 5); do
  for path in /v1/sessions /metrics; do
    s=$(date +%s%3N)
    assert_eq 200 "$(ns_exec host curl -s -m 5 -o /dev/null -w '%{http_code}' "$API$path")" "GET $path during the compile"
    e=$(( $(date +%s%3N) - s ))
    (( e > worst )) && worst=$e
  done
  sleep 0.3
done
(( worst < 1000 )) || fail "a GET took $worst ms while the filter compiled"
kill -0 "$POST" 2>/dev/null || fail "the POST finished before the GETs were done: nothing was tested ($(cat "$W/post.code"))"
echo "  during the compile: tap-vm3 attached within $ms ms, GETs within $worst ms"
wait "$POST"
t1=$(date +%s%3N)
assert_eq 201 "$(cat "$W/post.code")" "the $N-port session"
assert_eq running "$(state "many-ports-$N")" "the $N-port session's state"
echo "  the $N-port session was created after $(( (t1 - t0) / 1000 )) s"

# SIGTERM during a longer compile.
body=$(printf '{"name":"more-ports","interfaces":["tap-vm1"],"filter":"%s","capture":{"dir":"%s/pcap"}}' "$(ports 600)" "$W")
(write POST /v1/sessions --data-binary "$body" >"$W/post2.code" || true) &
POST=$!
sleep 2
kids=$(pgrep -P "$(agent_pid "$AGENT")" | wc -l)
(( kids >= 1 )) || fail "no compiler process under the agent"
t0=$(date +%s%3N)
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
t1=$(date +%s%3N)
(( t1 - t0 < 3000 )) || fail "the agent took $((t1 - t0)) ms to stop while a filter compiled"
wait "$POST" || true
sleep 0.2
pgrep -f "bpftap agent --config $W/agent.yaml" && fail "a compiler process outlived the agent"
assert_nothing_attached tap-vm1 tap-vm2 tap-atk
echo "  SIGTERM while a 600-port filter compiled: stopped in $((t1 - t0)) ms (the POST got: $(cat "$W/post2.code"))"

# bpftap capture: Ctrl-C while compiling.
ns_exec host "$BPFTAP" capture -i tap-vm1 -w "$W/x.pcapng" $(ports 600) 2>"$W/cap.err" &
CAP=$!
sleep 1.5
t0=$(date +%s%3N)
signal_job INT "$CAP"
rc=0
wait "$CAP" || rc=$?
t1=$(date +%s%3N)
(( t1 - t0 < 2000 )) || fail "capture took $((t1 - t0)) ms to stop at Ctrl-C while compiling"
(( rc != 0 )) || fail "capture interrupted while compiling exited 0"
grep -q "interrupted while compiling" "$W/cap.err" || fail "capture: $(cat "$W/cap.err")"
[[ -e "$W/x.pcapng" ]] && fail "the capture file was created before the filter compiled"
echo "  bpftap capture: Ctrl-C while compiling stopped it in $((t1 - t0)) ms, exit $rc"
echo "PASS: a slow filter stalls neither the API, nor auto-attach, nor SIGTERM"
