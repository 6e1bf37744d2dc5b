#include "agent/agent.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "agent/config.h"
#include "agent/netlink.h"
#include "agent/session.h"
#include "kernel/attach.h"
#include "kernel/netns.h"
#include "mirror/vxlan.h"

namespace bpftap::agent {
namespace {

using json = nlohmann::ordered_json;

Result<std::string> read_token(const std::string &path) {
  if (path.empty()) return std::string();
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return tl::unexpected(Error{errno, "api token_file " + path, true});
  if ((st.st_mode & 0777) != 0600)
    return bad_input(fmt::format("api token_file {} has mode {:04o}; it must be 0600", path, st.st_mode & 0777));
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return bad_input(fmt::format("api token_file {}: the token must be at least 16 characters", path));
  return token;
}

std::string label(const std::string &v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

json counters_json(const InterfaceCounters &c, bool mirror) {
  json j;
  j["interface"] = c.name;
  if (!c.direction.empty()) j["direction"] = c.direction;
  j["attached"] = c.attached;
  j["matched"] = c.matched;
  if (mirror) {
    j["bytes_matched"] = c.bytes;
    j["mirrored"] = c.mirrored;
    j["bytes_mirrored"] = c.mirrored_bytes;
    j["failed"] = c.failed;
    j["truncated"] = c.truncated;
    j["cut_off"] = c.cut_off;
    j["sampled_out"] = c.sampled_out;
    j["bypassed"] = c.bypassed;
  } else {
    j["captured"] = c.captured;
    j["dropped"] = c.dropped;
  }
  return j;
}

// cpp-httplib 0.11 listens on TCP only; its listening socket is a protected member, so a unix
// socket bound here serves the same handlers.
class ApiServer : public httplib::Server {
public:
  ~ApiServer() override {
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }
  // A socket file of mode 0600 at `path`; a stale one (nobody listening) is replaced.
  Result<> bind_unix(const std::string &path) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return bad_input(fmt::format("api listen {}: exists and is not a socket", path));
      FD probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!probe) return fail_errno("api: open a unix socket", errno);
      if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) == 0)
        return fail(fmt::format("api listen {}: another process (an agent already running?) listens there", path));
      if (errno != ECONNREFUSED) return fail_errno("api listen " + path + ": cannot tell whether it is in use", errno);
      ::unlink(path.c_str());  // stale: left by an agent that was killed
    }
    FD fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("api: open a unix socket", errno);
    if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0)
      return fail_errno("api: bind " + path, errno);
    unix_path_ = path;
    if (::chmod(path.c_str(), 0600) != 0) return fail_errno("api: chmod 0600 " + path, errno);
    if (::listen(fd.get(), 128) != 0) return fail_errno("api: listen on " + path, errno);
    svr_sock_ = fd.release();  // the server closes it in stop()
    return {};
  }

private:
  std::string unix_path_;
};

} // namespace

