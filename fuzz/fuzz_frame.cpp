// Frames and record headers as they come from the kernel (or a hostile peer's bytes): tag
// restoration and the one-line packet description must stay within bounds.
#include <cstring>
#include <vector>

#include "capture/frame.h"
#include "capture/reorder.h"
#include "sinks/text_sink.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 8) return 0;
  bpftap_pkt_hdr hdr{};
  std::memcpy(&hdr.vlan_tpid, data, 2);
  std::memcpy(&hdr.vlan_tci, data + 2, 2);
  std::memcpy(&hdr.snap_len, data + 4, 4);
  std::span<const uint8_t> frame(data + 8, size - 8);
  hdr.cap_len = static_cast<uint32_t>(frame.size());
  hdr.snap_len %= 70000;
  std::vector<uint8_t> out(frame.size() + BPFTAP_VLAN_HLEN);
  size_t n = bpftap::restore_frame(hdr, frame, out.data());
  if (n > out.size()) __builtin_trap();
  (void)bpftap::describe_frame(std::span<const uint8_t>(out.data(), n));
  (void)bpftap::describe_frame(frame);
  bpftap::ReorderBuffer rb;
  rb.push(hdr, frame, 1);
  rb.release(UINT64_MAX, [](const bpftap::PacketMeta &, std::span<const uint8_t>) {});
  return 0;
}
