// RingReader over a ring laid out in memory as the kernel lays out a BPF ring buffer: a memfd
// of `size` bytes mapped twice back to back (a record that wraps is contiguous), 8-byte record
// headers with the busy and discard bits, free-running positions. No root, no kernel ring.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <span>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "capture/ring_reader.h"
#include "pcapng_reader.h"
#include "sinks/pcapng_writer.h"

namespace bpftap {
namespace {

namespace fs = std::filesystem;

// The kernel's values (<linux/bpf.h> BPF_RINGBUF_*), part of its ABI.
constexpr uint32_t kBusyBit = 1u << 31;    // BPF_RINGBUF_BUSY_BIT
constexpr uint32_t kDiscardBit = 1u << 30; // BPF_RINGBUF_DISCARD_BIT
constexpr uint64_t kRecHdr = 8;            // BPF_RINGBUF_HDR_SZ

// Bytes a record of `payload` bytes takes in the ring (header, payload, 8-byte alignment).
constexpr uint64_t record_span(uint64_t payload) { return (payload + kRecHdr + 7) & ~uint64_t{7}; }

// The packet bytes of record `seed`: distinct per record, so a mix-up shows.
std::vector<uint8_t> payload(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(seed * 131 + i * 7 + (i >> 8));
  return b;
}

// How the data area is mapped. Twice: as the kernel offers it, the same `size` bytes again right
// behind (a memfd mapped twice back to back), so a record that wraps is contiguous. Once: the
// data once, followed by `size` bytes of poison (0xEE) in place of the second copy: a reader
// that relies on the second mapping reads garbage there, and the bytes checks fail.
enum class Mapping { Twice, Once };

std::string mapping_name(Mapping m) { return m == Mapping::Twice ? "data mapped twice" : "data mapped once"; }

// A BPF ring buffer in user memory, laid out as the kernel lays it out.
class FakeRing {
public:
  // `size`: a power of two and a multiple of the page size. `start`: the initial consumer and
  // producer position (positions are free-running counters; only pos & (size-1) is an offset).
  explicit FakeRing(uint64_t size, uint64_t start = 0, Mapping mapping = Mapping::Twice)
      : size_(size), consumer_(start), producer_(start) {
    fd_ = memfd_create("bpftap-fake-ring", MFD_CLOEXEC);
    if (fd_ < 0 || ftruncate(fd_, off_t(size)) != 0) return;
    void *area = mmap(nullptr, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return;
    base_ = static_cast<uint8_t *>(area);
    if (mmap(base_, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, 0) == MAP_FAILED) return;
    if (mapping == Mapping::Twice) {
      if (mmap(base_ + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, 0) == MAP_FAILED) return;
    } else {
      if (mmap(base_ + size, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
          MAP_FAILED)
        return;
      std::memset(base_ + size, 0xEE, size);
    }
    ok_ = true;
  }
  ~FakeRing() {
    if (base_) munmap(base_, 2 * size_);
    if (fd_ >= 0) close(fd_);
  }
  FakeRing(const FakeRing &) = delete;
  FakeRing &operator=(const FakeRing &) = delete;

  bool ok() const { return ok_; }
  uint64_t size() const { return size_; }
  uint64_t consumer() const { return consumer_; }
  uint64_t producer() const { return producer_; }
  uint64_t free_space() const { return size_ - (producer_ - consumer_); }
  const uint8_t *data() const { return base_; }

  RingReader reader(bool batched = false) { return RingReader::over(&consumer_, &producer_, base_, size_, batched); }

  // Writes a record at the producer position and advances the producer, as bpf_ringbuf_reserve
  // does (with `flags` = the busy bit it is still being written; the discard bit = discarded).
  // `slack` extra payload bytes after the packet model the program's size classes (the record
  // is longer than cap_len) and are filled with garbage. Returns the record's position.
  uint64_t append(uint64_t ts, uint32_t ifindex, std::span<const uint8_t> bytes, uint32_t flags = 0,
                  uint8_t dir = BPFTAP_DIR_IN, uint32_t slack = 0) {
    uint32_t len = uint32_t(sizeof(bpftap_pkt_hdr) + bytes.size() + slack);
    if (record_span(len) > free_space()) {
      ADD_FAILURE() << "fake ring full: " << free_space() << " bytes free, record needs " << record_span(len);
      return UINT64_MAX;
    }
    uint64_t pos = producer_;
    bpftap_pkt_hdr h = header(ts, ifindex, bytes.size(), dir);
    put(pos + kRecHdr, &h, sizeof h);
    put(pos + kRecHdr + sizeof h, bytes.data(), bytes.size());
    std::vector<uint8_t> garbage(slack + (record_span(len) - kRecHdr - len), 0xEE);
    put(pos + kRecHdr + len - slack, garbage.data(), garbage.size());
    const uint32_t word[2] = {len | flags, 0};
    put(pos, word, sizeof word);
    producer_ += record_span(len);
    return pos;
  }

  // Writes one record holding a batch of packet records, as the capture program's per-CPU
  // batches are: each a bpftap header, cap_len bytes, and garbage up to a multiple of 8.
  // `recs`: (timestamp, ifindex, bytes). Returns the record's position.
  uint64_t append_batch(const std::vector<std::tuple<uint64_t, uint32_t, std::vector<uint8_t>>> &recs) {
    std::vector<uint8_t> body;
    for (const auto &[ts, ifindex, bytes] : recs) {
      bpftap_pkt_hdr h = header(ts, ifindex, bytes.size(), BPFTAP_DIR_IN);
      const auto *hb = reinterpret_cast<const uint8_t *>(&h);
      body.insert(body.end(), hb, hb + sizeof h);
      body.insert(body.end(), bytes.begin(), bytes.end());
      body.resize((body.size() + 7) & ~size_t{7}, 0xEE);
    }
    if (record_span(body.size()) > free_space()) {
      ADD_FAILURE() << "fake ring full";
      return UINT64_MAX;
    }
    uint64_t pos = producer_;
    put(pos + kRecHdr, body.data(), body.size());
    const uint32_t word[2] = {uint32_t(body.size()), 0};
    put(pos, word, sizeof word);
    producer_ += record_span(body.size());
    return pos;
  }

  // Sets the busy/discard bits of the record at `pos` (clearing busy = bpf_ringbuf_submit).
  void set_flags(uint64_t pos, uint32_t flags) {
    uint32_t word;
    uint8_t *at = base_ + (pos & (size_ - 1));
    std::memcpy(&word, at, 4);
    word = (word & ~(kBusyBit | kDiscardBit)) | flags;
    std::memcpy(at, &word, 4);
  }

  // Whether the record at `pos` with `payload` bytes runs past the end of the data area.
  bool wraps(uint64_t pos, uint64_t payload) const { return (pos & (size_ - 1)) + kRecHdr + payload > size_; }

private:
  // The program's header of a packet record of `n` bytes.
  static bpftap_pkt_hdr header(uint64_t ts, uint32_t ifindex, size_t n, uint8_t dir) {
    bpftap_pkt_hdr h{};
    h.ts_tai_ns = ts;
    h.ifindex = ifindex;
    h.wire_len = uint32_t(n + 4);  // as if a snaplen had cut 4 bytes
    h.snap_len = uint32_t(n);
    h.cap_len = uint32_t(n);
    h.dir = dir;
    return h;
  }

  // Writes at ring position `pos`, wrapping around the end of the data area (as the kernel's
  // second mapping would), so both mappings hold the same record.
  void put(uint64_t pos, const void *src, size_t n) {
    size_t off = pos & (size_ - 1), first = std::min<size_t>(n, size_ - off);
    if (first) std::memcpy(base_ + off, src, first);
    if (n > first) std::memcpy(base_, static_cast<const uint8_t *>(src) + first, n - first);
  }

  uint64_t size_;
  int fd_ = -1;
  uint8_t *base_ = nullptr;
  bool ok_ = false;
  uint64_t consumer_, producer_;
};

// What a test expects of one record.
struct Want {
  uint64_t ts;
  uint32_t ifindex;
  std::vector<uint8_t> bytes;
};

std::vector<uint64_t> timestamps(const std::vector<RingRecord> &recs) {
  std::vector<uint64_t> ts;
  for (const auto &r : recs) ts.push_back(r.hdr->ts_tai_ns);
  return ts;
}

void expect_record(const RingRecord &r, const Want &w) {
  SCOPED_TRACE("record ts " + std::to_string(w.ts));
  EXPECT_EQ(r.hdr->ts_tai_ns, w.ts);
  EXPECT_EQ(r.hdr->ifindex, w.ifindex);
  EXPECT_EQ(r.hdr->cap_len, w.bytes.size());
  EXPECT_EQ(r.hdr->wire_len, w.bytes.size() + 4);
  ASSERT_EQ(r.bytes.size(), w.bytes.size());
  EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.end(), w.bytes.begin())) << "bytes differ";
  // The span points right behind the header, in ring memory.
  EXPECT_EQ(r.bytes.data(), reinterpret_cast<const uint8_t *>(r.hdr + 1));
}

// (a) Two CPUs reserve in turn but stamp their packets in another order: one take() returns
// them by timestamp, each with its own bytes; equal timestamps keep ring order.
TEST(RingReader, RecordsFromTwoCpusComeBackSortedByTimestamp) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  std::map<uint64_t, Want> want;
  const uint64_t order[] = {10, 30, 20, 40, 25};
  for (size_t i = 0; i < std::size(order); i++) {
    uint32_t cpu = uint32_t(i % 2 + 1);  // ifindex stands for the CPU that wrote it
    Want w{order[i], cpu, payload(60 + i * 10, uint32_t(order[i]))};
    ring.append(w.ts, w.ifindex, w.bytes);
    want[w.ts] = w;
  }
  auto rd = ring.reader();
  const auto &recs = rd.take(UINT64_MAX);
  ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 20, 25, 30, 40}));
  for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  EXPECT_EQ(ring.consumer(), 0u) << "take() must not give space back";
  EXPECT_EQ(rd.waiting(), ring.producer());
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
  EXPECT_EQ(rd.waiting(), 0u);
  EXPECT_EQ(rd.held(), 0u);

  // Equal timestamps: ring order (a stable sort).
  auto a = payload(70, 1), b = payload(80, 2), c = payload(90, 3);
  ring.append(100, 1, a);
  ring.append(100, 2, b);
  ring.append(99, 3, c);
  const auto &same = rd.take(UINT64_MAX);
  ASSERT_EQ(same.size(), 3u);
  EXPECT_EQ(same[0].hdr->ifindex, 3u);
  EXPECT_EQ(same[1].hdr->ifindex, 1u);
  EXPECT_EQ(same[2].hdr->ifindex, 2u);
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
}

