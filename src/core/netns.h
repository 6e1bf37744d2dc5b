// Network namespaces by name, as `ip netns` keeps them (/run/netns/NAME), and a scope that runs
// the calling thread inside one. Interface names and ifindexes, TC/TCX attachment, netlink
// sockets and the processes bpftap spawns (`ip link ...`) all belong to the calling thread's
// namespace, so everything that touches interfaces of another namespace runs inside a scope.
#pragma once

#include <string>

#include "core/error.h"
#include "core/fd.h"

namespace bpftap {

class Netns {
public:
  // "" is the namespace the calling thread is in now: scopes on it do nothing.
  static Result<Netns> open(const std::string &name);
  const std::string &name() const { return name_; }
  bool is_current() const { return !fd_; }
  int fd() const { return fd_.get(); }

private:
  Netns(std::string name, FD fd) : name_(std::move(name)), fd_(std::move(fd)) {}
  std::string name_;
  FD fd_;
};

// Moves the calling thread into `ns` until the scope ends. Entering fails as a value;
// failing to go back aborts (a thread left in the wrong namespace would attach to the wrong
// interfaces).
class NetnsScope {
public:
  static Result<NetnsScope> enter(const Netns &ns);
  NetnsScope(NetnsScope &&) = default;
  NetnsScope &operator=(NetnsScope &&) = delete;
  ~NetnsScope();

private:
  explicit NetnsScope(FD home) : home_(std::move(home)) {}
  FD home_;  // where the thread was; empty: nothing to undo
};

// A namespace's name, for messages: "NAME" or "this network namespace".
std::string netns_label(const std::string &name);

} // namespace bpftap
