#!/usr/bin/env bash
# bpftap ctl against a running agent (API on a unix socket, token from the config's token_file):
# status, sessions (table and JSON), counters of one session, reload, bypass add (and its
# refusal of a partial 5-tuple), bypass list/delete (GET/DELETE /v1/bypass; a deleted id is
# exit 2), a wrong token (401, exit 1) and an agent that is not there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd python3
make_workdir
lab_up
W=$WORKDIR
make_token
cat >"$W/agent.yaml" <<YAML
api:
  listen: unix:$W/api.sock
  token_file: $W/token
sessions:
  - name: vm-capture
    interfaces: ["tap-vm*"]
    direction: inout
    capture: { dir: $W/pcap, rotate_mb: 10, keep_files: 3 }
  - name: ids-feed
    interfaces: ["tap-*"]
    direction: in
    mirror: { to: mon0 }
YAML
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
wait_for_line "$W/agent.log" "agent ready" 15
ctl() { ns_exec host "$BPFTAP" ctl --config "$W/agent.yaml" "$@"; }

ctl status >"$W/status" || fail "ctl status: $(cat "$W/status")"
sed 's/^/  /' "$W/status"
grep -q "^agent: running, 2 sessions (0 waiting)$" "$W/status" || fail "ctl status first line"
grep -qE '^ids-feed +mirror +running +tap-atk,tap-vm1,tap-vm2$' "$W/status" || fail "ctl status: ids-feed row"
grep -qE '^vm-capture +capture +running +tap-vm1,tap-vm2$' "$W/status" || fail "ctl status: vm-capture row"
assert_eq 2 "$(ctl sessions --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "ctl sessions --json"

ns_exec vm1 ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null
sleep 0.5
ctl counters --session ids-feed >"$W/counters"
grep -q 'session="vm-capture"' "$W/counters" && fail "ctl counters --session ids-feed shows vm-capture"
mirrored=$(awk '/^bpftap_packets_mirrored_total\{session="ids-feed",interface="tap-vm1"/ { s += $NF } END { print s + 0 }' "$W/counters")
(( mirrored >= 3 )) || fail "ctl counters: $mirrored packets mirrored from tap-vm1, expected >= 3: $(cat "$W/counters")"
echo "  counters: ids-feed mirrored $mirrored packets from tap-vm1"
# A capture session's counts by hook: vm1's echo requests enter tap-vm1 (in), the replies leave
# it (out); in + out = the interface's total, in /metrics and in the API.
ctl counters --session vm-capture >"$W/counters"
cap() { awk -v d="$1" '$1 ~ /^bpftap_packets_captured_total\{session="vm-capture",interface="tap-vm1"/ && index($1, "direction=\"" d "\"") { s += $NF } END { print s + 0 }' "$W/counters"; }
cin=$(cap in); cout=$(cap out)
(( cin >= 3 && cout >= 3 )) || fail "vm-capture on tap-vm1: $cin captured in, $cout out, expected >= 3 each: $(grep captured "$W/counters")"
ctl sessions --json | python3 -c '
import json, sys
cin, cout = int(sys.argv[1]), int(sys.argv[2])
c = [c for x in json.load(sys.stdin) if x["name"] == "vm-capture" for c in x["counters"] if c["interface"] == "tap-vm1"][0]
assert c["in"]["captured"] + c["out"]["captured"] == c["captured"], c
assert c["in"]["captured"] >= cin and c["out"]["captured"] >= cout, (c, cin, cout)
' "$cin" "$cout" || fail "API counters by direction disagree with /metrics"
echo "  counters: vm-capture captured $cin packets in, $cout out on tap-vm1"

ctl reload >"$W/reload" || fail "ctl reload: $(cat "$W/reload")"
echo "  reload: $(cat "$W/reload")"

rc=0; ctl bypass add --proto tcp --src 10.77.0.1 --dst 10.77.0.2 --dport 80 2>"$W/err" || rc=$?
assert_eq 2 "$rc" "bypass add without --sport"
assert_eq 1 "$(wc -l <"$W/err")" "one line for a partial 5-tuple"
ctl bypass add --proto tcp --src 10.77.0.1 --sport 40000 --dst 10.77.0.2 --dport 80 --seconds 30 >"$W/added" \
  || fail "bypass add: $(cat "$W/added")"
echo "  bypass add: $(cat "$W/added")"
rc=0; ctl bypass list >"$W/list" 2>"$W/err" || rc=$?
assert_eq 0 "$rc" "bypass list ($(cat "$W/err"))"
sed 's/^/  /' "$W/list"
id=$(awk '$3 == "10.77.0.1:40000" && $4 == "10.77.0.2:80" { print $1 }' "$W/list")
[[ -n "$id" ]] || fail "bypass list does not show the bypass: $(cat "$W/list")"
ctl bypass delete "$id" >/dev/null || fail "bypass delete $id"
ctl bypass list >"$W/list"
grep -q "10.77.0.1:40000" "$W/list" && fail "bypass $id still listed after delete"
rc=0; ctl bypass delete "$id" 2>"$W/err" || rc=$?
assert_eq 2 "$rc" "deleting a bypass that is gone ($(cat "$W/err"))"

echo "wrong-token-wrong-token" >"$W/bad"; chmod 600 "$W/bad"
rc=0; ctl --token-file "$W/bad" reload 2>"$W/err" || rc=$?
assert_eq 1 "$rc" "reload with a wrong token"
grep -q "HTTP 401" "$W/err" || fail "wrong token: $(cat "$W/err")"
rc=0; ns_exec host "$BPFTAP" ctl --api "unix:$W/nothing.sock" status 2>"$W/err" || rc=$?
assert_eq 1 "$rc" "ctl with no agent"
grep -q "cannot reach the agent at unix:$W/nothing.sock" "$W/err" || fail "no agent: $(cat "$W/err")"
echo "  errors: $(cat "$W/err")"
echo PASS
