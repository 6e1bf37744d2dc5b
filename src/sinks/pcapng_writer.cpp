#include "sinks/pcapng_writer.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace bpftap {

namespace {

// Bytes (copied and referenced) per writev(2): large enough that a busy capture costs few
// syscalls; flush() empties it every batch anyway.
constexpr size_t kBufferSize = 1 << 20;
// Of which copied into the writer's own buffer (small packets, block headers): 256 KiB is 2,300
// 64-byte packets per writev, and keeps what a file's buffer takes to 320 KiB, 80 pages first
// touched while packets flow (a page fault each) instead of 272.
constexpr size_t kCopiedSize = 256 << 10;
// Packets at least this long are written from where they are (see CaptureFileWriter).
constexpr size_t kReferenceMin = 1024;
// Pieces per writev(2) (IOV_MAX is 1024).
constexpr size_t kMaxPieces = 1024;

constexpr uint32_t kBlockShb = 0x0A0D0D0A;
constexpr uint32_t kBlockIdb = 1;
constexpr uint32_t kBlockEpb = 6;
constexpr uint32_t kBlockIsb = 5;
constexpr uint16_t kOptIsbStarttime = 2;
constexpr uint16_t kOptIsbEndtime = 3;
constexpr uint16_t kOptIsbIfrecv = 4;
constexpr uint16_t kOptIsbIfdrop = 5;
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
  // One more full-size packet fits before draining. Reserved, not written: an agent may hold a
  // file per tap, most of them idle (their pages are only mapped once first written).
  buf_.reserve(kCopiedSize + 65536);
  // A stream with a descriptor behind it (stdout) is written with writev too, after whatever
  // stdio still held; only a stream without one (fmemopen) goes through stdio.
  if (fp_ != nullptr && fileno(fp_) >= 0 && fflush(fp_) == 0) {
    fd_ = fileno(fp_);
    fp_ = nullptr;
  }
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

void CaptureFileWriter::close_run() {
  if (buf_.size() > run_start_) pieces_.push_back({nullptr, run_start_, buf_.size() - run_start_});
  run_start_ = buf_.size();
}

void CaptureFileWriter::append_packet(std::span<const uint8_t> data, bool stable) {
  // Below kReferenceMin, copying costs less than the kernel's walk over one more iovec.
  if (!stable || data.size() < kReferenceMin || fp_ != nullptr) {
    buf_.insert(buf_.end(), data.begin(), data.end());
    return;
  }
  close_run();
  pieces_.push_back({data.data(), 0, data.size()});
  referenced_ += data.size();
}

Result<> CaptureFileWriter::commit(bool packet) {
  pending_records_ += packet;
  if (buf_.size() < kCopiedSize && buf_.size() + referenced_ < kBufferSize && pieces_.size() < kMaxPieces) return {};
  return drain();
}

uint64_t CaptureFileWriter::discard_pending() {
  buf_.clear();
  pieces_.clear();
  referenced_ = 0;
  run_start_ = 0;
  return std::exchange(pending_records_, 0);
}

void CaptureFileWriter::keep_unwritten(size_t piece, size_t skip) {
  std::vector<uint8_t> rest;
  for (size_t i = piece; i < pieces_.size(); i++) {
    const Piece &p = pieces_[i];
    const uint8_t *at = p.ext ? p.ext : buf_.data() + p.off;
    size_t from = i == piece ? skip : 0;
    rest.insert(rest.end(), at + from, at + p.len);
  }
  buf_.swap(rest);
  pieces_.clear();
  referenced_ = 0;
  run_start_ = 0;
}

Result<> CaptureFileWriter::drain_stdio() {
  // stdio: every packet was copied into buf_ (append_packet), so it is one run.
  size_t off = 0;
  Result<> r;
  while (off < buf_.size()) {
    errno = 0;
    size_t n = fwrite(buf_.data() + off, 1, buf_.size() - off, fp_);
    off += n;
    if (n == 0) {
      r = fail_errno("write " + name_, errno != 0 ? errno : EIO);
      break;
    }
  }
  buf_.erase(buf_.begin(), buf_.begin() + ptrdiff_t(off));
  drained_ += off;
  pieces_.clear();
  run_start_ = buf_.size();
  if (r) pending_records_ = 0;
  return r;
}

Result<> CaptureFileWriter::drain() {
  if (fp_ != nullptr) return drain_stdio();
  close_run();
  const uint64_t start = drained_;  // a record boundary: every drain ends with a whole record
  size_t i = 0, skip = 0;  // the first piece not (wholly) written, and how much of it was
  std::vector<iovec> iov;
  iov.reserve(std::min<size_t>(pieces_.size(), kMaxPieces));
  while (i < pieces_.size()) {
    iov.clear();
    for (size_t j = i; j < pieces_.size() && iov.size() < kMaxPieces; j++) {
      const Piece &p = pieces_[j];
      const uint8_t *at = p.ext ? p.ext : buf_.data() + p.off;
      size_t from = j == i ? skip : 0;
      iov.push_back({const_cast<uint8_t *>(at + from), p.len - from});
    }
    ssize_t n = ::writev(fd_, iov.data(), int(iov.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      // Our own file: cut back to where this drain began and keep all of it, so the file ends
      // with a whole record and a retry writes the rest (a full disk must not leave half a
      // packet). Someone else's descriptor (a pipe) cannot be cut: keep what was not written.
      if (owns_fd_ && drained_ > start && ::ftruncate(fd_, static_cast<off_t>(start)) == 0 &&
          ::lseek(fd_, static_cast<off_t>(start), SEEK_SET) == static_cast<off_t>(start)) {
        drained_ = start;
        keep_unwritten(0, 0);
      } else {
        keep_unwritten(i, skip);
      }
      return fail_errno("write " + name_, err);
    }
    drained_ += uint64_t(n);
    // Step over what was written (a short write can end inside a piece).
    auto left = size_t(n);
    while (i < pieces_.size() && left >= pieces_[i].len - skip) {
      left -= pieces_[i].len - skip;
      skip = 0;
      i++;
    }
    skip += left;
  }
  buf_.clear();
  pieces_.clear();
  referenced_ = 0;
  run_start_ = 0;
  pending_records_ = 0;
  return {};
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

  for (const auto &iface : w->ifaces()) w->append_idb(iface);

  if (auto r = w->flush(); !r) return tl::unexpected(r.error());
  return w;
}

Result<> PcapngWriter::write(const Packet &pkt) {
  auto data = captured(pkt);
  if (!data) return tl::unexpected(data.error());
  auto caplen = uint32_t(data->size());
  // epb_flags bits 0-1: 01 inbound, 10 outbound; no option when unknown (00).
  uint32_t flags = pkt.dir == Direction::In ? 1u : pkt.dir == Direction::Out ? 2u : 0u;

  uint32_t padded = (caplen + 3u) & ~3u;
  uint32_t options = flags ? 12u : 0u;  // epb_flags (4 + 4) and end of options (4)
  uint32_t len = 28u + padded + options + 4u;
  const uint32_t head[7] = {kBlockEpb, len, pkt.iface, uint32_t(pkt.ts_ns >> 32), uint32_t(pkt.ts_ns), caplen,
                            std::max(pkt.wire_len, caplen)};  // an original length below caplen is invalid
  auto &b = buffer();
  b.insert(b.end(), reinterpret_cast<const uint8_t *>(head), reinterpret_cast<const uint8_t *>(head) + sizeof head);
  append_packet(*data, pkt.stable);
  uint8_t tail[3 + 12 + 4] = {};  // padding, epb_flags and end of options, block length
  size_t t = padded - caplen;
  if (flags) {
    const uint16_t opt[2] = {kOptEpbFlags, 4};
    std::memcpy(tail + t, opt, sizeof opt);
    std::memcpy(tail + t + 4, &flags, 4);
    t += 12;  // the end of options (code 0, length 0) is the zeros that follow
  }
  std::memcpy(tail + t, &len, 4);
  b.insert(b.end(), tail, tail + t + 4);
  return commit();
}

void PcapngWriter::append_idb(const InterfaceInfo &iface) {
  auto &b = buffer();
  size_t idb = begin_block(b, kBlockIdb);
  put<uint16_t>(b, iface.linktype);
  put<uint16_t>(b, 0); // reserved
  put<uint32_t>(b, header_snaplen());
  if (!iface.name.empty()) put_option(b, idb, kOptIfName, iface.name);
  put_option(b, idb, kOptIfTsresol, &kTsresolNanoseconds, 1);
  put_end_of_options(b);
  end_block(b, idb);
}

Result<> PcapngWriter::add_interface(const InterfaceInfo &info) {
  if (auto r = CaptureFileWriter::add_interface(info); !r) return r;
  append_idb(info);
  return commit(false);
}

// One ISB per interface: counters since the capture started, so a reader sees how lossy the
// file is (Wireshark's capture file properties, capinfos, tshark -z). Written at the end of every
// file, so each file of a rotation carries the totals up to its end.
Result<> PcapngWriter::write_stats(const std::vector<InterfaceTotals> &counters, uint64_t ts_ns) {
  auto &b = buffer();
  for (const auto &c : counters) {
    if (c.iface >= ifaces().size()) continue;
    size_t isb = begin_block(b, kBlockIsb);
    put<uint32_t>(b, c.iface);
    put<uint32_t>(b, uint32_t(ts_ns >> 32));
    put<uint32_t>(b, uint32_t(ts_ns));
    if (c.start_ns) {
      const uint32_t start[2] = {uint32_t(c.start_ns >> 32), uint32_t(c.start_ns)};
      put_option(b, isb, kOptIsbStarttime, start, sizeof start);
      const uint32_t end[2] = {uint32_t(ts_ns >> 32), uint32_t(ts_ns)};
      put_option(b, isb, kOptIsbEndtime, end, sizeof end);
    }
    put_option(b, isb, kOptIsbIfrecv, &c.received, sizeof c.received);
    put_option(b, isb, kOptIsbIfdrop, &c.dropped, sizeof c.dropped);
    put_end_of_options(b);
    end_block(b, isb);
  }
  return commit(false);
}

} // namespace bpftap
