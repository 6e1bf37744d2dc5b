// Hostile packets into the inspector: decoding, flow tracking, nDPI and the detectors must stay
// within bounds whatever the bytes. Input: 1 byte link type selector, then records of
// [2-byte length][1-byte time step][frame], fed in order to one inspector, then finish().
#include <cstdio>
#include <cstring>

#include "inspect/inspector.h"

using namespace bpftap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const uint16_t kLinks[] = {1, 113, 101, 0, 228, 229};
  static FILE *sink = std::fopen("/dev/null", "w");
  static auto engine = std::make_shared<inspect::DpiEngine>();  // nDPI's setup takes ~50 ms
  inspect::InspectOptions o;
  o.interfaces = {InterfaceInfo{"fuzz0", 1, kLinks[data[0] % 6], 262144}};
  o.alerts = sink;
  o.flows = sink;
  o.dpi = engine;
  o.detectors.scan_ports = 3;  // low thresholds, so the detectors' alert paths run too
  o.detectors.scan_hosts = 3;
  o.detectors.syn_flood_pps = 3;
  o.detectors.icmp_flood_pps = 3;
  o.detectors.guess_connections = 2;
  o.detectors.guess_failed_logins = 1;
  inspect::Inspector insp(o);
  size_t off = 1;
  uint64_t ts = 1000000000ull;
  while (off + 3 <= size) {
    size_t len = static_cast<size_t>(data[off] << 8 | data[off + 1]);
    ts += static_cast<uint64_t>(data[off + 2]) * 100000000ull;  // up to 25.5 s per step: timeouts run
    off += 3;
    len = std::min(len, size - off);
    Packet p;
    p.ts_ns = ts;
    p.wire_len = static_cast<uint32_t>(len);
    p.data = {data + off, len};
    (void)insp.write(p);
    off += len;
  }
  insp.finish();
  return 0;
}
