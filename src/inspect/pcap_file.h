// Reading a pcap or pcapng file (libpcap) into a packet sink. Kept apart from code that includes
// <linux/bpf.h>: both headers define struct bpf_insn.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap::inspect {

class PcapFile {
public:
  // Opens FILE and applies a pcap-filter expression ("" = all); errors are bad input.
  static Result<std::unique_ptr<PcapFile>> open(const std::string &path, const std::string &filter);
  ~PcapFile();
  uint16_t linktype() const;
  // Every packet to `sink` (as interface 0). A damaged or truncated file: the packets before the
  // damage are delivered, then a bad-input error.
  Result<> read_all(PacketSink &sink);

private:
  struct Impl;
  explicit PcapFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap::inspect
