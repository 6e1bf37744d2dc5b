// SPDX-License-Identifier: GPL-2.0
/* bpftap capture: one TC program per hook direction. Each packet goes through the filter
 * (a tcpdump expression translated from cBPF and spliced in at load time in place of
 * bpftap_filter's body); accepted packets are copied, truncated, to a ring or perf buffer.
 * There are three rings: copies of up to BPFTAP_SMALL_RECORD bytes go to a small one (a few MiB,
 * which the TLB covers, so that a million small packets a second touch no cold page), gathered
 * per CPU and written there in batches (struct cpu_batch below), longer
 * ones to a big one, also of a few MiB, which the cache still holds when the program comes round
 * to a record's place again. When the big one is full (the reader held back), longer copies
 * spill into the spill ring (enough for a quarter second of GSO frames), whose cold memory only
 * a backlog touches: a 64 KB copy into a 128 MiB ring cost three times what it costs in an 8 MiB
 * one (bench/results/2026-12-06-e.md). User space merges the rings by timestamp.
 * The original packet is never modified: the programs always return TC_ACT_UNSPEC
 * (TCX_NEXT), so whatever else is attached still runs and the packet continues. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "hook.h"

const volatile __u32 snaplen = BPFTAP_MAX_SNAPLEN;
const volatile __u8 output = BPFTAP_OUT_RINGBUF;
/* Wake the reader only once this much is waiting in a ring: a wakeup per packet costs the
 * reader more than the copy itself. The reader also drains on a short timer, so nothing waits
 * long. */
const volatile __u32 wakeup_bytes = 1 << 20;
const volatile __u32 wakeup_bytes_small = 1 << 20;
const volatile __u32 wakeup_bytes_spill = 1 << 20;
/* 0 when there is no spill ring (a kernel buffer of 8 MiB or less): a full big ring is a drop. */
const volatile __u8 spill = 1;
/* 1: small copies are gathered per CPU and reach the small ring in batches (see batch below);
 * 0: one ring record each. */
const volatile __u8 batch = 1;
/* A batch's first record waits at most this long (plus the softirq's own delay) for the rest. */
const volatile __u64 batch_flush_ns = 1000000;

#define CLOCK_MONOTONIC 1
#ifndef BPF_F_TIMER_CPU_PIN
#define BPF_F_TIMER_CPU_PIN (1ULL << 1) /* kernel 6.7; not in older UAPI headers */
#endif

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 24);
} ring SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 23);
} ring_small SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 24);
} ring_spill SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2 * BPFTAP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct bpftap_counters);
} counters SEC(".maps");

/* Small copies, gathered per CPU: a ring reservation and commit (a lock, the record header, the
 * producer position) once per batch instead of once per packet saved ~20 ns of a 64-byte
 * packet's time in the softirq (bpf_stats, bench/results/2026-12-06-f.md). Records (a
 * bpftap_pkt_hdr, cap_len bytes, padding to 8)
 * are appended to this CPU's batch, and the batch goes to the small ring as one ring record when
 * the next one does not fit, or when its timer fires: batch_flush_ns after the first record.
 * The timer is pinned to the CPU, and its callback runs in softirq there, so it never runs in
 * the middle of this CPU's hook (softirq, or bottom halves disabled). One entry per CPU. */
struct cpu_batch {
  struct bpf_timer timer;
  __u32 used;  /* bytes of records in data */
  __u8 armed;  /* the timer is pending */
  __u8 ready;  /* the timer is initialised */
  __u8 pad[2];
  /* Room past BPFTAP_BATCH_BYTES only so the verifier sees every write within the value. */
  __u8 data[BPFTAP_BATCH_BYTES + sizeof(struct bpftap_pkt_hdr) + BPFTAP_SMALL_RECORD];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* the number of possible CPUs, set at load */
  __type(key, __u32);
  __type(value, struct cpu_batch);
} batches SEC(".maps");

static __always_inline __u32 min_u32(__u32 a, __u32 b) { return a < b ? a : b; }

/* Wakes the reader once per backlog: when this record (`span` ring bytes, already counted in
 * AVAIL_DATA since its reservation) takes the waiting data past wakeup_bytes. Asking again for every
 * record past it cost each one a self-interrupt (irq_work; ~4 us in a VM) until the reader caught up. */
