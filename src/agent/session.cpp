#include "agent/session.h"

#include <fnmatch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "capture/capture.h"
#include "capture/spec.h"
#include "mirror/mirror.h"
#include "kernel/netns.h"
#include "mirror/spec.h"
#include "inspect/inspector.h"
#include "sinks/line_file.h"
#include "sinks/rotating_sink.h"
#include "util/fds.h"
#include "util/text.h"

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

// Interfaces that went away whose counters are kept by name (the latest ones); the counters of
// older ones are summed under this name.
constexpr size_t kKeptGone = 128;
constexpr const char *kFoldedName = "(gone)";

// A capture session's ring: as the CLI sizes it, but at most 32 MiB: it is the agent's largest
// allocation (mapped into the agent, so counted in its RSS), and a session feeds an inspector or
// files of many quiet taps rather than one bulk transfer.
uint32_t session_ring_bytes(uint32_t snaplen) { return std::min(default_buffer_bytes(snaplen, 1), 32u << 20); }

// A session's ring of files at PATH-N.pcapng.
RotationOptions rotation(const CaptureTarget &t, std::string path) {
  RotationOptions r;
  r.path = std::move(path);
  r.extension = ".pcapng";
  r.rotate_bytes = t.rotate_mb * 1000000ull;
  r.max_files = t.keep_files;
  return r;
}

} // namespace

// Where a capture / inspect session's packets go: the files of the interface they came from, or
// the session's one file (capture.files: per-session), and the session's one inspector. Indexed
// by the capture's slot. Touched only under the capture's lock: by its reader (write, flush) and
// by the agent (attach, detach, tick, counters).
// A file that cannot be written never stops the reader: its output is marked failing, the
// packets meant for it are counted as unwritten by their interface's route (the inspector still
// gets them), and it is retried every second.
class Session::Router final : public PacketSink {
public:
  using Clock = std::chrono::steady_clock;
  // A ring of files and its health: an interface's own, or the session's shared one.
  struct Output {
    std::unique_ptr<RotatingFileSink> files;
    RotationOptions ropt;              // to open them again
    std::vector<InterfaceInfo> ifaces; // their interface description blocks, to open them again
    std::string whose;                 // whose packets go unwritten when it fails (messages)
    uint64_t skipped = 0;              // packets not handed to it while failing (messages)
    bool failing = false;
    std::string error;
    uint64_t write_errors = 0;
    Clock::time_point retry_at{};
    uint64_t lost() const { return files ? files->lost() : 0; }
  };
  struct Route {
    std::unique_ptr<Output> own;  // per-interface files; null when shared (or none)
    InterfaceInfo info;
    bool has_files = false;
    uint32_t file_iface = 0;  // the interface's IDB in its file: 0 in its own, its index in the shared one
    uint32_t insp_iface = 0;
    bool live = false;
    uint64_t skipped = 0;  // packets not handed to the files while failing
    // Packets of this interface that are not in a file: with a shared file, only those skipped
    // while it failed (what the file itself lost is the session's: shared_lost()).
    uint64_t unwritten() const { return skipped + (own ? own->lost() : 0); }
  };
  Router(std::string session, inspect::Inspector *insp, std::mutex *insp_mu)
      : session_(std::move(session)), insp_(insp), insp_mu_(insp_mu) {}

