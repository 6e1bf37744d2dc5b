// The translated filter on frames written as the packets they are: each row's verdict is
// checked against libpcap's interpreter and against the expected one (the corpus-wide
// differential test is filter_diff_test.cpp).
#include <gtest/gtest.h>

#include "bpf_test_util.h"
#include "filter_program.h"
#include "capture/capture_prog.h"
#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"
#include "packet_builder.h"

using namespace bpftap;
using test::PacketBuilder;

namespace {

struct Row {
  const char *expression;
  std::vector<uint8_t> frame;
  bool accept;
  const char *why;
};

std::vector<Row> rows() {
  auto udp4 = [](uint16_t sport, uint16_t dport) {
    return PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").udp(sport, dport).payload(4).build();
  };
  auto tcp4 = [](uint8_t flags) {
    return PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").tcp(5000, 80, flags).payload(20).build();
  };
  return {
      {"udp port 53", udp4(1234, 53), true, "destination port"},
      {"udp port 53", udp4(53, 1234), true, "source port"},
      {"udp port 53", udp4(1234, 54), false, "another port"},
      {"tcp[tcpflags] & tcp-syn != 0", tcp4(test::kSyn), true, "SYN"},
      {"tcp[tcpflags] & tcp-syn != 0", tcp4(test::kAck), false, "ACK only"},
      {"src host 10.0.0.1 and dst port 80", tcp4(test::kAck), true, "host and port"},
      {"icmp[icmptype] == icmp-echo", PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").icmp(8).payload(8).build(),
       true, "echo request"},
      {"icmp[icmptype] == icmp-echo", PacketBuilder().eth().ipv4("10.0.0.2", "10.0.0.1").icmp(0).payload(8).build(),
       false, "echo reply"},
      {"ip[6:2] & 0x1fff != 0",
       PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2", 64, 0x0010).payload(40).build(), true, "a later fragment"},
      {"ip6 and udp dst port 9", PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").udp(7, 9).build(), true,
       "IPv6 UDP"},
      {"vlan 100 and udp", PacketBuilder().eth().vlan(100).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build(), true,
       "tagged (the tag inline, as in a saved frame)"},
      {"vlan 100 and udp", PacketBuilder().eth().vlan(200).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build(), false,
       "another VLAN"},
      {"arp", PacketBuilder().eth().arp("10.0.0.1", "10.0.0.2").build(), true, "ARP"},
      {"udp", PacketBuilder().eth().arp("10.0.0.1", "10.0.0.2").build(), false, "ARP is not UDP"},
      {"tcp", PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2).build(), true, "no payload"},
  };
}

} // namespace

TEST(FilterSmoke, TableOfPacketsAgreesWithLibpcap) {
  for (const auto &row : rows()) {
    SCOPED_TRACE(std::string(row.expression) + ": " + row.why);
    auto cbpf = compile_pcap_filter(row.expression, 262144);
    ASSERT_TRUE(cbpf) << cbpf.error().message();
    auto ebpf = translate_cbpf(*cbpf);
    ASSERT_TRUE(ebpf) << ebpf.error().message();
    auto prog = test::load_filter_program(*ebpf);
    ASSERT_TRUE(prog) << prog.error().message();
    auto r = test::run_tc((*prog)->filter_test_fd(), row.frame);
    ASSERT_EQ(r.err, 0);
    const auto &f = row.frame;
    EXPECT_EQ(r.retval, run_pcap_filter(*cbpf, f.data(), f.size(), f.size())) << "kernel and libpcap disagree";
    EXPECT_EQ(r.retval, row.accept ? 262144u : 0u);
  }
}
