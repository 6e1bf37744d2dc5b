// Splicing a translated filter into BPF programs at load time.
//
// Every program in SEC("bpftap_tc") calls `bpftap_filter`, a noinline stub that is the last
// function of the program (others may follow it). libbpf calls our prog_prepare_load_fn after it has relocated the
// program and appended the stub; there the stub's body is replaced by the translated filter.
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "util/error.h"

struct bpf_object;
struct bpf_program;

namespace bpftap {

// Registers the section handler (once per process). Call before opening a BPF object.
Result<> register_splicer();

// While it lives, loading `progs` (of `obj`) splices `body` in. An empty body keeps the stub,
// which accepts everything.
class SpliceScope {
public:
  SpliceScope(bpf_object *obj, std::vector<bpf_program *> progs, const std::vector<bpf_insn> &body);
  ~SpliceScope();
  SpliceScope(const SpliceScope &) = delete;
  SpliceScope &operator=(const SpliceScope &) = delete;

private:
  std::vector<bpf_program *> progs_;
};

} // namespace bpftap
