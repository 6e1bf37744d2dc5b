// The capture BPF object: loading with the translated filter spliced in, and its handles.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "bpf/bpftap.h"
#include "kernel/bpf_object.h"
#include "kernel/ifslots.h"
#include "util/error.h"

struct capture_bpf;

namespace bpftap {

struct CaptureProgramOptions {
  std::vector<bpf_insn> filter;  // translate_cbpf() output; empty = accept everything
  uint32_t snaplen = BPFTAP_MAX_SNAPLEN;
  bpftap_output output = BPFTAP_OUT_RINGBUF;
  uint32_t ring_bytes = 1u << 24;        // the big ring (copies > BPFTAP_SMALL_RECORD bytes):
                                         // a power of two, ≥ page size
  uint32_t small_ring_bytes = 1u << 23;  // the small ring (copies ≤ BPFTAP_SMALL_RECORD bytes)
  uint32_t spill_ring_bytes = 0;         // where longer copies go when the big ring is full
                                         // (0: none, a full big ring is a drop)
  bool batch = true;        // small copies reach the small ring in per-CPU batches
                            // (BPFTAP_BATCH_BYTES); false: one ring record each
  uint64_t batch_flush_ns = 1'000'000;  // how long a batch's first record waits at most
  bool taps = true;         // load the ingress/egress programs
  bool filter_test = false; // load bpftap_filter_test (tests only)
};

class CaptureProgram {
public:
  static Result<std::unique_ptr<CaptureProgram>> load(const CaptureProgramOptions &opts);
  ~CaptureProgram();
  CaptureProgram(const CaptureProgram &) = delete;
  CaptureProgram &operator=(const CaptureProgram &) = delete;

  int ingress_fd() const;
  int egress_fd() const;
  int filter_test_fd() const;
  int ring_fd() const;        // the big ring
  int small_ring_fd() const;  // the small ring
  int spill_ring_fd() const;  // the spill ring
  int perf_fd() const;
  int counters_fd() const;

  // Registers an interface so the programs count and capture its packets, in both directions
  // (which ones run is a matter of the hooks attached); its counters start at zero. At most
  // BPFTAP_MAX_SLOTS interfaces at once.
  Result<> watch(uint32_t ifindex);
  // The programs ignore the interface from now on; its counter slot is free for another.
  void unwatch(uint32_t ifindex);
  // Counters summed over CPUs.
  Result<bpftap_counters> counters(uint32_t ifindex, uint8_t dir) const;

private:
  explicit CaptureProgram(Skeleton<capture_bpf> skel);
  Skeleton<capture_bpf> skel_;
  std::unique_ptr<IfSlots> slots_;  // refers to skel_'s maps: declared after it, so destroyed first
};

} // namespace bpftap
