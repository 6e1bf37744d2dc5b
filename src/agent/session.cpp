#include "agent/session.h"

#include <fnmatch.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "capture/capture.h"
#include "filter/build.h"
#include "mirror/mirror.h"
#include "kernel/netns.h"
#include "mirror/rules.h"
#include "inspect/inspector.h"
#include "sinks/rotating_sink.h"

namespace bpftap::agent {
namespace {

// Detaching and deleting (legacy tc filters, the VXLAN device) must happen in the session's
// namespace: if the thread cannot get there, stopping is safer than acting elsewhere.
NetnsScope enter_or_die(const Netns &ns, const std::string &session) {
  auto scope = NetnsScope::enter(ns);
  if (!scope) {
    spdlog::critical("session {}: {}: cannot detach safely, stopping", session, scope.error().message());
    std::abort();
  }
  return std::move(*scope);
}

constexpr uint32_t kTapBuffer = 4u << 20;  // per-interface ring buffer of capture sessions

// Feeds one interface's packets to the session's inspector (shared by its interfaces) and to
// the interface's own files.
class TapSink final : public PacketSink {
public:
  TapSink(PacketSink *files, inspect::Inspector *insp, std::mutex *mu, uint32_t insp_iface)
      : files_(files), insp_(insp), mu_(mu), insp_iface_(insp_iface) {}
  Result<> write(const Packet &pkt) override {
    if (files_)
      if (auto r = files_->write(pkt); !r) return r;
    if (insp_) {
      Packet p = pkt;
      p.iface = insp_iface_;
      std::lock_guard lock(*mu_);
      return insp_->write(p);
    }
    return {};
  }
  Result<> flush() override {
    if (files_)
      if (auto r = files_->flush(); !r) return r;
    if (insp_) {
      std::lock_guard lock(*mu_);
      return insp_->flush();
    }
    return {};
  }

private:
  PacketSink *files_;
  inspect::Inspector *insp_;
  std::mutex *mu_;
  uint32_t insp_iface_;
};

struct FileCloser {
  void operator()(FILE *f) const {
    if (f) std::fclose(f);
  }
};

} // namespace

// A capture / inspect session's interface: its own eBPF capture, files and reading thread.
struct Session::Tap {
  InterfaceInfo iface;
  std::unique_ptr<Capture> cap;
  std::unique_ptr<RotatingFileSink> files;
  std::unique_ptr<TapSink> sink;
  std::atomic<bool> stop{false};
  std::thread reader;
  InterfaceCounters last;
  ~Tap() {
    stop = true;
    if (reader.joinable()) reader.join();
    if (cap && sink) (void)cap->finish(*sink);
    if (files) (void)files->close();
  }
};

struct Session::State {
  Netns ns;  // where the session's interfaces are: every attach and detach runs inside it
  explicit State(Netns n) : ns(std::move(n)) {}
  // mirror
  std::unique_ptr<MirrorSession> mirror;
  std::map<uint32_t, InterfaceInfo> mirror_ifaces;
  // capture / inspect
  std::map<uint32_t, std::unique_ptr<Tap>> taps;
  std::unique_ptr<FILE, FileCloser> alerts, flows;
  std::unique_ptr<inspect::Inspector> inspector;
  std::mutex insp_mu;
  // counters of interfaces that went away, by name and direction
  std::map<std::pair<std::string, std::string>, InterfaceCounters> gone;
};

Session::Session(SessionConfig cfg) : cfg_(std::move(cfg)) {}

Session::~Session() {
  if (!st_) return;
  auto scope = enter_or_die(st_->ns, cfg_.name);
  st_->taps.clear();  // joins the readers, closes the files
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    st_->inspector->finish();
  }
  st_->mirror.reset();
}

