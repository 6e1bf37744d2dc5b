// SPDX-License-Identifier: GPL-2.0
/* bpftap mirror: the virtual TAP. Packets accepted by the session's expression and rules (and
 * kept by sampling and the flow cutoff) are cloned in the kernel and the clone is sent out of the
 * target interface: a monitor port such as mon0, or bpftap's VXLAN device towards a remote sensor.
 *
 * The original is never modified or dropped: the source programs always return TC_ACT_UNSPEC
 * (TCX_NEXT; as a classifier, below, 0 or -1: no verdict on the packet), and the only field they touch, skb->mark, is restored right after the clone.
 * The mark carries the session's tag to the clone, so that `bpftap_mirror_target`, on the
 * target's egress, recognises this session's copies among everything else and truncates them
 * to the snaplen there: on the copy, never on the original. (A VXLAN device has its remote and
 * VNI fixed: the kernel encapsulates the copy, nothing here does.)
 * A clone that cannot be sent is counted.
 *
 * With `classify_only` (bpftap mirror --attach tc, no truncation) the source programs make no
 * clone: they run as a cls_bpf classifier in front of tc's mirred action, return 0 (no match) or
 * -1 (a match), and act_mirred makes the copy. bpf_clone_redirect also unclones the original's
 * head (a pskb_expand_head per copy, net/core/filter.c), which act_mirred does not; copies
 * act_mirred cannot send are its action's overlimits, which user space counts as failed. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "hook.h"

/* Set by user space before load. */
const volatile __u32 target_ifindex = 0;
const volatile __u32 session_tag = 0;      /* non-zero: a target program handles the clones */
const volatile __u32 snaplen = 0;          /* 0 = whole packets */
const volatile __u32 sample_n = 0;         /* 0 or 1 = every flow */
const volatile __u64 flow_cutoff = 0;      /* 0 = no cutoff */
const volatile __u32 classify_only = 0;    /* a classifier for tc's mirred action (above) */

/* Which slot of `rule_sets` is live; user space writes the other slot, then flips this. */
volatile __u32 active_rules = 0;
/* Entries in `bypass` (kept by user space): 0 = skip the lookup. */
volatile __u32 bypass_entries = 0;

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, struct bpftap_rule_set);
} rule_sets SEC(".maps");

/* By bpftap_slot_key() of the interface's slot (ifslot.h). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2 * BPFTAP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct bpftap_mirror_counters);
} mirror_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bpftap_target_counters);
} target_counters SEC(".maps");

/* Payload bytes seen per flow, for the cutoff; user space sizes it before load. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct bpftap_flow_key);
  __type(value, struct bpftap_flow_state);
} flows SEC(".maps");

/* Flows not to mirror until a time (bpf_ktime_get_ns): the shunt an IDS asks for when it has seen
 * enough of an elephant flow. Both directions share the key. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct bpftap_flow_key);
  __type(value, __u64);
} bypass SEC(".maps");

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

/* What rules, sampling and the cutoff look at. Endpoint 0 is the source. Like tcpdump's `tcp`,
 * `port` and `net` primitives: the tag the kernel moved to metadata is transparent, the IPv6
 * protocol is the fixed header's next header, and only first fragments carry ports. */
struct packet_info {
  __u32 addr[2][4];
  __u16 port[2];
  __u8 family;   /* 0 = not IP */
  __u8 proto;
  __u8 has_ports;
  __u8 tcp_flags;
  __u32 payload; /* L4 payload bytes (IP payload without the TCP/UDP header) */
};

