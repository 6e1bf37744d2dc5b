#!/usr/bin/env bash
# No client takes the agent down or the API away (issue 13, items 1, 3 and 7):
#  - descriptors: with a limit of 256, 300 idle connections to the API and a VM deleted: the
#    agent detaches its tap and lives (it used to abort: "cannot detach safely"); sessions
#    created until the descriptor budget is reached get 503 with the reason, and the agent
#    still detaches and answers;
#  - before authentication: eight 50 MB bodies without a token are refused before they are read
#    (the agent's peak memory stays where it was; it used to reach 905 MB); eight slowloris
#    connections leave the API answering (they used to stop it), and are cut at the request
#    timeout;
#  - a second agent on the same port is refused; listen 0.0.0.0 needs allow_remote: true.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3
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
  - name: ids-feed
    interfaces: ["tap-*"]
    direction: in
    mirror: { to: mon0 }
YAML

api() { ns_exec host curl -s -m 5 "$@"; }
# The limit the packaged unit used to leave (1,024) is lower still here: 256.
(ulimit -n 256; exec ip netns exec "${P}host" "$BPFTAP" agent --config "$W/agent.yaml") 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
APID=$(agent_pid "$AGENT")
alive() { kill -0 "$APID" 2>/dev/null || fail "the agent died: $(tail -5 "$W/agent.log")"; }
fds() { ls "/proc/$APID/fd" | wc -l; }
hwm_kb() { awk '/VmHWM/ { print $2 }' "/proc/$APID/status"; }
new_vm_tap ids-feed

# 1. 300 idle connections, then the VM goes away.
ns_exec host python3 - "$PORT" 300 20 >"$W/idle.out" 2>&1 <<'PY' &
import socket, sys, time
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        pass
print(len(socks), flush=True)
time.sleep(hold)
PY
IDLE=$!
for _ in $(seq 50); do [[ -s "$W/idle.out" ]] && break; sleep 0.1; done
sleep 0.5
during=$(fds)
ip netns del "${P}vm3"
wait_for_line "$W/agent.log" "tap-vm3 went away, detached" 5
alive
grep -q "cannot detach safely" "$W/agent.log" && fail "the agent could not detach"
(( during < 200 )) || fail "the idle connections took the agent to $during descriptors"
refused=$(ns_exec host curl -s -m 5 -o /dev/null -w '%{http_code}' "$API/v1/sessions")
[[ $refused == 503 || $refused == 200 ]] || fail "a request during the idle connections: $refused"
_kill_tree "$IDLE"; wait "$IDLE" 2>/dev/null || true
sleep 0.5
assert_eq 200 "$(api -o /dev/null -w '%{http_code}' "$API/v1/sessions")" "the API once the idle connections are gone"
(( $(metric bpftap_api_refused_total 'client_connections') > 0 )) || fail "no connection refused at the per-client cap"
echo "  300 idle connections: the agent held $during descriptors, detached the deleted tap, answers (503 meanwhile)"

# 2. Sessions until the descriptor budget is reached: 503 with the reason, never an abort.
codes=""
for i in $(seq 1 60); do
  code=$(write POST /v1/sessions -d "{\"name\":\"m$i\",\"interfaces\":[\"tap-*\"],\"direction\":\"in\",\"mirror\":{\"to\":\"mon0\"}}")
  codes+=" $code"
  [[ $code == 201 ]] || break
done
assert_eq 503 "$code" "the session past the budget (codes:$codes)"
grep -q "file descriptors open" "$W/resp" || fail "503 without the reason: $(cat "$W/resp")"
alive
n_ok=$(grep -o 201 <<<"$codes" | wc -l)
(( n_ok >= 2 )) || fail "only $n_ok sessions fitted under 256 descriptors"
new_vm_tap ids-feed m1
ip netns del "${P}vm3"
wait_for_line "$W/agent.log" "session m1: tap-vm3 went away" 5
alive
assert_eq 200 "$(api -o /dev/null -w '%{http_code}' "$API/metrics")" "metrics at the budget"
(( $(metric bpftap_fd_budget_refusals_total '') >= 1 )) || fail "bpftap_fd_budget_refusals_total did not count"
echo "  $n_ok sessions fitted, the next got 503: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$W/resp")"
for i in $(seq 1 "$n_ok"); do write DELETE "/v1/sessions/m$i" >/dev/null; done

