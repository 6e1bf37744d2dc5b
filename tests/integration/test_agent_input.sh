#!/usr/bin/env bash
# Input is checked where it enters (issue 13, items 5, 6 and 12):
#  - session fields: a byte that is not UTF-8 (or a control character), null, a number for a
#    string or a string for a number: 400 with the reason, nothing created, and the listing
#    still answers (a non-UTF-8 byte used to answer 500, create the session, and break
#    GET /v1/sessions until it was deleted);
#  - an interface whose name is not UTF-8 (any user who may create links can make one): the
#    listing, /metrics and the capture file name carry it escaped (\xff), nothing fails;
#  - no answer carries exception text (httplib's EXCEPTION_WHAT header);
#  - bypass: ports 0-65535 as whole numbers, addresses of one family, known keys only: checked
#    whatever sessions run (dport 70000 used to bypass port 4464);
#  - the token file: a FIFO is refused at once (start-up used to block on it), one owned by
#    another user is refused.
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

cat >"$W/agent.yaml" <<YAML
api:
  listen: 127.0.0.1:$PORT
  token_file: $W/token
sessions:
  - name: caps
    interfaces: ["tap-*"]
    direction: in
    filter: icmp
    capture: { dir: $W/pcap }
YAML

api() { ns_exec host curl -s -m 5 -D "$W/headers" "$@"; }
ns_exec host "$BPFTAP" agent --config "$W/agent.yaml" 2>"$W/agent.log" &
AGENT=$!
wait_for_line "$W/agent.log" "agent ready" 15
no_exception_header() { grep -qi "EXCEPTION_WHAT" "$W/headers" && fail "exception text in an answer: $(cat "$W/headers")"; return 0; }
listing_ok() {
  get /v1/sessions >"$W/list.json"
  grep -q "^HTTP/1.1 200" "$W/headers" || fail "GET /v1/sessions: $(head -1 "$W/headers")"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/list.json" || fail "the listing is not JSON: $(cat "$W/list.json")"
}

# Session fields.
bad=(
  $'{"name":"u\xff","interfaces":["tap-vm1"],"capture":{"dir":"/tmp"}}'
  $'{"name":"u","interfaces":["tap-\xff"],"capture":{"dir":"/tmp"}}'
  $'{"name":"u","interfaces":["tap-vm1"],"filter":"icmp\xff","capture":{"dir":"/tmp"}}'
  '{"name":"u","interfaces":["tap-vm1"],"filter":"icmp\u0007","capture":{"dir":"/tmp"}}'
  '{"name":null,"interfaces":["tap-vm1"],"capture":{"dir":"/tmp"}}'
  '{"name":42,"interfaces":["tap-vm1"],"capture":{"dir":"/tmp"}}'
  '{"name":"u","interfaces":"tap-vm1","capture":{"dir":"/tmp"}}'
  '{"name":"u","interfaces":["tap-vm1"],"snaplen":"64","capture":{"dir":"/tmp"}}'
  '{"name":"u","interfaces":["tap-vm1"],"snaplen":-5,"capture":{"dir":"/tmp"}}'
  '{"name":"u","interfaces":["tap-vm1"],"capture":{"dir":"/tmp","keep_files":2.5}}'
  '{"name":"u","interfaces":["tap-vm1"],"mirror":{"to":"mon0","vni":"x"}}'
  '[1,2,3]'
  'not json at all'
)
for body in "${bad[@]}"; do
  code=$(write POST /v1/sessions --data-binary "$body")
  [[ $code == 400 ]] || fail "POST $(printf %q "$body"): $code $(cat "$W/resp")"
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]' "$W/resp" || fail "no JSON error body: $(cat "$W/resp")"
  no_exception_header
done
grep -q "printable UTF-8\|not JSON" "$W/resp" || true
assert_eq 1 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' <(get /v1/sessions))" "sessions after the bad bodies"
listing_ok
echo "  ${#bad[@]} malformed sessions: 400 with a JSON reason, none created, the listing answers"
assert_eq 400 "$(write POST /v1/sessions --data-binary '{"name":null,"interfaces":["tap-vm1"],"capture":{"dir":"/tmp"}}')" "name null"
grep -q "name must be a string" "$W/resp" || fail "name null: $(cat "$W/resp")"
assert_eq 404 "$(api -o /dev/null -w '%{http_code}' "$API/v1/sessions/null")" "a session named null"

