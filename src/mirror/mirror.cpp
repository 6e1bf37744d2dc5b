#include "mirror/mirror.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <map>

#include <fmt/format.h>

#include "filter/build.h"
#include "kernel/interfaces.h"
#include "mirror/mirror_prog.h"
#include "mirror/spec.h"
#include "mirror/vxlan.h"

namespace bpftap {

static_assert(sizeof(bpftap_mirror_counters) == 80, "bpftap_mirror_counters layout changed");
static_assert(sizeof(bpftap_rule) == 80, "bpftap_rule layout changed");
static_assert(sizeof(bpftap_flow_key) == 40, "bpftap_flow_key layout changed");

namespace {

struct FlowKeyLess {
  bool operator()(const bpftap_flow_key &a, const bpftap_flow_key &b) const { return std::memcmp(&a, &b, sizeof(a)) < 0; }
};

} // namespace

struct MirrorSession::Impl {
  MirrorOptions opts;
  std::vector<InterfaceInfo> sources;
  // Destroyed in reverse order: the hooks first, then the programs, then the VXLAN device
  // (after nothing sends to it).
  std::unique_ptr<VxlanDevice> vxlan_dev;
  std::string mtu_note;  // why full-size copies may not reach the sensor whole (VxlanDevice)
  std::string target_name;
  std::unique_ptr<MirrorProgram> prog;
  std::map<bpftap_flow_key, uint64_t, FlowKeyLess> bypassed;          // flow -> until (ns)
  std::vector<std::unique_ptr<Hook>> hooks;                             // the target's
  std::map<uint32_t, std::vector<std::unique_ptr<Hook>>> source_hooks;  // per source ifindex
  // --attach tc without truncation: tc's mirred action copies (attach_tc_mirred). Its failures are
  // the action's, read with tc_mirred_failures at each stats() and before the filters go; the
  // totals, by (ifindex, dir), stay readable after detach(). Failures after the last read before
  // a filter goes (a source removed or deleted) stay counted as mirrored. Not thread-safe: like
  // stats(), callers serialize (the CLI has one thread, the agent its lock), and the reads are in
  // the caller's network namespace (the agent enters the session's; a caller that cannot passes
  // read_tc = false to stats() and gets the totals of the last read).
  bool mirred = false;
  struct MirredFailures {
    uint32_t last = 0;   // the action's overlimits, a 32-bit counter
    uint64_t total = 0;  // their sum, across its wraps
  };
  mutable std::map<std::pair<uint32_t, uint8_t>, MirredFailures> mirred_failed;
  void read_mirred_failures() const {
    for (const auto &[ifindex, hooks] : source_hooks)
      for (uint8_t dir : dirs())
        if (auto n = tc_mirred_failures(ifindex, dir)) {
          auto &f = mirred_failed[{ifindex, dir}];
          f.total += static_cast<uint32_t>(*n - f.last);
          f.last = *n;
        }
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
const std::string &MirrorSession::mtu_note() const { return impl_->mtu_note; }
std::string MirrorSession::target() const { return impl_->target_name; }
uint32_t MirrorSession::target_ifindex() const { return impl_->prog->target_ifindex(); }
const std::string &MirrorSession::target_device() const {
  return impl_->vxlan_dev ? impl_->vxlan_dev->name() : impl_->opts.to;
}
void MirrorSession::detach() {
  if (impl_->mirred) impl_->read_mirred_failures();
  impl_->source_hooks.clear();
  impl_->hooks.clear();
}

Result<std::unique_ptr<MirrorSession>> MirrorSession::start(const MirrorOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (!opts.from.empty() || !opts.allow_no_sources) {
    auto sources = resolve_interfaces(opts.from);
    if (!sources) return tl::unexpected(sources.error());
    impl->sources = std::move(*sources);
  }

  // Everything the user gave is checked before anything is created or attached (the checks
  // that need no kernel are check_mirror_options's, mirror/spec.h).
  if (auto ok = check_mirror_options(opts); !ok) return tl::unexpected(ok.error());
  uint32_t target = 0;
  if (!opts.vxlan) {
    target = if_nametoindex(opts.to.c_str());
    if (target == 0)
      return bad_input(fmt::format("the mirror target {}: no such interface in this network namespace", opts.to));
    for (const auto &s : impl->sources)
      if (s.ifindex == target)
        return bad_input(fmt::format("the mirror target {} is also a source: the copies would loop", opts.to));
  }
  // Compiled as tcpdump -i would on the first source (any Ethernet-like interface will do); no
  // expression keeps the stub, which accepts everything.
  Result<std::vector<bpf_insn>> filter = std::vector<bpf_insn>{};
  if (!opts.filter.empty() || !impl->sources.empty())
    filter = build_filter_cancellable(opts.filter, BPFTAP_MAX_SNAPLEN,
                                      impl->sources.empty() ? "lo" : impl->sources.front().name, opts.cancel);
  if (!filter) return tl::unexpected(filter.error());

  if (opts.vxlan) {
    // The largest source MTU (1500 until sources come, for an agent's session), so that copies
    // of full-size frames fit the device; the underlay is checked for the same size + VXLAN.
    uint32_t inner_mtu = impl->sources.empty() ? 1500 : 0;
    for (const auto &s : impl->sources) inner_mtu = std::max(inner_mtu, interface_mtu(s.name));
    auto dev = VxlanDevice::acquire(*opts.vxlan, inner_mtu);
    if (!dev) return tl::unexpected(dev.error());
    impl->vxlan_dev = std::move(*dev);
    impl->mtu_note = impl->vxlan_dev->mtu_note();
    if (impl->mtu_note.empty()) {
      uint32_t need = opts.snaplen ? std::min(inner_mtu + 14, opts.snaplen) - 14 : inner_mtu;
      impl->mtu_note = underlay_mtu_note(opts.vxlan->remote, address_family(opts.vxlan->remote) == 6, need);
    }
    target = impl->vxlan_dev->ifindex();
    impl->target_name = fmt::format("{} VNI {} via {}", opts.vxlan->remote, opts.vxlan->vni, impl->vxlan_dev->name());
  } else {
    impl->target_name = opts.to;
  }
  // Only to cut copies: a VXLAN device has its remote and VNI already (mirror/vxlan.h).
  const bool target_prog = opts.snaplen != 0;
  // Copies cut to a snaplen carry the session's tag in skb->mark, which only the program can
  // set on the copy alone: they are made by bpf_clone_redirect.
  impl->mirred = opts.attach == AttachMode::Tc && !target_prog;

  MirrorProgramOptions po;
  po.filter = std::move(*filter);
  po.target_ifindex = target;
  po.target_program = target_prog;
  po.snaplen = opts.snaplen;
  po.sample = opts.sample;
  po.flow_cutoff = opts.flow_cutoff;
  po.flow_table = opts.flow_table;
  po.classify = impl->mirred;
  auto prog = MirrorProgram::load(po);
  if (!prog) return tl::unexpected(prog.error());
  impl->prog = std::move(*prog);
  MirrorSession session(std::move(impl));
  if (auto r = session.set_rules(opts.rules); !r) return tl::unexpected(r.error());
  auto &im = *session.impl_;

  // The target's program first, so no clone leaves before it can be cut.
  if (target_prog) {
    auto hook = attach_hook(im.prog->target_fd(), target, BPFTAP_DIR_OUT, opts.attach, opts.pin_dir);
    if (!hook) return tl::unexpected(hook.error());
    im.hooks.push_back(std::move(*hook));
  }
  auto sources = std::move(im.sources);
  im.sources.clear();
  for (const auto &s : sources)
    if (auto r = session.add_source(s); !r) return tl::unexpected(r.error());
  return std::unique_ptr<MirrorSession>(new MirrorSession(std::move(session.impl_)));
}

Result<> MirrorSession::add_source(const InterfaceInfo &s) {
  Impl &im = *impl_;
  if (im.source_hooks.count(s.ifindex)) return {};
  if (s.ifindex == im.prog->target_ifindex())
    return bad_input(fmt::format("{}: the target cannot also be a source (the copies would loop)", s.name));
  if (auto r = im.prog->watch(s.ifindex); !r) return tl::unexpected(r.error());
  std::vector<std::unique_ptr<Hook>> hooks;
  for (uint8_t dir : im.dirs()) {
    int fd = dir == BPFTAP_DIR_IN ? im.prog->in_fd() : im.prog->out_fd();
    auto hook = im.mirred ? attach_tc_mirred(fd, s.ifindex, dir, im.prog->target_ifindex())
                          : attach_hook(fd, s.ifindex, dir, im.opts.attach, im.opts.pin_dir);
    if (!hook) {
      hooks.clear();  // detach first, then forget the interface
      im.prog->unwatch(s.ifindex);
      return tl::unexpected(hook.error());
    }
    hooks.push_back(std::move(*hook));
  }
  im.source_hooks[s.ifindex] = std::move(hooks);
  im.sources.push_back(s);
  return {};
}

Result<std::vector<MirrorStats>> MirrorSession::remove_source(uint32_t ifindex) {
  Impl &im = *impl_;
  auto st = stats();
  if (!st) return st;
  std::vector<MirrorStats> last;
  for (auto it = im.sources.begin(); it != im.sources.end(); ++it)
    if (it->ifindex == ifindex) {
      for (const auto &x : *st)
        if (x.name == it->name) last.push_back(x);
      im.sources.erase(it);
      break;
    }
  im.source_hooks.erase(ifindex);
  im.prog->unwatch(ifindex);
  for (uint8_t dir : im.dirs()) im.mirred_failed.erase({ifindex, dir});
  return last;
}

bpftap_flow_key make_flow_key(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb) {
  bpftap_flow_key k{};
  uint32_t x[4] = {}, y[4] = {};
  int fa = parse_address(a, x), fb = parse_address(b, y);
  if (!fa || fa != fb) return k;  // family 0: matches nothing
  // As the BPF program orders them: addresses word by word (host order), then ports.
  bool swap = false, decided = false;
  for (int i = 0; i < 4 && !decided; i++)
    if (ntohl(x[i]) != ntohl(y[i])) {
      swap = ntohl(x[i]) > ntohl(y[i]);
      decided = true;
    }
  if (!decided) swap = pa > pb;
  std::memcpy(k.addr[0], swap ? y : x, 16);
  std::memcpy(k.addr[1], swap ? x : y, 16);
  k.port[0] = swap ? pb : pa;
  k.port[1] = swap ? pa : pb;
  k.proto = proto;
  k.family = static_cast<uint8_t>(fa);
  return k;
}

Result<> MirrorSession::bypass(const bpftap_flow_key &key, double seconds) {
  if (key.family != 4 && key.family != 6) return bad_input("bypass: not an IPv4 or IPv6 flow");
  Impl &im = *impl_;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);  // bpf_ktime_get_ns is CLOCK_MONOTONIC
  uint64_t until = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec) +
                   static_cast<uint64_t>(seconds * 1e9);
  if (auto r = im.prog->bypass(key, until); !r) return r;
  im.bypassed[key] = until;
  im.prog->set_bypass_entries(static_cast<uint32_t>(im.bypassed.size()));
  return {};
}

void MirrorSession::expire_bypass() {
  Impl &im = *impl_;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t t = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
  for (auto it = im.bypassed.begin(); it != im.bypassed.end();) {
    if (it->second <= t) {
      im.prog->unbypass(it->first);
      it = im.bypassed.erase(it);
    } else {
      ++it;
    }
  }
  im.prog->set_bypass_entries(static_cast<uint32_t>(im.bypassed.size()));
}

bool MirrorSession::unbypass(const bpftap_flow_key &key) {
  Impl &im = *impl_;
  auto it = im.bypassed.find(key);
  if (it == im.bypassed.end()) return false;
  im.prog->unbypass(key);
  im.bypassed.erase(it);
  im.prog->set_bypass_entries(static_cast<uint32_t>(im.bypassed.size()));
  return true;
}

MirrorSession::Programs MirrorSession::programs() const {
  const MirrorProgram &prog = *impl_->prog;
  return {prog.in_fd(), prog.out_fd(), prog.target_fd(), prog.session_tag()};
}

Result<> MirrorSession::set_rules(const std::vector<bpftap_rule> &rules) {
  if (rules.size() > BPFTAP_MAX_RULES) return bad_input(fmt::format("at most {} rules per session", BPFTAP_MAX_RULES));
  if (auto r = impl_->prog->set_rules(rules); !r) return r;
  impl_->opts.rules = rules;
  return {};
}

Result<std::vector<MirrorStats>> MirrorSession::stats(bool read_tc) const {
  std::vector<MirrorStats> out;
  if (impl_->mirred && read_tc) impl_->read_mirred_failures();
  for (const auto &s : impl_->sources)
    for (uint8_t dir : impl_->dirs()) {
      auto c = impl_->prog->counters(s.ifindex, dir);
      if (!c) return fail_in(c.error(), s.name);
      if (impl_->mirred) {  // the program counted what it handed to the action; some did not go
        auto it = impl_->mirred_failed.find({s.ifindex, dir});
        uint64_t failed = it == impl_->mirred_failed.end() ? 0 : std::min<uint64_t>(it->second.total, c->mirrored);
        c->mirrored -= failed;
        c->failed += failed;
      }
      out.push_back({s.name, dir, *c});
    }
  return out;
}

Result<bpftap_target_counters> MirrorSession::target_stats() const {
  return impl_->prog->target_counters();
}

} // namespace bpftap
