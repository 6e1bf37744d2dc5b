// Classic pcap writer, for tools that do not read pcapng.
#pragma once

#include "sinks/pcapng_writer.h"

namespace bpftap {

// pcap with nanosecond timestamps (magic 0xa1b23c4d, version 2.4) in host byte order.
// The format has one link type and no interface ids or directions: all interfaces must
// share a link type, the snaplen is header_snaplen(), and directions are dropped.
class PcapWriter final : public CaptureFileWriter {
public:
  // Creates/truncates path (mode 0666 & ~umask, as tcpdump).
  static Result<std::unique_ptr<PcapWriter>> open(const std::string &path,
                                                   std::vector<InterfaceInfo> ifaces);
  // Writes to a stream / fd the caller keeps owning.
  static Result<std::unique_ptr<PcapWriter>> to_stream(FILE *out, std::vector<InterfaceInfo> ifaces,
                                                        std::string name = "stdout");
  static Result<std::unique_ptr<PcapWriter>> to_fd(int fd, std::vector<InterfaceInfo> ifaces,
                                                    std::string name = "output");

  Result<> write(const Packet &pkt) override;

private:
  using CaptureFileWriter::CaptureFileWriter;
  static Result<> check(const std::string &name, const std::vector<InterfaceInfo> &ifaces);
  static Result<std::unique_ptr<PcapWriter>> start(std::unique_ptr<PcapWriter> w);
};

} // namespace bpftap
