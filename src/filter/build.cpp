#include "filter/build.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"
#include "kernel/netns.h"
#include "util/fd.h"

namespace bpftap {

Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface) {
  auto cbpf = compile_pcap_filter_live(expression, snaplen, iface);
  if (!cbpf) return tl::unexpected(cbpf.error());
  auto ebpf = translate_cbpf(*cbpf, {VlanView::Metadata});
  if (!ebpf) return bad_input("filter '" + expression + "': " + ebpf.error().message());
  return ebpf;
}

namespace {

// Past this much CPU the child is stopped: no expression worth its name needs it.
constexpr rlim_t kCompileCpuSeconds = 300;

// The child's answer on the pipe: u8 ok; then u32 count + instructions, or i32 errno, u8
// bad_input, u32 length + message.
void put(std::string &out, const void *p, size_t n) { out.append(static_cast<const char *>(p), n); }

std::string encode(const Result<std::vector<bpf_insn>> &r) {
  std::string out;
  uint8_t ok = r.has_value();
  put(out, &ok, 1);
  if (r) {
    auto n = static_cast<uint32_t>(r->size());
    put(out, &n, 4);
    put(out, r->data(), r->size() * sizeof(bpf_insn));
  } else {
    int32_t code = r.error().code;
    uint8_t bad = r.error().bad_input;
    auto n = static_cast<uint32_t>(r.error().what.size());
    put(out, &code, 4);
    put(out, &bad, 1);
    put(out, &n, 4);
    put(out, r.error().what.data(), n);
  }
  return out;
}

Result<std::vector<bpf_insn>> decode(const std::string &in) {
  auto bad = [] { return fail("filter compiler: a malformed answer"); };
  size_t at = 0;
  auto get = [&](void *p, size_t n) {
    if (in.size() - at < n) return false;
    std::memcpy(p, in.data() + at, n);
    at += n;
    return true;
  };
  uint8_t ok = 0;
  uint32_t n = 0;
  if (!get(&ok, 1)) return bad();
  if (ok) {
    if (!get(&n, 4) || in.size() - at != size_t{n} * sizeof(bpf_insn)) return bad();
    std::vector<bpf_insn> insns(n);
    get(insns.data(), size_t{n} * sizeof(bpf_insn));
    return insns;
  }
  int32_t code = 0;
  uint8_t is_bad = 0;
  if (!get(&code, 4) || !get(&is_bad, 1) || !get(&n, 4) || in.size() - at != n) return bad();
  return tl::unexpected(Error{code, in.substr(at), is_bad != 0});
}

// Closes every inherited descriptor but `keep` and the standard ones.
void close_all_but(int a, int b) {
  int lo = std::min(a, b), hi = std::max(a, b);
  auto close_range = [](unsigned from, unsigned to) {
    if (from <= to) syscall(SYS_close_range, from, to, 0);
  };
  if (lo < 0) {
    close_range(3, static_cast<unsigned>(hi) - 1);
    close_range(static_cast<unsigned>(hi) + 1, ~0u);
    return;
  }
  close_range(3, static_cast<unsigned>(lo) - 1);
  close_range(static_cast<unsigned>(lo) + 1, static_cast<unsigned>(hi) - 1);
  close_range(static_cast<unsigned>(hi) + 1, ~0u);
}

[[noreturn]] void child(int out, const std::string &expression, uint32_t snaplen, const std::string &iface, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(sig, SIG_DFL);
  close_all_but(out, process_netns_fd());
  rlimit cpu{kCompileCpuSeconds, kCompileCpuSeconds + 5};
  setrlimit(RLIMIT_CPU, &cpu);
  std::string answer = encode(build_filter(expression, snaplen, iface));
  for (size_t at = 0; at < answer.size();) {
    ssize_t n = ::write(out, answer.data() + at, answer.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(1);
    at += static_cast<size_t>(n);
  }
  _exit(0);
}

} // namespace

Result<std::vector<bpf_insn>> build_filter_cancellable(const std::string &expression, uint32_t snaplen,
                                                       const std::string &iface, const std::atomic<bool> *cancel) {
  // No expression: nothing for the optimizer to do (the live handle still checks the interface).
  if (expression.find_first_not_of(" \t\n") == std::string::npos) return build_filter(expression, snaplen, iface);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail_errno("compile the filter: pipe", errno);
  FD rd(p[0]), wr(p[1]);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return fail_errno("compile the filter: fork", errno);
  if (pid == 0) child(wr.get(), expression, snaplen, iface, parent);
  wr.reset();
  std::string answer;
  bool cancelled = false;
  char buf[65536];
  for (;;) {
    if (cancel && cancel->load()) {
      cancelled = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{rd.get(), POLLIN, 0};
    int r = poll(&pfd, 1, 50);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (cancelled) return fail(fmt::format("filter '{}': interrupted while compiling", expression), EINTR);
  if (WIFSIGNALED(status)) {
    if (WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGKILL)
      return bad_input(fmt::format("filter '{}': compiling it took more than {} s", expression, kCompileCpuSeconds));
    return fail(fmt::format("filter '{}': the compiler died (signal {})", expression, WTERMSIG(status)));
  }
  return decode(answer);
}

} // namespace bpftap
