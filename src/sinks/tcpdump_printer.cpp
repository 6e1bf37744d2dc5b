#include "sinks/tcpdump_printer.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

extern char **environ;

namespace bpftap {
namespace {

constexpr uint32_t kMagicNanoseconds = 0xa1b23c4d;
constexpr uint32_t kLinktypeSll2 = 276;
constexpr size_t kEthHeader = 14;
// Linux packet types (linux/if_packet.h), which SLL2 carries and tcpdump names In/B/M/Out.
constexpr uint8_t kHost = 0, kBroadcast = 1, kMulticast = 2, kOutgoing = 4;

template <class T> void put(std::vector<uint8_t> &b, T v) {
  auto *p = reinterpret_cast<const uint8_t *>(&v);
  b.insert(b.end(), p, p + sizeof v);
}
void put_be16(std::vector<uint8_t> &b, uint16_t v) { b.insert(b.end(), {uint8_t(v >> 8), uint8_t(v)}); }
void put_be32(std::vector<uint8_t> &b, uint32_t v) {
  b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
}

Result<> write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail_errno("write to tcpdump", errno);
    p += w;
    n -= size_t(w);
  }
  return {};
}

} // namespace

void append_sll2_header(std::vector<uint8_t> &out, std::span<const uint8_t> frame, uint32_t ifindex,
                        Direction dir) {
  uint8_t type = kHost;
  if (dir == Direction::Out) type = kOutgoing;
  else if (std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xff; })) type = kBroadcast;
  else if (frame[0] & 1) type = kMulticast;
  put_be16(out, uint16_t(frame[12] << 8 | frame[13]));
  put_be16(out, 0);
  put_be32(out, ifindex);
  put_be16(out, 1);  // ARPHRD_ETHER
  out.push_back(type);
  out.push_back(6);
  out.insert(out.end(), frame.begin() + 6, frame.begin() + 12);
  out.insert(out.end(), {0, 0});
}

Result<std::unique_ptr<TcpdumpPrinter>> TcpdumpPrinter::start(const std::vector<std::string> &args,
                                                              std::vector<InterfaceInfo> ifaces,
                                                              const std::string &program, int out_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe to tcpdump", errno);
  FD read_end(p[0]), write_end(p[1]);
  FD err(memfd_create("tcpdump-stderr", MFD_CLOEXEC));
  if (!err) return fail_errno("memfd for tcpdump's stderr", errno);

  std::vector<std::string> argv_s{program, "-r", "-"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char *> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto &a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, read_end.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, err.get(), 2);
  if (out_fd != 1) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  // bpftap ignores SIGPIPE; tcpdump must not, so `| head` ends it as it ends tcpdump.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  sigaddset(&dfl, SIGINT);  // Ctrl-C: bpftap stops, closes the pipe, and tcpdump prints the rest
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, program.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail_errno(fmt::format("run {} (bpftap prints packets through tcpdump; install it, or use -w)", program), rc);

  std::unique_ptr<TcpdumpPrinter> t(new TcpdumpPrinter(std::move(write_end), std::move(err), pid, std::move(ifaces)));
  auto &b = t->buf_;
  put<uint32_t>(b, kMagicNanoseconds);
  put<uint16_t>(b, 2);
  put<uint16_t>(b, 4);
  put<int32_t>(b, 0);
  put<uint32_t>(b, 0);
  put<uint32_t>(b, 262144 - kEthHeader + 20);
  put<uint32_t>(b, kLinktypeSll2);
  if (auto r = t->flush(); !r) return tl::unexpected(r.error());
  return t;
}

TcpdumpPrinter::~TcpdumpPrinter() { (void)close(); }

Result<> TcpdumpPrinter::write(const Packet &pkt) {
  if (!in_) return fail("write to tcpdump: closed", EBADF);
  if (pkt.data.size() < kEthHeader) return {};  // no EtherType to give: nothing tcpdump could print
  uint32_t ifindex = pkt.iface < ifaces_.size() ? ifaces_[pkt.iface].ifindex : 0;
  auto payload = pkt.data.subspan(kEthHeader);
  put<uint32_t>(buf_, uint32_t(pkt.ts_ns / 1'000'000'000ull));
  put<uint32_t>(buf_, uint32_t(pkt.ts_ns % 1'000'000'000ull));
  put<uint32_t>(buf_, uint32_t(payload.size() + 20));
  put<uint32_t>(buf_, uint32_t(std::max<size_t>(pkt.wire_len, kEthHeader) - kEthHeader + 20));
  append_sll2_header(buf_, pkt.data, ifindex, pkt.dir);
  buf_.insert(buf_.end(), payload.begin(), payload.end());
  if (buf_.size() >= 64 * 1024) return flush();
  return {};
}

Result<> TcpdumpPrinter::flush() {
  if (buf_.empty() || !in_) return {};
  auto r = write_all(in_.get(), buf_.data(), buf_.size());
  buf_.clear();
  return r;
}

std::string TcpdumpPrinter::last_error_line() const {
  std::string text(4096, '\0');
  off_t size = lseek(err_.get(), 0, SEEK_END);
  off_t from = size > off_t(text.size()) ? size - off_t(text.size()) : 0;
  ssize_t n = pread(err_.get(), text.data(), text.size(), from);
  text.resize(n > 0 ? size_t(n) : 0);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
}

Result<> TcpdumpPrinter::close() {
  if (pid_ <= 0) return {};
  Result<> flushed = flush();
  in_.reset();
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = 0;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE) return {};  // its reader went away
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return fail(fmt::format("tcpdump failed (status {}): {}", code, last_error_line()));
  }
  if (!flushed && flushed.error().code != EPIPE) return flushed;
  return {};
}

} // namespace bpftap
