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
  auto same = [](const struct stat &a, const struct stat &b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; };
  struct stat here {}, there {}, own {};
  if (stat("/proc/thread-self/ns/net", &here) != 0) return fail_errno("look at this thread's network namespace", errno);
  if (fstat(ns.fd(), &there) == 0 && same(here, there)) return NetnsScope(FD(), -1);  // already there
  FD home;
  int back = g_home_fd;  // the usual case: the thread is in the process's own namespace
  if (g_home_fd < 0 || fstat(g_home_fd, &own) != 0 || !same(here, own)) {
    home = FD(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home) return fail_errno("open this thread's network namespace", errno);
    back = home.get();
  }
  if (setns(ns.fd(), CLONE_NEWNET) != 0)
    return fail_errno("enter " + netns_label(ns.name()), errno);
  return NetnsScope(std::move(home), back);
}

NetnsScope::~NetnsScope() {
  if (back_ < 0) return;
  if (setns(back_, CLONE_NEWNET) != 0) {
    std::perror("bpftap: cannot return to the thread's network namespace");
    std::abort();
  }
}

int process_netns_fd() { return g_home_fd; }

std::string netns_label(const std::string &name) {
  return name.empty() ? "the agent's network namespace" : "network namespace " + name;
}

} // namespace bpftap
