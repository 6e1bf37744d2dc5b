// SPDX-License-Identifier: GPL-2.0
/* bpftap mirror: the virtual TAP. Packets accepted by the session's filter are cloned in the
 * kernel and the clone is sent out of the target interface (e.g. mon0, whose peer sits in the
 * monitor namespace where an IDS listens). The original is never modified or dropped: the
 * programs always return TC_ACT_UNSPEC (TCX_NEXT); a clone that cannot be sent is counted. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpftap.h"
#include "filter_stub.h"

const volatile __u32 target_ifindex = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct bpftap_mirror_counters);
} mirror_counters SEC(".maps");

static __always_inline int mirror(struct __sk_buff *skb, __u8 dir) {
  __u32 key = bpftap_counter_key(skb->ifindex, dir);
  struct bpftap_mirror_counters *c = bpf_map_lookup_elem(&mirror_counters, &key);
  if (!c)
    return TC_ACT_UNSPEC;
  c->seen++;
  if (run_filter(skb, packet_vtag(skb), dir) == 0)
    return TC_ACT_UNSPEC;
  c->matched++;
  c->bytes += skb->len;
  /* Clones to the target's egress; the original continues untouched. */
  if (bpf_clone_redirect(skb, target_ifindex, 0) == 0)
    c->mirrored++;
  else
    c->failed++;
  return TC_ACT_UNSPEC;
}

SEC("bpftap_tc")
int bpftap_mirror_in(struct __sk_buff *skb) { return mirror(skb, BPFTAP_DIR_IN); }

SEC("bpftap_tc")
int bpftap_mirror_out(struct __sk_buff *skb) { return mirror(skb, BPFTAP_DIR_OUT); }

char LICENSE[] SEC("license") = "GPL";