  // Per-session files. Opened when the first interface is attached (share_with), not at session
  // start: a capture file's headers need an interface (the writers refuse none: classic pcap has
  // one link type for the file), and a session whose interfaces never come leaves no empty file.
  void share(RotationOptions ropt) {
    shared_ = std::make_unique<Output>();
    shared_->ropt = std::move(ropt);
    shared_->whose = "the session's interfaces";
  }
  bool shares() const { return shared_ != nullptr; }
  // The interface's IDB in the shared file: the one of an earlier interface of the same name and
  // link type that is no longer attached (a tap that comes back keeps its interface id, and taps
  // coming and going for months do not grow the IDBs every new file repeats), else a new one.
  // pcapng cannot take an IDB back: one of an interface gone stays, its packets just stop.
  uint32_t share_with(const InterfaceInfo &info) {
    auto &idbs = shared_->ifaces;
    for (uint32_t i = 0; i < idbs.size(); i++)
      if (idbs[i].name == info.name && idbs[i].linktype == info.linktype &&
          std::none_of(routes_.begin(), routes_.end(), [&](const Route &r) { return r.live && !r.own && r.has_files && r.file_iface == i; }))
        return i;
    auto i = static_cast<uint32_t>(idbs.size());
    idbs.push_back(info);
    if (i == 0) {  // the first interface: the file is opened (failing, it is retried as any other)
      auto f = RotatingFileSink::open(shared_->ropt, idbs);
      if (f) {
        shared_->files = std::move(*f);
      } else {
        start_failing(*shared_, f.error());
        spdlog::error("session {}: {}: packets of {} are counted as unwritten until it can write again", session_,
                      shared_->error, shared_->whose);
      }
      return i;
    }
    // A failing file keeps the IDB with what it could not write yet; a file that could not be
    // opened gets every IDB when it is.
    if (shared_->files)
      if (auto a = shared_->files->add_interface(i, info); !a && !shared_->failing) fail(*shared_, a.error());
    return i;
  }

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
  const std::vector<Route> &routes() const { return routes_; }
  // The shared file, closed (at the end of the session).
  void close_shared() {
    if (shared_ && shared_->files) (void)shared_->files->close();
  }
  // Every output of the attached interfaces: their own, and the shared one once it has an
  // interface (before, there is nothing to open).
  template <typename F> void each_output(F f) {
    for (auto &r : routes_)
      if (r.live && r.own) f(*r.own);
    if (shared_ && !shared_->ifaces.empty()) f(*shared_);
  }
  // Records the shared file could not keep (its own lost(), not attributable to an interface).
  uint64_t shared_lost() const { return shared_ ? shared_->lost() : 0; }

  Result<> write(const Packet &pkt) override {
    if (pkt.iface >= routes_.size() || !routes_[pkt.iface].live) return {};
    Route &r = routes_[pkt.iface];
    Packet p = pkt;
    if (Output *o = output(r)) {
      p.iface = r.file_iface;
      if (o->failing || !o->files) {
        r.skipped++;
        o->skipped++;
      } else if (auto w = o->files->write(p); !w) fail(*o, w.error());
    }
    if (insp_) {
      p.iface = r.insp_iface;
      std::lock_guard lock(*insp_mu_);
      (void)insp_->write(p);
    }
    return {};
  }
  Result<> flush() override {
    auto now = Clock::now();
    each_output([&](Output &o) {
      if (o.failing || !o.files) retry(o, now);
      else if (auto f = o.files->flush(); !f) fail(o, f.error());
    });
    if (insp_) {
      std::lock_guard lock(*insp_mu_);
      (void)insp_->flush();  // the inspector's files keep their own health (LineFile)
    }
    return {};
  }
  // The outputs that failed, tried again if their time has come.
  void retry_all() {
    auto now = Clock::now();
    each_output([&](Output &o) {
      if (o.failing || !o.files) retry(o, now);
    });
  }
  // SIGHUP.
  void reopen_moved() {
    each_output([&](Output &o) {
      if (o.files && !o.failing)
        if (auto m = o.files->reopen_if_moved(); !m) fail(o, m.error());
    });
  }
  // A new interface's own output, failing from the start if its file cannot be opened.
  Output own_output(const RotationOptions &ropt, const InterfaceInfo &info) {
    Output o;
    o.ropt = ropt;
    o.ifaces = {info};
    o.whose = escape_bytes(info.name);
    auto f = RotatingFileSink::open(ropt, {info});
    if (f) o.files = std::move(*f);
    else start_failing(o, f.error());
    return o;
  }

private:
  // A file that cannot be opened at the start: retried in a second.
  static void start_failing(Output &o, const Error &e) {
    o.failing = true;
    o.error = e.message();
    o.write_errors = 1;
    o.retry_at = Clock::now() + std::chrono::seconds(1);
  }
  Output *output(Route &r) const {
    if (!r.has_files) return nullptr;
    return r.own ? r.own.get() : shared_.get();
  }
  // An output that starts failing is said once, and tried again at once (a ring of files may
  // make room by deleting its oldest); then every second.
  void fail(Output &o, const Error &e) {
    const bool first = !o.failing;
    o.failing = true;
    o.error = e.message();
    o.write_errors++;
    o.retry_at = Clock::now() + std::chrono::seconds(1);
    if (!first) return;
    spdlog::error("session {}: {}: packets of {} are counted as unwritten until it can write again", session_, o.error,
                  o.whose);
    o.retry_at = {};
    retry(o, Clock::now());
  }
  void retry(Output &o, Clock::time_point now) {
    if (now < o.retry_at) return;
    Result<> ok;
    if (!o.files) {
      auto f = RotatingFileSink::open(o.ropt, o.ifaces);
      if (f) o.files = std::move(*f);
      else ok = tl::unexpected(f.error());
    } else {
      ok = o.files->recover();
    }
    if (!ok) return fail(o, ok.error());
    o.failing = false;
    o.error.clear();
    spdlog::info("session {}: working again: {} is written ({} packets unwritten, {} write errors so far)", session_,
                 o.files->current_path(), o.skipped + o.lost(), o.write_errors);
  }

