// The capture programs on crafted frames (BPF_PROG_TEST_RUN), read back with RingReader as the
// capture reads them: per-record metadata and bytes, counters, snaplen truncation, the ring
// size classes, a full ring (drops counted, the packet never touched). The programs are loaded
// but attached nowhere, so the test runs are their only packets. ifindex 1 is the loopback
// device the test run uses by default.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "bpf_test_util.h"
#include "capture/capture_prog.h"
#include "capture/ring_reader.h"
#include "kernel/attach.h"
#include "util/fd.h"
#include "util/run.h"

using namespace bpftap;

namespace {

constexpr uint32_t kLo = 1;
constexpr uint32_t kPass = static_cast<uint32_t>(TC_ACT_UNSPEC);

// An Ethernet frame of n bytes (local experimental ethertype: nothing parses it), with bytes
// that differ per seed.
std::vector<uint8_t> frame(size_t n, uint32_t seed) {
  std::vector<uint8_t> f(n);
  for (size_t i = 0; i < n; i++) f[i] = static_cast<uint8_t>(seed * 29 + i * 7 + (i >> 8));
  const uint8_t head[14] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5};
  std::memcpy(f.data(), head, std::min(n, sizeof head));
  return f;
}

// Runs a capture program once on `f` as if it came through interface `ifindex` (which must
// exist: the test run looks it up).
test::RunResult run(int prog_fd, const std::vector<uint8_t> &f, uint32_t ifindex = kLo) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  return test::run_tc(prog_fd, f, ctx);
}

// Loads the programs with both rings (small and big records) of `ring_bytes`; `batch`: small
// copies in per-CPU batches (the default), or a ring record each.
// The batches' timers are set to 50 ms, past the test runs of a test: a test run holds off
// preemption but not softirqs, so a timer due during the runs could flush a batch in the middle
// of one (attached, the programs run in softirq or with bottom halves disabled, and cannot be
// interrupted by it).
constexpr uint64_t kTestFlushNs = 50'000'000;
std::unique_ptr<CaptureProgram> load(uint32_t snaplen, uint32_t ring_bytes, bool batch = true,
                                     uint64_t flush_ns = kTestFlushNs) {
  CaptureProgramOptions o;  // empty filter: accept everything
  o.snaplen = snaplen;
  o.ring_bytes = ring_bytes;
  o.small_ring_bytes = ring_bytes;
  o.batch = batch;
  o.batch_flush_ns = flush_ns;
  auto p = CaptureProgram::load(o);
  EXPECT_TRUE(p) << p.error().message();
  return p ? std::move(*p) : nullptr;
}

// The program's ring reservation for a record of `cap` bytes: 4 size classes per power of two
// from 64 to 262144 (64, 80, 96, 112, 128, 160, ...), written out independently here.
uint64_t size_class(uint64_t cap) {
  std::vector<uint64_t> classes;
  for (uint64_t p = 64; p < BPFTAP_MAX_SNAPLEN; p *= 2)
    for (uint64_t q = 0; q < 4; q++) classes.push_back(p + q * p / 4);
  classes.push_back(BPFTAP_MAX_SNAPLEN);
  EXPECT_EQ(classes.size(), 49u);
  return *std::lower_bound(classes.begin(), classes.end(), cap);
}

// Ring bytes one record of `cap` packet bytes takes: kernel header, bpftap header, size class.
uint64_t ring_span(uint64_t cap) { return (8 + sizeof(bpftap_pkt_hdr) + size_class(cap) + 7) & ~uint64_t{7}; }

// Bytes a small copy of `cap` bytes takes in a per-CPU batch: bpftap header, bytes, padding to 8.
uint64_t batch_span(uint64_t cap) { return sizeof(bpftap_pkt_hdr) + ((cap + 7) & ~uint64_t{7}); }

// The batches' timers commit what is left in them within kTestFlushNs: wait for that.
void settle() { usleep(2 * kTestFlushNs / 1000); }

// While it lives, the test runs on one CPU, so that the small copies of consecutive runs share
// one per-CPU batch.
class StayOnThisCpu {
public:
  StayOnThisCpu() {
    sched_getaffinity(0, sizeof saved_, &saved_);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(sched_getcpu(), &set);
    EXPECT_EQ(sched_setaffinity(0, sizeof set, &set), 0) << strerror(errno);
  }
  ~StayOnThisCpu() { sched_setaffinity(0, sizeof saved_, &saved_); }

private:
  cpu_set_t saved_{};
};

