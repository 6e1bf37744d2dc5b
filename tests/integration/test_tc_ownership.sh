#!/usr/bin/env bash
# bpftap touches only what is its own (issue 13, items 8 and 9), with --attach tc:
#  - a clsact qdisc bpftap created, on which another tool put a filter meanwhile, stays with that
#    filter when bpftap exits (both used to be deleted), and when `bpftap cleanup` runs after a
#    SIGKILL; only bpftap's own filter goes;
#  - a qdisc another tool created, with its filter, stays after bpftap's exit and cleanup;
#  - a second --attach tc on a hook bpftap's tc filter holds is refused, and leaves the first one's
#    filter in place (it used to delete it);
#  - a file in /run/bpftap/qdiscs that is not bpftap's (a stray name) is left alone with a
#    warning: cleanup and the agent go on (they used to exit 1 with just "bpftap: stoul").
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tc capinfos
make_workdir
lab_up
W=$WORKDIR
# Another tool's filter: a classic-BPF cls_bpf that accepts everything, at priority 7.
foreign_filter() { ns_exec host tc filter add dev "$1" "$2" prio 7 bpf bytecode "1,6 0 0 4294967295," classid 1:1; }
has_foreign() { tc_has "$1" "$2" "pref 7 bpf"; }
has_ours() { tc_has "$1" "$2" "bpftap_"; }
has_qdisc() { local o; o=$(ns_exec host tc qdisc show dev "$1"); grep -q clsact <<<"$o"; }

capture_until() {  # capture_until DONE-FILE ARGS...: a tc capture that runs until DONE-FILE exists
  local done=$1; shift
  ns_exec host "$BPFTAP" capture --attach tc "$@" -w "$W/c.pcapng" 2>"$W/c.log" &
  CAP=$!
  wait_for_line "$W/c.log" "listening on"
}

# 1. bpftap creates the qdisc; another tool adds its filter while bpftap runs; bpftap exits.
has_qdisc tap-vm1 && fail "tap-vm1 has a clsact qdisc before the test"
capture_until x -i tap-vm1
has_qdisc tap-vm1 || fail "bpftap did not create the qdisc"
foreign_filter tap-vm1 ingress
signal_job INT "$CAP"
wait "$CAP" || fail "capture exited $?"
has_qdisc tap-vm1 || fail "bpftap's exit deleted the qdisc holding another tool's filter"
has_foreign tap-vm1 ingress || fail "bpftap's exit deleted another tool's filter"
has_ours tap-vm1 ingress && fail "bpftap's own filter stayed"
echo "  exit: the qdisc bpftap created stays, with the other tool's filter; bpftap's filter is gone"
ns_exec host tc qdisc del dev tap-vm1 clsact

# 2. The same after a SIGKILL, through cleanup.
capture_until x -i tap-vm2
foreign_filter tap-vm2 egress
signal_job KILL "$CAP"
wait "$CAP" 2>/dev/null || true
has_ours tap-vm2 ingress || fail "expected bpftap's filter left by the killed capture"
ns_exec host "$BPFTAP" cleanup >"$W/cleanup.out" 2>"$W/cleanup.err" || fail "cleanup: $(cat "$W/cleanup.err")"
has_ours tap-vm2 ingress && fail "cleanup left bpftap's filter"
has_qdisc tap-vm2 || fail "cleanup deleted the qdisc holding another tool's filter"
has_foreign tap-vm2 egress || fail "cleanup deleted another tool's filter"
grep -q "other filters are on it now" "$W/cleanup.err" || fail "cleanup did not say why it left the qdisc: $(cat "$W/cleanup.err")"
echo "  SIGKILL + cleanup: bpftap's filter removed, the qdisc kept for the other tool ($(cat "$W/cleanup.err"))"
ns_exec host tc qdisc del dev tap-vm2 clsact

# 3. Another tool's qdisc and filter, there before bpftap.
ns_exec host tc qdisc add dev tap-atk clsact
foreign_filter tap-atk ingress
capture_until x -i tap-atk
signal_job INT "$CAP"
wait "$CAP" || fail "capture exited $?"
has_qdisc tap-atk && has_foreign tap-atk ingress || fail "bpftap's exit removed another tool's qdisc or filter"
capture_until x -i tap-atk
signal_job KILL "$CAP"
wait "$CAP" 2>/dev/null || true
ns_exec host "$BPFTAP" cleanup >/dev/null 2>&1 || fail "cleanup failed"
has_qdisc tap-atk && has_foreign tap-atk ingress || fail "cleanup removed another tool's qdisc or filter"
has_ours tap-atk ingress && fail "cleanup left bpftap's filter"
ns_exec host tc qdisc del dev tap-atk clsact
echo "  another tool's qdisc and filter: kept by bpftap's exit and by cleanup"

# 4. A second tc capture on the same hook is refused, and the first one's filter is left working
#    (the failed attach used to delete it on its way out: same handle and priority).
capture_until x -i tap-vm1
set +e
ns_exec host timeout 10 "$BPFTAP" capture --attach tc -i tap-vm1 -w "$W/second.pcapng" 2>"$W/second.log"
rc=$?
set -e
(( rc != 0 )) || fail "a second tc capture on tap-vm1 started"
grep -q "already has its tc filter there" "$W/second.log" || fail "second capture: $(cat "$W/second.log")"
has_ours tap-vm1 ingress || fail "the second capture's failed attach deleted the first one's filter"
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm1 cannot ping vm2"
signal_job INT "$CAP"
wait "$CAP" || fail "capture exited $?"
got=$(capinfos -M -c "$W/c.pcapng" | awk '/Number of packets/ { print $NF }')
(( got >= 6 )) || fail "the first capture kept $got packets after the second one failed, expected 6 (3 echo requests and replies)"
has_qdisc tap-vm1 && fail "the first capture's exit left its qdisc"
echo "  a second tc capture on tap-vm1: refused (exit $rc), the first kept its filter and $got packets"

# 5. A stray file among bpftap's state files.
nsid=$(ns_exec host stat -L -c %i /proc/self/ns/net)
mkdir -p /run/bpftap/qdiscs
stray="/run/bpftap/qdiscs/$nsid-notanumber"
touch "$stray"
set +e
ns_exec host "$BPFTAP" cleanup >"$W/cleanup.out" 2>"$W/cleanup.err"
rc=$?
set -e
printf 'api:\n  listen: 127.0.0.1:%s\n' $((20000 + RANDOM % 20000)) >"$W/agent.yaml"
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
grep -q "not a bpftap state file" "$W/agent.log" || fail "the agent did not warn about the stray file: $(cat "$W/agent.log")"
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $?"
rm -f "$stray"
assert_eq 0 "$rc" "cleanup with a stray state file ($(cat "$W/cleanup.err"))"
grep -q "not a bpftap state file" "$W/cleanup.err" || fail "no warning for the stray file: $(cat "$W/cleanup.err")"
grep -q stoul "$W/cleanup.err" && fail "cleanup: $(cat "$W/cleanup.err")"
echo "  a stray state file: cleanup and the agent go on, and say: $(cat "$W/cleanup.err")"
assert_nothing_attached tap-vm1 tap-vm2 tap-atk
echo "PASS: --attach tc removes only bpftap's filters, and its qdiscs only when nothing else is on them"
