#include "sinks/rotating_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>

#include "sinks/pcap_writer.h"

namespace bpftap {

namespace {

// tcpdump's getWflagChars(): enough digits for the largest counter, max_files - 1.
unsigned counter_width(uint32_t max_files) {
  unsigned digits = 0;
  for (uint32_t x = max_files > 0 ? max_files - 1 : 0; x > 0; x /= 10) ++digits;
  return digits;
}

Result<std::unique_ptr<CaptureFileWriter>> open_writer(FileFormat format, const std::string &path,
                                                       std::vector<InterfaceInfo> ifaces) {
  std::unique_ptr<CaptureFileWriter> w;
  if (format == FileFormat::Pcapng) {
    auto r = path == "-" ? PcapngWriter::to_stream(stdout, std::move(ifaces), "-")
                         : PcapngWriter::open(path, std::move(ifaces));
    if (!r) return tl::unexpected(r.error());
    w = std::move(*r);
  } else {
    auto r = path == "-" ? PcapWriter::to_stream(stdout, std::move(ifaces), "-")
                         : PcapWriter::open(path, std::move(ifaces));
    if (!r) return tl::unexpected(r.error());
    w = std::move(*r);
  }
  return w;
}

} // namespace

std::string rotated_name(const RotationOptions &opt, unsigned count, time_t when) {
  std::string name = opt.path;
  if (opt.rotate_seconds != 0) {
    // Like tcpdump, a name strftime() cannot produce within PATH_MAX comes out empty and
    // then fails to open.
    char buf[PATH_MAX + 1];
    struct tm tm;
    size_t n = localtime_r(&when, &tm) ? strftime(buf, sizeof buf, opt.path.c_str(), &tm) : 0;
    name.assign(buf, n);
  }
  // tcpdump numbers files only with -C; -W alone or with -G does not change the name.
  unsigned width = opt.rotate_bytes != 0 ? counter_width(opt.max_files) : 0;
  if (count == 0 && width == 0) return name + opt.extension;
  std::string number = std::to_string(count);
  if (number.size() < width) number.insert(0, width - number.size(), '0');
  return opt.extension.empty() ? name + number : name + "-" + number + opt.extension;
}

Result<std::unique_ptr<RotatingFileSink>> RotatingFileSink::open(RotationOptions opt,
                                                                 std::vector<InterfaceInfo> ifaces) {
  if (opt.path.empty()) return fail("open capture file: empty file name", EINVAL);
  if (opt.path == "-" && (opt.rotate_bytes != 0 || opt.rotate_seconds != 0))
    return fail("write to stdout: file rotation (-C/-G) needs a file name", EINVAL);

  std::unique_ptr<RotatingFileSink> sink(new RotatingFileSink(std::move(opt), std::move(ifaces)));
  sink->file_time_ = sink->opt_.start_time != 0 ? sink->opt_.start_time : time(nullptr);
  if (auto r = sink->reopen(rotated_name(sink->opt_, 0, sink->file_time_)); !r)
    return tl::unexpected(r.error());
  return sink;
}

Result<> RotatingFileSink::close_file() {
  if (!file_) return {};
  Result<> r;
  if (counters_) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    r = file_->write_stats(counters_(), uint64_t(now.tv_sec) * 1'000'000'000ull + uint64_t(now.tv_nsec));
  }
  auto c = file_->close();
  if (!c) lost_ += file_->discard_pending();
  file_.reset();
  return r ? c : r;
}

Result<> RotatingFileSink::reopen(const std::string &path) {
  Result<> closed = close_file();
  auto w = open_writer(opt_.format, path, ifaces_);
  if (!w) return tl::unexpected(w.error());
  file_ = std::move(*w);
  return closed;
}

bool RotatingFileSink::remove_oldest() {
  if (opt_.rotate_bytes == 0 || opt_.max_files < 2) return false;
  std::string current = current_path(), oldest;
  struct timespec when {};
  for (unsigned i = 0; i < opt_.max_files; i++) {
    std::string name = rotated_name(opt_, i, file_time_);
    struct stat st {};
    if (name == current || ::stat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (oldest.empty() || st.st_mtim.tv_sec < when.tv_sec ||
        (st.st_mtim.tv_sec == when.tv_sec && st.st_mtim.tv_nsec < when.tv_nsec)) {
      oldest = name;
      when = st.st_mtim;
    }
  }
  return !oldest.empty() && ::unlink(oldest.c_str()) == 0;
}

Result<> RotatingFileSink::recover() {
  if (finished_) return {};
  if (!file_) return reopen(rotated_name(opt_, size_count_, file_time_));
  struct stat st {};
  if (file_->fd() >= 0 && ::fstat(file_->fd(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0) {
    // Deleted (to make room): what it kept goes nowhere anyone can see.
    lost_ += file_->discard_pending();
    std::string name = file_->name();  // reopen() lets go of file_
    return reopen(name);
  }
  auto r = file_->flush();
  if (!r && (r.error().code == ENOSPC || r.error().code == EDQUOT) && remove_oldest()) r = file_->flush();
  return r;
}

Result<bool> RotatingFileSink::reopen_if_moved() {
  if (finished_ || !file_ || file_->fd() < 0 || opt_.path == "-") return false;
  struct stat held {}, named {};
  if (::fstat(file_->fd(), &held) != 0 || !S_ISREG(held.st_mode)) return false;
  if (::stat(file_->name().c_str(), &named) == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev)
    return false;
  std::string name = file_->name();
  if (auto r = reopen(name); !r) return tl::unexpected(r.error());
  return true;
}

// The order and conditions follow tcpdump's dump_packet_and_trunc(): -G first (it resets
// the -C counter), then -C on the size before this packet.
Result<> RotatingFileSink::write(const Packet &pkt) {
  if (finished_) return {};
  if (!file_) {
    lost_++;
    return fail("write " + opt_.path + ": no open capture file", EBADF);
  }

  Result<> rotated;
  if (opt_.rotate_seconds != 0) {
    auto t = time_t(pkt.ts_ns / 1'000'000'000);
    if (t - file_time_ >= time_t(opt_.rotate_seconds)) {
      file_time_ = t;
      ++time_files_;
      // -W limits -G files only without -C (then it only sets the counter width).
      if (opt_.rotate_bytes == 0 && opt_.max_files != 0 && time_files_ >= opt_.max_files) {
        finished_ = true;
        return close_file();
      }
      size_count_ = 0;
      rotated = reopen(rotated_name(opt_, 0, file_time_));
    }
  }

  if (file_ && opt_.rotate_bytes != 0 && file_->size() > opt_.rotate_bytes) {
    ++size_count_;
    if (opt_.max_files != 0 && size_count_ >= opt_.max_files) size_count_ = 0; // ring buffer
    if (auto r = reopen(rotated_name(opt_, size_count_, file_time_)); !r) rotated = r;
  }
  if (!file_) {  // the next file could not be opened
    lost_++;
    return rotated;
  }
  if (auto w = file_->write(pkt); !w) return w;
  return rotated;  // the previous file's error, if closing it failed
}

Result<> RotatingFileSink::add_interface(uint32_t slot, const InterfaceInfo &info) {
  while (ifaces_.size() <= slot) {
    InterfaceInfo i = ifaces_.size() == slot ? info : InterfaceInfo{"", 0, info.linktype, info.snaplen};
    ifaces_.push_back(i);
    if (file_)
      if (auto r = file_->add_interface(i); !r) return r;
  }
  return {};
}

Result<> RotatingFileSink::flush() {
  if (!file_) return {};
  return file_->flush();
}

Result<> RotatingFileSink::close() { return close_file(); }

} // namespace bpftap
