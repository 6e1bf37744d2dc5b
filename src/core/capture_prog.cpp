#include "core/capture_prog.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string_view>

#include "capture_bpf.skel.h"

namespace bpftap {
namespace {

constexpr std::string_view kStubName = "bpftap_filter";

// libbpf calls prepare_load() for every program of our section after it has relocated and
// appended subprograms, just before BPF_PROG_LOAD. Splicing happens there: the body of
// bpftap_filter, the last function of the program, is replaced by the translated filter.
struct SpliceJob {
  const std::vector<bpf_insn> *body;
  const btf *types;
  std::vector<unsigned char> line_info;  // filtered copy handed to the kernel
};

std::mutex g_mu;
std::map<const bpf_program *, SpliceJob> g_jobs;

const bpf_func_info *func_info_at(const bpf_prog_load_opts *opts, size_t i) {
  auto *base = static_cast<const unsigned char *>(opts->func_info);
  return reinterpret_cast<const bpf_func_info *>(base + i * opts->func_info_rec_size);
}

int prepare_load(bpf_program *prog, bpf_prog_load_opts *opts, long /*cookie*/) {
  std::lock_guard lock(g_mu);
  auto it = g_jobs.find(prog);
  if (it == g_jobs.end() || it->second.body->empty()) return 0;
  SpliceJob &job = it->second;

  // The filter stub is the function with the highest offset: it must be the last one.
  if (!opts->func_info || opts->func_info_cnt < 2 || !job.types) return -ENOENT;
  const bpf_func_info *last = func_info_at(opts, 0);
  for (size_t i = 1; i < opts->func_info_cnt; i++)
    if (func_info_at(opts, i)->insn_off > last->insn_off) last = func_info_at(opts, i);
  const btf_type *t = btf__type_by_id(job.types, last->type_id);
  if (!t || btf__name_by_offset(job.types, t->name_off) != kStubName) return -ENOENT;

  size_t stub = last->insn_off;
  const bpf_insn *insns = bpf_program__insns(prog);
  std::vector<bpf_insn> spliced(insns, insns + stub);
  spliced.insert(spliced.end(), job.body->begin(), job.body->end());
  if (int err = bpf_program__set_insns(prog, spliced.data(), spliced.size()); err) return err;

  // Line info past the stub's first instruction would point into the translated code.
  if (opts->line_info && opts->line_info_cnt) {
    auto *base = static_cast<const unsigned char *>(opts->line_info);
    size_t rec = opts->line_info_rec_size, kept = 0;
    job.line_info.clear();
    for (size_t i = 0; i < opts->line_info_cnt; i++) {
      auto *li = reinterpret_cast<const bpf_line_info *>(base + i * rec);
      if (li->insn_off > stub) continue;
      job.line_info.insert(job.line_info.end(), base + i * rec, base + (i + 1) * rec);
      kept++;
    }
    opts->line_info = job.line_info.data();
    opts->line_info_cnt = kept;
  }
  return 0;
}

Result<> register_splicer() {
  static int handler = [] {
    libbpf_prog_handler_opts h{};
    h.sz = sizeof(h);
    h.prog_prepare_load_fn = prepare_load;
    return libbpf_register_prog_handler("bpftap_tc", BPF_PROG_TYPE_SCHED_CLS, BPF_CGROUP_INET_INGRESS, &h);
  }();
  if (handler < 0) return fail_errno("register the bpftap_tc section handler", handler);
  return {};
}

} // namespace

Result<std::unique_ptr<CaptureProgram>> CaptureProgram::load(const CaptureProgramOptions &opts) {
  if (auto r = register_splicer(); !r) return tl::unexpected(r.error());
  capture_bpf *skel = capture_bpf__open();
  if (!skel) return fail_errno("open the capture BPF object", errno);
  std::unique_ptr<CaptureProgram> self(new CaptureProgram(skel));

  skel->rodata->snaplen = opts.snaplen;
  skel->rodata->output = opts.output;
  skel->rodata->wakeup_bytes = opts.ring_bytes / 4;
  uint32_t ring = opts.output == BPFTAP_OUT_RINGBUF ? opts.ring_bytes : 4096;
  if (int err = bpf_map__set_max_entries(skel->maps.ring, ring); err)
    return fail_errno("size the ring buffer", err);
  bpf_program__set_autoload(skel->progs.bpftap_ingress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_egress, opts.taps);
  bpf_program__set_autoload(skel->progs.bpftap_filter_test, opts.filter_test);

  {
    std::lock_guard lock(g_mu);
    const btf *types = bpf_object__btf(skel->obj);
    for (auto *p : {skel->progs.bpftap_ingress, skel->progs.bpftap_egress, skel->progs.bpftap_filter_test})
      g_jobs[p] = SpliceJob{&opts.filter, types, {}};
  }
  int err = capture_bpf__load(skel);
  {
    std::lock_guard lock(g_mu);
    for (auto *p : {skel->progs.bpftap_ingress, skel->progs.bpftap_egress, skel->progs.bpftap_filter_test})
      g_jobs.erase(p);
  }
  if (err) return fail_errno("load the capture BPF programs (the kernel verifier refused them)", err);
  return self;
}

CaptureProgram::~CaptureProgram() { capture_bpf__destroy(skel_); }

int CaptureProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.bpftap_ingress); }
int CaptureProgram::egress_fd() const { return bpf_program__fd(skel_->progs.bpftap_egress); }
int CaptureProgram::filter_test_fd() const { return bpf_program__fd(skel_->progs.bpftap_filter_test); }
int CaptureProgram::ring_fd() const { return bpf_map__fd(skel_->maps.ring); }
int CaptureProgram::perf_fd() const { return bpf_map__fd(skel_->maps.perf); }
int CaptureProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }

Result<> CaptureProgram::watch(uint32_t ifindex, uint8_t dir) {
  uint32_t key = bpftap_counter_key(ifindex, dir);
  std::vector<bpftap_counters> zero(static_cast<size_t>(libbpf_num_possible_cpus()));
  if (bpf_map_update_elem(counters_fd(), &key, zero.data(), BPF_ANY) != 0)
    return fail_errno("register interface " + std::to_string(ifindex) + " in the counters map", errno);
  return {};
}

Result<bpftap_counters> CaptureProgram::counters(uint32_t ifindex, uint8_t dir) const {
  uint32_t key = bpftap_counter_key(ifindex, dir);
  std::vector<bpftap_counters> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  if (bpf_map_lookup_elem(counters_fd(), &key, per_cpu.data()) != 0)
    return fail_errno("read counters of interface " + std::to_string(ifindex), errno);
  bpftap_counters sum{};
  for (const auto &c : per_cpu) {
    sum.seen += c.seen;
    sum.matched += c.matched;
    sum.dropped += c.dropped;
    sum.bytes += c.bytes;
  }
  return sum;
}

} // namespace bpftap
