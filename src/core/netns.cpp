#include "core/netns.h"

#include <fcntl.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace bpftap {
namespace {
constexpr const char *kNetnsDir = "/run/netns/";  // where `ip netns add` mounts them
}

Result<Netns> Netns::open(const std::string &name) {
  if (name.empty()) return Netns(name, FD());
  if (name == "." || name == ".." || name.find('/') != std::string::npos)
    return bad_input(fmt::format("netns '{}': not a namespace name", name));
  std::string path = kNetnsDir + name;
  FD fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return bad_input(fmt::format("netns {}: no such network namespace (see ip netns list)", name));
    return fail_errno("open network namespace " + path, errno);
  }
  return Netns(name, std::move(fd));
}

Result<NetnsScope> NetnsScope::enter(const Netns &ns) {
  if (ns.is_current()) return NetnsScope(FD());
  FD home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return fail_errno("open this thread's network namespace", errno);
  if (setns(ns.fd(), CLONE_NEWNET) != 0) return fail_errno("enter network namespace " + ns.name(), errno);
  return NetnsScope(std::move(home));
}

NetnsScope::~NetnsScope() {
  if (!home_) return;
  if (setns(home_.get(), CLONE_NEWNET) != 0) {
    std::perror("bpftap: cannot return to the agent's network namespace");
    std::abort();
  }
}

std::string netns_label(const std::string &name) {
  return name.empty() ? "this network namespace" : "network namespace " + name;
}

} // namespace bpftap
