#!/usr/bin/env bash
# A full disk is neither fatal nor silent (issue 13, item 2). On a 4 MB tmpfs:
#  - capture files: when a write fails the session turns "failing" with the reason, packets that
#    cannot be written are counted (unwritten, bpftap_write_errors_total), the log says so once;
#    the reader never stops (it used to: `captured` froze for good). With keep_files, the ring's
#    oldest file is deleted to make room and writing resumes by itself; every file stays
#    readable (a failed write is cut back to the last whole packet);
#  - alerts: while they cannot be written they wait in memory; once there is room again they are
#    all in the file (none lost; 14 used to vanish without a trace);
#  - SIGHUP reopens the output files (logrotate moves them away: no copytruncate needed).
# FILES=per-session runs the capture session with one file for the session (capture.files;
# default per-interface): the same holds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3 capinfos
make_workdir
lab_up
W=$WORKDIR
D=$W/disk
FILES=${FILES:-per-interface}
mkdir -p "$D"
mount -t tmpfs -o size=4m bpftap-test "$D"
trap 'rc=$?; umount -l "$D" 2>/dev/null; (exit $rc); _lab_cleanup' EXIT
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: vm-capture
    interfaces: [tap-vm1]
    direction: in
    filter: "udp port 9999"
    capture: { dir: $D/pcap, rotate_mb: 1, keep_files: 3, files: $FILES }
  - name: east-west
    interfaces: ["tap-vm*"]
    direction: in
    filter: "tcp port 8080"
    inspect: { alerts: $D/eve.json }
YAML

api() { ns_exec host curl -s -m 5 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
field() {  # field SESSION KEY
  get "/v1/sessions/$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"
}
udp() {  # udp N: N datagrams of 1000 bytes from vm1 to vm2:9999
  ns_exec vm1 python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b'x' * 1000, ('10.77.0.2', 9999))
    if i % 200 == 199: time.sleep(0.05)
" "$1"
  sleep 0.5
}
packets_in_files() {
  local f n=0
  for f in "$D"/pcap/vm-capture-*.pcapng; do
    capinfos -M -c "$f" >"$W/capinfos.out" 2>&1 || fail "capinfos $f: $(cat "$W/capinfos.out")"
    grep -qi "cut short\|appears to be damaged" "$W/capinfos.out" && fail "$f is damaged: $(cat "$W/capinfos.out")"
    n=$((n + $(awk '/Number of packets/ { print $NF }' "$W/capinfos.out")))
  done
  echo "$n"
}
wait_state() {  # wait_state SESSION STATE SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do [[ $(state "$1") == "$2" ]] && return 0; sleep 0.1; done
  fail "$1 is $(state "$1"), not $2, after $3 s: $(get "/v1/sessions/$1")"
}

# The ring: three 1 MB files, then the disk fills.
udp 2300
assert_eq 2300 "$(counter vm-capture tap-vm1 captured)" "captured before the disk filled"
assert_eq running "$(state vm-capture)" "vm-capture before the disk filled"
dd if=/dev/zero of="$D/filler" bs=64k 2>/dev/null || true
ls "$D/pcap" >"$W/before.ls"
udp 300
# The write fails; the oldest file of the ring is deleted to make room; writing goes on.
for _ in $(seq 50); do grep -q "session vm-capture: write .*No space left on device" "$W/agent.log" && break; sleep 0.1; done
grep -q "session vm-capture: write .*No space left on device" "$W/agent.log" || fail "no failure logged: $(tail -5 "$W/agent.log")"
wait_state vm-capture running 5
wait_for_line "$W/agent.log" "session vm-capture: working again" 5
(( $(field vm-capture write_errors) >= 1 )) || fail "write_errors not counted"
ls "$D/pcap" >"$W/after.ls"
[[ $(wc -l <"$W/after.ls") -lt $(wc -l <"$W/before.ls") ]] || fail "the ring's oldest file was not deleted: $(cat "$W/before.ls") -> $(cat "$W/after.ls")"
udp 100
captured=$(counter vm-capture tap-vm1 captured)
unwritten=$(counter vm-capture tap-vm1 unwritten)
assert_eq 2700 "$captured" "captured across the full disk (the reader never stopped)"
in_files=$(packets_in_files)
echo "  capture ring on a full disk: failed, oldest file deleted, writing again; $in_files packets in the files, $unwritten unwritten"

