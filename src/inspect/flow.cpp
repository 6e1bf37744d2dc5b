#include "inspect/flow.h"

#include <netinet/in.h>

#include <functional>

namespace bpftap::inspect {

FlowKey flow_key(const Decoded &d, bool &a_to_b) {
  FlowKey k;
  k.vlan = d.vlan;
  k.proto = d.proto;
  a_to_b = std::tie(d.src, d.sport) <= std::tie(d.dst, d.dport);
  k.a = a_to_b ? d.src : d.dst;
  k.b = a_to_b ? d.dst : d.src;
  k.pa = a_to_b ? d.sport : d.dport;
  k.pb = a_to_b ? d.dport : d.sport;
  return k;
}

size_t FlowKeyHash::operator()(const FlowKey &k) const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(k.a.bytes.data(), 16);
  mix(k.b.bytes.data(), 16);
  uint8_t rest[7] = {k.proto, static_cast<uint8_t>(k.pa >> 8), static_cast<uint8_t>(k.pa),
                     static_cast<uint8_t>(k.pb >> 8), static_cast<uint8_t>(k.pb), static_cast<uint8_t>(k.vlan >> 8),
                     static_cast<uint8_t>(k.vlan)};
  mix(rest, sizeof(rest));
  return static_cast<size_t>(h);
}

void Flow::add_history(char letter, bool from_orig) {
  char c = from_orig ? letter : static_cast<char>(letter - 'A' + 'a');
  if (history.find(c) == std::string::npos) history += c;
}

bool Flow::closed() const { return proto == IPPROTO_TCP && ((orig_fin && resp_fin) || orig_rst || resp_rst); }

// Zeek's conn_state, from what each side sent.
std::string Flow::conn_state() const {
  if (proto != IPPROTO_TCP) return resp_pkts ? "SF" : "S0";
  bool established = orig_syn && resp_synack;
  if (orig_syn && !resp_synack && !resp_syn) {
    if (resp_rst) return "REJ";
    if (orig_rst) return "RSTOS0";
    if (orig_fin) return "SH";
    return "S0";
  }
  if (established) {
    if (orig_rst) return "RSTO";
    if (resp_rst) return "RSTR";
    if (orig_fin && resp_fin) return "SF";
    if (orig_fin) return "S2";
    if (resp_fin) return "S3";
    return "S1";
  }
  if (resp_synack && !orig_syn) return resp_rst ? "RSTRH" : resp_fin ? "SHR" : "OTH";
  if (orig_rst) return "RSTO";
  if (resp_rst) return "RSTR";
  return "OTH";
}

} // namespace bpftap::inspect
