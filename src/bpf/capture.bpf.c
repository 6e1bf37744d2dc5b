// placeholder, replaced shortly
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tc") int bpftap_ingress(struct __sk_buff *skb) { return -1; }
char LICENSE[] SEC("license") = "GPL";