// (b) Records newer than the cutoff stay in the ring; release() gives back space only up to the
// first of them, and everything once they have been taken too.
TEST(RingReader, CutoffHoldsLaterRecordsAndReleaseStopsAtTheFirstHeld) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  std::map<uint64_t, Want> want;
  std::map<uint64_t, uint64_t> pos;
  for (uint64_t ts : {10, 50, 20, 60, 30}) {
    Want w{ts, 7, payload(100 + ts, uint32_t(ts))};
    pos[ts] = ring.append(ts, 7, w.bytes);
    want[ts] = w;
  }
  auto rd = ring.reader();
  {
    const auto &recs = rd.take(35);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 20, 30}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  EXPECT_EQ(rd.held(), 2u);
  EXPECT_TRUE(rd.take(35).empty()) << "nothing new at or before the cutoff";
  EXPECT_TRUE(rd.take(49).empty());
  rd.release();
  // 10 (the first record) is written out; 50 (the second) is still held: the kernel gets back
  // exactly the first record's space, although 20 and 30 behind it were handed out too.
  EXPECT_EQ(ring.consumer(), pos[50]);
  EXPECT_EQ(rd.waiting(), ring.producer() - pos[50]);

  // A later record, older than those held, arrives: it is returned with them, in order.
  Want late{55, 7, payload(77, 55)};
  want[55] = late;
  uint64_t late_pos = ring.append(55, 7, late.bytes);
  {
    const auto &recs = rd.take(55);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{50, 55}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), pos[60]);
  {
    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{60}));
    expect_record(recs[0], want[60]);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
  EXPECT_GT(ring.producer(), late_pos);
  EXPECT_EQ(rd.held(), 0u);
  EXPECT_TRUE(rd.take(UINT64_MAX).empty());
}

