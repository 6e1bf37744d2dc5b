#!/usr/bin/env bash
# What vanishes is reported (issue 13, item 11), and the capture command line is as strict as
# tcpdump's:
#  - bpftap capture whose only interface is deleted exits 1 with tcpdump's summary, as tcpdump
#    does (it used to run on silently); with two, the one that goes is said and it goes on;
#  - bpftap mirror whose target is deleted says so and exits 1 with its counters;
#  - the agent: a mirror session whose target is deleted turns failing with the reason, logs it,
#    counts it (bpftap_mirror_target_lost_total), and restarts when the target is back; a
#    deleted interface counts in bpftap_interfaces_gone_total;
#  - -C -1, -C 0, -G 0, -W 0, -c 0 and -i '' are refused (exit 2); `ip broadcast` is accepted,
#    as tcpdump accepts it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 capinfos
make_workdir
lab_up
W=$WORKDIR
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token
add_vm3() {  # a VM whose tap is tap-vm3, without an agent to watch it
  ip netns add "${P}vm3"
  ns_exec host ip link add tap-vm3 type veth peer name eth0 netns "${P}vm3"
  ns_exec host ip link set tap-vm3 master br0
  ns_exec host ip link set tap-vm3 up
  ns_exec vm3 ip addr add 10.77.0.3/24 dev eth0
  ns_exec vm3 ip link set eth0 up
}

# 1. capture: its only interface goes.
add_vm3
ns_exec host "$BPFTAP" capture -i tap-vm3 -w "$W/vm3.pcapng" 2>"$W/cap.err" &
CAP=$!
wait_for_line "$W/cap.err" "listening on"
ns_exec vm3 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null || true
ip netns del "${P}vm3"
rc=0
for _ in $(seq 30); do kill -0 "$CAP" 2>/dev/null || break; sleep 0.1; done
kill -0 "$CAP" 2>/dev/null && { signal_job INT "$CAP"; fail "capture went on after its only interface was deleted"; }
wait "$CAP" || rc=$?
assert_eq 1 "$rc" "capture's exit code when its interface went away"
grep -q "tap-vm3 went away" "$W/cap.err" || fail "not said: $(cat "$W/cap.err")"
grep -q "every interface went away" "$W/cap.err" || fail "not said: $(cat "$W/cap.err")"
grep -q "^[0-9]* packets captured" "$W/cap.err" || fail "no summary: $(cat "$W/cap.err")"
capinfos "$W/vm3.pcapng" >/dev/null || fail "the capture file is not readable"
echo "  capture: its only interface deleted -> $(grep -c . "$W/cap.err") lines, exit 1: $(grep "every interface" "$W/cap.err")"

# 2. capture: one of two goes.
add_vm3
ns_exec host "$BPFTAP" capture -i tap-vm3 -i tap-vm1 -w "$W/two.pcapng" 2>"$W/two.err" &
CAP=$!
wait_for_line "$W/two.err" "listening on"
ip netns del "${P}vm3"
wait_for_line "$W/two.err" "tap-vm3 went away" 3
sleep 0.5
kill -0 "$CAP" 2>/dev/null || fail "capture stopped when one of its two interfaces went away"
signal_job INT "$CAP"
wait "$CAP" || fail "capture exited $? after SIGINT"
echo "  capture: one of two deleted -> said, it went on, exit 0 at SIGINT"

# 3. mirror: its target goes.
ns_exec host ip link add tgt0 type veth peer name tgt0p
ns_exec host ip link set tgt0 up
ns_exec host ip link set tgt0p up
ns_exec host "$BPFTAP" mirror --from tap-vm1 --to tgt0 2>"$W/mirror.err" &
MIR=$!
wait_for_line "$W/mirror.err" "mirroring"
ns_exec host ip link del tgt0
rc=0
for _ in $(seq 30); do kill -0 "$MIR" 2>/dev/null || break; sleep 0.1; done
kill -0 "$MIR" 2>/dev/null && { signal_job INT "$MIR"; fail "mirror went on after its target was deleted"; }
wait "$MIR" || rc=$?
assert_eq 1 "$rc" "mirror's exit code when its target went away"
grep -q "the target tgt0 went away" "$W/mirror.err" || fail "not said: $(cat "$W/mirror.err")"
grep -q "tap-vm1 in: .* matched" "$W/mirror.err" || fail "no counters: $(cat "$W/mirror.err")"
echo "  mirror: its target deleted -> exit 1: $(grep "went away" "$W/mirror.err")"

# 4. The agent: a mirror session's target goes and comes back; a tap goes.
ns_exec host ip link add tgt0 type veth peer name tgt0p
ns_exec host ip link set tgt0 up
ns_exec host ip link set tgt0p up
cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: feed
    interfaces: ["tap-*"]
    direction: in
    filter: icmp
    mirror: { to: tgt0 }
