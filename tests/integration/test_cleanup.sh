#!/usr/bin/env bash
# After SIGKILL: TCX hooks vanish with the process; cls_bpf hooks (--attach tc) stay until
# `bpftap cleanup`, which removes them and the clsact qdisc bpftap created — but never a qdisc
# that was there before bpftap.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd bpftool tc
make_workdir
lab_up
W=$WORKDIR

RUNS=0
start_and_kill() {  # start_and_kill ARGS...: capture, then SIGKILL it once it listens
  # A log of its own each time: the background job may open (and truncate) a shared one only
  # after wait_for_line has read the previous run's "listening on" (a CI failure: killed before
  # it attached, nothing left to clean).
  RUNS=$((RUNS + 1))
  local log="$W/k$RUNS.log"
  ns_exec host "$BPFTAP" capture "$@" -w "$W/k.pcapng" 2>"$log" &
  local job=$!
  wait_for_line "$log" "listening on"
  signal_job KILL "$job"
  wait "$job" 2>/dev/null || true
}

# TCX: the kernel detaches when the last fd goes away.
start_and_kill -i tap-vm1 -i tap-vm2 --attach tcx
assert_nothing_attached tap-vm1 tap-vm2
echo "  tcx: nothing left after SIGKILL"

# tc: the filters and our qdisc survive the kill...
start_and_kill -i tap-vm1 -i tap-vm2 --attach tc
tc_has tap-vm1 ingress bpftap_ingress || fail "expected a leftover tc filter to clean"
ns_exec host tc qdisc show dev tap-vm2 | grep -q clsact || fail "expected a leftover clsact qdisc"
# ...until cleanup.
ns_exec host "$BPFTAP" cleanup | sed "s/^/  cleanup: /"
assert_nothing_attached tap-vm1 tap-vm2
assert_eq "nothing to clean up" "$(ns_exec host "$BPFTAP" cleanup)" "second cleanup"

# A qdisc that existed before bpftap stays after a normal exit and after cleanup.
ns_exec host tc qdisc add dev tap-vm1 clsact
ns_exec host "$BPFTAP" capture -i tap-vm1 --attach tc -c 1 -w "$W/one.pcapng" 2>"$W/one.log" &
one=$!
wait_for_line "$W/one.log" "listening on"
ns_exec vm1 ping -c 2 -W 1 10.77.0.2 >/dev/null || true
wait "$one" || fail "tc capture exited non-zero"
ns_exec host tc qdisc show dev tap-vm1 | grep -q clsact || fail "bpftap removed a clsact qdisc it did not create"
tc_has tap-vm1 ingress bpftap && fail "tc filter left after a normal exit"
start_and_kill -i tap-vm1 --attach tc
ns_exec host "$BPFTAP" cleanup >/dev/null
ns_exec host tc qdisc show dev tap-vm1 | grep -q clsact || fail "cleanup removed a clsact qdisc bpftap did not create"
tc_has tap-vm1 ingress bpftap && fail "cleanup left a bpftap filter"
ns_exec host tc qdisc del dev tap-vm1 clsact
echo "PASS: SIGKILL + cleanup leave nothing; foreign qdiscs are kept"
