#include "capture/ring_reader.h"

#include <linux/bpf.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace bpftap {

namespace {

// Scratch vectors get room, at open, for the records a round may hand out, and are written
// once: a page first touched while packets flow costs a page fault in the reading loop (10-15 us
// each on a VM), and a vector that grows by doubling is copied and touched again each time. A
// round may have up to a quarter of the ring to read (the kernel's wakeup mark); at the smallest
// record (a 64-byte frame: 104 ring bytes) that is 20k records in the default 8 MiB small ring.
// Bounded at 32k records (1.8 MB of scratch), whatever the ring's size.
size_t records_reserved(uint64_t ring_size) {
  constexpr uint64_t kSmallestRecord = BPF_RINGBUF_HDR_SZ + sizeof(bpftap_pkt_hdr) + 64;
  return static_cast<size_t>(std::clamp<uint64_t>(ring_size / 4 / kSmallestRecord, 1024, 32768));
}

template <typename T>
void prefault(std::vector<T> &v, size_t n) {
  v.resize(n);
  v.clear();
}

} // namespace

Result<RingReader> RingReader::open(int map_fd, uint64_t size, bool batched) {
  if (size == 0 || (size & (size - 1)) != 0) return fail("map the ring buffer: size is not a power of two", EINVAL);
  RingReader r;
  r.batched_ = batched;
  r.map_fd_ = FD(fcntl(map_fd, F_DUPFD_CLOEXEC, 0));
  if (!r.map_fd_) return fail_errno("map the ring buffer: dup", errno);
  r.size_ = size;
  r.mask_ = size - 1;
  r.page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // The kernel's layout: the consumer page (read-write), then the producer page and the data
  // area (read-only). The kernel offers the data twice in a row, so that a record that wraps
  // around is contiguous; we map it once (every mapped page counts in our RSS) and copy the
  // rare record that wraps.
  void *c = mmap(nullptr, r.page_, PROT_READ | PROT_WRITE, MAP_SHARED, r.map_fd_.get(), 0);
  if (c == MAP_FAILED) return fail_errno("map the ring buffer's consumer page", errno);
  r.consumer_ = static_cast<uint64_t *>(c);
  void *p = mmap(nullptr, r.page_ + size, PROT_READ, MAP_SHARED, r.map_fd_.get(), static_cast<off_t>(r.page_));
  if (p == MAP_FAILED) return fail_errno("map the ring buffer's data", errno);
  r.producer_ = static_cast<const uint64_t *>(p);
  r.data_ = static_cast<const uint8_t *>(p) + r.page_;
  r.scanned_ = __atomic_load_n(r.consumer_, __ATOMIC_ACQUIRE);
  prefault(r.held_, records_reserved(size));
  prefault(r.out_, records_reserved(size));
  return r;
}

RingReader RingReader::over(uint64_t *consumer, const uint64_t *producer, const uint8_t *data, uint64_t size,
                            bool batched) {
  RingReader r;
  r.batched_ = batched;
  r.size_ = size;
  r.mask_ = size - 1;
  r.consumer_ = consumer;
  r.producer_ = producer;
  r.data_ = data;
  r.scanned_ = *consumer;
  r.owned_ = false;
  return r;
}

RingReader::RingReader(RingReader &&o) noexcept
    : map_fd_(std::move(o.map_fd_)), size_(o.size_), mask_(o.mask_),
      page_(o.page_), consumer_(std::exchange(o.consumer_, nullptr)), producer_(std::exchange(o.producer_, nullptr)),
      data_(o.data_), owned_(o.owned_), batched_(o.batched_), scanned_(o.scanned_), held_(std::move(o.held_)),
      wrapped_(std::move(o.wrapped_)), keep_(std::move(o.keep_)), batch_(std::move(o.batch_)),
      taken_(std::move(o.taken_)), out_(std::move(o.out_)) {}

RingReader::~RingReader() {
  if (!owned_) return;
  if (consumer_) munmap(consumer_, page_);
  if (producer_) munmap(const_cast<uint64_t *>(producer_), page_ + size_);
}

