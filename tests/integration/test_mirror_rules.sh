#!/usr/bin/env bash
# Mirror rules (AWS Traffic Mirroring style), differential against libpcap: what the monitor
# receives under a rule set equals tcpdump's capture of the source hook with an equivalent
# pcap-filter expression. The rules file is then rewritten and SIGHUP applies it to the running
# session: the new rules take effect, the BPF link stays the same (no reattach), and a broken
# rules file keeps the running rules.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tcpdump tcpreplay bpftool capinfos
: "${PCAPCMP:?set PCAPCMP to the pcapcmp tool}"
make_workdir
lab_up
W=$WORKDIR
mapfile -t pcaps < <(corpus_ethernet_pcaps "${REPLAY_LIMIT:-80}")

cat >"$W/rules" <<'RULES'
# first match wins; no match = not mirrored
10 reject proto udp dport 53
20 accept proto udp
30 accept proto tcp dport 80
40 accept proto tcp sport 80
RULES
expr_a='not (udp dst port 53) and (udp or tcp dst port 80 or tcp src port 80)'
rules_b='30 accept dst 192.168.0.0/16
10 reject proto tcp
20 accept src 192.168.0.0/16 proto udp sport 1024-65535'
expr_b='not tcp and ((ip src net 192.168.0.0/16 and udp src portrange 1024-65535) or ip dst net 192.168.0.0/16)'

ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --to mon0 --rules-file "$W/rules" 2>"$W/m.log" &
M=$!
wait_for_line "$W/m.log" "mirroring"
links_before=$(bpftool link show | grep -c "tcx" || true)
prog_before=$(bpftool prog show | awk '/name bpftap_mirror_i/ { print $1 }')

# round NAME EXPRESSION: replay; the monitor must equal tcpdump's capture with EXPRESSION.
round() {
  local name="$1" expr="$2"
  tcpdump_in mon "mon-$name" eth0
  tcpdump_in host "ref-$name" tap-vm1 -Q in "$expr"
  replay_corpus vm1 "${pcaps[@]}" >/dev/null
  sleep 1.2
  stop_tcpdumps
  local n
  n=$(capinfos -M -c "$W/ref-$name.pcap" | awk '/Number of packets/ { print $NF }')
  (( n > 50 )) || fail "$name: only $n packets match '$expr'; the round tests little"
  "$PCAPCMP" "$W/mon-$name.pcap" - "$W/ref-$name.pcap" --no-ts || fail "$name: the rules mirrored other packets than '$expr'"
  echo "  $name: $n packets, monitor = tcpdump '$expr'"
}
round a "$expr_a"

echo "$rules_b" >"$W/rules"
signal_job HUP "$M"
wait_for_line "$W/m.log" "rules reloaded: 3 rules"
round b "$expr_b"
assert_eq "$prog_before" "$(bpftool prog show | awk '/name bpftap_mirror_i/ { print $1 }')" "program id after the reload"
assert_eq "$links_before" "$(bpftool link show | grep -c "tcx" || true)" "tcx links after the reload"

# A broken file is refused; the session keeps running with rules b.
echo "10 allow everything" >"$W/rules"
signal_job HUP "$M"
wait_for_line "$W/m.log" "rules not reloaded"
round b2 "$expr_b"

signal_job TERM "$M"
wait "$M" || fail "bpftap mirror exited $?: $(cat "$W/m.log")"
sed "s/^/  /" "$W/m.log"
assert_nothing_attached tap-vm1
echo "PASS: rules select what libpcap's equivalent expression selects; rules change while running"
