#!/usr/bin/env bash
# bpftap inspect, live vs file: each attack capture of the corpus is replayed from vm1 while
# `bpftap inspect -i tap-vm1 -Q in` traces it through the eBPF capture path; the alerts
# (signature and flow) must equal those of `bpftap inspect -r` on the file. Then the IDS
# hand-offs: per-flow nDPI risks equal ndpiReader's on each file; an IDS (ndpiReader) sniffing
# the monitor port behind `bpftap mirror --to mon0` sees the SQL injection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd tcpreplay ndpiReader python3
make_workdir
lab_up
W=$WORKDIR
C=$BPFTAP_CORPUS/ndpi
TOOLS=$BPFTAP_SRC/tests/tools
attacks=(WebattackSQLinj.pcap sql_injection.pcap xss.pcap log4j-webapp-exploit.pcap synscan.pcap ftp.pcap bad-dns-traffic.pcap)

# alert_set FILE: one sorted line per alert (not the flow events): signature and flow (proto, endpoints).
alert_set() {
  python3 -c 'import json, sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    if a["event_type"] != "alert": continue
    print(a["alert"]["signature"], a["proto"], a["src_ip"], a.get("src_port", ""), a["dest_ip"], a.get("dest_port", ""))' "$1" | sort
}

echo "nDPI risks per flow vs ndpiReader (file):"
python3 "$TOOLS/ndpi_parity.py" "$BPFTAP" "${attacks[@]/#/$C/}" | sed "s/^/  /"
[[ ${PIPESTATUS[0]} == 0 ]] || fail "bpftap's nDPI risks differ from ndpiReader's"

echo "live (eBPF) vs file:"
for f in "${attacks[@]}"; do
  src=$C/$f
  if [[ $f == log4j-webapp-exploit.pcap ]]; then  # Linux cooked: replay it as Ethernet
    python3 "$TOOLS/sll2eth.py" "$src" "$W/$f"
    src=$W/$f
  fi
  "$BPFTAP" inspect -r "$src" --alerts "$W/file.json" 2>/dev/null || fail "inspect -r $f"
  ns_exec host "$BPFTAP" inspect -i tap-vm1 -Q in --alerts "$W/live.json" --status-interval 1 2>"$W/live.log" &
  pid=$!
  wait_for_line "$W/live.log" "inspecting"
  ns_exec vm1 tcpreplay -q -i eth0 --topspeed "$src" >/dev/null 2>&1 || fail "tcpreplay $f"
  # Stop once the inspector has seen every packet of the file (its status line, each second),
  # or after 15 s: a fixed sleep lost the last packets on a loaded machine.
  want=$(capinfos -M -c -T -r "$src" | cut -f2)
  for _ in $(seq 30); do
    seen=$(grep -o '[0-9]* packets, ' "$W/live.log" | tail -1 | cut -d' ' -f1) || true
    ((${seen:-0} >= want)) && break
    sleep 0.5
  done
  signal_job INT "$pid"
  wait "$pid" || fail "live inspect of $f exited $?: $(tail -3 "$W/live.log")"
  grep -q "packets, .* flows" "$W/live.log" || fail "no status line on stderr"
  alert_set "$W/file.json" >"$W/file.txt"
  alert_set "$W/live.json" >"$W/live.txt"
  [[ -s $W/file.txt ]] || fail "$f: no alert from the file"
  diff "$W/file.txt" "$W/live.txt" >"$W/diff.txt" || fail "$f: live alerts differ from the file's: $(head -5 "$W/diff.txt")"
  echo "  $f: $(wc -l <"$W/live.txt") alerts, live = file ($(cut -d' ' -f1-3 "$W/live.txt" | sort -u | tr '\n' ';' | cut -c1-150))"
done

# IDS hand-off through the monitor port: ndpiReader sniffing the monitor namespace.
ns_exec host "$BPFTAP" mirror --from tap-vm1 -Q in --to mon0 2>"$W/m.log" &
m=$!
wait_for_line "$W/m.log" "mirroring"
ns_exec mon ndpiReader -i eth0 -s 4 -v 2 >"$W/ids.txt" 2>&1 &
ids=$!
sleep 1
ns_exec vm1 tcpreplay -q -i eth0 --topspeed "$C/WebattackSQLinj.pcap" >/dev/null 2>&1
wait "$ids" || true
signal_job TERM "$m"
wait "$m" || fail "mirror exited $?"
grep -q "SQL Injection" "$W/ids.txt" || fail "ndpiReader on the monitor port saw no SQL injection: $(tail -5 "$W/ids.txt")"
echo "  monitor port: ndpiReader -i eth0 in the monitor namespace reports $(grep -c 'SQL Injection' "$W/ids.txt") flows with SQL Injection"
assert_nothing_attached tap-vm1

# Bad input: one line, exit 2, nothing attached (a damaged file's alerts so far are still written).
head -c 20000 "$C/WebattackSQLinj.pcap" >"$W/truncated.pcap"
echo "not a capture" >"$W/junk.pcap"
printf 'scan_ports: 10\nscan_portz: 3\n' >"$W/bad.yaml"
for args in "-r $W/truncated.pcap" "-r $W/junk.pcap" "-r /nonexistent.pcap" "-r $C/xss.pcap tcp port" \
            "-r $C/xss.pcap --config $W/bad.yaml" "-i nosuch0" "-r $C/xss.pcap -i tap-vm1" "-r $C/xss.pcap --alerts /nonexistent/dir/a.json"; do
  rc=0
  # shellcheck disable=SC2086
  ns_exec host "$BPFTAP" inspect $args >"$W/out" 2>"$W/err" || rc=$?
  assert_eq 2 "$rc" "exit code for inspect $args"
  assert_eq 1 "$(wc -l <"$W/err")" "one-line error for inspect $args"
  echo "  inspect $args -> $(cat "$W/err")"
done
"$BPFTAP" inspect -r "$W/truncated.pcap" >"$W/out" 2>/dev/null && fail "a truncated file passed"
grep -q "SQL Injection" "$W/out" || fail "no alerts from the part of the truncated file that was read"
assert_nothing_attached tap-vm1
echo "PASS: live inspection equals file inspection; nDPI risks equal ndpiReader's; IDS hand-off via the monitor port"