// Both rings read as the capture reads them: the small records' ring, then the big one's (after
// the batches' timers have run).
std::optional<RingSet> open_rings(CaptureProgram &prog, uint32_t ring_bytes, bool batch = true) {
  settle();
  std::vector<RingReader> v;
  for (int fd : {prog.small_ring_fd(), prog.ring_fd()}) {
    auto rd = RingReader::open(fd, ring_bytes, batch && fd == prog.small_ring_fd());
    EXPECT_TRUE(rd) << rd.error().message();
    if (!rd) return std::nullopt;
    v.push_back(std::move(*rd));
  }
  auto set = RingSet::open(std::move(v));
  EXPECT_TRUE(set) << set.error().message();
  if (!set) return std::nullopt;
  return std::move(*set);
}

// The largest frame BPF_PROG_TEST_RUN accepts for a TC program (it builds a linear skb), found
// by running `prog_fd` before any interface is watched (the program returns at once: no
// record, no counter).
size_t largest_runnable_frame(int prog_fd) {
  size_t lo = 14, hi = 65535;
  if (run(prog_fd, frame(hi, 0)).err == 0) return hi;
  while (lo + 1 < hi) {
    size_t mid = (lo + hi) / 2;
    (run(prog_fd, frame(mid, 0)).err == 0 ? lo : hi) = mid;
  }
  return lo;
}

struct Expected {
  uint8_t dir;
  std::vector<uint8_t> frame;
};

// Takes every record out of the rings and checks it against `want` (matched by direction and
// length, each once): which ring it went to (copies of up to BPFTAP_SMALL_RECORD bytes to the
// small one), metadata, bytes (the frame's first min(len, snaplen)), timestamps in order.
void expect_ring_holds(CaptureProgram &prog, uint32_t ring_bytes, uint32_t snaplen, const std::vector<Expected> &want) {
  auto rd = open_rings(prog, ring_bytes);
  ASSERT_TRUE(rd);
  uint64_t small = 0, big = 0, shorts = 0;
  for (const auto &w : want) {
    size_t cap = std::min<size_t>(w.frame.size(), snaplen);
    if (cap <= BPFTAP_SMALL_RECORD) {
      small += batch_span(cap);
      shorts++;
    } else {
      big += ring_span(cap);
    }
  }
  // Short copies come in batches of one or more, each with its 8-byte ring header.
  if (shorts == 0) {
    EXPECT_EQ(rd->rings()[0].waiting(), 0u);
  }
  EXPECT_GE(rd->rings()[0].waiting(), small + (shorts ? 8 : 0)) << "small ring bytes used < the short copies' records";
  EXPECT_LE(rd->rings()[0].waiting(), small + 8 * shorts) << "small ring bytes used > the short copies' records";
  EXPECT_EQ(rd->rings()[1].waiting(), big) << "big ring bytes used != the size classes of the long copies";
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), want.size());
  std::vector<bool> used(want.size());
  uint64_t prev_ts = 0;
  for (const auto &r : recs) {
    const bpftap_pkt_hdr &h = *r.hdr;
    SCOPED_TRACE("record dir " + std::to_string(h.dir) + " wire_len " + std::to_string(h.wire_len));
    EXPECT_GE(h.ts_tai_ns, prev_ts) << "not in timestamp order";
    prev_ts = h.ts_tai_ns;
    size_t i = 0;
    while (i < want.size() && (used[i] || want[i].dir != h.dir || want[i].frame.size() != h.wire_len)) i++;
    ASSERT_LT(i, want.size()) << "no such packet was run (or it came back twice)";
    used[i] = true;
    const auto &f = want[i].frame;
    size_t cap = std::min<size_t>(f.size(), snaplen);
    EXPECT_EQ(h.ifindex, kLo);
    EXPECT_EQ(h.cap_len, cap);
    EXPECT_EQ(h.snap_len, cap);
    EXPECT_EQ(h.vlan_tpid, 0);
    EXPECT_EQ(h.vlan_tci, 0);
    ASSERT_EQ(r.bytes.size(), cap);
    EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.end(), f.begin())) << "bytes are not the frame's prefix";
  }
  rd->release();
  for (const auto &r : rd->rings()) EXPECT_EQ(r.waiting(), 0u);
}

