// Reads the capture program's BPF ring buffer in place. Records are handed out as pointers into
// the ring's own memory (but for the rare one that wraps around the end, put together), in timestamp order, and the space they use is given back to the kernel
// only after the caller has written them out: no record is copied on its way to a file.
//
// Why not libbpf's ring_buffer__consume(): it hands each record to a callback and gives its
// space back as soon as the callback returns, so holding records for time ordering (and writing
// them out in one batch) meant copying every packet out of the ring first. Here the ring itself
// is the reordering buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <vector>

#include "bpf/bpftap.h"
#include "util/error.h"
#include "util/fd.h"

namespace bpftap {

// One record as the kernel wrote it: the header and the cap_len bytes that follow it, both in
// ring memory, valid until the next RingReader::release().
struct RingRecord {
  const bpftap_pkt_hdr *hdr;
  std::span<const uint8_t> bytes;
};

class RingReader {
public:
  // Maps the ring of a BPF_MAP_TYPE_RINGBUF map (`size` = its max_entries, a power of two).
  // `batched`: each ring record is a batch of packet records (the capture's small ring; see
  // BPFTAP_BATCH_BYTES), not one.
  static Result<RingReader> open(int map_fd, uint64_t size, bool batched = false);
  // Tests: a ring laid out by the caller as the kernel lays it out (the consumer position, the
  // producer position, and `size` bytes of data; the kernel's second mapping of the data is
  // not needed). Not owned; wait() returns at once.
  static RingReader over(uint64_t *consumer, const uint64_t *producer, const uint8_t *data, uint64_t size,
                         bool batched = false);
  RingReader(RingReader &&o) noexcept;
  RingReader &operator=(RingReader &&o) = delete;
  RingReader(const RingReader &) = delete;
  ~RingReader();

  // Bytes written by the kernel and not released yet (held records included).
  uint64_t waiting() const;
  uint64_t size() const { return size_; }

  // Scans the committed records and returns those with ts_tai_ns <= cutoff not handed out
  // before, oldest first, at most `limit` of them. Later ones stay held in the ring: a record
  // another CPU stamped earlier may still be on its way. Valid until release().
  const std::vector<RingRecord> &take(uint64_t cutoff_tai_ns, size_t limit = SIZE_MAX);

  // Gives back to the kernel the space of the records handed out so far, up to the first one
  // still held (a ring is released in order; records taken beyond it are freed later).
  void release();

  // The last `n` records the last take() handed out are held again, as if never taken (a later
  // take() hands them out). Only after a take() with a limit (RingSet's cut of a merged batch);
  // call before release().
  void untake(size_t n);

  // Records scanned and not yet handed out.
  size_t held() const { return held_.size(); }
  int map_fd() const { return map_fd_.get(); }

private:
  struct Pending {
    uint64_t pos;  // ring position of the 8-byte kernel header of the ring record holding it
    RingRecord rec;
  };
  RingReader() = default;
  void scan();
  void hold(uint64_t pos, const uint8_t *rec, uint32_t len);

  FD map_fd_;
  uint64_t size_ = 0, mask_ = 0;
  size_t page_ = 0;
  uint64_t *consumer_ = nullptr;        // the consumer page: ours to write
  const uint64_t *producer_ = nullptr;  // the producer page, then the data mapped twice
  const uint8_t *data_ = nullptr;
  bool owned_ = true;  // the mappings are ours to unmap
  bool batched_ = false;

  uint64_t scanned_ = 0;        // ring position scanned up to (>= *consumer_)
  std::vector<Pending> held_;   // scanned, not handed out, in ring order
  std::list<std::vector<uint8_t>> wrapped_;  // records that wrap around, put together (rare)
  std::vector<Pending> keep_;   // scratch for take()
  std::vector<Pending> batch_;  // scratch for take()
  std::vector<Pending> taken_;  // what the last take() with a limit handed out (for untake())
  std::vector<RingRecord> out_;
};

// Several rings read as one (the capture's small and big rings): the records of all of them in
// timestamp order, each ring's own time-ordered batch merged, none copied.
class RingSet {
public:
  // Waits on every ring that has a map (those made by RingReader::open) with one epoll.
  static Result<RingSet> open(std::vector<RingReader> rings);

  // Waits until the kernel program asks for a wakeup in any of the rings (see the program's
  // wakeup marks) or `timeout_ms` passes. Held records do not end the wait (the rings are
  // edge-triggered here), so a reader holding a few recent records sleeps like one holding none.
  // Returns -errno on failure (-EINTR included), 0 otherwise; at once for rings made by over().
  int wait(int timeout_ms) const;
  // As RingReader::take(), across the rings: at most `limit` records with ts_tai_ns <= cutoff,
  // oldest first.
  const std::vector<RingRecord> &take(uint64_t cutoff_tai_ns, size_t limit = SIZE_MAX);
  // As RingReader::release(), for every ring.
  void release();

  // True when a ring holds a quarter of its size or more (its wakeup mark: the kernel wakes
  // the reader once when it is passed, not again while it stays past it).
  bool backlogged() const;
  const std::vector<RingReader> &rings() const { return rings_; }

private:
  RingSet() = default;
  struct Batch {
    const std::vector<RingRecord> *recs;  // what one ring's take() handed out
    size_t at;                            // merged up to here
  };
  std::vector<RingReader> rings_;
  FD epoll_fd_;
  size_t watched_ = 0;  // rings in the epoll
  std::vector<Batch> batches_;
  std::vector<RingRecord> out_;
};

} // namespace bpftap
