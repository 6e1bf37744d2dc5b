#include "agent/agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "agent/api_server.h"
#include "agent/config.h"
#include "agent/netlink.h"
#include "agent/session.h"
#include "kernel/attach.h"
#include "kernel/netns.h"
#include "kernel/privileges.h"
#include "mirror/mirror.h"
#include "mirror/vxlan.h"
#include "util/fd.h"
#include "util/fds.h"
#include "util/text.h"

namespace bpftap::agent {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Descriptors a session takes before any interface (programs, maps, ring, epoll, files), and
// each interface it attaches (two hooks, a capture file, slack). An estimate with room to spare:
// the budget is about never running out, not about the last descriptor.
constexpr size_t kSessionFds = 32;
constexpr size_t kInterfaceFds = 4;
// Kept free beyond the API's connections: detaching (tc: a netlink socket), namespaces, cleanup,
// link dumps, the filter compiler's pipe.
constexpr size_t kSpareFds = 48;
constexpr size_t kReserveFds = 16;  // FdReserve: given back for detaching

// The token file: a regular file of the agent's user, readable by nobody else, read without
// following a link or waiting on a FIFO.
Result<std::string> read_token(const std::string &path) {
  if (path.empty()) return std::string();
  FD fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return tl::unexpected(Error{errno, "api token_file " + path + ": cannot be read", true});
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return tl::unexpected(Error{errno, "api token_file " + path, true});
  if (!S_ISREG(st.st_mode)) return bad_input(fmt::format("api token_file {}: not a regular file", path));
  if (st.st_uid != geteuid())
    return bad_input(fmt::format("api token_file {}: owned by uid {}, not by the agent's user (uid {})", path, st.st_uid,
                                 geteuid()));
  if ((st.st_mode & 0177) != 0)
    return bad_input(fmt::format("api token_file {} has mode {:04o}; it must be 0600", path, st.st_mode & 0777));
  std::string data(4096, '\0');
  ssize_t n = ::read(fd.get(), data.data(), data.size());
  if (n < 0) return tl::unexpected(Error{errno, "api token_file " + path + ": cannot be read", true});
  data.resize(static_cast<size_t>(n));
  std::string token = data.substr(0, data.find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return bad_input(fmt::format("api token_file {}: the token must be at least 16 characters", path));
  return token;
}

// A Prometheus label value: printable UTF-8, with \, " and newlines escaped.
std::string label(const std::string &v) {
  std::string out;
  for (char c : escape_bytes(v)) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

// A capture session's counts of one hook.
json hooked_json(const InterfaceStats::Hooked &h) {
  json j;
  for (const auto &k : kCounters)
    if (k.hooked) j[k.key] = h.*(k.hooked);
  return j;
}

json counters_json(const InterfaceCounters &c, const SessionConfig &cfg) {
  const bool mirror = cfg.mirror.has_value();
  json j;
  j["interface"] = escape_bytes(c.name);  // the kernel's bytes: not always UTF-8
  if (!c.direction.empty()) j["direction"] = c.direction;
  j["attached"] = c.attached;
  for (const auto &k : kCounters)
    if (counts_in(k, mirror)) j[k.key] = c.*(k.field);
  if (!mirror) {
    if (cfg.ingress) j["in"] = hooked_json(c.in);
    if (cfg.egress) j["out"] = hooked_json(c.out);
  }
  return j;
}

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The status an error answers with: the client's fault, the agent's limits (try later), or ours.
int status_for(const Error &e) {
  if (e.bad_input) return 400;
  if (e.code == EMFILE || e.code == ENFILE || e.code == EINTR) return 503;
  return 500;
}

// POST /v1/bypass: every field checked, whatever sessions run. A flow is its whole 5-tuple (as a
// Traffic Mirroring filter's): src, dst, and for tcp and udp both ports.
struct Bypass {
  uint8_t proto = IPPROTO_TCP;
  std::string src, dst;
  uint16_t sport = 0, dport = 0;
  double seconds = 60;
};

const char *proto_name(uint8_t p) { return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "icmp"; }

std::string utc_time(std::chrono::system_clock::time_point t) {
  time_t s = std::chrono::system_clock::to_time_t(t);
  tm u{};
  gmtime_r(&s, &u);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

Result<Bypass> parse_bypass(const std::string &body) {
  json b = json::parse(body, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return bad_input("expected a JSON object (UTF-8)");
  Bypass out;
  bool sport = false, dport = false;
  for (const auto &[k, v] : b.items()) {
    if (k == "proto") {
      if (!v.is_string()) return bad_input("proto must be a string: tcp, udp or icmp");
      std::string p = v.get<std::string>();
      out.proto = p == "tcp" ? IPPROTO_TCP : p == "udp" ? IPPROTO_UDP : p == "icmp" ? IPPROTO_ICMP : 0;
      if (!out.proto) return bad_input("proto must be tcp, udp or icmp");
    } else if (k == "src" || k == "dst") {
      if (!v.is_string()) return bad_input(k + " must be a string (an IPv4 or IPv6 address)");
      (k == "src" ? out.src : out.dst) = v.get<std::string>();
    } else if (k == "sport" || k == "dport") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 65535) return bad_input(k + " must be a whole number 0-65535");
      (k == "sport" ? out.sport : out.dport) = static_cast<uint16_t>(v.get<uint64_t>());
      (k == "sport" ? sport : dport) = true;
    } else if (k == "seconds") {
      if (!v.is_number()) return bad_input("seconds must be a number");
      out.seconds = v.get<double>();
      if (!(out.seconds > 0 && out.seconds <= 86400)) return bad_input("seconds must be in (0, 86400]");
    } else {
      return bad_input(fmt::format("unknown key '{}' (known: proto, src, dst, sport, dport, seconds)", escape_bytes(k)));
    }
  }
  auto family = [](const std::string &a) {
    in6_addr x{};
    return inet_pton(AF_INET, a.c_str(), &x) == 1 ? 4 : inet_pton(AF_INET6, a.c_str(), &x) == 1 ? 6 : 0;
  };
  int fs = family(out.src), fd = family(out.dst);
  if (!fs) return bad_input(fmt::format("src '{}' is not an IPv4 or IPv6 address", escape_bytes(out.src)));
  if (!fd) return bad_input(fmt::format("dst '{}' is not an IPv4 or IPv6 address", escape_bytes(out.dst)));
  if (fs != fd) return bad_input("src and dst must both be IPv4 or both IPv6");
  if (out.proto == IPPROTO_ICMP && (sport || dport)) return bad_input("icmp has no ports");
  if (out.proto != IPPROTO_ICMP && !(sport && dport))
    return bad_input(fmt::format("a {} flow needs both ports: sport and dport", proto_name(out.proto)));
  return out;
}

} // namespace

struct Agent::Impl {
  AgentOptions opts;
  AgentConfig cfg;
  std::string token;
  std::mutex mu;  // sessions, spaces, waiting: held briefly (never while a session is built)
  std::map<std::string, std::unique_ptr<Session>> sessions;
  // The network namespaces sessions select interfaces in ("" = the agent's own): a link
  // watcher opened inside each and the interfaces present there.
  struct Space {
    Netns ns;
    std::unique_ptr<LinkWatcher> watcher;
    std::map<uint32_t, LinkEvent> links;
  };
  std::map<std::string, Space> spaces;
  // Sessions whose network namespace does not exist (yet, or any more): started when it
  // appears. Counters of a previous run are kept for the next.
  struct Waiting {
    SessionConfig cfg;
    std::vector<InterfaceCounters> counters;
    std::string last_error;  // why the last start failed although the namespace was there
    Clock::time_point retry_at{};  // after such a failure: not before this
    bool starting = false;         // a start is under way in the background
  };
  std::map<std::string, Waiting> waiting;
  // Changes (API writes, reloads, background starts) one at a time: they build sessions
  // without `mu`, so reads, metrics and link events go on meanwhile.
  std::mutex change_mu;
  // Work that must not hold up the main loop (it handles link events): starts of sessions whose
  // namespace or target appeared, SIGHUP reloads.
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  std::deque<std::function<void()>> bg_tasks;
  bool bg_stop = false;
  std::thread bg;
  std::unique_ptr<ApiServer> http;
  // Bypasses in force (under mu), by id: applied to every mirror session, also to those that
  // start while it lasts. One per flow: bypassing a flow again (either way round) renews it.
  struct BypassEntry {
    Bypass flow;
    bpftap_flow_key key;  // as the mirror programs know it (both directions alike)
    Clock::time_point until;
    std::chrono::system_clock::time_point expires;
  };
  std::map<uint64_t, BypassEntry> bypasses;
  uint64_t next_bypass = 1;
  size_t fd_reserve = kSpareFds;  // + the API's connections
  std::atomic<uint64_t> budget_refusals{0};

  ~Impl() {
    if (http) http->shutdown();
    {
      std::lock_guard lock(bg_mu);
      bg_stop = true;
    }
    bg_cv.notify_all();
    if (bg.joinable()) bg.join();
    std::lock_guard lock(mu);
    sessions.clear();  // detaches everything
  }

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(bg_mu);
      bg_tasks.push_back(std::move(task));
    }
    bg_cv.notify_one();
  }

