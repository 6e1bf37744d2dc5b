#include "sinks/line_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace bpftap {
namespace {

constexpr size_t kWriteAt = 64 * 1024;  // bytes waiting that trigger a write before flush()

Result<FD> open_append(const std::string &path) {
  FD fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("open " + path, errno);
  return fd;
}

} // namespace

Result<std::unique_ptr<LineFile>> LineFile::open(const std::string &path, size_t max_pending,
                                                 std::chrono::milliseconds retry) {
  auto fd = open_append(path);
  if (!fd) return tl::unexpected(fd.error());
  return std::unique_ptr<LineFile>(new LineFile(path, std::move(*fd), max_pending, retry));
}

void LineFile::tell(bool was_failing) {
  if (!listener_) return;
  bool failing;
  std::string error;
  {
    std::lock_guard lock(mu_);
    failing = st_.failing;
    error = st_.error;
  }
  if (failing != was_failing) listener_(failing, error);
}

void LineFile::line(std::string_view text) {
  bool was;
  {
    std::lock_guard lock(mu_);
    was = st_.failing;
    if (pending_.size() + text.size() + 1 > max_pending_) {
      st_.dropped++;
      return;
    }
    pending_.append(text);
    pending_ += '\n';
    if (st_.failing || pending_.size() < kWriteAt) return;
    (void)write_locked();
  }
  tell(was);
}

Result<> LineFile::write_locked() {
  size_t done = 0;
  Result<> r;
  while (done < pending_.size()) {
    ssize_t n = ::write(fd_.get(), pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r = fail_errno("write " + path_, n < 0 ? errno : EIO);
      break;
    }
    done += static_cast<size_t>(n);
  }
  st_.lines += static_cast<uint64_t>(std::count(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(done), '\n'));
  pending_.erase(0, done);
  if (r) {
    st_.failing = false;
    st_.error.clear();
    return r;
  }
  st_.write_errors++;
  st_.failing = true;
  st_.error = r.error().message();
  next_try_ = std::chrono::steady_clock::now() + retry_;
  return r;
}

Result<> LineFile::flush() {
  bool was;
  Result<> r;
  {
    std::lock_guard lock(mu_);
    was = st_.failing;
    if (st_.failing) {
      if (std::chrono::steady_clock::now() < next_try_) return fail(st_.error);
      // Deleted to make room: start the file again under its name.
      struct stat st {};
      if (::fstat(fd_.get(), &st) == 0 && st.st_nlink == 0)
        if (auto fd = open_append(path_); fd) fd_ = std::move(*fd);
    }
    if (pending_.empty()) st_.failing = false;
    else r = write_locked();
  }
  tell(was);
  return r;
}

Result<> LineFile::reopen() {
  auto fd = open_append(path_);
  if (!fd) return tl::unexpected(fd.error());
  bool was;
  Result<> r;
  {
    std::lock_guard lock(mu_);
    was = st_.failing;
    fd_ = std::move(*fd);
    if (!pending_.empty()) r = write_locked();
  }
  tell(was);
  return r;
}

LineFileStats LineFile::stats() const {
  std::lock_guard lock(mu_);
  return st_;
}

} // namespace bpftap
