#include "core/mirror.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <fmt/format.h>

#include "core/capture.h"
#include "core/splice.h"
#include "mirror_bpf.skel.h"

namespace bpftap {

static_assert(sizeof(bpftap_mirror_counters) == 40, "bpftap_mirror_counters layout changed");

struct MirrorSession::Impl {
  MirrorOptions opts;
  std::vector<InterfaceInfo> sources;
  mirror_bpf *skel = nullptr;
  std::vector<std::unique_ptr<Hook>> hooks;
  ~Impl() {
    hooks.clear();  // detach before the programs go
    mirror_bpf__destroy(skel);
  }
  std::vector<uint8_t> dirs() const {
    std::vector<uint8_t> d;
    if (opts.ingress) d.push_back(BPFTAP_DIR_IN);
    if (opts.egress) d.push_back(BPFTAP_DIR_OUT);
    return d;
  }
};

MirrorSession::MirrorSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MirrorSession::~MirrorSession() = default;
const std::vector<InterfaceInfo> &MirrorSession::sources() const { return impl_->sources; }
void MirrorSession::detach() { impl_->hooks.clear(); }

Result<std::unique_ptr<MirrorSession>> MirrorSession::start(const MirrorOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  auto sources = resolve_interfaces(opts.from);
  if (!sources) return tl::unexpected(sources.error());
  impl->sources = std::move(*sources);
  uint32_t target = if_nametoindex(opts.to.c_str());
  if (opts.to.empty() || target == 0)
    return bad_input(fmt::format("--to {}: no such interface in this network namespace", opts.to));
  for (const auto &s : impl->sources)
    if (s.ifindex == target)
      return bad_input(fmt::format("--to {}: the target cannot also be a source (the copies would loop)", opts.to));

  auto filter = build_filter(opts.filter, BPFTAP_MAX_SNAPLEN, impl->sources.front().name);
  if (!filter) return tl::unexpected(filter.error());

  if (auto r = register_splicer(); !r) return tl::unexpected(r.error());
  impl->skel = mirror_bpf__open();
  if (!impl->skel) return fail_errno("open the mirror BPF object", errno);
  impl->skel->rodata->target_ifindex = target;
  {
    SpliceScope splice(impl->skel->obj, {impl->skel->progs.bpftap_mirror_in, impl->skel->progs.bpftap_mirror_out},
                       *filter);
    if (int err = mirror_bpf__load(impl->skel); err)
      return fail_errno("load the mirror BPF programs (the kernel verifier refused them)", err);
  }

  int counters = bpf_map__fd(impl->skel->maps.mirror_counters);
  std::vector<bpftap_mirror_counters> zero(static_cast<size_t>(libbpf_num_possible_cpus()));
  for (const auto &s : impl->sources)
    for (uint8_t dir : impl->dirs()) {
      uint32_t key = bpftap_counter_key(s.ifindex, dir);
      if (bpf_map_update_elem(counters, &key, zero.data(), BPF_ANY) != 0)
        return fail_errno("register " + s.name + " in the counters map", errno);
      int fd = bpf_program__fd(dir == BPFTAP_DIR_IN ? impl->skel->progs.bpftap_mirror_in
                                                    : impl->skel->progs.bpftap_mirror_out);
      auto hook = attach_hook(fd, s.ifindex, dir, opts.attach);
      if (!hook) return tl::unexpected(hook.error());
      impl->hooks.push_back(std::move(*hook));
    }
  return std::unique_ptr<MirrorSession>(new MirrorSession(std::move(impl)));
}

Result<std::vector<MirrorStats>> MirrorSession::stats() const {
  int fd = bpf_map__fd(impl_->skel->maps.mirror_counters);
  std::vector<bpftap_mirror_counters> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  std::vector<MirrorStats> out;
  for (const auto &s : impl_->sources)
    for (uint8_t dir : impl_->dirs()) {
      uint32_t key = bpftap_counter_key(s.ifindex, dir);
      if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0)
        return fail_errno("read the counters of " + s.name, errno);
      MirrorStats st{s.name, dir, {}};
      for (const auto &c : per_cpu) {
        st.counters.seen += c.seen;
        st.counters.matched += c.matched;
        st.counters.mirrored += c.mirrored;
        st.counters.failed += c.failed;
        st.counters.bytes += c.bytes;
      }
      out.push_back(st);
    }
  return out;
}

} // namespace bpftap
