# shellcheck shell=bash
# Helpers sourced by every integration test (tests/integration/test_*.sh).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   require_root; require_cmd ping
#   lab_up                      # sets P, installs an EXIT trap that always tears the lab down
#   ns_exec vm1 ping -c 1 10.77.0.2
#
# Environment (set by ctest): BPFTAP (binary), BPFTAP_CORPUS (pcap corpus), BPFTAP_SRC.
# Exit codes: 0 pass, 1 fail, 77 skipped.
set -euo pipefail

: "${BPFTAP:?set BPFTAP to the bpftap binary}"
P="${P:-}"  # lab prefix; lab_up picks a unique one when empty
WORKDIR="" # scratch directory from make_workdir, removed by the lab_up trap

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

require_root() { [[ $(id -u) -eq 0 ]] || skip "needs root"; }

require_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "missing command: $c"; done
}

# assert_eq EXPECTED ACTUAL [what]
assert_eq() {
  [[ "$1" == "$2" ]] || fail "${3:-value}: expected '$1', got '$2'"
}

# Namespaces whose name starts with $1 (one per line).
lab_namespaces() { ip netns list | awk -v p="$1" 'index($1, p) == 1 { print $1 }'; }

# "t" + 6 random hex digits + "-" (8 chars), not used by any existing namespace.
unique_prefix() {
  local p
  while :; do
    p="t$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-"
    [[ -z "$(lab_namespaces "$p")" ]] && { echo "$p"; return; }
  done
}

# ns_exec NAME cmd... : run cmd in the lab namespace ${P}NAME (host, vm1, vm2, atk, mon).
ns_exec() {
  local ns="$1"; shift
  ip netns exec "${P}${ns}" "$@"
}

# Kills a process and all its descendants (a job started as `ns_exec ... &` is a subshell
# whose child is the real command).
_kill_tree() {
  local c
  for c in $(pgrep -P "$1"); do _kill_tree "$c"; done
  kill "$1" 2>/dev/null
}

_lab_cleanup() {
  local rc=$? pids=()
  set +e
  trap - EXIT INT TERM HUP
  read -ra pids <<<"$(jobs -pr | tr '\n' ' ')" # $(jobs) sees our jobs; <(jobs) would not
  local pid
  for pid in "${pids[@]}"; do _kill_tree "$pid"; done
  (( ${#pids[@]} == 0 )) || wait "${pids[@]}" 2>/dev/null
  if [[ -n "$P" ]]; then
    "$BPFTAP" lab down --prefix "$P" >/dev/null 2>&1
    # If bpftap itself is broken, still leave nothing behind.
    local ns
    for ns in $(lab_namespaces "$P"); do ip netns del "$ns" 2>/dev/null; done
  fi
  if [[ -n "$WORKDIR" && -n "${KEEP_WORKDIR:-}" ]]; then echo "kept $WORKDIR" >&2; elif [[ -n "$WORKDIR" ]]; then rm -rf -- "$WORKDIR"; fi
  exit "$rc"
}

# Sets WORKDIR to a fresh scratch directory (removed on exit once lab_up has run).
make_workdir() { [[ -n "$WORKDIR" ]] || WORKDIR=$(mktemp -d /tmp/bpftap-test.XXXXXX); }

# Creates the lab (prefix $P, chosen here if empty) and installs the cleanup trap first, so
# even a failing `lab up`, a failed assertion or Ctrl-C leaves no namespace behind.
# (bash runs the trap for a signal only once the current foreground command ends: wait for
# long commands with `cmd & wait $!`.)
lab_up() {
  [[ -n "$P" ]] || P=$(unique_prefix)
  trap _lab_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  "$BPFTAP" lab up --prefix "$P" || fail "bpftap lab up --prefix $P"
}

lab_down() {
  "$BPFTAP" lab down --prefix "$P" >/dev/null || fail "bpftap lab down --prefix $P"
}

# No bpftap program is loaded anywhere, and IFACEs in the lab host namespace have no clsact
# qdisc: what every exit path must leave behind. Programs cannot be told apart by lab: when a
# bpftap that is not this test's runs on the machine (another lab's test), the program check is
# left out rather than blaming this test for its programs.
assert_nothing_attached() {
  local i progs try p others=0
  for p in $(pgrep -x bpftap); do
    _descends_from_us "$p" || others=$((others + 1))
  done
  if (( others == 0 )); then
    # Detached tc filters release their program after an RCU grace period: allow a moment.
    for try in $(seq 30); do
      progs=$(bpftool prog show 2>/dev/null | grep -E "name bpftap_" || true)
      [[ -z "$progs" ]] && break
      sleep 0.1
    done
    [[ -z "$progs" ]] || fail "bpftap programs still loaded: $progs"
  fi
  for i in "$@"; do
    ns_exec host tc qdisc show dev "$i" | grep -q clsact && fail "clsact qdisc left on $i"
  done
  return 0
}

# bpftap's VXLAN devices (bpftap-vx…) in the lab namespace $1, one per line.
# tc_has DEV DIR PATTERN: does `tc filter show` of the lab host's DEV (ingress|egress) hold PATTERN?
# The output is read whole first: with pipefail, `tc ... | grep -q` fails when grep stops early.
tc_has() { local o; o=$(ns_exec host tc filter show dev "$1" "$2"); grep -q "$3" <<<"$o"; }
tc_filters() { ns_exec host tc filter show dev "$1" "$2"; }  # for messages

vxlan_devs() { ns_exec "$1" ip -o link show type vxlan | sed -n 's/^[0-9]*: \(bpftap-vx[0-9a-f]*\)[:@].*/\1/p'; }
# Asserts that the lab namespace $1 has exactly one bpftap VXLAN device, sending to $2 with VNI $3
# (a fixed-remote device, as for tc mirred), and prints its name.
vxlan_dev_to() {
  local devs; devs=$(vxlan_devs "$1")
  [[ $(wc -w <<<"$devs") == 1 ]] || fail "expected one bpftap VXLAN device in $P$1, found: '$devs'"
  ns_exec "$1" ip -d link show "$devs" | grep -q "vxlan id $3 remote $2 " ||
    fail "$devs does not send to $2 VNI $3: $(ns_exec "$1" ip -d link show "$devs")"
  echo "$devs"
}

# tcx_progs NS IFACE in|out: how many programs are attached to the TCX hook of IFACE in the lab
# namespace ${P}NS (BPF_PROG_QUERY; bookworm's bpftool 7.1 does not show TCX). x86_64 only.
tcx_progs() {
  ns_exec "$1" python3 - "$2" "$3" <<'PY'
import ctypes, socket, sys
attr = (ctypes.c_uint8 * 64)()
ctypes.c_uint32.from_buffer(attr, 0).value = socket.if_nametoindex(sys.argv[1])
ctypes.c_uint32.from_buffer(attr, 4).value = 46 if sys.argv[2] == "in" else 47  # BPF_TCX_INGRESS/EGRESS
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(ctypes.c_long(321), ctypes.c_long(16), attr, ctypes.c_long(64)) != 0:  # bpf(BPF_PROG_QUERY)
    sys.exit(f"BPF_PROG_QUERY {sys.argv[1]}: errno {ctypes.get_errno()}")
print(ctypes.c_uint32.from_buffer(attr, 24).value)  # prog_cnt
PY
}

# Is process $1 this test or one of its descendants?
_descends_from_us() {
  local p=$1
  while [[ -n "$p" && "$p" != 0 && "$p" != 1 ]]; do
    [[ "$p" == "$$" ]] && return 0
    p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)
  done
  return 1
}
