// tcpdump expressions → classic BPF, with libpcap's own compiler.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap {

// Compiles a pcap-filter expression for Ethernet frames (as `tcpdump -i ethX` would on a frame
// whose VLAN tags are inline). An empty expression accepts every packet. The program returns
// `snaplen` for accepted packets and 0 otherwise.
Result<std::vector<sock_filter>> compile_pcap_filter(const std::string &expression, uint32_t snaplen);

// Compiles the expression exactly as `tcpdump -i IFACE` does on Linux: on a live handle, whose
// code reads VLAN tags from skb metadata (ancillary loads) and the rest from the frame as the
// kernel holds it. Translate the result with VlanView::Metadata. Needs CAP_NET_RAW; the handle
// captures nothing and is closed at once. Interfaces that are not Ethernet are refused.
// A down interface cannot be opened, but the code depends only on the link type and the live
// Linux handling: it is compiled on loopback then, this namespace's or (`home`) the process's own.
Result<std::vector<sock_filter>> compile_pcap_filter_live(const std::string &expression, uint32_t snaplen,
                                                          const std::string &iface, bool home = false);

// What the test reference substitutes for Linux ancillary loads, which libpcap's userland
// interpreter cannot evaluate: each becomes a load of the given constant.
struct AncillaryValues {
  uint32_t vlan_present = 0, vlan_tci = 0, vlan_tpid = 0, pkttype = 0;
};
std::vector<sock_filter> substitute_ancillary(std::vector<sock_filter> prog, const AncillaryValues &v);

// libpcap's own interpreter on one frame (the reference the eBPF translation is tested against).
uint32_t run_pcap_filter(const std::vector<sock_filter> &prog, const uint8_t *frame, uint32_t caplen,
                         uint32_t wire_len);

} // namespace bpftap
