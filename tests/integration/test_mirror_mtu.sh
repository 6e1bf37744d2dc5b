#!/usr/bin/env bash
# bpftap's VXLAN device takes the largest source MTU (so copies of full-size frames fit), is
# never lowered by a session with smaller sources, and mirror warns when the route to the sensor
# leaves through an interface whose MTU cannot carry a copy (source MTU + 50).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
make_workdir
lab_up
W=$WORKDIR
mtu() { ns_exec host cat "/sys/class/net/$1/mtu"; }

# The lab's links are all 9000: make the sources 3000 and 4000 and the underlay 1500.
ns_exec host ip link set tap-vm1 mtu 3000
ns_exec host ip link set tap-vm2 mtu 4000
ns_exec host ip link set sen0 mtu 1500
ns_exec host "$BPFTAP" mirror --from tap-vm1,tap-vm2 -Q in --vxlan 10.77.1.1 --vni 42 2>"$W/a.log" &
a=$!
wait_for_line "$W/a.log" "mirroring"
VX=$(vxlan_dev_to host 10.77.1.1 42)
assert_eq 4000 "$(mtu "$VX")" "VXLAN device MTU = the largest source MTU"
underlay=$(ns_exec host ip -o route get 10.77.1.1 | sed -n 's/.* dev \([^ ]*\).*/\1/p')
echo "  underlay to the sensor: $underlay, MTU $(mtu "$underlay")"
grep -q "warning: the underlay to 10.77.1.1 leaves through $underlay (MTU $(mtu "$underlay")): copies of 4000-byte frames need MTU 4050" "$W/a.log" \
  || fail "no underlay MTU warning: $(cat "$W/a.log")"
sed -n 's/^/  /; /warning/p' "$W/a.log"

# A second session to the same sensor, with 3000-byte sources, shares the device and does not lower it.
ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --vxlan 10.77.1.1 --vni 42 -s 1400 2>"$W/b.log" &
b=$!
wait_for_line "$W/b.log" "mirroring"
assert_eq "$VX" "$(vxlan_devs host)" "the second session shares the device"
assert_eq 4000 "$(mtu "$VX")" "VXLAN device MTU after a second session"
grep -q warning "$W/b.log" && fail "copies cut to 1400 bytes fit the underlay, yet: $(cat "$W/b.log")"
signal_job INT "$a"; signal_job INT "$b"
wait "$a" "$b" || fail "a mirror exited non-zero"
echo PASS
