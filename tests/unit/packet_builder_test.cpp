// The test packet builder itself: the fields build() computes (what the BPF tests' tables rely on;
// libpcap reads the same frames in tests/bpf/filter_smoke_test.cpp).
#include <gtest/gtest.h>

#include "packet_builder.h"

using bpftap::test::PacketBuilder;

namespace {
uint16_t be16(const std::vector<uint8_t> &f, size_t at) { return uint16_t(f[at] << 8 | f[at + 1]); }
}

TEST(PacketBuilder, Ipv4TcpLengthsChecksumAndFlags) {
  auto f = PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").tcp(5000, 80, bpftap::test::kSyn).payload(10).build();
  ASSERT_EQ(f.size(), 14u + 20 + 20 + 10);
  EXPECT_EQ(be16(f, 12), 0x0800);
  EXPECT_EQ(be16(f, 16), 50);  // IPv4 total length
  EXPECT_EQ(f[23], 6);         // TCP
  uint32_t sum = 0;            // a valid header checksums to 0xffff
  for (size_t i = 14; i < 34; i += 2) sum += be16(f, i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  EXPECT_EQ(sum, 0xffffu);
  EXPECT_EQ(be16(f, 34), 5000);
  EXPECT_EQ(be16(f, 36), 80);
  EXPECT_EQ(f[47], 0x02);
  EXPECT_EQ(f[54], 0x41);  // payload bytes: fill, fill + 1, ...
  EXPECT_EQ(f[55], 0x42);
}

TEST(PacketBuilder, VlanTagSitsAfterTheMacAddresses) {
  auto f = PacketBuilder().eth().vlan(100).vlan(7, 0x8100).ipv6("2001:db8::1", "2001:db8::2").udp(1, 2).payload(3).build();
  ASSERT_EQ(f.size(), 14u + 8 + 40 + 8 + 3);
  EXPECT_EQ(be16(f, 12), 0x8100);
  EXPECT_EQ(be16(f, 14), 100);
  EXPECT_EQ(be16(f, 16), 0x8100);
  EXPECT_EQ(be16(f, 18), 7);
  EXPECT_EQ(be16(f, 20), 0x86dd);
  EXPECT_EQ(be16(f, 22 + 4), 11);  // IPv6 payload length
  EXPECT_EQ(f[22 + 6], 17);
  EXPECT_EQ(be16(f, 62 + 4), 11);  // UDP length
}
