#include "capture/capture.h"

#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "capture/capture_prog.h"
#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"
#include "capture/reorder.h"

namespace bpftap {
namespace {

static_assert(sizeof(bpftap_pkt_hdr) == 32, "bpftap_pkt_hdr layout changed");
static_assert(sizeof(bpftap_counters) == 32, "bpftap_counters layout changed");

// Packets are held this long so that those from other CPUs can be put in order.
constexpr uint64_t kReorderWindowNs = 2'000'000;
// The kernel wakes the reader only when a backlog builds up; otherwise the reader drains on
// this timer. Sinks are flushed at most this often (a file or pipe gets its data within ~50 ms).
constexpr int kPollMs = 10;
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

struct RingDeleter {
  void operator()(ring_buffer *r) const { ring_buffer__free(r); }
};
struct PerfDeleter {
  void operator()(perf_buffer *p) const { perf_buffer__free(p); }
};

} // namespace

Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface) {
  auto cbpf = compile_pcap_filter_live(expression, snaplen, iface);
  if (!cbpf) return tl::unexpected(cbpf.error());
  auto ebpf = translate_cbpf(*cbpf, {VlanView::Metadata});
  if (!ebpf) return bad_input("filter '" + expression + "': " + ebpf.error().message());
  return ebpf;
}

namespace {

// The ring buffer's consumer and producer positions, mapped read-only a second time (libbpf 1.1
// keeps its own mapping private): producer - consumer = bytes waiting for us.
class RingPositions {
public:
  bool map(int ring_fd) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *c = mmap(nullptr, page_, PROT_READ, MAP_SHARED, ring_fd, 0);
    if (c == MAP_FAILED) return false;
    void *p = mmap(nullptr, page_, PROT_READ, MAP_SHARED, ring_fd, static_cast<off_t>(page_));
    if (p == MAP_FAILED) {
      munmap(c, page_);
      return false;
    }
    cons_ = static_cast<const uint64_t *>(c);
    prod_ = static_cast<const uint64_t *>(p);
    return true;
  }
  ~RingPositions() {
    if (cons_) munmap(const_cast<uint64_t *>(cons_), page_);
    if (prod_) munmap(const_cast<uint64_t *>(prod_), page_);
  }
  uint64_t waiting() const {
    if (!cons_) return 0;
    uint64_t cons = __atomic_load_n(cons_, __ATOMIC_ACQUIRE);
    return __atomic_load_n(prod_, __ATOMIC_ACQUIRE) - cons;
  }

private:
  size_t page_ = 0;
  const uint64_t *cons_ = nullptr, *prod_ = nullptr;
};

} // namespace

struct Capture::Impl {
  CaptureOptions opts;
  std::vector<InterfaceInfo> ifaces;
  std::map<uint32_t, uint32_t> slot;  // ifindex -> index in ifaces
  std::unique_ptr<CaptureProgram> prog;
  std::vector<std::unique_ptr<Hook>> hooks;
  std::unique_ptr<ring_buffer, RingDeleter> ring;
  RingPositions ring_pos;
  std::atomic<uint64_t> ring_used{0}, ring_peak{0};
  std::unique_ptr<perf_buffer, PerfDeleter> perf;
  ReorderBuffer pending;
  uint64_t tai_offset = 0;
  std::vector<uint64_t> captured;
  uint64_t total_captured = 0;
  uint64_t perf_lost = 0;
  Error sink_error;
  bool sink_failed = false;

  void on_record(const void *data, size_t size) {
    if (size < sizeof(bpftap_pkt_hdr)) return;
    bpftap_pkt_hdr hdr;
    std::memcpy(&hdr, data, sizeof(hdr));
    if (sizeof(hdr) + hdr.cap_len > size) return;
    auto bytes = std::span(static_cast<const uint8_t *>(data) + sizeof(hdr), hdr.cap_len);
    pending.push(hdr, bytes, hdr.ts_tai_ns - tai_offset);
  }

