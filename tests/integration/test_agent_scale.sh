#!/usr/bin/env bash
# The agent with hundreds of taps: one capture session and one mirror session on tapS*, taps
# created while the agent runs. What must hold:
#  - every tap is attached to both sessions, each within 1 s of its creation (agent's log);
#  - the agent's threads do not grow with the taps, and its descriptors grow only by what each
#    tap needs of its own, its capture file: its TCX links are pinned in bpffs (a bpffs the agent
#    mounts in `ip netns exec`'s private mount namespace), not held; no BPF object, ring buffer,
#    map or reader per tap;
#  - SIGTERM exits 0 with nothing of bpftap's attached.
# TAPS=N (default 200) sets the number of taps; FILES=per-session gives the capture session one
# file for all its taps (capture.files; default per-interface): then no descriptor per tap for it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 nsenter
make_workdir
lab_up
W=$WORKDIR
N=${TAPS:-200}
FILES=${FILES:-per-interface}
FIRST=10
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: scale-capture
    interfaces: ["tapS*"]
    direction: in
    capture: { dir: $W/pcap, files: $FILES }
  - name: scale-mirror
    interfaces: ["tapS*"]
    direction: in
    mirror: { to: mon0 }
YAML

# add_taps FROM TO: veth pairs tapS<i> <-> pS<i> in the lab host namespace, up. Prints the
# creation time (epoch ms) of each tap into $W/created.
add_taps() {
  local i
  for ((i = $1; i < $2; i++)); do
    ns_exec host ip link add "tapS$i" type veth peer name "pS$i"
    echo "tapS$i $(date +%s%3N)" >>"$W/created"
    ns_exec host ip link set "tapS$i" up
    ns_exec host ip link set "pS$i" up
  done
}
count_attached() {  # count_attached SESSION
  get "/v1/sessions/$1" | python3 -c "import json,sys
try: d=json.load(sys.stdin); print(len({c['interface'] for c in d['counters'] if c['attached']}))
except Exception: print(-1)"
}
wait_attached() {  # wait_attached COUNT
  local s n
  for _ in $(seq 600); do
    n=0
    for s in scale-capture scale-mirror; do [[ $(count_attached $s) == "$1" ]] && n=$((n + 1)); done
    (( n == 2 )) && return 0
    sleep 0.1
  done
  fail "not every session attached $1 taps: capture $(count_attached scale-capture), mirror $(count_attached scale-mirror)"
}
usage() {  # threads fds of the agent process
  echo "$(ls /proc/$APID/task | wc -l) $(ls /proc/$APID/fd | wc -l)"
}

add_taps 0 $FIRST
mv "$W/created" "$W/created-before"  # these were there before the agent: not timed
api() { ns_exec host curl -s -m 5 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
APID=$(pgrep -P "$AGENT" || echo "$AGENT")
wait_attached $FIRST
read -r threads0 fds0 <<<"$(usage)"

t0=$(date +%s%3N)
add_taps $FIRST "$N"
wait_attached "$N"
total=$(( $(date +%s%3N) - t0 ))
read -r threads1 fds1 <<<"$(usage)"

# Each tap: from its creation to the later of its two "attached" log lines.
worst=0 worst_tap=""
while read -r tap created; do
  for s in scale-capture scale-mirror; do
    t=$(( $(log_time_ms "$W/agent.log" "session $s: attached $tap\$") - created ))
    if (( t > worst )); then worst=$t; worst_tap=$tap; fi
  done
done <"$W/created"
(( worst <= 1000 )) || fail "$worst_tap attached $worst ms after its creation (> 1 s)"

added=$((N - FIRST))
(( threads1 == threads0 )) || fail "threads grew with the taps: $threads0 with $FIRST taps, $threads1 with $N"
# Per tap: the capture session's file (none of its own with one file per session). Its two TCX
# links (one per session, direction in) are pinned: in the agent's pin directory, not among its
# descriptors. Slack: descriptors the agent opens for a moment (netlink, the API's connections).
per_tap=1 slack=8
if [[ $FILES == per-session ]]; then
  per_tap=0
  assert_eq "scale-capture-0.pcapng" "$(ls "$W/pcap")" "the per-session capture's files"
fi
(( fds1 - fds0 <= per_tap * added + slack )) ||
  fail "descriptors grew by $((fds1 - fds0)) for $added taps (more than $per_tap each + $slack): $(ls -l /proc/$APID/fd | tail -5)"
grep -q "not pinned" "$W/agent.log" && fail "the agent did not pin its links: $(grep "not pinned" "$W/agent.log")"
# The agent's mount namespace is ip netns exec's: its pins are seen from there.
pinned=$(nsenter -t "$APID" -m sh -c 'ls /sys/fs/bpf/bpftap/agent-*-$0-*/ | wc -l' "$APID")
(( pinned >= 2 * N )) || fail "expected at least $((2 * N)) pinned links (2 per tap), found $pinned"
# Idle: the taps carry no traffic; the agent's CPU over 3 s (utime + stime, clock ticks).
ticks() { awk '{ print $14 + $15 }' "/proc/$APID/stat"; }
c0=$(ticks); sleep 3; c1=$(ticks)
idle_pct=$(python3 -c "import os; print(round(($c1 - $c0) * 100 / os.sysconf('SC_CLK_TCK') / 3, 2))")
# Kernel memory of the agent's BPF maps (ring buffers included): memlock of every map fd.
locked_kb=$(cat /proc/$APID/fdinfo/* 2>/dev/null | awk '/^memlock:/ { s += $2 } END { print int(s / 1024) }')
rss_kb=$(awk '/VmRSS/ { print $2 }' /proc/$APID/status)
echo "  $N taps: all attached to both sessions, the slowest $worst ms after its creation ($worst_tap);" \
  "$added taps created and attached in $total ms"
echo "  threads $threads0 -> $threads1, descriptors $fds0 -> $fds1 ($(( (fds1 - fds0) / added )) per tap), $pinned links pinned," \
  "RSS $rss_kb kB, BPF maps $locked_kb kB, idle CPU $idle_pct % of a core"
echo "SCALE taps=$N files=$FILES attach_ms_max=$worst threads=$threads1 fds=$fds1 rss_kb=$rss_kb bpf_kb=$locked_kb idle_cpu_pct=$idle_pct" \
  >>"${SCALE_REPORT:-/dev/null}"

signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
assert_nothing_attached tapS0 "tapS$((N - 1))"
echo "PASS: agent with $N taps ($FILES files): attach within 1 s each, threads flat, descriptors $per_tap or fewer per tap (+ $slack), links pinned"