/* Copies `len` (a constant) bytes at `off` to `to`: straight from the skb's linear part when they
 * lie in it (a bounds check), through the helper (~25 ns a call) for paged data. */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len) {
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (off < 0xff00) {
    void *at = data + off;
    if (at + len <= end) {
      __builtin_memcpy(to, at, len);
      return 0;
    }
  }
  return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline void parse(struct __sk_buff *skb, struct packet_info *p) {
  __u16 proto;
  __u32 l4 = 0, end = skb->len;
  if (load(skb, 12, &proto, 2))
    return;
  if (proto == bpf_htons(ETH_P_IP)) {
    __u8 ip[20];
    if (load(skb, ETH_HLEN, ip, sizeof(ip)) || (ip[0] >> 4) != 4)
      return;
    __u32 tot = ((__u32)ip[2] << 8) | ip[3];
    if (tot && ETH_HLEN + tot < end) /* Ethernet padding is not payload */
      end = ETH_HLEN + tot;
    p->family = 4;
    p->proto = ip[9];
    __builtin_memcpy(&p->addr[0][0], &ip[12], 4);
    __builtin_memcpy(&p->addr[1][0], &ip[16], 4);
    l4 = ETH_HLEN + (ip[0] & 0xf) * 4;
    if (((ip[6] & 0x1f) | ip[7]) != 0) { /* not the first fragment: no L4 header */
      p->payload = end > l4 ? end - l4 : 0;
      return;
    }
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    __u8 ip6[40];
    if (load(skb, ETH_HLEN, ip6, sizeof(ip6)) || (ip6[0] >> 4) != 6)
      return;
    __u32 plen = ((__u32)ip6[4] << 8) | ip6[5];
    if (plen && ETH_HLEN + 40 + plen < end)
      end = ETH_HLEN + 40 + plen;
    p->family = 6;
    p->proto = ip6[6];
    __builtin_memcpy(p->addr[0], &ip6[8], 16);
    __builtin_memcpy(p->addr[1], &ip6[24], 16);
    l4 = ETH_HLEN + 40;
  } else {
    return;
  }
  __u32 hdr = 0;
  if (p->proto == IPPROTO_TCP) {
    __u8 tcp[14];
    if (load(skb, l4, tcp, sizeof(tcp)) == 0) {
      p->port[0] = ((__u16)tcp[0] << 8) | tcp[1];
      p->port[1] = ((__u16)tcp[2] << 8) | tcp[3];
      p->has_ports = 1;
      p->tcp_flags = tcp[13];
      hdr = (tcp[12] >> 4) * 4;
    }
  } else if (p->proto == IPPROTO_UDP) {
    __u8 udp[4];
    if (load(skb, l4, udp, sizeof(udp)) == 0) {
      p->port[0] = ((__u16)udp[0] << 8) | udp[1];
      p->port[1] = ((__u16)udp[2] << 8) | udp[3];
      p->has_ports = 1;
      hdr = 8;
    }
  }
  p->payload = end > l4 + hdr ? end - l4 - hdr : 0;
}

static __always_inline int addr_in(const __u32 *a, const __u32 *net, const __u32 *mask) {
  return ((a[0] & mask[0]) == net[0]) & ((a[1] & mask[1]) == net[1]) & ((a[2] & mask[2]) == net[2]) &
         ((a[3] & mask[3]) == net[3]);
}

static __always_inline int rule_matches(const struct bpftap_rule *r, const struct packet_info *p) {
  if (r->family && r->family != p->family)
    return 0;
  if (r->has_proto && (!p->family || r->proto != p->proto))
    return 0;
  if (p->family && !(addr_in(p->addr[0], r->src, r->src_mask) && addr_in(p->addr[1], r->dst, r->dst_mask)))
    return 0;
  int any_sport = r->sport_lo == 0 && r->sport_hi == 0xffff;
  int any_dport = r->dport_lo == 0 && r->dport_hi == 0xffff;
  if (any_sport && any_dport)
    return 1;
  if (!p->has_ports)
    return 0;
  return p->port[0] >= r->sport_lo && p->port[0] <= r->sport_hi && p->port[1] >= r->dport_lo &&
         p->port[1] <= r->dport_hi;
}

/* The live rule set, or NULL when there are no rules. */
static __always_inline struct bpftap_rule_set *live_rules(void) {
  __u32 slot = active_rules & 1;
  struct bpftap_rule_set *set = bpf_map_lookup_elem(&rule_sets, &slot);
  return set && set->count ? set : NULL;
}

/* First matching rule wins; with rules but no match, the packet is not mirrored (as in AWS). */
static __always_inline int rules_accept(const struct bpftap_rule_set *set, const struct packet_info *p) {
  for (__u32 i = 0; i < BPFTAP_MAX_RULES; i++) {
    if (i >= set->count)
      break;
    if (rule_matches(&set->rules[i], p))
      return set->rules[i].action == BPFTAP_RULE_ACCEPT;
  }
  return 0;
}

/* Both directions of a flow give the same key: the smaller (address, port) is endpoint 0. */
static __always_inline void flow_key(const struct packet_info *p, struct bpftap_flow_key *k) {
  int decided = 0, swap = 0;
  for (int i = 0; i < 4; i++) {
    __u32 a = bpf_ntohl(p->addr[0][i]), b = bpf_ntohl(p->addr[1][i]);
    if (!decided && a != b) {
      swap = a > b;
      decided = 1;
    }
  }
  if (!decided)
    swap = p->port[0] > p->port[1];
  if (swap) {
    __builtin_memcpy(k->addr[0], p->addr[1], 16);
    __builtin_memcpy(k->addr[1], p->addr[0], 16);
    k->port[0] = p->port[1];
    k->port[1] = p->port[0];
  } else {
    __builtin_memcpy(k->addr[0], p->addr[0], 16);
    __builtin_memcpy(k->addr[1], p->addr[1], 16);
    k->port[0] = p->port[0];
    k->port[1] = p->port[1];
  }
  k->proto = p->proto;
  k->family = p->family;
}

static __always_inline __u32 mix(__u32 h, __u32 v) {
  h ^= v;
  h *= 0x9e3779b1u;
  return h ^ (h >> 15);
}

/* Per-flow sampling: the flow's hash decides, so a sampled flow arrives whole. Packets that are
 * not IP are sampled one by one at random. */
static __always_inline int in_sample(const struct packet_info *p) {
  if (!p->family)
    return bpf_get_prandom_u32() % sample_n == 0;
  struct bpftap_flow_key k = {};
  flow_key(p, &k);
  __u32 h = 0x811c9dc5u;
  for (int i = 0; i < 4; i++)
    h = mix(mix(h, k.addr[0][i]), k.addr[1][i]);
  h = mix(h, ((__u32)k.port[0] << 16) | k.port[1]);
  h = mix(h, k.proto);
  h ^= h >> 13;
  h *= 0x85ebca6bu;
  h ^= h >> 16;
  return h % sample_n == 0;
}

/* The flow cutoff: a packet is mirrored while its flow (both directions counted together) has
 * carried fewer than `flow_cutoff` payload bytes before it, and always when it has SYN, FIN or
 * RST. Packets that are not IP are always mirrored. */
static __always_inline int within_cutoff(const struct packet_info *p) {
  if (!p->family)
    return 1;
  struct bpftap_flow_key k = {};
  flow_key(p, &k);
  __u64 before = 0;
  struct bpftap_flow_state *st = bpf_map_lookup_elem(&flows, &k);
  if (st) {
    before = __sync_fetch_and_add(&st->payload_bytes, p->payload);
  } else {
    struct bpftap_flow_state init = {.payload_bytes = p->payload};
    if (bpf_map_update_elem(&flows, &k, &init, BPF_NOEXIST) != 0) {
      st = bpf_map_lookup_elem(&flows, &k); /* another CPU inserted it first */
      if (st)
        before = __sync_fetch_and_add(&st->payload_bytes, p->payload);
    }
  }
  if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)))
    return 1;
  return before < flow_cutoff;
}

