#include "cli/read_file.h"

#include <pcap/pcap.h>

#include <memory>

#include <fmt/format.h>

namespace bpftap::cli {
namespace {

using Handle = std::unique_ptr<pcap_t, decltype(&pcap_close)>;

Result<Handle> open_saved(const std::string &path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  // Nanoseconds: a pcapng or nanosecond pcap keeps its precision through -w.
  pcap_t *p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) return bad_input(fmt::format("-r {}: {}", path, err));
  return Handle(p, pcap_close);
}

} // namespace

Result<InterfaceInfo> saved_file_interface(const std::string &path) {
  auto h = open_saved(path);
  if (!h) return tl::unexpected(h.error());
  auto snap = pcap_snapshot(h->get());
  return InterfaceInfo{path, 0, uint16_t(pcap_datalink(h->get())), uint32_t(snap > 0 ? snap : 262144)};
}

Result<ReadResult> copy_saved_file(const std::string &path, const std::string &filter, uint64_t count,
                                   PacketSink &sink, const std::atomic<bool> &stop) {
  auto h = open_saved(path);
  if (!h) return tl::unexpected(h.error());
  bpf_program prog{};
  if (pcap_compile(h->get(), &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return bad_input(fmt::format("filter '{}': {}", filter, pcap_geterr(h->get())));
  std::unique_ptr<bpf_program, decltype(&pcap_freecode)> code(&prog, pcap_freecode);

  ReadResult r;
  pcap_pkthdr *hdr = nullptr;
  const u_char *data = nullptr;
  int rc = 0;
  while (!stop && (count == 0 || r.written < count) && (rc = pcap_next_ex(h->get(), &hdr, &data)) == 1) {
    r.read++;
    if (!pcap_offline_filter(&prog, hdr, data)) continue;
    Packet p;
    p.ts_ns = uint64_t(hdr->ts.tv_sec) * 1'000'000'000ull + uint64_t(hdr->ts.tv_usec);  // tv_usec holds ns
    p.wire_len = hdr->len;
    p.data = {data, hdr->caplen};
    if (auto w = sink.write(p); !w) return tl::unexpected(w.error());
    r.written++;
  }
  if (!stop && (count == 0 || r.written < count) && rc == PCAP_ERROR)
    return fail(fmt::format("-r {}: {}", path, pcap_geterr(h->get())));
  if (auto f = sink.flush(); !f) return tl::unexpected(f.error());
  return r;
}

} // namespace bpftap::cli
