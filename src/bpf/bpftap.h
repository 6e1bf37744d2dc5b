/* Shared between the BPF programs (src/capture/bpf, src/mirror/bpf) and user space: fixed-width fields only.
 * User space checks the layout with static_assert(sizeof(...)). */
#ifndef BPFTAP_BPF_SHARED_H
#define BPFTAP_BPF_SHARED_H

#include <linux/types.h>

#define BPFTAP_MAX_SNAPLEN 262144u
#define BPFTAP_VLAN_HLEN 4u
/* Copies of at most this many bytes go to the capture's small ring, longer ones to its big ring:
 * a ring small enough for the TLB to cover keeps small packets cheap at high rates, a big one
 * absorbs bursts of GSO frames while a file write stalls. */
#define BPFTAP_SMALL_RECORD 512u
/* Small copies reach the small ring in per-CPU batches of up to this many bytes: each ring
 * record there is a run of (struct bpftap_pkt_hdr, cap_len bytes, padding to a multiple of 8),
 * in the order one CPU stamped them. A power of two. */
#define BPFTAP_BATCH_BYTES 8192u

enum bpftap_dir {
  BPFTAP_DIR_IN = 1,
  BPFTAP_DIR_OUT = 2,
};

/* How records leave the kernel (set in rodata before load). */
enum bpftap_output {
  BPFTAP_OUT_RINGBUF = 0,
  BPFTAP_OUT_PERFBUF = 1,
};

/* Header of every captured packet, followed by cap_len bytes of the frame as the kernel holds
 * it. When vlan_tpid != 0 the kernel had moved an 802.1Q/802.1ad tag out of the frame into
 * metadata; user space puts it back at offset 12 (as libpcap does) before writing. */
struct bpftap_pkt_hdr {
  __u64 ts_tai_ns;  /* CLOCK_TAI when the hook ran */
  __u32 ifindex;
  __u32 wire_len;   /* original length, tag included */
  __u32 snap_len;   /* bytes to keep of the tag-restored frame (filter verdict and snaplen) */
  __u32 cap_len;    /* bytes that follow this header */
  __u16 vlan_tpid;  /* host order; 0 = no tag in metadata */
  __u16 vlan_tci;
  __u8 dir;         /* enum bpftap_dir */
  __u8 pad[3];
};

/* The programs find an interface's counters without hashing (ifslot.h): an array indexed by
 * ifindex (a hash only for the rare ifindex past BPFTAP_IFSLOT_DIRECT) gives its slot + 1
 * (0 = not watched), and the per-CPU counters arrays are indexed by bpftap_slot_key(). */
#define BPFTAP_IFSLOT_DIRECT 65536u
#define BPFTAP_MAX_SLOTS 4096u

/* Per (interface, direction) counters. */
struct bpftap_counters {
  __u64 seen;      /* packets through the hook */
  __u64 matched;   /* accepted by the filter ("received by filter") */
  __u64 dropped;   /* copies the kernel could not hand to user space */
  __u64 bytes;     /* wire bytes of matched packets */
};

/* Per (interface, direction) counters of a mirror session. Every packet through the hook is
 * `seen`; those the expression and the rules accept are `matched`; of those, `sampled_out` and
 * `cut_off` are not copied, the rest are `mirrored` or `failed`. */
struct bpftap_mirror_counters {
  __u64 seen;           /* packets through the hook */
  __u64 matched;        /* accepted by the session's expression and rules */
  __u64 sampled_out;    /* matched, but not in the sample */
  __u64 cut_off;        /* matched, but past the flow cutoff */
  __u64 mirrored;       /* clones sent to the target */
  __u64 failed;         /* clones that could not be sent (the original is unaffected) */
  __u64 truncated;      /* mirrored clones longer than the snaplen (cut to it) */
  __u64 bytes;          /* bytes of matched packets */
  __u64 mirrored_bytes; /* bytes of the clones sent, after truncation */
  __u64 bypassed;       /* matched, but their flow is bypassed (shunted) for a while */
};

/* Counters of the program on the target's egress, which truncates clones. */
struct bpftap_target_counters {
  __u64 copies;         /* clones of this session that reached the target */
  __u64 failed;         /* clones dropped because truncation failed */
};

/* An AWS Traffic Mirroring style rule. Addresses and masks are in network order; an IPv4
 * address sits in word 0. Ports are host order and inclusive; [0, 65535] matches any port and
 * also packets without ports. */
#define BPFTAP_MAX_RULES 64
enum bpftap_rule_action {
  BPFTAP_RULE_REJECT = 0,
  BPFTAP_RULE_ACCEPT = 1,
};
struct bpftap_rule {
  __u32 src[4], src_mask[4];
  __u32 dst[4], dst_mask[4];
  __u16 sport_lo, sport_hi;
  __u16 dport_lo, dport_hi;
  __u32 number;   /* order: ascending */
  __u8 action;    /* enum bpftap_rule_action */
  __u8 family;    /* 0 = any (also non-IP packets if nothing else is set), 4 or 6 */
  __u8 proto;     /* IP protocol / IPv6 next header, when has_proto */
  __u8 has_proto;
};

/* An ordered rule set; count 0 mirrors everything the expression accepts. Rule sets are
 * double-buffered (two array slots, `active_rules` picks one) so user space can swap them
 * while the session runs. */
struct bpftap_rule_set {
  __u32 count;
  __u32 pad;
  struct bpftap_rule rules[BPFTAP_MAX_RULES];
};

/* A flow, both directions as one: the (address, port) pairs are ordered so that endpoint 0 is
 * the smaller. Family 0 = not IP. */
struct bpftap_flow_key {
  __u32 addr[2][4];
  __u16 port[2];
  __u8 proto;
  __u8 family;
  __u8 pad[1];
  __u8 pad2;
};

struct bpftap_flow_state {
  __u64 payload_bytes;  /* both directions */
};

static inline __u32 bpftap_slot_key(__u32 slot, __u8 dir) {
  return (slot << 1) | (dir == BPFTAP_DIR_OUT ? 1u : 0u);
}


#endif
