#!/usr/bin/env bash
# tcpdump's habits in bpftap capture: its refusals (-c 0, -C -1, -W 0, -i ''), a mistyped
# command, -D, combined short flags and no-op flags, text printed by tcpdump with the interface
# and direction, -i any, `| head` (quiet exit, summary on stderr), SIGUSR1 statistics, -F,
# interface statistics blocks in every pcapng file (rotation too), -r FILE with a filter into -w
# and printed, --format pcap's warning, one vocabulary (both, --snaplen, comma lists), and the
# privilege message without capabilities.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tcpdump tshark capinfos setpriv
: "${PCAPCMP:?set PCAPCMP to the pcapcmp tool}"
make_workdir
lab_up
W=$WORKDIR

# expect_refusal EXPECTED-TEXT ARGS...: exit 2 and exactly that one line.
expect_refusal() {
  local want="$1" rc=0; shift
  ns_exec host "$BPFTAP" "$@" >"$W/out" 2>"$W/err" || rc=$?
  assert_eq 2 "$rc" "exit code of bpftap $*"
  assert_eq 1 "$(wc -l <"$W/err")" "stderr lines of bpftap $* ($(cat "$W/err"))"
  grep -qF -- "$want" "$W/err" || fail "bpftap $*: expected '$want', got '$(cat "$W/err")'"
  echo "  bpftap $* -> $(cat "$W/err")"
}
expect_refusal "invalid packet count 0" capture -i tap-vm1 -c 0
expect_refusal "invalid file size -1" capture -i tap-vm1 -w "$W/x.pcapng" -C -1
expect_refusal "invalid number of output files 0" capture -i tap-vm1 -w "$W/x.pcapng" -C 1 -W 0
expect_refusal "empty interface name" capture -i ''
expect_refusal "empty interface name" capture -i 'tap-vm1,'
expect_refusal "did you mean capture?" captur -i tap-vm1
expect_refusal "did you mean mirror?" mirorr
expect_refusal "bpftap capture -D lists them" capture
expect_refusal "the mirror target nosuch0: no such interface" mirror --from tap-vm1 --from ' tap-vm2 , tap-atk' -Q both \
  --snapshot-length 128 --to nosuch0
assert_nothing_attached tap-vm1 tap-vm2

# -D: tcpdump's numbered list; Ethernet interfaces and loopback, not the TUN.
ns_exec host ip tuntap add dev tun-bt mode tun
ns_exec host "$BPFTAP" capture -D >"$W/list"
ns_exec host ip link del tun-bt
sed 's/^/  -D: /' "$W/list"
grep -qE '^[0-9]+\.tap-vm1 \[Up, Running\]$' "$W/list" || fail "-D does not list tap-vm1 as tcpdump would"
grep -qE '^[0-9]+\.lo ' "$W/list" || fail "-D does not list lo"
grep -q tun-bt "$W/list" && fail "-D lists a TUN device bpftap cannot capture"

# Printed by tcpdump: combined flags (-nnvi), no-op flags (-l -U -p), the interface and the
# direction before each line, and what only a real decoder shows (ICMP echo request, ttl).
ns_exec host "$BPFTAP" capture -lUp -nnvi tap-vm2 -Q both -c 4 icmp >"$W/text" 2>"$W/text.err" &
cap=$!
wait_for_line "$W/text.err" "listening on"
ns_exec vm1 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null
wait "$cap" || fail "-nnvi capture exited non-zero: $(cat "$W/text.err")"
sed 's/^/  text: /' "$W/text" | head -6
# -v prints two lines a packet: join them to match one packet.
joined=$(paste -d' ' - - <"$W/text")
grep -qE ' tap-vm2 +Out +IP \(tos .*ttl 64.* 10\.77\.0\.1 > 10\.77\.0\.2: ICMP echo request' <<<"$joined" \
  || fail "no 'tap-vm2 Out IP (... ttl 64 ...) 10.77.0.1 > 10.77.0.2: ICMP echo request' packet"
