// Network namespaces by name, as `ip netns` keeps them (/run/netns/NAME), and a scope that runs
// the calling thread inside one. Interface names and ifindexes, TC/TCX attachment, netlink
// sockets and the processes bpftap spawns (`ip link ...`) all belong to the calling thread's
// namespace, so everything that touches interfaces of another namespace runs inside a scope.
#pragma once

#include <string>
#include <utility>

#include "util/error.h"
#include "util/fd.h"

namespace bpftap {

class Netns {
public:
  // "" is the process's own namespace (where it started), wherever the calling thread is now.
  // A name that does not exist is bad input with code ENOENT.
  static Result<Netns> open(const std::string &name);
  const std::string &name() const { return name_; }
  int fd() const { return fd_.get(); }
  // Is /run/netns/NAME still this namespace? False once `ip netns del` removed the name, or a
  // new namespace took it (holding the fd keeps the old one alive, unseen by anyone else).
  bool still_named() const;

private:
  Netns(std::string name, FD fd) : name_(std::move(name)), fd_(std::move(fd)) {}
  std::string name_;
  FD fd_;
};

// Moves the calling thread into `ns` until the scope ends. Entering fails as a value;
// failing to go back aborts (a thread left in the wrong namespace would attach to the wrong
// interfaces). A thread already in `ns`, or one in the process's own namespace, opens no
// descriptor (detaching at the descriptor limit must not need one).
class NetnsScope {
public:
  static Result<NetnsScope> enter(const Netns &ns);
  NetnsScope(NetnsScope &&o) noexcept : home_(std::move(o.home_)), back_(std::exchange(o.back_, -1)) {}
  NetnsScope &operator=(NetnsScope &&) = delete;
  ~NetnsScope();

private:
  NetnsScope(FD home, int back) : home_(std::move(home)), back_(back) {}
  FD home_;       // where the thread was, when it had to be opened
  int back_ = -1; // the namespace to go back to (home_'s, or the process's own); -1: nothing to undo
};

// The descriptor of the process's own network namespace, held from before main() (a child
// process that closes what it inherited keeps this one).
int process_netns_fd();

// A namespace's name, for messages: "network namespace NAME" or "the agent's network namespace".
std::string netns_label(const std::string &name);

} // namespace bpftap
