#!/usr/bin/env bash
# Without the privileges it needs, every command says so in one line naming what is missing and
# exits 1 (issue 13, item 10). It used to say "socket: Operation not permitted" (capture), blame
# the kernel verifier (with CAP_NET_ADMIN alone), complain about the token's length (agent), and
# `cleanup` said "nothing to clean up" and exited 0 while leftovers existed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
require_cmd setpriv
make_workdir
trap 'rm -rf -- "$WORKDIR"' EXIT
W=$WORKDIR
chmod 755 "$W"
cp "$BPFTAP_CORPUS/ndpi/$(awk -F'\t' '$3 == "ether" { print $1; exit }' "$BPFTAP_CORPUS/ndpi-index.tsv")" "$W/some.pcap"
chmod 644 "$W/some.pcap"
head -c 32 /dev/urandom | base64 >"$W/token"
chmod 600 "$W/token"
printf 'api:\n  listen: 127.0.0.1:%s\n  token_file: %s\n' $((20000 + RANDOM % 20000)) "$W/token" >"$W/agent.yaml"
chmod 644 "$W/agent.yaml"

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"; }
as_net_admin() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin "$@"; }

# expect_refused WHO WANT COMMAND...: exit 1, one line on stderr naming WANT.
expect_refused() {
  local who=$1 want=$2 rc=0; shift 2
  "$who" "$BPFTAP" "$@" >"$W/out" 2>"$W/err" </dev/null || rc=$?
  assert_eq 1 "$rc" "exit code of '$*' ($who): $(cat "$W/err")"
  assert_eq 1 "$(wc -l <"$W/err")" "stderr lines of '$*' ($who): $(cat "$W/err")"
  grep -q -- "$want" "$W/err" || fail "'$*' ($who) does not name $want: $(cat "$W/err")"
  grep -qi "verifier\|token\|Operation not permitted" "$W/err" && fail "'$*' ($who) blames something else: $(cat "$W/err")"
  echo "  $who $*: $(cat "$W/err")"
}

expect_refused as_nobody "needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON and CAP_NET_RAW" capture -i lo -c 1
expect_refused as_net_admin "missing: CAP_BPF, CAP_PERFMON, CAP_NET_RAW" capture -i lo -c 1
expect_refused as_net_admin "missing: CAP_BPF, CAP_PERFMON, CAP_NET_RAW" capture -i lo -c 1 udp port 53
expect_refused as_nobody "the capability CAP_NET_RAW (missing: CAP_NET_RAW)" capture --backend pcap -i lo -c 1
expect_refused as_nobody "bpftap: mirror needs root" mirror --from lo --to lo
expect_refused as_net_admin "missing: CAP_BPF" inspect -i lo
expect_refused as_nobody "bpftap: agent needs root" agent --config "$W/agent.yaml"
expect_refused as_net_admin "missing: CAP_BPF" agent --config "$W/agent.yaml"
expect_refused as_nobody "cannot see what a killed bpftap left" cleanup
expect_refused as_net_admin "missing: CAP_SYS_ADMIN" cleanup
expect_refused as_nobody "bpftap: lab up needs root" lab up --prefix tpriv-
# What needs no privilege still works without it.
as_nobody "$BPFTAP" inspect -r "$W/some.pcap" --alerts /dev/null 2>"$W/err" || fail "inspect -r as nobody: $(cat "$W/err")"
echo "PASS: without privileges every command names what is missing, exit 1"
