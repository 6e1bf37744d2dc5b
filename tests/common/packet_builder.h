// Frames for tests, written as the layers they are (after katran's PacketBuilder):
//
//   auto f = PacketBuilder().eth().vlan(100).ipv4("10.0.0.1", "10.0.0.2").tcp(80, 5000, kSyn).payload(10).build();
//
// Lengths (IPv4 total length, IPv6 payload length, UDP length), the next-protocol fields and the
// IPv4 header checksum are filled in by build(); the L4 checksums are left zero (nothing under
// test checks them). Header-only: any test target may include it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpftap::test {

inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

class PacketBuilder {
public:
  // Ethernet; the EtherType follows from the next layer (0x88b5, a local experimental type, if none).
  PacketBuilder &eth(const std::string &src = "02:00:00:00:00:01", const std::string &dst = "02:00:00:00:00:02") {
    Layer l{Kind::Eth, {}};
    put_mac(l.bytes, dst);
    put_mac(l.bytes, src);
    l.bytes.resize(14);
    layers_.push_back(std::move(l));
    return *this;
  }
  // An 802.1Q (tpid 0x8100) or 802.1ad (0x88a8) tag after the MAC addresses.
  PacketBuilder &vlan(uint16_t tci, uint16_t tpid = 0x8100) {
    Layer l{Kind::Vlan, {uint8_t(tpid >> 8), uint8_t(tpid), uint8_t(tci >> 8), uint8_t(tci), 0, 0}};
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &ipv4(const char *src, const char *dst, uint8_t ttl = 64, uint16_t frag = 0) {
    Layer l{Kind::Ipv4, std::vector<uint8_t>(20, 0)};
    l.bytes[0] = 0x45;
    l.bytes[6] = uint8_t(frag >> 8);
    l.bytes[7] = uint8_t(frag);
    l.bytes[8] = ttl;
    addr(AF_INET, src, &l.bytes[12]);
    addr(AF_INET, dst, &l.bytes[16]);
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &ipv6(const char *src, const char *dst, uint8_t hop_limit = 64) {
    Layer l{Kind::Ipv6, std::vector<uint8_t>(40, 0)};
    l.bytes[0] = 0x60;
    l.bytes[7] = hop_limit;
    addr(AF_INET6, src, &l.bytes[8]);
    addr(AF_INET6, dst, &l.bytes[24]);
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &tcp(uint16_t sport, uint16_t dport, uint8_t flags = kAck, uint32_t seq = 0, uint32_t ack = 0) {
    Layer l{Kind::Tcp, std::vector<uint8_t>(20, 0)};
    put16(&l.bytes[0], sport);
    put16(&l.bytes[2], dport);
    put32(&l.bytes[4], seq);
    put32(&l.bytes[8], ack);
    l.bytes[12] = 5 << 4;
    l.bytes[13] = flags;
    put16(&l.bytes[14], 65535);
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &udp(uint16_t sport, uint16_t dport) {
    Layer l{Kind::Udp, std::vector<uint8_t>(8, 0)};
    put16(&l.bytes[0], sport);
    put16(&l.bytes[2], dport);
    layers_.push_back(std::move(l));
    return *this;
  }
  // An ARP request (Ethernet/IPv4) from `sender` for `target`.
  PacketBuilder &arp(const char *sender, const char *target) {
    Layer l{Kind::Arp, {0, 1, 0x08, 0, 6, 4, 0, 1}};
    put_mac(l.bytes, "02:00:00:00:00:01");
    l.bytes.resize(28);
    addr(AF_INET, sender, &l.bytes[14]);
    addr(AF_INET, target, &l.bytes[24]);
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &icmp(uint8_t type, uint8_t code = 0) {
    layers_.push_back({Kind::Icmp, {type, code, 0, 0, 0, 0, 0, 0}});
    return *this;
  }
  // `n` bytes of data, each different (fill + i), so a test sees which bytes it got.
  PacketBuilder &payload(size_t n, uint8_t fill = 0x41) {
    Layer l{Kind::Data, std::vector<uint8_t>(n)};
    for (size_t i = 0; i < n; i++) l.bytes[i] = uint8_t(fill + i);
    layers_.push_back(std::move(l));
    return *this;
  }
  PacketBuilder &payload(const std::string &s) {
    layers_.push_back({Kind::Data, std::vector<uint8_t>(s.begin(), s.end())});
    return *this;
  }

  std::vector<uint8_t> build() const {
    std::vector<Layer> ls = layers_;
    for (size_t i = ls.size(); i-- > 0;) {
      size_t rest = 0;  // bytes after this layer's header
      for (size_t j = i + 1; j < ls.size(); j++) rest += ls[j].bytes.size();
      Kind next = i + 1 < ls.size() ? ls[i + 1].kind : Kind::Data;
      auto &b = ls[i].bytes;
      switch (ls[i].kind) {
      case Kind::Eth:
        put16(&b[12], ethertype(next));
        break;
      case Kind::Vlan:
        put16(&b[4], ethertype(next));
        break;
      case Kind::Ipv4:
        put16(&b[2], uint16_t(20 + rest));
        b[9] = proto(next);
        put16(&b[10], 0);
        put16(&b[10], checksum(b));
        break;
      case Kind::Ipv6:
        put16(&b[4], uint16_t(rest));
        b[6] = proto(next);
        break;
      case Kind::Udp:
        put16(&b[4], uint16_t(8 + rest));
        break;
      default:
        break;
      }
    }
    std::vector<uint8_t> f;
    for (const auto &l : ls) {
      if (l.kind == Kind::Vlan) {  // the tag's TPID takes the EtherType's place after the MAC addresses
        if (f.size() < 14) throw std::logic_error("PacketBuilder: vlan() before eth()");
        f.resize(f.size() - 2);
      }
      f.insert(f.end(), l.bytes.begin(), l.bytes.end());
    }
    return f;
  }

private:
  enum class Kind { Eth, Vlan, Arp, Ipv4, Ipv6, Tcp, Udp, Icmp, Data };
  struct Layer {
    Kind kind;
    std::vector<uint8_t> bytes;
  };

  static uint16_t ethertype(Kind next) {
    switch (next) {
    case Kind::Ipv4: return 0x0800;
    case Kind::Ipv6: return 0x86dd;
    case Kind::Arp: return 0x0806;
    case Kind::Vlan: return 0x8100;  // QinQ: the outer tag's type is set by vlan(tci, tpid)
    default: return 0x88b5;
    }
  }
  static uint8_t proto(Kind next) {
    switch (next) {
    case Kind::Tcp: return IPPROTO_TCP;
    case Kind::Udp: return IPPROTO_UDP;
    case Kind::Icmp: return IPPROTO_ICMP;
    default: return 253;  // RFC 3692 experimentation
    }
  }
  static void put16(uint8_t *p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
  }
  static void put32(uint8_t *p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v));
  }
  static void put_mac(std::vector<uint8_t> &out, const std::string &mac) {
    unsigned b[6];
    if (std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
      throw std::invalid_argument("PacketBuilder: bad MAC " + mac);
    for (unsigned x : b) out.push_back(uint8_t(x));
  }
  static void addr(int family, const char *s, uint8_t *out) {
    if (inet_pton(family, s, out) != 1) throw std::invalid_argument(std::string("PacketBuilder: bad address ") + s);
  }
  static uint16_t checksum(const std::vector<uint8_t> &h) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < h.size(); i += 2) sum += uint32_t(h[i] << 8 | h[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
  }

  std::vector<Layer> layers_;
};

} // namespace bpftap::test
