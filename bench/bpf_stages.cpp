// bench/bpf_stages: where the capture program's time goes, per packet, stage by stage.
//
// BPF_PROG_TEST_RUN runs a program `repeat` times on one crafted frame and reports the mean
// time per run, measured in the kernel with preemption accounted for; the test-run loop's own
// cost is the `empty` program's time. The capture program is loaded as `bpftap capture` loads
// it, attached nowhere: the test runs are its only packets, as if they came through `lo`. The
// helpers it calls are timed alone by bench/bpf/stages.bpf.c. Needs root. Prints a Markdown table
// (median of --reps runs, min-max).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/capture_prog.h"
#include "filter/build.h"
#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"
#include "packet_builder.h"
#include "stages_bpf.skel.h"

using namespace bpftap;

namespace {

constexpr uint32_t kLo = 1;

// Ethernet + IPv4 + UDP 10.0.0.1:1000 -> 10.0.0.2:10, `n` bytes in all.
std::vector<uint8_t> udp_frame(size_t n) {
  return test::PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").udp(1000, 10).payload(n - 42).build();
}

// Gives a ring's space back to the kernel between runs (the records are not read).
class RingDrain {
public:
  RingDrain(int map_fd) {
    long page = sysconf(_SC_PAGESIZE);
    consumer_ = static_cast<uint64_t *>(mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0));
    producer_ = static_cast<uint64_t *>(mmap(nullptr, page, PROT_READ, MAP_SHARED, map_fd, page));
    page_ = page;
  }
  ~RingDrain() {
    if (consumer_ != MAP_FAILED) munmap(consumer_, page_);
    if (producer_ != MAP_FAILED) munmap(const_cast<uint64_t *>(producer_), page_);
  }
  bool ok() const { return consumer_ != MAP_FAILED && producer_ != MAP_FAILED; }
  void drain() const { leave(0); }
  // Leaves `bytes` waiting, as a reader that is behind would (the ring must have held that much).
  void leave(uint64_t bytes) const {
    __atomic_store_n(consumer_, __atomic_load_n(producer_, __ATOMIC_ACQUIRE) - bytes, __ATOMIC_RELEASE);
  }

private:
  uint64_t *consumer_;
  const uint64_t *producer_;
  long page_;
};

struct Row {
  std::string stage;
  std::vector<double> ns;
};

int g_reps = 7, g_repeat = 10000;

// Times `prog_fd` on `frame` (as if received on lo); `between` runs before each run.
// Untimed runs first write 64 MiB of records (the largest ring here) once: in a VM, the first
// write to a page the guest has never touched costs the host a fault of its own, and a test
// run that wrote fresh ring memory measured that (2.4 us for a 1500-byte record, 90 ns once the
// ring had gone round), not the program.
Row time_prog(const std::string &stage, int prog_fd, const std::vector<uint8_t> &frame,
              const std::function<void()> &between = [] {}) {
  Row row{stage, {}};
  for (int r = -1; r < g_reps; r++) {
    between();
    __sk_buff ctx{};
    ctx.ifindex = kLo;
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = frame.data();
    o.data_size_in = static_cast<uint32_t>(frame.size());
    o.ctx_in = &ctx;
    o.ctx_size_in = sizeof ctx;
    o.repeat = g_repeat;
    auto test_run = [&] {
      if (int err = bpf_prog_test_run_opts(prog_fd, &o)) {
        std::fprintf(stderr, "bpf_stages: %s: test run: %s\n", stage.c_str(), std::strerror(-err));
        std::exit(1);
      }
    };
    if (r < 0) {  // the warm-up, in chunks of g_repeat runs
      uint64_t runs = (64u << 20) / (frame.size() + 48) + 1;
      for (uint64_t done = 0; done < runs; done += g_repeat) {
        if (done) between();
        test_run();
      }
      continue;
    }
    test_run();
    row.ns.push_back(o.duration);
  }
  return row;
}

void print(const std::vector<Row> &rows, double empty) {
  std::printf("| stage | ns / run (median, min-max) | minus test-run loop |\n|---|---|---|\n");
  for (auto r : rows) {
    std::sort(r.ns.begin(), r.ns.end());
    double med = r.ns[r.ns.size() / 2];
    std::printf("| %s | %.0f (%.0f-%.0f) | %.0f |\n", r.stage.c_str(), med, r.ns.front(), r.ns.back(), med - empty);
  }
}

