/* The start every bpftap TC hook shares (capture and mirror): find the interface's counters
 * (not watched: the packet is none of ours), then the session's filter, and the length the
 * packet has on the wire. Include after <bpf/bpf_helpers.h>, once per BPF object. */
#ifndef BPFTAP_HOOK_H
#define BPFTAP_HOOK_H

#include "bpftap.h"
#include "filter_stub.h"
#include "ifslot.h"

/* The per-CPU counters of (skb's interface, dir) in `counters_map` (a per-CPU array of the
 * program's counters struct, indexed as ifslot.h says), or NULL if the interface is not watched. */
static __always_inline void *hook_counters(struct __sk_buff *skb, __u8 dir, void *counters_map) {
  long k = ifslot_key(skb, dir);
  if (k < 0)
    return NULL;
  __u32 key = (__u32)k;
  return bpf_map_lookup_elem(counters_map, &key);
}

/* The frame's length on the wire: with the VLAN tag the kernel may hold in metadata. */
static __always_inline __u32 wire_len(const struct __sk_buff *skb) {
  return skb->len + (skb->vlan_present ? BPFTAP_VLAN_HLEN : 0);
}

#endif
