#include "filter/splice.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <map>
#include <mutex>
#include <string_view>

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

} // namespace

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


SpliceScope::SpliceScope(bpf_object *obj, std::vector<bpf_program *> progs, const std::vector<bpf_insn> &body)
    : progs_(std::move(progs)) {
  std::lock_guard lock(g_mu);
  const btf *types = bpf_object__btf(obj);
  for (auto *p : progs_) g_jobs[p] = SpliceJob{&body, types, {}};
}

SpliceScope::~SpliceScope() {
  std::lock_guard lock(g_mu);
  for (auto *p : progs_) g_jobs.erase(p);
}

} // namespace bpftap
