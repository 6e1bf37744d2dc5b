#include "capture/capture.h"

#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "capture/capture_prog.h"
#include "capture/frame.h"
#include "capture/reorder.h"
#include "capture/ring_reader.h"
#include "filter/build.h"

namespace bpftap {
namespace {

static_assert(sizeof(bpftap_pkt_hdr) == 32, "bpftap_pkt_hdr layout changed");
static_assert(sizeof(bpftap_counters) == 32, "bpftap_counters layout changed");

// Small copies wait in a per-CPU batch at most this long before the kernel commits them to the
// small ring (capture.bpf.c).
constexpr uint64_t kBatchFlushNs = 1'000'000;
// A record is written only once it is this old, so that one another CPU stamped earlier but
// committed later can still be put before it. The time between a hook stamping a packet and its
// record being committed is microseconds, or up to kBatchFlushNs for a small copy (plus the
// delay of the softirq its timer runs in); the window is milliseconds.
constexpr uint64_t kReorderWindowNs = kBatchFlushNs + 2'000'000;
// The kernel wakes the reader only when a backlog builds up (once, when the program's
// wakeup_bytes, a quarter of the ring, is passed); otherwise the reader drains on this timer, which is also how long a
// packet can wait before a file or pipe gets it (as the writers' flush interval was).
constexpr int kPollMs = 50;
// The big records' ring the program writes while the reader keeps up (see capture.bpf.c): a
// 64 KB copy into an 8 MiB ring cost a third of one into the 128 MiB full-snaplen buffer, whose
// memory the cache no longer held (bench/results/2026-12-06-e.md). A bigger buffer becomes the
// spill ring behind it.
constexpr uint32_t kHotRingBytes = 8u << 20;
// Perf transport: sinks are flushed at most this often (a file or pipe gets data within ~50 ms).
constexpr uint64_t kFlushIntervalNs = 50'000'000;

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The kernel stamps packets with CLOCK_TAI; TAI - UTC is a whole number of seconds.
uint64_t tai_minus_utc_ns() {
  double diff = static_cast<double>(clock_ns(CLOCK_TAI)) - static_cast<double>(clock_ns(CLOCK_REALTIME));
  return static_cast<uint64_t>(std::llround(diff / 1e9)) * 1'000'000'000ull;
}

struct PerfDeleter {
  void operator()(perf_buffer *p) const { perf_buffer__free(p); }
};

} // namespace

uint32_t default_buffer_bytes(uint32_t snaplen, size_t interfaces) {
  uint64_t record = std::min<uint64_t>(snaplen, 65536) + sizeof(bpftap_pkt_hdr) + 16;
  uint64_t want = record * (1024 + 64 * (interfaces > 1 ? interfaces - 1 : 0));
  want = std::clamp<uint64_t>(want, 8u << 20, 128u << 20);
  return static_cast<uint32_t>(std::bit_ceil(want));
}

struct Capture::Impl {
  CaptureOptions opts;
  std::vector<InterfaceInfo> initial;  // interfaces(): those given to start()
  std::unique_ptr<CaptureProgram> prog;

  // Guarded by mu: the reader holds it while it writes a batch, add/remove_interface and
  // stats() while they change or read the interfaces.
  mutable std::mutex mu;
  struct Slot {
    InterfaceInfo info;
    bool attached = true;
    uint64_t captured = 0, captured_out = 0;  // all, and those of the egress hook
    std::vector<std::unique_ptr<Hook>> hooks;
  };
  std::vector<Slot> slots;                      // by slot number
  std::unordered_map<uint32_t, uint32_t> slot_of;  // ifindex -> slot, attached ones
  uint64_t total_captured = 0;

  std::optional<RingSet> rings;  // the small records' ring, then the big one's (if used)
  struct RingGauge {
    std::atomic<uint64_t> used{0}, peak{0};  // written by the reader, read by stats threads
  };
  std::array<RingGauge, 3> gauges;  // by ring, as in `rings`
  std::vector<uint8_t> restored;  // frames whose VLAN tag is put back (the only copies made)

  std::unique_ptr<perf_buffer, PerfDeleter> perf;
  ReorderBuffer pending;  // perf transport: records are copied out of the per-CPU buffers
  std::atomic<uint64_t> perf_lost{0};  // counted by the reader outside mu (its perf callback); stats() reads it
  uint64_t last_flush = 0;
  bool unflushed = false;

  uint64_t tai_offset = 0;
  Error sink_error;
  bool sink_failed = false;

