#include "sinks/rotating_sink.h"

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
  if (count == 0 && width == 0) return name;
  std::string number = std::to_string(count);
  if (number.size() < width) number.insert(0, width - number.size(), '0');
  return name + number;
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
  file_.reset();
  return r ? c : r;
}

Result<> RotatingFileSink::reopen(const std::string &path) {
  if (auto r = close_file(); !r) return r;
  auto w = open_writer(opt_.format, path, ifaces_);
  if (!w) return tl::unexpected(w.error());
  file_ = std::move(*w);
  return {};
}

// The order and conditions follow tcpdump's dump_packet_and_trunc(): -G first (it resets
// the -C counter), then -C on the size before this packet.
Result<> RotatingFileSink::write(const Packet &pkt) {
  if (finished_) return {};
  if (!file_) return fail("write " + opt_.path + ": no open capture file", EBADF);

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
      if (auto r = reopen(rotated_name(opt_, 0, file_time_)); !r) return r;
    }
  }

  if (opt_.rotate_bytes != 0 && file_->size() > opt_.rotate_bytes) {
    ++size_count_;
    if (opt_.max_files != 0 && size_count_ >= opt_.max_files) size_count_ = 0; // ring buffer
    if (auto r = reopen(rotated_name(opt_, size_count_, file_time_)); !r) return r;
  }

  return file_->write(pkt);
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
