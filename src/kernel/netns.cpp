#include "kernel/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace bpftap {
namespace {

constexpr const char *kNetnsDir = "/run/netns/";  // where `ip netns add` mounts them

// The process's own namespace, taken before main() runs, so before any thread enters a scope.
const int g_home_fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

} // namespace

Result<Netns> Netns::open(const std::string &name) {
  if (name.empty()) {
    FD fd(fcntl(g_home_fd, F_DUPFD_CLOEXEC, 0));
    if (!fd) return fail_errno("open the process's own network namespace", errno);
    return Netns(name, std::move(fd));
  }
  if (name == "." || name == ".." || name.find('/') != std::string::npos)
    return bad_input(fmt::format("netns '{}': not a namespace name", name));
  std::string path = kNetnsDir + name;
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT)
      return tl::unexpected(Error{ENOENT, fmt::format("netns {}: no such network namespace (see ip netns list)", name), true});
    return fail_errno("open network namespace " + path, errno);
  }
  return Netns(name, std::move(fd));
}

bool Netns::still_named() const {
  if (name_.empty()) return true;
  struct stat named {}, held {};
  if (stat((kNetnsDir + name_).c_str(), &named) != 0 || fstat(fd_.get(), &held) != 0) return false;
  return named.st_dev == held.st_dev && named.st_ino == held.st_ino;
}

Result<NetnsScope> NetnsScope::enter(const Netns &ns) {
  FD home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return fail_errno("open this thread's network namespace", errno);
  struct stat here {}, there {};
  if (fstat(home.get(), &here) == 0 && fstat(ns.fd(), &there) == 0 && here.st_ino == there.st_ino &&
      here.st_dev == there.st_dev)
    return NetnsScope(FD());  // already there
  if (setns(ns.fd(), CLONE_NEWNET) != 0)
    return fail_errno("enter " + netns_label(ns.name()), errno);
  return NetnsScope(std::move(home));
}

NetnsScope::~NetnsScope() {
  if (!home_) return;
  if (setns(home_.get(), CLONE_NEWNET) != 0) {
    std::perror("bpftap: cannot return to the thread's network namespace");
    std::abort();
  }
}

std::string netns_label(const std::string &name) {
  return name.empty() ? "the agent's network namespace" : "network namespace " + name;
}

} // namespace bpftap