  bool count_reached() const { return opts.count && total_captured >= opts.count; }
  size_t left() const { return opts.count ? opts.count - total_captured : SIZE_MAX; }

  bool fail_sink(const Error &e) {
    sink_error = e;
    sink_failed = true;
    return false;
  }

  // Writes one packet; false when the sink failed.
  bool emit(PacketSink &sink, uint32_t slot, uint64_t ts_utc, uint8_t dir, uint32_t wire_len,
            std::span<const uint8_t> bytes, bool stable) {
    Packet p{ts_utc, slot, static_cast<Direction>(dir), wire_len, bytes, stable};
    if (auto r = sink.write(p); !r) return fail_sink(r.error());
    slots[slot].captured++;
    slots[slot].captured_out += dir == BPFTAP_DIR_OUT;
    total_captured++;
    return true;
  }

  // Ring transport: writes the records older than `cutoff_tai` straight from ring memory, then
  // flushes the sink (which lets go of that memory) and gives the space back to the kernel.
  bool drain_ring(PacketSink &sink, uint64_t cutoff_tai) {
    for (size_t i = 0; i < rings->rings().size() && i < gauges.size(); i++) {
      uint64_t used = rings->rings()[i].waiting();
      gauges[i].used.store(used, std::memory_order_relaxed);
      if (used > gauges[i].peak.load(std::memory_order_relaxed)) gauges[i].peak.store(used, std::memory_order_relaxed);
    }
    std::lock_guard lock(mu);
    const auto &recs = rings->take(cutoff_tai, left());
    if (recs.empty()) {
      rings->release();  // passes over discarded records, if that is all there was
      return true;
    }
    // Frames with a tag to put back are rebuilt here; sized first, so the spans stay valid.
    size_t tagged = 0;
    for (const auto &r : recs)
      if (r.hdr->vlan_tpid) tagged += r.bytes.size() + BPFTAP_VLAN_HLEN;
    restored.resize(tagged);
    size_t at = 0;
    // Records come in runs from one interface: its slot is looked up once per run.
    uint32_t run_ifindex = 0, slot = 0;
    bool known = false;
    for (const auto &r : recs) {
      if (r.hdr->ifindex != run_ifindex) {  // (no interface has index 0)
        auto it = slot_of.find(r.hdr->ifindex);
        run_ifindex = r.hdr->ifindex;
        known = it != slot_of.end();
        if (known) slot = it->second;
      }
      if (!known) continue;  // removed since: its last records go with it
      std::span<const uint8_t> bytes = r.bytes;
      if (r.hdr->vlan_tpid) {
        size_t n = restore_frame(*r.hdr, r.bytes, restored.data() + at);
        bytes = {restored.data() + at, n};
        at += n;
      } else if (bytes.size() > r.hdr->snap_len) {
        bytes = bytes.first(r.hdr->snap_len);
      }
      // Ring memory (and `restored`) stay put until the flush below: the sink may refer to them.
      if (!emit(sink, slot, r.hdr->ts_tai_ns - tai_offset, r.hdr->dir, r.hdr->wire_len, bytes, true)) break;
    }
    if (!sink_failed)
      if (auto r = sink.flush(); !r) fail_sink(r.error());
    rings->release();  // whether or not the sink failed: a failed sink holds no reference
    return !sink_failed;
  }

  void on_perf_record(const void *data, size_t size) {
    if (size < sizeof(bpftap_pkt_hdr)) return;
    bpftap_pkt_hdr hdr;
    std::memcpy(&hdr, data, sizeof(hdr));
    if (sizeof(hdr) + hdr.cap_len > size) return;
    auto bytes = std::span(static_cast<const uint8_t *>(data) + sizeof(hdr), hdr.cap_len);
    pending.push(hdr, bytes, hdr.ts_tai_ns - tai_offset);
  }

  // Perf transport: records were copied into `pending`; writes those up to `cutoff_utc`.
  bool drain_perf(PacketSink &sink, uint64_t cutoff_utc, bool force_flush) {
    std::lock_guard lock(mu);
    size_t n = pending.release(
        cutoff_utc,
        [&](const PacketMeta &m, std::span<const uint8_t> bytes) {
          if (sink_failed) return;
          auto it = slot_of.find(m.ifindex);
          if (it != slot_of.end()) emit(sink, it->second, m.ts_ns, m.dir, m.wire_len, bytes, false);
        },
        left());
    unflushed |= n > 0;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (unflushed && !sink_failed && (force_flush || now - last_flush >= kFlushIntervalNs)) {
      if (auto r = sink.flush(); !r) fail_sink(r.error());
      last_flush = now;
      unflushed = false;
    }
    return !sink_failed;
  }

