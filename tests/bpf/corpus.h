// Frames of the shared packet corpus (corpus/ in this repository), read with libpcap. Kept apart from the
// BPF headers: <pcap/pcap.h> and <linux/bpf.h> both define struct bpf_insn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bpftap::test {

struct Frame {
  std::string file;
  size_t index;
  std::vector<uint8_t> bytes;
};

// Every frame of every Ethernet pcap/pcapng under `dir`, files in name order.
const std::vector<Frame> &ethernet_corpus(const std::string &dir);

} // namespace bpftap::test
