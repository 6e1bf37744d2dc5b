// A captured frame put back as libpcap would have captured it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bpf/bpftap.h"

namespace bpftap {

// The frame as libpcap would have captured it: the VLAN tag the kernel moved into metadata put
// back at offset 12, truncated to the snapshot length. Returns the bytes written to `out`.
size_t restore_frame(const bpftap_pkt_hdr &hdr, std::span<const uint8_t> kernel_bytes, uint8_t *out);

} // namespace bpftap
