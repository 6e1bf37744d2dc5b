// Decoding a captured frame down to what flow tracking, nDPI and the detectors need. Follows
// ndpiReader 4.2's reader (example/reader_util.c) where it matters for the flows nDPI sees:
// link types Ethernet (802.1Q/802.1ad tags, the innermost one is the VLAN id), Linux cooked,
// raw IP and BSD null/loopback; IPv4 and IPv6 (hop-by-hop, routing, fragment and destination
// options headers skipped); IP-in-IP decapsulated; non-first fragments and IP packets whose
// captured bytes are shorter than their header says are not decoded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace bpftap::inspect {

// libpcap's DLT values (pcap/dlt.h) for the link types we decode.
enum LinkType : uint16_t {
  kLinkNull = 0,
  kLinkEthernet = 1,
  kLinkRawOld = 12,  // DLT_RAW on some systems
  kLinkRaw = 101,    // LINKTYPE_RAW
  kLinkLoop = 108,
  kLinkLinuxSll = 113,
  kLinkIpv4 = 228,
  kLinkIpv6 = 229,
};

struct IpAddr {
  uint8_t family = 0;  // 4 or 6
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
  auto operator<=>(const IpAddr &) const = default;  // NOLINT(modernize-use-nullptr): clang-tidy 14 misreads <=> = default
  std::string str() const;
};

struct Decoded {
  uint16_t vlan = 0;  // innermost 802.1Q id (0 = none)
  IpAddr src, dst;
  uint8_t proto = 0;  // IP protocol of the (inner) packet
  uint16_t sport = 0, dport = 0;  // 0 for protocols without ports
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0, icmp_code = 0;
  std::span<const uint8_t> l3;  // from the IP header to the end of the captured bytes (for nDPI)
  std::span<const uint8_t> payload;  // L4 payload, captured part
  uint32_t payload_len = 0;  // L4 payload length per the headers (also what was not captured)
  uint32_t ip_len = 0;  // IP total length
};

// nullopt: not IP, or malformed / truncated / a non-first fragment.
std::optional<Decoded> decode(uint16_t linktype, std::span<const uint8_t> frame);

} // namespace bpftap::inspect
