// What every sink receives: one captured packet with its metadata.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap {

enum class Direction : uint8_t { Unknown = 0, In = 1, Out = 2 };

struct InterfaceInfo {
  std::string name;      // e.g. "tap-vm1"; written as pcapng if_name
  uint32_t ifindex = 0;  // kernel ifindex (informational)
  uint16_t linktype = 1; // LINKTYPE_ETHERNET
  uint32_t snaplen = 262144;
};

// An interface's counters since the capture started, for a file's statistics (pcapng ISB).
struct InterfaceTotals {
  uint32_t iface = 0;    // index into the sink's interface list
  uint64_t received = 0; // packets the filter accepted (tcpdump's "received by filter"): isb_ifrecv
  uint64_t dropped = 0;  // copies the kernel could not hand over: isb_ifdrop
  uint64_t start_ns = 0; // when counting started (0: unknown, then no isb_starttime/endtime)
};

struct Packet {
  uint64_t ts_ns = 0;    // wall clock, UTC, nanoseconds since the epoch
  uint32_t iface = 0;    // index into the sink's interface list
  Direction dir = Direction::Unknown;
  uint32_t wire_len = 0; // original length
  std::span<const uint8_t> data; // captured bytes (data.size() == captured length)
  // The bytes stay where they are until the sink's next flush() returns (a ring buffer's
  // memory, released only after it): a sink may refer to them instead of copying them.
  // Otherwise they are valid only during write().
  bool stable = false;
};

class PacketSink {
public:
  virtual ~PacketSink() = default;
  // Copies what it keeps of pkt.data, unless pkt.stable: then it may refer to the bytes until
  // the next flush(). This is how a capture writes packets straight from the kernel's ring.
  virtual Result<> write(const Packet &pkt) = 0;
  // Push buffered bytes to the OS (called once per reader batch, so streams are live); after it
  // returns the sink holds no reference to any packet's bytes.
  virtual Result<> flush() = 0;
  // An interface that joins while packets flow (capture -i any): packets with iface == slot come
  // from it from now on. Sinks with a fixed set of interfaces ignore it.
  virtual Result<> add_interface(uint32_t /*slot*/, const InterfaceInfo & /*info*/) { return {}; }
};

} // namespace bpftap
