#include "capture/reorder.h"

#include <algorithm>
#include <cstring>

#include "capture/frame.h"

namespace bpftap {

void ReorderBuffer::push(const bpftap_pkt_hdr &hdr, std::span<const uint8_t> kernel_bytes, uint64_t ts_utc_ns) {
  size_t offset = arena_.size();
  arena_.resize(offset + kernel_bytes.size() + BPFTAP_VLAN_HLEN);
  size_t len = restore_frame(hdr, kernel_bytes, arena_.data() + offset);
  arena_.resize(offset + len);
  if (!items_.empty() && ts_utc_ns < items_.back().meta.ts_ns) sorted_ = false;
  items_.push_back({{ts_utc_ns, hdr.ifindex, hdr.dir, hdr.wire_len}, offset, static_cast<uint32_t>(len)});
}

void ReorderBuffer::order() {
  if (sorted_) return;
  std::stable_sort(items_.begin(), items_.end(),
                   [](const Item &a, const Item &b) { return a.meta.ts_ns < b.meta.ts_ns; });
  sorted_ = true;
}

void ReorderBuffer::drop_front(size_t n) {
  if (n == 0) return;
  if (n == items_.size()) {
    items_.clear();
    arena_.clear();
    return;
  }
  items_.erase(items_.begin(), items_.begin() + static_cast<long>(n));
  // After sorting, arena order no longer follows item order: compact what is still held into
  // the spare arena (its capacity is kept, so steady state allocates nothing) and swap.
  spare_.clear();
  for (auto &it : items_) {
    size_t off = spare_.size();
    spare_.insert(spare_.end(), arena_.begin() + static_cast<long>(it.offset),
                  arena_.begin() + static_cast<long>(it.offset + it.len));
    it.offset = off;
  }
  arena_.swap(spare_);
}

} // namespace bpftap