Result<std::unique_ptr<Session>> Session::create(const SessionConfig &cfg) {
  std::unique_ptr<Session> s(new Session(cfg));
  auto ns = Netns::open(cfg.netns);
  if (!ns) return tl::unexpected(ns.error());
  s->st_ = std::make_unique<State>(std::move(*ns));
  auto scope = NetnsScope::enter(s->st_->ns);
  if (!scope) return tl::unexpected(scope.error());
  if (cfg.mirror) {
    MirrorOptions o;
    o.allow_no_sources = true;
    o.ingress = cfg.ingress;
    o.egress = cfg.egress;
    o.to = cfg.mirror->to;
    if (!cfg.mirror->vxlan.empty())
      o.vxlan = VxlanTarget{cfg.mirror->vxlan, cfg.mirror->local, cfg.mirror->vni, cfg.mirror->vxlan_port};
    o.filter = cfg.filter;
    auto rules = parse_rules(cfg.rules);
    if (!rules) return tl::unexpected(rules.error());
    o.rules = *rules;
    o.snaplen = cfg.snaplen;
    o.sample = cfg.sample;
    o.flow_cutoff = cfg.flow_cutoff;
    auto m = MirrorSession::start(o);
    if (!m) return tl::unexpected(m.error());
    s->st_->mirror = std::move(*m);
  } else {
    // Check the filter now, so a bad one is refused before any interface appears.
    if (!cfg.filter.empty())
      if (auto f = build_filter(cfg.filter, cfg.snaplen ? cfg.snaplen : BPFTAP_MAX_SNAPLEN, "lo"); !f)
        return tl::unexpected(f.error());
    if (cfg.capture) {
      std::error_code ec;
      std::filesystem::create_directories(cfg.capture->dir, ec);
      if (ec) return bad_input(fmt::format("session {}: capture dir {}: {}", cfg.name, cfg.capture->dir, ec.message()));
    }
    if (cfg.inspect) {
      s->st_->alerts.reset(std::fopen(cfg.inspect->alerts.c_str(), "a"));
      if (!s->st_->alerts) return tl::unexpected(Error{errno, "session " + cfg.name + ": open " + cfg.inspect->alerts, true});
      if (!cfg.inspect->flows.empty()) {
        s->st_->flows.reset(std::fopen(cfg.inspect->flows.c_str(), "a"));
        if (!s->st_->flows) return tl::unexpected(Error{errno, "session " + cfg.name + ": open " + cfg.inspect->flows, true});
      }
      inspect::InspectOptions io;
      io.alerts = s->st_->alerts.get();
      io.flows = s->st_->flows.get();
      s->st_->inspector = std::make_unique<inspect::Inspector>(io);
    }
  }
  return s;
}

bool Session::wants(const std::string &ifname) const {
  for (const auto &p : cfg_.interfaces)
    if (fnmatch(p.c_str(), ifname.c_str(), 0) == 0) return true;
  return false;
}

bool Session::attached(uint32_t ifindex) const {
  return st_->mirror_ifaces.count(ifindex) || st_->taps.count(ifindex);
}

RingUsage Session::ring_usage() const {
  RingUsage sum;
  for (const auto &[ifindex, t] : st_->taps)
    if (auto u = t->cap ? t->cap->ring_usage() : std::nullopt) {
      sum.size += u->size;
      sum.used += u->used;
      sum.peak = std::max(sum.peak, u->peak);
    }
  return sum;
}

Result<> Session::attach(const InterfaceInfo &iface) {
  if (attached(iface.ifindex)) return {};
  auto scope = NetnsScope::enter(st_->ns);
  if (!scope) return tl::unexpected(scope.error());
  if (st_->mirror) {
    if (auto r = st_->mirror->add_source(iface); !r) return r;
    st_->mirror_ifaces[iface.ifindex] = iface;
    return {};
  }
  auto tap = std::make_unique<Tap>();
  tap->iface = iface;
  CaptureOptions o;
  o.interfaces = {iface.name};
  o.ingress = cfg_.ingress;
  o.egress = cfg_.egress;
  o.snaplen = cfg_.snaplen ? cfg_.snaplen : BPFTAP_MAX_SNAPLEN;
  o.filter = cfg_.filter;
  o.buffer_bytes = kTapBuffer;
  InterfaceInfo info = iface;
  info.snaplen = o.snaplen;
  if (cfg_.capture) {
    RotationOptions r;
    r.path = fmt::format("{}/{}-{}.pcapng", cfg_.capture->dir, cfg_.name, iface.name);
    r.rotate_bytes = cfg_.capture->rotate_mb * 1000000ull;
    r.max_files = cfg_.capture->keep_files;
    auto f = RotatingFileSink::open(r, {info});
    if (!f) return tl::unexpected(f.error());
    tap->files = std::move(*f);
  }
  uint32_t insp_iface = 0;
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    insp_iface = st_->inspector->add_interface(info);
  }
  auto cap = Capture::start(o);
  if (!cap) return tl::unexpected(cap.error());
  tap->cap = std::move(*cap);
  tap->sink = std::make_unique<TapSink>(tap->files.get(), st_->inspector.get(), &st_->insp_mu, insp_iface);
  Tap *t = tap.get();
  t->reader = std::thread([t, name = cfg_.name] {
    if (auto r = t->cap->run(*t->sink, t->stop); !r)
      spdlog::error("session {}: {}: {}", name, t->iface.name, r.error().message());
  });
  st_->taps[iface.ifindex] = std::move(tap);
  return {};
}