static __always_inline __u64 ring_wakeup(void *map, __u32 mark, __u64 span) {
  __u64 avail = bpf_ringbuf_query(map, BPF_RB_AVAIL_DATA);
  return avail >= mark && avail - span < mark ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Ring buffer reservations must have a size known to the verifier: round up to a size class.
 * The length stays a 64-bit value so the bound checked here is the one the verifier sees.
 * RESERVE_COPY returns from the function once the record is in `map`; if `map` is full it falls
 * through (to the next ring, or to a drop). */
#define RESERVE_COPY(map, mark, cls)                                                          \
  {                                                                                          \
    struct bpftap_pkt_hdr *rec = bpf_ringbuf_reserve(&map, sizeof(*hdr) + (cls), 0);         \
    if (rec) {                                                                               \
      *rec = *hdr;                                                                           \
      if (len > 0 && bpf_skb_load_bytes(skb, 0, rec + 1, len) < 0) {                         \
        bpf_ringbuf_discard(rec, 0);                                                         \
        return -1;                                                                           \
      }                                                                                      \
      bpf_ringbuf_submit(rec, ring_wakeup(&map, mark, BPF_RINGBUF_HDR_SZ + sizeof(*hdr) + (cls))); \
      return 0;                                                                              \
    }                                                                                        \
  }

#define RING_CLASS(map, mark, cls)                                                            \
  if (len <= (cls)) {                                                                        \
    RESERVE_COPY(map, mark, cls)                                                             \
    return -1;                                                                               \
  }

/* Longer copies: the big ring, else the spill ring. */
#define BIG_CLASS(cls)                                                                        \
  if (len <= (cls)) {                                                                        \
    RESERVE_COPY(ring, wakeup_bytes, cls)                                                    \
    if (spill)                                                                               \
      RESERVE_COPY(ring_spill, wakeup_bytes_spill, cls)                                      \
    return -1;                                                                               \
  }

static __always_inline int emit_ring(struct __sk_buff *skb, const struct bpftap_pkt_hdr *hdr) {
  __u64 len = hdr->cap_len;
  asm volatile("" : "+r"(len)); /* no 32-bit copies of it */
  /* Four classes per power of two: a record wastes at most a fifth of its size in the ring.
   * From 64 bytes: a minimum-size frame's record is 104 ring bytes, not 168. */
  RING_CLASS(ring_small, wakeup_bytes_small, 64)
  RING_CLASS(ring_small, wakeup_bytes_small, 80)
  RING_CLASS(ring_small, wakeup_bytes_small, 96)
  RING_CLASS(ring_small, wakeup_bytes_small, 112)
  RING_CLASS(ring_small, wakeup_bytes_small, 128)
  RING_CLASS(ring_small, wakeup_bytes_small, 160)
  RING_CLASS(ring_small, wakeup_bytes_small, 192)
  RING_CLASS(ring_small, wakeup_bytes_small, 224)
  RING_CLASS(ring_small, wakeup_bytes_small, 256)
  RING_CLASS(ring_small, wakeup_bytes_small, 320)
  RING_CLASS(ring_small, wakeup_bytes_small, 384)
  RING_CLASS(ring_small, wakeup_bytes_small, 448)
  RING_CLASS(ring_small, wakeup_bytes_small, 512)
  _Static_assert(BPFTAP_SMALL_RECORD == 512, "the small ring takes the classes up to 512");
  BIG_CLASS(640)
  BIG_CLASS(768)
  BIG_CLASS(896)
  BIG_CLASS(1024)
  BIG_CLASS(1280)
  BIG_CLASS(1536)
  BIG_CLASS(1792)
  BIG_CLASS(2048)
  BIG_CLASS(2560)
  BIG_CLASS(3072)
  BIG_CLASS(3584)
  BIG_CLASS(4096)
  BIG_CLASS(5120)
  BIG_CLASS(6144)
  BIG_CLASS(7168)
  BIG_CLASS(8192)
  BIG_CLASS(10240)
  BIG_CLASS(12288)
  BIG_CLASS(14336)
  BIG_CLASS(16384)
  BIG_CLASS(20480)
  BIG_CLASS(24576)
  BIG_CLASS(28672)
  BIG_CLASS(32768)
  BIG_CLASS(40960)
  BIG_CLASS(49152)
  BIG_CLASS(57344)
  BIG_CLASS(65536)
  BIG_CLASS(81920)
  BIG_CLASS(98304)
  BIG_CLASS(114688)
  BIG_CLASS(131072)
  BIG_CLASS(163840)
  BIG_CLASS(196608)
  BIG_CLASS(229376)
  BIG_CLASS(BPFTAP_MAX_SNAPLEN)
  return -1;
}

/* Sends this CPU's batch to the small ring. 0 when it went (or was empty); otherwise the ring is
 * full and the batch stays, to be tried again. */
static __always_inline long batch_flush(struct cpu_batch *b) {
  __u64 used = b->used;
  if (used == 0)
    return 0;
  if (used > BPFTAP_BATCH_BYTES) { /* cannot happen; keeps the verifier's bound */
    b->used = 0;
    return 0;
  }
  __u64 span = BPF_RINGBUF_HDR_SZ + used;
  __u64 avail = bpf_ringbuf_query(&ring_small, BPF_RB_AVAIL_DATA);
  __u64 flags = avail < wakeup_bytes_small && avail + span >= wakeup_bytes_small ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  long err = bpf_ringbuf_output(&ring_small, b->data, used, flags);
  if (err == 0)
    b->used = 0;
  return err;
}

static int batch_timer(void *map, __u32 *key, struct cpu_batch *b) {
  b->armed = 0;
  if (batch_flush(b) != 0 && bpf_timer_start(&b->timer, batch_flush_ns, BPF_F_TIMER_CPU_PIN) == 0)
    b->armed = 1; /* the ring is full: again later */
  return 0;
}

/* Appends a small copy to this CPU's batch. 0 when it is there, -1 when it is a drop (the ring
 * and the batch are full), 1 when it is not a small copy (the caller writes it to a ring of
 * its own). */
static __always_inline int emit_batch(struct __sk_buff *skb, const struct bpftap_pkt_hdr *hdr) {
  __u32 cpu = bpf_get_smp_processor_id();
  struct cpu_batch *b = bpf_map_lookup_elem(&batches, &cpu);
  if (!b)
    return -1; /* cannot happen (an entry per possible CPU); a lone record would not parse as a batch */
  __u64 len = hdr->cap_len;
  asm volatile("" : "+r"(len)); /* no 32-bit copies of it */
  if (len > BPFTAP_SMALL_RECORD)
    return 1;
  __u64 need = sizeof(*hdr) + ((len + 7) & ~7ull);
  if (b->used + need > BPFTAP_BATCH_BYTES && batch_flush(b) != 0)
    return -1;
  __u64 off = b->used & (BPFTAP_BATCH_BYTES - 1);
  struct bpftap_pkt_hdr *rec = (void *)(b->data + off);
  *rec = *hdr;
  if (len > 0 && bpf_skb_load_bytes(skb, 0, rec + 1, len) < 0)
    return -1;
  b->used = off + need;
  if (!b->armed) {
    if (!b->ready) {
      bpf_timer_init(&b->timer, &batches, CLOCK_MONOTONIC);
      bpf_timer_set_callback(&b->timer, batch_timer);
      b->ready = 1;
    }
    if (bpf_timer_start(&b->timer, batch_flush_ns, BPF_F_TIMER_CPU_PIN) == 0) {
      b->armed = 1;
    } else if (batch_flush(b) != 0) {
      /* No pinned timer (a kernel before 6.7): every copy goes at once, a batch of one, and
       * one that cannot is taken back out and counted, so nothing waits for a timer that
       * will not come. */
      b->used = off;
      return -1;
    }
  }
  return 0;
}

static __always_inline int emit_perf(struct __sk_buff *skb, const struct bpftap_pkt_hdr *hdr) {
  /* The helper appends cap_len bytes of the skb itself (linear or not) after the header. */
  __u64 flags = BPF_F_CURRENT_CPU | ((__u64)hdr->cap_len << 32);
  return bpf_perf_event_output(skb, &perf, flags, (void *)hdr, sizeof(*hdr));
}

static __always_inline int tap(struct __sk_buff *skb, __u8 dir) {
  struct bpftap_counters *c = hook_counters(skb, dir, &counters);
  if (!c)
    return TC_ACT_UNSPEC; /* an interface we were not asked to watch */
  c->seen++;

  __u32 vtag = packet_vtag(skb);
  __u32 verdict = run_filter(skb, vtag, dir);
  if (verdict == 0)
    return TC_ACT_UNSPEC;

  __u32 len = wire_len(skb);
  c->matched++;
  c->bytes += len;

  struct bpftap_pkt_hdr hdr = {};
  hdr.ts_tai_ns = bpf_ktime_get_tai_ns();
  hdr.ifindex = skb->ifindex;
  hdr.wire_len = len;
  hdr.snap_len = min_u32(min_u32(verdict, snaplen), len);
  /* The tag, if any, is restored in user space, so the kernel copies at most snap_len bytes. */
  hdr.cap_len = min_u32(min_u32(hdr.snap_len, skb->len), BPFTAP_MAX_SNAPLEN);
  hdr.vlan_tpid = vtag >> 16;
  hdr.vlan_tci = vtag & 0xffff;
  hdr.dir = dir;

  int err;
  if (output == BPFTAP_OUT_PERFBUF) {
    err = emit_perf(skb, &hdr);
  } else {
    err = batch ? emit_batch(skb, &hdr) : 1;
    if (err > 0)
      err = emit_ring(skb, &hdr);
  }
  if (err)
    c->dropped++;
  return TC_ACT_UNSPEC;
}

SEC("bpftap_tc")
int bpftap_ingress(struct __sk_buff *skb) { return tap(skb, BPFTAP_DIR_IN); }

SEC("bpftap_tc")
int bpftap_egress(struct __sk_buff *skb) { return tap(skb, BPFTAP_DIR_OUT); }

/* Tests only (not loaded in production): runs the spliced filter alone and returns its verdict.
 * The VLAN tag comes from skb->mark and the packet type from skb->priority, which
 * BPF_PROG_TEST_RUN lets tests set. */
SEC("bpftap_tc")
int bpftap_filter_test(struct __sk_buff *skb) { return bpftap_filter(skb, skb->mark, skb->priority); }

char LICENSE[] SEC("license") = "GPL";
