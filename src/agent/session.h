// One running agent session: its programs, the interfaces attached to it, their counters.
// Interfaces come and go (attach / detach); counters of detached interfaces are kept.
#pragma once

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/counters.h"
#include "capture/capture.h"
#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap::agent {

// What went wrong with a session that still runs.
struct SessionHealth {
  bool failing = false;          // something it should do, it cannot now
  std::string reason;            // what, when failing
  uint64_t write_errors = 0;     // failed writes to its capture, alert and flow files
  uint64_t alerts_dropped = 0;   // alert lines given up (more waited than memory allows)
  uint64_t flows_dropped = 0;    // flow lines given up
  uint64_t interfaces_gone = 0;  // attached interfaces that were deleted
  uint64_t target_lost = 0;      // mirror: times its target interface went away
  // capture.files: per-session: records the session's one capture file could not keep (given up
  // with a file deleted or not closed cleanly); its interfaces' `unwritten` count the packets
  // skipped while it failed. (Per-interface files count both in their interface's `unwritten`.)
  uint64_t file_lost = 0;
};

class Session {
public:
  // Loads what the session needs; interfaces are attached one by one with attach(). A long
  // filter compilation stops when `cancel` turns true. pin_dir: where its TCX links are pinned
  // (the agent's PinDir; "" = their descriptors held).
  static Result<std::unique_ptr<Session>> create(const SessionConfig &cfg, const std::atomic<bool> *cancel = nullptr,
                                                 const std::string &pin_dir = "");
  ~Session();  // detaches everything

  const SessionConfig &config() const { return cfg_; }
  bool wants(const std::string &ifname) const;  // does the interface match the session's patterns?
  bool attached(uint32_t ifindex) const;
  Result<> attach(const InterfaceInfo &iface);
  // `gone`: the interface was deleted (counted), rather than no longer wanted.
  void detach(uint32_t ifindex, bool gone = false);
  std::vector<InterfaceCounters> counters() const;
  // Adds counters (of interfaces gone, or of this session's previous run) to those reported.
  void keep_counters(const std::vector<InterfaceCounters> &counters);
  uint64_t attach_errors() const { return attach_errors_; }
  // A restart of `old` (same config): its error and loss counts go on here.
  void carry_counts(const Session &old) {
    attach_errors_ += old.attach_errors_;
    interfaces_gone_ += old.interfaces_gone_;
    target_lost_ += old.target_lost_;
  }
  void count_attach_error() { attach_errors_++; }
  bool is_mirror() const { return cfg_.mirror.has_value(); }
  // Capture / inspect sessions: each of the session's ring buffers (small and big copies),
  // shared by all its interfaces.
  std::vector<RingUsage> ring_usage() const;
  // Mirror sessions: stop mirroring a flow for a while; expire the bypasses whose time is up.
  Result<> bypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb, double seconds);
  void unbypass(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb);
  // Every second: expires bypasses and retries outputs that failed (each failure is logged
  // once when it starts and once when it ends, where it happens).
  void tick();
  SessionHealth health() const;
  // Inspect sessions: packets inspected, flows, alerts (zeros for the others).
  struct InspectTotals {
    uint64_t packets = 0, flows = 0, active_flows = 0, alerts = 0;
  };
  InspectTotals inspect_totals() const;
  // SIGHUP: capture files moved or deleted (logrotate) start anew under their name; alert and
  // flow files are opened again.
  void reopen_outputs();
  // Mirror sessions: the target's name and ifindex (0 for other sessions), and its loss.
  std::string target_name() const;
  uint32_t target_ifindex() const;
  void target_gone();
  bool target_missing() const { return target_missing_; }

private:
  explicit Session(SessionConfig cfg);
  class Router;
  struct State;
  SessionConfig cfg_;
  std::unique_ptr<State> st_;
  uint64_t attach_errors_ = 0;
  uint64_t interfaces_gone_ = 0, target_lost_ = 0;
  bool target_missing_ = false;
};

} // namespace bpftap::agent
