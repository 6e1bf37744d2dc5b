// Translation of classic BPF (what libpcap's pcap_compile produces for a tcpdump expression)
// into eBPF that runs inside bpftap's TC programs.
#pragma once

#include <linux/bpf.h>
#include <linux/filter.h>

#include <span>
#include <vector>

#include "core/error.h"

namespace bpftap {

// Translates `prog` into the body of the eBPF function
//     u32 bpftap_filter(struct __sk_buff *skb, u32 vtag)
// that returns what libpcap's interpreter (pcap_offline_filter) returns for the same frame:
// the number of bytes to keep, 0 to reject.
//
// The frame the cBPF program sees is the frame as libpcap captures it: when the kernel has
// moved a VLAN tag into skb metadata (vtag = tpid << 16 | tci, non-zero), loads behave as if
// the 4 tag bytes were back at offset 12, and `len` includes them. Packet loads go through
// bpf_skb_load_bytes, so bytes beyond the linear part of the skb (GSO, paged data) are read
// correctly, and a load past the end rejects the packet as libpcap does.
Result<std::vector<bpf_insn>> translate_cbpf(std::span<const sock_filter> prog);

} // namespace bpftap