# The disk fills again and stays full (no older file left to delete): failing, said once, counted.
current=$(ls -t "$D"/pcap/vm-capture-*.pcapng | head -1)
for f in "$D"/pcap/*; do [[ $f == "$current" ]] || rm -f "$f"; done
dd if=/dev/zero of="$D/filler2" bs=64k 2>/dev/null || true
errors0=$(grep -c "session vm-capture: write" "$W/agent.log")
udp 300
wait_state vm-capture failing 5
field vm-capture reason | grep -q "No space left on device" || fail "reason: $(field vm-capture reason)"
udp 300
sleep 2.5
assert_eq failing "$(state vm-capture)" "vm-capture while the disk is full"
assert_eq $((errors0 + 1)) "$(grep -c "session vm-capture: write" "$W/agent.log")" "failure lines logged (once per episode)"
(( $(counter vm-capture tap-vm1 unwritten) > unwritten )) || fail "unwritten packets not counted"
(( $(metric bpftap_packets_unwritten_total 'session="vm-capture"') > 0 )) || fail "bpftap_packets_unwritten_total"
assert_eq 1 "$(metric bpftap_session_failing 'session="vm-capture"')" "bpftap_session_failing"
(( $(metric bpftap_write_errors_total 'session="vm-capture"') >= 2 )) || fail "bpftap_write_errors_total"
assert_eq 3300 "$(counter vm-capture tap-vm1 captured)" "captured while the disk is full (the reader goes on)"

# Alerts while the disk is full: they wait.
mkdir -p "$W/www"
echo hello >"$W/www/index.html"
(cd "$W/www" && ns_exec vm2 python3 -m http.server 8080 --bind 10.77.0.2 >/dev/null 2>&1) &
for _ in $(seq 50); do ns_exec vm1 curl -s -o /dev/null -m 1 http://10.77.0.2:8080/ && break; sleep 0.1; done
sqli() {  # sqli N: N requests carrying an SQL injection
  local i
  for i in $(seq "$1"); do
    ns_exec vm1 curl -s -o /dev/null -m 2 "http://10.77.0.2:8080/dv/vulnerabilities/sqli/?id=$i%27+OR+%271%27%3D%271&Submit=Submit" || fail "request $i"
  done
}
sqli 7
wait_state east-west failing 5
field east-west reason | grep -q "eve.json: No space left on device" || fail "east-west reason: $(field east-west reason)"
sqli 7
echo "  disk full: both sessions failing ($(field vm-capture reason | cut -c1-90)...)"

# Room again: both resume by themselves, the alerts come out.
rm -f "$D/filler" "$D/filler2"
wait_state vm-capture running 5
udp 100
wait_state east-west running 5
wait_for_line "$W/agent.log" "session east-west: working again" 5
assert_eq 0 "$(field east-west alerts_dropped)" "alerts dropped"
got=$(grep -c "SQL Injection" "$D/eve.json" || true)
(( got >= 14 )) || fail "$got SQL-injection alerts in eve.json, 14 requests carried one"
echo "  room again: both running; all $got SQL-injection alerts written, none dropped"

# SIGHUP: logrotate moved the files away.
mv "$D/eve.json" "$D/eve.json.1"
current=$(ls -t "$D"/pcap/vm-capture-*.pcapng | head -1)
mv "$current" "$D/pcap/rotated.pcapng"
signal_job HUP "$AGENT"
wait_for_line "$W/agent.log" "output files reopened" 5
sqli 3
udp 50
sleep 1.5
[[ -s "$D/eve.json" ]] || fail "no new eve.json after SIGHUP"
grep -q "SQL Injection" "$D/eve.json" || fail "the new eve.json has no alert"
[[ -e "$current" ]] || fail "no new $current after SIGHUP"
assert_eq 50 "$(capinfos -M -c "$current" | awk '/Number of packets/ { print $NF }')" "packets in the reopened capture file"
echo "  SIGHUP: eve.json and the capture file moved away were opened anew and written"

signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"
grep -E " critical " "$W/agent.log" && fail "critical lines in the log"
echo "PASS: a full disk ($FILES files): failing with the reason, counted, logged once, resumed by itself; SIGHUP reopens"
