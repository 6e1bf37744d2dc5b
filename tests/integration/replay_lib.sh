# shellcheck shell=bash
# Replaying corpus captures from vm1 while bpftap and tcpdump capture the same taps.

# Ethernet captures of the corpus (all of them, or the first $1).
corpus_ethernet_pcaps() {
  local limit="${1:-100000}"
  awk -F'\t' -v dir="$BPFTAP_CORPUS/ndpi" '$3 == "ether" { print dir "/" $1 }' \
    "$BPFTAP_CORPUS/ndpi-index.tsv" | head -n "$limit"
}

# wait_for_line FILE TEXT [SECONDS]: until FILE contains TEXT.
wait_for_line() {
  local i
  for ((i = 0; i < ${3:-10} * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $1: $(cat "$1" 2>/dev/null)"
}

# log_time_ms FILE PATTERN: epoch milliseconds of the last line of a bpftap log (spdlog's
# "2026-11-22T03:07:38.716 ..." stamps, local time) that matches PATTERN.
log_time_ms() {
  local stamp
  stamp=$(grep -- "$2" "$1" | tail -1 | awk '{ print $1 }')
  [[ -n "$stamp" ]] || fail "no line matching '$2' in $1"
  date -d "${stamp/T/ }" +%s%3N
}

# start_tcpdump NAME IFACE [EXPRESSION...]: tcpdump in the lab host namespace, writing
# $WORKDIR/NAME.pcap with nanosecond timestamps and a large buffer; sets TCPDUMP_PIDS.
TCPDUMP_PIDS=()
start_tcpdump() {
  local name="$1" iface="$2"; shift 2
  rm -f "$WORKDIR/$name.err"  # a previous run's "listening on" must not count for this one
  ns_exec host tcpdump -i "$iface" -s 262144 -B 262144 --time-stamp-precision nano \
    -w "$WORKDIR/$name.pcap" "$@" 2>"$WORKDIR/$name.err" &
  TCPDUMP_PIDS+=($!)
  wait_for_line "$WORKDIR/$name.err" "listening on"
}

# signal_job SIGNAL PID: a job started as `ns_exec ... &` is a subshell whose child is the real
# command (ip netns exec execs it): signal that child.
signal_job() {
  pkill "-$1" -P "$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true
}

# stop_tcpdumps: SIGINT every tcpdump and check none dropped a packet (else the comparison
# would measure tcpdump, not bpftap).
stop_tcpdumps() {
  local pid f
  for pid in "${TCPDUMP_PIDS[@]}"; do signal_job INT "$pid"; done
  for pid in "${TCPDUMP_PIDS[@]}"; do wait "$pid" || true; done
  TCPDUMP_PIDS=()
  for f in "$WORKDIR"/*.err; do
    if grep -q "packets dropped by kernel" "$f" && ! grep -q "^0 packets dropped by kernel" "$f"; then
      fail "tcpdump dropped packets ($f): $(cat "$f")"
    fi
  done
}

# replay_corpus NS FILE...: tcpreplay each file at top speed from the lab namespace NS, one file
# at a time (a malformed capture aborts tcpreplay, but only for that file). Prints the totals.
replay_corpus() {
  local ns="$1" f sent=0 failed=0 bad_files=0 out; shift
  for f in "$@"; do
    out=$(ns_exec "$ns" tcpreplay -q -i eth0 --topspeed "$f" 2>&1) || bad_files=$((bad_files + 1))
    sent=$((sent + $(awk '/Successful packets:/ { print $3 }' <<<"$out" | tail -1 | grep . || echo 0)))
    failed=$((failed + $(awk '/Failed packets:/ { print $3 }' <<<"$out" | tail -1 | grep . || echo 0)))
  done
  echo "replayed $# files: $sent packets sent, $failed not sent (over the MTU), $bad_files files tcpreplay could not finish"
}

# tcpdump_in NS NAME IFACE [ARGS...]: like start_tcpdump, in any lab namespace, writing
# $WORKDIR/NAME.pcap.
tcpdump_in() {
  local ns="$1" name="$2" iface="$3"; shift 3
  rm -f "$WORKDIR/$name.err"
  ns_exec "$ns" tcpdump -i "$iface" -s 262144 -B 65536 -w "$WORKDIR/$name.pcap" "$@" 2>"$WORKDIR/$name.err" &
  TCPDUMP_PIDS+=($!)
  wait_for_line "$WORKDIR/$name.err" "listening on"
}
