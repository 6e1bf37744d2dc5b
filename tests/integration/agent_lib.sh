# shellcheck shell=bash
# Helpers of the agent tests (after lib.sh, replay_lib.sh and make_workdir). The test defines
# api() (curl with its -m and where the API listens) and API (the base URL).

# A bearer token in $WORKDIR/token (mode 0600, as the agent demands); sets TOKEN.
make_token() {
  head -c 32 /dev/urandom | base64 >"$WORKDIR/token"
  chmod 600 "$WORKDIR/token"
  TOKEN=$(cat "$WORKDIR/token")
}

get() { api "$API$1"; }
# write METHOD PATH [curl args]: prints the HTTP status; the body goes to $WORKDIR/resp.
write() {
  local method=$1 path=$2; shift 2
  api -o "$WORKDIR/resp" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN" "$@" "$API$path"
}

# Each prints NO-SESSION if the session cannot be read, so an empty answer is a real one.
counter() {  # counter SESSION IFACE FIELD: summed over directions
  get "/v1/sessions/$1" | python3 -c "import json,sys
try: d=json.load(sys.stdin); print(sum(c.get('$3',0) for c in d['counters'] if c['interface']=='$2'))
except Exception: print('NO-SESSION')"
}
attached() {  # attached SESSION: its attached interfaces, sorted
  get "/v1/sessions/$1" | python3 -c "import json,sys
try: d=json.load(sys.stdin); print(' '.join(sorted({c['interface'] for c in d['counters'] if c['attached']})))
except Exception: print('NO-SESSION')"
}
state() {  # state SESSION: running | waiting
  get "/v1/sessions/$1" | python3 -c "import json,sys
try: print(json.load(sys.stdin)['state'])
except Exception: print('NO-SESSION')"
}

# new_vm_tap SESSION...: creates ${P}vm3 and its tap-vm3 on the host bridge, waits until every
# SESSION shows it attached, and checks the agent attached it within 1 s of its creation (from
# the agent's log, $WORKDIR/agent.log). Sets ms (the agent's time) and seen (through the API).
new_vm_tap() {
  local t0 s t all
  ip netns add "${P}vm3"
  t0=$(date +%s%3N)
  ns_exec host ip link add tap-vm3 mtu 9000 type veth peer name eth0 mtu 9000 netns "${P}vm3"
  ns_exec host ip link set tap-vm3 master br0
  ns_exec host ip link set tap-vm3 up
  ns_exec vm3 ip addr add 10.77.0.3/24 dev eth0
  ns_exec vm3 ip link set eth0 up
  ns_exec vm3 ip link set lo up
  for _ in $(seq 100); do
    all=1
    for s in "$@"; do [[ " $(attached "$s") " == *" tap-vm3 "* ]] || { all=0; break; }; done
    (( all )) && break
    sleep 0.02
  done
  seen=$(( $(date +%s%3N) - t0 ))
  for s in "$@"; do [[ " $(attached "$s") " == *" tap-vm3 "* ]] || fail "tap-vm3 not attached to $s: $(cat "$WORKDIR/agent.log")"; done
  # The agent's own time: from the tap's creation to the last session's "attached" log line.
  ms=0
  for s in "$@"; do
    t=$(( $(log_time_ms "$WORKDIR/agent.log" "session $s: attached tap-vm3") - t0 ))
    if (( t > ms )); then ms=$t; fi
  done
  (( ms <= 1000 )) || fail "tap-vm3 attached after $ms ms (> 1 s)"
}

# The agent's own pid (a job started as `ns_exec ... &` may be a subshell whose child it is).
agent_pid() {
  local c
  c=$(pgrep -P "$1" -x bpftap | head -1)
  echo "${c:-$1}"
}

# metric NAME LABELS: the sum of NAME's samples whose labels contain LABELS.
metric() { get /metrics | awk -v m="$1" -v l="$2" '(index($0, m "{") == 1 || index($0, m " ") == 1) && index($0, l) { s += $NF } END { print s + 0 }'; }
