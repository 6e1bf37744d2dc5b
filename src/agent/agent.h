// bpftap agent: the long-running vTAP service. Sessions from a YAML config; interfaces attached
// as they appear (rtnetlink) and detached as they go; reload on SIGHUP or POST /v1/reload
// (only what changed is restarted; a bad config is refused and the running one stays); a REST
// API on 127.0.0.1 (or a unix socket) with bearer-token writes; Prometheus metrics; SIGTERM
// detaches everything.
//
// Nothing a client does can stop it: the API's front end (api_server.h) bounds connections,
// rates, times and sizes before a request is authenticated; sessions are built (filters
// compiled, programs loaded) outside the lock the API's reads and the link events take, and a
// compilation stops at SIGTERM; a session that would take the process past its descriptor
// budget is refused (503), and detaching never needs a descriptor it does not have. Outputs
// that fail (a full disk) make their session "failing" with the reason, are counted and
// retried; SIGHUP reopens them.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "util/error.h"

namespace bpftap::agent {

struct AgentOptions {
  std::string config_path;
  const std::atomic<bool> *stop = nullptr;  // SIGTERM/SIGINT: also stops filter compilations
};

class Agent {
public:
  // Cleans up what a crashed instance left, reads the config, starts the sessions, attaches the
  // interfaces present, and starts the API. Bad config: bad input.
  static Result<std::unique_ptr<Agent>> start(const AgentOptions &opts);
  ~Agent();
  // Serves until `stop`; `reload` (SIGHUP) reopens the output files and re-reads the config.
  Result<> run(const std::atomic<bool> &stop, std::atomic<bool> &reload);

private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap::agent
