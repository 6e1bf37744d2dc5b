// tcpdump expressions → classic BPF, with libpcap's own compiler.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace bpftap {

// Compiles a pcap-filter expression for Ethernet frames (as `tcpdump -i ethX` would on a frame
// whose VLAN tags are inline). An empty expression accepts every packet. The program returns
// `snaplen` for accepted packets and 0 otherwise.
Result<std::vector<sock_filter>> compile_pcap_filter(const std::string &expression, uint32_t snaplen);

// libpcap's own interpreter on one frame (the reference the eBPF translation is tested against).
uint32_t run_pcap_filter(const std::vector<sock_filter> &prog, const uint8_t *frame, uint32_t caplen,
                         uint32_t wire_len);

} // namespace bpftap
