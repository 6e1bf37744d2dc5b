#include "mirror/mirror_prog.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "filter/splice.h"
#include "mirror_bpf.skel.h"

namespace bpftap {

namespace {

uint32_t random_tag() {
  uint32_t tag = 0;
  while (tag == 0)
    if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag)) tag = 0xb7a90000u ^ static_cast<uint32_t>(getpid());
  return tag;
}

} // namespace

Result<std::unique_ptr<MirrorProgram>> MirrorProgram::load(const MirrorProgramOptions &opts) {
  if (auto r = register_splicer(); !r) return tl::unexpected(r.error());
  auto owned = open_skeleton<mirror_bpf>("the mirror BPF object");
  if (!owned) return tl::unexpected(owned.error());
  mirror_bpf *skel = owned->get();
  std::unique_ptr<MirrorProgram> self(new MirrorProgram(std::move(*owned)));

  auto *ro = skel->rodata;
  ro->target_ifindex = opts.target_ifindex;
  ro->session_tag = opts.target_program ? random_tag() : 0;
  ro->snaplen = opts.snaplen;
  ro->sample_n = opts.sample;
  ro->flow_cutoff = opts.flow_cutoff;
  ro->classify_only = opts.classify ? 1 : 0;
  bpf_map__set_max_entries(skel->maps.flows, opts.flow_cutoff ? opts.flow_table : 1);
  bpf_program__set_autoload(skel->progs.bpftap_mirror_target, opts.target_program);
  {
    SpliceScope splice(skel->obj, {skel->progs.bpftap_mirror_in, skel->progs.bpftap_mirror_out}, opts.filter);
    if (int err = mirror_bpf__load(skel); err)
      return fail_errno(err == -EPERM || err == EPERM ? "load the mirror BPF programs (not permitted: CAP_BPF, CAP_PERFMON "
                                                        "and CAP_NET_ADMIN are needed)"
                                                      : "load the mirror BPF programs (the kernel verifier refused them)",
                        err);
  }
  self->slots_ = std::make_unique<IfSlots>(bpf_map__fd(skel->maps.ifslot), bpf_map__fd(skel->maps.ifslot_big),
                                           self->counters_fd(), sizeof(bpftap_mirror_counters));
  return self;
}

MirrorProgram::MirrorProgram(Skeleton<mirror_bpf> skel) : skel_(std::move(skel)) {}
MirrorProgram::~MirrorProgram() = default;

int MirrorProgram::in_fd() const { return bpf_program__fd(skel_->progs.bpftap_mirror_in); }
int MirrorProgram::out_fd() const { return bpf_program__fd(skel_->progs.bpftap_mirror_out); }
int MirrorProgram::target_fd() const {
  return bpf_program__autoload(skel_->progs.bpftap_mirror_target) ? bpf_program__fd(skel_->progs.bpftap_mirror_target) : -1;
}
int MirrorProgram::counters_fd() const { return bpf_map__fd(skel_->maps.mirror_counters); }
uint32_t MirrorProgram::target_ifindex() const { return skel_->rodata->target_ifindex; }
uint32_t MirrorProgram::session_tag() const { return skel_->rodata->session_tag; }

Result<> MirrorProgram::watch(uint32_t ifindex) {
  if (auto r = slots_->watch(ifindex); !r) return tl::unexpected(r.error());
  return {};
}

void MirrorProgram::unwatch(uint32_t ifindex) { slots_->unwatch(ifindex); }

Result<bpftap_mirror_counters> MirrorProgram::counters(uint32_t ifindex, uint8_t dir) const {
  return slots_->sum<bpftap_mirror_counters>(ifindex, dir);
}

Result<bpftap_target_counters> MirrorProgram::target_counters() const {
  return read_percpu_sum<bpftap_target_counters>(bpf_map__fd(skel_->maps.target_counters), 0, "the target counters");
}

Result<> MirrorProgram::set_rules(const std::vector<bpftap_rule> &rules) {
  if (rules.size() > BPFTAP_MAX_RULES) return fail_errno("write the rule set", E2BIG);
  bpftap_rule_set set{};
  set.count = static_cast<uint32_t>(rules.size());
  std::copy(rules.begin(), rules.end(), set.rules);
  auto *bss = skel_->bss;
  uint32_t next = (__atomic_load_n(&bss->active_rules, __ATOMIC_ACQUIRE) + 1) & 1;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.rule_sets), &next, &set, BPF_ANY) != 0)
    return fail_errno("write the rule set", errno);
  __atomic_store_n(&bss->active_rules, next, __ATOMIC_RELEASE);
  return {};
}

Result<> MirrorProgram::bypass(const bpftap_flow_key &key, uint64_t until_ns) {
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.bypass), &key, &until_ns, BPF_ANY) != 0)
    return fail_errno("add the flow to the bypass map", errno);
  return {};
}

void MirrorProgram::unbypass(const bpftap_flow_key &key) { bpf_map_delete_elem(bpf_map__fd(skel_->maps.bypass), &key); }

void MirrorProgram::set_bypass_entries(uint32_t n) { __atomic_store_n(&skel_->bss->bypass_entries, n, __ATOMIC_RELEASE); }

} // namespace bpftap