  std::string session_;
  inspect::Inspector *insp_;
  std::mutex *insp_mu_;
  std::vector<Route> routes_;
  std::unique_ptr<Output> shared_;  // capture.files: per-session
};

struct Session::State {
  Netns ns;  // where the session's interfaces are: every attach and detach runs inside it
  explicit State(Netns n) : ns(std::move(n)) {}
  // mirror
  std::unique_ptr<MirrorSession> mirror;
  std::map<uint32_t, InterfaceInfo> mirror_ifaces;
  // capture / inspect: one capture (one BPF object, one ring) and one reader for every interface
  std::unique_ptr<LineFile> alerts, flows;
  std::unique_ptr<inspect::Inspector> inspector;
  std::mutex insp_mu;
  std::unique_ptr<Capture> cap;
  std::unique_ptr<Router> router;
  std::map<uint32_t, InterfaceInfo> taps;  // attached interfaces, by ifindex
  std::atomic<bool> stop{false};
  std::thread reader;
  // counters of interfaces that went away, by name and direction: the kKeptGone latest, older
  // ones folded into one entry per direction (kFoldedName), so that VMs coming and going for
  // months grow neither the agent's memory nor its metrics
  std::map<std::pair<std::string, std::string>, InterfaceCounters> gone;
  std::map<std::pair<std::string, std::string>, uint64_t> gone_at;  // when each went (a sequence)
  uint64_t gone_seq = 0;
  // why the reader stopped, if it did (the session then captures nothing)
  mutable std::mutex reader_mu;
  std::string reader_error;

  void stop_reader() {
    stop = true;
    if (reader.joinable()) reader.join();
  }
};

Session::Session(SessionConfig cfg) : cfg_(std::move(cfg)) {}

Session::~Session() {
  if (!st_) return;
  FdReserve::Use reserve;  // detaching must not fail for want of a descriptor
  auto scope = enter_or_die(st_->ns, cfg_.name);
  st_->stop_reader();
  if (st_->cap) (void)st_->cap->finish(*st_->router);  // detaches, writes what the ring still held
  if (st_->router) {
    for (auto &r : st_->router->take_all())
      if (r.own && r.own->files) (void)r.own->files->close();
    st_->router->close_shared();
  }
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    (void)st_->inspector->finish();
  }
  st_->cap.reset();
  st_->mirror.reset();
}