  // Waits for a wakeup or the timeout, then takes whatever is there (records submitted without
  // a wakeup included).
  int poll(int timeout_ms) {
    if (ring) {
      // Wait, note how much is waiting (the usage metric), then take it all.
      pollfd p{ring_buffer__epoll_fd(ring.get()), POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) < 0 && errno != EINTR) return -errno;
      uint64_t used = ring_pos.waiting();
      ring_used.store(used, std::memory_order_relaxed);
      if (used > ring_peak.load(std::memory_order_relaxed)) ring_peak.store(used, std::memory_order_relaxed);
      return ring_buffer__consume(ring.get());
    }
    int n = perf_buffer__poll(perf.get(), timeout_ms);
    if (n < 0) return n;
    int m = perf_buffer__consume(perf.get());
    return m < 0 ? m : n + m;
  }

  uint64_t last_flush = 0;
  bool unflushed = false;

  bool count_reached() const { return opts.count && total_captured >= opts.count; }

  // Writes held packets up to `cutoff`; returns false when the sink failed.
  bool write_out(PacketSink &sink, uint64_t cutoff, bool force_flush = false) {
    size_t limit = opts.count ? opts.count - total_captured : SIZE_MAX;
    size_t n = pending.release(
        cutoff,
        [&](const PacketMeta &m, std::span<const uint8_t> bytes) {
          if (sink_failed) return;
          uint32_t idx = slot.at(m.ifindex);
          Packet p{m.ts_ns, idx, static_cast<Direction>(m.dir), m.wire_len, bytes};
          if (auto r = sink.write(p); !r) {
            sink_error = r.error();
            sink_failed = true;
            return;
          }
          captured[idx]++;
          total_captured++;
        },
        limit);
    unflushed |= n > 0;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (unflushed && !sink_failed && (force_flush || now - last_flush >= kFlushIntervalNs)) {
      if (auto r = sink.flush(); !r) {
        sink_error = r.error();
        sink_failed = true;
      }
      last_flush = now;
      unflushed = false;
    }
    return !sink_failed;
  }
};

Capture::Capture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Capture::~Capture() = default;

const std::vector<InterfaceInfo> &Capture::interfaces() const { return impl_->ifaces; }

