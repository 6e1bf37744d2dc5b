// A whole capture session (Capture: program, hooks, ring reader) on a private namespace's
// loopback, with what the agent does from its HTTP threads: stats() and ring_usage() while the
// reader thread writes. The counts must add up; the ThreadSanitizer build (scripts/test) runs
// this test to find the data races a plain build cannot see.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "bpf_test_util.h"
#include "capture/capture.h"
#include "util/run.h"

using namespace bpftap;

namespace {

class CountingSink : public PacketSink {
public:
  Result<> write(const Packet &) override {
    written_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  Result<> flush() override { return {}; }
  uint64_t written() const { return written_.load(); }

private:
  std::atomic<uint64_t> written_{0};
};

} // namespace

TEST(CaptureSession, StatsFromOtherThreadsWhileTheReaderRuns) {
  test::PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  auto up = lab::run_checked({"ip", "link", "set", "lo", "up"});
  ASSERT_TRUE(up) << up.error().message();
  CaptureOptions o;
  o.interfaces = {"lo"};
  o.filter = "udp";
  o.snaplen = 128;
  auto cap = Capture::start(o);
  ASSERT_TRUE(cap) << cap.error().message();

  CountingSink sink;
  std::atomic<bool> stop{false};
  Result<> run_result;
  std::thread reader([&] { run_result = (*cap)->run(sink, stop); });
  std::atomic<bool> sending{true};
  uint64_t last_captured = 0, polls = 0;
  std::thread api([&] {  // what GET /v1/sessions and /metrics do
    while (sending.load()) {
      auto st = (*cap)->stats();
      ASSERT_TRUE(st) << st.error().message();
      ASSERT_EQ(st->size(), 1u);
      EXPECT_GE((*st)[0].captured, last_captured) << "captured went backwards";
      last_captured = (*st)[0].captured;
      auto ru = (*cap)->ring_usage();
      ASSERT_EQ(ru.size(), 1u);  // -s 128: only the small copies' ring
      for (const auto &r : ru) {
        EXPECT_LE(r.used, r.size);
        EXPECT_LE(r.peak, r.size);
      }
      polls++;
    }
  });

  int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(tx, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(9);  // discard: nothing listens, the datagrams still cross lo's hooks
  const int kPackets = 20000;
  char payload[32] = {};
  int sent = 0;
  for (int i = 0; i < kPackets; i++)
    sent += sendto(tx, payload, sizeof payload, 0, reinterpret_cast<sockaddr *>(&to), sizeof to) == sizeof payload;
  close(tx);
  usleep(200 * 1000);  // past the reorder window and a reader round
  sending = false;
  api.join();
  stop = true;
  reader.join();
  ASSERT_TRUE(run_result) << run_result.error().message();
  auto last = (*cap)->finish(sink);
  ASSERT_TRUE(last) << last.error().message();
  ASSERT_EQ(last->size(), 1u);
  const auto &s = (*last)[0];
  EXPECT_EQ(sent, kPackets);
  // Each datagram leaves and enters lo (egress and ingress hooks): two copies, unless dropped.
  EXPECT_EQ(s.matched, 2u * kPackets);
  EXPECT_EQ(s.captured + s.dropped, s.matched);
  EXPECT_EQ(sink.written(), s.captured);
  EXPECT_GT(polls, 10u) << "the stats thread hardly ran";
}

// The rings a capture gets: copies of up to 512 bytes in a small ring (8 MiB by default, never
// more than -B), longer ones in a big one (-B, or by the snapshot length), which a snapshot
// length of at most 512 does not need; past 8 MiB the big one is 8 MiB and the buffer becomes
// the spill ring behind it. The perf transport has none.
TEST(CaptureSession, RingsAreSizedBySnaplenAndBufferSize) {
  test::PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  struct Case {
    uint32_t snaplen, buffer_bytes;
    bpftap_output output;
    std::vector<std::pair<std::string, uint64_t>> want;  // ring, size
  };
  const uint64_t MiB = 1u << 20;
  const Case cases[] = {
      {128, 0, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}}},
      {512, 0, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}}},
      {513, 0, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}, {"big", 8 * MiB}}},
      {BPFTAP_MAX_SNAPLEN, 0, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}, {"big", 8 * MiB}, {"spill", 128 * MiB}}},
      {BPFTAP_MAX_SNAPLEN, 64 * MiB, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}, {"big", 8 * MiB}, {"spill", 64 * MiB}}},
      {BPFTAP_MAX_SNAPLEN, 8 * MiB, BPFTAP_OUT_RINGBUF, {{"small", 8 * MiB}, {"big", 8 * MiB}}},
      {BPFTAP_MAX_SNAPLEN, 4 * MiB, BPFTAP_OUT_RINGBUF, {{"small", 4 * MiB}, {"big", 4 * MiB}}},
      {128, 2 * MiB, BPFTAP_OUT_RINGBUF, {{"small", 2 * MiB}}},
      {128, 0, BPFTAP_OUT_PERFBUF, {}},
  };
  for (const auto &c : cases) {
    SCOPED_TRACE("snaplen " + std::to_string(c.snaplen) + ", buffer " + std::to_string(c.buffer_bytes) +
                 (c.output == BPFTAP_OUT_PERFBUF ? ", perf" : ""));
    CaptureOptions o;
    o.interfaces = {"lo"};
    o.snaplen = c.snaplen;
    o.buffer_bytes = c.buffer_bytes;
    o.output = c.output;
    auto cap = Capture::start(o);
    ASSERT_TRUE(cap) << cap.error().message();
    std::vector<std::pair<std::string, uint64_t>> got;
    for (const auto &r : (*cap)->ring_usage()) got.emplace_back(r.ring, r.size);
    EXPECT_EQ(got, c.want);
  }
}
