#!/usr/bin/env bash
# bpftap lab up/status/down: topology, reachability, flooding, no IPv6, prefix validation,
# partial labs, rollback of a failed `lab up`, and nothing left behind.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
require_cmd ip ping od awk

tx_packets() { ns_exec host cat "/sys/class/net/$1/statistics/tx_packets"; }
rc_of() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; echo "$rc"; }

root_links_before=$(ip -o link show | awk -F': ' '{print $2}' | sort)

lab_up
echo "lab prefix: $P"

for n in host vm1 vm2 atk mon sen; do
  [[ -n "$(lab_namespaces "$P$n")" ]] || fail "namespace $P$n missing"
done

# vm1 -> vm2: ping works and the frames leave the bridge on tap-vm2 (and, with learning off,
# are flooded to tap-atk too).
vm2_before=$(tx_packets tap-vm2)
atk_before=$(tx_packets tap-atk)
ns_exec vm1 ping -c 2 -W 1 10.77.0.2 >/dev/null || fail "ping vm1 -> vm2"
vm2_after=$(tx_packets tap-vm2)
atk_after=$(tx_packets tap-atk)
(( vm2_after >= vm2_before + 2 )) || fail "tap-vm2 tx_packets $vm2_before -> $vm2_after"
(( atk_after >= atk_before + 2 )) || fail "no flooding to tap-atk: tx_packets $atk_before -> $atk_after"

# Jumbo frames pass end to end; the host reaches the guests through br0.
ns_exec vm1 ping -c 1 -W 1 -M "do" -s 8900 10.77.0.66 >/dev/null || fail "jumbo ping vm1 -> atk"
ns_exec host ping -c 1 -W 1 10.77.0.2 >/dev/null || fail "ping host -> vm2"

# No IPv6 anywhere in the lab.
for n in host vm1 vm2 atk mon sen; do
  v6=$(ip -n "$P$n" -6 -o addr show)
  [[ -z "$v6" ]] || fail "IPv6 addresses in $P$n: $v6"
  assert_eq 1 "$(ns_exec "$n" sysctl -n net.ipv6.conf.all.disable_ipv6)" "$P$n disable_ipv6"
  assert_eq 0 "$(ns_exec "$n" sysctl -n net.ipv4.conf.all.rp_filter)" "$P$n rp_filter"
done

# Bridge ports: learning off, flood on; mon0 is not a port; the monitor end is promiscuous.
for t in tap-vm1 tap-vm2 tap-atk; do
  assert_eq 0 "$(ns_exec host cat "/sys/class/net/$t/brport/learning")" "$t learning"
  assert_eq 1 "$(ns_exec host cat "/sys/class/net/$t/brport/unicast_flood")" "$t flood"
done
ns_exec host test ! -e /sys/class/net/mon0/brport || fail "mon0 is a bridge port"
ip -n "${P}mon" -o link show eth0 | grep -q PROMISC || fail "${P}mon eth0 not promiscuous"
# The sensor is routed from the host, and its vxlan0 listens on UDP 4789 with VNI 42.
ns_exec host ping -c 1 -W 2 10.77.1.1 >/dev/null || fail "host cannot reach the sensor 10.77.1.1"
ip -n "${P}sen" -d -o link show vxlan0 | grep -q "vxlan id 42 .*dstport 4789" || fail "${P}sen vxlan0: $(ip -n "${P}sen" -d -o link show vxlan0)"

# status: complete; a second `up` changes nothing.
status=$("$BPFTAP" lab status --prefix "$P") || fail "lab status on a complete lab: $status"
grep -q "lab $P: complete" <<<"$status" || fail "status output: $status"
grep -q "10.77.0.1/24" <<<"$status" || fail "status lacks vm1 address: $status"
out=$("$BPFTAP" lab up --prefix "$P") || fail "second lab up"
grep -q "already up" <<<"$out" || fail "second lab up said: $out"

# Bad prefixes are bad input (exit 2), for every action.
assert_eq 2 "$(rc_of "$BPFTAP" lab up --prefix Bad_Prefix)" "lab up --prefix Bad_Prefix"
assert_eq 2 "$(rc_of "$BPFTAP" lab up --prefix abcdefghi)" "lab up --prefix abcdefghi (9 chars)"
assert_eq 2 "$(rc_of "$BPFTAP" lab status --prefix=-x)" "lab status --prefix=-x"
assert_eq 2 "$(rc_of "$BPFTAP" lab down --prefix 'a b')" "lab down --prefix 'a b'"

# A partial lab: status says so (exit 1); up refuses (exit 1) and leaves it alone.
ip netns del "${P}atk"
assert_eq 1 "$(rc_of "$BPFTAP" lab status --prefix "$P")" "lab status on a partial lab"
assert_eq 1 "$(rc_of "$BPFTAP" lab up --prefix "$P")" "lab up on a partial lab"
[[ -n "$(lab_namespaces "${P}vm1")" ]] || fail "lab up on a partial lab removed ${P}vm1"

lab_down
[[ -z "$(lab_namespaces "$P")" ]] || fail "left after lab down: $(lab_namespaces "$P")"
assert_eq 1 "$(rc_of "$BPFTAP" lab status --prefix "$P")" "lab status after lab down"
assert_eq 0 "$(rc_of "$BPFTAP" lab down --prefix "$P")" "lab down with nothing to remove"

# A step failing midway: an `ip` that fails on the bridge port settings. Everything created
# so far is removed and the message names the failed command.
make_workdir
real_ip=$(command -v ip)
cat >"$WORKDIR/ip" <<EOF
#!/bin/sh
case "\$*" in *bridge_slave*) echo "injected failure" >&2; exit 1;; esac
exec "$real_ip" "\$@"
EOF
chmod +x "$WORKDIR/ip"
rc=0
err=$(PATH="$WORKDIR:$PATH" "$BPFTAP" lab up --prefix "$P" 2>&1 >/dev/null) || rc=$?
assert_eq 1 "$rc" "lab up with a failing step"
grep -q "bridge_slave.*injected failure" <<<"$err" || fail "failure message: $err"
assert_eq 1 "$(wc -l <<<"$err")" "lines in the failure message"
[[ -z "$(lab_namespaces "$P")" ]] || fail "half-built lab left: $(lab_namespaces "$P")"

root_links_after=$(ip -o link show | awk -F': ' '{print $2}' | sort)
assert_eq "$root_links_before" "$root_links_after" "links in the root namespace"
echo "PASS: lab"