uint64_t RingReader::waiting() const {
  uint64_t cons = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
  return __atomic_load_n(producer_, __ATOMIC_ACQUIRE) - cons;
}

// Reads the headers of the records committed since the last scan, up to the first one still
// being written (the kernel commits out of order across CPUs, but we may only pass in order).
void RingReader::scan() {
  uint64_t prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
  while (scanned_ < prod) {
    const auto *len_word = reinterpret_cast<const uint32_t *>(data_ + (scanned_ & mask_));
    uint32_t len = __atomic_load_n(len_word, __ATOMIC_ACQUIRE);
    if (len & BPF_RINGBUF_BUSY_BIT) break;
    bool discarded = len & BPF_RINGBUF_DISCARD_BIT;
    len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    uint64_t off = (scanned_ + BPF_RINGBUF_HDR_SZ) & mask_;
    const uint8_t *rec = data_ + off;
    if (off + len > size_) {  // wraps around the end of the data area: put it together
      auto &copy = wrapped_.emplace_back(len);
      size_t first = size_ - off;
      std::memcpy(copy.data(), data_ + off, first);
      std::memcpy(copy.data() + first, data_, len - first);
      rec = copy.data();
    }
    if (!discarded) hold(scanned_, rec, len);
    scanned_ += (uint64_t{len} + BPF_RINGBUF_HDR_SZ + 7) & ~uint64_t{7};
  }
}

// Holds the packet record(s) of the ring record at `pos`: one, or a batch of them, each a header,
// cap_len bytes and padding to 8. A header that claims more bytes than the record has is cut.
void RingReader::hold(uint64_t pos, const uint8_t *rec, uint32_t len) {
  uint64_t at = 0;
  while (at + sizeof(bpftap_pkt_hdr) <= len) {
    const auto *hdr = reinterpret_cast<const bpftap_pkt_hdr *>(rec + at);
    auto room = static_cast<uint32_t>(len - at - sizeof(bpftap_pkt_hdr));
    uint32_t cap = std::min<uint32_t>(hdr->cap_len, room);
    held_.push_back({pos, {hdr, {rec + at + sizeof(bpftap_pkt_hdr), cap}}});
    if (!batched_) return;
    at += sizeof(bpftap_pkt_hdr) + ((uint64_t{cap} + 7) & ~uint64_t{7});
  }
}

const std::vector<RingRecord> &RingReader::take(uint64_t cutoff, size_t limit) {
  scan();
  out_.clear();
  // The usual case: ring order is time order (CPUs rarely race), so the records due are the
  // first ones held, handed out as they are.
  size_t due = 0;
  bool sorted = true;
  uint64_t prev = 0;
  for (const auto &p : held_) {
    uint64_t ts = p.rec.hdr->ts_tai_ns;
    if (ts < prev) {
      sorted = false;
      break;
    }
    prev = ts;
    due += ts <= cutoff;
  }
  if (sorted) {
    size_t n = std::min(due, limit);
    for (size_t i = 0; i < n; i++) out_.push_back(held_[i].rec);
    // Only a limit can make a caller give records back (untake): no copy per record otherwise.
    if (limit != SIZE_MAX) taken_.assign(held_.begin(), held_.begin() + static_cast<long>(n));
    held_.erase(held_.begin(), held_.begin() + static_cast<long>(n));
    return out_;
  }
  batch_.clear();
  keep_.clear();
  for (const auto &p : held_) (p.rec.hdr->ts_tai_ns <= cutoff ? batch_ : keep_).push_back(p);
  // Ring order is time order but for CPUs racing each other: usually sorted already.
  auto by_time = [](const Pending &a, const Pending &b) { return a.rec.hdr->ts_tai_ns < b.rec.hdr->ts_tai_ns; };
  if (!std::is_sorted(batch_.begin(), batch_.end(), by_time)) std::stable_sort(batch_.begin(), batch_.end(), by_time);
  if (batch_.size() > limit) {
    keep_.insert(keep_.end(), batch_.begin() + static_cast<long>(limit), batch_.end());
    batch_.resize(limit);
    std::stable_sort(keep_.begin(), keep_.end(), [](const Pending &a, const Pending &b) { return a.pos < b.pos; });
  }
  held_.swap(keep_);
  for (const auto &p : batch_) out_.push_back(p.rec);
  taken_.swap(batch_);
  return out_;
}

