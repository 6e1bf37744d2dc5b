// Where packets come from: the eBPF capture (capture/capture.h) or libpcap (capture/pcap_capture.h).
// Both deliver to the same sinks, so the only difference between them is the tracing mechanism.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap {

struct InterfaceStats {
  std::string name;
  uint32_t ifindex = 0;
  uint64_t captured = 0;  // written to the sink
  uint64_t matched = 0;   // accepted by the filter ("received by filter")
  uint64_t dropped = 0;   // copies the kernel could not hand over
  // The same by hook direction (eBPF backend; the kernel counts each hook apart). The totals
  // above are their sums, plus the perf transport's lost records, which have no direction.
  struct Hooked {
    uint64_t captured = 0, matched = 0, dropped = 0;
  };
  Hooked in, out;
};

class PacketSource {
public:
  virtual ~PacketSource() = default;
  virtual const std::vector<InterfaceInfo> &interfaces() const = 0;
  // Writes packets to `sink` until `stop` is set, the count is reached, or `done()` returns
  // true (checked at least every few milliseconds). Flushes the sink after each batch.
  virtual Result<> run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done = {}) = 0;
  // Stops capturing, writes what the kernel still held, and returns the per-interface counters.
  virtual Result<std::vector<InterfaceStats>> finish(PacketSink &sink) = 0;
  // The per-interface counters so far.
  virtual Result<std::vector<InterfaceStats>> stats() const = 0;
};

} // namespace bpftap