# 3. Eight 50 MB bodies without a token, with and without Expect: 100-continue.
head -c 50000000 /dev/zero >"$W/big"
hwm0=$(hwm_kb)
curls=()
for i in $(seq 8); do
  expect=(); (( i % 2 )) && expect=(-H 'Expect:')
  ns_exec host curl -s -m 20 -o /dev/null -w '%{http_code}\n' "${expect[@]}" -X POST --data-binary @"$W/big" \
    "$API/v1/sessions" >>"$W/big.codes" 2>/dev/null &
  curls+=($!)
done
for j in "${curls[@]}"; do wait "$j" 2>/dev/null || true; done
alive
hwm1=$(hwm_kb)
(( hwm1 - hwm0 < 20000 )) || fail "the agent's peak memory grew by $(( (hwm1 - hwm0) / 1024 )) MB for bodies it refuses"
(( $(metric bpftap_api_refused_total 'too_large') >= 8 )) || fail "the 50 MB bodies were not refused as too large: $(sort "$W/big.codes" | uniq -c)"
grep -qv '^413$\|^000$' "$W/big.codes" && fail "a 50 MB body got: $(sort "$W/big.codes" | uniq -c)"
echo "  8 x 50 MB without a token: refused before reading ($(sort "$W/big.codes" | uniq -c | xargs)); peak memory +$(( (hwm1 - hwm0) / 1024 )) MB"

# 4. Slowloris: eight connections sending a header byte a second.
ns_exec host python3 - "$PORT" >"$W/slow.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
for s in socks: s.sendall(b"GET /v1/sessions HTTP/1.1\r\n")
answers = [b""] * 8
for t in range(13):
    for i, s in enumerate(socks):
        if answers[i]: continue
        try:
            answers[i] = s.recv(100, socket.MSG_DONTWAIT)
        except BlockingIOError:
            try: s.sendall(b"X")
            except OSError: pass
        except OSError:
            pass
    time.sleep(1)
print(sum(1 for a in answers if b" 408 " in a))
PY
SLOW=$!
sleep 1
t0=$(date +%s%3N)
assert_eq 200 "$(api -o /dev/null -w '%{http_code}' "$API/v1/sessions")" "the API with eight slowloris connections"
t1=$(date +%s%3N)
(( t1 - t0 < 1000 )) || fail "the API took $((t1 - t0)) ms to answer beside slowloris connections"
wait "$SLOW"
assert_eq 8 "$(cat "$W/slow.out")" "slowloris connections cut with 408 at the request timeout (10 s)"
echo "  slowloris x 8: the API answered in $((t1 - t0)) ms, they got 408 after 10 s"

# 5. A second agent on the port: refused, the first one keeps it.
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" >/dev/null 2>"$W/second.log" &
SECOND=$!
for _ in $(seq 50); do kill -0 "$SECOND" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SECOND" 2>/dev/null && { signal_job TERM "$SECOND"; fail "a second agent started on port $PORT"; }
wait "$SECOND" && fail "the second agent exited 0"
grep -q "in use (is another bpftap agent running?)" "$W/second.log" || fail "second agent: $(cat "$W/second.log")"
for _ in $(seq 20); do assert_eq 200 "$(api -o /dev/null -w '%{http_code}' "$API/metrics")" "the first agent after the second one"; done
echo "  a second agent on the port: $(tail -1 "$W/second.log")"

# 6. An address other hosts can reach: refused unless allow_remote: true (then a warning).
printf 'api:\n  listen: 0.0.0.0:%s\n' $((PORT + 1)) >"$W/remote.yaml"
set +e
ns_exec host "$BPFTAP" agent --config "$W/remote.yaml" 2>"$W/remote.log"
rc=$?
set -e
assert_eq 2 "$rc" "listen 0.0.0.0 without allow_remote"
grep -q "allow_remote: true" "$W/remote.log" || fail "no reason given: $(cat "$W/remote.log")"
printf 'api:\n  listen: 0.0.0.0:%s\n  allow_remote: true\n' $((PORT + 1)) >"$W/remote.yaml"
ns_exec host "$BPFTAP" agent --config "$W/remote.yaml" 2>"$W/remote.log" &
REMOTE=$!
wait_for_line "$W/remote.log" "agent ready"
grep -q "other hosts can reach" "$W/remote.log" || fail "no warning for a remote listen: $(cat "$W/remote.log")"
signal_job TERM "$REMOTE"
wait "$REMOTE" || fail "the remote agent exited $?"
echo "  listen 0.0.0.0: refused without allow_remote, a warning with it"

alive
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
echo "PASS: agent limits: descriptors, connections, bodies, slow clients, a second agent, remote listen"