# An interface whose name is not UTF-8.
ns_exec host ip link add $'tap-\xff' type veth peer name tap-odd-peer
ns_exec host ip link set $'tap-\xff' up
ns_exec host ip link set tap-odd-peer up
for _ in $(seq 50); do grep -q 'attached tap-\\xff' "$W/agent.log" && break; sleep 0.1; done
grep -q 'attached tap-\\xff' "$W/agent.log" || fail "the odd interface was not attached: $(tail -3 "$W/agent.log")"
listing_ok
grep -qF '"tap-\\xff"' "$W/list.json" || fail "the interface is not in the listing, escaped: $(cat "$W/list.json")"
get /metrics >"$W/metrics.txt"
grep -q "^HTTP/1.1 200" "$W/headers" || fail "/metrics: $(head -1 "$W/headers")"
python3 - "$W/metrics.txt" <<'PY' || fail "invalid /metrics with the odd interface"
import re, sys
raw = open(sys.argv[1], "rb").read()
raw.decode("utf-8")  # valid UTF-8 throughout
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample = re.compile(rf'^{name}(\{{({name}="([^"\\]|\\.)*"(,{name}="([^"\\]|\\.)*")*)?\}})? -?[0-9.eE+]+$')
for l in raw.decode().splitlines():
    if l.startswith("#"): continue
    assert sample.match(l), f"bad line: {l!r}"
assert 'interface="tap-\\\\xff"' in raw.decode(), "the odd interface's label"
PY
ls "$W/pcap" | grep -qE '^caps-tap-\\xff(-[0-9]+)?\.pcapng$' || fail "capture file of the odd interface: $(ls "$W/pcap")"
ns_exec host ip link del $'tap-\xff'
echo "  an interface named tap-\\xff: attached, listed and labelled escaped, its file caps-tap-\\xff.pcapng"

# Bypass: checked before anything, with or without mirror sessions.
bypass_bad=(
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":70000}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":65536}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":-1}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":1.5}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":18446744073709551616}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":"80"}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","dport":80}'
  '{"proto":"udp","src":"10.77.0.1","sport":5353,"dst":"10.77.0.2"}'
  '{"proto":6,"src":"10.77.0.1","dst":"10.77.0.2"}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"fe80::1"}'
  '{"proto":"tcp","src":"nowhere","dst":"10.77.0.2"}'
  '{"proto":"tcp","dst":"10.77.0.2"}'
  '{"proto":"icmp","src":"10.77.0.1","dst":"10.77.0.2","sport":3}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","seconds":"forever"}'
  '{"proto":"tcp","src":"10.77.0.1","dst":"10.77.0.2","colour":"red"}'
  'garbage'
)
for body in "${bypass_bad[@]}"; do
  code=$(write POST /v1/bypass --data-binary "$body")
  [[ $code == 400 ]] || fail "bypass $body: $code $(cat "$W/resp")"
  no_exception_header
done
assert_eq 201 "$(write POST /v1/bypass -d '{"proto":"tcp","src":"10.77.0.1","sport":40000,"dst":"10.77.0.2","dport":4464}')" "a good bypass"
echo "  bypass: ${#bypass_bad[@]} malformed requests refused (400) with no mirror session running"

# Methods and paths nobody handles: JSON errors, no exception text.
for m in PATCH OPTIONS; do
  code=$(api -o "$W/resp" -w '%{http_code}' -X "$m" "$API/v1/sessions")
  [[ $code =~ ^4 ]] || fail "$m /v1/sessions: $code"
  no_exception_header
done

signal_job TERM "$AGENT"
wait "$AGENT" || fail "agent exited $? on SIGTERM"

# The token file: a FIFO, another user's file.
printf 'api:\n  listen: 127.0.0.1:%s\n  token_file: %s\n' "$PORT" "$W/fifo" >"$W/fifo.yaml"
mkfifo -m 600 "$W/fifo"
set +e
t0=$(date +%s%3N)
timeout 5 ip netns exec "${P}host" "$BPFTAP" agent --config "$W/fifo.yaml" 2>"$W/fifo.log"
rc=$?
t1=$(date +%s%3N)
set -e
assert_eq 2 "$rc" "a FIFO token file (within $((t1 - t0)) ms)"
grep -q "not a regular file" "$W/fifo.log" || fail "FIFO token: $(cat "$W/fifo.log")"
cp "$W/token" "$W/theirs"
chmod 600 "$W/theirs"
chown nobody "$W/theirs"
printf 'api:\n  listen: 127.0.0.1:%s\n  token_file: %s\n' "$PORT" "$W/theirs" >"$W/theirs.yaml"
set +e
timeout 5 ip netns exec "${P}host" "$BPFTAP" agent --config "$W/theirs.yaml" 2>"$W/theirs.log"
rc=$?
set -e
assert_eq 2 "$rc" "a token file owned by another user"
grep -q "owned by uid" "$W/theirs.log" || fail "another user's token: $(cat "$W/theirs.log")"
echo "  token file: a FIFO refused in $((t1 - t0)) ms, another user's refused"
echo "PASS: agent input: session fields, odd interface names, bypass, token file"