void expect_counters(CaptureProgram &prog, uint8_t dir, uint64_t n, uint64_t bytes, uint64_t dropped = 0) {
  auto c = prog.counters(kLo, dir);
  ASSERT_TRUE(c) << c.error().message();
  SCOPED_TRACE(dir == BPFTAP_DIR_IN ? "ingress counters" : "egress counters");
  EXPECT_EQ(c->seen, n);
  EXPECT_EQ(c->matched, n);
  EXPECT_EQ(c->bytes, bytes);
  EXPECT_EQ(c->dropped, dropped);
}

// Runs both programs on each frame size of the table (those the test run accepts).
void run_size_table(uint32_t snaplen) {
  const uint32_t ring_bytes = 1u << 22;
  auto prog = load(snaplen, ring_bytes);
  ASSERT_TRUE(prog);
  size_t largest = largest_runnable_frame(prog->ingress_fd());
  std::vector<size_t> sizes;
  for (size_t n : {60, 64, 65, 100, 128, 129, 512, 513, 1514, 9000, 65000}) {
    if (n <= largest)
      sizes.push_back(n);
    else
      std::printf("NOTE: BPF_PROG_TEST_RUN refuses a %zu-byte frame here (largest: %zu bytes); size skipped\n", n,
                  largest);
  }
  if (largest < 65000 && largest > 1514) sizes.push_back(largest);  // the largest it does take
  ASSERT_GE(largest, 1514u) << "the test run should take at least a full-size Ethernet frame";
  ::testing::Test::RecordProperty("largest_test_run_frame", std::to_string(largest));

  ASSERT_TRUE(prog->watch(kLo));
  std::vector<Expected> want;
  std::map<uint8_t, uint64_t> runs, bytes;
  uint32_t seed = 1;
  for (size_t n : sizes) {
    for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
      SCOPED_TRACE(std::to_string(n) + " bytes, dir " + std::to_string(dir));
      auto f = frame(n, seed++);
      auto r = run(dir == BPFTAP_DIR_IN ? prog->ingress_fd() : prog->egress_fd(), f);
      ASSERT_EQ(r.err, 0) << strerror(-r.err);
      EXPECT_EQ(r.retval, kPass) << "the program must always let the packet go on (TC_ACT_UNSPEC)";
      want.push_back({dir, std::move(f)});
      runs[dir]++;
      bytes[dir] += n;
    }
  }
  expect_ring_holds(*prog, ring_bytes, snaplen, want);
  expect_counters(*prog, BPFTAP_DIR_IN, runs[BPFTAP_DIR_IN], bytes[BPFTAP_DIR_IN]);
  expect_counters(*prog, BPFTAP_DIR_OUT, runs[BPFTAP_DIR_OUT], bytes[BPFTAP_DIR_OUT]);
}

} // namespace

TEST(CaptureProg, IngressAndEgressRecordsCarryMetadataAndExactBytes) { run_size_table(BPFTAP_MAX_SNAPLEN); }

TEST(CaptureProg, SnaplenTruncatesTheCopyNotTheWireLength) { run_size_table(100); }

// An interface not watched (yet, or any more) is not captured and not counted, and the packet
// still goes on; watched again, it starts from zero counters.
TEST(CaptureProg, UnwatchedInterfaceIsNotCaptured) {
  const uint32_t ring_bytes = 1u << 16;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  auto f = frame(200, 7);
  auto run_both = [&] {
    for (int fd : {prog->ingress_fd(), prog->egress_fd()}) {
      auto r = run(fd, f);
      ASSERT_EQ(r.err, 0);
      EXPECT_EQ(r.retval, kPass);
    }
  };
  run_both();  // not watched yet
  EXPECT_FALSE(prog->counters(kLo, BPFTAP_DIR_IN));
  ASSERT_TRUE(prog->watch(kLo));
  run_both();
  expect_counters(*prog, BPFTAP_DIR_IN, 1, 200);
  expect_counters(*prog, BPFTAP_DIR_OUT, 1, 200);
  expect_ring_holds(*prog, ring_bytes, BPFTAP_MAX_SNAPLEN, {{BPFTAP_DIR_IN, f}, {BPFTAP_DIR_OUT, f}});

  prog->unwatch(kLo);
  run_both();
  EXPECT_FALSE(prog->counters(kLo, BPFTAP_DIR_IN));
  expect_ring_holds(*prog, ring_bytes, BPFTAP_MAX_SNAPLEN, {});

  ASSERT_TRUE(prog->watch(kLo));
  expect_counters(*prog, BPFTAP_DIR_IN, 0, 0);
  expect_counters(*prog, BPFTAP_DIR_OUT, 0, 0);
  run_both();
  expect_counters(*prog, BPFTAP_DIR_IN, 1, 200);
  expect_ring_holds(*prog, ring_bytes, BPFTAP_MAX_SNAPLEN, {{BPFTAP_DIR_IN, f}, {BPFTAP_DIR_OUT, f}});
}