Result<std::unique_ptr<Session>> Session::create(const SessionConfig &cfg, const std::atomic<bool> *cancel,
                                                 const std::string &pin_dir) {
  std::unique_ptr<Session> s(new Session(cfg));
  auto ns = Netns::open(cfg.netns);
  if (!ns) return tl::unexpected(ns.error());
  s->st_ = std::make_unique<State>(std::move(*ns));
  auto scope = NetnsScope::enter(s->st_->ns);
  if (!scope) return tl::unexpected(scope.error());
  if (cfg.mirror) {
    // The same conversion and checks as bpftap mirror's (mirror/spec.h).
    auto o = to_mirror_options(mirror_spec(cfg));
    if (!o) return tl::unexpected(o.error());
    o->from.clear();  // the matching interfaces are attached as they come (attach())
    o->allow_no_sources = true;
    o->cancel = cancel;
    o->pin_dir = pin_dir;
    auto m = MirrorSession::start(*o);
    if (!m) return tl::unexpected(m.error());
    s->st_->mirror = std::move(*m);
  } else {
    if (cfg.capture) {
      std::error_code ec;
      std::filesystem::create_directories(cfg.capture->dir, ec);
      if (ec) return bad_input(fmt::format("session {}: capture dir {}: {}", cfg.name, cfg.capture->dir, ec.message()));
    }
    if (cfg.inspect) {
      auto alerts = LineFile::open(cfg.inspect->alerts);
      if (!alerts) return fail_in(Error{alerts.error().code, alerts.error().what, true}, "session " + cfg.name);
      s->st_->alerts = std::move(*alerts);
      if (!cfg.inspect->flows.empty()) {
        auto flows = LineFile::open(cfg.inspect->flows);
        if (!flows) return fail_in(Error{flows.error().code, flows.error().what, true}, "session " + cfg.name);
        s->st_->flows = std::move(*flows);
      }
      for (auto *f : {s->st_->alerts.get(), s->st_->flows.get()})
        if (f)
          f->on_change([name = cfg.name, path = f->path()](bool failing, const std::string &error) {
            if (failing) spdlog::error("session {}: {}: its lines wait in memory until it can write again", name, error);
            else spdlog::info("session {}: working again: {} is written", name, path);
          });
      inspect::InspectOptions io;
      // Every alert also in the agent's log (journald), one line: what an operator tails.
      io.on_alert = [name = cfg.name](const inspect::ojson &j) {
        auto s = [&](const char *k) { return j.contains(k) ? j.at(k).dump() : std::string("-"); };
        const auto &a = j.at("alert");
        spdlog::info("session {}: alert: {} {}:{} -> {}:{} (sid {}, severity {})", name,
                     a.value("signature", std::string("?")), j.value("src_ip", std::string("?")), s("src_port"),
                     j.value("dest_ip", std::string("?")), s("dest_port"), a.value("signature_id", 0), a.value("severity", 0));
      };
      io.alert_out = s->st_->alerts.get();
      io.flow_out = s->st_->flows.get();
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
    CaptureOptions o = to_capture_options(capture_spec(cfg));  // as bpftap capture's (capture/spec.h)
    o.interfaces.clear();  // the matching interfaces are attached as they come (attach())
    o.allow_no_interfaces = true;
    o.filter_iface = "lo";
    o.buffer_bytes = session_ring_bytes(o.snaplen);
    o.cancel = cancel;
    o.pin_dir = pin_dir;
    auto cap = Capture::start(o);
    if (!cap) return tl::unexpected(cap.error());
    s->st_->cap = std::move(*cap);
    s->st_->router = std::make_unique<Router>(cfg.name, s->st_->inspector.get(), &s->st_->insp_mu);
    if (cfg.capture && cfg.capture->per_session())  // NAME-N.pcapng
      s->st_->router->share(rotation(*cfg.capture, fmt::format("{}/{}", cfg.capture->dir, cfg.name)));
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
      if (auto r = st->cap->run(*st->router, st->stop, expire); !r) {
        spdlog::error("session {}: reading the capture stopped: {}", name, r.error().message());
        std::lock_guard lock(st->reader_mu);
        st->reader_error = "reading the capture stopped: " + r.error().message();
      }
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

std::vector<RingUsage> Session::ring_usage() const {
  if (!st_->cap) return {};
  return st_->cap->ring_usage();
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
  route.info = info;
  Router &router = *st_->router;
  if (cfg_.capture) {
    route.has_files = true;
    // A file that cannot be opened now (a full disk) does not keep the interface from being
    // captured: the output starts failing and is retried (its packets still reach the inspector).
    // The interface's name is the kernel's bytes: a '/' cannot be in it, but anything else can.
    if (!router.shares())  // NAME-IFACE-N.pcapng; with a shared file, its IDB is added below
      route.own = std::make_unique<Router::Output>(router.own_output(
          rotation(*cfg_.capture, fmt::format("{}/{}-{}", cfg_.capture->dir, cfg_.name, escape_bytes(iface.name))), info));
  }
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    route.insp_iface = st_->inspector->add_interface(info);
  }
  std::optional<uint32_t> prepared;
  auto slot = st_->cap->add_interface(info, [&](uint32_t slot) -> Result<> {
    // Under the capture's lock: the reader may be writing to the shared file.
    if (route.has_files && !route.own) route.file_iface = router.share_with(info);
    router.set(slot, std::move(route));
    prepared = slot;
    return {};
  });
  if (!slot) {
    // Its hooks could not be attached: its own files go (an IDB it got in the shared file stays,
    // unused, for its next attach).
    if (prepared)
      st_->cap->locked([&] {
        if (auto r = router.take(*prepared); r.own && r.own->files) (void)r.own->files->close();
      });
    return tl::unexpected(slot.error());
  }
  st_->taps[iface.ifindex] = info;
  return {};
}

void Session::keep_counters(const std::vector<InterfaceCounters> &counters) {
  for (const auto &c : counters) {
    const std::pair<std::string, std::string> key{c.name, c.direction};
    auto &g = st_->gone[key];
    g.name = c.name;
    g.direction = c.direction;
    g.attached = false;
    add_counts(g, c);
    if (c.name != kFoldedName) st_->gone_at[key] = ++st_->gone_seq;
  }
  // Past kKeptGone, the interface gone longest ago joins the folded entry of its direction.
  while (st_->gone_at.size() > kKeptGone) {
    auto oldest = std::min_element(st_->gone_at.begin(), st_->gone_at.end(),
                                   [](const auto &a, const auto &b) { return a.second < b.second; });
    auto key = oldest->first;
    st_->gone_at.erase(oldest);
    auto it = st_->gone.find(key);
    if (it == st_->gone.end()) continue;
    auto &folded = st_->gone[{kFoldedName, key.second}];
    folded.name = kFoldedName;
    folded.direction = key.second;
    folded.attached = false;
    add_counts(folded, it->second);
    st_->gone.erase(it);
  }
}

void Session::detach(uint32_t ifindex, bool gone) {
  FdReserve::Use reserve;  // detaching must not fail for want of a descriptor
  auto scope = enter_or_die(st_->ns, cfg_.name);
  if (gone && attached(ifindex)) interfaces_gone_++;
  auto keep = [&](const InterfaceCounters &c) { keep_counters({c}); };
  if (st_->mirror && st_->mirror_ifaces.count(ifindex)) {
    auto last = st_->mirror->remove_source(ifindex);
    if (last)
      for (const auto &m : *last) keep(from_mirror(m.name, m.dir, false, m.counters));
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
    c.in = last->in;
    c.out = last->out;
  }
  // What its own files cannot write counts as lost; a shared file stays open for the others.
  if (route.own && route.own->files) (void)route.own->files->close();
  c.unwritten = route.unwritten();
  keep(c);
  st_->taps.erase(it);
}

std::vector<InterfaceCounters> Session::counters() const {
  std::vector<InterfaceCounters> out;
  std::map<std::pair<std::string, std::string>, InterfaceCounters> live;
  if (st_->mirror) {
    // With attach: tc the failed copies are tc's counts, read over rtnetlink: in the session's
    // namespace, where its interfaces are (the API thread is in the agent's).
    // If it cannot get there, the last counts are kept: read elsewhere, the same ifindex could
    // be another interface, and another filter's counts.
    std::optional<NetnsScope> scope;
    if (cfg_.attach == AttachMode::Tc)
      if (auto sc = NetnsScope::enter(st_->ns)) scope.emplace(std::move(*sc));
    if (auto st = st_->mirror->stats(cfg_.attach != AttachMode::Tc || scope.has_value()))
      for (const auto &m : *st) {
        auto c = from_mirror(m.name, m.dir, true, m.counters);
        live[{c.name, c.direction}] = c;
      }
  }
  if (st_->cap) {
    std::map<uint32_t, uint64_t> unwritten;
    st_->cap->locked([&] {
      for (const auto &r : st_->router->routes())
        if (r.live) unwritten[r.info.ifindex] = r.unwritten();
    });
    if (auto stats = st_->cap->stats())
      for (const auto &s : *stats) {
        InterfaceCounters c{.name = s.name, .direction = "", .attached = true};
        c.captured = s.captured;
        c.matched = s.matched;
        c.dropped = s.dropped;
        c.in = s.in;
        c.out = s.out;
        c.unwritten = unwritten[s.ifindex];
        live[{c.name, ""}] = c;
      }
  }
  // An interface that went away and came back: its old counters add to the new ones.
  for (auto [key, g] : st_->gone) {
    auto it = live.find(key);
    if (it == live.end()) {
      out.push_back(g);
      continue;
    }
    add_counts(it->second, g);
  }
  for (auto &[k, c] : live) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return std::tie(a.name, a.direction) < std::tie(b.name, b.direction); });
  return out;
}

