#!/usr/bin/env bash
# bpftap capture's command line: bad input exits 2 with one line and leaves nothing behind;
# -w - streams live to tshark; -c stops by itself; -C/-W rotate; --format pcap; -Q in; the
# perf-buffer transport captures the same packets as the ring buffer.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tshark capinfos tcpreplay bpftool
: "${PCAPCMP:?set PCAPCMP to the pcapcmp tool}"
make_workdir
lab_up
W=$WORKDIR

# expect_bad_input DESCRIPTION ARGS...: exit 2, exactly one line on stderr, nothing attached.
expect_bad_input() {
  local what="$1" rc=0; shift
  ns_exec host "$BPFTAP" capture "$@" >"$W/out" 2>"$W/err" || rc=$?
  assert_eq 2 "$rc" "exit code for $what"
  assert_eq 1 "$(wc -l <"$W/err")" "stderr lines for $what ($(cat "$W/err"))"
  echo "  $what -> $(cat "$W/err")"
  assert_nothing_attached tap-vm1 tap-vm2
}
expect_bad_input "unknown interface" -i tap-vm1 -i nosuch0 -w "$W/x.pcapng"
ns_exec host ip tuntap add dev tun-bt mode tun
expect_bad_input "not Ethernet (TUN)" -i tap-vm1 -i tun-bt
ns_exec host ip link del tun-bt
expect_bad_input "glob matching nothing" -i 'nomatch*'
expect_bad_input "bad filter" -i tap-vm1 -w "$W/bad.pcapng" tcp port
expect_bad_input "filter with a loop" -i tap-vm1 ip6 protochain 6
expect_bad_input "bad direction" -i tap-vm1 -Q sideways
expect_bad_input "snaplen too large" -i tap-vm1 -s 999999
expect_bad_input "unwritable output" -i tap-vm1 -w /nonexistent/dir/x.pcapng
expect_bad_input "rotation without -w" -i tap-vm1 -C 1
expect_bad_input "rotating stdout" -i tap-vm1 -w - -G 10
[[ ! -e "$W/bad.pcapng" && ! -e "$W/x.pcapng" ]] || fail "a bad invocation created its output file"

# -w - | tshark -r - shows packets while bpftap still runs.
ns_exec host bash -c "'$BPFTAP' capture -i tap-vm2 -w - icmp 2>'$W/stream.log' | tshark -l -r - -T fields -e frame.number -e icmp.type >'$W/stream.txt' 2>/dev/null" &
stream=$!
wait_for_line "$W/stream.log" "listening on"
ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
for _ in $(seq 30); do [[ $(wc -l <"$W/stream.txt") -ge 6 ]] && break; sleep 0.1; done
lines=$(wc -l <"$W/stream.txt")
pgrep -f "capture -i tap-vm2 -w - icmp" >/dev/null || fail "bpftap stopped before the check"
(( lines >= 6 )) || fail "tshark saw $lines ICMP packets while bpftap ran, expected 6"
echo "  live stream: tshark printed $lines packets while the capture was running"
pkill -INT -f "capture -i tap-vm2 -w - icmp"
wait "$stream" || true

# -c: stops by itself after COUNT packets.
mapfile -t pcaps < <(corpus_ethernet_pcaps 30)
ns_exec host "$BPFTAP" capture -i tap-vm1 -c 100 -w "$W/count.pcapng" 2>"$W/count.log" &
cnt=$!
wait_for_line "$W/count.log" "listening on"
replay_corpus vm1 "${pcaps[@]}" >/dev/null
for _ in $(seq 50); do kill -0 "$cnt" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cnt" 2>/dev/null && fail "-c 100 did not stop the capture"
wait "$cnt" || fail "-c capture exited non-zero"
assert_eq 100 "$(capinfos -M -c "$W/count.pcapng" | awk '/Number of packets/ { print $NF }')" "-c 100 packets"

