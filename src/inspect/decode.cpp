#include "inspect/decode.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace bpftap::inspect {
namespace {

uint16_t be16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

constexpr uint16_t kEthIpv4 = 0x0800, kEthIpv6 = 0x86dd, kEthVlan = 0x8100, kEthQinQ = 0x88a8;

std::optional<Decoded> decode_ip(std::span<const uint8_t> d, Decoded out, int depth);

std::optional<Decoded> decode_l4(std::span<const uint8_t> l3, size_t l4off, uint32_t l4len, Decoded &out) {
  std::span<const uint8_t> l4 = l3.subspan(std::min(l4off, l3.size()));
  size_t hdr = 0;
  if (out.proto == IPPROTO_TCP) {
    if (l4.size() < 20 || l4len < 20) return std::nullopt;
    out.sport = be16(&l4[0]);
    out.dport = be16(&l4[2]);
    out.tcp_flags = l4[13];
    hdr = (l4[12] >> 4) * 4u;
    if (hdr < 20 || hdr > l4len) return std::nullopt;
  } else if (out.proto == IPPROTO_UDP) {
    if (l4.size() < 8 || l4len < 8) return std::nullopt;
    out.sport = be16(&l4[0]);
    out.dport = be16(&l4[2]);
    hdr = 8;
  } else if (out.proto == IPPROTO_ICMP || out.proto == IPPROTO_ICMPV6) {
    if (!l4.empty()) out.icmp_type = l4[0];
    if (l4.size() > 1) out.icmp_code = l4[1];
    hdr = std::min<size_t>(8, l4len);
  }
  out.payload_len = l4len - static_cast<uint32_t>(hdr);
  out.payload = l4.subspan(std::min(hdr, l4.size()));
  return out;
}

std::optional<Decoded> decode_ipv4(std::span<const uint8_t> d, Decoded out, int depth) {
  if (d.size() < 20 || (d[0] >> 4) != 4) return std::nullopt;
  size_t ihl = (d[0] & 0xf) * 4u;
  uint16_t tot = be16(&d[2]);
  if (ihl < 20 || tot < ihl || d.size() < tot) return std::nullopt;  // truncated: as ndpiReader
  if ((be16(&d[6]) & 0x1fff) != 0) return std::nullopt;  // non-first fragment
  d = d.first(tot);
  out.proto = d[9];
  out.src = IpAddr{4, {}};
  out.dst = IpAddr{4, {}};
  std::copy_n(&d[12], 4, out.src.bytes.begin());
  std::copy_n(&d[16], 4, out.dst.bytes.begin());
  if ((out.proto == IPPROTO_IPIP || out.proto == IPPROTO_IPV6) && depth == 0) return decode_ip(d.subspan(ihl), out, 1);
  out.l3 = d;
  out.ip_len = tot;
  return decode_l4(d, ihl, tot - static_cast<uint32_t>(ihl), out);
}

std::optional<Decoded> decode_ipv6(std::span<const uint8_t> d, Decoded out, int depth) {
  if (d.size() < 40 || (d[0] >> 4) != 6) return std::nullopt;
  uint16_t plen = be16(&d[4]);
  if (d.size() < 40u + plen) return std::nullopt;
  d = d.first(40u + plen);
  out.src = IpAddr{6, {}};
  out.dst = IpAddr{6, {}};
  std::copy_n(&d[8], 16, out.src.bytes.begin());
  std::copy_n(&d[24], 16, out.dst.bytes.begin());
  uint8_t next = d[6];
  size_t off = 40;
  for (int i = 0; i < 8; i++) {
    if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
      if (d.size() < off + 8) return std::nullopt;
      size_t len = (d[off + 1] + 1u) * 8;
      next = d[off];
      off += len;
    } else if (next == IPPROTO_FRAGMENT) {
      if (d.size() < off + 8) return std::nullopt;
      if ((be16(&d[off + 2]) & 0xfff8) != 0) return std::nullopt;  // non-first fragment
      next = d[off];
      off += 8;
    } else {
      break;
    }
  }
  if (next == IPPROTO_NONE || off > d.size()) return std::nullopt;
  out.proto = next;
  if ((next == IPPROTO_IPIP || next == IPPROTO_IPV6) && depth == 0) return decode_ip(d.subspan(off), out, 1);
  out.l3 = d;
  out.ip_len = static_cast<uint32_t>(d.size());
  return decode_l4(d, off, static_cast<uint32_t>(d.size() - off), out);
}

std::optional<Decoded> decode_ip(std::span<const uint8_t> d, Decoded out, int depth) {
  if (d.empty()) return std::nullopt;
  if ((d[0] >> 4) == 4) return decode_ipv4(d, out, depth);
  if ((d[0] >> 4) == 6) return decode_ipv6(d, out, depth);
  return std::nullopt;
}

} // namespace

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::optional<Decoded> decode(uint16_t linktype, std::span<const uint8_t> f) {
  Decoded out;
  switch (linktype) {
  case kLinkEthernet: {
    if (f.size() < 14) return std::nullopt;
    uint16_t type = be16(&f[12]);
    size_t off = 14;
    for (int i = 0; i < 2 && (type == kEthVlan || type == kEthQinQ); i++) {
      if (f.size() < off + 4) return std::nullopt;
      out.vlan = be16(&f[off]) & 0xfff;
      type = be16(&f[off + 2]);
      off += 4;
    }
    if (type != kEthIpv4 && type != kEthIpv6) return std::nullopt;
    return decode_ip(f.subspan(off), out, 0);
  }
  case kLinkLinuxSll: {
    if (f.size() < 16) return std::nullopt;
    uint16_t type = be16(&f[14]);
    if (type != kEthIpv4 && type != kEthIpv6) return std::nullopt;
    return decode_ip(f.subspan(16), out, 0);
  }
  case kLinkRaw:
  case kLinkRawOld:
  case kLinkIpv4:
  case kLinkIpv6:
    return decode_ip(f, out, 0);
  case kLinkNull:
  case kLinkLoop:
    if (f.size() < 4) return std::nullopt;
    return decode_ip(f.subspan(4), out, 0);
  default:
    return std::nullopt;
  }
}

} // namespace bpftap::inspect
