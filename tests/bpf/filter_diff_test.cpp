// Differential test of the cBPF→eBPF translator: for many tcpdump expressions and every frame
// of every Ethernet capture in the corpus, the translated program run by the kernel
// (BPF_PROG_TEST_RUN) must return exactly what libpcap's own interpreter returns.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bpf_test_util.h"
#include "filter_program.h"
#include "corpus.h"

#include <linux/if_packet.h>

#include <tuple>
#include "capture/capture_prog.h"
#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"

using namespace bpftap;

namespace {

bool tagged(const std::vector<uint8_t> &f) {
  if (f.size() < 18) return false;
  uint16_t tpid = static_cast<uint16_t>(f[12] << 8 | f[13]);
  return tpid == 0x8100 || tpid == 0x88a8 || tpid == 0x9100;
}

const char *kExpressions[] = {
    "",
    "ip",
    "ip6",
    "arp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "host 192.168.1.1",
    "src host 10.0.0.1 or dst host 8.8.8.8",
    "net 192.168.0.0/16",
    "dst net 10.0.0.0/8",
    "port 53",
    "tcp port 80",
    "udp port 53 or udp port 5353",
    "tcp dst port 443",
    "src port 1024",
    "portrange 1-1023",
    "tcp portrange 8000-9000",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & (tcp-rst|tcp-fin) != 0",
    "vlan",
    "vlan 100",
    "vlan and tcp",
    "vlan and vlan",
    "vlan and ip and udp",
    "ip6 and tcp",
    "ip6 and udp port 53",
    "icmp[icmptype] == icmp-echo",
    "icmp6 and ip6[40] == 128",
    "len > 1000",
    "len <= 64",
    "greater 500",
    "less 100",
    "ether[0] & 1 != 0",
    "ether broadcast",
    "ether host ff:ff:ff:ff:ff:ff",
    "ip[8] < 64",
    "ip[6:2] & 0x1fff != 0",
    "tcp and not port 80 and not port 443",
    "not ip and not ip6",
    "udp and (port 53 or port 123 or port 67)",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "ip proto 47",
    "ip multicast",
    "ether proto 0x88cc",
    "mpls",
    "pppoes",
    "ip[2:2] % 7 == 3",
    "ip[2:2] / 100 > 5",
    "ip[2:2] * 3 > 1000",
    "ip[1] << (ip[0] & 0x3f) > 10",
    "ip[2:2] >> (ip[9] & 0x3f) != 0",
    "ip[2:2] - ip[0] > 50 and ip[2:2] + 1 < 9000",
    "-ip[8] & 0xff > 200",
    "ip[3] ^ 0x55 == 0 or ip[4] | 1 == 1",
    "udp port 4789",
    "geneve",
    "vlan 100 and host 10.0.0.1",
    "ether[12:2] = 0x8100 or ether[14:2] & 0xfff = 10",
    "ether[11:2] > 0 and ether[13:4] != 0 and ether[15:2] != 1",
    "inbound",
    "outbound and tcp",
    "vlan 1 or vlan 100 or vlan 4095",
    "vlan and (tcp port 80 or udp)",
};

enum class Compiled { Dead, Live };
// How the translated filter reads the frame: directly from the skb's linear part (as bpftap
// runs it), or every byte through bpf_skb_load_bytes (the path paged data takes in production,
// which the test run's linear frames would otherwise never reach).
enum class Reads { Direct, Helper };

// (expression, how it is compiled). Dead: libpcap on a saved frame (VlanView::Inline). Live: as
// tcpdump -i compiles it on Linux (VlanView::Metadata), the reference being libpcap's
// interpreter with the ancillary loads replaced by what the kernel would return.
class FilterDiff : public ::testing::TestWithParam<std::tuple<const char *, Compiled, Reads>> {};

std::vector<uint8_t> strip_outer_tag(const std::vector<uint8_t> &f) {
  std::vector<uint8_t> out(f.begin(), f.begin() + 12);
  out.insert(out.end(), f.begin() + 16, f.end());
  return out;
}

TEST_P(FilterDiff, KernelMatchesLibpcapOnCorpus) {
  const std::string expr = std::get<0>(GetParam());
  const bool live = std::get<1>(GetParam()) == Compiled::Live;
  auto cbpf = live ? compile_pcap_filter_live(expr, BPFTAP_MAX_SNAPLEN, "lo") : compile_pcap_filter(expr, BPFTAP_MAX_SNAPLEN);
  ASSERT_TRUE(cbpf) << cbpf.error().message();
  TranslateOptions to;
  to.vlan = live ? VlanView::Metadata : VlanView::Inline;
  to.direct_reads = std::get<2>(GetParam()) == Reads::Direct;
  auto ebpf = translate_cbpf(*cbpf, to);
  ASSERT_TRUE(ebpf) << ebpf.error().message();
  auto prog = test::load_filter_program(*ebpf);
  ASSERT_TRUE(prog) << prog.error().message();
  int fd = (*prog)->filter_test_fd();

  const auto &frames = test::ethernet_corpus(BPFTAP_CORPUS_DIR "/ndpi");
  ASSERT_GT(frames.size(), 90000u) << "the corpus at " BPFTAP_CORPUS_DIR " looks incomplete";
  size_t compared = 0, accepted = 0, too_big = 0, tag_runs = 0, mismatches = 0;
  auto check = [&](const test::Frame &f, const std::vector<uint8_t> &kernel_frame, uint32_t vtag,
                   const std::vector<uint8_t> &ref_frame, const AncillaryValues &anc) {
    auto ref = substitute_ancillary(*cbpf, anc);
    uint32_t want = run_pcap_filter(ref, ref_frame.data(), ref_frame.size(), ref_frame.size());
    auto got = test::run_tc(fd, kernel_frame, vtag, anc.pkttype);
    ASSERT_EQ(got.err, 0) << f.file << "#" << f.index;
    if (got.retval != want && mismatches++ < 10)
      ADD_FAILURE() << fmt::format("'{}' ({}, {} reads) on {} frame #{} (vtag {:#x}, pkttype {}): kernel {} libpcap {}",
                                   expr, live ? "live" : "dead", to.direct_reads ? "direct" : "helper", f.file, f.index,
                                   vtag, anc.pkttype, got.retval, want);
    accepted += want != 0;
  };
  for (const auto &f : frames) {
    if (f.bytes.size() < 14 || f.bytes.size() > test::kMaxTestRunFrame) {
      too_big++;
      continue;
    }
    // The kernel sees the frame as captured (caplen bytes), so libpcap gets len = caplen too.
    // Every fifth frame is an outgoing one (for inbound/outbound).
    uint32_t pkttype = f.index % 5 == 0 ? PACKET_OUTGOING : PACKET_HOST;
    check(f, f.bytes, 0, f.bytes, {0, 0, 0, pkttype});
    compared++;
    if (!tagged(f.bytes)) continue;
    // The same frame as the kernel holds it on ingress: outer tag moved into metadata.
    uint16_t tpid = static_cast<uint16_t>(f.bytes[12] << 8 | f.bytes[13]);
    uint16_t tci = static_cast<uint16_t>(f.bytes[14] << 8 | f.bytes[15]);
    auto stripped = strip_outer_tag(f.bytes);
    if (live)  // the kernel's filter runs on the stripped frame and reads the tag from metadata
      check(f, stripped, uint32_t{tpid} << 16 | tci, stripped, {1, tci, tpid, pkttype});
    else  // libpcap filters the saved frame, tag inline
      check(f, stripped, uint32_t{tpid} << 16 | tci, f.bytes, {0, 0, 0, pkttype});
    tag_runs++;
  }
  EXPECT_EQ(mismatches, 0u);
  std::printf("  '%s' (%s, %s reads): %zu frames compared (%zu verdicts accept), %zu also with the tag in metadata, "
              "%zu not runnable (size outside 14..%zu bytes)\n",
              expr.c_str(), live ? "live" : "dead", to.direct_reads ? "direct" : "helper", compared, accepted, tag_runs, too_big, test::kMaxTestRunFrame);
}

TEST(FilterTranslate, LoopsAreRefusedClearly) {
  auto cbpf = compile_pcap_filter("ip6 protochain 6", BPFTAP_MAX_SNAPLEN);
  ASSERT_TRUE(cbpf);
  auto ebpf = translate_cbpf(*cbpf);
  ASSERT_FALSE(ebpf);
  EXPECT_NE(ebpf.error().message().find("loop"), std::string::npos) << ebpf.error().message();
}

INSTANTIATE_TEST_SUITE_P(Corpus, FilterDiff,
                         ::testing::Combine(::testing::ValuesIn(kExpressions),
                                            ::testing::Values(Compiled::Dead, Compiled::Live),
                                            ::testing::Values(Reads::Direct)));
// The helper path as bpftap compiles filters (live), once more over the whole corpus.
INSTANTIATE_TEST_SUITE_P(CorpusHelperReads, FilterDiff,
                         ::testing::Combine(::testing::ValuesIn(kExpressions), ::testing::Values(Compiled::Live),
                                            ::testing::Values(Reads::Helper)));

} // namespace
