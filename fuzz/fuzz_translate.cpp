// Arbitrary cBPF programs into the translator: it must refuse bad ones with an error, never crash,
// and what it accepts must keep every jump inside the program.
#include <cstring>
#include <vector>

#include "filter/cbpf_to_ebpf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<sock_filter> prog(size / sizeof(sock_filter));
  if (prog.empty() || prog.size() > 4096) return 0;
  std::memcpy(prog.data(), data, prog.size() * sizeof(sock_filter));
  for (auto view : {bpftap::VlanView::Inline, bpftap::VlanView::Metadata}) {
    auto out = bpftap::translate_cbpf(prog, {view});
    if (!out) continue;
    long n = static_cast<long>(out->size());
    for (long i = 0; i < n; i++) {
      const bpf_insn &in = (*out)[static_cast<size_t>(i)];
      uint8_t cls = in.code & 0x07;
      bool jump = (cls == BPF_JMP || cls == BPF_JMP32) && (in.code & 0xf0) != BPF_CALL && (in.code & 0xf0) != BPF_EXIT;
      if (jump && (i + 1 + in.off < 0 || i + 1 + in.off >= n)) __builtin_trap();
    }
  }
  return 0;
}