YAML
api() { ns_exec host curl -s -m 5 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
field() { get "/v1/sessions/$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"; }
ns_exec vm1 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null
sleep 0.3
m0=$(counter feed tap-vm1 mirrored)
(( m0 >= 2 )) || fail "nothing mirrored to tgt0 at first ($m0)"
ns_exec host ip link del tgt0
wait_for_line "$W/agent.log" "session feed: its target tgt0 went away" 3
assert_eq failing "$(state feed)" "the session whose target went away"
field feed reason | grep -q "its target tgt0 went away" || fail "reason: $(field feed reason)"
assert_eq 1 "$(metric bpftap_mirror_target_lost_total 'session="feed"')" "bpftap_mirror_target_lost_total"
ns_exec host ip link add tgt0 type veth peer name tgt0p
ns_exec host ip link set tgt0 up
ns_exec host ip link set tgt0p up
wait_for_line "$W/agent.log" "session feed: its target is back: restarted" 5
assert_eq running "$(state feed)" "the session once its target is back"
ns_exec vm1 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null
sleep 0.3
m1=$(counter feed tap-vm1 mirrored)
(( m1 >= m0 + 2 )) || fail "mirroring did not resume ($m0 -> $m1)"
assert_eq 1 "$(field feed target_lost)" "target_lost kept across the restart"
add_vm3
for _ in $(seq 30); do [[ " $(attached feed) " == *" tap-vm3 "* ]] && break; sleep 0.1; done
ip netns del "${P}vm3"
wait_for_line "$W/agent.log" "session feed: tap-vm3 went away" 3
assert_eq 1 "$(metric bpftap_interfaces_gone_total 'session="feed"')" "bpftap_interfaces_gone_total"
# Interfaces that come and go for ever: the counters of the latest 128 are kept by name, older
# ones are summed under "(gone)" (the API's answers and the metrics stay bounded).
for i in $(seq 140); do ns_exec host ip link add "tap-g$i" type veth peer name "pg$i"; done
for _ in $(seq 50); do (( $(get /v1/sessions/feed | grep -o '"tap-g[0-9]*"' | wc -l) >= 140 )) && break; sleep 0.2; done
for i in $(seq 140); do ns_exec host ip link del "tap-g$i"; done
for _ in $(seq 50); do (( $(metric bpftap_interfaces_gone_total 'session="feed"') == 141 )) && break; sleep 0.2; done
assert_eq 141 "$(metric bpftap_interfaces_gone_total 'session="feed"')" "interfaces gone"
get /v1/sessions/feed | python3 -c '
import json, sys
c = json.load(sys.stdin)["counters"]
gone = [x for x in c if not x["attached"] and x["interface"] != "(gone)"]
folded = [x for x in c if x["interface"] == "(gone)"]
assert len(gone) == 128, f"{len(gone)} gone interfaces listed by name"
assert len(folded) == 1, f"{len(folded)} folded entries"
print(f"  141 interfaces gone: 128 listed by name, the rest summed under (gone)")
' || fail "the counters of interfaces gone are not bounded"
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $?"
echo "  agent: target deleted -> failing, logged, counted; back -> restarted, mirroring again ($m0 -> $m1)"

# 5. The command line.
expect_bad() {
  local rc=0
  ns_exec host "$BPFTAP" capture "$@" >/dev/null 2>"$W/err" </dev/null || rc=$?
  assert_eq 2 "$rc" "exit code of capture $* ($(cat "$W/err"))"
  assert_eq 1 "$(wc -l <"$W/err")" "stderr lines of capture $*"
}
expect_bad -i tap-vm1 -w "$W/r" -C -1
expect_bad -i tap-vm1 -w "$W/r" -C 0
expect_bad -i tap-vm1 -w "$W/r" -G 0
expect_bad -i tap-vm1 -w "$W/r" -C 1 -W 0
expect_bad -i tap-vm1 -c 0
expect_bad -i ''
expect_bad -i tap-vm1 -i ''
ns_exec host tcpdump -d -i tap-vm1 ip broadcast >/dev/null 2>&1 || skip "tcpdump refuses ip broadcast here"
ns_exec host "$BPFTAP" capture -i tap-vm1 -w "$W/b.pcapng" ip broadcast 2>"$W/b.err" &
CAP=$!
wait_for_line "$W/b.err" "listening on"
signal_job INT "$CAP"
wait "$CAP" || fail "capture of ip broadcast exited $?: $(cat "$W/b.err")"
echo "  -C -1, -C 0, -G 0, -W 0, -c 0, -i '': refused; ip broadcast: accepted, as tcpdump does"
assert_nothing_attached tap-vm1 tap-vm2 tap-atk
echo "PASS: vanished interfaces and targets are reported; the command line is checked as tcpdump's"
