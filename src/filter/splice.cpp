#include "filter/splice.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string_view>

namespace bpftap {
namespace {


constexpr std::string_view kStubName = "bpftap_filter";

// libbpf calls prepare_load() for every program of our section after it has relocated and
// appended subprograms, just before BPF_PROG_LOAD. Splicing happens there: the body of
// bpftap_filter is replaced by the translated filter. Functions after it (a timer callback, say)
// move by the difference in length: calls and function references that cross the stub, and the
// func_info and line_info records, are adjusted to match.
struct SpliceJob {
  const std::vector<bpf_insn> *body;
  const btf *types;
  std::vector<unsigned char> func_info;  // adjusted copies handed to the kernel
  std::vector<unsigned char> line_info;
};

std::mutex g_mu;
std::map<const bpf_program *, SpliceJob> g_jobs;

const bpf_func_info *func_info_at(const bpf_prog_load_opts *opts, size_t i) {
  auto *base = static_cast<const unsigned char *>(opts->func_info);
  return reinterpret_cast<const bpf_func_info *>(base + i * opts->func_info_rec_size);
}

// A BPF-to-BPF call or a function's address (bpf_timer_set_callback's argument): both name their
// target relative to the next instruction.
bool refers_to_function(const bpf_insn &in) {
  return (in.code == (BPF_JMP | BPF_CALL) && in.src_reg == BPF_PSEUDO_CALL) ||
         (in.code == (BPF_LD | BPF_IMM | BPF_DW) && in.src_reg == BPF_PSEUDO_FUNC);
}

int prepare_load(bpf_program *prog, bpf_prog_load_opts *opts, long /*cookie*/) {
  std::lock_guard lock(g_mu);
  auto it = g_jobs.find(prog);
  if (it == g_jobs.end() || it->second.body->empty()) return 0;
  SpliceJob &job = it->second;
  if (!opts->func_info || opts->func_info_cnt < 2 || !job.types) return -ENOENT;

  // The stub's instructions: from its func_info offset to the next function's (or the end).
  const size_t count = bpf_program__insn_cnt(prog);
  const bpf_insn *insns = bpf_program__insns(prog);
  const bpf_func_info *stub_fi = nullptr;
  for (size_t i = 0; i < opts->func_info_cnt; i++) {
    const btf_type *t = btf__type_by_id(job.types, func_info_at(opts, i)->type_id);
    if (t && btf__name_by_offset(job.types, t->name_off) == kStubName) stub_fi = func_info_at(opts, i);
  }
  if (!stub_fi) return -ENOENT;
  const size_t stub = stub_fi->insn_off;
  size_t stub_end = count;
  for (size_t i = 0; i < opts->func_info_cnt; i++)
    if (func_info_at(opts, i)->insn_off > stub) stub_end = std::min<size_t>(stub_end, func_info_at(opts, i)->insn_off);
  const long delta = static_cast<long>(job.body->size()) - static_cast<long>(stub_end - stub);
  auto moved = [&](size_t at) { return at >= stub_end ? static_cast<size_t>(static_cast<long>(at) + delta) : at; };

  std::vector<bpf_insn> spliced(insns, insns + stub);
  spliced.insert(spliced.end(), job.body->begin(), job.body->end());
  spliced.insert(spliced.end(), insns + stub_end, insns + count);
  for (size_t i = 0; i < count; i++) {
    if (i >= stub && i < stub_end) continue;
    if (!refers_to_function(insns[i])) continue;
    size_t target = static_cast<size_t>(static_cast<long>(i) + 1 + insns[i].imm);
    spliced[moved(i)].imm = static_cast<int32_t>(static_cast<long>(moved(target)) - static_cast<long>(moved(i)) - 1);
  }
  if (int err = bpf_program__set_insns(prog, spliced.data(), spliced.size()); err) return err;

  auto *fbase = static_cast<const unsigned char *>(opts->func_info);
  job.func_info.assign(fbase, fbase + opts->func_info_cnt * opts->func_info_rec_size);
  for (size_t i = 0; i < opts->func_info_cnt; i++) {
    auto *fi = reinterpret_cast<bpf_func_info *>(job.func_info.data() + i * opts->func_info_rec_size);
    fi->insn_off = static_cast<__u32>(moved(fi->insn_off));
  }
  opts->func_info = job.func_info.data();

  // Line info inside the stub (but its first instruction) would point into the translated code.
  if (opts->line_info && opts->line_info_cnt) {
    auto *base = static_cast<const unsigned char *>(opts->line_info);
    size_t rec = opts->line_info_rec_size, kept = 0;
    job.line_info.clear();
    for (size_t i = 0; i < opts->line_info_cnt; i++) {
      auto *li = reinterpret_cast<const bpf_line_info *>(base + i * rec);
      if (li->insn_off > stub && li->insn_off < stub_end) continue;
      job.line_info.insert(job.line_info.end(), base + i * rec, base + (i + 1) * rec);
      auto *copy = reinterpret_cast<bpf_line_info *>(job.line_info.data() + kept * rec);
      copy->insn_off = static_cast<__u32>(moved(copy->insn_off));
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
