#!/usr/bin/env bash
# bpftap inspect --redis: the EVE stream to a real redis-server started here (127.0.0.1, a free
# port, killed by the trap), read back with redis-cli: as a list (RPUSH, every line in order, the
# same as --alerts writes) and as a channel (PUBLISH, every line received by a subscriber). With
# Redis down, every line is counted as dropped and the inspection still completes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd redis-server redis-cli python3
C=$BPFTAP_CORPUS/ndpi
W=$(mktemp -d /tmp/bpftap-redis.XXXXXX)
server=""
cleanup() {
  local rc=$?
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf -- "$W"
  exit "$rc"
}
trap cleanup EXIT INT TERM HUP
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

port=$(free_port)
redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no >"$W/redis.log" 2>&1 &
server=$!
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$port" ping | grep -q PONG || fail "redis-server did not start: $(tail -3 "$W/redis.log")"

# List mode: the list holds exactly the lines of the EVE file, in order.
"$BPFTAP" inspect -r "$C/WebattackSQLinj.pcap" --alerts "$W/eve.json" --redis "127.0.0.1:$port" 2>"$W/list.log" ||
  fail "inspect --redis exited $?: $(cat "$W/list.log")"
n=$(wc -l <"$W/eve.json")
assert_eq "$n" "$(redis-cli -p "$port" LLEN bpftap)" "lines in the Redis list"
redis-cli -p "$port" --raw LRANGE bpftap 0 -1 >"$W/list.json"
cmp -s "$W/eve.json" "$W/list.json" || fail "the Redis list differs from the EVE file"
grep -q "redis: $n EVE lines sent, 0 dropped" "$W/list.log" || fail "no send count: $(cat "$W/list.log")"
echo "  list: $n EVE lines RPUSHed to 'bpftap', identical to --alerts"

# Channel mode, another key: a subscriber receives every line.
redis-cli -p "$port" --raw SUBSCRIBE evechan >"$W/sub.txt" &
sub=$!
for _ in $(seq 50); do [[ $(redis-cli -p "$port" PUBSUB NUMSUB evechan | tail -1) == 1 ]] && break; sleep 0.1; done
"$BPFTAP" inspect -r "$C/ftp.pcap" --alerts "$W/ftp.json" --redis "127.0.0.1:$port" --redis-mode channel \
  --redis-key evechan 2>"$W/chan.log" || fail "inspect --redis-mode channel exited $?"
sleep 0.5
kill "$sub"; wait "$sub" 2>/dev/null || true
got=$(grep -c '^{' "$W/sub.txt" || true)
assert_eq "$(wc -l <"$W/ftp.json")" "$got" "lines received on the channel"
echo "  channel: $got EVE lines PUBLISHed on 'evechan', all received"

# Redis down: the inspection completes, every line counted as dropped.
kill "$server"; wait "$server" 2>/dev/null || true
server=""
start=$(date +%s)
"$BPFTAP" inspect -r "$C/WebattackSQLinj.pcap" --alerts /dev/null --redis "127.0.0.1:$port" 2>"$W/down.log" ||
  fail "inspect with Redis down exited $?: $(cat "$W/down.log")"
grep -q "redis: 0 EVE lines sent, $n dropped" "$W/down.log" || fail "Redis down: $(cat "$W/down.log")"
echo "  Redis down: inspection completed in $(($(date +%s) - start)) s, $n lines counted as dropped"

# Bad input: one line, exit 2.
set +e
"$BPFTAP" inspect -r "$C/ftp.pcap" --redis nocolon 2>"$W/bad.log"
rc=$?
set -e
assert_eq 2 "$rc" "exit code for --redis nocolon"
assert_eq 1 "$(wc -l <"$W/bad.log")" "lines of the error"
