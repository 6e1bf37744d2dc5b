#!/usr/bin/env bash
# Three mirror sessions on the same source hook (tap-vm1 ingress), each with its own target:
#   S1 --to mon0 -s 128: the monitor gets every packet, cut to 128 bytes (tag included);
#   S2 --vxlan 10.77.1.1 --vni 42: the sensor's vxlan0 decapsulates byte-identical copies, and
#      the outer packets are UDP 4789 with VNI 42 (tshark's vxlan dissector);
#   S3 --vxlan ... --vni 43 --flow-cutoff 1024 --sample 2: whole flows, half of them, each up to
#      its first 1024 payload bytes plus every SYN/FIN/RST (checked by tests/tools/mirror_check.py,
#      written from the documented semantics, not from the BPF code).
# Reference: tcpdump -Q in on tap-vm1. Counters must agree with what arrived, and vm2 receives
# the same bytes as without any session.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tcpdump tcpreplay tshark capinfos python3
make_workdir
lab_up
W=$WORKDIR
CHECK="$BPFTAP_SRC/tests/tools/mirror_check.py"
mapfile -t pcaps < <(corpus_ethernet_pcaps "${REPLAY_LIMIT:-80}")

# A second decapsulating device at the sensor for S3.
ns_exec sen ip link add vxlan1 mtu 9000 type vxlan id 43 dstport 4789 local 10.77.1.1 nolearning
ns_exec sen ip link set vxlan1 up

count() { capinfos -M -c "$1" | awk '/Number of packets/ { print $NF }'; }
counter() { awk -v k="$2" '/tap-vm1 in:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ "^" k) { print $i; exit } }' "$1"; }

# Without sessions: what vm2 receives.
tcpdump_in vm2 vm2-plain eth0
replay_corpus vm1 "${pcaps[@]}" >/dev/null
sleep 1.2
stop_tcpdumps

tcpdump_in vm2 vm2-tapped eth0
tcpdump_in host ref tap-vm1 -Q in
tcpdump_in mon s1 eth0
tcpdump_in sen s2 vxlan0
tcpdump_in sen s3 vxlan1
tcpdump_in sen outer eth0 udp port 4789
ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --to mon0 -s 128 2>"$W/s1.log" &
S1=$!
ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --vxlan 10.77.1.1 --vni 42 2>"$W/s2.log" &
S2=$!
ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --vxlan 10.77.1.1 --vni 43 --flow-cutoff 1024 --sample 2 2>"$W/s3.log" &
S3=$!
for s in s1 s2 s3; do wait_for_line "$W/$s.log" "mirroring"; done
assert_eq 2 "$(vxlan_devs host | wc -l)" "bpftap VXLAN devices (one per sensor and VNI)"
replay_corpus vm1 "${pcaps[@]}" | sed "s/^/  /"
sleep 1.2
for pid in $S1 $S2 $S3; do signal_job TERM "$pid"; done
for pid in $S1 $S2 $S3; do wait "$pid" || fail "a mirror session exited $?"; done
stop_tcpdumps
for s in s1 s2 s3; do sed "s/^/  $s: /" "$W/$s.log"; done

ref=$(count "$W/ref.pcap")
(( ref > 1000 )) || fail "only $ref reference packets"
# S1: truncated copies of everything.
python3 "$CHECK" "$W/ref.pcap" "$W/s1.pcap" --snaplen 128 | sed "s/^/  s1: /"
[[ ${PIPESTATUS[0]} == 0 ]] || fail "s1: monitor copies are not the originals cut to 128 bytes"
long=$(tshark -r "$W/ref.pcap" -Y 'frame.len > 128' -T fields -e frame.number 2>/dev/null | wc -l)
assert_eq "$long" "$(counter "$W/s1.log" truncated)" "s1: truncated counter vs reference frames over 128 bytes"
assert_eq "$ref" "$(counter "$W/s1.log" mirrored)" "s1: mirrored counter vs reference"
# S2: VXLAN, decapsulated at the sensor, byte-identical.
"$PCAPCMP" "$W/s2.pcap" - "$W/ref.pcap" --no-ts || fail "s2: decapsulated copies differ from the originals"
assert_eq "$ref" "$(counter "$W/s2.log" mirrored)" "s2: mirrored counter"
tshark -r "$W/outer.pcap" -T fields -E occurrence=f -e udp.dstport -e vxlan.vni 'vxlan' 2>/dev/null | sort | uniq -c >"$W/outer.txt"
sed "s/^/  outer: /" "$W/outer.txt"
assert_eq "$ref" "$(awk '$2 == 4789 && $3 == 42 { print $1 }' "$W/outer.txt")" "s2: outer VXLAN packets with VNI 42"
assert_eq "$(count "$W/s3.pcap")" "$(awk '$2 == 4789 && $3 == 43 { print $1 }' "$W/outer.txt")" "s3: outer VXLAN packets with VNI 43"
assert_eq 2 "$(wc -l <"$W/outer.txt")" "outer packets are VXLAN to 4789 with VNI 42 or 43 only"
# S3: sampled whole flows, cut off after 1024 payload bytes, SYN/FIN/RST always.
python3 "$CHECK" "$W/ref.pcap" "$W/s3.pcap" --cutoff 1024 --sample 2 | sed "s/^/  s3: /"
[[ ${PIPESTATUS[0]} == 0 ]] || fail "s3: sampling/cutoff semantics violated"
assert_eq "$(count "$W/s3.pcap")" "$(counter "$W/s3.log" mirrored)" "s3: mirrored counter vs sensor"
m=$(counter "$W/s3.log" mirrored); c=$(counter "$W/s3.log" cut); s=$(counter "$W/s3.log" sampled)
assert_eq "$ref" "$((m + c + s))" "s3: mirrored + cut off + sampled out"
(( c > 0 && s > 0 )) || fail "s3: the cutoff ($c) and sampling ($s) were not exercised"
for s in s1 s2 s3; do grep -q " 0 failed," "$W/$s.log" || fail "$s: failed copies"; done

# The originals: unchanged by three sessions (clone, mark swap, truncation on copies).
"$PCAPCMP" "$W/vm2-plain.pcap" - "$W/vm2-tapped.pcap" --no-ts || fail "originals at vm2 changed under the sessions"

# Every session gone: no program, no VXLAN device.
assert_nothing_attached tap-vm1 mon0
assert_eq "" "$(vxlan_devs host)" "VXLAN devices left after the last session"
echo "PASS: three sessions on one hook: truncated local copies, byte-identical VXLAN copies, sampled and cut-off flows"
