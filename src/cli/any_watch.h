// capture -i any: interfaces created while the capture runs join it (in the capture, the sink
// and the statistics), and interfaces deleted leave it with their counters kept for the summary.
// rtnetlink link events, as the agent watches them (agent/netlink.h).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "agent/netlink.h"
#include "capture/capture.h"

namespace bpftap::cli {

class AnyWatcher {
public:
  // `known`: the interfaces the capture started with. `added(slot, info)` runs under the
  // capture's lock before the interface's first packet (the sink learns the slot there).
  static Result<std::unique_ptr<AnyWatcher>> open(Capture &cap, const std::vector<InterfaceInfo> &known,
                                                  uint32_t snaplen,
                                                  std::function<Result<>(uint32_t, const InterfaceInfo &)> added);
  // Reads pending link events and applies them; call between reading rounds. Messages on stderr.
  void poll();
  // The counters of the interfaces that went away.
  const std::vector<InterfaceStats> &departed() const { return departed_; }

private:
  AnyWatcher(agent::LinkWatcher w, Capture &cap) : watcher_(std::move(w)), cap_(cap) {}
  agent::LinkWatcher watcher_;
  Capture &cap_;
  uint32_t snaplen_ = 0;
  std::set<uint32_t> attached_;  // ifindexes
  std::function<Result<>(uint32_t, const InterfaceInfo &)> added_;
  std::vector<InterfaceStats> departed_;
};

} // namespace bpftap::cli
