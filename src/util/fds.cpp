#include "util/fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace bpftap {

FdUsage fd_usage() {
  FdUsage u;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) u.limit = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : rl.rlim_cur;
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    if (errno == EMFILE || errno == ENFILE) u.open = u.limit;
    return u;
  }
  alignas(8) char buf[8192];
  size_t n = 0;
  for (;;) {
    long got = syscall(SYS_getdents64, dir, buf, sizeof(buf));
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      auto *d = reinterpret_cast<dirent64 *>(buf + off);
      if (d->d_name[0] != '.') n++;
      off += d->d_reclen;
    }
  }
  ::close(dir);
  u.open = n > 0 ? n - 1 : 0;  // not the one that read the directory
  return u;
}

size_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : rl.rlim_cur;
}

namespace {

std::mutex g_mu;
std::vector<int> g_reserve;
size_t g_want = 0;
int g_users = 0;

void take_locked() {
  while (g_reserve.size() < g_want) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;  // at the limit: fewer for now, the next Use tries again
    g_reserve.push_back(fd);
  }
}

} // namespace

void FdReserve::fill(size_t n) {
  std::lock_guard lock(g_mu);
  g_want = n;
  if (g_users == 0) take_locked();
}

size_t FdReserve::size() {
  std::lock_guard lock(g_mu);
  return g_reserve.size();
}

FdReserve::Use::Use() {
  std::lock_guard lock(g_mu);
  if (g_users++ == 0) {
    for (int fd : g_reserve) ::close(fd);
    g_reserve.clear();
  }
}

FdReserve::Use::~Use() {
  std::lock_guard lock(g_mu);
  if (--g_users == 0) take_locked();
}

} // namespace bpftap