// 200 full-size frames (1536-byte class, 1576 ring bytes each) fit in 1 MiB: none is lost.
TEST(CaptureProg, SizeClassesLoseNoRecord) {
  const uint32_t ring_bytes = 1u << 20;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  std::vector<Expected> want;
  for (uint32_t i = 0; i < 200; i++) {
    auto f = frame(1514, i);
    auto r = run(prog->ingress_fd(), f);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, kPass);
    want.push_back({BPFTAP_DIR_IN, std::move(f)});
  }
  EXPECT_EQ(ring_span(1514), 1576u);
  expect_ring_holds(*prog, ring_bytes, BPFTAP_MAX_SNAPLEN, want);
  expect_counters(*prog, BPFTAP_DIR_IN, 200, 200 * 1514);
}

// A ring too small for a burst: the copies that do not fit are counted as dropped, the program
// still returns TC_ACT_UNSPEC, and once the reader gives the space back records arrive again.
// The program asks the kernel to wake the reader once per backlog, when a record takes the
// waiting data past a quarter of the ring, not for every record after that (each request is a
// self-interrupt: ~4 us a packet in a VM while the reader catches up). Seen as the edge-triggered
// epoll events the reader waits for.
TEST(CaptureProg, WakesTheReaderOncePerBacklog) {
  const uint32_t ring_bytes = 1u << 20;  // wakeup mark: 256 KiB
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  FD ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_GE(ep.get(), 0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_ADD, prog->ring_fd(), &ev), 0);
  auto wakeups = [&] {  // events since the last call (the wakeup is an irq_work: let it run)
    epoll_event out[4];
    return epoll_wait(ep.get(), out, 4, 100);
  };
  const auto f = frame(1514, 7);
  const uint64_t below = (ring_bytes / 4) / ring_span(1514);  // records that stay under the mark
  for (uint64_t i = 0; i < below; i++) ASSERT_EQ(run(prog->ingress_fd(), f).err, 0);
  EXPECT_EQ(wakeups(), 0) << "woken before the backlog reached a quarter of the ring";
  ASSERT_EQ(run(prog->ingress_fd(), f).err, 0);
  EXPECT_EQ(wakeups(), 1) << "not woken when the backlog passed a quarter of the ring";
  for (int i = 0; i < 20; i++) ASSERT_EQ(run(prog->ingress_fd(), f).err, 0);
  EXPECT_EQ(wakeups(), 0) << "woken again by records after the mark";
  auto rd = RingReader::open(prog->ring_fd(), ring_bytes);  // the reader catches up...
  ASSERT_TRUE(rd) << rd.error().message();
  rd->take(UINT64_MAX);
  rd->release();
  for (uint64_t i = 0; i <= below; i++) ASSERT_EQ(run(prog->ingress_fd(), f).err, 0);
  EXPECT_EQ(wakeups(), 1) << "...and the next backlog wakes it again";
}

