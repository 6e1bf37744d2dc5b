#!/usr/bin/env bash
# bpftap agent with sessions that select interfaces in other network namespaces (`netns:`).
# The agent runs in a namespace of its own (${P}agt, with no taps); its sessions name the lab's
# host namespace, where the taps, the bridge and the monitor port are:
#  - the taps there are attached at start, none in the agent's own namespace;
#  - a new VM's tap there is attached within 1 s (a link watcher opened inside that namespace),
#    its traffic captured, mirrored to mon0 (resolved there) and sent over VXLAN from a device
#    created there; deleting it detaches it;
#  - a session whose namespace does not exist waits; it starts when the namespace appears (its
#    loopback down), waits again when it is deleted (counters kept, the namespace let go), and
#    starts again when it is re-created;
#  - a session created over the API in a third namespace (vm2's eth0) captures there;
#  - an attach: tc mirror session there counts the copies mirred could not send (target down),
#    read in that namespace; its filter goes on DELETE;
#  - after SIGKILL, the VXLAN device left in the host namespace is removed by `bpftap cleanup
#    --netns` and, after another SIGKILL, by the agent's next start; its TCX links, pinned in the
#    bpffs it mounted in `ip netns exec`'s private mount namespace, went with that namespace;
#  - the API is served on a unix socket (mode 0600); a second agent on it is refused;
#  - SIGTERM: nothing of bpftap's left in any namespace, the socket file removed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 tcpdump capinfos
make_workdir
lab_up
W=$WORKDIR
AGT="${P}agt"
ip netns add "$AGT"  # removed by the lab trap with the other ${P}* namespaces
ip -n "$AGT" link set lo up
SOCK=$W/api.sock
API=http://bpftap
make_token

cat >"$W/agent.yaml" <<YAML
api:
  listen: unix:$SOCK
  token_file: $W/token
sessions:
  - name: host-capture
    netns: ${P}host
    interfaces: ["tap-*"]
    direction: in
    filter: "icmp"
    capture: { dir: $W/pcap }
  - name: host-mirror
    netns: ${P}host
    interfaces: ["tap-*"]
    direction: in
    filter: "icmp"
    mirror: { to: mon0 }
  - name: host-sensor
    netns: ${P}host
    interfaces: ["tap-vm1", "tap-vm3"]
    direction: in
    filter: "icmp"
    mirror: { vxlan: 10.77.1.1, vni: 42 }
  - name: own-netns
    interfaces: ["tap-*", "eth*"]
    capture: { dir: $W/pcap-own }
  - name: late
    netns: ${P}late
    interfaces: ["veth-l0"]
    direction: in
    filter: "icmp"
    capture: { dir: $W/pcap-late }
YAML

