#include "capture/capture_prog.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>

#include "capture_bpf.skel.h"
#include "filter/splice.h"

namespace bpftap {

Result<std::unique_ptr<CaptureProgram>> CaptureProgram::load(const CaptureProgramOptions &opts) {
  if (auto r = register_splicer(); !r) return tl::unexpected(r.error());
  capture_bpf *skel = capture_bpf__open();
  if (!skel) return fail_errno("open the capture BPF object", errno);
  std::unique_ptr<CaptureProgram> self(new CaptureProgram(skel));

  skel->rodata->snaplen = opts.snaplen;
  skel->rodata->output = opts.output;
  skel->rodata->wakeup_bytes = opts.ring_bytes / 4;
  uint32_t ring = opts.output == BPFTAP_OUT_RINGBUF ? opts.ring_bytes : 4096;
  if (int err = bpf_map__set_max_entries(skel->maps.ring, ring); err)
    return fail_errno("size the ring buffer", err);
  bpf_program__set_autoload(skel->progs.bpftap_ingress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_egress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_filter_test, opts.filter_test);

  int err;
  {
    SpliceScope splice(skel->obj, {skel->progs.bpftap_ingress, skel->progs.bpftap_egress, skel->progs.bpftap_filter_test},
                       opts.filter);
    err = capture_bpf__load(skel);
  }
  if (err) return fail_errno("load the capture BPF programs (the kernel verifier refused them)", err);
  return self;
}

CaptureProgram::~CaptureProgram() { capture_bpf__destroy(skel_); }

int CaptureProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.bpftap_ingress); }
int CaptureProgram::egress_fd() const { return bpf_program__fd(skel_->progs.bpftap_egress); }
int CaptureProgram::filter_test_fd() const { return bpf_program__fd(skel_->progs.bpftap_filter_test); }
int CaptureProgram::ring_fd() const { return bpf_map__fd(skel_->maps.ring); }
int CaptureProgram::perf_fd() const { return bpf_map__fd(skel_->maps.perf); }
int CaptureProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }

Result<> CaptureProgram::set_slot(uint32_t ifindex, uint32_t value) {
  int fd = ifindex < BPFTAP_IFSLOT_DIRECT ? bpf_map__fd(skel_->maps.ifslot) : bpf_map__fd(skel_->maps.ifslot_big);
  if (value == 0 && ifindex >= BPFTAP_IFSLOT_DIRECT) {
    bpf_map_delete_elem(fd, &ifindex);
    return {};
  }
  if (bpf_map_update_elem(fd, &ifindex, &value, BPF_ANY) != 0)
    return fail_errno("register interface " + std::to_string(ifindex) + " in the capture program", errno);
  return {};
}

Result<> CaptureProgram::watch(uint32_t ifindex, uint8_t) {
  if (slot_of_.count(ifindex)) return {};  // both directions share the slot
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
  } else if (next_slot_ < BPFTAP_MAX_SLOTS) {
    slot = next_slot_;
  } else {
    return fail("register interface " + std::to_string(ifindex) + ": the capture already watches " +
                    std::to_string(BPFTAP_MAX_SLOTS) + " interfaces",
                ENOSPC);
  }
  // A reused slot starts from zero.
  std::vector<bpftap_counters> zero(static_cast<size_t>(libbpf_num_possible_cpus()));
  for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
    uint32_t key = bpftap_slot_key(slot, dir);
    if (bpf_map_update_elem(counters_fd(), &key, zero.data(), BPF_ANY) != 0)
      return fail_errno("reset the counters of interface " + std::to_string(ifindex), errno);
  }
  if (auto r = set_slot(ifindex, slot + 1); !r) return r;
  if (!free_slots_.empty() && free_slots_.back() == slot)
    free_slots_.pop_back();
  else
    next_slot_++;
  slot_of_[ifindex] = slot;
  return {};
}

void CaptureProgram::unwatch(uint32_t ifindex) {
  auto it = slot_of_.find(ifindex);
  if (it == slot_of_.end()) return;
  (void)set_slot(ifindex, 0);
  free_slots_.push_back(it->second);
  slot_of_.erase(it);
}

Result<bpftap_counters> CaptureProgram::counters(uint32_t ifindex, uint8_t dir) const {
  auto it = slot_of_.find(ifindex);
  if (it == slot_of_.end()) return fail("read counters of interface " + std::to_string(ifindex) + ": not watched", ENOENT);
  uint32_t key = bpftap_slot_key(it->second, dir);
  std::vector<bpftap_counters> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  if (bpf_map_lookup_elem(counters_fd(), &key, per_cpu.data()) != 0)
    return fail_errno("read counters of interface " + std::to_string(ifindex), errno);
  bpftap_counters sum{};
  for (const auto &c : per_cpu) {
    sum.seen += c.seen;
    sum.matched += c.matched;
    sum.dropped += c.dropped;
    sum.bytes += c.bytes;
  }
  return sum;
}

} // namespace bpftap