// (c) A record still being written (busy) ends the scan: committed records behind it wait.
TEST(RingReader, BusyRecordStopsTheScanUntilCommitted) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  Want a{10, 1, payload(64, 1)}, b{20, 2, payload(200, 2)}, c{5, 3, payload(300, 3)};
  ring.append(a.ts, a.ifindex, a.bytes);
  uint64_t busy = ring.append(b.ts, b.ifindex, b.bytes, kBusyBit);
  uint64_t after = ring.append(c.ts, c.ifindex, c.bytes);
  auto rd = ring.reader();
  {
    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(recs.size(), 1u) << "records behind a busy one must not be read";
    expect_record(recs[0], a);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), busy) << "space is given back up to the busy record, not past it";
  EXPECT_TRUE(rd.take(UINT64_MAX).empty()) << "still busy";
  rd.release();
  EXPECT_EQ(ring.consumer(), busy);

  ring.set_flags(busy, 0);  // the other CPU submits
  {
    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{5, 20}));
    expect_record(recs[0], c);
    expect_record(recs[1], b);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
  EXPECT_GT(ring.producer(), after);
}

// (d) Discarded records are never returned, and their space is given back with the rest.
TEST(RingReader, DiscardedRecordsAreSkippedAndReleased) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  Want a{10, 1, payload(64, 1)}, b{20, 2, payload(1500, 2)};
  uint64_t d0 = ring.append(5, 9, payload(128, 9), kDiscardBit);  // first in the ring
  ring.append(a.ts, a.ifindex, a.bytes);
  ring.append(15, 9, payload(700, 9), kDiscardBit);
  ring.append(b.ts, b.ifindex, b.bytes);
  auto rd = ring.reader();
  {
    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 20}));
    expect_record(recs[0], a);
    expect_record(recs[1], b);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
  EXPECT_GT(ring.producer(), d0);

  // A ring holding only discarded records: nothing returned, all of it released.
  ring.append(30, 9, payload(50, 9), kDiscardBit);
  ring.append(31, 9, payload(51, 9), kDiscardBit);
  EXPECT_TRUE(rd.take(UINT64_MAX).empty());
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());

  // A discarded record behind a held one is released only with it.
  Want held{100, 1, payload(90, 4)}, early{40, 1, payload(90, 5)};
  uint64_t held_pos = ring.append(held.ts, held.ifindex, held.bytes);
  ring.append(41, 9, payload(50, 9), kDiscardBit);
  ring.append(early.ts, early.ifindex, early.bytes);
  {
    const auto &recs = rd.take(50);
    ASSERT_EQ(recs.size(), 1u);
    expect_record(recs[0], early);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), held_pos);
  ASSERT_EQ(rd.take(UINT64_MAX).size(), 1u);
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
}

