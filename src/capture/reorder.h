// Puts captured packets back in timestamp order. Packets from different CPUs reach user space
// slightly out of order (per-CPU perf buffers; or CPUs racing for the ring buffer). Each packet
// is held until no earlier one can still arrive: the caller releases everything older than
// "now minus a window" — the time between a hook running and its record being readable is
// microseconds, the window is milliseconds.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpf/bpftap.h"

namespace bpftap {

struct PacketMeta {
  uint64_t ts_ns;  // UTC
  uint32_t ifindex;
  uint8_t dir;
  uint32_t wire_len;
};

class ReorderBuffer {
public:
  // `kernel_bytes` are the cap_len bytes that followed `hdr`.
  void push(const bpftap_pkt_hdr &hdr, std::span<const uint8_t> kernel_bytes, uint64_t ts_utc_ns);

  // Calls emit(const PacketMeta&, std::span<const uint8_t>) for every held packet with
  // ts <= cutoff, oldest first, at most `limit` of them; returns how many were emitted.
  template <class Emit>
  size_t release(uint64_t cutoff, Emit &&emit, size_t limit = SIZE_MAX) {
    order();
    size_t n = 0;
    while (n < items_.size() && n < limit && items_[n].meta.ts_ns <= cutoff) {
      const Item &it = items_[n];
      emit(it.meta, std::span<const uint8_t>(arena_.data() + it.offset, it.len));
      n++;
    }
    drop_front(n);
    return n;
  }

  size_t size() const { return items_.size(); }
  size_t bytes() const { return arena_.size(); }

private:
  struct Item {
    PacketMeta meta;
    size_t offset;  // into arena_
    uint32_t len;
  };
  void order();
  void drop_front(size_t n);

  std::vector<Item> items_;
  std::vector<uint8_t> arena_;
  std::vector<uint8_t> spare_;
  bool sorted_ = true;
};

} // namespace bpftap