Result<> Session::bypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb, double seconds) {
  if (!st_->mirror) return {};
  return st_->mirror->bypass(make_flow_key(proto, a, pa, b, pb), seconds);
}

void Session::unbypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb) {
  if (st_->mirror) st_->mirror->unbypass(make_flow_key(proto, a, pa, b, pb));
}

Session::InspectTotals Session::inspect_totals() const {
  if (!st_->inspector) return {};
  std::lock_guard lock(st_->insp_mu);
  auto s = st_->inspector->stats();
  return {s.packets, s.flows, s.active_flows, s.alerts};
}

void Session::tick() {
  if (st_->mirror) st_->mirror->expire_bypass();
  if (st_->cap) st_->cap->locked([&] { st_->router->retry_all(); });
  if (st_->inspector) {
    std::lock_guard lock(st_->insp_mu);
    (void)st_->inspector->flush();  // retries a failed alert or flow file even when no packet comes
  }
}

SessionHealth Session::health() const {
  SessionHealth h;
  h.interfaces_gone = interfaces_gone_;
  h.target_lost = target_lost_;
  std::vector<std::string> why;
  if (target_missing_) why.push_back(fmt::format("its target {} went away: nothing is mirrored until it is back",
                                                    cfg_.mirror->to.empty() ? "VXLAN device" : cfg_.mirror->to));
  {
    std::lock_guard lock(st_->reader_mu);
    if (!st_->reader_error.empty()) why.push_back(st_->reader_error);
  }
  if (st_->cap)
    st_->cap->locked([&] {
      st_->router->each_output([&](const Router::Output &o) {
        h.write_errors += o.write_errors;
        if (o.failing)
          why.push_back(fmt::format("{}: packets of {} are counted as unwritten until it can write again", o.error, o.whose));
      });
      h.file_lost = st_->router->shared_lost();
    });
  for (const auto &[f, dropped] : {std::pair{st_->alerts.get(), &h.alerts_dropped}, std::pair{st_->flows.get(), &h.flows_dropped}}) {
    if (!f) continue;
    auto st = f->stats();
    h.write_errors += st.write_errors;
    *dropped += st.dropped;
    if (st.failing) why.push_back(fmt::format("{}: its lines wait in memory until it can write again", st.error));
  }
  h.failing = !why.empty();
  for (const auto &w : why) h.reason += (h.reason.empty() ? "" : "; ") + w;
  return h;
}

void Session::reopen_outputs() {
  if (st_->cap) st_->cap->locked([&] { st_->router->reopen_moved(); });
  for (auto *f : {st_->alerts.get(), st_->flows.get()})
    if (f)
      if (auto r = f->reopen(); !r) spdlog::error("session {}: reopen {}: {}", cfg_.name, f->path(), r.error().message());
}

std::string Session::target_name() const { return cfg_.mirror ? cfg_.mirror->to : std::string(); }

uint32_t Session::target_ifindex() const { return st_->mirror ? st_->mirror->target_ifindex() : 0; }

void Session::target_gone() {
  if (target_missing_) return;
  target_missing_ = true;
  target_lost_++;
}

} // namespace bpftap::agent