TEST(CaptureProg, FullRingCountsDropsAndNeverDropsThePacket) {
  const uint32_t ring_bytes = 1u << 16;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 100; i++) {
    frames.push_back(frame(1514, i));
    auto r = run(prog->ingress_fd(), frames.back());
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, kPass) << "frame " << i;
  }
  auto c = prog->counters(kLo, BPFTAP_DIR_IN);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->seen, 100u);
  EXPECT_EQ(c->matched, 100u);
  EXPECT_GT(c->dropped, 0u);
  const uint64_t fit = ring_bytes / ring_span(1514);  // 41 records of 1576 bytes in 64 KiB

  auto rd = RingReader::open(prog->ring_fd(), ring_bytes);
  ASSERT_TRUE(rd) << rd.error().message();
  const auto &recs = rd->take(UINT64_MAX);
  EXPECT_EQ(recs.size() + c->dropped, 100u) << "every matched packet is either in the ring or counted dropped";
  EXPECT_EQ(recs.size(), fit);
  // The ones that fit are the first ones, in order.
  for (size_t i = 0; i < recs.size() && i < frames.size(); i++)
    EXPECT_TRUE(std::equal(recs[i].bytes.begin(), recs[i].bytes.end(), frames[i].begin(), frames[i].end()))
        << "record " << i;
  rd->release();
  EXPECT_EQ(rd->waiting(), 0u);

  // Space given back: ten more all arrive.
  uint64_t dropped = c->dropped;
  for (uint32_t i = 0; i < 10; i++) ASSERT_EQ(run(prog->ingress_fd(), frame(1514, 1000 + i)).retval, kPass);
  c = prog->counters(kLo, BPFTAP_DIR_IN);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->dropped, dropped);
  EXPECT_EQ(c->matched, 110u);
  EXPECT_EQ(rd->take(UINT64_MAX).size(), 10u);
  rd->release();
}

// Short and long copies go to separate rings: a burst of small packets that fills the small
// ring (its copies counted dropped) leaves the big ring's room to full-size frames, and the
// two come back merged in time order.
TEST(CaptureProg, SmallRingFullDoesNotStopLongCopies) {
  const uint32_t ring_bytes = 1u << 16;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes, false);  // a ring record per copy (below: batches)
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  const uint64_t fit_small = ring_bytes / ring_span(100), fit_big = ring_bytes / ring_span(1514);
  std::vector<size_t> order;  // frame sizes in the order they were run
  for (uint64_t i = 0; i < fit_small + 50; i++) {
    ASSERT_EQ(run(prog->ingress_fd(), frame(100, uint32_t(i))).retval, kPass);
    order.push_back(100);
    if (i % 20 == 0) {
      ASSERT_EQ(run(prog->ingress_fd(), frame(1514, uint32_t(i))).retval, kPass);
      order.push_back(1514);
    }
  }
  uint64_t longs = std::count(order.begin(), order.end(), size_t{1514});
  ASSERT_LE(longs, fit_big);
  auto c = prog->counters(kLo, BPFTAP_DIR_IN);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->dropped, 50u) << "only the short copies past the small ring's room are dropped";

  auto rd = open_rings(*prog, ring_bytes, false);
  ASSERT_TRUE(rd);
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), order.size() - 50);
  // In run order: the long frames interleaved with the short ones that fit (the first ones).
  std::vector<size_t> want;
  uint64_t shorts = 0;
  for (size_t n : order)
    if (n == 1514 || shorts++ < fit_small) want.push_back(n);
  std::vector<size_t> got;
  uint64_t prev = 0;
  for (const auto &r : recs) {
    got.push_back(r.hdr->wire_len);
    EXPECT_GE(r.hdr->ts_tai_ns, prev);
    prev = r.hdr->ts_tai_ns;
  }
  EXPECT_EQ(got, want);
  rd->release();
}

