#include "capture/reorder.h"

#include <algorithm>
#include <cstring>

namespace bpftap {

size_t restore_frame(const bpftap_pkt_hdr &hdr, std::span<const uint8_t> in, uint8_t *out) {
  size_t keep = hdr.snap_len;
  if (hdr.vlan_tpid == 0) {
    size_t n = std::min(keep, in.size());
    std::memcpy(out, in.data(), n);
    return n;
  }
  // Tag restored after the two MAC addresses, as libpcap does for Linux captures.
  const uint8_t tag[BPFTAP_VLAN_HLEN] = {static_cast<uint8_t>(hdr.vlan_tpid >> 8), static_cast<uint8_t>(hdr.vlan_tpid),
                                         static_cast<uint8_t>(hdr.vlan_tci >> 8), static_cast<uint8_t>(hdr.vlan_tci)};
  size_t macs = std::min<size_t>(12, in.size());
  size_t n = 0;
  auto put = [&](const uint8_t *p, size_t len) {
    len = std::min(len, keep - n);
    std::memcpy(out + n, p, len);
    n += len;
  };
  put(in.data(), macs);
  put(tag, sizeof(tag));
  put(in.data() + macs, in.size() - macs);
  return n;
}

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