void RingReader::untake(size_t n) {
  n = std::min(n, taken_.size());
  if (n == 0) return;
  held_.insert(held_.end(), taken_.end() - static_cast<long>(n), taken_.end());
  taken_.resize(taken_.size() - n);
  out_.resize(taken_.size());
  std::stable_sort(held_.begin(), held_.end(), [](const Pending &a, const Pending &b) { return a.pos < b.pos; });
}

void RingReader::release() {
  // Everything scanned is either handed out (done once the caller calls us) or held.
  uint64_t upto = held_.empty() ? scanned_ : held_.front().pos;
  __atomic_store_n(consumer_, upto, __ATOMIC_RELEASE);
  out_.clear();
  taken_.clear();
  // Copies of wrapped records handed out are no longer needed; held ones still are (any packet
  // record of a batch in the copy).
  for (auto it = wrapped_.begin(); it != wrapped_.end();) {
    const uint8_t *copy = it->data(), *copy_end = copy + it->size();
    bool held = std::any_of(held_.begin(), held_.end(), [&](const Pending &p) {
      const auto *h = reinterpret_cast<const uint8_t *>(p.rec.hdr);
      return h >= copy && h < copy_end;
    });
    it = held ? std::next(it) : wrapped_.erase(it);
  }
}

Result<RingSet> RingSet::open(std::vector<RingReader> rings) {
  RingSet set;
  set.rings_ = std::move(rings);
  if (set.rings_.size() > 1) {  // merged batches
    uint64_t most = 0;
    for (const auto &r : set.rings_) most = std::max(most, r.size());
    prefault(set.out_, records_reserved(most));
  }
  set.epoll_fd_ = FD(epoll_create1(EPOLL_CLOEXEC));
  if (!set.epoll_fd_) return fail_errno("epoll_create1", errno);
  for (const auto &r : set.rings_) {
    if (r.map_fd() < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (epoll_ctl(set.epoll_fd_.get(), EPOLL_CTL_ADD, r.map_fd(), &ev) != 0)
      return fail_errno("watch the ring buffers (epoll_ctl)", errno);
    set.watched_++;
  }
  return set;
}

int RingSet::wait(int timeout_ms) const {
  if (watched_ == 0) return 0;
  epoll_event ev[4];
  if (epoll_wait(epoll_fd_.get(), ev, 4, timeout_ms) < 0) return -errno;
  return 0;
}

const std::vector<RingRecord> &RingSet::take(uint64_t cutoff, size_t limit) {
  out_.clear();
  if (rings_.size() == 1) return rings_[0].take(cutoff, limit);
  // Each ring's batch is in time order: merge them, taking the oldest head each time.
  batches_.clear();
  size_t filled = 0;
  for (auto &r : rings_) {
    batches_.push_back({&r.take(cutoff, limit), 0});
    filled += !batches_.back().recs->empty();
  }
  if (filled <= 1) {  // usually one ring has it all (small packets, or a bulk flow): nothing to merge
    for (const auto &b : batches_)
      if (!b.recs->empty()) return *b.recs;
    return out_;
  }
  while (out_.size() < limit) {
    Batch *next = nullptr;
    for (auto &b : batches_)
      if (b.at < b.recs->size() && (!next || (*b.recs)[b.at].hdr->ts_tai_ns < (*next->recs)[next->at].hdr->ts_tai_ns))
        next = &b;
    if (!next) break;
    out_.push_back((*next->recs)[next->at++]);
  }
  // Cut by the limit: what each ring gave past it goes back to that ring, for a later take().
  for (size_t i = 0; i < rings_.size(); i++) rings_[i].untake(batches_[i].recs->size() - batches_[i].at);
  return out_;
}

void RingSet::release() {
  for (auto &r : rings_) r.release();
  out_.clear();
}

bool RingSet::backlogged() const {
  return std::any_of(rings_.begin(), rings_.end(), [](const RingReader &r) { return r.waiting() >= r.size() / 4; });
}

} // namespace bpftap
