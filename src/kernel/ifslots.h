// User space of src/bpf/ifslot.h: gives each watched interface a counter slot in a program's
// ifslot / ifslot_big maps, and frees it when the interface goes (a slot is reused, its counters
// zeroed first).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpf/bpftap.h"
#include "kernel/bpf_object.h"
#include "util/error.h"

namespace bpftap {

class IfSlots {
public:
  // The program's maps: ifslot, ifslot_big, and its per-CPU counters array (values of
  // `counter_size` bytes), zeroed for a slot before it is handed out.
  IfSlots(int ifslot_fd, int ifslot_big_fd, int counters_fd, size_t counter_size)
      : ifslot_fd_(ifslot_fd), big_fd_(ifslot_big_fd), counters_fd_(counters_fd), counter_size_(counter_size) {}

  // The interface's slot, given now if it had none (both directions share it).
  Result<uint32_t> watch(uint32_t ifindex);
  // The programs ignore the interface from now on; its slot is free for another.
  void unwatch(uint32_t ifindex);
  std::optional<uint32_t> slot(uint32_t ifindex) const;
  // Reads (ifindex, dir)'s per-CPU counters into `per_cpu` (one value per possible CPU).
  Result<> read(uint32_t ifindex, uint8_t dir, void *per_cpu) const;
  // The same, summed over the CPUs; T is the program's counters struct.
  template <class T>
  Result<T> sum(uint32_t ifindex, uint8_t dir) const {
    std::vector<T> per_cpu(possible_cpus());
    if (auto r = read(ifindex, dir, per_cpu.data()); !r) return tl::unexpected(r.error());
    return sum_over_cpus<T>(per_cpu);
  }

private:
  Result<> set(uint32_t ifindex, uint32_t value);
  int ifslot_fd_, big_fd_, counters_fd_;
  size_t counter_size_;
  std::unordered_map<uint32_t, uint32_t> slot_of_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
};

} // namespace bpftap
