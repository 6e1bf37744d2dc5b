#include "inspect/pcap_file.h"

#include <pcap/pcap.h>

#include <fmt/format.h>

namespace bpftap::inspect {

struct PcapFile::Impl {
  std::string path;
  pcap_t *p = nullptr;
  ~Impl() {
    if (p) pcap_close(p);
  }
};

PcapFile::PcapFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PcapFile::~PcapFile() = default;

Result<std::unique_ptr<PcapFile>> PcapFile::open(const std::string &path, const std::string &filter) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  char err[PCAP_ERRBUF_SIZE] = {};
  impl->p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!impl->p) return bad_input(fmt::format("{}: {}", path, err));
  if (!filter.empty()) {
    bpf_program prog{};
    if (pcap_compile(impl->p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
      return bad_input(fmt::format("bad filter expression '{}': {}", filter, pcap_geterr(impl->p)));
    int rc = pcap_setfilter(impl->p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) return bad_input(fmt::format("set filter '{}': {}", filter, pcap_geterr(impl->p)));
  }
  return std::unique_ptr<PcapFile>(new PcapFile(std::move(impl)));
}

uint16_t PcapFile::linktype() const { return static_cast<uint16_t>(pcap_datalink(impl_->p)); }

Result<> PcapFile::read_all(PacketSink &sink) {
  pcap_pkthdr *h = nullptr;
  const u_char *data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(impl_->p, &h, &data)) == 1) {
    Packet pkt;
    // Nanosecond precision was asked for: tv_usec holds nanoseconds.
    pkt.ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(h->ts.tv_usec);
    pkt.wire_len = h->len;
    pkt.data = {data, h->caplen};
    if (auto w = sink.write(pkt); !w) return w;
  }
  if (rc == -1) return bad_input(fmt::format("{}: {}", impl_->path, pcap_geterr(impl_->p)));
  return {};
}

} // namespace bpftap::inspect
