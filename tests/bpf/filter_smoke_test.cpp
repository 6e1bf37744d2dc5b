#include <gtest/gtest.h>

#include "bpf_test_util.h"
#include "capture/capture_prog.h"
#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"

using namespace bpftap;

TEST(FilterSmoke, UdpPortAccepted) {
  auto cbpf = compile_pcap_filter("udp port 53", 262144);
  ASSERT_TRUE(cbpf) << cbpf.error().message();
  auto ebpf = translate_cbpf(*cbpf);
  ASSERT_TRUE(ebpf) << ebpf.error().message();
  CaptureProgramOptions o;
  o.filter = *ebpf;
  o.filter_test = true;
  auto prog = CaptureProgram::load(o);
  ASSERT_TRUE(prog) << prog.error().message();
  // Ethernet + IPv4 + UDP 1234 -> 53
  std::vector<uint8_t> f = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00,
                            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                            0x04, 0xd2, 0, 53, 0, 8, 0, 0};
  auto r = test::run_tc((*prog)->filter_test_fd(), f);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, run_pcap_filter(*cbpf, f.data(), f.size(), f.size()));
  EXPECT_EQ(r.retval, 262144u);
  f[37] = 54;
  r = test::run_tc((*prog)->filter_test_fd(), f);
  EXPECT_EQ(r.retval, 0u);
}
