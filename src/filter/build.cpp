#include "filter/build.h"

#include "filter/cbpf_to_ebpf.h"
#include "filter/filter.h"

namespace bpftap {

Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface) {
  auto cbpf = compile_pcap_filter_live(expression, snaplen, iface);
  if (!cbpf) return tl::unexpected(cbpf.error());
  auto ebpf = translate_cbpf(*cbpf, {VlanView::Metadata});
  if (!ebpf) return bad_input("filter '" + expression + "': " + ebpf.error().message());
  return ebpf;
}

} // namespace bpftap