// A long copy that finds the big ring full goes to the spill ring (the full-snaplen buffer,
// which only a backlog writes), and is dropped only when that one is full too. The reader gets
// every record of both, in run order, with its own bytes; once the big ring has room again,
// copies go back to it.
TEST(CaptureProg, FullBigRingSpillsIntoTheSpillRing) {
  const uint32_t big_bytes = 1u << 16, spill_bytes = 1u << 18;
  CaptureProgramOptions o;
  o.ring_bytes = big_bytes;
  o.small_ring_bytes = big_bytes;
  o.spill_ring_bytes = spill_bytes;
  auto loaded = CaptureProgram::load(o);
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto &prog = *loaded;
  ASSERT_TRUE(prog->watch(kLo));
  const uint64_t fit_big = big_bytes / ring_span(1514), fit_spill = spill_bytes / ring_span(1514);  // 41, 166
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < fit_big + fit_spill + 10; i++) {
    frames.push_back(frame(1514, i));
    ASSERT_EQ(run(prog->ingress_fd(), frames.back()).retval, kPass);
  }
  auto c = prog->counters(kLo, BPFTAP_DIR_IN);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->dropped, 10u) << "only what fits neither ring is dropped";

  std::vector<RingReader> v;
  for (auto [fd, size] : {std::pair{prog->ring_fd(), big_bytes}, std::pair{prog->spill_ring_fd(), spill_bytes}}) {
    auto rd = RingReader::open(fd, size);
    ASSERT_TRUE(rd) << rd.error().message();
    v.push_back(std::move(*rd));
  }
  auto set = RingSet::open(std::move(v));
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->rings()[0].waiting(), fit_big * ring_span(1514));
  EXPECT_EQ(set->rings()[1].waiting(), fit_spill * ring_span(1514));
  {
    const auto &recs = set->take(UINT64_MAX);
    ASSERT_EQ(recs.size(), fit_big + fit_spill);
    for (size_t i = 0; i < recs.size(); i++)
      EXPECT_TRUE(std::equal(recs[i].bytes.begin(), recs[i].bytes.end(), frames[i].begin(), frames[i].end()))
          << "record " << i << " is not frame " << i;
  }
  set->release();
  // Room again: the next copies go to the big ring, not the spill ring.
  for (uint32_t i = 0; i < 5; i++) ASSERT_EQ(run(prog->ingress_fd(), frame(1514, 5000 + i)).retval, kPass);
  EXPECT_EQ(set->rings()[0].waiting(), 5 * ring_span(1514));
  EXPECT_EQ(set->rings()[1].waiting(), 0u);
}

// Small copies wait in their CPU's batch until its timer commits them to the small ring as one
// ring record: nothing is in the ring before, all of them after, in run order, with their bytes.
TEST(CaptureProg, SmallCopiesReachTheRingInOneBatchWhenItsTimerFires) {
  StayOnThisCpu pinned;
  const uint32_t ring_bytes = 1u << 20;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes, true, 300'000'000);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  std::vector<std::vector<uint8_t>> frames;
  uint64_t span = 8;
  for (size_t n : {60, 100, 512}) {
    frames.push_back(frame(n, uint32_t(n)));
    ASSERT_EQ(run(prog->ingress_fd(), frames.back()).retval, kPass);
    span += batch_span(n);
  }
  auto rd = RingReader::open(prog->small_ring_fd(), ring_bytes, true);
  ASSERT_TRUE(rd) << rd.error().message();
  EXPECT_EQ(rd->waiting(), 0u) << "committed before the batch's timer (300 ms)";
  for (int i = 0; i < 200 && rd->waiting() == 0; i++) usleep(10'000);
  EXPECT_EQ(rd->waiting(), span) << "not one ring record holding the three";
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), frames.size());
  for (size_t i = 0; i < recs.size(); i++) {
    EXPECT_EQ(recs[i].hdr->wire_len, frames[i].size());
    EXPECT_TRUE(std::equal(recs[i].bytes.begin(), recs[i].bytes.end(), frames[i].begin(), frames[i].end()))
        << "record " << i;
  }
  rd->release();
  EXPECT_EQ(rd->waiting(), 0u);
}

// A batch goes to the ring as soon as the next copy does not fit in it, without its timer.
TEST(CaptureProg, AFullBatchGoesAtOnce) {
  StayOnThisCpu pinned;
  const uint32_t ring_bytes = 1u << 20;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes, true, 60'000'000'000);  // a timer that never fires here
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  const uint64_t fit = BPFTAP_BATCH_BYTES / batch_span(64);  // 85 records of 96 bytes
  for (uint64_t i = 0; i <= fit; i++) ASSERT_EQ(run(prog->ingress_fd(), frame(64, uint32_t(i))).retval, kPass);
  auto rd = RingReader::open(prog->small_ring_fd(), ring_bytes, true);
  ASSERT_TRUE(rd) << rd.error().message();
  EXPECT_EQ(rd->waiting(), 8 + fit * batch_span(64));
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), fit);
  for (size_t i = 0; i < recs.size(); i++) {
    auto f = frame(64, uint32_t(i));
    EXPECT_TRUE(std::equal(recs[i].bytes.begin(), recs[i].bytes.end(), f.begin(), f.end())) << "record " << i;
  }
  rd->release();
}

