#include "mirror/spec.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

#include "mirror/rules.h"

namespace bpftap {
namespace {

// The VXLAN limits, checked here only (from the spec before its numbers are narrowed, and
// from options built by hand).
Result<> check_vxlan(const std::string &remote, const std::string &local, int64_t vni, int64_t port) {
  if (vni < 0 || vni > kMaxVxlanVni)
    return bad_input(fmt::format("VXLAN VNI {} is out of range 0-{}", vni, kMaxVxlanVni));
  if (port < 1 || port > 65535) return bad_input(fmt::format("VXLAN UDP port {} is out of range 1-65535", port));
  uint32_t w[4];
  int family = parse_address(remote, w);
  if (!family) return bad_input(fmt::format("VXLAN remote {}: not an IPv4 or IPv6 address", remote));
  // The device sends every copy to this one address (mirror/vxlan.h): a sensor's unicast address.
  uint32_t first = ntohl(w[0]);
  bool unicast = family == 4 ? w[0] != 0 && first < 0xe0000000u                       // not 0.0.0.0, multicast, 240/4
                             : (w[0] | w[1] | w[2] | w[3]) != 0 && (first >> 24) != 0xff &&  // not ::, ff00::/8
                                   (first >> 22) != (0xfe80u >> 6);                    // not fe80::/10 (needs a device)
  if (!unicast) return bad_input(fmt::format("VXLAN remote {}: give the sensor's unicast address", remote));
  if (!local.empty() && address_family(local) != family)
    return bad_input(fmt::format("VXLAN local address {}: not an address of the same family as the remote {}", local, remote));
  return {};
}

// Exactly one target: `to` a local interface, or `vxlan` a remote.
Result<> check_one_target(const std::string &to, const std::string &vxlan) {
  if (to.empty() && vxlan.empty())
    return bad_input("a mirror needs a target: a local interface, or a VXLAN remote with its VNI");
  if (!to.empty() && !vxlan.empty())
    return bad_input(fmt::format("a mirror has one target: the interface {} or the VXLAN remote {}, not both", to, vxlan));
  return {};
}

} // namespace

int parse_address(const std::string &s, uint32_t out[4]) {
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) return 4;
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) return 6;
  return 0;
}

Result<> check_mirror_target(const MirrorTarget &t) {
  if (auto one = check_one_target(t.to, t.vxlan); !one) return one;
  if (!t.to.empty()) {
    if (t.vni || t.vxlan_port != kDefaultVxlanPort || !t.local.empty())
      return bad_input(fmt::format("the mirror target {} is a local interface: a VNI, a VXLAN port and a local "
                                   "address go with a VXLAN remote",
                                   t.to));
    return {};
  }
  if (!t.vni) return bad_input(fmt::format("VXLAN remote {}: give its VNI (0-{})", t.vxlan, kMaxVxlanVni));
  return check_vxlan(t.vxlan, t.local, *t.vni, t.vxlan_port);
}

Result<MirrorOptions> to_mirror_options(const MirrorSpec &s) {
  if (auto t = check_mirror_target(s.target); !t) return tl::unexpected(t.error());
  MirrorOptions o;
  o.from = s.interfaces;
  o.ingress = s.ingress;
  o.egress = s.egress;
  o.to = s.target.to;
  if (!s.target.vxlan.empty())
    o.vxlan = VxlanTarget{s.target.vxlan, s.target.local, static_cast<uint32_t>(*s.target.vni),
                          static_cast<uint16_t>(s.target.vxlan_port)};
  o.filter = s.filter;
  auto rules = parse_rules(s.rules);
  if (!rules) return tl::unexpected(rules.error());
  o.rules = std::move(*rules);
  o.snaplen = s.snaplen;
  o.sample = s.sample;
  o.flow_cutoff = s.flow_cutoff;
  o.flow_table = s.flow_table;
  o.attach = s.attach;
  if (auto ok = check_mirror_options(o); !ok) return tl::unexpected(ok.error());
  return o;
}

Result<> check_mirror_options(const MirrorOptions &o) {
  if (auto one = check_one_target(o.to, o.vxlan ? o.vxlan->remote : std::string()); !one) return one;
  if (o.snaplen != 0 && o.snaplen < kMinMirrorSnaplen)
    return bad_input(fmt::format("snapshot length {}: a mirror's must be 0 (whole packets) or at least {}", o.snaplen,
                                 kMinMirrorSnaplen));
  if (o.rules.size() > BPFTAP_MAX_RULES) return bad_input(fmt::format("at most {} rules per session", BPFTAP_MAX_RULES));
  if (o.flow_cutoff && o.flow_table == 0) return bad_input("the flow table needs at least one entry");
  if (o.vxlan) return check_vxlan(o.vxlan->remote, o.vxlan->local, o.vxlan->vni, o.vxlan->port);
  return {};
}

} // namespace bpftap
