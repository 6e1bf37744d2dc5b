// Text output through the system's tcpdump: the SLL2 header bpftap builds, and tcpdump printing
// the interface (by index: lo is 1 in every namespace), the direction and the decoded packet.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "sinks/tcpdump_printer.h"

namespace bpftap {
namespace {

std::vector<uint8_t> icmp_echo(bool broadcast) {
  std::vector<uint8_t> f = {
      // Ethernet: dst, src, IPv4
      0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
      // IPv4: 20 bytes, ttl 64, ICMP, 10.0.0.1 > 10.0.0.2 (checksum left 0: tcpdump prints anyway)
      0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
      // ICMP echo request, id 7, seq 1
      8, 0, 0, 0, 0, 7, 0, 1};
  if (broadcast) std::fill(f.begin(), f.begin() + 6, 0xff);
  return f;
}

TEST(TcpdumpPrinter, Sll2HeaderCarriesIfindexDirectionAndSource) {
  auto f = icmp_echo(false);
  std::vector<uint8_t> h;
  append_sll2_header(h, f, 0x01020304, Direction::Out);
  ASSERT_EQ(h.size(), 20u);
  EXPECT_EQ(h[0], 0x08);  // protocol: the EtherType
  EXPECT_EQ(h[1], 0x00);
  EXPECT_EQ((std::vector<uint8_t>{h[4], h[5], h[6], h[7]}), (std::vector<uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ(h[9], 1);   // ARPHRD_ETHER
  EXPECT_EQ(h[10], 4);  // PACKET_OUTGOING
  EXPECT_EQ(h[11], 6);
  EXPECT_EQ(h[17], 1);  // last byte of the source MAC
  h.clear();
  append_sll2_header(h, icmp_echo(true), 1, Direction::In);
  EXPECT_EQ(h[10], 1);  // PACKET_BROADCAST
  h.clear();
  append_sll2_header(h, f, 1, Direction::In);
  EXPECT_EQ(h[10], 0);  // PACKET_HOST
}

TEST(TcpdumpPrinter, TcpdumpPrintsInterfaceDirectionAndDecodedPacket) {
  if (std::system("command -v tcpdump >/dev/null 2>&1") != 0) GTEST_SKIP() << "tcpdump not installed";
  char path[] = "/tmp/bpftap-printer-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    auto p = TcpdumpPrinter::start({"-n", "-v"}, {{"lo", 1, 1, 262144}}, "tcpdump", fd);
    ASSERT_TRUE(p) << p.error().message();
    auto f = icmp_echo(false);
    Packet pkt{1'700'000'000'000'000'000ull, 0, Direction::Out, uint32_t(f.size()), f};
    ASSERT_TRUE((*p)->write(pkt));
    auto b = icmp_echo(true);
    Packet bc{1'700'000'000'000'000'001ull, 0, Direction::In, uint32_t(b.size()), b};
    ASSERT_TRUE((*p)->write(bc));
    ASSERT_TRUE((*p)->close());
  }
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  EXPECT_NE(text.str().find("lo    Out IP (tos 0x0, ttl 64"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("lo    B   IP"), std::string::npos) << text.str();
}

TEST(TcpdumpPrinter, MissingProgramIsENOENT) {
  auto p = TcpdumpPrinter::start({}, {{"lo", 1, 1, 0}}, "no-such-tcpdump-bpftap");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ENOENT);
}

} // namespace
} // namespace bpftap
