#include "inspect/community_id.h"

#include <netinet/in.h>

#include <algorithm>
#include <optional>
#include <vector>

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace bpftap::inspect {
namespace {

// The request/reply pairs for which the spec treats ICMP as bidirectional (Zeek's
// ICMP4_counterpart / ICMP6_counterpart); any other type is one-way.
std::optional<uint8_t> icmp4_counterpart(uint8_t type) {
  switch (type) {
  case 8: return 0;    // echo
  case 0: return 8;
  case 13: return 14;  // timestamp
  case 14: return 13;
  case 15: return 16;  // information
  case 16: return 15;
  case 10: return 9;   // router solicitation -> advertisement (one way only, as in the spec)
  case 17: return 18;  // address mask
  case 18: return 17;
  default: return std::nullopt;
  }
}

std::optional<uint8_t> icmp6_counterpart(uint8_t type) {
  switch (type) {
  case 128: return 129;  // echo
  case 129: return 128;
  case 133: return 134;  // router solicitation / advertisement
  case 134: return 133;
  case 135: return 136;  // neighbour solicitation / advertisement
  case 136: return 135;
  case 130: return 131;  // multicast listener query / report
  case 131: return 130;
  case 139: return 140;  // node information query / reply ("who are you")
  case 140: return 139;
  case 144: return 145;  // home agent address discovery
  case 145: return 144;
  default: return std::nullopt;
  }
}

size_t addr_len(const IpAddr &a) { return a.family == 6 ? 16 : 4; }

} // namespace

std::string community_id(const IpAddr &src, const IpAddr &dst, uint8_t proto, uint16_t sport, uint16_t dport,
                         uint16_t seed) {
  bool ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP || proto == IPPROTO_ICMP ||
               proto == IPPROTO_ICMPV6;
  bool one_way = false;
  if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
    auto type = static_cast<uint8_t>(sport);
    auto peer = proto == IPPROTO_ICMP ? icmp4_counterpart(type) : icmp6_counterpart(type);
    if (peer) dport = *peer;
    else one_way = true;
  }
  const IpAddr *a = &src, *b = &dst;
  uint16_t pa = sport, pb = dport;
  auto less = [&] {
    if (std::lexicographical_compare(a->bytes.begin(), a->bytes.begin() + addr_len(*a), b->bytes.begin(),
                                     b->bytes.begin() + addr_len(*b)))
      return true;
    bool same = std::equal(a->bytes.begin(), a->bytes.begin() + addr_len(*a), b->bytes.begin());
    return same && pa < pb;
  };
  if (!one_way && !less()) {
    std::swap(a, b);
    std::swap(pa, pb);
  }
  std::vector<uint8_t> in;
  in.push_back(static_cast<uint8_t>(seed >> 8));
  in.push_back(static_cast<uint8_t>(seed));
  in.insert(in.end(), a->bytes.begin(), a->bytes.begin() + addr_len(*a));
  in.insert(in.end(), b->bytes.begin(), b->bytes.begin() + addr_len(*b));
  in.push_back(proto);
  in.push_back(0);
  if (ports) {
    for (uint16_t p : {pa, pb}) {
      in.push_back(static_cast<uint8_t>(p >> 8));
      in.push_back(static_cast<uint8_t>(p));
    }
  }
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(in.data(), in.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return "1:" + std::string(reinterpret_cast<char *>(b64));
}

} // namespace bpftap::inspect
