// Helpers for BPF_PROG_TEST_RUN tests.
#pragma once

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace bpftap::test {

struct RunResult {
  int err = 0;          // 0 or -errno from the syscall
  uint32_t retval = 0;  // the program's return value
};

// Runs a TC program once on `frame` with `ctx` as its __sk_buff (ifindex: the interface it came
// through, which must exist; mark, priority...).
inline RunResult run_tc(int prog_fd, const std::vector<uint8_t> &frame, const __sk_buff &ctx) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = 1;
  RunResult r;
  r.err = bpf_prog_test_run_opts(prog_fd, &opts);
  r.retval = opts.retval;
  return r;
}

// The same with skb->mark and skb->priority set (the filter test program reads the VLAN tag and
// the packet type from them).
inline RunResult run_tc(int prog_fd, const std::vector<uint8_t> &frame, uint32_t mark = 0, uint32_t priority = 0) {
  __sk_buff ctx{};
  ctx.mark = mark;
  ctx.priority = priority;
  return run_tc(prog_fd, frame, ctx);
}

// This thread in a network namespace of its own until destruction (then back home; the private
// namespace goes away with its interfaces).
class PrivateNetns {
public:
  PrivateNetns() {
    home_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ < 0) return;
    if (unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << strerror(errno);
      return;
    }
    ok_ = true;
  }
  ~PrivateNetns() {
    if (ok_) setns(home_, CLONE_NEWNET);
    if (home_ >= 0) close(home_);
  }
  bool ok() const { return ok_; }

private:
  int home_ = -1;
  bool ok_ = false;
};

// BPF_PROG_TEST_RUN builds a linear skb in one page: larger frames cannot be run.
inline constexpr size_t kMaxTestRunFrame = 3500;

} // namespace bpftap::test
