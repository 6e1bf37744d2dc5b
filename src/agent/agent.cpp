// The agent's start and main loop, and the lifecycle of its sessions: built (compiled and
// loaded) without mu, installed under it, restarted, waiting for their namespace; reload.
#include "agent/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/agent_impl.h"
#include "kernel/attach.h"
#include "kernel/netns.h"
#include "kernel/privileges.h"
#include "mirror/vxlan.h"
#include "util/fd.h"
#include "util/fds.h"

namespace bpftap::agent {
namespace {

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

} // namespace

Agent::Impl::~Impl() {
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

void Agent::Impl::post(std::function<void()> task) {
  {
    std::lock_guard lock(bg_mu);
    bg_tasks.push_back(std::move(task));
  }
  bg_cv.notify_one();
}

void Agent::Impl::bg_loop() {
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

// Refuses what would take the process past its descriptor budget (EMFILE: 503 to the API).
// /proc/self/fd is counted at most every 100 ms: a session attaching to a thousand taps at
// once charges them to the last count.
Result<> Agent::Impl::fd_budget(size_t need, const std::string &what) {
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

// Builds a session (compiles its filter, loads its programs) without holding mu; nullptr when
// its namespace does not exist (the session waits).
Result<std::unique_ptr<Session>> Agent::Impl::build_session(const SessionConfig &c) {
  if (namespace_missing(c.netns)) return std::unique_ptr<Session>();
  if (auto b = fd_budget(kSessionFds, "session " + c.name); !b) return tl::unexpected(b.error());
  auto created = Session::create(c, opts.stop, pins ? pins->path() : std::string());
  if (created) return created;
  if (namespace_missing(c.netns)) return std::unique_ptr<Session>();  // gone meanwhile
  return tl::unexpected(created.error());
}

// Under mu: watches its namespace and attaches what it selects.
Result<> Agent::Impl::install(std::unique_ptr<Session> s, const std::vector<InterfaceCounters> &previous) {
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

void Agent::Impl::wait_for_namespace(const SessionConfig &c, std::vector<InterfaceCounters> counters) {
  spdlog::warn("session {}: network namespace {} does not exist: the session waits for it", c.name, c.netns);
  for (auto &k : counters) k.attached = false;
  waiting[c.name] = Waiting{c, std::move(counters), "", {}, false};
}

// Background: a waiting session whose namespace exists now.
void Agent::Impl::start_waiting(const std::string &name) {
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
void Agent::Impl::restart(const std::string &name) {
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

std::vector<Agent::Impl::Yielded> Agent::Impl::yield_vxlan(const std::vector<SessionConfig> &incoming,
                                                           const std::function<bool(const SessionConfig &)> &keeps) {
  std::vector<Yielded> yielded;
  std::vector<std::unique_ptr<Session>> stopped;  // let go of outside mu (declared first: destroyed last)
  std::lock_guard lock(mu);
  for (auto it = sessions.begin(); it != sessions.end();) {
    const SessionConfig &old = it->second->config();
    auto clashes = [&](const SessionConfig &c) { return vxlan_clash(old, c); };
    if (keeps(old) || std::none_of(incoming.begin(), incoming.end(), clashes)) {
      ++it;
      continue;
    }
    spdlog::info("session {}: stopped first, so that its VNI {} can go to another sensor", old.name, *old.mirror->vni);
    yielded.push_back({old, it->second->counters()});
    stopped.push_back(std::move(it->second));
    it = sessions.erase(it);
  }
  return yielded;
}

void Agent::Impl::restore(std::vector<Yielded> yielded) {
  for (auto &y : yielded) {
    auto s = build_session(y.cfg);
    std::lock_guard lock(mu);
    if (!s) spdlog::error("session {}: could not start it again: {}", y.cfg.name, s.error().message());
    else if (!*s) wait_for_namespace(y.cfg, std::move(y.counters));
    else if (auto r = install(std::move(*s), y.counters); !r)
      spdlog::error("session {}: could not start it again: {}", y.cfg.name, r.error().message());
    else spdlog::info("session {}: started again", y.cfg.name);
  }
}

// Applies a new config (change_mu held): builds every new or changed session first, without
// mu (if one fails, nothing changes); then stops removed sessions, restarts changed ones and
// starts new ones.
Result<std::string> Agent::Impl::apply(const AgentConfig &next) {
  std::map<std::string, SessionConfig> running;  // name -> config, running or waiting
  {
    std::lock_guard lock(mu);
    for (const auto &[name, s] : sessions) running[name] = s->config();
    for (const auto &[name, w] : waiting) running[name] = w.cfg;
  }
  std::vector<SessionConfig> changed;
  for (const auto &c : next.sessions)
    if (auto it = running.find(c.name); it == running.end() || !(it->second == c)) changed.push_back(c);
  // Sessions replaced or removed whose VNI a changed one takes to another sensor stop first
  // (the kernel allows one VXLAN device per VNI and port); they start again if a build fails.
  auto yielded = yield_vxlan(changed, [&](const SessionConfig &old) {
    return std::any_of(next.sessions.begin(), next.sessions.end(), [&](const auto &c) { return c == old; });
  });
  std::map<std::string, std::unique_ptr<Session>> fresh;  // nullptr: waits for its namespace
  std::map<std::string, SessionConfig> fresh_cfg;
  for (const auto &c : changed) {
    auto s = stopping() ? Result<std::unique_ptr<Session>>(fail("stopping", EINTR)) : build_session(c);
    if (!s) {
      fresh.clear();  // their devices and hooks go before the yielded sessions come back
      restore(std::move(yielded));
      return fail_in(s.error(), "session " + c.name);
    }
    fresh[c.name] = std::move(*s);
    fresh_cfg[c.name] = c;
  }
  auto listed = [&](const std::string &name) {
    return std::any_of(next.sessions.begin(), next.sessions.end(), [&](const auto &c) { return c.name == name; });
  };
  int stopped = static_cast<int>(yielded.size()), started = 0, kept = 0;
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

Result<std::string> Agent::Impl::reload() {
  auto next = load_agent_config(opts.config_path);
  if (!next) return tl::unexpected(next.error());
  std::lock_guard change(change_mu);
  return apply(*next);
}

// logrotate: capture, alert and flow files moved or deleted start anew under their names.
void Agent::Impl::reopen_outputs() {
  std::lock_guard lock(mu);
  for (auto &[name, s] : sessions) s->reopen_outputs();
}

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
  // A previous instance killed with SIGKILL left its TCX links pinned, attached: they go (a
  // running agent's stay). Then this one's pin directory, before any session attaches.
  if (auto r = cleanup_dead_agent_pins(); r) {
    for (const auto &line : r->removed) spdlog::info("removed leftover {}", line);
    for (const auto &line : r->skipped) spdlog::info("{}", line);  // another agent's, running: as it should be
  }
  if (auto p = PinDir::create(); p) impl->pins = std::move(*p);
  else
    spdlog::warn("TCX links are not pinned ({}): the agent holds a descriptor for each hook instead", p.error().message());
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
