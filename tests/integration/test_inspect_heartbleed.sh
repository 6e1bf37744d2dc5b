#!/usr/bin/env bash
# Heartbleed over the lab, live: vm2 runs a "vulnerable" TLS endpoint on port 443 that answers a
# heartbeat request with as many bytes as it declared; vm1 sends a TLS record then a heartbeat
# request declaring 16 KiB in a 3-byte record (CVE-2014-0160). `bpftap inspect -i tap-vm1` must
# raise Zeek's two notices as EVE alerts: TLS Heartbleed attack, then ... success, from vm1.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/replay_lib.sh"
require_root
require_cmd python3
make_workdir
lab_up
W=$WORKDIR

cat >"$W/server.py" <<'PY'
import socket, struct
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 443))
s.listen(1)
open("/dev/stdout", "w").write("listening\n")
c, _ = s.accept()
while True:
    hdr = c.recv(5)
    if len(hdr) < 5:
        break
    typ, _, length = struct.unpack("!BHH", hdr)
    body = c.recv(length) if length else b""
    if typ == 24 and body[:1] == b"\x01":  # heartbeat request: echo what it claims, as OpenSSL 1.0.1f
        claimed = struct.unpack("!H", body[1:3])[0]
        msg = b"\x02" + struct.pack("!H", claimed) + b"\x00" * (claimed + 16)
        c.sendall(struct.pack("!BHH", 24, 0x0302, len(msg)) + msg)
c.close()
PY
cat >"$W/client.py" <<'PY'
import socket, struct, time
c = socket.create_connection(("10.77.0.2", 443))
hello = b"\x01" + b"\x00\x00\x2c" + b"\x03\x02" + b"\x00" * 40
c.sendall(struct.pack("!BHH", 22, 0x0302, len(hello)) + hello)  # a (fake) ClientHello record
time.sleep(0.2)
c.sendall(struct.pack("!BHH", 24, 0x0302, 3) + b"\x01\x40\x00")  # heartbeat request: 16384 claimed, 0 sent
got = b""
c.settimeout(2)
try:
    while len(got) < 16384:
        d = c.recv(65536)
        if not d:
            break
        got += d
except socket.timeout:
    pass
print(f"leaked {len(got)} bytes")
c.close()
PY

ns_exec host "$BPFTAP" inspect -i tap-vm1 --alerts "$W/eve.json" --status-interval 0 2>"$W/live.log" &
pid=$!
wait_for_line "$W/live.log" "inspecting"
ns_exec vm2 python3 "$W/server.py" >"$W/server.log" 2>&1 &
wait_for_line "$W/server.log" "listening"
ns_exec vm1 python3 "$W/client.py" >"$W/client.log" 2>&1 || fail "client: $(cat "$W/client.log")"
grep -q "leaked 16" "$W/client.log" || fail "the lab server did not answer the heartbeat: $(cat "$W/client.log")"
sleep 1
signal_job INT "$pid"
wait "$pid" || fail "live inspect exited $?: $(tail -3 "$W/live.log")"

python3 - "$W/eve.json" <<'PY' || fail "Heartbleed alerts wrong"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
hb = [e for e in ev if e["event_type"] == "alert" and "Heartbleed" in e["alert"]["signature"]]
sigs = [e["alert"]["signature"] for e in hb]
assert sigs == ["TLS Heartbleed attack", "TLS Heartbleed attack success"], sigs
for e in hb:
    assert e["src_ip"] == "10.77.0.1" and e["dest_ip"] == "10.77.0.2" and e["dest_port"] == 443, e
flow = [e for e in ev if e["event_type"] == "flow" and e["flow_id"] == hb[0]["flow_id"]]
assert len(flow) == 1 and flow[0]["flow"]["alerted"], flow
m = hb[0]["alert"]["metadata"]
print(f"  live: {sigs[0]} (payload_length {m['payload_length'][0]} in a {m['record_length'][0]}-byte record), "
      f"then {sigs[1]} ({hb[1]['alert']['metadata']['response_record_length'][0]}-byte response), "
      f"{hb[0]['src_ip']} -> {hb[0]['dest_ip']}:443, {hb[0]['community_id']}")
PY