void Session::keep_counters(const std::vector<InterfaceCounters> &counters) {
  for (const auto &c : counters) {
    auto &g = st_->gone[{c.name, c.direction}];
    std::string name = c.name, dir = c.direction;
    InterfaceCounters sum = g;
    sum.name = name;
    sum.direction = dir;
    sum.attached = false;
    sum.matched += c.matched, sum.bytes += c.bytes, sum.mirrored += c.mirrored, sum.mirrored_bytes += c.mirrored_bytes;
    sum.failed += c.failed, sum.truncated += c.truncated, sum.cut_off += c.cut_off, sum.sampled_out += c.sampled_out;
    sum.bypassed += c.bypassed, sum.captured += c.captured, sum.dropped += c.dropped;
    g = sum;
  }
}

void Session::detach(uint32_t ifindex) {
  auto scope = enter_or_die(st_->ns, cfg_.name);
  auto keep = [&](const InterfaceCounters &c) { keep_counters({c}); };
  if (st_->mirror && st_->mirror_ifaces.count(ifindex)) {
    auto last = st_->mirror->remove_source(ifindex);
    if (last)
      for (const auto &m : *last) {
        const auto &c = m.counters;
        keep({m.name, m.dir == BPFTAP_DIR_IN ? "in" : "out", false, c.matched, c.bytes, c.mirrored, c.mirrored_bytes,
              c.failed, c.truncated, c.cut_off, c.sampled_out, c.bypassed, 0, 0});
      }
    st_->mirror_ifaces.erase(ifindex);
    return;
  }
  auto it = st_->taps.find(ifindex);
  if (it == st_->taps.end()) return;
  Tap &t = *it->second;
  t.stop = true;
  if (t.reader.joinable()) t.reader.join();
  InterfaceCounters c{t.iface.name, "", false};
  if (auto s = t.cap->finish(*t.sink); s && !s->empty()) {
    c.captured = (*s)[0].captured;
    c.matched = (*s)[0].matched;
    c.dropped = (*s)[0].dropped;
  }
  t.cap.reset();
  keep(c);
  st_->taps.erase(it);
}

std::vector<InterfaceCounters> Session::counters() const {
  std::vector<InterfaceCounters> out;
  std::map<std::pair<std::string, std::string>, InterfaceCounters> live;
  if (st_->mirror) {
    if (auto st = st_->mirror->stats())
      for (const auto &m : *st) {
        const auto &c = m.counters;
        live[{m.name, m.dir == BPFTAP_DIR_IN ? "in" : "out"}] =
            InterfaceCounters{m.name, m.dir == BPFTAP_DIR_IN ? "in" : "out", true, c.matched, c.bytes, c.mirrored,
                              c.mirrored_bytes, c.failed, c.truncated, c.cut_off, c.sampled_out, c.bypassed, 0, 0};
      }
  }
  for (const auto &[ifindex, t] : st_->taps) {
    InterfaceCounters c{t->iface.name, "", true};
    if (t->cap)
      if (auto s = t->cap->stats(); s && !s->empty()) {
        c.captured = (*s)[0].captured;
        c.matched = (*s)[0].matched;
        c.dropped = (*s)[0].dropped;
      }
    live[{c.name, ""}] = c;
  }
  // An interface that went away and came back: its old counters add to the new ones.
  for (auto [key, g] : st_->gone) {
    auto it = live.find(key);
    if (it == live.end()) {
      out.push_back(g);
      continue;
    }
    auto &c = it->second;
    c.matched += g.matched, c.bytes += g.bytes, c.mirrored += g.mirrored, c.mirrored_bytes += g.mirrored_bytes;
    c.failed += g.failed, c.truncated += g.truncated, c.cut_off += g.cut_off, c.sampled_out += g.sampled_out;
    c.bypassed += g.bypassed, c.captured += g.captured, c.dropped += g.dropped;
  }
  for (auto &[k, c] : live) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return std::tie(a.name, a.direction) < std::tie(b.name, b.direction); });
  return out;
}

Result<> Session::bypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb, double seconds) {
  if (!st_->mirror) return {};
  return st_->mirror->bypass(make_flow_key(proto, a, pa, b, pb), seconds);
}

void Session::tick() {
  if (st_->mirror) st_->mirror->expire_bypass();
}

} // namespace bpftap::agent