// (e) A record that wraps around the end of the data area comes back whole and exact, whether
// the wrap cuts through the bpftap header or through the packet bytes, with the data mapped
// twice (as the kernel offers it) or once; positions need not start at 0.
TEST(RingReader, RecordWrappingAroundTheEndComesBackExact) {
  const uint64_t size = 4096;
  for (Mapping mapping : {Mapping::Twice, Mapping::Once}) {
    // Header at size-24: the 32-byte bpftap header is cut after 16 bytes. At size-64: the bpftap
    // header fits, the packet bytes are cut after 24. At size-8: the record starts at the end.
    for (uint64_t before_end : {24u, 64u, 8u}) {
      SCOPED_TRACE(mapping_name(mapping) + ", record header " + std::to_string(before_end) +
                   " bytes before the end");
      uint64_t start = 5 * size - before_end;  // the fifth lap around the ring
      FakeRing ring(size, start, mapping);
      ASSERT_TRUE(ring.ok());
      Want w{77, 3, payload(1000, 77)};
      uint64_t pos = ring.append(w.ts, w.ifindex, w.bytes);
      ASSERT_EQ(pos, start);
      ASSERT_TRUE(ring.wraps(pos, sizeof(bpftap_pkt_hdr) + w.bytes.size()));
      Want next{78, 4, payload(333, 78)};
      uint64_t next_pos = ring.append(next.ts, next.ifindex, next.bytes);
      ASSERT_FALSE(ring.wraps(next_pos, sizeof(bpftap_pkt_hdr) + next.bytes.size()));

      auto rd = ring.reader();
      const auto &recs = rd.take(UINT64_MAX);
      ASSERT_EQ(recs.size(), 2u);
      expect_record(recs[0], w);
      expect_record(recs[1], next);
      // A record that does not wrap is read in place.
      EXPECT_EQ(reinterpret_cast<const uint8_t *>(recs[1].hdr), ring.data() + (next_pos & (size - 1)) + kRecHdr);
      rd.release();
      EXPECT_EQ(ring.consumer(), ring.producer());
    }
  }
}

// A wrapped record held back by the cutoff survives release() (of the records before it) and
// comes back exact later, even after the space before it has been reused.
TEST(RingReader, HeldWrappedRecordSurvivesRelease) {
  const uint64_t size = 4096;
  for (Mapping mapping : {Mapping::Twice, Mapping::Once}) {
    SCOPED_TRACE(mapping_name(mapping));
    FakeRing ring(size, 2 * size - 600, mapping);
    ASSERT_TRUE(ring.ok());
    Want early{10, 1, payload(200, 1)}, wrapped{100, 2, payload(900, 2)}, also_early{20, 3, payload(100, 3)};
    ring.append(early.ts, early.ifindex, early.bytes);
    uint64_t wpos = ring.append(wrapped.ts, wrapped.ifindex, wrapped.bytes);
    ASSERT_TRUE(ring.wraps(wpos, sizeof(bpftap_pkt_hdr) + wrapped.bytes.size()));
    ring.append(also_early.ts, also_early.ifindex, also_early.bytes);
    auto rd = ring.reader();
    EXPECT_EQ(timestamps(rd.take(50)), (std::vector<uint64_t>{10, 20}));
    rd.release();
    EXPECT_EQ(ring.consumer(), wpos);
    // Nothing new for a while: more rounds of take/release with the record still held.
    for (int i = 0; i < 3; i++) {
      EXPECT_TRUE(rd.take(50).empty());
      rd.release();
    }
    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(recs.size(), 1u);
    expect_record(recs[0], wrapped);
    rd.release();
    EXPECT_EQ(ring.consumer(), ring.producer());
  }
}