# -C 1 -W 3 rotation (files of ~1 MB, three names reused), --format pcap, -Q in, perf buffers.
ns_exec host "$BPFTAP" capture -i tap-vm1 -C 1 -W 3 -w "$W/rot.pcapng" 2>"$W/rot.log" &
rot=$!
ns_exec host "$BPFTAP" capture -i tap-vm1 -i tap-vm2 -Q in --format pcap -w "$W/in.pcap" 2>"$W/in.log" &
inq=$!
ns_exec host "$BPFTAP" capture -i tap-vm1 -i tap-vm2 --buffer perf -w "$W/perf.pcapng" 2>"$W/perf.log" &
perf=$!
ns_exec host "$BPFTAP" capture -i tap-vm1 -i tap-vm2 -w "$W/ring.pcapng" 2>"$W/ring.log" &
ring=$!
ns_exec host "$BPFTAP" capture -i tap-vm1 -i tap-vm2 --backend pcap -w "$W/pcapbk.pcapng" 2>"$W/pcapbk.log" &
pcapbk=$!
for f in rot in perf ring pcapbk; do wait_for_line "$W/$f.log" "listening on"; done
started=$(date +%s%N)  # every capture runs from here on: compare from here (stray ARPs before)
replay_corpus vm1 "${pcaps[@]}" | sed "s/^/  /"
sleep 1
sleep 0.5  # the pcap backend's blocks retire after 100 ms
for p in $rot $inq $perf $ring $pcapbk; do signal_job INT "$p"; done
for p in $rot $inq $perf $ring $pcapbk; do wait "$p" || fail "a capture exited non-zero"; done
ls "$W"/rot.pcapng* | sed "s|^$W/|  rotated: |"
for f in rot.pcapng0 rot.pcapng1 rot.pcapng2; do
  [[ -s "$W/$f" ]] || fail "missing rotated file $f"
  capinfos "$W/$f" >/dev/null 2>&1 || fail "$f is not a valid capture"
done
[[ -e "$W/rot.pcapng3" ]] && fail "-W 3 kept more than 3 files"
file "$W/in.pcap" | grep -q "pcap capture file" || fail "--format pcap did not write pcap"
since="frame.time_epoch >= ${started:0:-9}.${started: -9}"
in_count=$(tshark -r "$W/in.pcap" -Y "$since" 2>/dev/null | wc -l)
vm1_in=$(tshark -r "$W/ring.pcapng" -Y "$since && frame.interface_name == \"tap-vm1\" && frame.packet_flags_direction == 1" 2>/dev/null | wc -l)
vm2_in=$(tshark -r "$W/ring.pcapng" -Y "$since && frame.interface_name == \"tap-vm2\" && frame.packet_flags_direction == 1" 2>/dev/null | wc -l)
((in_count > 1000)) || fail "-Q in: only $in_count packets after the start"
assert_eq $((vm1_in + vm2_in)) "$in_count" "-Q in packets (inbound packets of the inout capture)"
for t in tap-vm1 tap-vm2; do
  tshark -r "$W/ring.pcapng" -Y "frame.interface_name == \"$t\"" -w "$W/ring-$t.pcap" -F pcap 2>/dev/null
  # The same packets, in the same order, byte for byte. Their timestamps are two programs'
  # clock reads on one packet, back to back (tens of us apart), but twice, run by ctest right
  # after the agent tests, one packet of ~8,500 had its two reads 2.8 and 4.2 ms apart (the
  # vCPU taken away between them?); alone, the test never showed more than 0.8 ms.
  "$PCAPCMP" "$W/perf.pcapng" "$t" "$W/ring-$t.pcap" --after "$started" --max-dts-us 10000 \
    || fail "perf and ring transports differ on $t"
  # The libpcap backend: the same packets through AF_PACKET (timestamps taken elsewhere).
  "$PCAPCMP" "$W/pcapbk.pcapng" "$t" "$W/ring-$t.pcap" --max-dts-us 3000 --no-dir --after "$started" || fail "--backend pcap differs from eBPF on $t"
done
grep -q "^0 packets dropped by kernel" "$W/pcapbk.log" || fail "the pcap backend dropped packets: $(cat "$W/pcapbk.log")"
assert_nothing_attached tap-vm1 tap-vm2
echo "PASS: bad input, live stream, -c, rotation, pcap format, -Q in, perf transport, pcap backend"
