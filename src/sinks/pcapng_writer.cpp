#include "sinks/pcapng_writer.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace bpftap {

namespace {

// Large enough that a busy capture costs few syscalls; flush() empties it every batch anyway.
constexpr size_t kBufferSize = 1 << 20;

constexpr uint32_t kBlockShb = 0x0A0D0D0A;
constexpr uint32_t kBlockIdb = 1;
constexpr uint32_t kBlockEpb = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptShbOs = 3;
constexpr uint16_t kOptShbUserappl = 4;
constexpr uint16_t kOptIfName = 2;
constexpr uint16_t kOptIfTsresol = 9;
constexpr uint16_t kOptEpbFlags = 2;
constexpr uint8_t kTsresolNanoseconds = 9; // 10^-9 s
constexpr char kUserAppl[] = "bpftap 0.1.0";

template <class T> void put(std::vector<uint8_t> &b, T v) {
  auto *p = reinterpret_cast<const uint8_t *>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

// Pads with zeros to a 32-bit boundary counted from the block start, as pcapng requires.
void put_padded(std::vector<uint8_t> &b, size_t block_start, const void *p, size_t n) {
  auto *bytes = static_cast<const uint8_t *>(p);
  b.insert(b.end(), bytes, bytes + n);
  b.resize(block_start + ((b.size() - block_start + 3) & ~size_t{3}), 0);
}

void put_option(std::vector<uint8_t> &b, size_t block_start, uint16_t code, const void *v,
                size_t len) {
  len = std::min<size_t>(len, UINT16_MAX);
  put<uint16_t>(b, code);
  put<uint16_t>(b, uint16_t(len));
  put_padded(b, block_start, v, len);
}

void put_option(std::vector<uint8_t> &b, size_t block_start, uint16_t code, const std::string &s) {
  put_option(b, block_start, code, s.data(), s.size());
}

void put_end_of_options(std::vector<uint8_t> &b) {
  put<uint16_t>(b, kOptEnd);
  put<uint16_t>(b, 0);
}

// Block type and a length placeholder; end_block() fills the length in at both ends.
size_t begin_block(std::vector<uint8_t> &b, uint32_t type) {
  size_t start = b.size();
  put<uint32_t>(b, type);
  put<uint32_t>(b, 0);
  return start;
}

void end_block(std::vector<uint8_t> &b, size_t start) {
  auto len = uint32_t(b.size() - start + 4);
  put<uint32_t>(b, len);
  std::memcpy(&b[start + 4], &len, sizeof len);
}

std::string os_name() {
  struct utsname u;
  if (uname(&u) != 0) return {};
  return std::string(u.sysname) + " " + u.release;
}

} // namespace

// ---- CaptureFileWriter ----

CaptureFileWriter::CaptureFileWriter(std::string name, FILE *fp, int fd, bool owns_fd,
                                     std::vector<InterfaceInfo> ifaces)
    : name_(std::move(name)), fp_(fp), fd_(fd), owns_fd_(owns_fd), ifaces_(std::move(ifaces)) {
  buf_.reserve(kBufferSize + 65536); // one more full-size packet fits before draining
}

CaptureFileWriter::~CaptureFileWriter() { (void)close(); }

Result<int> CaptureFileWriter::open_file(const std::string &path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return fail_errno("open " + path, errno);
  return fd;
}

uint32_t CaptureFileWriter::header_snaplen() const {
  uint32_t snaplen = 0;
  for (const auto &i : ifaces_) {
    if (i.snaplen == 0) return 0;
    snaplen = std::max(snaplen, i.snaplen);
  }
  return snaplen;
}

Result<std::span<const uint8_t>> CaptureFileWriter::captured(const Packet &pkt) const {
  if (closed_) return fail("write " + name_ + ": file already closed", EBADF);
  if (pkt.iface >= ifaces_.size())
    return fail("write " + name_ + ": packet from unknown interface #" + std::to_string(pkt.iface),
                EINVAL);
  uint32_t snaplen = ifaces_[pkt.iface].snaplen;
  if (snaplen != 0 && pkt.data.size() > snaplen) return pkt.data.first(snaplen);
  return pkt.data;
}

Result<> CaptureFileWriter::commit() {
  if (buf_.size() < kBufferSize) return {};
  return drain();
}

Result<> CaptureFileWriter::drain() {
  size_t off = 0;
  Result<> r;
  while (off < buf_.size() && r) {
    size_t left = buf_.size() - off;
    if (fp_ != nullptr) {
      errno = 0;
      size_t n = fwrite(buf_.data() + off, 1, left, fp_);
      off += n;
      if (n < left) r = fail_errno("write " + name_, errno != 0 ? errno : EIO);
    } else {
      ssize_t n = ::write(fd_, buf_.data() + off, left);
      if (n >= 0)
        off += size_t(n);
      else if (errno != EINTR)
        r = fail_errno("write " + name_, errno);
    }
  }
  // Keep only what was not written, so a retry cannot duplicate bytes.
  buf_.erase(buf_.begin(), buf_.begin() + ptrdiff_t(off));
  drained_ += off;
  return r;
}

Result<> CaptureFileWriter::flush() {
  if (closed_) return {};
  if (auto r = drain(); !r) return r;
  if (fp_ != nullptr && fflush(fp_) != 0) return fail_errno("flush " + name_, errno);
  return {};
}

Result<> CaptureFileWriter::close() {
  if (closed_) return {};
  Result<> r = flush();
  closed_ = true;
  if (owns_fd_ && ::close(fd_) != 0 && r) r = fail_errno("close " + name_, errno);
  return r;
}

// ---- PcapngWriter ----

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::open(const std::string &path,
                                                         std::vector<InterfaceInfo> ifaces) {
  if (ifaces.empty()) return fail("write " + path + ": no interfaces", EINVAL);
  auto fd = open_file(path);
  if (!fd) return tl::unexpected(fd.error());
  return start(std::unique_ptr<PcapngWriter>(
      new PcapngWriter(path, nullptr, *fd, true, std::move(ifaces))));
}

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::to_stream(FILE *out,
                                                              std::vector<InterfaceInfo> ifaces,
                                                              std::string name) {
  if (ifaces.empty()) return fail("write " + name + ": no interfaces", EINVAL);
  return start(std::unique_ptr<PcapngWriter>(
      new PcapngWriter(std::move(name), out, -1, false, std::move(ifaces))));
}

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::to_fd(int fd, std::vector<InterfaceInfo> ifaces,
                                                          std::string name) {
  if (ifaces.empty()) return fail("write " + name + ": no interfaces", EINVAL);
  return start(std::unique_ptr<PcapngWriter>(
      new PcapngWriter(std::move(name), nullptr, fd, false, std::move(ifaces))));
}

// Writes the SHB and IDBs and pushes them out at once, so a reader on a pipe can start and
// an unwritable output is reported before the first packet.
Result<std::unique_ptr<PcapngWriter>> PcapngWriter::start(std::unique_ptr<PcapngWriter> w) {
  auto &b = w->buffer();

  size_t shb = begin_block(b, kBlockShb);
  put<uint32_t>(b, kByteOrderMagic);
  put<uint16_t>(b, 1); // version 1.0
  put<uint16_t>(b, 0);
  put<int64_t>(b, -1); // section length unknown: we stream
  if (std::string os = os_name(); !os.empty()) put_option(b, shb, kOptShbOs, os);
  put_option(b, shb, kOptShbUserappl, kUserAppl);
  put_end_of_options(b);
  end_block(b, shb);

  for (const auto &iface : w->ifaces()) {
    size_t idb = begin_block(b, kBlockIdb);
    put<uint16_t>(b, iface.linktype);
    put<uint16_t>(b, 0); // reserved
    put<uint32_t>(b, w->header_snaplen());
    if (!iface.name.empty()) put_option(b, idb, kOptIfName, iface.name);
    put_option(b, idb, kOptIfTsresol, &kTsresolNanoseconds, 1);
    put_end_of_options(b);
    end_block(b, idb);
  }

  if (auto r = w->flush(); !r) return tl::unexpected(r.error());
  return w;
}

Result<> PcapngWriter::write(const Packet &pkt) {
  auto data = captured(pkt);
  if (!data) return tl::unexpected(data.error());
  auto caplen = uint32_t(data->size());
  // epb_flags bits 0-1: 01 inbound, 10 outbound; no option when unknown (00).
  uint32_t flags = pkt.dir == Direction::In ? 1u : pkt.dir == Direction::Out ? 2u : 0u;

  // Hot path: the whole block is sized once and filled in place.
  uint32_t padded = (caplen + 3u) & ~3u;
  uint32_t options = flags ? 12u : 0u;  // epb_flags (4 + 4) and end of options (4)
  uint32_t len = 28u + padded + options + 4u;
  const uint32_t head[7] = {kBlockEpb, len, pkt.iface, uint32_t(pkt.ts_ns >> 32), uint32_t(pkt.ts_ns), caplen,
                            std::max(pkt.wire_len, caplen)};  // an original length below caplen is invalid
  auto &b = buffer();
  size_t at = b.size();
  b.resize(at + len);
  uint8_t *p = b.data() + at;
  std::memcpy(p, head, sizeof head);
  std::memcpy(p + 28, data->data(), caplen);
  std::memset(p + 28 + caplen, 0, padded - caplen);
  p += 28 + padded;
  if (flags) {
    const uint16_t opt[2] = {kOptEpbFlags, 4};
    const uint32_t end = 0;  // opt_endofopt: code 0, length 0
    std::memcpy(p, opt, sizeof opt);
    std::memcpy(p + 4, &flags, 4);
    std::memcpy(p + 8, &end, 4);
    p += 12;
  }
  std::memcpy(p, &len, 4);
  return commit();
}

} // namespace bpftap
