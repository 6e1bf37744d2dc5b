// The process's file descriptors: how many are open against the limit, the soft limit raised to
// the hard one, and a small reserve for what must not fail for want of a descriptor (detaching
// hooks: tc needs a netlink socket; leaving a network namespace; cleanup).
#pragma once

#include <cstddef>

#include "util/error.h"

namespace bpftap {

struct FdUsage {
  size_t open = 0;   // descriptors open now
  size_t limit = 0;  // RLIMIT_NOFILE (soft)
};

// Counts /proc/self/fd. At the limit (no descriptor left to count with) `open` is the limit.
FdUsage fd_usage();

// Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit in force.
size_t raise_fd_limit();

// Descriptors held open on /dev/null. fill() at start; a Use closes them for its scope (the
// numbers are free for what it does) and takes them back when the last Use ends.
class FdReserve {
public:
  static void fill(size_t n);
  static size_t size();  // held now
  class Use {
  public:
    Use();
    ~Use();
    Use(const Use &) = delete;
    Use &operator=(const Use &) = delete;
  };
};

} // namespace bpftap
