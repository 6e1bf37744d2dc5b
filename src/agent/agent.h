// bpftap agent: the long-running vTAP service. Sessions from a YAML config; interfaces attached
// as they appear (rtnetlink) and detached as they go; reload on SIGHUP or POST /v1/reload
// (only what changed is restarted; a bad config is refused and the running one stays); a REST
// API on 127.0.0.1 with bearer-token writes; Prometheus metrics; SIGTERM detaches everything.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "util/error.h"

namespace bpftap::agent {

struct AgentOptions {
  std::string config_path;
};

class Agent {
public:
  // Cleans up what a crashed instance left, reads the config, starts the sessions, attaches the
  // interfaces present, and starts the API. Bad config: bad input.
  static Result<std::unique_ptr<Agent>> start(const AgentOptions &opts);
  ~Agent();
  // Serves until `stop`; `reload` (SIGHUP) re-reads the config.
  Result<> run(const std::atomic<bool> &stop, std::atomic<bool> &reload);

private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap::agent
