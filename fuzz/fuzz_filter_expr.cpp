// Filter expressions (user input) through libpcap's compiler and our translator.
#include <string>

#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 512) return 0;
  std::string expr(reinterpret_cast<const char *>(data), size);
  if (expr.find('\0') != std::string::npos) return 0;
  auto cbpf = bpftap::compile_pcap_filter(expr, 262144);
  if (!cbpf) return 0;
  (void)bpftap::translate_cbpf(*cbpf, {bpftap::VlanView::Inline});
  (void)bpftap::translate_cbpf(*cbpf, {bpftap::VlanView::Metadata});
  return 0;
}
