#!/usr/bin/env bash
# bench/run --quick completes and writes a report of the full shape (every section and table,
# the plots as PNG files). Its numbers are not asserted: speed is never a test.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
require_cmd trafgen iperf3 tcpdump tcpreplay gnuplot bpftool
make_workdir
trap 'rm -rf "$WORKDIR"' EXIT
prefix=$(unique_prefix)
BENCH_PREFIX=${prefix:0:6}- BPFTAP="$BPFTAP" BPFTAP_CORPUS="$BPFTAP_CORPUS" timeout 600 \
  "$BPFTAP_SRC/bench/run" --quick --out "$WORKDIR/results" >"$WORKDIR/run.log" 2>&1 ||
  fail "bench/run --quick failed: $(tail -5 "$WORKDIR/run.log")"
report=$(ls "$WORKDIR"/results/*.md) || fail "no report written"
for section in "## Tracing: eBPF vs pcap" "### Headline ratios" "Highest offered UDP rate without any loss" \
               "## Inspection under load" "## vTAP: bpftap mirror vs tc mirred" "## BPF program stages" "## Plots"; do
  grep -q "$section" "$report" || fail "report lacks '$section'"
done
for tool in bpftap bpftap-pcap tcpdump; do
  grep -Eq "^\| udp \| 8 \| .* \| $tool \|" "$report" || fail "no 8-interface UDP row for $tool"
  grep -Eq "^\| tcp \| 1 \| .* \| $tool \|" "$report" || fail "no bulk TCP row for $tool"
done
for m in none mirred bpftap bpftap-tc mirred-vxlan bpftap-vxlan bpftap-vxlan-tc bpftap-cutoff; do
  grep -Eq "^\| (tcp|udp-max) \| $m \|" "$report" || fail "no vTAP row for $m"
done
grep -Eq "^\| 1G \| pcap \| [0-9]+ / [0-9]+" "$report" || fail "no inspection row"
for tool in none tcpdump bpftap; do
  grep -Eq "^\| 1G \| $tool \| [0-9.]+" "$report" || fail "no host-cost row (bulk TCP) for $tool"
  grep -Eq "^\| 50000 \| $tool \| [0-9.]+" "$report" || fail "no host-cost row (64-byte UDP) for $tool"
done
grep -Eq "^\| 100 \| [0-9]+ ms \| [0-9]+ \|" "$report" || fail "no agent scale row"
for stage in "capture: no filter, 64 B frame kept" "capture 'udp port 9': 64 B frame rejected"; do
  grep -Fq "| $stage | " "$report" || fail "no BPF stage row '$stage'"
done
n=0
for png in "$WORKDIR"/results/*/*.png; do
  [[ $(head -c 4 "$png" | od -An -tx1 | tr -d ' ') == 89504e47 ]] || fail "$png is not a PNG"
  n=$((n + 1))
done
assert_eq 5 "$n" "plots"
ip netns list | grep -q "^${prefix:0:6}" && fail "bench/run left namespaces"
grep "report:" "$WORKDIR/run.log" | sed "s/^/  /"
echo "PASS: bench/run --quick wrote a complete report and $n plots"