  void bg_loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(bg_mu);
        bg_cv.wait(lock, [&] { return bg_stop || !bg_tasks.empty(); });
        if (bg_stop) return;
        task = std::move(bg_tasks.front());
        bg_tasks.pop_front();
      }
      task();
    }
  }

  bool stopping() const { return opts.stop && opts.stop->load(); }

  // Refuses what would take the process past its descriptor budget (EMFILE: 503 to the API).
  // /proc/self/fd is counted at most every 100 ms: a session attaching to a thousand taps at
  // once charges them to the last count.
  std::mutex budget_mu;
  FdUsage counted;
  size_t charged = 0;
  Clock::time_point counted_at{};
  Result<> fd_budget(size_t need, const std::string &what) {
    FdUsage u;
    {
      std::lock_guard lock(budget_mu);
      auto now = Clock::now();
      if (now - counted_at > std::chrono::milliseconds(100)) {
        counted = fd_usage();
        counted_at = now;
        charged = 0;
      }
      u = counted;
      u.open += charged;
      if (u.limit == SIZE_MAX || u.open + need + fd_reserve <= u.limit) {
        charged += need;
        return {};
      }
    }
    budget_refusals++;
    return fail(fmt::format("{}: refused, the agent has {} of its {} file descriptors open and keeps {} for the API and "
                            "for detaching (raise LimitNOFILE)",
                            what, u.open, u.limit, fd_reserve),
                EMFILE);
  }

  // Starts watching a namespace's links (once): the watcher first, then the dump, so no link
  // that appears in between is missed. Under mu.
  Result<> watch(const std::string &netns) {
    if (spaces.count(netns)) return {};
    auto ns = Netns::open(netns);
    if (!ns) return tl::unexpected(ns.error());
    auto scope = NetnsScope::enter(*ns);
    if (!scope) return tl::unexpected(scope.error());
    auto w = LinkWatcher::open();
    if (!w) return tl::unexpected(w.error());
    auto now = current_links();
    if (!now) return tl::unexpected(now.error());
    Space sp{std::move(*ns), std::make_unique<LinkWatcher>(std::move(*w)), {}};
    for (const auto &l : *now) sp.links[l.ifindex] = l;
    spaces.emplace(netns, std::move(sp));
    if (!netns.empty()) spdlog::info("watching the interfaces of network namespace {}", netns);
    return {};
  }  // NOLINT(clang-analyzer-cplusplus.NewDeleteLeaks): a false positive, `spaces` owns the watcher

  // The watcher lost events (its socket buffer overflowed): compare with a fresh dump.
  void resync(const std::string &netns) {
    auto sp = spaces.find(netns);
    if (sp == spaces.end()) return;
    Result<std::vector<LinkEvent>> now = tl::unexpected(Error{});
    {
      auto scope = NetnsScope::enter(sp->second.ns);
      if (!scope) return spdlog::error("resync the links of {}: {}", netns_label(netns), scope.error().message());
      now = current_links();
    }
    if (!now) return spdlog::error("resync the links of {}: {}", netns_label(netns), now.error().message());
    spdlog::warn("link events of {} were lost: compared with a fresh list", netns_label(netns));
    std::set<uint32_t> present;
    for (const auto &l : *now) present.insert(l.ifindex);
    std::vector<LinkEvent> gone;
    for (const auto &[ifindex, l] : sp->second.links)
      if (!present.count(ifindex)) gone.push_back({false, ifindex, l.name, l.ethernet, l.flags});
    for (const auto &e : gone) on_link(netns, e);
    for (const auto &l : *now) on_link(netns, l);
  }

  // Stops watching namespaces no running session selects (the agent's own stays). Under mu.
  void unwatch_unused() {
    for (auto it = spaces.begin(); it != spaces.end();) {
      bool used = it->first.empty() || std::any_of(sessions.begin(), sessions.end(), [&](const auto &kv) {
                    return kv.second->config().netns == it->first;
                  });
      it = used ? std::next(it) : spaces.erase(it);
    }
  }

  static bool namespace_missing(const std::string &netns) {
    if (netns.empty()) return false;
    auto ns = Netns::open(netns);
    return !ns && ns.error().code == ENOENT;
  }

  // Builds a session (compiles its filter, loads its programs) without holding mu; nullptr when
  // its namespace does not exist (the session waits).
  Result<std::unique_ptr<Session>> build_session(const SessionConfig &c) {
    if (namespace_missing(c.netns)) return std::unique_ptr<Session>();
    if (auto b = fd_budget(kSessionFds, "session " + c.name); !b) return tl::unexpected(b.error());
    auto created = Session::create(c, opts.stop);
    if (created) return created;
    if (namespace_missing(c.netns)) return std::unique_ptr<Session>();  // gone meanwhile
    return tl::unexpected(created.error());
  }

  // Under mu: watches its namespace and attaches what it selects.
  Result<> install(std::unique_ptr<Session> s, const std::vector<InterfaceCounters> &previous = {}) {
    if (auto w = watch(s->config().netns); !w) return w;  // s detaches (it has nothing attached)
    std::string name = s->config().name;
    s->keep_counters(previous);
    if (s->is_mirror()) {
      const auto now = Clock::now();
      for (const auto &[id, e] : bypasses)
        if (e.until > now)
          (void)s->bypass(e.flow.proto, e.flow.src, e.flow.sport, e.flow.dst, e.flow.dport,
                          std::chrono::duration<double>(e.until - now).count());
    }
    attach_matching(*s);
    sessions[name] = std::move(s);
    spdlog::info("session {} started", name);
    return {};
  }

  void wait_for_namespace(const SessionConfig &c, std::vector<InterfaceCounters> counters = {}) {
    spdlog::warn("session {}: network namespace {} does not exist: the session waits for it", c.name, c.netns);
    for (auto &k : counters) k.attached = false;
    waiting[c.name] = Waiting{c, std::move(counters), "", {}, false};
  }

  // Every few hundred ms, under mu: sessions whose namespace was deleted (or replaced by a new
  // one of the same name) stop and wait; waiting sessions whose namespace appeared are started
  // in the background.
  void check_namespaces() {
    for (auto it = spaces.begin(); it != spaces.end();) {
      if (it->second.ns.still_named()) {
        ++it;
        continue;
      }
      const std::string netns = it->first;
      spdlog::warn("network namespace {} was deleted or replaced", netns);
      for (auto s = sessions.begin(); s != sessions.end();) {
        if (s->second->config().netns != netns) {
          ++s;
          continue;
        }
        auto counters = s->second->counters();
        SessionConfig c = s->second->config();
        s = sessions.erase(s);  // detaches (in the old namespace) and lets it go
        wait_for_namespace(c, std::move(counters));
      }
      it = spaces.erase(it);
    }
    const auto now = Clock::now();
    for (auto &[name, w] : waiting) {
      if (w.starting || now < w.retry_at || namespace_missing(w.cfg.netns)) continue;
      w.starting = true;
      post([this, name = name] { start_waiting(name); });
    }
    unwatch_unused();
  }

  // Background: a waiting session whose namespace exists now.
  void start_waiting(const std::string &name) {
    std::lock_guard change(change_mu);
    SessionConfig c;
    {
      std::lock_guard lock(mu);
      auto it = waiting.find(name);
      if (it == waiting.end()) return;
      c = it->second.cfg;
    }
    auto s = build_session(c);
    std::lock_guard lock(mu);
    auto it = waiting.find(name);
    if (it == waiting.end() || !(it->second.cfg == c)) return;  // deleted or changed meanwhile
    it->second.starting = false;
    if (s && *s) {
      spdlog::info("network namespace {} appeared", c.netns);
      auto counters = std::move(it->second.counters);
      waiting.erase(it);
      if (auto r = install(std::move(*s), counters); !r) {
        spdlog::error("session {}: {}", name, r.error().message());
        wait_for_namespace(c);
      }
      return;
    }
    if (!s) {
      // The namespace is there but the session cannot start (its target is not there yet?):
      // a start loads BPF objects, so try again in 5 s rather than every check.
      if (s.error().message() != it->second.last_error) spdlog::error("session {}: {}", name, s.error().message());
      it->second.last_error = s.error().message();
      it->second.retry_at = Clock::now() + std::chrono::seconds(5);
    }
  }

  // Background: a mirror session whose target came back (or whose VXLAN device went) starts
  // again with the same config and its counters.
  void restart(const std::string &name) {
    std::lock_guard change(change_mu);
    SessionConfig c;
    {
      std::lock_guard lock(mu);
      auto it = sessions.find(name);
      if (it == sessions.end() || !it->second->target_missing()) return;
      c = it->second->config();
    }
    auto s = build_session(c);
    if (!s || !*s) {
      spdlog::warn("session {}: restart failed ({}); it stays as it is", name,
                   s ? "its namespace is gone" : s.error().message());
      return;
    }
    std::lock_guard lock(mu);
    auto it = sessions.find(name);
    if (it == sessions.end() || !(it->second->config() == c)) return;
    auto counters = it->second->counters();
    (*s)->carry_counts(*it->second);
    sessions.erase(it);  // detaches before the new one attaches (the same tc hooks)
    if (auto r = install(std::move(*s), counters); !r) spdlog::error("session {}: {}", name, r.error().message());
    else spdlog::info("session {}: its target is back: restarted", name);
  }

  void attach_link(Session &s, const LinkEvent &l) {
    if (!l.ethernet || !s.wants(l.name) || s.attached(l.ifindex)) return;
    Result<> r = fd_budget(kInterfaceFds, "attach " + escape_bytes(l.name));
    if (r) r = s.attach(InterfaceInfo{l.name, l.ifindex, 1, 262144});
    if (!r) {
      s.count_attach_error();
      spdlog::warn("session {}: attach {}: {}", s.config().name, escape_bytes(l.name), r.error().message());
    } else {
      spdlog::info("session {}: attached {}{}", s.config().name, escape_bytes(l.name),
                   s.config().netns.empty() ? "" : " in network namespace " + s.config().netns);
    }
  }

  void attach_matching(Session &s) {
    auto sp = spaces.find(s.config().netns);
    if (sp == spaces.end()) return;
    for (const auto &[ifindex, l] : sp->second.links) attach_link(s, l);
  }

  void on_link(const std::string &netns, const LinkEvent &e) {
    auto sp = spaces.find(netns);
    if (sp == spaces.end()) return;
    auto &links = sp->second.links;
    auto ours = [&](const Session &s) { return s.config().netns == netns; };
    if (e.added) {
      auto it = links.find(e.ifindex);
      if (it != links.end() && it->second.name == e.name && it->second.flags == e.flags) return;  // nothing new
      if (it != links.end() && it->second.name != e.name)
        on_link(netns, {false, e.ifindex, it->second.name, it->second.ethernet, it->second.flags});  // renamed
      links[e.ifindex] = e;
      // New, or its state changed (it came up): sessions that could not attach to it try again.
      for (auto &[name, s] : sessions) {
        if (!ours(*s)) continue;
        attach_link(*s, e);
        if (s->target_missing() && !s->target_name().empty() && s->target_name() == e.name)
          post([this, name = name] { restart(name); });
      }
    } else {
      links.erase(e.ifindex);
      for (auto &[name, s] : sessions) {
        if (!ours(*s)) continue;
        if (s->attached(e.ifindex)) {
          s->detach(e.ifindex, true);
          spdlog::info("session {}: {} went away, detached (its counters are kept)", name, escape_bytes(e.name));
        }
        if (s->is_mirror() && s->target_ifindex() == e.ifindex && !s->target_missing()) {
          s->target_gone();
          std::string target = s->target_name().empty() ? escape_bytes(e.name) : s->target_name();
          spdlog::warn("session {}: its target {} went away: copies fail until it is back", name, target);
          if (s->target_name().empty()) post([this, name = name] { restart(name); });  // bpftap's VXLAN device: made again
        }
      }
    }
  }

  // Applies a new config (change_mu held): builds every new or changed session first, without
  // mu (if one fails, nothing changes); then stops removed sessions, restarts changed ones and
  // starts new ones.
  Result<std::string> apply(const AgentConfig &next) {
    std::map<std::string, SessionConfig> running;  // name -> config, running or waiting
    {
      std::lock_guard lock(mu);
      for (const auto &[name, s] : sessions) running[name] = s->config();
      for (const auto &[name, w] : waiting) running[name] = w.cfg;
    }
    std::map<std::string, std::unique_ptr<Session>> fresh;  // nullptr: waits for its namespace
    std::map<std::string, SessionConfig> fresh_cfg;
    for (const auto &c : next.sessions) {
      if (auto it = running.find(c.name); it != running.end() && it->second == c) continue;
      if (stopping()) return fail("stopping", EINTR);
      auto s = build_session(c);
      if (!s) return fail_in(s.error(), "session " + c.name);
      fresh[c.name] = std::move(*s);
      fresh_cfg[c.name] = c;
    }
    auto listed = [&](const std::string &name) {
      return std::any_of(next.sessions.begin(), next.sessions.end(), [&](const auto &c) { return c.name == name; });
    };
    int stopped = 0, started = 0, kept = 0;
    std::vector<std::unique_ptr<Session>> removed;  // let go of outside mu
    {
      std::lock_guard lock(mu);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (fresh.count(it->first)) {
          it = sessions.erase(it);  // replaced: detached before its successor attaches
          stopped++;
        } else if (!listed(it->first)) {
          removed.push_back(std::move(it->second));
          it = sessions.erase(it);
          stopped++;
        } else {
          ++it;
          kept++;
        }
      }
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (!listed(it->first) || fresh.count(it->first)) {
          it = waiting.erase(it);
        } else {
          ++it;
          kept++;
        }
      }
      for (auto &[name, s] : fresh) {
        if (!s) wait_for_namespace(fresh_cfg[name]);
        else if (auto r = install(std::move(s)); !r) spdlog::error("session {}: {}", name, r.error().message());
        started++;
      }
      unwatch_unused();
      if (!(next.api == cfg.api)) spdlog::warn("api settings changed: they take effect at the next start");
      cfg.sessions = next.sessions;
    }
    removed.clear();
    return fmt::format("{} sessions started or restarted, {} stopped or restarted, {} unchanged", started, stopped, kept);
  }

  Result<std::string> reload() {
    auto next = load_agent_config(opts.config_path);
    if (!next) return tl::unexpected(next.error());
    std::lock_guard change(change_mu);
    return apply(*next);
  }

  json session_json(const Session &s) {
    json j = json::parse(session_to_json(s.config()));
    SessionHealth h = s.health();
    j["state"] = h.failing ? "failing" : "running";
    if (h.failing) j["reason"] = h.reason;
    json ifs = json::array();
    for (const auto &c : s.counters()) ifs.push_back(counters_json(c, s.config()));
    j["counters"] = ifs;
    j["attach_errors"] = s.attach_errors();
    j["write_errors"] = h.write_errors;
    if (s.config().inspect) {
      j["alerts_dropped"] = h.alerts_dropped;
      j["flows_dropped"] = h.flows_dropped;
    }
    j["interfaces_gone"] = h.interfaces_gone;
    if (s.is_mirror()) j["target_lost"] = h.target_lost;
    return j;
  }

  json waiting_json(const Waiting &w) {
    json j = json::parse(session_to_json(w.cfg));
    j["state"] = "waiting";
    j["reason"] = w.last_error.empty() ? "network namespace " + w.cfg.netns + " does not exist" : w.last_error;
    json ifs = json::array();
    for (const auto &c : w.counters) ifs.push_back(counters_json(c, w.cfg));
    j["counters"] = ifs;
    return j;
  }

  // The session NAME as JSON, running or waiting; null if there is none. Under mu.
  json find_json(const std::string &name) {
    if (auto it = sessions.find(name); it != sessions.end()) return session_json(*it->second);
    if (auto it = waiting.find(name); it != waiting.end()) return waiting_json(it->second);
    return nullptr;
  }

  std::string metrics() {
    std::string out;
    std::lock_guard lock(mu);
    std::map<std::string, std::vector<InterfaceCounters>> all;
    std::map<std::string, SessionHealth> health;
    for (auto &[name, s] : sessions) {
      all[name] = s->counters();
      health[name] = s->health();
    }
    for (const auto &m : kCounters) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", m.metric, m.help, m.metric);
      for (auto &[name, s] : sessions) {
        if (!counts_in(m, s->is_mirror())) continue;
        const std::string session = label(name);  // (a lambda cannot capture a structured binding in C++20)
        auto line = [&](const InterfaceCounters &c, const std::string &dir, uint64_t v) {
          out += fmt::format("{}{{session=\"{}\",interface=\"{}\",direction=\"{}\"}} {}\n", m.metric, session,
                             label(c.name), dir, v);
        };
        const auto &sc = s->config();
        for (const auto &c : all[name]) {
          if (!c.direction.empty()) {
            line(c, c.direction, c.*(m.field));  // mirror sessions: a row per hook already
          } else if (m.hooked) {
            if (sc.ingress) line(c, "in", c.in.*(m.hooked));
            if (sc.egress) line(c, "out", c.out.*(m.hooked));
            // The perf transport's lost records have no direction: they get their own series.
            uint64_t hooks = c.in.*(m.hooked) + c.out.*(m.hooked);
            if (c.*(m.field) > hooks) line(c, "unknown", c.*(m.field) - hooks);
          } else {
            // Per interface (its capture file holds both directions): labelled with the hooks.
            line(c, sc.ingress && sc.egress ? "inout" : sc.ingress ? "in" : "out", c.*(m.field));
          }
        }
      }
    }
    out += "# HELP bpftap_attach_errors_total Interfaces a session failed to attach to.\n# TYPE bpftap_attach_errors_total counter\n";
    for (auto &[name, s] : sessions) out += fmt::format("bpftap_attach_errors_total{{session=\"{}\"}} {}\n", label(name), s->attach_errors());
    out += "# HELP bpftap_interfaces_attached Interfaces a session is attached to now.\n# TYPE bpftap_interfaces_attached gauge\n";
    for (auto &[name, s] : sessions) {
      size_t n = 0;
      for (const auto &c : all[name]) n += c.attached && c.direction != "out";
      out += fmt::format("bpftap_interfaces_attached{{session=\"{}\"}} {}\n", label(name), n);
    }
    enum class For { All, Inspect, Mirror };
    struct Health {
      const char *name, *type, *help;
      For only;
      uint64_t (*value)(const SessionHealth &);
    };
    static const Health hs[] = {
        {"bpftap_session_failing", "gauge", "1 while something the session should do fails (see the API's reason).",
         For::All, [](const SessionHealth &h) { return uint64_t{h.failing}; }},
        {"bpftap_write_errors_total", "counter", "Failed writes to the session's capture, alert and flow files.",
         For::All, [](const SessionHealth &h) { return h.write_errors; }},
        {"bpftap_alerts_dropped_total", "counter", "Alerts given up: more waited to be written than memory allows.",
         For::Inspect, [](const SessionHealth &h) { return h.alerts_dropped; }},
        {"bpftap_flows_dropped_total", "counter", "Flow records given up: more waited to be written than memory allows.",
         For::Inspect, [](const SessionHealth &h) { return h.flows_dropped; }},
        {"bpftap_interfaces_gone_total", "counter", "Attached interfaces that were deleted.",
         For::All, [](const SessionHealth &h) { return h.interfaces_gone; }},
        {"bpftap_mirror_target_lost_total", "counter", "Times the mirror target interface went away.",
         For::Mirror, [](const SessionHealth &h) { return h.target_lost; }},
    };
    for (const auto &h : hs) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", h.name, h.help, h.name, h.type);
      for (auto &[name, s] : sessions) {
        if ((h.only == For::Inspect && !s->config().inspect) || (h.only == For::Mirror && !s->is_mirror())) continue;
        out += fmt::format("{}{{session=\"{}\"}} {}\n", h.name, label(name), h.value(health[name]));
      }
    }
    struct Inspected {
      const char *name, *type, *help;
      uint64_t Session::InspectTotals::*field;
    };
    static const Inspected is[] = {
        {"bpftap_inspected_packets_total", "counter", "Packets the session's inspector decoded.", &Session::InspectTotals::packets},
        {"bpftap_flows_total", "counter", "Flows the session's inspector has seen begin.", &Session::InspectTotals::flows},
        {"bpftap_flows_active", "gauge", "Flows the session's inspector holds now.", &Session::InspectTotals::active_flows},
        {"bpftap_alerts_total", "counter", "Alerts the session's inspector raised.", &Session::InspectTotals::alerts},
    };
    std::map<std::string, Session::InspectTotals> inspected;
    for (auto &[name, s] : sessions)
      if (s->config().inspect) inspected[name] = s->inspect_totals();
    for (const auto &m : is) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
      for (const auto &[name, t] : inspected) out += fmt::format("{}{{session=\"{}\"}} {}\n", m.name, label(name), t.*(m.field));
    }
    struct Gauge {
      const char *name, *help;
      uint64_t RingUsage::*field;
    };
    static const Gauge rings[] = {
        {"bpftap_ring_buffer_bytes", "Kernel ring buffer memory of a capture session (all its interfaces).", &RingUsage::size},
        {"bpftap_ring_buffer_used_bytes", "Bytes waiting in the session's ring buffers at their last drain.", &RingUsage::used},
        {"bpftap_ring_buffer_peak_used_bytes", "The most bytes ever waiting in one of the session's ring buffers at a drain; at its size, copies are dropped.", &RingUsage::peak},
    };
    for (const auto &g : rings) {
      out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", g.name, g.help, g.name);
      for (auto &[name, s] : sessions)
        if (!s->is_mirror()) out += fmt::format("{}{{session=\"{}\"}} {}\n", g.name, label(name), s->ring_usage().*(g.field));
    }
    out += fmt::format("# HELP bpftap_sessions Sessions running.\n# TYPE bpftap_sessions gauge\nbpftap_sessions {}\n", sessions.size());
    out += fmt::format("# HELP bpftap_sessions_waiting Sessions waiting for their network namespace.\n"
                       "# TYPE bpftap_sessions_waiting gauge\nbpftap_sessions_waiting {}\n", waiting.size());
    FdUsage u = fd_usage();
    out += fmt::format("# HELP bpftap_open_fds File descriptors the agent has open.\n# TYPE bpftap_open_fds gauge\n"
                       "bpftap_open_fds {}\n", u.open);
    out += fmt::format("# HELP bpftap_fd_limit The agent's file descriptor limit (RLIMIT_NOFILE).\n# TYPE bpftap_fd_limit gauge\n"
                       "bpftap_fd_limit {}\n", u.limit);
    out += fmt::format("# HELP bpftap_fd_budget_refusals_total Sessions and interfaces refused to stay within the descriptor budget.\n"
                       "# TYPE bpftap_fd_budget_refusals_total counter\nbpftap_fd_budget_refusals_total {}\n", budget_refusals.load());
    ApiRefusals r = http->refusals();
    out += "# HELP bpftap_api_refused_total API connections refused before a handler saw them, by reason.\n"
           "# TYPE bpftap_api_refused_total counter\n";
    for (auto [reason, v] : {std::pair{"connections", r.connections}, {"client_connections", r.client_connections},
                             {"rate", r.rate}, {"timeout", r.timeout}, {"too_large", r.too_large},
                             {"bad_request", r.bad_request}, {"no_descriptor", r.no_descriptor}})
      out += fmt::format("bpftap_api_refused_total{{reason=\"{}\"}} {}\n", reason, v);
    out += fmt::format("# HELP bpftap_api_requests_total API requests answered by a handler.\n"
                       "# TYPE bpftap_api_requests_total counter\nbpftap_api_requests_total {}\n", http->served());
    out += fmt::format("# HELP bpftap_api_connections API connections open now.\n# TYPE bpftap_api_connections gauge\n"
                       "bpftap_api_connections {}\n", http->open_connections());
    return out;
  }

  // logrotate: capture, alert and flow files moved or deleted start anew under their names.
  void reopen_outputs() {
    std::lock_guard lock(mu);
    for (auto &[name, s] : sessions) s->reopen_outputs();
  }

  void forget_expired_bypasses() {
    const auto now = Clock::now();
    std::erase_if(bypasses, [&](const auto &kv) { return kv.second.until <= now; });
  }

  void setup_api() {
    auto authorized = [this](const httplib::Request &req, httplib::Response &res) {
      if (token.empty()) {
        res.status = 403;
        res.set_content(R"({"error":"writes are disabled: no api token_file is configured"})", "application/json");
        return false;
      }
      if (!constant_time_equal(req.get_header_value("Authorization"), "Bearer " + token)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer");
        res.set_content(R"({"error":"a valid bearer token is needed for writes"})", "application/json");
        return false;
      }
      return true;
    };
    auto error = [](httplib::Response &res, int status, const std::string &msg) {
      res.status = status;
      res.set_content(dump(json{{"error", msg}}), "application/json");
    };
    auto fail_with = [error](httplib::Response &res, const Error &e) { error(res, status_for(e), e.message()); };
    ApiServer &h = *http;
    // An audit line for every write, whoever sent it and whatever it got (GETs are not logged).
    h.set_logger([](const httplib::Request &req, const httplib::Response &res) {
      if (req.method == "GET" || req.method == "HEAD") return;
      std::string body = req.body.empty() ? "" : " " + escape_bytes(req.body.substr(0, 200));
      spdlog::info("api: {} {}{} from {}: {}", req.method, escape_bytes(req.path), body, req.remote_addr, res.status);
    });
    h.Get("/v1/sessions", [this](const httplib::Request &, httplib::Response &res) {
      std::lock_guard lock(mu);
      json j = json::array();
      for (auto &[name, s] : sessions) j.push_back(session_json(*s));
      for (auto &[name, w] : waiting) j.push_back(waiting_json(w));
      res.set_content(dump(j), "application/json");
    });
    h.Get(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, error](const httplib::Request &req, httplib::Response &res) {
      std::lock_guard lock(mu);
      json j = find_json(req.matches[1]);
      if (j.is_null()) return error(res, 404, "no such session");
      res.set_content(dump(j), "application/json");
    });
    h.Post("/v1/sessions", [this, authorized, error, fail_with](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto c = parse_session_json(req.body, "request");
      if (!c) return error(res, 400, c.error().message());
      std::lock_guard change(change_mu);
      {
        std::lock_guard lock(mu);
        if (sessions.count(c->name) || waiting.count(c->name)) return error(res, 409, "session " + c->name + " exists");
      }
      auto s = build_session(*c);  // compiles and loads: the lock is free meanwhile
      if (!s) return fail_with(res, s.error());
      std::lock_guard lock(mu);
      if (*s) {
        if (auto r = install(std::move(*s)); !r) return fail_with(res, r.error());
      } else {
        wait_for_namespace(*c);
      }
      res.status = 201;
      res.set_content(dump(find_json(c->name)), "application/json");
    });
    h.Put(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error, fail_with](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto c = parse_session_json(req.body, "request");
      if (!c) return error(res, 400, c.error().message());
      if (c->name != req.matches[1]) return error(res, 400, "the body's name differs from the URL's");
      std::lock_guard change(change_mu);
      {
        std::lock_guard lock(mu);
        if (!sessions.count(c->name) && !waiting.count(c->name)) return error(res, 404, "no such session");
      }
      auto s = build_session(*c);  // the old one runs on if the new one cannot start
      if (!s) return fail_with(res, s.error());
      std::lock_guard lock(mu);
      sessions.erase(c->name);  // detached before its successor attaches (the same tc hooks)
      waiting.erase(c->name);
      if (*s) {
        if (auto r = install(std::move(*s)); !r) {
          unwatch_unused();
          return fail_with(res, r.error());
        }
      } else {
        wait_for_namespace(*c);
      }
      unwatch_unused();
      res.set_content(dump(find_json(c->name)), "application/json");
    });
    h.Delete(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      std::lock_guard change(change_mu);
      std::unique_ptr<Session> gone;  // let go of outside mu
      {
        std::lock_guard lock(mu);
        auto it = sessions.find(req.matches[1]);
        if (it != sessions.end()) {
          gone = std::move(it->second);
          sessions.erase(it);
        } else if (!waiting.erase(req.matches[1])) {
          return error(res, 404, "no such session");
        }
        unwatch_unused();
      }
      gone.reset();
      res.status = 204;
    });
    h.Post("/v1/bypass", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto b = parse_bypass(req.body);
      if (!b) return error(res, 400, b.error().message());
      std::lock_guard lock(mu);
      int applied = 0;
      for (auto &[name, s] : sessions) {
        if (!s->is_mirror()) continue;
        if (auto r = s->bypass(b->proto, b->src, b->sport, b->dst, b->dport, b->seconds); !r)
          return error(res, status_for(r.error()), r.error().message());
        applied++;
      }
      auto span = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(b->seconds));
      auto expires = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(span);
      const auto key = make_flow_key(b->proto, b->src, b->sport, b->dst, b->dport);
      forget_expired_bypasses();
      auto same = std::find_if(bypasses.begin(), bypasses.end(),
                               [&](const auto &e) { return std::memcmp(&e.second.key, &key, sizeof(key)) == 0; });
      const bool renewed = same != bypasses.end();
      uint64_t id = renewed ? same->first : next_bypass++;
      Bypass flow = renewed ? same->second.flow : *b;  // listed as it was first given
      flow.seconds = b->seconds;
      res.status = renewed ? 200 : 201;
      bypasses[id] = BypassEntry{flow, key, Clock::now() + span, expires};
      res.set_content(dump(json{{"id", std::to_string(id)}, {"sessions", applied}, {"seconds", b->seconds},
                                {"expires", utc_time(expires)}}),
                      "application/json");
    });
    h.Get("/v1/bypass", [this](const httplib::Request &, httplib::Response &res) {
      std::lock_guard lock(mu);
      forget_expired_bypasses();
      json j = json::array();
      const auto now = Clock::now();
      for (const auto &[id, e] : bypasses) {
        json b{{"id", std::to_string(id)}, {"proto", proto_name(e.flow.proto)}, {"src", e.flow.src}, {"dst", e.flow.dst},
               {"expires", utc_time(e.expires)},
               {"seconds_left", std::chrono::duration<double>(e.until - now).count()}};
        if (e.flow.proto != IPPROTO_ICMP) {
          b["sport"] = e.flow.sport;
          b["dport"] = e.flow.dport;
        }
        j.push_back(std::move(b));
      }
      res.set_content(dump(j), "application/json");
    });
    h.Delete(R"(/v1/bypass/([0-9]{1,19}))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      std::lock_guard lock(mu);
      forget_expired_bypasses();
      auto it = bypasses.find(std::stoull(req.matches[1]));
      if (it == bypasses.end()) return error(res, 404, "no such bypass (it may have expired)");
      const Bypass &f = it->second.flow;
      for (auto &[name, s] : sessions)
        if (s->is_mirror()) s->unbypass(f.proto, f.src, f.sport, f.dst, f.dport);
      bypasses.erase(it);
      res.status = 204;
    });
    h.Post("/v1/reload", [this, authorized, fail_with](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;  // a body, if any, is not read: the config file is the source
      reopen_outputs();
      auto r = reload();
      if (!r) return fail_with(res, r.error());
      res.set_content(dump(json{{"result", *r}}), "application/json");
    });
    h.Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
  }
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::start(const AgentOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  // Privileges first: without them, every later step fails in its own confusing way (a config
  // the agent may not read included). Sessions in other namespaces also need CAP_SYS_ADMIN.
  if (auto p = check_privileges("agent", kPrivCapture); !p) return tl::unexpected(p.error());
  auto cfg = load_agent_config(opts.config_path);
  if (!cfg) return tl::unexpected(cfg.error());
  impl->cfg = *cfg;
  unsigned need = kPrivCapture;
  for (const auto &c : cfg->sessions)
    if (!c.netns.empty()) need |= kPrivSysAdmin;
  if (auto p = check_privileges("agent", need); !p) return tl::unexpected(p.error());
  size_t limit = raise_fd_limit();
  FdReserve::fill(kReserveFds);
  impl->fd_reserve = kSpareFds + kReserveFds + cfg->api.max_connections;
  if (limit < impl->fd_reserve + kSessionFds * 4)
    spdlog::warn("the file descriptor limit is {}: few sessions will fit (raise LimitNOFILE)", limit);
  auto token = read_token(cfg->api.token_file);
  if (!token) return tl::unexpected(token.error());
  impl->token = *token;
  // The API's socket first: a second agent on the same socket or port stops here, before
  // touching anything.
  ApiLimits limits;
  limits.max_connections = cfg->api.max_connections;
  limits.max_client_connections = cfg->api.max_client_connections;
  limits.requests_per_second = cfg->api.requests_per_second;
  limits.request_timeout = std::chrono::seconds(cfg->api.request_timeout_s);
  limits.max_body_bytes = size_t{cfg->api.max_body_kb} * 1024;
  impl->http = std::make_unique<ApiServer>(limits);
  if (cfg->api.listen.starts_with("unix:")) {
    if (auto r = impl->http->listen_unix(cfg->api.listen.substr(5)); !r) return tl::unexpected(r.error());
  } else {
    if (auto r = impl->http->listen_tcp(cfg->api.listen); !r) return tl::unexpected(r.error());
    if (!loopback_listen(cfg->api.listen))
      spdlog::warn("the API listens on {}, which other hosts can reach (allow_remote: true): it has no TLS, the bearer "
                   "token travels in clear; prefer 127.0.0.1 or a unix socket behind a proxy",
                   cfg->api.listen);
  }
  // A previous instance that crashed may have left tc filters and VXLAN devices, in its own
  // namespace and in those its sessions selected.
  std::set<std::string> namespaces{""};
  for (const auto &c : cfg->sessions) namespaces.insert(c.netns);
  for (const auto &name : namespaces) {
    auto ns = Netns::open(name);
    if (!ns) continue;  // the session that names it reports that, below
    auto scope = NetnsScope::enter(*ns);
    if (!scope) return tl::unexpected(scope.error());
    if (auto r = cleanup_leftovers(); r) {
      for (const auto &line : r->removed) spdlog::info("removed leftover {} in {}", line, netns_label(name));
      for (const auto &line : r->skipped) spdlog::warn("{} (in {})", line, netns_label(name));
    }
    if (auto r = cleanup_vxlan_devices(); r)
      for (const auto &line : *r) spdlog::info("removed leftover {} in {}", line, netns_label(name));
  }
  {
    std::lock_guard lock(impl->mu);
    if (auto r = impl->watch(""); !r) return tl::unexpected(r.error());
  }
  for (const auto &c : cfg->sessions) {
    auto s = impl->build_session(c);
    if (!s) return fail_in(s.error(), "session " + c.name);
    std::lock_guard lock(impl->mu);
    if (!*s) impl->wait_for_namespace(c);
    else if (auto r = impl->install(std::move(*s)); !r)
      return fail_in(r.error(), "session " + c.name);
  }
  impl->setup_api();
  impl->http->start();
  Impl *raw = impl.get();
  impl->bg = std::thread([raw] { raw->bg_loop(); });
  spdlog::info("agent ready: {} sessions, api on {}", cfg->sessions.size(), cfg->api.listen);
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Result<> Agent::run(const std::atomic<bool> &stop, std::atomic<bool> &reload) {
  Impl &im = *impl_;
  auto last_tick = Clock::now();
  std::vector<pollfd> fds;
  std::vector<std::string> names;
  auto last_ns_check = Clock::now();
  while (!stop.load()) {
    fds.clear();
    names.clear();
    {
      std::lock_guard lock(im.mu);
      for (const auto &[name, sp] : im.spaces) {
        fds.push_back({sp.watcher->fd(), POLLIN, 0});
        names.push_back(name);
      }
    }
    poll(fds.data(), fds.size(), 100);
    for (size_t i = 0; i < fds.size(); i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      std::lock_guard lock(im.mu);
      auto sp = im.spaces.find(names[i]);  // the API may have stopped watching it meanwhile
      if (sp == im.spaces.end() || sp->second.watcher->fd() != fds[i].fd) continue;
      for (const auto &e : sp->second.watcher->read()) im.on_link(names[i], e);
      if (sp->second.watcher->overflowed()) im.resync(names[i]);
    }
    if (Clock::now() - last_ns_check > std::chrono::milliseconds(250)) {
      std::lock_guard lock(im.mu);
      im.check_namespaces();
      last_ns_check = Clock::now();
    }
    if (reload.exchange(false)) {
      // SIGHUP: output files first (logrotate), at once; the config in the background.
      im.reopen_outputs();
      spdlog::info("SIGHUP: output files reopened; reloading {}", im.opts.config_path);
      im.post([&im] {
        auto r = im.reload();
        if (r) spdlog::info("reloaded {}: {}", im.opts.config_path, *r);
        else spdlog::error("reload refused, the running sessions stay: {}", r.error().message());
      });
    }
    if (Clock::now() - last_tick > std::chrono::seconds(1)) {
      std::lock_guard lock(im.mu);
      for (auto &[name, s] : im.sessions) s->tick();
      last_tick = Clock::now();
    }
  }
  spdlog::info("stopping: detaching every session");
  return {};
}

} // namespace bpftap::agent