  // One round of the reading loop: wait (at most timeout_ms), then write what is due.
  Result<> round(PacketSink &sink, int timeout_ms, bool final) {
    if (rings) {
      // The kernel wakes the reader once, when the backlog passes a quarter of a ring (the
      // program's wakeup marks), not again while it stays there: still that far behind after the
      // last round, the reader only lets the reorder window pass before the next one.
      if (rings->backlogged()) timeout_ms = std::min(timeout_ms, 1);
      if (int err = rings->wait(timeout_ms); err < 0 && err != -EINTR) return fail_errno("wait for captured packets", err);
      uint64_t cutoff = final ? UINT64_MAX : clock_ns(CLOCK_TAI) - kReorderWindowNs;
      if (!drain_ring(sink, cutoff)) return tl::unexpected(sink_error);
      return {};
    }
    int n = perf_buffer__poll(perf.get(), timeout_ms);
    if (n >= 0) n = perf_buffer__consume(perf.get());
    if (n < 0 && n != -EINTR) return fail_errno("read captured packets", n);
    uint64_t cutoff = final ? UINT64_MAX : clock_ns(CLOCK_REALTIME) - kReorderWindowNs;
    if (!drain_perf(sink, cutoff, final || count_reached())) return tl::unexpected(sink_error);
    return {};
  }

  // Attaches the hooks of one interface (the caller holds mu).
  Result<> attach(Slot &s) {
    if (auto r = prog->watch(s.info.ifindex); !r) return r;
    for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
      if ((dir == BPFTAP_DIR_IN && !opts.ingress) || (dir == BPFTAP_DIR_OUT && !opts.egress)) continue;
      int fd = dir == BPFTAP_DIR_IN ? prog->ingress_fd() : prog->egress_fd();
      auto hook = attach_hook(fd, s.info.ifindex, dir, opts.attach, opts.pin_dir);
      if (!hook) return tl::unexpected(hook.error());
      s.hooks.push_back(std::move(*hook));
    }
    return {};
  }

  Result<InterfaceStats> slot_stats(const Slot &s) const {
    InterfaceStats st;
    st.name = s.info.name;
    st.ifindex = s.info.ifindex;
    st.captured = s.captured;
    st.in.captured = s.captured - s.captured_out;
    st.out.captured = s.captured_out;
    for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
      if ((dir == BPFTAP_DIR_IN && !opts.ingress) || (dir == BPFTAP_DIR_OUT && !opts.egress)) continue;
      auto c = prog->counters(s.info.ifindex, dir);
      if (!c) return tl::unexpected(c.error());
      auto &h = dir == BPFTAP_DIR_IN ? st.in : st.out;
      h.matched = c->matched;
      h.dropped = c->dropped;
      st.matched += c->matched;
      st.dropped += c->dropped;
    }
    return st;
  }
};

Capture::Capture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Capture::~Capture() = default;

const std::vector<InterfaceInfo> &Capture::interfaces() const { return impl_->initial; }

