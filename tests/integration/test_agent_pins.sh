#!/usr/bin/env bash
# The agent pins its TCX links in bpffs (/sys/fs/bpf/bpftap/agent-<pidns>-<pid>-<starttime>) instead of
# holding a descriptor for each. It runs here with only its network namespace changed (nsenter
# --net, not `ip netns exec`, whose private mount namespace would take the pins with it when the
# agent dies), so its pins outlive it as under systemd with the host's /sys/fs/bpf:
#  - its taps' links are pinned in its directory, one per session and hook;
#  - SIGKILL: the programs stay attached (the documented price) and so does the directory;
#    `bpftap cleanup` detaches them, one line per link, and removes the directory;
#  - SIGKILL again: the next start removes its predecessor's pins, and attaches again;
#  - `bpftap cleanup` leaves a running agent's pins (and says so);
#  - SIGTERM: its directory removed, nothing attached.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 nsenter
make_workdir
lab_up
W=$WORKDIR
PINS=/sys/fs/bpf/bpftap
AGENTS=()  # every agent pid started: their pin directories go in the trap, even on failure
BEFORE=" $( (ls "$PINS" 2>/dev/null || true) | tr '\n' ' ') "  # pin directories that are not this test's
BPFFS_BEFORE=$(stat -f -c %T /sys/fs/bpf 2>/dev/null || true)  # "bpf_fs" if one was mounted already
_pins_cleanup() {
  local rc=$? a d pid
  for a in "${AGENTS[@]}"; do
    kill -KILL "$a" 2>/dev/null || true  # (errexit holds in a trap too)
  done
  for a in $(jobs -pr); do _kill_tree "$a" || true; done  # an agent whose pid was never learnt
  wait 2>/dev/null || true
  # Every pin directory this test's agents made (one whose pid was never learnt too), once its
  # agent is gone: unlinking a pin releases its link.
  for d in "$PINS"/agent-*; do
    [[ -d "$d" && "$BEFORE" != *" ${d##*/} "* ]] || continue
    pid=${d##*/}; pid=${pid#agent-*-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || rm -rf "$d"
  done
  # The host as found: the bpffs a killed agent mounted goes if nothing but the kernel's own
  # iterator files is left in it.
  rmdir "$PINS" 2>/dev/null || true
  if [[ "$BPFFS_BEFORE" != bpf_fs && "$(stat -f -c %T /sys/fs/bpf 2>/dev/null || true)" == bpf_fs &&
        -z "$(ls /sys/fs/bpf | grep -v '\.debug$' || true)" ]]; then
    umount /sys/fs/bpf || true
  fi
  (exit "$rc")
  _lab_cleanup
}
trap _pins_cleanup EXIT
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
api() { ns_exec host curl -s -m 5 "$@"; }
make_token

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: pin-capture
    interfaces: ["tap-vm*"]
    direction: in
    capture: { dir: $W/pcap }
  - name: pin-mirror
    interfaces: ["tap-vm*"]
    direction: in
    mirror: { to: mon0 }
YAML

start_agent() {  # start_agent LOG: sets AGENT, APID and DIR (its pin directory)
  nsenter --net="/run/netns/${P}host" "$BPFTAP" agent --config "$W/agent.yaml" 2>"$1" &
  AGENT=$!
  APID=$(agent_pid "$AGENT")
  AGENTS+=("$APID")
  wait_for_line "$1" "agent ready" 15
  for _ in $(seq 50); do
    [[ "$(attached pin-capture)/$(attached pin-mirror)" == "tap-vm1 tap-vm2/tap-vm1 tap-vm2" ]] && break
    sleep 0.1
  done
  assert_eq "tap-vm1 tap-vm2/tap-vm1 tap-vm2" "$(attached pin-capture)/$(attached pin-mirror)" "attached"
  grep -q "not pinned" "$1" && fail "the agent did not pin: $(cat "$1")"
  DIR=$(echo "$PINS/agent-"*"-$APID-"*)
  [[ -d "$DIR" ]] || fail "no pin directory $PINS/agent-*-$APID-*: $(ls "$PINS")"
}
# Both sessions' programs on each tap's ingress: 2 each.
assert_attached() {  # assert_attached COUNT WHAT
  assert_eq "$1 $1" "$(tcx_progs host tap-vm1 in) $(tcx_progs host tap-vm2 in)" "TCX programs on tap-vm1, tap-vm2 ($2)"
}
kill_agent() {
  kill -KILL "$APID"
  wait "$AGENT" 2>/dev/null || true  # bash reports the kill
}

start_agent "$W/agent1.log"
pinned=$(find "$DIR" -type f | wc -l)
(( pinned >= 4 )) || fail "expected at least 4 links pinned in $DIR (2 taps, 2 sessions), found $pinned: $(ls "$DIR")"
assert_eq 0 "$(find "/proc/$APID/fd" -lname 'anon_inode:bpf_link' | wc -l)" "link descriptors held by the agent"
assert_attached 2 "agent running"
echo "  $pinned links pinned in $DIR, no link descriptor held"

kill_agent
[[ -d "$DIR" ]] || fail "the killed agent's pin directory is gone"
assert_attached 2 "after SIGKILL: the documented price"
nsenter --net="/run/netns/${P}host" "$BPFTAP" cleanup >"$W/cleanup.out" 2>"$W/cleanup.err" || fail "cleanup: $(cat "$W/cleanup.err")"
assert_eq "$pinned" "$(grep -c "^removed TCX link link-.* of agent $APID (gone)$" "$W/cleanup.out")" "links removed by cleanup: $(cat "$W/cleanup.out")"
[[ -e "$DIR" ]] && fail "cleanup left $DIR"
assert_attached 0 "after cleanup"
echo "  SIGKILL: the programs stayed attached; bpftap cleanup removed the $pinned links and $DIR"

start_agent "$W/agent2.log"
DEAD=$DIR DEADPID=$APID
pinned=$(find "$DIR" -type f | wc -l)
kill_agent
assert_attached 2 "after the second SIGKILL"
start_agent "$W/agent3.log"
assert_eq "$pinned" "$(grep -c "removed leftover TCX link link-.* of agent $DEADPID (gone)" "$W/agent3.log")" \
  "links of the killed agent removed at start: $(cat "$W/agent3.log")"
[[ -e "$DEAD" ]] && fail "the restarted agent left its predecessor's $DEAD"
assert_attached 2 "the restarted agent's own two, nothing of its predecessor's"
echo "  SIGKILL + restart: the new agent removed its predecessor's $pinned links and attached again"

nsenter --net="/run/netns/${P}host" "$BPFTAP" cleanup >"$W/cleanup.out" 2>"$W/cleanup.err" || fail "cleanup: $(cat "$W/cleanup.err")"
grep -q "$DIR: agent $APID is running, its links left alone" "$W/cleanup.err" ||
  fail "cleanup did not say it left the running agent's pins: $(cat "$W/cleanup.err")"
grep -q "of agent $APID " "$W/cleanup.out" && fail "cleanup removed a running agent's links: $(cat "$W/cleanup.out")"
[[ -d "$DIR" ]] || fail "cleanup removed the running agent's $DIR"
assert_attached 2 "a running agent's, after cleanup"
echo "  bpftap cleanup left the running agent's pins"

signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
[[ -e "$DIR" ]] && fail "the agent left its pin directory $DIR"
assert_attached 0 "after SIGTERM"
echo "PASS: agent pins: no link descriptors; SIGKILL leaves the links until cleanup or the next start; SIGTERM leaves nothing"