// The small ring full: a batch that does not fit stays in its CPU's buffer (its timer tries
// again), the copies that find both full are counted dropped, the packets always go on, and
// once the reader gives space back the held batch arrives. Every matched packet is either read,
// in run order, or counted dropped.
TEST(CaptureProg, BatchesIntoAFullRingCountDropsAndLoseNothingElse) {
  StayOnThisCpu pinned;
  const uint32_t ring_bytes = 1u << 16;  // 8 batches of 85 64-byte copies
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  const uint32_t n = 1000;
  for (uint32_t i = 0; i < n; i++) {
    auto r = run(prog->ingress_fd(), frame(64, i));
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, kPass) << "frame " << i;
  }
  auto c = prog->counters(kLo, BPFTAP_DIR_IN);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->matched, n);
  EXPECT_GT(c->dropped, 0u);
  auto rd = RingReader::open(prog->small_ring_fd(), ring_bytes, true);
  ASSERT_TRUE(rd) << rd.error().message();
  std::vector<uint32_t> got;  // which frames came back (the seed is in byte 14 onwards)
  auto read_all = [&] {
    settle();
    for (const auto &r : rd->take(UINT64_MAX)) {
      uint32_t i = uint32_t(got.size());
      auto f = frame(64, i);
      EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.end(), f.begin(), f.end())) << "record " << i << " is not frame " << i;
      got.push_back(i);
    }
    rd->release();
  };
  read_all();
  const uint64_t per_batch = BPFTAP_BATCH_BYTES / batch_span(64);
  const uint64_t batches = ring_bytes / ((8 + per_batch * batch_span(64) + 7) & ~uint64_t{7});
  EXPECT_EQ(got.size(), batches * per_batch) << "the ring should hold " << batches << " full batches";
  read_all();  // the batch held back, now that there is room
  EXPECT_EQ(got.size() + c->dropped, n) << "every matched packet is either read or counted dropped";
}

using test::PrivateNetns;

// Interfaces with an ifindex past BPFTAP_IFSLOT_DIRECT (65536) are found through the program's
// hash map instead of its array: two veths, one on each side, in a private namespace.
TEST(CaptureProg, LargeIfindexIsWatchedToo) {
  PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  const uint32_t small = 7, large = BPFTAP_IFSLOT_DIRECT + 4464;  // 70000
  for (uint32_t idx : {small, large}) {
    auto name = "bt" + std::to_string(idx);
    auto r = lab::run_checked({"ip", "link", "add", "name", name, "index", std::to_string(idx), "type", "veth", "peer",
                               "name", name + "p"});
    ASSERT_TRUE(r) << r.error().message();
  }
  const uint32_t ring_bytes = 1u << 16;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  auto f = frame(300, 3);
  // Not watched yet: nothing.
  for (uint32_t idx : {small, large}) {
    auto r = run(prog->ingress_fd(), f, idx);
    ASSERT_EQ(r.err, 0) << "ifindex " << idx << ": " << strerror(-r.err);
    EXPECT_EQ(r.retval, kPass);
  }
  for (uint32_t idx : {small, large}) ASSERT_TRUE(prog->watch(idx));
  for (uint32_t idx : {large, small, large}) ASSERT_EQ(run(prog->ingress_fd(), f, idx).retval, kPass);

  auto rd = open_rings(*prog, ring_bytes);
  ASSERT_TRUE(rd);
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), 3u);
  std::map<uint32_t, int> per_if;
  for (const auto &r : recs) {
    per_if[r.hdr->ifindex]++;
    EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.end(), f.begin(), f.end()));
  }
  EXPECT_EQ(per_if[large], 2);
  EXPECT_EQ(per_if[small], 1);
  rd->release();
  for (auto [idx, n] : {std::pair{small, 1u}, std::pair{large, 2u}}) {
    auto c = prog->counters(idx, BPFTAP_DIR_IN);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->seen, n) << "ifindex " << idx;
    EXPECT_EQ(c->matched, n) << "ifindex " << idx;
  }
  // Unwatched, the large one is forgotten too.
  prog->unwatch(large);
  ASSERT_EQ(run(prog->ingress_fd(), f, large).retval, kPass);
  EXPECT_TRUE(rd->take(UINT64_MAX).empty());
  rd->release();
}