Result<std::unique_ptr<Capture>> Capture::start(const CaptureOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (opts.snaplen == 0 || opts.snaplen > BPFTAP_MAX_SNAPLEN)
    return bad_input(fmt::format("snapshot length must be 1..{}", BPFTAP_MAX_SNAPLEN));
  if (!opts.interfaces.empty() || !opts.allow_no_interfaces) {
    auto ifaces = resolve_interfaces(opts.interfaces);
    if (!ifaces) return tl::unexpected(ifaces.error());
    impl->initial = std::move(*ifaces);
  }
  for (auto &i : impl->initial) i.snaplen = opts.snaplen;
  std::string filter_iface = !opts.filter_iface.empty() ? opts.filter_iface
                             : impl->initial.empty()    ? std::string("lo")
                                                        : impl->initial.front().name;
  auto ebpf = opts.compiled ? Result<std::vector<bpf_insn>>(*opts.compiled)
                            : build_filter_cancellable(opts.filter, opts.snaplen, filter_iface, opts.cancel);
  if (!ebpf) return tl::unexpected(ebpf.error());

  CaptureProgramOptions po;
  po.filter = std::move(*ebpf);
  po.snaplen = opts.snaplen;
  po.output = opts.output;
  po.ring_bytes = opts.buffer_bytes                      ? opts.buffer_bytes
                 : opts.output == BPFTAP_OUT_PERFBUF ? 16u << 20  // per CPU
                                                     : default_buffer_bytes(opts.snaplen, impl->initial.size());
  impl->opts.buffer_bytes = po.ring_bytes;
  // Copies that all fit the small ring need no big one; otherwise the small one is as the
  // default sizes it for short copies (8 MiB and up), never bigger than the big one.
  bool big = opts.snaplen > BPFTAP_SMALL_RECORD;
  po.small_ring_bytes = !big ? po.ring_bytes
                             : std::min(po.ring_bytes, default_buffer_bytes(BPFTAP_SMALL_RECORD, impl->initial.size()));
  if (!big && opts.output == BPFTAP_OUT_RINGBUF)
    po.ring_bytes = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));  // the least a ring can be; unused
  // A big buffer is a hot ring of a few MiB, which the program writes while the reader keeps
  // up, and the buffer itself as the spill ring, which only a backlog writes.
  if (big && opts.output == BPFTAP_OUT_RINGBUF && po.ring_bytes > kHotRingBytes) {
    po.spill_ring_bytes = po.ring_bytes;
    po.ring_bytes = kHotRingBytes;
  }
  // A ring of a few batches would be full most of the time: small rings take records one by one.
  po.batch = po.small_ring_bytes >= 16 * BPFTAP_BATCH_BYTES;
  po.batch_flush_ns = kBatchFlushNs;
  auto prog = CaptureProgram::load(po);
  if (!prog) return tl::unexpected(prog.error());
  impl->prog = std::move(*prog);

  if (opts.output == BPFTAP_OUT_RINGBUF) {
    std::vector<RingReader> readers;
    auto small = RingReader::open(impl->prog->small_ring_fd(), po.small_ring_bytes, po.batch);
    if (!small) return tl::unexpected(small.error());
    readers.push_back(std::move(*small));
    if (big) {
      auto ring = RingReader::open(impl->prog->ring_fd(), po.ring_bytes);
      if (!ring) return tl::unexpected(ring.error());
      readers.push_back(std::move(*ring));
    }
    if (po.spill_ring_bytes) {
      auto spill = RingReader::open(impl->prog->spill_ring_fd(), po.spill_ring_bytes);
      if (!spill) return tl::unexpected(spill.error());
      readers.push_back(std::move(*spill));
    }
    auto set = RingSet::open(std::move(readers));
    if (!set) return tl::unexpected(set.error());
    impl->rings.emplace(std::move(*set));
  } else {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t pages = std::max<size_t>(1, po.ring_bytes / page);
    pages = size_t{1} << static_cast<int>(std::log2(static_cast<double>(pages)));  // a power of two
    // Raw, to set a watermark: one wakeup per quarter buffer instead of one per record.
    perf_event_attr attr{};
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    attr.watermark = 1;
    attr.wakeup_watermark = static_cast<__u32>(pages * page / 4);
    auto cb = [](void *ctx, int, perf_event_header *e) {
      auto *self = static_cast<Impl *>(ctx);
      if (e->type == PERF_RECORD_SAMPLE) {
        auto *raw = reinterpret_cast<const uint8_t *>(e + 1);  // u32 size, then the data
        uint32_t size;
        std::memcpy(&size, raw, sizeof(size));
        self->on_perf_record(raw + sizeof(size), size);
      } else if (e->type == PERF_RECORD_LOST) {
        uint64_t lost;
        std::memcpy(&lost, reinterpret_cast<const uint8_t *>(e + 1) + sizeof(uint64_t), sizeof(lost));
        self->perf_lost.fetch_add(lost, std::memory_order_relaxed);
      }
      return LIBBPF_PERF_EVENT_CONT;
    };
    impl->perf.reset(perf_buffer__new_raw(impl->prog->perf_fd(), pages, &attr, cb, impl.get(), nullptr));
    if (!impl->perf) return fail_errno("open the perf buffers", errno);
  }

  impl->tai_offset = tai_minus_utc_ns();
  std::lock_guard lock(impl->mu);
  for (const auto &ifc : impl->initial) {
    uint32_t slot = static_cast<uint32_t>(impl->slots.size());
    impl->slots.push_back({ifc});
    impl->slot_of[ifc.ifindex] = slot;
    // Hooks attached so far detach with impl.
    if (auto r = impl->attach(impl->slots.back()); !r) return tl::unexpected(r.error());
  }
  return std::unique_ptr<Capture>(new Capture(std::move(impl)));
}