// `helper_reads`: every filter load through bpf_skb_load_bytes (as bpftap did before the filter
// read the linear part directly), for a before/after in the same run.
// `batch`: small copies gathered per CPU (the default), or one ring record each.
std::unique_ptr<CaptureProgram> load_capture(const std::string &expr, uint32_t snaplen, bool helper_reads = false,
                                             bool batch = true) {
  CaptureProgramOptions o;
  o.snaplen = snaplen;
  o.batch = batch;
  // Batches go when full, as at any high rate: a test run holds off preemption but not softirqs,
  // and a timer due during the runs could flush a batch in the middle of one.
  o.batch_flush_ns = 50'000'000;
  o.ring_bytes = 1u << 26;
  if (!expr.empty()) {
    Result<std::vector<bpf_insn>> f = build_filter(expr, snaplen, "lo");
    if (helper_reads) {
      auto cbpf = compile_pcap_filter_live(expr, snaplen, "lo");
      if (!cbpf) f = tl::unexpected(cbpf.error());
      else f = translate_cbpf(*cbpf, {VlanView::Metadata, false});
    }
    if (!f) {
      std::fprintf(stderr, "bpf_stages: filter %s: %s\n", expr.c_str(), f.error().message().c_str());
      std::exit(1);
    }
    o.filter = std::move(*f);
  }
  auto p = CaptureProgram::load(o);
  if (!p) {
    std::fprintf(stderr, "bpf_stages: load the capture program: %s\n", p.error().message().c_str());
    std::exit(1);
  }
  return std::move(*p);
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) g_reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--repeat" && i + 1 < argc) g_repeat = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bpf_stages [--reps N] [--repeat N]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "bpf_stages: needs root (BPF_PROG_TEST_RUN)\n");
    return 1;
  }
  libbpf_set_print([](libbpf_print_level, const char *, va_list) { return 0; });
  const auto small = udp_frame(64), large = udp_frame(1500);

  stages_bpf *helpers = stages_bpf::open_and_load();
  if (!helpers) {
    std::fprintf(stderr, "bpf_stages: load bench/bpf/stages.bpf.c: %s\n", std::strerror(errno));
    return 1;
  }
  RingDrain helper_ring(bpf_map__fd(helpers->maps.ring));
  auto drain_helpers = [&] { helper_ring.drain(); };
  std::vector<Row> rows;
  Row empty = time_prog("test-run loop (empty program)", bpf_program__fd(helpers->progs.empty), small);
  rows.push_back(empty);
  rows.push_back(time_prog("helper: bpf_ktime_get_tai_ns", bpf_program__fd(helpers->progs.ktime_tai), small));
  rows.push_back(time_prog("helper: bpf_ktime_get_boot_ns", bpf_program__fd(helpers->progs.ktime_boot), small));
  rows.push_back(time_prog("helper: per-CPU counter lookup + increment", bpf_program__fd(helpers->progs.counter_inc), small));
  rows.push_back(time_prog("helper: bpf_skb_load_bytes 64 B to the stack", bpf_program__fd(helpers->progs.load_bytes_64), small));
  rows.push_back(time_prog("helper: bpf_ringbuf_query", bpf_program__fd(helpers->progs.ring_query), small));
  rows.push_back(time_prog("helper: ringbuf reserve + submit (160 B)", bpf_program__fd(helpers->progs.ring_reserve_submit), small, drain_helpers));
  rows.push_back(time_prog("helper: ringbuf reserve + load 64 B + submit", bpf_program__fd(helpers->progs.ring_reserve_load_submit), small, drain_helpers));

  auto cap = load_capture("", BPFTAP_MAX_SNAPLEN);
  RingDrain cap_ring(cap->ring_fd()), cap_small(cap->small_ring_fd());
  auto drain_cap = [&] {
    cap_ring.drain();
    cap_small.drain();
  };
  rows.push_back(time_prog("capture: interface not watched", cap->ingress_fd(), small));
  if (auto r = cap->watch(kLo); !r) {
    std::fprintf(stderr, "bpf_stages: watch lo: %s\n", r.error().message().c_str());
    return 1;
  }
  rows.push_back(time_prog("capture: no filter, 64 B frame kept", cap->ingress_fd(), small, drain_cap));
  {
    auto single = load_capture("", BPFTAP_MAX_SNAPLEN, false, false);
    RingDrain single_small(single->small_ring_fd());
    (void)single->watch(kLo);
    rows.push_back(time_prog("capture: no filter, 64 B frame kept, a ring record each (no per-CPU batch)",
                             single->ingress_fd(), small, [&] { single_small.drain(); }));
  }
  rows.push_back(time_prog("capture: no filter, 1500 B frame kept", cap->ingress_fd(), large, drain_cap));

  // The reader behind: 20 MiB waiting in the 64 MiB ring, past its wakeup mark (a quarter).
  {
    int saved = g_repeat;
    g_repeat = 14000;  // 22 MB of 1500 B records written once, so 20 MiB can be left waiting
    time_prog("fill", cap->ingress_fd(), large, drain_cap);
    g_repeat = std::min(saved, 2000);
    rows.push_back(time_prog("capture: 1500 B frame kept, reader behind (20 MiB waiting)", cap->ingress_fd(), large,
                             [&] { cap_ring.leave(20u << 20); }));
    g_repeat = saved;
  }

  auto snap = load_capture("", 128);
  RingDrain snap_ring(snap->small_ring_fd());
  (void)snap->watch(kLo);
  rows.push_back(time_prog("capture -s 128: 1500 B frame, 128 B kept", snap->ingress_fd(), large, [&] { snap_ring.drain(); }));

  auto rejecting = load_capture("udp port 9", BPFTAP_MAX_SNAPLEN);
  (void)rejecting->watch(kLo);
  rows.push_back(time_prog("capture 'udp port 9': 64 B frame rejected", rejecting->ingress_fd(), small));
  auto accepting = load_capture("udp", BPFTAP_MAX_SNAPLEN);
  RingDrain acc_ring(accepting->small_ring_fd());
  (void)accepting->watch(kLo);
  rows.push_back(time_prog("capture 'udp': 64 B frame kept", accepting->ingress_fd(), small, [&] { acc_ring.drain(); }));

  auto rejecting_old = load_capture("udp port 9", BPFTAP_MAX_SNAPLEN, true);
  (void)rejecting_old->watch(kLo);
  rows.push_back(time_prog("capture 'udp port 9', filter reads through the helper: 64 B frame rejected",
                           rejecting_old->ingress_fd(), small));
  auto accepting_old = load_capture("udp", BPFTAP_MAX_SNAPLEN, true);
  RingDrain acc_old_ring(accepting_old->small_ring_fd());
  (void)accepting_old->watch(kLo);
  rows.push_back(time_prog("capture 'udp', filter reads through the helper: 64 B frame kept", accepting_old->ingress_fd(),
                           small, [&] { acc_old_ring.drain(); }));

  std::vector<double> e = empty.ns;
  std::sort(e.begin(), e.end());
  print(rows, e[e.size() / 2]);
  stages_bpf::destroy(helpers);
  return 0;
}