struct Agent::Impl {
  AgentOptions opts;
  AgentConfig cfg;
  std::string token;
  std::mutex mu;  // sessions, spaces
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
    std::chrono::steady_clock::time_point retry_at{};  // after such a failure: not before this
  };
  std::map<std::string, Waiting> waiting;
  ApiServer http;
  std::thread http_thread;

  ~Impl() {
    http.stop();
    if (http_thread.joinable()) http_thread.join();
    std::lock_guard lock(mu);
    sessions.clear();  // detaches everything
  }

  // Starts watching a namespace's links (once): the watcher first, then the dump, so no link
  // that appears in between is missed.
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

  // Stops watching namespaces no running session selects (the agent's own stays).
  void unwatch_unused() {
    for (auto it = spaces.begin(); it != spaces.end();) {
      bool used = it->first.empty() || std::any_of(sessions.begin(), sessions.end(), [&](const auto &kv) {
                    return kv.second->config().netns == it->first;
                  });
      it = used ? std::next(it) : spaces.erase(it);
    }
  }

  bool namespace_missing(const std::string &netns) {
    if (netns.empty()) return false;
    auto ns = Netns::open(netns);
    return !ns && ns.error().code == ENOENT;
  }

  // A started session, or nullptr when its namespace does not exist (the session waits).
  Result<std::unique_ptr<Session>> create_session(const SessionConfig &c) {
    if (namespace_missing(c.netns)) return std::unique_ptr<Session>();
    auto s = watch(c.netns);
    if (s) {
      auto created = Session::create(c);
      if (created) return created;
      s = tl::unexpected(created.error());
    }
    if (namespace_missing(c.netns)) return std::unique_ptr<Session>();  // gone meanwhile
    return tl::unexpected(s.error());
  }

  void start(std::unique_ptr<Session> s, const std::vector<InterfaceCounters> &previous = {}) {
    std::string name = s->config().name;
    s->keep_counters(previous);
    attach_matching(*s);
    sessions[name] = std::move(s);
    spdlog::info("session {} started", name);
  }

  void wait_for_namespace(const SessionConfig &c, std::vector<InterfaceCounters> counters = {}) {
    spdlog::warn("session {}: network namespace {} does not exist: the session waits for it", c.name, c.netns);
    for (auto &k : counters) k.attached = false;
    waiting[c.name] = Waiting{c, std::move(counters), ""};
  }

  // Every few hundred ms: sessions whose namespace was deleted (or replaced by a new one of the
  // same name) stop and wait; waiting sessions whose namespace appeared start.
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
    const auto now = std::chrono::steady_clock::now();
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (now < it->second.retry_at) {
        ++it;
        continue;
      }
      auto s = create_session(it->second.cfg);
      if (!s) {
        // The namespace is there but the session cannot start (its target is not there yet?):
        // a start loads BPF objects, so try again in 5 s rather than every check.
        if (s.error().message() != it->second.last_error)
          spdlog::error("session {}: {}", it->first, s.error().message());
        it->second.last_error = s.error().message();
        it->second.retry_at = now + std::chrono::seconds(5);
        ++it;
        continue;
      }
      if (!*s) {
        ++it;
        continue;
      }
      spdlog::info("network namespace {} appeared", it->second.cfg.netns);
      start(std::move(*s), it->second.counters);
      it = waiting.erase(it);
    }
    unwatch_unused();
  }

  void attach_link(Session &s, const LinkEvent &l) {
    if (!l.ethernet || !s.wants(l.name) || s.attached(l.ifindex)) return;
    auto r = s.attach(InterfaceInfo{l.name, l.ifindex, 1, 262144});
    if (!r) {
      s.count_attach_error();
      spdlog::warn("session {}: attach {}: {}", s.config().name, l.name, r.error().message());
    } else {
      spdlog::info("session {}: attached {}{}", s.config().name, l.name,
                   s.config().netns.empty() ? "" : " in network namespace " + s.config().netns);
    }
  }

  void attach_matching(Session &s) {
    auto sp = spaces.find(s.config().netns);
    if (sp == spaces.end()) return;
    for (const auto &[ifindex, l] : sp->second.links) attach_link(s, l);
  }

  Result<> add_session(const SessionConfig &c) {
    auto s = create_session(c);
    if (!s) return tl::unexpected(s.error());
    if (*s) start(std::move(*s));
    else wait_for_namespace(c);
    return {};
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
      for (auto &[name, s] : sessions)
        if (ours(*s)) attach_link(*s, e);
    } else {
      links.erase(e.ifindex);
      for (auto &[name, s] : sessions)
        if (ours(*s) && s->attached(e.ifindex)) {
          s->detach(e.ifindex);
          spdlog::info("session {}: {} went away, detached (its counters are kept)", name, e.name);
        }
    }
  }

  // Applies a new config: stops removed sessions, restarts changed ones, starts new ones.
  Result<std::string> apply(const AgentConfig &next) {
    // Build every new or changed session first: if one fails, nothing changes.
    std::map<std::string, std::unique_ptr<Session>> fresh;  // nullptr: waits for its namespace
    std::map<std::string, SessionConfig> fresh_cfg;
    for (const auto &c : next.sessions) {
      auto it = sessions.find(c.name);
      if (it != sessions.end() && it->second->config() == c) continue;
      auto w = waiting.find(c.name);
      if (w != waiting.end() && w->second.cfg == c) continue;
      auto s = create_session(c);
      if (!s) {
        unwatch_unused();
        return tl::unexpected(s.error());
      }
      fresh[c.name] = std::move(*s);
      fresh_cfg[c.name] = c;
    }
    int stopped = 0, started = 0, kept = 0;
    auto listed = [&](const std::string &name) {
      return std::any_of(next.sessions.begin(), next.sessions.end(), [&](const auto &c) { return c.name == name; });
    };
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (!listed(it->first) || fresh.count(it->first)) {
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
      if (s) start(std::move(s));
      else wait_for_namespace(fresh_cfg[name]);
      started++;
    }
    unwatch_unused();
    cfg.sessions = next.sessions;
    if (!(next.api == cfg.api)) spdlog::warn("api settings changed: they take effect at the next start");
    return fmt::format("{} sessions started or restarted, {} stopped or restarted, {} unchanged", started, stopped, kept);
  }

  Result<std::string> reload() {
    auto next = load_agent_config(opts.config_path);
    if (!next) return tl::unexpected(next.error());
    std::lock_guard lock(mu);
    return apply(*next);
  }

  json session_json(const Session &s) {
    json j = json::parse(session_to_json(s.config()));
    j["state"] = "running";
    json ifs = json::array();
    for (const auto &c : s.counters()) ifs.push_back(counters_json(c, s.is_mirror()));
    j["counters"] = ifs;
    j["attach_errors"] = s.attach_errors();
    return j;
  }

  json waiting_json(const Waiting &w) {
    json j = json::parse(session_to_json(w.cfg));
    j["state"] = "waiting";
    j["reason"] = w.last_error.empty() ? "network namespace " + w.cfg.netns + " does not exist" : w.last_error;
    json ifs = json::array();
    for (const auto &c : w.counters) ifs.push_back(counters_json(c, w.cfg.mirror.has_value()));
    j["counters"] = ifs;
    return j;
  }

  // The session NAME as JSON, running or waiting; null if there is none.
  json find_json(const std::string &name) {
    if (auto it = sessions.find(name); it != sessions.end()) return session_json(*it->second);
    if (auto it = waiting.find(name); it != waiting.end()) return waiting_json(it->second);
    return nullptr;
  }

  std::string metrics() {
    std::string out;
    struct Metric {
      const char *name, *help;
      uint64_t InterfaceCounters::*field;
      bool mirror_only, capture_only;
    };
    static const Metric ms[] = {
        {"bpftap_packets_matched_total", "Packets accepted by the session's filter (and rules).", &InterfaceCounters::matched, false, false},
        {"bpftap_bytes_matched_total", "Bytes of matched packets (mirror sessions).", &InterfaceCounters::bytes, true, false},
        {"bpftap_packets_mirrored_total", "Copies sent to the mirror target.", &InterfaceCounters::mirrored, true, false},
        {"bpftap_bytes_mirrored_total", "Bytes of copies sent to the mirror target (after truncation).", &InterfaceCounters::mirrored_bytes, true, false},
        {"bpftap_mirror_failed_total", "Copies that could not be sent (originals are unaffected).", &InterfaceCounters::failed, true, false},
        {"bpftap_packets_truncated_total", "Copies cut to the snaplen.", &InterfaceCounters::truncated, true, false},
        {"bpftap_packets_cut_off_total", "Matched packets past their flow's cutoff.", &InterfaceCounters::cut_off, true, false},
        {"bpftap_packets_sampled_out_total", "Matched packets of flows not in the sample.", &InterfaceCounters::sampled_out, true, false},
        {"bpftap_packets_bypassed_total", "Matched packets of bypassed flows.", &InterfaceCounters::bypassed, true, false},
        {"bpftap_packets_captured_total", "Packets captured (written / inspected).", &InterfaceCounters::captured, false, true},
        {"bpftap_packets_dropped_total", "Copies the kernel could not hand to bpftap (ring buffer full).", &InterfaceCounters::dropped, false, true},
    };
    std::lock_guard lock(mu);
    std::map<std::string, std::vector<InterfaceCounters>> all;
    for (auto &[name, s] : sessions) all[name] = s->counters();
    for (const auto &m : ms) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", m.name, m.help, m.name);
      for (auto &[name, s] : sessions) {
        if ((m.mirror_only && !s->is_mirror()) || (m.capture_only && s->is_mirror())) continue;
        for (const auto &c : all[name])
          out += fmt::format("{}{{session=\"{}\",interface=\"{}\",direction=\"{}\"}} {}\n", m.name, label(name),
                             label(c.name), c.direction.empty() ? "both" : c.direction, c.*(m.field));
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
    return out;
  }

  void setup_api() {
    auto authorized = [this](const httplib::Request &req, httplib::Response &res) {
      if (token.empty()) {
        res.status = 403;
        res.set_content(R"({"error":"writes are disabled: no api token_file is configured"})", "application/json");
        return false;
      }
      if (req.get_header_value("Authorization") != "Bearer " + token) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer");
        res.set_content(R"({"error":"a valid bearer token is needed for writes"})", "application/json");
        return false;
      }
      return true;
    };
    auto error = [](httplib::Response &res, int status, const std::string &msg) {
      res.status = status;
      res.set_content(json{{"error", msg}}.dump(), "application/json");
    };
    http.Get("/v1/sessions", [this](const httplib::Request &, httplib::Response &res) {
      std::lock_guard lock(mu);
      json j = json::array();
      for (auto &[name, s] : sessions) j.push_back(session_json(*s));
      for (auto &[name, w] : waiting) j.push_back(waiting_json(w));
      res.set_content(j.dump(), "application/json");
    });
    http.Get(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, error](const httplib::Request &req, httplib::Response &res) {
      std::lock_guard lock(mu);
      json j = find_json(req.matches[1]);
      if (j.is_null()) return error(res, 404, "no such session");
      res.set_content(j.dump(), "application/json");
    });
    http.Post("/v1/sessions", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto c = parse_session_text(req.body, "request");
      if (!c) return error(res, 400, c.error().message());
      std::lock_guard lock(mu);
      if (sessions.count(c->name) || waiting.count(c->name)) return error(res, 409, "session " + c->name + " exists");
      auto r = add_session(*c);
      unwatch_unused();
      if (!r) return error(res, r.error().bad_input ? 400 : 500, r.error().message());
      res.status = 201;
      res.set_content(find_json(c->name).dump(), "application/json");
    });
    http.Put(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto c = parse_session_text(req.body, "request");
      if (!c) return error(res, 400, c.error().message());
      if (c->name != req.matches[1]) return error(res, 400, "the body's name differs from the URL's");
      std::lock_guard lock(mu);
      if (!sessions.count(c->name) && !waiting.count(c->name)) return error(res, 404, "no such session");
      auto s = create_session(*c);  // the old one runs on if the new one cannot start
      if (!s) {
        unwatch_unused();
        return error(res, s.error().bad_input ? 400 : 500, s.error().message());
      }
      sessions.erase(c->name);
      waiting.erase(c->name);
      if (*s) start(std::move(*s));
      else wait_for_namespace(*c);
      unwatch_unused();
      res.set_content(find_json(c->name).dump(), "application/json");
    });
    http.Delete(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      std::lock_guard lock(mu);
      if (!sessions.erase(req.matches[1]) && !waiting.erase(req.matches[1])) return error(res, 404, "no such session");
      unwatch_unused();
      res.status = 204;
    });
    http.Post("/v1/bypass", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      json b = json::parse(req.body, nullptr, false);
      if (b.is_discarded() || !b.is_object()) return error(res, 400, "expected a JSON object");
      std::string proto = b.value("proto", "tcp");
      uint8_t p = proto == "tcp" ? IPPROTO_TCP : proto == "udp" ? IPPROTO_UDP : proto == "icmp" ? IPPROTO_ICMP : 0;
      if (!p) return error(res, 400, "proto must be tcp, udp or icmp");
      double seconds = b.value("seconds", 60.0);
      if (seconds <= 0 || seconds > 86400) return error(res, 400, "seconds must be in (0, 86400]");
      std::string src = b.value("src", ""), dst = b.value("dst", "");
      auto sport = static_cast<uint16_t>(b.value("sport", 0)), dport = static_cast<uint16_t>(b.value("dport", 0));
      std::lock_guard lock(mu);
      int applied = 0;
      for (auto &[name, s] : sessions) {
        if (!s->is_mirror()) continue;
        if (auto r = s->bypass(p, src, sport, dst, dport, seconds); !r) return error(res, 400, r.error().message());
        applied++;
      }
      res.set_content(json{{"sessions", applied}, {"seconds", seconds}}.dump(), "application/json");
    });
    http.Post("/v1/reload", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
      if (!authorized(req, res)) return;
      auto r = reload();
      if (!r) return error(res, 400, r.error().message());
      res.set_content(json{{"result", *r}}.dump(), "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
  }
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::start(const AgentOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  auto cfg = load_agent_config(opts.config_path);
  if (!cfg) return tl::unexpected(cfg.error());
  impl->cfg = *cfg;
  auto token = read_token(cfg->api.token_file);
  if (!token) return tl::unexpected(token.error());
  impl->token = *token;
  // The API's socket first: a second agent on the same socket stops here, before touching
  // anything.
  if (cfg->api.listen.starts_with("unix:")) {
    if (auto r = impl->http.bind_unix(cfg->api.listen.substr(5)); !r) return tl::unexpected(r.error());
  } else {
    auto colon = cfg->api.listen.rfind(':');
    std::string host = cfg->api.listen.substr(0, colon);
    int port = std::atoi(cfg->api.listen.substr(colon + 1).c_str());
    if (!impl->http.bind_to_port(host.c_str(), port))
      return fail(fmt::format("api: cannot listen on {} (in use?)", cfg->api.listen), errno);
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
    if (auto r = cleanup_leftovers(); r)
      for (const auto &line : r->removed) spdlog::info("removed leftover {} in {}", line, netns_label(name));
    if (auto r = cleanup_vxlan_devices(); r)
      for (const auto &line : *r) spdlog::info("removed leftover {} in {}", line, netns_label(name));
  }
  {
    std::lock_guard lock(impl->mu);
    if (auto r = impl->watch(""); !r) return tl::unexpected(r.error());
  }
  {
    std::lock_guard lock(impl->mu);
    for (const auto &c : cfg->sessions)
      if (auto r = impl->add_session(c); !r)
        return tl::unexpected(Error{r.error().code, "session " + c.name + ": " + r.error().what, r.error().bad_input});
  }
  impl->setup_api();
  Impl *raw = impl.get();
  impl->http_thread = std::thread([raw] { raw->http.listen_after_bind(); });
  // stop() does nothing until the server runs: wait for it, so an early SIGTERM cannot hang.
  for (int i = 0; i < 2000 && !impl->http.is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("agent ready: {} sessions, api on {}", cfg->sessions.size(), cfg->api.listen);
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Result<> Agent::run(const std::atomic<bool> &stop, std::atomic<bool> &reload) {
  Impl &im = *impl_;
  auto last_tick = std::chrono::steady_clock::now();
  std::vector<pollfd> fds;
  std::vector<std::string> names;
  auto last_ns_check = std::chrono::steady_clock::now();
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
    if (std::chrono::steady_clock::now() - last_ns_check > std::chrono::milliseconds(250)) {
      std::lock_guard lock(im.mu);
      im.check_namespaces();
      last_ns_check = std::chrono::steady_clock::now();
    }
    if (reload.exchange(false)) {
      auto r = im.reload();
      if (r) spdlog::info("reloaded {}: {}", im.opts.config_path, *r);
      else spdlog::error("reload refused, the running sessions stay: {}", r.error().message());
    }
    if (std::chrono::steady_clock::now() - last_tick > std::chrono::seconds(1)) {
      std::lock_guard lock(im.mu);
      for (auto &[name, s] : im.sessions) s->tick();
      last_tick = std::chrono::steady_clock::now();
    }
  }
  spdlog::info("stopping: detaching every session");
  return {};
}

} // namespace bpftap::agent