Result<uint32_t> Capture::add_interface(const InterfaceInfo &iface, const std::function<Result<>(uint32_t)> &prepare) {
  Impl &s = *impl_;
  std::lock_guard lock(s.mu);
  if (auto it = s.slot_of.find(iface.ifindex); it != s.slot_of.end()) return it->second;
  // The slot of an interface removed earlier is taken again (records still in the ring for it
  // carry its ifindex, which no longer maps to a slot): interfaces coming and going for months
  // do not grow the table. Slots of the interfaces given to start() stay theirs.
  auto slot = static_cast<uint32_t>(s.slots.size());
  for (uint32_t i = static_cast<uint32_t>(s.initial.size()); i < s.slots.size(); i++)
    if (!s.slots[i].attached) {
      slot = i;
      break;
    }
  if (prepare)
    if (auto r = prepare(slot); !r) return tl::unexpected(r.error());
  Impl::Slot added{iface};
  added.info.snaplen = s.opts.snaplen;
  if (auto r = s.attach(added); !r) {  // its hooks detach with `added`
    s.prog->unwatch(iface.ifindex);
    return tl::unexpected(r.error());
  }
  if (slot < s.slots.size()) {
    added.captured = added.captured_out = 0;
    s.slots[slot] = std::move(added);
  } else {
    s.slots.push_back(std::move(added));
  }
  s.slot_of[iface.ifindex] = slot;
  return slot;
}

Result<InterfaceStats> Capture::remove_interface(uint32_t ifindex, const std::function<void(uint32_t)> &after) {
  Impl &s = *impl_;
  std::lock_guard lock(s.mu);
  auto it = s.slot_of.find(ifindex);
  if (it == s.slot_of.end()) return fail("remove interface " + std::to_string(ifindex) + ": not captured", ENOENT);
  uint32_t slot = it->second;
  Impl::Slot &sl = s.slots[slot];
  sl.hooks.clear();
  sl.attached = false;
  s.slot_of.erase(it);
  auto st = s.slot_stats(sl);
  s.prog->unwatch(ifindex);
  if (after) after(slot);
  return st;
}

Result<> Capture::run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done) {
  Impl &s = *impl_;
  while (!stop.load() && !s.count_reached() && !(done && done()))
    if (auto r = s.round(sink, kPollMs, false); !r) return r;
  return {};
}

Result<std::vector<InterfaceStats>> Capture::finish(PacketSink &sink) {
  Impl &s = *impl_;
  {
    std::lock_guard lock(s.mu);
    for (auto &sl : s.slots) sl.hooks.clear();  // detach first: nothing new arrives after this
  }
  // Twice: a program that ran as its hook went away may still have been committing.
  for (int i = 0; i < 2 && !s.count_reached(); i++)
    if (auto r = s.round(sink, 0, true); !r) return tl::unexpected(r.error());
  // The batches of small copies still in the kernel are committed by their timers within
  // kBatchFlushNs, or, if they found the ring full, at the timer's next try after the rounds
  // above made room: read until a wait that long brings nothing (bounded: 20 waits).
  for (int i = 0; s.rings && i < 20 && !s.count_reached(); i++) {
    timespec pause{0, static_cast<long>(2 * kBatchFlushNs)};
    nanosleep(&pause, nullptr);
    uint64_t before = s.total_captured;
    bool waiting = false;
    for (const auto &r : s.rings->rings()) waiting |= r.waiting() > 0;
    if (auto r = s.round(sink, 0, true); !r) return tl::unexpected(r.error());
    if (!waiting && s.total_captured == before) break;
  }
  return stats();
}

Result<std::vector<InterfaceStats>> Capture::stats() const {
  const Impl &s = *impl_;
  std::lock_guard lock(s.mu);
  std::vector<InterfaceStats> out;
  for (const auto &sl : s.slots) {
    if (!sl.attached) continue;
    auto st = s.slot_stats(sl);
    if (!st) return tl::unexpected(st.error());
    out.push_back(std::move(*st));
  }
  if (uint64_t lost = s.perf_lost.load(std::memory_order_relaxed); lost && !out.empty()) out[0].dropped += lost;
  return out;
}

void Capture::locked(const std::function<void()> &fn) {
  std::lock_guard lock(impl_->mu);
  fn();
}

std::vector<RingUsage> Capture::ring_usage() const {
  std::vector<RingUsage> out;
  if (!impl_->rings) return out;
  const auto &rings = impl_->rings->rings();
  for (size_t i = 0; i < rings.size() && i < impl_->gauges.size(); i++)
    out.push_back({i == 0 ? "small" : i == 1 ? "big" : "spill", rings[i].size(), impl_->gauges[i].used.load(std::memory_order_relaxed),
                   impl_->gauges[i].peak.load(std::memory_order_relaxed)});
  return out;
}

} // namespace bpftap
