#include "writev_hook.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <vector>

namespace bpftap::test {
namespace {

struct State {
  std::atomic<int> fd{-1};
  std::atomic<size_t> max_bytes{0};
  std::atomic<int64_t> fail_in{-1};  // bytes left before failing; -1 = never
  std::atomic<int> fail_errno{0};
  std::atomic<uint64_t> calls{0}, short_writes{0}, interrupted{0}, failed{0}, bytes{0};
};

State &state() {
  static State s;
  return s;
}

using WritevFn = ssize_t (*)(int, const struct iovec *, int);

WritevFn real_writev() {
  static WritevFn fn = reinterpret_cast<WritevFn>(dlsym(RTLD_NEXT, "writev"));
  return fn;
}

} // namespace

WritevHook::WritevHook(int fd) {
  State &s = state();
  s.max_bytes = 0;
  s.fail_in = -1;
  s.calls = s.short_writes = s.interrupted = s.failed = s.bytes = 0;
  s.fd = fd;
}

WritevHook::~WritevHook() { state().fd = -1; }

void WritevHook::limit_each(size_t max_bytes) { state().max_bytes = max_bytes; }

void WritevHook::fail_after(uint64_t bytes, int err) {
  state().fail_errno = err;
  state().fail_in = int64_t(bytes);
}

void WritevHook::clear_failure() { state().fail_in = -1; }

WritevStats WritevHook::stats() const {
  const State &s = state();
  return {s.calls, s.short_writes, s.interrupted, s.failed, s.bytes};
}

} // namespace bpftap::test

using bpftap::test::state;

extern "C" ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  auto &s = state();
  if (fd < 0 || fd != s.fd.load()) return bpftap::test::real_writev()(fd, iov, iovcnt);
  s.calls++;
  size_t want = 0;
  for (int i = 0; i < iovcnt; i++) want += iov[i].iov_len;
  size_t allow = want;
  if (size_t m = s.max_bytes.load(); m != 0) allow = std::min(allow, m);
  if (int64_t left = s.fail_in.load(); left >= 0) {
    if (left == 0) {
      s.failed++;
      errno = s.fail_errno.load();
      return -1;
    }
    allow = std::min(allow, size_t(left));
  }
  // The first `allow` bytes of the vector.
  std::vector<struct iovec> cut;
  for (int i = 0; i < iovcnt && allow > 0; i++) {
    size_t n = std::min(allow, iov[i].iov_len);
    cut.push_back({iov[i].iov_base, n});
    allow -= n;
  }
  ssize_t n = bpftap::test::real_writev()(fd, cut.data(), int(cut.size()));
  if (n < 0) {
    (errno == EINTR ? s.interrupted : s.failed)++;
    return n;
  }
  s.bytes += uint64_t(n);
  if (size_t(n) < want) s.short_writes++;
  if (int64_t left = s.fail_in.load(); left > 0) s.fail_in = std::max<int64_t>(0, left - n);
  return n;
}