// The capture's small ring holds per-CPU batches. Two CPUs' batches interleave in time (and one
// wraps around the end of the data area): take() hands out their packet records by timestamp,
// each with its own bytes, read in place; a batch partly held by the cutoff keeps its space until
// all of its records are out.
TEST(RingReader, BatchesFromTwoCpusComeBackSortedAndReleasedWhole) {
  const uint64_t size = 4096;
  for (Mapping mapping : {Mapping::Twice, Mapping::Once}) {
    SCOPED_TRACE(mapping_name(mapping));
    FakeRing ring(size, 3 * size - 504, mapping);
    ASSERT_TRUE(ring.ok());
    std::map<uint64_t, Want> want;
    auto batch = [&](std::initializer_list<uint64_t> stamps, uint32_t cpu) {
      std::vector<std::tuple<uint64_t, uint32_t, std::vector<uint8_t>>> recs;
      for (uint64_t ts : stamps) {
        Want w{ts, cpu, payload(60 + ts % 50, uint32_t(ts))};  // lengths not multiples of 8
        recs.emplace_back(w.ts, w.ifindex, w.bytes);
        want[ts] = w;
      }
      return ring.append_batch(recs);
    };
    uint64_t a = batch({10, 30, 50}, 1);
    uint64_t b = batch({20, 40, 60, 95}, 2);  // wraps around the end
    ASSERT_FALSE(ring.wraps(a, b - a - kRecHdr));
    ASSERT_TRUE(ring.wraps(b, 4 * sizeof(bpftap_pkt_hdr) + 72 + 96 + 112 + 112));
    uint64_t c = batch({70, 80}, 1);
    auto rd = ring.reader(true);
    {
      const auto &recs = rd.take(75);
      ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 20, 30, 40, 50, 60, 70}));
      for (const auto &r : recs) {
        expect_record(r, want[r.hdr->ts_tai_ns]);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(r.hdr) % 8, 0u) << "a header not 8-byte aligned";
      }
    }
    rd.release();
    // Batch a is all out; b still holds 95: the kernel gets a's space back, not b's.
    EXPECT_EQ(ring.consumer(), b);
    EXPECT_EQ(rd.held(), 2u);  // 95 and 80
    {
      const auto &recs = rd.take(UINT64_MAX);
      ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{80, 95}));
      for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
    }
    rd.release();
    EXPECT_EQ(ring.consumer(), ring.producer());
    EXPECT_GT(ring.producer(), c);
  }
}