/* What a source program returns for a packet it does not copy: on to the next program (TCX_NEXT,
 * TC_ACT_UNSPEC), or, as a classifier, no match (0: tc's next filter runs). */
#define PASS (classify_only ? 0 : TC_ACT_UNSPEC)

static __always_inline int mirror(struct __sk_buff *skb, __u8 dir) {
  struct bpftap_mirror_counters *c = hook_counters(skb, dir, &mirror_counters);
  if (!c)
    return PASS; /* an interface we were not asked to watch */
  c->seen++;
  if (run_filter(skb, packet_vtag(skb), dir) == 0)
    return PASS;
  /* Headers are parsed only when rules, sampling or the cutoff need them. */
  struct bpftap_rule_set *rules = live_rules();
  struct packet_info p = {};
  if (rules || sample_n > 1 || flow_cutoff || bypass_entries)
    parse(skb, &p);
  if (rules && !rules_accept(rules, &p))
    return PASS;
  __u32 len = wire_len(skb);
  c->matched++;
  c->bytes += len;
  if (bypass_entries && p.family) {
    struct bpftap_flow_key k = {};
    flow_key(&p, &k);
    __u64 *until = bpf_map_lookup_elem(&bypass, &k);
    if (until && bpf_ktime_get_ns() < *until) {
      c->bypassed++;
      return PASS;
    }
  }
  if (sample_n > 1 && !in_sample(&p)) {
    c->sampled_out++;
    return PASS;
  }
  if (flow_cutoff && !within_cutoff(&p)) {
    c->cut_off++;
    return PASS;
  }
  if (classify_only) { /* tc's mirred action makes and sends the copy */
    c->mirrored++;
    c->mirrored_bytes += len;
    return -1;
  }
  /* The tag rides on the clone; the original gets its mark back before anything else sees it. */
  __u32 mark = skb->mark;
  if (session_tag)
    skb->mark = session_tag;
  long err = bpf_clone_redirect(skb, target_ifindex, 0);
  if (session_tag)
    skb->mark = mark;
  if (err) {
    c->failed++;
    return PASS;
  }
  c->mirrored++;
  if (snaplen && len > snaplen) {
    c->truncated++;
    len = snaplen;
  }
  c->mirrored_bytes += len;
  return PASS;
}

SEC("bpftap_tc")
int bpftap_mirror_in(struct __sk_buff *skb) { return mirror(skb, BPFTAP_DIR_IN); }

SEC("bpftap_tc")
int bpftap_mirror_out(struct __sk_buff *skb) { return mirror(skb, BPFTAP_DIR_OUT); }

/* On the target's egress: this session's clones are cut to the snaplen. Anything else passes to
 * the next program untouched. A clone that cannot be cut is dropped (it is a copy) and counted. */
SEC("tc")
int bpftap_mirror_target(struct __sk_buff *skb) {
  if (skb->mark != session_tag)
    return TC_ACT_UNSPEC;
  skb->mark = 0;
  __u32 zero = 0;
  struct bpftap_target_counters *c = bpf_map_lookup_elem(&target_counters, &zero);
  if (!c)
    return TC_ACT_SHOT;
  c->copies++;
  /* The snaplen counts the VLAN tag the kernel holds in metadata: it is in the frame on the wire. */
  __u32 keep = snaplen && skb->vlan_present ? snaplen - BPFTAP_VLAN_HLEN : snaplen;
  if (snaplen && skb->len > keep && bpf_skb_change_tail(skb, keep, 0)) {
    c->failed++;
    return TC_ACT_SHOT;
  }
  return TC_ACT_UNSPEC; /* on to the next program, if any, then out */
}

char LICENSE[] SEC("license") = "GPL";
