// Interfaces appearing and disappearing: an rtnetlink socket subscribed to link events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"

namespace bpftap::agent {

struct LinkEvent {
  bool added;         // RTM_NEWLINK (also for changes of a link we know) / RTM_DELLINK
  uint32_t ifindex;
  std::string name;
  bool ethernet;      // ARPHRD_ETHER: what bpftap can attach to
};

class LinkWatcher {
public:
  static Result<LinkWatcher> open();
  int fd() const { return fd_.get(); }
  // Reads every pending event (non-blocking).
  std::vector<LinkEvent> read();

private:
  explicit LinkWatcher(FD fd) : fd_(std::move(fd)) {}
  FD fd_;
};

// The interfaces that exist now (name, ifindex, Ethernet or not).
std::vector<LinkEvent> current_links();

} // namespace bpftap::agent
