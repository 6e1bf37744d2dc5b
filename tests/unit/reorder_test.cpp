#include <gtest/gtest.h>

#include <vector>

#include "capture/frame.h"
#include "capture/reorder.h"

using namespace bpftap;

namespace {
bpftap_pkt_hdr hdr_for(size_t n, uint32_t snap, uint16_t tpid = 0, uint16_t tci = 0) {
  bpftap_pkt_hdr h{};
  h.cap_len = static_cast<uint32_t>(n);
  h.snap_len = snap;
  h.wire_len = static_cast<uint32_t>(n + (tpid ? 4 : 0));
  h.vlan_tpid = tpid;
  h.vlan_tci = tci;
  return h;
}
std::vector<uint8_t> frame(size_t n) {
  std::vector<uint8_t> f(n);
  for (size_t i = 0; i < n; i++) f[i] = static_cast<uint8_t>(i);
  return f;
}
} // namespace

TEST(RestoreFrame, NoTagTruncatesToSnaplen) {
  auto f = frame(60);
  std::vector<uint8_t> out(64);
  EXPECT_EQ(restore_frame(hdr_for(60, 60), f, out.data()), 60u);
  EXPECT_EQ(restore_frame(hdr_for(60, 20), f, out.data()), 20u);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 20), std::vector<uint8_t>(f.begin(), f.begin() + 20));
}

TEST(RestoreFrame, TagGoesBackAfterTheMacAddresses) {
  auto f = frame(60);
  std::vector<uint8_t> out(64);
  ASSERT_EQ(restore_frame(hdr_for(60, 64, 0x8100, 0x2064), f, out.data()), 64u);
  EXPECT_EQ(out[11], 11);
  EXPECT_EQ(out[12], 0x81);
  EXPECT_EQ(out[13], 0x00);
  EXPECT_EQ(out[14], 0x20);
  EXPECT_EQ(out[15], 0x64);
  EXPECT_EQ(out[16], 12);
  EXPECT_EQ(out[63], 59);
  // A snapshot length that cuts through the tag.
  EXPECT_EQ(restore_frame(hdr_for(60, 14, 0x88a8, 1), f, out.data()), 14u);
  EXPECT_EQ(out[12], 0x88);
  EXPECT_EQ(out[13], 0xa8);
}

TEST(ReorderBuffer, ReleasesInTimestampOrderUpToCutoff) {
  ReorderBuffer rb;
  auto f = frame(20);
  for (uint64_t ts : {30u, 10u, 20u, 50u, 40u}) {
    auto h = hdr_for(20, 20);
    h.ifindex = static_cast<uint32_t>(ts);  // remember who is who
    rb.push(h, f, ts);
  }
  std::vector<uint64_t> seen;
  auto emit = [&](const PacketMeta &m, std::span<const uint8_t> b) {
    EXPECT_EQ(m.ifindex, m.ts_ns);
    EXPECT_EQ(b.size(), 20u);
    seen.push_back(m.ts_ns);
  };
  EXPECT_EQ(rb.release(35, emit), 3u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{10, 20, 30}));
  auto late = hdr_for(20, 20);
  late.ifindex = 45;
  rb.push(late, f, 45);
  EXPECT_EQ(rb.release(UINT64_MAX, emit, 2), 2u);
  EXPECT_EQ(rb.release(UINT64_MAX, emit), 1u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{10, 20, 30, 40, 45, 50}));
  EXPECT_EQ(rb.size(), 0u);
  EXPECT_EQ(rb.bytes(), 0u);
}
