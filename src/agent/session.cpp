#include "agent/session.h"

#include <fnmatch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "capture/capture.h"
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

// A capture session's ring: as the CLI sizes it, but at most 32 MiB: it is the agent's largest
// allocation (mapped into the agent, so counted in its RSS), and a session feeds an inspector or
// files of many quiet taps rather than one bulk transfer.
uint32_t session_ring_bytes(uint32_t snaplen) { return std::min(default_buffer_bytes(snaplen, 1), 32u << 20); }

struct FileCloser {
  void operator()(FILE *f) const {
    if (f) std::fclose(f);
  }
};

} // namespace

// Where a capture / inspect session's packets go: the files of the interface they came from
// and the session's one inspector. Indexed by the capture's slot. Touched only under the
// capture's lock: by its reader (write, flush) and by add/remove_interface's callbacks.
class Session::Router final : public PacketSink {
public:
  struct Route {
    std::unique_ptr<RotatingFileSink> files;
    uint32_t insp_iface = 0;
    bool live = false;
  };
  Router(inspect::Inspector *insp, std::mutex *insp_mu) : insp_(insp), insp_mu_(insp_mu) {}

  void set(uint32_t slot, Route r) {
    if (slot >= routes_.size()) routes_.resize(slot + 1);
    routes_[slot] = std::move(r);
    routes_[slot].live = true;
  }
  Route take(uint32_t slot) {
    if (slot >= routes_.size()) return {};
    return std::exchange(routes_[slot], Route{});
  }
  std::vector<Route> take_all() { return std::exchange(routes_, {}); }

  Result<> write(const Packet &pkt) override {
    if (pkt.iface >= routes_.size() || !routes_[pkt.iface].live) return {};
    Route &r = routes_[pkt.iface];
    Packet p = pkt;
    if (r.files) {
      p.iface = 0;  // one file per interface
      if (auto w = r.files->write(p); !w) return w;
    }
    if (insp_) {
      p.iface = r.insp_iface;
      std::lock_guard lock(*insp_mu_);
      return insp_->write(p);
    }
    return {};
  }
  Result<> flush() override {
    for (auto &r : routes_)
      if (r.files)
        if (auto f = r.files->flush(); !f) return f;
    if (insp_) {
      std::lock_guard lock(*insp_mu_);
      return insp_->flush();
    }
    return {};
  }

private:
  inspect::Inspector *insp_;
  std::mutex *insp_mu_;
  std::vector<Route> routes_;
};

struct Session::State {
  Netns ns;  // where the session's interfaces are: every attach and detach runs inside it
  explicit State(Netns n) : ns(std::move(n)) {}
  // mirror
  std::unique_ptr<MirrorSession> mirror;
  std::map<uint32_t, InterfaceInfo> mirror_ifaces;
  // capture / inspect: one capture (one BPF object, one ring) and one reader for every interface
  std::unique_ptr<FILE, FileCloser> alerts, flows;
  std::unique_ptr<inspect::Inspector> inspector;
  std::mutex insp_mu;
  std::unique_ptr<Capture> cap;
  std::unique_ptr<Router> router;
  std::map<uint32_t, InterfaceInfo> taps;  // attached interfaces, by ifindex
  std::atomic<bool> stop{false};
  std::thread reader;
  // counters of interfaces that went away, by name and direction
  std::map<std::pair<std::string, std::string>, InterfaceCounters> gone;

  void stop_reader() {
    stop = true;
    if (reader.joinable()) reader.join();
  }
};

Session::Session(SessionConfig cfg) : cfg_(std::move(cfg)) {}

