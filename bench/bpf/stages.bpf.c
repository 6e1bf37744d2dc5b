// SPDX-License-Identifier: GPL-2.0
/* bench/bpf_stages: the kernel helpers the capture program calls per packet, one program each,
 * so BPF_PROG_TEST_RUN can time them alone. Not part of bpftap: nothing here is ever attached. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 24);
} ring SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} counter SEC(".maps");

/* The size of a 64-byte packet's record in the capture program: its header and size class. */
#define RECORD (32 + 128)

SEC("tc")
int empty(struct __sk_buff *skb) { return TC_ACT_UNSPEC; }

SEC("tc")
int ktime_tai(struct __sk_buff *skb) {
  skb->cb[0] = (__u32)bpf_ktime_get_tai_ns();
  return TC_ACT_UNSPEC;
}

SEC("tc")
int ktime_boot(struct __sk_buff *skb) {
  skb->cb[0] = (__u32)bpf_ktime_get_boot_ns();
  return TC_ACT_UNSPEC;
}

SEC("tc")
int counter_inc(struct __sk_buff *skb) {
  __u32 zero = 0;
  __u64 *c = bpf_map_lookup_elem(&counter, &zero);
  if (c)
    (*c)++;
  return TC_ACT_UNSPEC;
}

SEC("tc")
int load_bytes_64(struct __sk_buff *skb) {
  __u8 buf[64];
  if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)) == 0)
    skb->cb[0] = buf[63];
  return TC_ACT_UNSPEC;
}

SEC("tc")
int ring_query(struct __sk_buff *skb) {
  skb->cb[0] = (__u32)bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
  return TC_ACT_UNSPEC;
}

SEC("tc")
int ring_reserve_submit(struct __sk_buff *skb) {
  __u8 *rec = bpf_ringbuf_reserve(&ring, RECORD, 0);
  if (!rec)
    return TC_ACT_UNSPEC;
  rec[0] = 1;
  bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
  return TC_ACT_UNSPEC;
}

SEC("tc")
int ring_reserve_load_submit(struct __sk_buff *skb) {
  __u8 *rec = bpf_ringbuf_reserve(&ring, RECORD, 0);
  if (!rec)
    return TC_ACT_UNSPEC;
  if (bpf_skb_load_bytes(skb, 0, rec + 32, 64) < 0) {
    bpf_ringbuf_discard(rec, 0);
    return TC_ACT_UNSPEC;
  }
  bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
  return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
