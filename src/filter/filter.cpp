#include "filter/filter.h"

#include <pcap/pcap.h>

#include <cstring>
#include <memory>

#include "kernel/netns.h"

namespace bpftap {

static_assert(sizeof(sock_filter) == sizeof(struct bpf_insn), "cBPF layouts differ");

namespace {

using PcapHandle = std::unique_ptr<pcap_t, decltype(&pcap_close)>;

Result<std::vector<sock_filter>> compile_on(pcap_t *handle, const std::string &expression,
                                           bpf_u_int32 netmask = PCAP_NETMASK_UNKNOWN) {
  bpf_program prog{};
  if (pcap_compile(handle, &prog, expression.c_str(), 1, netmask) != 0)
    return bad_input("bad filter expression '" + expression + "': " + pcap_geterr(handle));
  std::vector<sock_filter> out(prog.bf_len);
  std::memcpy(out.data(), prog.bf_insns, prog.bf_len * sizeof(sock_filter));
  pcap_freecode(&prog);
  return out;
}

} // namespace

Result<std::vector<sock_filter>> compile_pcap_filter(const std::string &expression, uint32_t snaplen) {
  PcapHandle dead(pcap_open_dead(DLT_EN10MB, static_cast<int>(snaplen)), &pcap_close);
  if (!dead) return fail("pcap_open_dead", ENOMEM);
  return compile_on(dead.get(), expression);
}

Result<std::vector<sock_filter>> compile_pcap_filter_live(const std::string &expression, uint32_t snaplen,
                                                          const std::string &iface, bool home) {
  char err[PCAP_ERRBUF_SIZE] = {};
  PcapHandle live(pcap_create(iface.c_str(), err), &pcap_close);
  if (!live) return fail(iface + ": " + err);
  pcap_set_snaplen(live.get(), static_cast<int>(snaplen));
  pcap_set_buffer_size(live.get(), 1 << 16);  // it never captures
  if (int rc = pcap_activate(live.get()); rc < 0) {
    // A down interface cannot be opened (tcpdump refuses it), but it can be attached to: a
    // VM's tap is created down and brought up a moment later. libpcap's code depends on the
    // link type and the live Linux handling only, so any up Ethernet-framed device compiles
    // the same program: loopback is one.
    // In a fresh namespace loopback is down too: then the process's own namespace's.
    if (rc == PCAP_ERROR_IFACE_NOT_UP && iface != "lo") return compile_pcap_filter_live(expression, snaplen, "lo");
    if (rc == PCAP_ERROR_IFACE_NOT_UP && !home) {
      auto own = Netns::open("");
      if (!own) return tl::unexpected(own.error());
      auto scope = NetnsScope::enter(*own);
      if (!scope) return tl::unexpected(scope.error());
      return compile_pcap_filter_live(expression, snaplen, "lo", true);
    }
    return fail(iface + ": cannot open it as tcpdump would to compile the filter: " + pcap_geterr(live.get()));
  }
  if (pcap_datalink(live.get()) != DLT_EN10MB)
    return bad_input(iface + ": not an Ethernet interface (link type " +
                     pcap_datalink_val_to_name(pcap_datalink(live.get())) + "); bpftap captures Ethernet only");
  // As tcpdump: the interface's netmask (for `ip broadcast`), or 0 when it has no IPv4 address.
  bpf_u_int32 net = 0, mask = 0;
  if (pcap_lookupnet(iface.c_str(), &net, &mask, err) != 0) mask = 0;
  return compile_on(live.get(), expression, mask);
}

std::vector<sock_filter> substitute_ancillary(std::vector<sock_filter> prog, const AncillaryValues &v) {
  for (auto &f : prog) {
    if (BPF_CLASS(f.code) != BPF_LD || BPF_MODE(f.code) != BPF_ABS || static_cast<int32_t>(f.k) >= 0) continue;
    switch (static_cast<int32_t>(f.k) - SKF_AD_OFF) {
    case SKF_AD_VLAN_TAG_PRESENT: f.k = v.vlan_present; break;
    case SKF_AD_VLAN_TAG: f.k = v.vlan_tci; break;
    case SKF_AD_VLAN_TPID: f.k = v.vlan_tpid; break;
    case SKF_AD_PKTTYPE: f.k = v.pkttype; break;
    default: continue;
    }
    f.code = BPF_LD | BPF_IMM;
  }
  return prog;
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