// The sizes BPF_PROG_TEST_RUN cannot build (a jumbo frame, a 64 KB datagram), as real traffic:
// both programs attached to the loopback device of a private network namespace, UDP datagrams
// sent to a bound socket (no ICMP replies). lo's skbs for large datagrams are paged, so this
// also covers bpf_skb_load_bytes on non-linear data and the large size classes.
TEST(CaptureProg, RealLoopbackTrafficUpTo64KiB) {
  PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  auto up = lab::run_checked({"ip", "link", "set", "lo", "up"});
  ASSERT_TRUE(up) << up.error().message();

  const uint32_t ring_bytes = 1u << 22;
  auto prog = load(BPFTAP_MAX_SNAPLEN, ring_bytes);
  ASSERT_TRUE(prog);
  ASSERT_TRUE(prog->watch(kLo));
  std::vector<std::unique_ptr<Hook>> hooks;
  for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
    auto h = attach_hook(dir == BPFTAP_DIR_IN ? prog->ingress_fd() : prog->egress_fd(), kLo, dir, AttachMode::Auto);
    ASSERT_TRUE(h) << h.error().message();
    hooks.push_back(std::move(*h));
  }

  int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(rx, 0);
  ASSERT_GE(tx, 0);
  int big = 1 << 20;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0) << strerror(errno);
  socklen_t alen = sizeof addr;
  ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr *>(&addr), &alen), 0);

  const size_t kHeaders = 14 + 20 + 8;  // Ethernet (lo's zero addresses), IPv4, UDP
  const size_t sizes[] = {60, 1514, 9000, 40000, 65000};
  std::vector<std::vector<uint8_t>> payloads;
  uint64_t total = 0;
  for (size_t n : sizes) {
    auto p = frame(n - kHeaders, uint32_t(n));
    ASSERT_EQ(sendto(tx, p.data(), p.size(), 0, reinterpret_cast<sockaddr *>(&addr), sizeof addr), ssize_t(p.size()))
        << strerror(errno);
    std::vector<uint8_t> got(p.size() + 1);
    ASSERT_EQ(recv(rx, got.data(), got.size(), 0), ssize_t(p.size()));  // ingress has run by now
    payloads.push_back(std::move(p));
    total += n;
  }
  close(rx);
  close(tx);
  hooks.clear();

  auto rd = open_rings(*prog, ring_bytes);
  ASSERT_TRUE(rd);
  uint64_t short_bytes = 0, long_bytes = 0;
  for (size_t n : sizes) {
    if (n <= BPFTAP_SMALL_RECORD)
      short_bytes += 2 * batch_span(n);
    else
      long_bytes += 2 * ring_span(n);
  }
  EXPECT_EQ(rd->rings()[1].waiting(), long_bytes);
  EXPECT_GE(rd->rings()[0].waiting(), short_bytes + 8);  // one batch or two (8 bytes of ring header each)
  EXPECT_LE(rd->rings()[0].waiting(), short_bytes + 16);
  const auto &recs = rd->take(UINT64_MAX);
  ASSERT_EQ(recs.size(), 2 * std::size(sizes));
  std::map<std::pair<uint8_t, uint32_t>, int> seen;
  for (const auto &r : recs) {
    const bpftap_pkt_hdr &h = *r.hdr;
    SCOPED_TRACE("dir " + std::to_string(h.dir) + " wire_len " + std::to_string(h.wire_len));
    auto it = std::find(std::begin(sizes), std::end(sizes), h.wire_len);
    ASSERT_NE(it, std::end(sizes)) << "no datagram of that size was sent";
    int &times = seen[{h.dir, h.wire_len}];
    EXPECT_EQ(++times, 1) << "twice";
    EXPECT_EQ(h.ifindex, kLo);
    EXPECT_EQ(h.cap_len, h.wire_len);
    ASSERT_EQ(r.bytes.size(), h.wire_len);
    EXPECT_EQ(r.bytes[12], 0x08);  // IPv4
    EXPECT_EQ(r.bytes[13], 0x00);
    EXPECT_EQ(r.bytes[14 + 9], IPPROTO_UDP);
    const auto &p = payloads[size_t(it - std::begin(sizes))];
    EXPECT_TRUE(std::equal(r.bytes.begin() + kHeaders, r.bytes.end(), p.begin(), p.end())) << "payload differs";
  }
  rd->release();
  expect_counters(*prog, BPFTAP_DIR_IN, std::size(sizes), total);
  expect_counters(*prog, BPFTAP_DIR_OUT, std::size(sizes), total);
}
