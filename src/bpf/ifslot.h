/* Which interface a hook runs for, without hashing: every TC program of bpftap shares one program
 * per hook direction among all its interfaces, and keeps per-interface counters in a per-CPU
 * array indexed by the interface's slot. `ifslot` maps an ifindex to slot + 1 (0 = not watched);
 * ifindexes past BPFTAP_IFSLOT_DIRECT (they grow with interface churn) are in a small hash.
 * User space: kernel/ifslots.h. */
#ifndef BPFTAP_IFSLOT_H
#define BPFTAP_IFSLOT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpftap.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, BPFTAP_IFSLOT_DIRECT);
  __type(key, __u32);
  __type(value, __u32);
} ifslot SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BPFTAP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, __u32);
} ifslot_big SEC(".maps");

/* The counters key of (skb's interface, dir), or -1 when the interface is not watched. */
static __always_inline long ifslot_key(struct __sk_buff *skb, __u8 dir) {
  __u32 ifindex = skb->ifindex;
  __u32 *slot;
  if (ifindex < BPFTAP_IFSLOT_DIRECT) {
    slot = bpf_map_lookup_elem(&ifslot, &ifindex);
    /* Keeps clang from merging the two lookups into one call with either map: the verifier
     * inlines an array lookup (a few instructions) only where the call sees one map. */
    asm volatile("" : "+r"(slot));
  } else {
    slot = bpf_map_lookup_elem(&ifslot_big, &ifindex);
  }
  if (!slot || *slot == 0)
    return -1;
  return bpftap_slot_key(*slot - 1, dir);
}

#endif
