#include "core/filter.h"

#include <pcap/pcap.h>

#include <cstring>
#include <memory>

namespace bpftap {

static_assert(sizeof(sock_filter) == sizeof(struct bpf_insn), "cBPF layouts differ");

Result<std::vector<sock_filter>> compile_pcap_filter(const std::string &expression, uint32_t snaplen) {
  std::unique_ptr<pcap_t, decltype(&pcap_close)> dead(
      pcap_open_dead(DLT_EN10MB, static_cast<int>(snaplen)), &pcap_close);
  if (!dead) return fail("pcap_open_dead", ENOMEM);
  bpf_program prog{};
  if (pcap_compile(dead.get(), &prog, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return fail("bad filter expression '" + expression + "': " + pcap_geterr(dead.get()));
  std::vector<sock_filter> out(prog.bf_len);
  std::memcpy(out.data(), prog.bf_insns, prog.bf_len * sizeof(sock_filter));
  pcap_freecode(&prog);
  return out;
}

uint32_t run_pcap_filter(const std::vector<sock_filter> &prog, const uint8_t *frame, uint32_t caplen,
                         uint32_t wire_len) {
  bpf_program p{static_cast<u_int>(prog.size()),
                reinterpret_cast<struct bpf_insn *>(const_cast<sock_filter *>(prog.data()))};
  pcap_pkthdr hdr{};
  hdr.caplen = caplen;
  hdr.len = wire_len;
  return static_cast<uint32_t>(pcap_offline_filter(&p, &hdr, frame));
}

} // namespace bpftap
