#include "capture/frame.h"

#include <algorithm>
#include <cstring>

namespace bpftap {

size_t restore_frame(const bpftap_pkt_hdr &hdr, std::span<const uint8_t> in, uint8_t *out) {
  size_t keep = hdr.snap_len;
  if (hdr.vlan_tpid == 0) {
    size_t n = std::min(keep, in.size());
    std::memcpy(out, in.data(), n);
    return n;
  }
  // Tag restored after the two MAC addresses, as libpcap does for Linux captures.
  const uint8_t tag[BPFTAP_VLAN_HLEN] = {static_cast<uint8_t>(hdr.vlan_tpid >> 8), static_cast<uint8_t>(hdr.vlan_tpid),
                                         static_cast<uint8_t>(hdr.vlan_tci >> 8), static_cast<uint8_t>(hdr.vlan_tci)};
  size_t macs = std::min<size_t>(12, in.size());
  size_t n = 0;
  auto put = [&](const uint8_t *p, size_t len) {
    len = std::min(len, keep - n);
    std::memcpy(out + n, p, len);
    n += len;
  };
  put(in.data(), macs);
  put(tag, sizeof(tag));
  put(in.data() + macs, in.size() - macs);
  return n;
}

} // namespace bpftap
