/* The filter contract shared by every program in SEC("bpftap_tc"); see src/filter/splice.h.
 * Include once per BPF object, after <bpf/bpf_helpers.h>. */
#ifndef BPFTAP_FILTER_STUB_H
#define BPFTAP_FILTER_STUB_H

#include <linux/if_packet.h>
#include <bpf/bpf_endian.h>

#include "bpftap.h"

/* User space replaces this body with the translated tcpdump expression (functions after it in
 * the program move by the difference; see src/filter/splice.cpp). Arguments: the skb, the VLAN
 * tag the kernel took out of the frame (tpid << 16 | tci, 0 = none) and the packet type an
 * AF_PACKET socket would report (PACKET_OUTGOING on egress). Returns the number of bytes to
 * capture, 0 to reject, like a cBPF socket filter. The asm keeps clang from folding the default
 * "accept everything" into the callers, and the inputs keep the arguments in r1-r3. */
static __attribute__((noinline)) __u32 bpftap_filter(struct __sk_buff *skb, __u32 vtag, __u32 pkttype) {
  __u32 accept;
  asm volatile("%0 = 262144" : "=r"(accept) : "r"(skb), "r"(vtag), "r"(pkttype));
  return accept;
}

static __always_inline __u32 packet_vtag(const struct __sk_buff *skb) {
  return skb->vlan_present ? ((__u32)bpf_ntohs(skb->vlan_proto) << 16) | skb->vlan_tci : 0;
}

/* The filter's verdict for a packet seen at hook direction `dir`. */
static __always_inline __u32 run_filter(struct __sk_buff *skb, __u32 vtag, __u8 dir) {
  __u32 pkttype = dir == BPFTAP_DIR_OUT ? PACKET_OUTGOING : skb->pkt_type;
  return bpftap_filter(skb, vtag, pkttype);
}

#endif
