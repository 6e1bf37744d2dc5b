#include "kernel/ifslots.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <string>

namespace bpftap {

Result<> IfSlots::set(uint32_t ifindex, uint32_t value) {
  if (ifindex >= BPFTAP_IFSLOT_DIRECT && value == 0) {
    bpf_map_delete_elem(big_fd_, &ifindex);
    return {};
  }
  int fd = ifindex < BPFTAP_IFSLOT_DIRECT ? ifslot_fd_ : big_fd_;
  if (bpf_map_update_elem(fd, &ifindex, &value, BPF_ANY) != 0)
    return fail_errno("register interface " + std::to_string(ifindex) + " with the BPF programs", errno);
  return {};
}

Result<uint32_t> IfSlots::watch(uint32_t ifindex) {
  if (auto it = slot_of_.find(ifindex); it != slot_of_.end()) return it->second;
  bool reuse = !free_.empty();
  if (!reuse && next_ >= BPFTAP_MAX_SLOTS)
    return fail("register interface " + std::to_string(ifindex) + ": already " + std::to_string(BPFTAP_MAX_SLOTS) +
                    " interfaces",
                ENOSPC);
  uint32_t slot = reuse ? free_.back() : next_;
  std::vector<uint8_t> zero(counter_size_ * static_cast<size_t>(libbpf_num_possible_cpus()));
  for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
    uint32_t key = bpftap_slot_key(slot, dir);
    if (bpf_map_update_elem(counters_fd_, &key, zero.data(), BPF_ANY) != 0)
      return fail_errno("reset the counters of interface " + std::to_string(ifindex), errno);
  }
  if (auto r = set(ifindex, slot + 1); !r) return tl::unexpected(r.error());
  if (reuse)
    free_.pop_back();
  else
    next_++;
  slot_of_[ifindex] = slot;
  return slot;
}

void IfSlots::unwatch(uint32_t ifindex) {
  auto it = slot_of_.find(ifindex);
  if (it == slot_of_.end()) return;
  (void)set(ifindex, 0);
  free_.push_back(it->second);
  slot_of_.erase(it);
}

std::optional<uint32_t> IfSlots::slot(uint32_t ifindex) const {
  auto it = slot_of_.find(ifindex);
  if (it == slot_of_.end()) return std::nullopt;
  return it->second;
}

Result<> IfSlots::read(uint32_t ifindex, uint8_t dir, void *per_cpu) const {
  auto s = slot(ifindex);
  if (!s) return fail("read the counters of interface " + std::to_string(ifindex) + ": not watched", ENOENT);
  uint32_t key = bpftap_slot_key(*s, dir);
  if (bpf_map_lookup_elem(counters_fd_, &key, per_cpu) != 0)
    return fail_errno("read the counters of interface " + std::to_string(ifindex), errno);
  return {};
}

} // namespace bpftap
