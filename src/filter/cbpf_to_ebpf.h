// Translation of classic BPF (what libpcap's pcap_compile produces for a tcpdump expression)
// into eBPF that runs inside bpftap's TC programs.
#pragma once

#include <linux/bpf.h>
#include <linux/filter.h>

#include <span>
#include <vector>

#include "util/error.h"

namespace bpftap {

// How a VLAN tag that the kernel moved into skb metadata appears to the cBPF program.
enum class VlanView {
  // As libpcap's pcap_offline_filter sees a saved frame: the 4 tag bytes back at offset 12
  // (and counted in `len`). For programs compiled on a dead handle.
  Inline,
  // As the kernel's socket filter sees it, which is what `tcpdump -i` filters on: the frame
  // without the tag, and the tag through the ancillary loads vlan_avail / vlan_tci / vlan_tpid.
  // For programs compiled on a live Linux handle (BPF_SPECIAL_VLAN_HANDLING).
  Metadata,
};

struct TranslateOptions {
  VlanView vlan = VlanView::Inline;
  // Read bytes in the skb's linear part directly (a bounds check and a load) and call
  // bpf_skb_load_bytes only for the rest. The helper call costs ~25 ns per load, and a filter
  // such as `udp port 53` makes six loads. Off: every load through the helper (tests use it to
  // run the path that paged data takes, which BPF_PROG_TEST_RUN's linear skbs never reach).
  bool direct_reads = true;
};

// Translates `prog` into the body of the eBPF function
//     u32 bpftap_filter(struct __sk_buff *skb, u32 vtag, u32 pkttype)
// that returns what the cBPF program returns for the same frame: the number of bytes to keep,
// 0 to reject. vtag = tpid << 16 | tci of a tag in metadata (0 = none); pkttype is what an
// AF_PACKET socket reports (PACKET_OUTGOING on egress) for the `inbound`/`outbound` ancillary
// load. Packet loads read the linear part of the skb directly and go through
// bpf_skb_load_bytes beyond it, so bytes in paged data (GSO) are read correctly, and a load past
// the end rejects the packet as libpcap and the kernel do.
Result<std::vector<bpf_insn>> translate_cbpf(std::span<const sock_filter> prog, TranslateOptions opts = {});

} // namespace bpftap
