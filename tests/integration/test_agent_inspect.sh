#!/usr/bin/env bash
# The agent's inspect session sees a conversation the way it happened, although its two halves
# cross two taps: HTTP between two lab VMs (vm1 the client, vm2 a server on 8080), some
# requests carrying an SQL injection, traced by one agent session on tap-vm* with direction in
# (requests enter at tap-vm1, responses at tap-vm2). One ring per session keeps the packets of
# both taps in time order, so every flow's originator must be the client, every connection
# complete (not OTH: "no SYN seen"), and every SQL-injection alert must name the client as the
# attacker. (Regression: with a ring and a reader per tap, about half the flows came out
# reversed and the alert named the server.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
require_root
require_cmd curl python3
make_workdir
lab_up
W=$WORKDIR
PORT=$((20000 + RANDOM % 20000))
API=http://127.0.0.1:$PORT
make_token
REQUESTS=12

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: east-west
    interfaces: ["tap-vm*"]
    direction: in
    inspect: { alerts: $W/alerts.json, flows: $W/flows.json }
YAML

api() { ns_exec host curl -s -m 5 "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
assert_eq "tap-vm1 tap-vm2" "$(attached east-west)" "interfaces attached"

mkdir -p "$W/www"
echo hello >"$W/www/index.html"
(cd "$W/www" && ns_exec vm2 python3 -m http.server 8080 --bind 10.77.0.2 >/dev/null 2>&1) &
for _ in $(seq 50); do ns_exec vm1 curl -s -o /dev/null -m 1 http://10.77.0.2:8080/ && break; sleep 0.1; done
for i in $(seq "$REQUESTS"); do
  if (( i % 2 )); then
    path="/dv/vulnerabilities/sqli/?id=1%27+OR+%271%27%3D%271&Submit=Submit"
  else
    path="/index.html?page=$i"
  fi
  ns_exec vm1 curl -s -o /dev/null -m 2 "http://10.77.0.2:8080$path" || fail "request $i failed"
done
sleep 1
# The inspector's totals in /metrics (issue 15: alert and flow counters).
alerts_metric=$(metric bpftap_alerts_total 'session="east-west"')
flows_metric=$(metric bpftap_flows_total 'session="east-west"')
(( alerts_metric >= REQUESTS / 2 )) || fail "bpftap_alerts_total = $alerts_metric, expected >= $((REQUESTS / 2))"
(( flows_metric >= REQUESTS )) || fail "bpftap_flows_total = $flows_metric, expected >= $REQUESTS"
signal_job TERM "$AGENT"  # writes out every flow on exit
wait "$AGENT" || fail "agent exited $? on SIGTERM"
# Every alert is also one line of the agent's log.
logged=$(grep -c "session east-west: alert: .*10.77.0.1:[0-9]* -> 10.77.0.2:8080" "$W/agent.log" || true)
(( logged >= REQUESTS / 2 )) || fail "$logged alert lines in the agent's log, expected >= $((REQUESTS / 2)): $(grep alert "$W/agent.log" | head -3)"
echo "  /metrics: $alerts_metric alerts, $flows_metric flows; $logged alert lines in the log"

python3 - "$W/flows.json" "$W/alerts.json" "$REQUESTS" <<'PY' || fail "inspection got the conversation's direction wrong"
import json, sys
flows = [json.loads(l) for l in open(sys.argv[1])]
alerts = [a for a in map(json.loads, open(sys.argv[2])) if a["event_type"] == "alert"]  # not the flow events
want = int(sys.argv[3])
http = [f for f in flows if 8080 in (f.get("id.orig_p"), f.get("id.resp_p"))]
bad = [f for f in http if (f["id.orig_h"], f["id.resp_h"], f["id.resp_p"]) != ("10.77.0.1", "10.77.0.2", 8080)
       or f.get("conn_state") == "OTH"]
sqli = [a for a in alerts if "SQL Injection" in a["alert"]["signature"]]
wrong = [a for a in sqli if (a["src_ip"], a["dest_ip"], a.get("dest_port")) != ("10.77.0.1", "10.77.0.2", 8080)]
print(f"  {len(http)} HTTP flows, {len(bad)} reversed or without their SYN; "
      f"{len(sqli)} SQL-injection alerts, {len(wrong)} naming the wrong attacker")
for f in bad[:3]: print("   flow:", json.dumps(f)[:300])
for a in wrong[:3]: print("   alert:", json.dumps(a)[:300])
# Each request is a connection (curl, one per run); the first probe may add one more.
ok = len(http) >= want and not bad and len(sqli) >= want // 2 and not wrong
sys.exit(0 if ok else 1)
PY
echo "PASS: agent inspect across two taps: every flow from the client, every SQL injection from the attacker"