// (f') Records already in time order (the usual case, handed out without sorting): the limit
// and the cutoff cut the same prefix, and release stops at the first record still held.
TEST(RingReader, InOrderRecordsHonourLimitAndCutoff) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  std::map<uint64_t, Want> want;
  std::map<uint64_t, uint64_t> pos;
  for (uint64_t ts : {10, 20, 30, 40, 50}) {
    Want w{ts, 2, payload(ts * 5, uint32_t(ts))};
    pos[ts] = ring.append(ts, 2, w.bytes);
    want[ts] = w;
  }
  auto rd = ring.reader();
  {
    const auto &recs = rd.take(UINT64_MAX, 2);
    EXPECT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 20}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), pos[30]);
  EXPECT_EQ(timestamps(rd.take(35, 5)), (std::vector<uint64_t>{30}));
  rd.release();
  EXPECT_EQ(ring.consumer(), pos[40]);
  EXPECT_EQ(rd.held(), 2u);
  {
    const auto &recs = rd.take(UINT64_MAX);
    EXPECT_EQ(timestamps(recs), (std::vector<uint64_t>{40, 50}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
}

// (f) take(cutoff, limit) returns the `limit` oldest; the others come later, in order, each
// exactly once, and the consumer never passes a record not yet handed out.
TEST(RingReader, LimitReturnsTheOldestAndTheRestLater) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  std::map<uint64_t, Want> want;
  std::map<uint64_t, uint64_t> pos;
  for (uint64_t ts : {10, 30, 20, 40, 25}) {
    Want w{ts, 2, payload(ts * 3, uint32_t(ts))};
    pos[ts] = ring.append(ts, 2, w.bytes);
    want[ts] = w;
  }
  auto rd = ring.reader();
  std::vector<uint64_t> all;
  auto take2 = [&](std::vector<uint64_t> expect, uint64_t consumer_after) {
    const auto &recs = rd.take(UINT64_MAX, 2);
    EXPECT_EQ(timestamps(recs), expect);
    for (const auto &r : recs) {
      expect_record(r, want[r.hdr->ts_tai_ns]);
      all.push_back(r.hdr->ts_tai_ns);
    }
    rd.release();
    EXPECT_EQ(ring.consumer(), consumer_after);
  };
  take2({10, 20}, pos[30]);  // 30, second in the ring, is held
  EXPECT_EQ(rd.held(), 3u);
  take2({25, 30}, pos[40]);
  EXPECT_EQ(rd.held(), 1u);
  take2({40}, ring.producer());
  take2({}, ring.producer());
  EXPECT_EQ(all, (std::vector<uint64_t>{10, 20, 25, 30, 40}));

  // limit with a cutoff: the cutoff wins over the limit, and the limit over the rest.
  for (uint64_t ts : {110, 150, 120, 130}) {
    Want w{ts, 2, payload(ts, uint32_t(ts))};
    pos[ts] = ring.append(ts, 2, w.bytes);
    want[ts] = w;
  }
  EXPECT_EQ(timestamps(rd.take(125, 5)), (std::vector<uint64_t>{110, 120}));
  rd.release();
  EXPECT_EQ(ring.consumer(), pos[150]);
  EXPECT_EQ(timestamps(rd.take(UINT64_MAX, 1)), (std::vector<uint64_t>{130}));
  rd.release();
  EXPECT_EQ(ring.consumer(), pos[150]);
  EXPECT_EQ(timestamps(rd.take(UINT64_MAX, 1)), (std::vector<uint64_t>{150}));
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
}

// Two rings read as one (the capture's small and big records' rings), each written out of
// order by two CPUs: take() merges them by timestamp with each record's own bytes, holds what
// is past the cutoff in either ring, and gives each ring back only what it handed out; a limit
// that cuts the merged batch leaves the rest, in either ring, for the next take(), once each.
TEST(RingSet, RecordsOfTwoRingsFromTwoCpusComeBackMergedByTimestamp) {
  FakeRing small(1 << 14), big(1 << 16);
  ASSERT_TRUE(small.ok() && big.ok());
  std::map<uint64_t, Want> want;
  std::map<uint64_t, uint64_t> pos;
  // ifindex 1/2 = the CPU that wrote it; short copies in `small`, long ones in `big`.
  const std::pair<uint64_t, bool> order[] = {{10, false}, {15, true}, {30, false}, {12, true}, {20, false},
                                             {40, true},  {25, false}, {35, true}, {50, false}, {45, true}};
  for (size_t i = 0; i < std::size(order); i++) {
    auto [ts, is_big] = order[i];
    Want w{ts, uint32_t(i % 2 + 1), payload(is_big ? 1400 + ts : 60 + ts, uint32_t(ts))};
    pos[ts] = (is_big ? big : small).append(w.ts, w.ifindex, w.bytes);
    want[ts] = w;
  }
  std::vector<RingReader> rings;
  rings.push_back(small.reader());
  rings.push_back(big.reader());
  auto set = RingSet::open(std::move(rings));
  ASSERT_TRUE(set) << set.error().message();
  {
    const auto &recs = set->take(32);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{10, 12, 15, 20, 25, 30}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  EXPECT_EQ(small.consumer(), 0u) << "take() must not give space back";
  set->release();
  EXPECT_EQ(small.consumer(), pos[50]) << "small ring: up to its first held record";
  EXPECT_EQ(big.consumer(), pos[40]) << "big ring: up to its first held record";

  // The limit cuts the merged batch: 35 and 40 (big ring), then 45 (big) and 50 (small).
  EXPECT_EQ(timestamps(set->take(UINT64_MAX, 2)), (std::vector<uint64_t>{35, 40}));
  set->release();
  EXPECT_EQ(small.consumer(), pos[50]) << "50 was cut by the limit: still the small ring's";
  EXPECT_EQ(big.consumer(), pos[45]);
  {
    const auto &recs = set->take(UINT64_MAX, 2);
    ASSERT_EQ(timestamps(recs), (std::vector<uint64_t>{45, 50}));
    for (const auto &r : recs) expect_record(r, want[r.hdr->ts_tai_ns]);
  }
  set->release();
  EXPECT_EQ(small.consumer(), small.producer());
  EXPECT_EQ(big.consumer(), big.producer());
  EXPECT_TRUE(set->take(UINT64_MAX).empty());
  EXPECT_FALSE(set->backlogged());
  // A ring a quarter full is a backlog (its wakeup mark passed).
  std::vector<uint64_t> appended;
  for (uint64_t ts = 100; big.producer() - big.consumer() < big.size() / 4; ts++) {
    big.append(ts, 1, payload(1000, 9));
    appended.push_back(ts);
  }
  EXPECT_TRUE(set->backlogged());
  // Only one ring has records: they come back as that ring gave them.
  EXPECT_EQ(timestamps(set->take(UINT64_MAX)), appended);
  set->release();
  EXPECT_FALSE(set->backlogged());
}

// The record is longer than its packet (the program reserves a size class): only cap_len
// bytes are returned, and the next record is found past the whole reservation.
TEST(RingReader, SizeClassSlackIsNotPartOfThePacket) {
  FakeRing ring(1 << 14);
  ASSERT_TRUE(ring.ok());
  Want a{1, 1, payload(129, 1)}, b{2, 1, payload(60, 2)};
  ring.append(a.ts, a.ifindex, a.bytes, 0, BPFTAP_DIR_OUT, 160 - 129);
  ring.append(b.ts, b.ifindex, b.bytes, 0, BPFTAP_DIR_IN, 128 - 60);
  auto rd = ring.reader();
  const auto &recs = rd.take(UINT64_MAX);
  ASSERT_EQ(recs.size(), 2u);
  expect_record(recs[0], a);
  expect_record(recs[1], b);
  EXPECT_EQ(recs[0].hdr->dir, BPFTAP_DIR_OUT);
  EXPECT_EQ(recs[1].hdr->dir, BPFTAP_DIR_IN);
  rd.release();
  EXPECT_EQ(ring.consumer(), ring.producer());
}

// Many laps around a small ring: random sizes (every kind of wrap), timestamps out of order
// by a bounded amount (CPUs racing), random cutoffs and limits, discarded records. Checked
// against a model: each record once, each batch sorted and within its cutoff, bytes exact,
// and the consumer exactly at the first record not handed out.
void many_laps(Mapping mapping) {
  SCOPED_TRACE(mapping_name(mapping));
  const uint64_t size = 8192;
  FakeRing ring(size, 3 * size - 16, mapping);
  ASSERT_TRUE(ring.ok());
  auto rd = ring.reader();
  std::mt19937 rng(1234);
  struct Live {
    uint64_t pos;
    Want w;
  };
  std::vector<Live> live;  // appended, not yet handed out (discarded ones are not here)
  uint64_t next_ts = 1000, appended = 0, returned = 0, wraps = 0;
  std::set<uint64_t> seen;
  for (int round = 0; round < 3000; round++) {
    // Append a few records while they fit.
    int n = int(rng() % 4);
    for (int i = 0; i < n; i++) {
      size_t len = rng() % 4 == 0 ? 1000 + rng() % 1500 : rng() % 200;
      bool discard = rng() % 10 == 0;
      uint64_t need = record_span(sizeof(bpftap_pkt_hdr) + len);
      if (need > ring.free_space()) break;
      uint64_t ts = next_ts + rng() % 50;  // up to 50 ns of disorder between "CPUs"
      next_ts += 10;
      Want w{ts, uint32_t(appended), payload(len, uint32_t(appended))};
      uint64_t pos = ring.append(ts, w.ifindex, w.bytes, discard ? kDiscardBit : 0);
      if (ring.wraps(pos, sizeof(bpftap_pkt_hdr) + len)) wraps++;
      appended++;
      if (!discard) live.push_back({pos, std::move(w)});
    }
    uint64_t cutoff = rng() % 3 == 0 ? UINT64_MAX : next_ts - rng() % 200;
    size_t limit = rng() % 3 == 0 ? 1 + rng() % 3 : SIZE_MAX;
    const auto &recs = rd.take(cutoff, limit);
    ASSERT_LE(recs.size(), limit);
    uint64_t prev = 0;
    for (const auto &r : recs) {
      ASSERT_LE(r.hdr->ts_tai_ns, cutoff);
      ASSERT_GE(r.hdr->ts_tai_ns, prev) << "batch not sorted";
      prev = r.hdr->ts_tai_ns;
      uint32_t id = r.hdr->ifindex;
      ASSERT_TRUE(seen.insert(id).second) << "record " << id << " returned twice";
      auto it = std::find_if(live.begin(), live.end(), [&](const Live &l) { return l.w.ifindex == id; });
      ASSERT_NE(it, live.end()) << "record " << id << " was discarded or never written";
      expect_record(r, it->w);
      live.erase(it);
      returned++;
    }
    // Without a limit, every record at or before the cutoff was returned.
    if (limit == SIZE_MAX) {
      for (const auto &l : live) ASSERT_GT(l.w.ts, cutoff) << "record " << l.w.ifindex << " not returned";
    }
    rd.release();
    uint64_t first_live = ring.producer();
    for (const auto &l : live) first_live = std::min(first_live, l.pos);
    ASSERT_EQ(ring.consumer(), first_live) << "round " << round;
  }
  EXPECT_GT(returned, 2000u);
  EXPECT_GT(wraps, 10u) << "the test should wrap around the ring many times";
}

TEST(RingReader, ManyLapsAgainstAModel) {
  many_laps(Mapping::Twice);
  many_laps(Mapping::Once);
}

// (g) End to end: records taken from the ring are written by a PcapngWriter (packets of 1 KiB
// and more straight from ring memory), the ring space is reused after each flush, and the file
// read back holds the packets in timestamp order, on their interfaces, with their exact bytes.
TEST(RingReader, TakenRecordsWrittenAsPcapngReadBackInOrder) {
  std::string tmpl = (fs::temp_directory_path() / "bpftap-ring-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  std::string path = tmpl + "/ring.pcapng";
  struct Cleanup {
    std::string dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{tmpl};

  const uint64_t size = 1 << 14;  // 16 KiB: the batches below go around it several times
  FakeRing ring(size, size - 200, Mapping::Once);  // as RingReader::open maps the kernel's ring
  ASSERT_TRUE(ring.ok());
  auto rd = ring.reader();
  auto w = PcapngWriter::open(path, {{"if1", 1, 1, 262144}, {"if2", 2, 1, 262144}});
  ASSERT_TRUE(w) << w.error().message();

  const uint64_t kBase = 1'700'000'000'000'000'000ull;
  const size_t sizes[] = {60, 1514, 1023, 1024, 3000, 129, 4000, 64};
  std::vector<Want> expected;
  uint32_t id = 0;
  for (int batch = 0; batch < 12; batch++) {
    // Two "CPUs" write interleaved, their clocks 3 ns apart, so ring order != time order.
    std::vector<Want> in_ring;
    for (int i = 0; i < 4; i++) {
      size_t n = sizes[(batch + i) % std::size(sizes)];
      uint64_t ts = kBase + uint64_t(batch) * 1000 + (i % 2 ? uint64_t(i) * 10 : uint64_t(i) * 10 + 13);
      Want wnt{ts, uint32_t(i % 2 + 1), payload(n, id++)};
      uint8_t dir = i % 3 == 0 ? BPFTAP_DIR_OUT : BPFTAP_DIR_IN;
      ASSERT_NE(ring.append(ts, wnt.ifindex, wnt.bytes, 0, dir), UINT64_MAX);
      in_ring.push_back(wnt);
    }
    std::sort(in_ring.begin(), in_ring.end(), [](const Want &a, const Want &b) { return a.ts < b.ts; });
    expected.insert(expected.end(), in_ring.begin(), in_ring.end());

    const auto &recs = rd.take(UINT64_MAX);
    ASSERT_EQ(recs.size(), 4u);
    for (const auto &r : recs) {
      // stable: the ring memory stays put until release(), after the flush (as the capture does).
      Packet p{r.hdr->ts_tai_ns, r.hdr->ifindex - 1, static_cast<Direction>(r.hdr->dir), r.hdr->wire_len, r.bytes,
               true};
      ASSERT_TRUE((*w)->write(p));
    }
    ASSERT_TRUE((*w)->flush());
    rd.release();  // the next batch overwrites this space
    ASSERT_EQ(ring.consumer(), ring.producer());
  }
  ASSERT_GT(ring.producer() - (size - 200), 3 * size) << "the batches should go around the ring";
  ASSERT_TRUE((*w)->close());

  auto f = test::pcapng::read_file(path);
  ASSERT_TRUE(f.ok()) << f.error;
  ASSERT_EQ(f.packets.size(), expected.size());
  for (size_t i = 0; i < expected.size(); i++) {
    SCOPED_TRACE("packet " + std::to_string(i));
    const auto &got = f.packets[i];
    const Want &e = expected[i];
    EXPECT_EQ(got.ts_ns, e.ts);
    EXPECT_EQ(got.iface, e.ifindex - 1);
    EXPECT_EQ(got.caplen, e.bytes.size());
    EXPECT_EQ(got.len, e.bytes.size() + 4);
    EXPECT_EQ(got.bytes, e.bytes);
  }
}

} // namespace
} // namespace bpftap
