// One running agent session: its programs, the interfaces attached to it, their counters.
// Interfaces come and go (attach / detach); counters of detached interfaces are kept.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/config.h"
#include "capture/capture.h"
#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap::agent {

struct InterfaceCounters {
  std::string name;
  std::string direction;  // "in" / "out" ("" for captures, which count both)
  bool attached = false;
  uint64_t matched = 0, bytes = 0;                // filter (and rules) accepted
  uint64_t mirrored = 0, mirrored_bytes = 0, failed = 0, truncated = 0, cut_off = 0, sampled_out = 0, bypassed = 0;
  uint64_t captured = 0, dropped = 0;             // capture / inspect sessions
};

class Session {
public:
  // Loads what the session needs; interfaces are attached one by one with attach().
  static Result<std::unique_ptr<Session>> create(const SessionConfig &cfg);
  ~Session();  // detaches everything

  const SessionConfig &config() const { return cfg_; }
  bool wants(const std::string &ifname) const;  // does the interface match the session's patterns?
  bool attached(uint32_t ifindex) const;
  Result<> attach(const InterfaceInfo &iface);
  void detach(uint32_t ifindex);
  std::vector<InterfaceCounters> counters() const;
  // Adds counters (of interfaces gone, or of this session's previous run) to those reported.
  void keep_counters(const std::vector<InterfaceCounters> &counters);
  uint64_t attach_errors() const { return attach_errors_; }
  void count_attach_error() { attach_errors_++; }
  bool is_mirror() const { return cfg_.mirror.has_value(); }
  // Capture / inspect sessions: their interfaces' ring buffers together (size and bytes
  // waiting summed; peak: the fullest one's most).
  RingUsage ring_usage() const;
  // Mirror sessions: stop mirroring a flow for a while; expire the bypasses whose time is up.
  Result<> bypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb, double seconds);
  void tick();

private:
  explicit Session(SessionConfig cfg);
  class Router;
  struct State;
  SessionConfig cfg_;
  std::unique_ptr<State> st_;
  uint64_t attach_errors_ = 0;
};

} // namespace bpftap::agent