api() { curl -s -m 5 --unix-socket "$SOCK" "$@"; }  # a unix socket: no namespace needed
until_state() {  # until_state SESSION STATE: waits up to 3 s, prints the ms it took
  local t0 i; t0=$(date +%s%N)
  for i in $(seq 60); do [[ $(state "$1") == "$2" ]] && break; sleep 0.05; done
  assert_eq "$2" "$(state "$1")" "state of session $1"
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
start_agent() {  # start_agent LOG
  ns_exec agt "$BPFTAP" agent --config "$W/agent.yaml" 2>"$1" &
  AGENT=$!
  wait_for_line "$1" "agent ready" 15
}
count() { capinfos -M -c "$1" | awk '/Number of packets/ { print $NF }'; }

# A netns that is a path, not a name: exit 2 with file:line, nothing started.
sed "s|netns: ${P}late|netns: ../late|" "$W/agent.yaml" >"$W/bad.yaml"
rc=0
ns_exec agt "$BPFTAP" agent --config "$W/bad.yaml" 2>"$W/bad.log" || rc=$?
assert_eq 2 "$rc" "exit code with netns ../late"
grep -q "bad.yaml:.*netns '../late' is not a namespace name" "$W/bad.log" || fail "no reason given: $(cat "$W/bad.log")"

# Two sessions sending one VNI to two sensors in one namespace: refused (exit 2), both named.
cat >"$W/clash.yaml" <<YAML
api:
  listen: unix:$W/clash.sock
sessions:
  - name: a
    netns: ${P}host
    interfaces: ["tap-vm1"]
    mirror: { vxlan: 10.77.1.1, vni: 7 }
  - name: b
    netns: ${P}host
    interfaces: ["tap-vm2"]
    mirror: { vxlan: 10.77.1.2, vni: 7 }
YAML
rc=0
ns_exec agt "$BPFTAP" agent --config "$W/clash.yaml" 2>"$W/clash.log" || rc=$?
assert_eq 2 "$rc" "exit code with VNI 7 to two sensors"
grep -q "clash.yaml:[0-9]*: session b: VNI 7 on port 4789 already goes to 10.77.1.1 (session a, line 4)" "$W/clash.log" ||
  fail "VNI clash: $(cat "$W/clash.log")"

start_agent "$W/agent.log"
assert_eq "tap-atk tap-vm1 tap-vm2" "$(attached host-capture)" "capture attached in ${P}host at start"
assert_eq "tap-atk tap-vm1 tap-vm2" "$(attached host-mirror)" "mirror attached in ${P}host at start"
assert_eq "tap-vm1" "$(attached host-sensor)" "VXLAN session attached in ${P}host at start"
assert_eq "" "$(attached own-netns)" "the agent's own namespace has no taps (nothing attached there)"
assert_eq "waiting" "$(state late)" "a session whose namespace does not exist yet waits"
VX=$(vxlan_dev_to host 10.77.1.1 42)
ip -n "$AGT" link show "$VX" >/dev/null 2>&1 && fail "the VXLAN device was created in the agent's namespace"
assert_eq 600 "$(stat -c %a "$SOCK")" "mode of the API socket"
rc=0
ns_exec agt timeout 10 "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/second.log" || rc=$?
assert_eq 1 "$rc" "a second agent on the same socket"
grep -q "another process (an agent already running?) listens there" "$W/second.log" || fail "second agent: $(cat "$W/second.log")"
grep -q "attached\|removed leftover" "$W/second.log" && fail "the second agent touched interfaces before failing"
echo "  API on unix socket $SOCK, mode 600; a second agent on it exits 1 before touching anything"
echo "  at start: 3 taps in ${P}host attached to 2 sessions, tap-vm1 to the VXLAN one (its device made there); nothing in ${AGT}"

# A new VM appears in the host namespace.
new_vm_tap host-capture host-mirror host-sensor
echo "  new VM in ${P}host: tap-vm3 attached to 3 sessions within $ms ms of its creation (seen through the API after $seen ms)"

tcpdump_in mon mon eth0 icmp
tcpdump_in sen sen vxlan0 icmp
ns_exec vm3 ping -c 5 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm3 cannot ping vm2"
ns_exec vm1 ping -c 4 -i 0.2 -W 1 10.77.0.2 >/dev/null || fail "vm1 cannot ping vm2"
sleep 1.2
stop_tcpdumps
assert_eq 5 "$(counter host-capture tap-vm3 captured)" "echo requests captured from tap-vm3"
assert_eq 5 "$(counter host-mirror tap-vm3 mirrored)" "echo requests mirrored from tap-vm3"
assert_eq 9 "$(( $(counter host-sensor tap-vm1 mirrored) + $(counter host-sensor tap-vm3 mirrored) ))" \
  "echo requests sent to the sensor"
got=$(count "$W/mon.pcap")
(( got >= 18 )) || fail "the monitor saw $got ICMP packets, expected 18 (9 requests + 9 replies)"
assert_eq 9 "$(tcpdump -r "$W/sen.pcap" -n 'icmp[icmptype] = icmp-echo' 2>/dev/null | wc -l)" \
  "echo requests decapsulated at the sensor"
echo "  traffic: monitor saw $got ICMP packets through mon0, the sensor decapsulated 9 echo requests"

# The VM goes away: detached, counters kept.
ip netns del "${P}vm3"
for _ in $(seq 50); do [[ " $(attached host-mirror) " != *" tap-vm3 "* ]] && break; sleep 0.02; done
[[ " $(attached host-mirror) " == *" tap-vm3 "* ]] && fail "tap-vm3 still attached after it was deleted"
assert_eq 5 "$(counter host-mirror tap-vm3 mirrored)" "tap-vm3's counters kept after it went away"
echo "  VM deleted: detached, counters kept"

# The late session's namespace appears (its loopback left down: the filter still compiles),
# then is deleted (the session waits again, keeps its counters and lets the namespace go), then
# comes back.
make_late() {
  ip netns add "${P}late"
  ns_exec late ip link add veth-l0 type veth peer name veth-l1
  ns_exec late ip link set veth-l0 up
  ns_exec late ip link set veth-l1 up
}
send_icmp() {  # N ICMP echo requests out of veth-l1, so into veth-l0
  ns_exec late python3 - "$1" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("veth-l1", 0))
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 1, 0, bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2]))
frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0])
for _ in range(int(sys.argv[1])): s.send(frame)
PY
}
make_late
ms_late=$(until_state late running)
for _ in $(seq 20); do [[ $(attached late) == veth-l0 ]] && break; sleep 0.05; done
assert_eq "veth-l0" "$(attached late)" "late session attached once its namespace appeared"
send_icmp 4
sleep 0.5
assert_eq 4 "$(counter late veth-l0 captured)" "ICMP captured in ${P}late (filter compiled with its lo down)"
late_ino=$(stat -L -c %i "/run/netns/${P}late")
agent_pid=$(pgrep -P "$AGENT")
ip netns del "${P}late"
ms_gone=$(until_state late waiting)
assert_eq 4 "$(counter late veth-l0 captured)" "counters kept while the session waits again"
sleep 0.3
if ls -l /proc/"$agent_pid"/fd 2>/dev/null | grep -q "net:\[$late_ino\]"; then fail "the agent still holds the deleted namespace"; fi
for t in /proc/"$agent_pid"/task/*; do
  [[ $(stat -L -c %i "$t/ns/net" 2>/dev/null) == "$late_ino" ]] && fail "a thread of the agent is still in the deleted namespace"
done
make_late
until_state late running >/dev/null
for _ in $(seq 20); do [[ $(attached late) == veth-l0 ]] && break; sleep 0.05; done
send_icmp 3
sleep 0.5
assert_eq 7 "$(counter late veth-l0 captured)" "captured again after the namespace came back, old counters added"
echo "  late namespace: started ${ms_late} ms after it appeared, back to waiting ${ms_gone} ms after deletion (namespace released, counters kept), restarted when re-created"

# API: a session in a third namespace (vm2's own eth0), then one in a namespace that does not exist.
assert_eq 201 "$(write POST /v1/sessions -d "{\"name\":\"vm2-eth\",\"netns\":\"${P}vm2\",\"interfaces\":[\"eth0\"],\"direction\":\"in\",\"filter\":\"udp port 9997\",\"capture\":{\"dir\":\"$W/pcap-vm2\"}}")" "create vm2-eth"
assert_eq "eth0" "$(attached vm2-eth)" "vm2-eth attached to eth0 in ${P}vm2"
ns_exec vm1 bash -c 'for i in 1 2 3; do echo hi >/dev/udp/10.77.0.2/9997; done'
sleep 0.5
assert_eq 3 "$(counter vm2-eth eth0 captured)" "datagrams captured on vm2's eth0"
assert_eq 204 "$(write DELETE /v1/sessions/vm2-eth)" "delete vm2-eth"
assert_eq 201 "$(write POST /v1/sessions -d "{\"name\":\"nowhere\",\"netns\":\"${P}nope\",\"interfaces\":[\"eth0\"],\"capture\":{\"dir\":\"$W/x\"}}")" "a session in a missing namespace"
grep -q '"state":"waiting"' "$W/resp" || fail "not waiting: $(cat "$W/resp")"
assert_eq 204 "$(write DELETE /v1/sessions/nowhere)" "delete the waiting session"
assert_eq 400 "$(write POST /v1/sessions -d '{"name":"slash","netns":"../x","interfaces":["eth0"],"capture":{"dir":"/tmp"}}')" "a netns that is a path"
echo "  API: a session in ${P}vm2 captured there; one in a missing namespace waits and can be deleted"

# attach: tc in another namespace: tc's mirred action copies; with mon0 down its copies fail,
# and those failures (tc's counts, read over rtnetlink) are read in ${P}host, where the filter is,
# not in the agent's namespace (where tap-vm1's ifindex means nothing).
assert_eq 201 "$(write POST /v1/sessions -d "{\"name\":\"tc-mirror\",\"netns\":\"${P}host\",\"interfaces\":[\"tap-vm1\"],\"direction\":\"in\",\"filter\":\"udp port 9996\",\"attach\":\"tc\",\"mirror\":{\"to\":\"mon0\"}}")" "create tc-mirror"
assert_eq "tap-vm1" "$(attached tc-mirror)" "tc-mirror attached to tap-vm1 in ${P}host"
tc_has tap-vm1 ingress "mirred (Egress Mirror to device mon0)" || fail "attach: tc: no mirred action to mon0 on tap-vm1: $(tc_filters tap-vm1 ingress)"
poll_counter() {  # poll_counter FIELD N: until tc-mirror's FIELD on tap-vm1 reaches N (2 s at most)
  for _ in $(seq 40); do (( $(counter tc-mirror tap-vm1 "$1") >= $2 )) && return; sleep 0.05; done
}
ns_exec vm1 bash -c 'for i in 1 2; do echo hi >/dev/udp/10.77.0.2/9996; done'
poll_counter mirrored 2
ns_exec host ip link set mon0 down
ns_exec vm1 bash -c 'for i in 1 2 3; do echo hi >/dev/udp/10.77.0.2/9996; done'
poll_counter failed 3
ns_exec host ip link set mon0 up
assert_eq 2 "$(counter tc-mirror tap-vm1 mirrored)" "tc-mirror: copies sent while mon0 was up"
assert_eq 3 "$(counter tc-mirror tap-vm1 failed)" "tc-mirror: copies mirred could not send (mon0 down), read in ${P}host"
assert_eq 204 "$(write DELETE /v1/sessions/tc-mirror)" "delete tc-mirror"
tc_has tap-vm1 ingress mirred && fail "tc-mirror's filter stayed after DELETE: $(tc_filters tap-vm1 ingress)"
echo "  attach: tc in ${P}host: 2 copies sent, 3 failed with mon0 down (tc's counts read there), filter removed on DELETE"

# One VXLAN device per VNI and port in a namespace: a PUT that sends host-sensor's VNI 42 to
# another sensor stops it first and starts it on a new device; a new session with VNI 42 to a
# third sensor is refused with what to do; a PUT that fails puts the old session back.
sensor_json() {  # NAME REMOTE [FILTER]
  echo "{\"name\":\"$1\",\"netns\":\"${P}host\",\"interfaces\":[\"tap-vm1\"],\"direction\":\"in\",\"filter\":\"${3:-icmp}\",\"mirror\":{\"vxlan\":\"$2\",\"vni\":42}}"
}
assert_eq 200 "$(write PUT /v1/sessions/host-sensor -d "$(sensor_json host-sensor 10.77.1.2)")" "host-sensor's VNI 42 to 10.77.1.2"
vxlan_dev_to host 10.77.1.2 42 >/dev/null
assert_eq "tap-vm1" "$(attached host-sensor)" "host-sensor attached again"
assert_eq 400 "$(write POST /v1/sessions -d "$(sensor_json other 10.77.1.3)")" "VNI 42 to a third sensor"
grep -q "give this sensor another VNI" "$W/resp" || fail "VNI 42 to a third sensor: $(cat "$W/resp")"
assert_eq 400 "$(write PUT /v1/sessions/host-sensor -d "$(sensor_json host-sensor 10.77.1.1 "tcp port")")" "a PUT with a bad filter"
vxlan_dev_to host 10.77.1.2 42 >/dev/null
assert_eq "tap-vm1" "$(attached host-sensor)" "host-sensor put back after the failed PUT"
grep -q "session host-sensor: started again" "$W/agent.log" || fail "the failed PUT did not stop and restore host-sensor"
assert_eq 200 "$(write PUT /v1/sessions/host-sensor -d "$(sensor_json host-sensor 10.77.1.1)")" "host-sensor back to 10.77.1.1"
assert_eq "$VX" "$(vxlan_dev_to host 10.77.1.1 42)" "the device of 10.77.1.1 VNI 42, by name"
# The same through a reload of the config file (the PUTs above replaced host-sensor: the file's version is new again).
sed -i "s|mirror: { vxlan: 10.77.1.1, vni: 42 }|mirror: { vxlan: 10.77.1.4, vni: 42 }|" "$W/agent.yaml"
assert_eq 200 "$(write POST /v1/reload)" "reload with host-sensor's VNI 42 to 10.77.1.4"
vxlan_dev_to host 10.77.1.4 42 >/dev/null
sed -i "s|mirror: { vxlan: 10.77.1.4, vni: 42 }|mirror: { vxlan: 10.77.1.1, vni: 42 }|" "$W/agent.yaml"
assert_eq 200 "$(write POST /v1/reload)" "reload with host-sensor's VNI 42 back to 10.77.1.1"
assert_eq "$VX" "$(vxlan_dev_to host 10.77.1.1 42)" "the device of 10.77.1.1 VNI 42 after the reloads"
assert_eq "tap-vm1" "$(attached host-sensor)" "host-sensor attached after the reloads"
echo "  VXLAN: VNI 42 moved to another sensor by PUT and back, and by a reload; a third session with it refused; a failed PUT put the session back"

grep -E " (error|critical) " "$W/agent.log" && fail "the agent logged an error"
grep " warning " "$W/agent.log" | grep -v "the session waits for it\|was deleted or replaced" && fail "unexpected warnings"

# A crash leaves the VXLAN device in the host namespace: `bpftap cleanup --netns` removes it,
# and so does the next start.
kill_agent() {
  signal_job KILL "$AGENT"
  wait "$AGENT" 2>/dev/null || true  # bash reports the kill
  ns_exec host ip link show $VX >/dev/null 2>&1 || fail "expected the killed agent's VXLAN device to remain"
  # Its pins died with its mount namespace (their links are released from a kernel work queue).
  for _ in $(seq 20); do [[ $(tcx_progs host tap-vm1 in) == 0 ]] && break; sleep 0.05; done
  assert_eq 0 "$(tcx_progs host tap-vm1 in)" "TCX programs on tap-vm1 after SIGKILL of an agent in a private mount namespace"
}
kill_agent
out=$(ns_exec agt "$BPFTAP" cleanup --netns "${P}host")
assert_eq "removed VXLAN device $VX" "$out" "bpftap cleanup --netns ${P}host"
ns_exec host ip link show $VX >/dev/null 2>&1 && fail "cleanup --netns left the VXLAN device"
rc=0
"$BPFTAP" cleanup --netns "${P}nope" 2>"$W/cleanup.err" || rc=$?
assert_eq 2 "$rc" "cleanup --netns of a missing namespace"
echo "  after SIGKILL: its TCX links went with its mount namespace; bpftap cleanup --netns ${P}host removed the VXLAN device"
start_agent "$W/agent1.log"
kill_agent
start_agent "$W/agent2.log"
grep -q "removed leftover VXLAN device $VX in network namespace ${P}host" "$W/agent2.log" ||
  fail "the leftover VXLAN device was not removed at start: $(cat "$W/agent2.log")"
assert_eq "tap-atk tap-vm1 tap-vm2" "$(attached host-mirror)" "attached again after the restart"
echo "  after SIGKILL: the restart removed the leftover VXLAN device in ${P}host and attached again"

# SIGTERM: exit 0, nothing left in the host namespace.
signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
assert_nothing_attached tap-vm1 tap-vm2 tap-atk mon0
ns_exec host ip link show $VX >/dev/null 2>&1 && fail "VXLAN device left in ${P}host"
[[ -e "$SOCK" ]] && fail "the API socket file was left behind"
echo "PASS: agent netns: sessions in ${P}host and ${P}vm2 from ${P}agt; attach within ${ms} ms; crash leftovers removed; clean exit"
