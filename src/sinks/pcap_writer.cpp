#include "sinks/pcap_writer.h"

#include <algorithm>

namespace bpftap {

namespace {

constexpr uint32_t kMagicNanoseconds = 0xa1b23c4d;

template <class T> void put(std::vector<uint8_t> &b, T v) {
  auto *p = reinterpret_cast<const uint8_t *>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

} // namespace

// Checked before the file is created, so a bad request leaves nothing behind.
Result<> PcapWriter::check(const std::string &name, const std::vector<InterfaceInfo> &ifaces) {
  if (ifaces.empty()) return fail("write " + name + ": no interfaces", EINVAL);
  for (const auto &i : ifaces)
    if (i.linktype != ifaces.front().linktype)
      return fail("write " + name + ": pcap holds one link type but " + ifaces.front().name +
                      " has " + std::to_string(ifaces.front().linktype) + " and " + i.name +
                      " has " + std::to_string(i.linktype) + " (use pcapng)",
                  EINVAL);
  return {};
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::open(const std::string &path,
                                                     std::vector<InterfaceInfo> ifaces) {
  if (auto r = check(path, ifaces); !r) return tl::unexpected(r.error());
  auto fd = open_file(path);
  if (!fd) return tl::unexpected(fd.error());
  return start(std::unique_ptr<PcapWriter>(
      new PcapWriter(path, nullptr, *fd, true, std::move(ifaces))));
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::to_stream(FILE *out,
                                                          std::vector<InterfaceInfo> ifaces,
                                                          std::string name) {
  if (auto r = check(name, ifaces); !r) return tl::unexpected(r.error());
  return start(std::unique_ptr<PcapWriter>(
      new PcapWriter(std::move(name), out, -1, false, std::move(ifaces))));
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::to_fd(int fd, std::vector<InterfaceInfo> ifaces,
                                                      std::string name) {
  if (auto r = check(name, ifaces); !r) return tl::unexpected(r.error());
  return start(std::unique_ptr<PcapWriter>(
      new PcapWriter(std::move(name), nullptr, fd, false, std::move(ifaces))));
}

// Writes the file header and pushes it out at once (see PcapngWriter::start).
Result<std::unique_ptr<PcapWriter>> PcapWriter::start(std::unique_ptr<PcapWriter> w) {
  auto &b = w->buffer();
  put<uint32_t>(b, kMagicNanoseconds);
  put<uint16_t>(b, 2); // version 2.4
  put<uint16_t>(b, 4);
  put<int32_t>(b, 0);  // thiszone: timestamps are UTC
  put<uint32_t>(b, 0); // sigfigs
  put<uint32_t>(b, w->header_snaplen());
  put<uint32_t>(b, w->ifaces().front().linktype);

  if (auto r = w->flush(); !r) return tl::unexpected(r.error());
  return w;
}

Result<> PcapWriter::write(const Packet &pkt) {
  auto data = captured(pkt);
  if (!data) return tl::unexpected(data.error());
  auto caplen = uint32_t(data->size());

  auto &b = buffer();
  put<uint32_t>(b, uint32_t(pkt.ts_ns / 1'000'000'000));
  put<uint32_t>(b, uint32_t(pkt.ts_ns % 1'000'000'000));
  put<uint32_t>(b, caplen);
  put<uint32_t>(b, std::max(pkt.wire_len, caplen)); // an original length below caplen is invalid
  append_packet(*data, pkt.stable);
  return commit();
}

} // namespace bpftap
