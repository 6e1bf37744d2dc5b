/* Shared between the BPF programs (src/bpf) and user space: fixed-width fields only.
 * User space checks the layout with static_assert(sizeof(...)). */
#ifndef BPFTAP_BPF_SHARED_H
#define BPFTAP_BPF_SHARED_H

#include <linux/types.h>

#define BPFTAP_MAX_SNAPLEN 262144u
#define BPFTAP_VLAN_HLEN 4u

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

/* Per (interface, direction) counters, in a per-CPU hash keyed by bpftap_counter_key(). */
struct bpftap_counters {
  __u64 seen;      /* packets through the hook */
  __u64 matched;   /* accepted by the filter ("received by filter") */
  __u64 dropped;   /* copies the kernel could not hand to user space */
  __u64 bytes;     /* wire bytes of matched packets */
};

/* Per (interface, direction) counters of a mirror session. */
struct bpftap_mirror_counters {
  __u64 seen;      /* packets through the hook */
  __u64 matched;   /* accepted by the session's filter */
  __u64 mirrored;  /* clones sent to the target */
  __u64 failed;    /* clones that could not be sent (the original is unaffected) */
  __u64 bytes;     /* bytes of matched packets */
};

static inline __u32 bpftap_counter_key(__u32 ifindex, __u8 dir) {
  return (ifindex << 1) | (dir == BPFTAP_DIR_OUT ? 1u : 0u);
}

#endif