Result<std::unique_ptr<Capture>> Capture::start(const CaptureOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (opts.snaplen == 0 || opts.snaplen > BPFTAP_MAX_SNAPLEN)
    return bad_input(fmt::format("snapshot length must be 1..{}", BPFTAP_MAX_SNAPLEN));
  auto ifaces = resolve_interfaces(opts.interfaces);
  if (!ifaces) return tl::unexpected(ifaces.error());
  impl->ifaces = std::move(*ifaces);
  for (uint32_t i = 0; i < impl->ifaces.size(); i++) {
    impl->ifaces[i].snaplen = opts.snaplen;
    impl->slot[impl->ifaces[i].ifindex] = i;
  }
  impl->captured.assign(impl->ifaces.size(), 0);

  auto ebpf = build_filter(opts.filter, opts.snaplen, impl->ifaces.front().name);
  if (!ebpf) return tl::unexpected(ebpf.error());

  CaptureProgramOptions po;
  po.filter = std::move(*ebpf);
  po.snaplen = opts.snaplen;
  po.output = opts.output;
  po.ring_bytes = opts.buffer_bytes;
  auto prog = CaptureProgram::load(po);
  if (!prog) return tl::unexpected(prog.error());
  impl->prog = std::move(*prog);

  Impl *self = impl.get();
  if (opts.output == BPFTAP_OUT_RINGBUF) {
    auto cb = [](void *ctx, void *data, size_t size) {
      static_cast<Impl *>(ctx)->on_record(data, size);
      return 0;
    };
    impl->ring.reset(ring_buffer__new(impl->prog->ring_fd(), cb, self, nullptr));
    if (!impl->ring) return fail_errno("open the ring buffer", errno);
    (void)impl->ring_pos.map(impl->prog->ring_fd());  // only for the usage figures: without it they read 0
  } else {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t pages = std::max<size_t>(1, opts.buffer_bytes / page);
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
        self->on_record(raw + sizeof(size), size);
      } else if (e->type == PERF_RECORD_LOST) {
        uint64_t lost;
        std::memcpy(&lost, reinterpret_cast<const uint8_t *>(e + 1) + sizeof(uint64_t), sizeof(lost));
        self->perf_lost += lost;
      }
      return LIBBPF_PERF_EVENT_CONT;
    };
    impl->perf.reset(perf_buffer__new_raw(impl->prog->perf_fd(), pages, &attr, cb, self, nullptr));
    if (!impl->perf) return fail_errno("open the perf buffers", errno);
  }

  impl->tai_offset = tai_minus_utc_ns();
  for (const auto &ifc : impl->ifaces) {
    for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
      if ((dir == BPFTAP_DIR_IN && !opts.ingress) || (dir == BPFTAP_DIR_OUT && !opts.egress)) continue;
      if (auto r = impl->prog->watch(ifc.ifindex, dir); !r) return tl::unexpected(r.error());
      int fd = dir == BPFTAP_DIR_IN ? impl->prog->ingress_fd() : impl->prog->egress_fd();
      auto hook = attach_hook(fd, ifc.ifindex, dir, opts.attach);
      if (!hook) return tl::unexpected(hook.error());  // hooks attached so far detach with impl
      impl->hooks.push_back(std::move(*hook));
    }
  }
  return std::unique_ptr<Capture>(new Capture(std::move(impl)));
}

Result<> Capture::run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done) {
  Impl &s = *impl_;
  while (!stop.load() && !s.count_reached() && !(done && done())) {
    int n = s.poll(kPollMs);
    if (n < 0 && n != -EINTR) return fail_errno("read captured packets", n);
    if (!s.write_out(sink, clock_ns(CLOCK_REALTIME) - kReorderWindowNs, s.count_reached()))
      return tl::unexpected(s.sink_error);
  }
  return {};
}

Result<std::vector<InterfaceStats>> Capture::finish(PacketSink &sink) {
  Impl &s = *impl_;
  s.hooks.clear();  // detach first: nothing new arrives after this
  while (s.poll(0) > 0) {
  }
  if (!s.write_out(sink, UINT64_MAX, true)) return tl::unexpected(s.sink_error);
  return stats();
}

Result<std::vector<InterfaceStats>> Capture::stats() const {
  const Impl &s = *impl_;
  std::vector<InterfaceStats> out;
  for (uint32_t i = 0; i < s.ifaces.size(); i++) {
    InterfaceStats st;
    st.name = s.ifaces[i].name;
    st.captured = s.captured[i];
    for (uint8_t dir : {uint8_t{BPFTAP_DIR_IN}, uint8_t{BPFTAP_DIR_OUT}}) {
      if ((dir == BPFTAP_DIR_IN && !s.opts.ingress) || (dir == BPFTAP_DIR_OUT && !s.opts.egress)) continue;
      auto c = s.prog->counters(s.ifaces[i].ifindex, dir);
      if (!c) return tl::unexpected(c.error());
      st.matched += c->matched;
      st.dropped += c->dropped;
    }
    out.push_back(st);
  }
  if (s.perf_lost && !out.empty()) out[0].dropped += s.perf_lost;
  return out;
}

} // namespace bpftap

namespace bpftap {

std::optional<RingUsage> Capture::ring_usage() const {
  if (!impl_->ring) return std::nullopt;
  return RingUsage{impl_->opts.buffer_bytes, impl_->ring_used.load(std::memory_order_relaxed),
                   impl_->ring_peak.load(std::memory_order_relaxed)};
}

} // namespace bpftap
