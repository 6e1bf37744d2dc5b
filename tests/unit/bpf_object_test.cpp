// kernel/bpf_object.h: per-CPU counters summed field by field, for every counters struct.
#include <vector>

#include <gtest/gtest.h>

#include "bpf/bpftap.h"
#include "kernel/bpf_object.h"

using namespace bpftap;

TEST(SumOverCpus, AddsEachFieldAcrossCpus) {
  std::vector<bpftap_mirror_counters> cpus(3);
  for (size_t i = 0; i < cpus.size(); i++) {
    cpus[i].seen = 1 + i;
    cpus[i].matched = 10 * (1 + i);
    cpus[i].bypassed = 1000;  // the last field
    cpus[i].mirrored_bytes = uint64_t{1} << (40 + i);
  }
  auto s = sum_over_cpus<bpftap_mirror_counters>(cpus);
  EXPECT_EQ(s.seen, 6u);
  EXPECT_EQ(s.matched, 60u);
  EXPECT_EQ(s.bypassed, 3000u);
  EXPECT_EQ(s.mirrored_bytes, (uint64_t{1} << 40) + (uint64_t{1} << 41) + (uint64_t{1} << 42));
  EXPECT_EQ(s.failed, 0u);
}

TEST(SumOverCpus, NoCpusIsZero) {
  auto s = sum_over_cpus<bpftap_counters>(std::vector<bpftap_counters>{});
  EXPECT_EQ(s.seen, 0u);
  EXPECT_EQ(s.dropped, 0u);
}
