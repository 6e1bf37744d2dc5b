// The toolkit every BPF object of bpftap uses: an owner for a libbpf skeleton, and per-CPU
// counters summed as user space reads them.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "util/error.h"

namespace bpftap {

// Owns a bpftool-generated skeleton (`struct capture_bpf` etc.): destroying it detaches nothing
// by itself (hooks are separate owners and must go first) but closes its programs and maps.
template <class Skel>
struct SkeletonDestroy {
  void operator()(Skel *s) const { Skel::destroy(s); }
};
template <class Skel>
using Skeleton = std::unique_ptr<Skel, SkeletonDestroy<Skel>>;

// Opens (does not load) a skeleton; `what` names the object in the error ("the capture BPF object").
template <class Skel>
Result<Skeleton<Skel>> open_skeleton(const char *what) {
  Skel *s = Skel::open();
  if (!s) return fail_errno(std::string("open ") + what, errno);
  return Skeleton<Skel>(s);
}

// The per-CPU values of one counters struct, summed field by field. T must consist of __u64
// counters only, as every counters struct in bpf/bpftap.h does.
template <class T>
T sum_over_cpus(std::span<const T> per_cpu) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(uint64_t) == 0,
                "a counters struct is __u64 fields only");
  constexpr size_t kWords = sizeof(T) / sizeof(uint64_t);
  std::array<uint64_t, kWords> total{};
  for (const T &v : per_cpu) {
    uint64_t w[kWords];
    std::memcpy(w, &v, sizeof(T));
    for (size_t i = 0; i < kWords; i++) total[i] += w[i];
  }
  T out;
  std::memcpy(&out, total.data(), sizeof(T));
  return out;
}

inline size_t possible_cpus() { return static_cast<size_t>(libbpf_num_possible_cpus()); }

// Reads entry `key` of a per-CPU array and sums it over the CPUs.
template <class T>
Result<T> read_percpu_sum(int map_fd, uint32_t key, const char *what) {
  std::vector<T> per_cpu(possible_cpus());
  if (bpf_map_lookup_elem(map_fd, &key, per_cpu.data()) != 0) return fail_errno(std::string("read ") + what, errno);
  return sum_over_cpus<T>(per_cpu);
}

} // namespace bpftap
