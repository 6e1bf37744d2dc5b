#!/usr/bin/env bash
# bpftap mirror --to: what the monitor namespace receives equals, packet for packet and byte for
# byte, what tcpdump sees on the source hook (all packets, and with a filter); the originals at
# vm2 are identical with and without the session; counters add up; bad input exits 2 with
# nothing attached. The same with --attach tc, where tc's mirred action makes the copies; that
# hook stays after SIGKILL, and `bpftap cleanup` removes it with its action.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tcpdump tcpreplay bpftool capinfos ping
: "${PCAPCMP:?set PCAPCMP to the pcapcmp tool}"
make_workdir
lab_up
W=$WORKDIR
mapfile -t pcaps < <(corpus_ethernet_pcaps "${REPLAY_LIMIT:-80}")

# Round 1: no mirror, what vm2 receives.
tcpdump_in vm2 vm2-plain eth0
replay_corpus vm1 "${pcaps[@]}" | sed "s/^/  /"
sleep 1.2
stop_tcpdumps

# mirror_round NAME [EXPRESSION...]: mirror tap-vm1 ingress to mon0 (with bpftap's options in
# $extra) while tcpdump watches the same hook, the monitor and vm2.
extra=()
mirror_round() {
  local name="$1"; shift
  tcpdump_in vm2 "vm2-$name" eth0
  tcpdump_in mon "mon-$name" eth0
  tcpdump_in host "ref-$name" tap-vm1 -Q in "$@"
  ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --to mon0 "${extra[@]}" "$@" 2>"$W/m-$name.log" &
  local m=$!
  wait_for_line "$W/m-$name.log" "mirroring"
  replay_corpus vm1 "${pcaps[@]}" >/dev/null
  sleep 1.2
  signal_job TERM "$m"
  wait "$m" || fail "bpftap mirror exited $?: $(cat "$W/m-$name.log")"
  stop_tcpdumps
  sed "s/^/  $name: /" "$W/m-$name.log"
  "$PCAPCMP" "$W/mon-$name.pcap" - "$W/ref-$name.pcap" --no-ts || fail "$name: monitor copy differs from the source"
  "$PCAPCMP" "$W/vm2-plain.pcap" - "$W/vm2-$name.pcap" --no-ts || fail "$name: originals changed under the mirror"
  local mirrored got
  mirrored=$(awk '/tap-vm1 in:/ { print $5 }' "$W/m-$name.log")
  got=$(capinfos -M -c "$W/mon-$name.pcap" | awk '/Number of packets/ { print $NF }')
  assert_eq "$got" "$mirrored" "$name: packets at the monitor vs mirrored counter"
  grep -q " 0 failed" "$W/m-$name.log" || fail "$name: failed clones"
}
mirror_round all
mirror_round filtered 'udp or vlan'
assert_nothing_attached tap-vm1
extra=(--attach tc)
mirror_round tc-mirred
ns_exec host tc qdisc show dev tap-vm1 | grep -q clsact && fail "--attach tc left its clsact qdisc"
assert_nothing_attached tap-vm1

# --attach tc and SIGKILL: the filter and its mirred action stay (copies still go out) until
# `bpftap cleanup`.
ns_exec host "$BPFTAP" mirror --from tap-vm1 --to mon0 --attach tc 2>"$W/m-kill.log" &
m=$!
wait_for_line "$W/m-kill.log" "mirroring"
kill -KILL "$m"; wait "$m" 2>/dev/null || true
tc_has tap-vm1 ingress "mirred (Egress Mirror to device mon0)" || fail "after SIGKILL: no mirred action on tap-vm1: $(tc_filters tap-vm1 ingress)"
tx0=$(ns_exec host cat /sys/class/net/mon0/statistics/tx_packets)
ns_exec vm1 ping -c 3 -i 0.2 -q 10.77.0.2 >/dev/null
tx1=$(ns_exec host cat /sys/class/net/mon0/statistics/tx_packets)
(( tx1 - tx0 >= 3 )) || fail "after SIGKILL: the left filter sent $((tx1 - tx0)) copies of 3 pings to mon0"
ns_exec host "$BPFTAP" cleanup | sed "s/^/  cleanup: /"
[[ -z "$(ns_exec host tc filter show dev tap-vm1 ingress)" ]] || fail "cleanup left a filter on tap-vm1 ingress"
[[ -z "$(ns_exec host tc filter show dev tap-vm1 egress)" ]] || fail "cleanup left a filter on tap-vm1 egress"
assert_nothing_attached tap-vm1

# Bad input: exit 2, one line, nothing attached.
for args in "--from tap-vm1 --to nosuch0" "--from tap-vm1 --to tap-vm1" "--from tap-vm1 --to mon0 tcp port" \
            "--from nosuch0 --to mon0" "--from tap-vm1" "--from tap-vm1 --to mon0 --vxlan 10.77.1.1 --vni 1" \
            "--from tap-vm1 --vxlan 10.77.1.1" "--from tap-vm1 --vxlan 10.77.1.1 --vni 16777216" \
            "--from tap-vm1 --vxlan 10.77.1.300 --vni 1" "--from tap-vm1 --vxlan 10.77.1.1 --vni 1 --local ::1" \
            "--from tap-vm1 --to mon0 -s 20" "--from tap-vm1 --to mon0 --rule '10 allow'" \
            "--from tap-vm1 --to mon0 --rule '0 accept'" "--from tap-vm1 --to mon0 --rules-file /nonexistent" \
            "--from tap-vm1 --vxlan 10.77.1.1 --vni 1 --vxlan-port 0" "--from tap-vm1 --to mon0 --local 10.77.0.1"; do
  rc=0
  eval "argv=($args)"
  ns_exec host "$BPFTAP" mirror "${argv[@]}" 2>"$W/err" || rc=$?
  assert_eq 2 "$rc" "exit code for mirror $args"
  assert_eq 1 "$(wc -l <"$W/err")" "one-line error for mirror $args"
  echo "  mirror $args -> $(cat "$W/err")"
done
assert_nothing_attached tap-vm1
assert_eq "" "$(vxlan_devs host)" "VXLAN devices left after bad input"
echo "PASS: mirror copies (by bpf_clone_redirect and by tc's mirred) equal the source hook's packets; originals untouched; --attach tc + SIGKILL: cleanup removes it; bad input exits 2"
