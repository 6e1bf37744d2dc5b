// A test double for writev(2) in unit_tests: the executable defines writev, so the writers
// linked into it (src/sinks) call this one, which passes every call through to the C library
// unless a WritevHook is active for that file descriptor. Then it counts calls and short
// writes, and can make the writes short or fail on purpose (what a full disk or a signal does).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bpftap::test {

struct WritevStats {
  uint64_t calls = 0;        // writev calls on the fd
  uint64_t short_writes = 0; // returned fewer bytes than asked (by the kernel or by limit_each)
  uint64_t interrupted = 0;  // failed with EINTR
  uint64_t failed = 0;       // failed otherwise
  uint64_t bytes = 0;        // bytes written
};

// Active for one fd while it lives (one at a time).
class WritevHook {
public:
  explicit WritevHook(int fd);
  ~WritevHook();
  WritevHook(const WritevHook &) = delete;
  WritevHook &operator=(const WritevHook &) = delete;

  // Each call writes at most `max_bytes` (0 = no limit): the rest is a short write.
  void limit_each(size_t max_bytes);
  // Once `bytes` more bytes have been written, calls fail with `err` (nothing written) until
  // clear_failure(). A call that would cross the point writes up to it (a short write).
  void fail_after(uint64_t bytes, int err);
  void clear_failure();
  WritevStats stats() const;
};

} // namespace bpftap::test
