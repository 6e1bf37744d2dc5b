// Agent::Impl, the agent's state, shared by its files:
//   agent.cpp       start, the main loop, the background thread; sessions built, installed,
//                   restarted; reload (apply a config)
//   namespaces.cpp  the network namespaces sessions select interfaces in, their link events,
//                   attaching and detaching interfaces as they come and go
//   routes.cpp      the REST API's handlers (sessions, bypasses, reload, /metrics)
//   views.cpp       sessions and waiting sessions as the API's JSON
//   metrics.cpp     the Prometheus text of /metrics
//   bypass.cpp      POST /v1/bypass's body
// Locks: `mu` guards sessions, spaces, waiting and bypasses and is held briefly: sessions are
// built (filters compiled, programs loaded) without it, under `change_mu`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/api_server.h"
#include "agent/bypass.h"
#include "agent/config.h"
#include "agent/counters.h"
#include "agent/netlink.h"
#include "agent/session.h"
#include "bpf/bpftap.h"
#include "kernel/attach.h"
#include "kernel/netns.h"
#include "util/error.h"
#include "util/fds.h"

namespace bpftap::agent {

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

// Sessions whose network namespace does not exist (yet, or any more): started when it
// appears. Counters of a previous run are kept for the next.
struct Waiting {
  SessionConfig cfg;
  std::vector<InterfaceCounters> counters;
  std::string last_error;  // why the last start failed although the namespace was there
  Clock::time_point retry_at{};  // after such a failure: not before this
  bool starting = false;         // a start is under way in the background
};

// views.cpp
std::string dump(const json &j);  // invalid UTF-8 replaced, never thrown
json session_json(const Session &s);
json waiting_json(const Waiting &w);

// metrics.cpp: the whole /metrics text (the caller holds the lock that guards `sessions`).
std::string metrics_text(const std::map<std::string, std::unique_ptr<Session>> &sessions, size_t waiting,
                         uint64_t budget_refusals, const ApiServer &api);

// namespaces.cpp: false for the agent's own ("").
bool namespace_missing(const std::string &netns);

struct Agent::Impl {
  AgentOptions opts;
  AgentConfig cfg;
  std::string token;
  // Where sessions pin their TCX links (no descriptor per hook); null: pinning is not possible
  // here, the hooks hold their descriptors. Removed after the sessions (~Impl clears them first).
  std::unique_ptr<PinDir> pins;
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
  // fd_budget()'s last count of /proc/self/fd and what was charged since.
  std::mutex budget_mu;
  FdUsage counted;
  size_t charged = 0;
  Clock::time_point counted_at{};

  ~Impl();

  // agent.cpp
  void post(std::function<void()> task);
  void bg_loop();
  bool stopping() const { return opts.stop && opts.stop->load(); }
  Result<> fd_budget(size_t need, const std::string &what);
  Result<std::unique_ptr<Session>> build_session(const SessionConfig &c);
  Result<> install(std::unique_ptr<Session> s, const std::vector<InterfaceCounters> &previous = {});
  void wait_for_namespace(const SessionConfig &c, std::vector<InterfaceCounters> counters = {});
  void start_waiting(const std::string &name);
  void restart(const std::string &name);
  // A running session stopped to give its VXLAN VNI to a successor (vxlan_clash, config.h), and
  // what restore() needs to start it again should the successor fail.
  struct Yielded {
    SessionConfig cfg;
    std::vector<InterfaceCounters> counters;
  };
  // Stops the running sessions that clash with one of `incoming`, unless `keeps` them (their
  // config stays as it is). change_mu held.
  std::vector<Yielded> yield_vxlan(const std::vector<SessionConfig> &incoming,
                                   const std::function<bool(const SessionConfig &)> &keeps);
  void restore(std::vector<Yielded> yielded);
  Result<std::string> apply(const AgentConfig &next);
  Result<std::string> reload();
  void reopen_outputs();

  // namespaces.cpp
  Result<> watch(const std::string &netns);
  void resync(const std::string &netns);
  void unwatch_unused();
  void check_namespaces();
  void attach_link(Session &s, const LinkEvent &l);
  void attach_matching(Session &s);
  void on_link(const std::string &netns, const LinkEvent &e);

  // views.cpp
  json find_json(const std::string &name);

  // routes.cpp
  void forget_expired_bypasses();
  void setup_api();

  // metrics.cpp: metrics_text() under mu.
  std::string metrics();
};

} // namespace bpftap::agent