Session::~Session() {
  if (!st_) return;
  auto scope = enter_or_die(st_->ns, cfg_.name);
  st_->stop_reader();
  if (st_->cap) (void)st_->cap->finish(*st_->router);  // detaches, writes what the ring still held
  if (st_->router)
    for (auto &r : st_->router->take_all())
      if (r.files) (void)r.files->close();
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    st_->inspector->finish();
  }
  st_->cap.reset();
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
      io.flows_format = cfg.inspect->flows_format == "tsv" ? inspect::FlowFormat::Tsv : inspect::FlowFormat::Json;
      if (!cfg.inspect->ipfix.empty()) {
        auto x = inspect::IpfixExporter::open(cfg.inspect->ipfix);
        if (!x) return tl::unexpected(x.error());
        io.ipfix = std::move(*x);
      }
      s->st_->inspector = std::make_unique<inspect::Inspector>(io);
    }
    // The filter is compiled here, once (as on loopback: a down interface's would be too), and
    // a bad one refuses the session before any interface appears.
    CaptureOptions o;
    o.allow_no_interfaces = true;
    o.filter_iface = "lo";
    o.ingress = cfg.ingress;
    o.egress = cfg.egress;
    o.snaplen = cfg.snaplen ? cfg.snaplen : BPFTAP_MAX_SNAPLEN;
    o.filter = cfg.filter;
    o.buffer_bytes = session_ring_bytes(o.snaplen);
    auto cap = Capture::start(o);
    if (!cap) return tl::unexpected(cap.error());
    s->st_->cap = std::move(*cap);
    s->st_->router = std::make_unique<Router>(s->st_->inspector.get(), &s->st_->insp_mu);
    State *st = s->st_.get();
    st->reader = std::thread([st, name = cfg.name] {
      // Inspect: idle flows end on wall-clock time (issue 14), not only when a later packet comes.
      auto last_expiry = std::chrono::steady_clock::now();
      auto expire = [st, &last_expiry] {
        if (st->inspector && std::chrono::steady_clock::now() - last_expiry >= std::chrono::milliseconds(250)) {
          std::lock_guard lock(st->insp_mu);
          st->inspector->expire(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count()));
          last_expiry = std::chrono::steady_clock::now();
        }
        return false;
      };
      if (auto r = st->cap->run(*st->router, st->stop, expire); !r) spdlog::error("session {}: {}", name, r.error().message());
    });
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
  if (!st_->cap) return {};
  return st_->cap->ring_usage().value_or(RingUsage{});
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
  InterfaceInfo info = iface;
  info.snaplen = cfg_.snaplen ? cfg_.snaplen : BPFTAP_MAX_SNAPLEN;
  Router::Route route;
  if (cfg_.capture) {
    RotationOptions r;
    r.path = fmt::format("{}/{}-{}.pcapng", cfg_.capture->dir, cfg_.name, iface.name);
    r.rotate_bytes = cfg_.capture->rotate_mb * 1000000ull;
    r.max_files = cfg_.capture->keep_files;
    auto f = RotatingFileSink::open(r, {info});
    if (!f) return tl::unexpected(f.error());
    route.files = std::move(*f);
  }
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    route.insp_iface = st_->inspector->add_interface(info);
  }
  Router &router = *st_->router;
  auto slot = st_->cap->add_interface(info, [&](uint32_t slot) -> Result<> {
    router.set(slot, std::move(route));
    return {};
  });
  if (!slot) return tl::unexpected(slot.error());
  st_->taps[iface.ifindex] = info;
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
  Router::Route route;
  InterfaceCounters c{.name = it->second.name, .direction = "", .attached = false};
  auto last = st_->cap->remove_interface(ifindex, [&](uint32_t slot) { route = st_->router->take(slot); });
  if (last) {
    c.captured = last->captured;
    c.matched = last->matched;
    c.dropped = last->dropped;
  }
  if (route.files) (void)route.files->close();
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
  if (st_->cap)
    if (auto stats = st_->cap->stats())
      for (const auto &s : *stats) {
        InterfaceCounters c{.name = s.name, .direction = "", .attached = true};
        c.captured = s.captured;
        c.matched = s.matched;
        c.dropped = s.dropped;
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
