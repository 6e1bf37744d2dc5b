#!/usr/bin/env python3
"""EVE output of `bpftap inspect -r` on every corpus file, checked three ways:
1. every line validates against eve.schema.json (JSON Schema 2020-12, Debian's python3-jsonschema,
   with format checks), so types and vocabularies are Suricata 7's;
2. the set of field paths bpftap emits is a subset of a real Suricata EVE sample's
   (tests/fixtures/suricata/eve-sample.json) plus the fields Suricata 7 added since, listed below;
3. every alert's flow_id has exactly one flow event, with the same community_id.
Usage: eve_schema_check.py BPFTAP CORPUS_DIR SCHEMA SAMPLE. Exit 77 (skip) without jsonschema.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (scripts/setup installs it)")
    sys.exit(77)

# Fields Suricata 7.0 writes that the 2018 sample predates, with where Suricata 7 writes them.
SURICATA7_ADDED = {
    "community_id": "output-json.c CreateEveCommunityFlowId (community-id: yes)",
    "pcap_cnt": "output-json.c EveAddCommonOptions / CreateEveHeader (pcap input)",
    "pkt_src": "output-json.c CreateEveHeader (PktSrcToString: wire/pcap)",
    "direction": "output-json-alert.c AlertJsonHeader (7.0: to_server / to_client)",
    "alert.metadata": "output-json-alert.c AlertJsonMetadata (rule metadata: key -> [values])",
    "flow.src_ip": "output-json-alert.c AlertAddFlow... EveAddFlow (7.0: the flow's own tuple)",
    "flow.dest_ip": "ditto", "flow.src_port": "ditto", "flow.dest_port": "ditto",
    "tcp.tcp_flags": "output-json-flow.c EveFlowLogJSON (TCP flows)",
    "tcp.tcp_flags_ts": "ditto", "tcp.tcp_flags_tc": "ditto", "tcp.syn": "ditto", "tcp.fin": "ditto",
    "tcp.rst": "ditto", "tcp.psh": "ditto", "tcp.ack": "ditto", "tcp.urg": "ditto", "tcp.ecn": "ditto",
    "tcp.cwr": "ditto", "tcp.state": "ditto",
    "icmp_type": "output-json.c CreateEveHeader (ICMP)", "icmp_code": "ditto",
    "vlan": "output-json.c CreateEveHeader (vlan: [ids])",
    "http.http_port": "output-json-http.c EveHttpLogJSONBasic (a Host header with a port)",
}


def paths(obj, prefix=""):
    out = set()
    for k, v in obj.items():
        p = prefix + k
        if p == "alert.metadata":  # rule-defined keys: the object itself is the field
            out.add(p)
            continue
        if isinstance(v, dict):
            out |= paths(v, p + ".")
        else:
            out.add(p)
    return out


def run(binary, path):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = subprocess.run([binary, "inspect", "-r", path, "--alerts", f.name], capture_output=True)
        lines = open(f.name).read().splitlines()
    return path, r.returncode, r.stderr.decode(errors="replace"), lines


def main():
    binary, corpus, schema_path, sample_path = sys.argv[1:5]
    schema = json.load(open(schema_path))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    sample = set()
    for line in open(sample_path):
        sample |= paths(json.loads(line))
    files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if ".pcap" in f)
    emitted, failures = {}, []
    events = alerts = flows = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for path, rc, err, lines in pool.map(lambda p: run(binary, p), files):
            name = os.path.basename(path)
            flow_events, alert_ids = {}, []
            for line in lines:
                ev = json.loads(line)
                events += 1
                for e in validator.iter_errors(ev):
                    # oneOf: name the closest branch's complaint, not the whole event.
                    e = jsonschema.exceptions.best_match(e.context) if e.context else e
                    failures.append(f"{name}: {e.json_path}: {e.message[:200]}")
                http = ev.get("http", {})
                if http.get("hostname") and http.get("url", "").startswith(http["hostname"]):
                    failures.append(f"{name}: http.url carries the host: {http['url'][:80]}")
                for p in paths(ev):
                    emitted.setdefault(p, name)
                if ev["event_type"] == "flow":
                    flows += 1
                    if ev["flow_id"] in flow_events:
                        failures.append(f"{name}: two flow events for flow_id {ev['flow_id']}")
                    flow_events[ev["flow_id"]] = ev
                else:
                    alerts += 1
                    alert_ids.append(ev)
            for a in alert_ids:
                fe = flow_events.get(a["flow_id"])
                if not fe:
                    failures.append(f"{name}: alert of flow_id {a['flow_id']} without its flow event")
                elif fe["community_id"] != a["community_id"] or not fe["flow"]["alerted"]:
                    failures.append(f"{name}: flow {a['flow_id']}: flow event disagrees with its alert")
            if not lines and rc not in (0, 2):  # 2: a file libpcap refuses, one line on stderr
                failures.append(f"{name}: exit {rc}: {err.strip()[:200]}")
    unknown = sorted(p for p in emitted if p not in sample and p not in SURICATA7_ADDED)
    for p in unknown:
        failures.append(f"field {p} (first in {emitted[p]}) is neither in the Suricata sample nor a listed Suricata 7 field")
    print(f"{len(files)} files, {events} EVE events ({alerts} alerts, {flows} flow events), "
          f"{len(emitted)} field paths emitted, {len(emitted.keys() & sample)} of them in the Suricata sample, "
          f"{len(emitted.keys() & SURICATA7_ADDED.keys())} Suricata 7 additions")
    for f in failures[:40]:
        print("FAIL", f)
    if failures:
        print(f"{len(failures)} failures")
        return 1
    if alerts == 0 or flows == 0:
        print("FAIL: no alerts or no flow events at all")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