grep -qE ' tap-vm2 +In +IP .*ICMP echo reply' <<<"$joined" || fail "no 'tap-vm2 In ... ICMP echo reply' packet"

# -i any: every Ethernet interface; both taps appear in one stream.
ns_exec host "$BPFTAP" capture -i any -c 8 -q icmp >"$W/any" 2>"$W/any.err" &
cap=$!
wait_for_line "$W/any.err" "listening on"
ns_exec vm1 ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null
wait "$cap" || fail "-i any exited non-zero: $(cat "$W/any.err")"
grep -q " tap-vm1 " "$W/any" && grep -q " tap-vm2 " "$W/any" || fail "-i any: not both taps: $(cat "$W/any")"
echo "  -i any: $(awk '{print $2}' "$W/any" | sort -u | tr '\n' ' ')"

# -i any follows the namespace: a VM created during the capture joins it (an IDB mid-file, its
# packets, its counters), and leaves it when deleted.
ns_exec host "$BPFTAP" capture -i any -w "$W/any.pcapng" icmp 2>"$W/anyw.err" &
cap=$!
wait_for_line "$W/anyw.err" "listening on"
ip netns add "${P}vm3"
ns_exec host ip link add tap-vm3 type veth peer name eth0 netns "${P}vm3"
ns_exec host ip link set tap-vm3 master br0 up
ns_exec vm3 ip addr add 10.77.0.3/24 dev eth0
ns_exec vm3 ip link set eth0 up
wait_for_line "$W/anyw.err" "tap-vm3 appeared"
ns_exec vm3 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm3 cannot ping vm2"
ip netns del "${P}vm3"
wait_for_line "$W/anyw.err" "tap-vm3 went away"
signal_job INT "$cap"
wait "$cap" || fail "-i any -w exited non-zero: $(cat "$W/anyw.err")"
n=$(tshark -r "$W/any.pcapng" -Y 'frame.interface_name == "tap-vm3"' 2>/dev/null | wc -l)
(( n >= 6 )) || fail "-i any: $n packets of tap-vm3 (created during the capture) in the file, expected 6"
grep -qE '^tap-vm3: [1-9][0-9]* packets captured' "$W/anyw.err" || fail "no summary line for tap-vm3: $(cat "$W/anyw.err")"
echo "  -i any: tap-vm3, created during the capture, gave $n packets; $(grep '^tap-vm3:' "$W/anyw.err")"

# | head: bpftap ends quietly with the summary (tcpdump's habit), exit 0, nothing attached.
ns_exec host bash -c "'$BPFTAP' capture -i tap-vm2 icmp 2>'$W/head.err' | head -n 1 >'$W/head'; echo \${PIPESTATUS[0]} >'$W/head.rc'" &
pipe=$!
wait_for_line "$W/head.err" "listening on"
for _ in $(seq 50); do
  [[ -s "$W/head.rc" ]] && break
  ns_exec vm1 ping -c 1 -W 1 10.77.0.2 >/dev/null
done
wait "$pipe"
assert_eq 0 "$(cat "$W/head.rc")" "exit code under | head ($(cat "$W/head.err"))"
grep -q "Broken pipe" "$W/head.err" && fail "| head: $(cat "$W/head.err")"
grep -q "packets captured" "$W/head.err" || fail "| head: no summary on stderr"
assert_eq 1 "$(wc -l <"$W/head")" "lines through head"
assert_nothing_attached tap-vm2

