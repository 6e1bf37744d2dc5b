// Interfaces appearing and disappearing: an rtnetlink socket subscribed to link events. Both
// the watcher and the dump see the network namespace of the thread that opens / calls them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace bpftap::agent {

struct LinkEvent {
  bool added;         // RTM_NEWLINK (also for changes of a link we know) / RTM_DELLINK
  uint32_t ifindex;
  std::string name;
  bool ethernet;      // ARPHRD_ETHER: what bpftap can attach to
  uint32_t flags = 0; // IFF_UP, IFF_RUNNING...
};

class LinkWatcher {
public:
  static Result<LinkWatcher> open();
  int fd() const { return fd_.get(); }
  // Reads every pending event (non-blocking).
  std::vector<LinkEvent> read();
  // Did the socket overflow during the last read (events lost: compare with a fresh dump)?
  bool overflowed() const { return overflowed_; }

private:
  explicit LinkWatcher(FD fd) : fd_(std::move(fd)) {}
  FD fd_;
  bool overflowed_ = false;
};

// The interfaces that exist now (name, ifindex, Ethernet or not): an RTM_GETLINK dump, so the
// answer is the calling thread's namespace's (sysfs would show the mounter's).
Result<std::vector<LinkEvent>> current_links();

} // namespace bpftap::agent
