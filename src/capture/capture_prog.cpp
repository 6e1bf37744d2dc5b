#include "capture/capture_prog.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture_bpf.skel.h"
#include "filter/splice.h"

namespace bpftap {

Result<std::unique_ptr<CaptureProgram>> CaptureProgram::load(const CaptureProgramOptions &opts) {
  if (auto r = register_splicer(); !r) return tl::unexpected(r.error());
  auto owned = open_skeleton<capture_bpf>("the capture BPF object");
  if (!owned) return tl::unexpected(owned.error());
  capture_bpf *skel = owned->get();
  std::unique_ptr<CaptureProgram> self(new CaptureProgram(std::move(*owned)));

  skel->rodata->snaplen = opts.snaplen;
  skel->rodata->output = opts.output;
  skel->rodata->wakeup_bytes = opts.ring_bytes / 4;
  skel->rodata->wakeup_bytes_small = opts.small_ring_bytes / 4;
  skel->rodata->wakeup_bytes_spill = opts.spill_ring_bytes / 4;
  skel->rodata->spill = opts.spill_ring_bytes > 0;
  skel->rodata->batch = opts.batch;
  skel->rodata->batch_flush_ns = opts.batch_flush_ns;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail_errno("count the possible CPUs", cpus < 0 ? cpus : EINVAL);
  if (int err = bpf_map__set_max_entries(skel->maps.batches, static_cast<uint32_t>(cpus)); err)
    return fail_errno("size the per-CPU batches", err);
  bool rings = opts.output == BPFTAP_OUT_RINGBUF;
  if (int err = bpf_map__set_max_entries(skel->maps.ring, rings ? opts.ring_bytes : 4096); err)
    return fail_errno("size the ring buffer", err);
  if (int err = bpf_map__set_max_entries(skel->maps.ring_spill, rings && opts.spill_ring_bytes ? opts.spill_ring_bytes : 4096);
      err)
    return fail_errno("size the spill ring buffer", err);
  if (int err = bpf_map__set_max_entries(skel->maps.ring_small, rings ? opts.small_ring_bytes : 4096); err)
    return fail_errno("size the small records' ring buffer", err);
  bpf_program__set_autoload(skel->progs.bpftap_ingress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_egress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_filter_test, opts.filter_test);

  int err;
  {
    SpliceScope splice(skel->obj, {skel->progs.bpftap_ingress, skel->progs.bpftap_egress, skel->progs.bpftap_filter_test},
                       opts.filter);
    err = capture_bpf__load(skel);
  }
  if (err == -EPERM || err == EPERM)
    return fail_errno("load the capture BPF programs (not permitted: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN are needed)", err);
  if (err) return fail_errno("load the capture BPF programs (the kernel verifier refused them)", err);
  self->slots_ = std::make_unique<IfSlots>(bpf_map__fd(skel->maps.ifslot), bpf_map__fd(skel->maps.ifslot_big),
                                           self->counters_fd(), sizeof(bpftap_counters));
  return self;
}

CaptureProgram::CaptureProgram(Skeleton<capture_bpf> skel) : skel_(std::move(skel)) {}
CaptureProgram::~CaptureProgram() = default;

int CaptureProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.bpftap_ingress); }
int CaptureProgram::egress_fd() const { return bpf_program__fd(skel_->progs.bpftap_egress); }
int CaptureProgram::filter_test_fd() const { return bpf_program__fd(skel_->progs.bpftap_filter_test); }
int CaptureProgram::ring_fd() const { return bpf_map__fd(skel_->maps.ring); }
int CaptureProgram::small_ring_fd() const { return bpf_map__fd(skel_->maps.ring_small); }
int CaptureProgram::spill_ring_fd() const { return bpf_map__fd(skel_->maps.ring_spill); }
int CaptureProgram::perf_fd() const { return bpf_map__fd(skel_->maps.perf); }
int CaptureProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }

Result<> CaptureProgram::watch(uint32_t ifindex) {
  if (auto r = slots_->watch(ifindex); !r) return tl::unexpected(r.error());
  return {};
}

void CaptureProgram::unwatch(uint32_t ifindex) { slots_->unwatch(ifindex); }

Result<bpftap_counters> CaptureProgram::counters(uint32_t ifindex, uint8_t dir) const {
  return slots_->sum<bpftap_counters>(ifindex, dir);
}

} // namespace bpftap