# SIGUSR1 prints the counters and the capture goes on; -F reads the filter (comments dropped);
# the pcapng ends with an ISB per interface holding the summary's figures.
printf 'icmp # only pings\n' >"$W/filter"
ns_exec host "$BPFTAP" capture -i tap-vm1,tap-vm2 -F "$W/filter" -w "$W/isb.pcapng" 2>"$W/isb.err" &
cap=$!
wait_for_line "$W/isb.err" "listening on"
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
signal_job USR1 "$cap"
wait_for_line "$W/isb.err" "packets received by filter"
kill -0 "$cap" 2>/dev/null || fail "SIGUSR1 ended the capture"
signal_job INT "$cap"
wait "$cap" || fail "capture exited non-zero"
"$PCAPCMP" --isb "$W/isb.pcapng" >"$W/isb"
sed 's/^/  ISB: /' "$W/isb"
for i in tap-vm1 tap-vm2; do
  want=$(awk -v i="$i:" '$1 == i { print $5 }' "$W/isb.err" | tail -1)
  got=$(awk -v i="$i" '$1 == i { sub("ifrecv=", "", $2); print $2 }' "$W/isb")
  assert_eq "$want" "$got" "isb_ifrecv of $i (the summary's 'received by filter')"
  grep -qE "^$i ifrecv=[0-9]+ ifdrop=0$" "$W/isb" || fail "no ISB with ifdrop for $i"
done
assert_eq 12 "$(capinfos -M -c "$W/isb.pcapng" | awk '/Number of packets/ { print $NF }')" "ICMP packets (-F icmp)"
capinfos "$W/isb.pcapng" | grep -q "Number of stat entries = 1" || fail "capinfos sees no interface statistics"

# Every file of a rotation ends with its statistics.
ns_exec host "$BPFTAP" capture -i tap-vm1 -C 1 -W 3 -w "$W/rot.pcapng" 2>"$W/rot.err" &
cap=$!
wait_for_line "$W/rot.err" "listening on"
ns_exec vm1 ping -f -c 1500 -s 1400 10.77.0.2 >/dev/null
signal_job INT "$cap"
wait "$cap" || fail "rotating capture exited non-zero"
for f in "$W"/rot.pcapng?; do
  [[ $("$PCAPCMP" --isb "$f" | grep -c '^tap-vm1 ifrecv=') == 1 ]] || fail "$(basename "$f") has no ISB"
done
echo "  rotation: $(ls "$W"/rot.pcapng? | wc -l) files, each with its ISB"

# -r FILE EXPRESSION -w OUT (bpftap's writer) and printed (tcpdump -r).
ns_exec host "$BPFTAP" capture -r "$W/isb.pcapng" -w "$W/requests.pcapng" 'icmp[icmptype] == icmp-echo' 2>"$W/r.err"
assert_eq 6 "$(capinfos -M -c "$W/requests.pcapng" | awk '/Number of packets/ { print $NF }')" "-r | filter | -w"
ns_exec host "$BPFTAP" capture -r "$W/isb.pcapng" -c 2 -n 'icmp[icmptype] == icmp-echoreply' >"$W/r.txt" 2>/dev/null
assert_eq 2 "$(grep -c 'ICMP echo reply' "$W/r.txt")" "-r printed by tcpdump"

# --format pcap with several interfaces warns that names are lost.
ns_exec host "$BPFTAP" capture -i tap-vm1 -i tap-vm2 --format pcap -w "$W/p.pcap" -c 1 2>"$W/pcap.err" &
cap=$!
wait_for_line "$W/pcap.err" "listening on"
ns_exec vm1 ping -c 1 -W 1 10.77.0.2 >/dev/null
wait "$cap" || true
grep -q "pcap has no interface names" "$W/pcap.err" || fail "--format pcap with 2 interfaces: no warning"

# Without privileges: one line naming root and the capabilities, exit 1, for every command.
for cmd in "capture -i lo" "mirror --from lo --to lo" "agent --config /nonexistent" "cleanup" "inspect -i lo"; do
  rc=0
  # shellcheck disable=SC2086
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$BPFTAP" $cmd >/dev/null 2>"$W/priv" || rc=$?
  assert_eq 1 "$rc" "exit code of unprivileged bpftap $cmd"
  assert_eq 1 "$(wc -l <"$W/priv")" "stderr lines of unprivileged bpftap $cmd"
  grep -q "needs root, or the capabilit" "$W/priv" || fail "bpftap $cmd unprivileged: $(cat "$W/priv")"
done
echo "  unprivileged: $(cat "$W/priv")"
echo "PASS"
