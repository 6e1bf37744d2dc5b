// The libpcap backend (`--backend pcap`): one TPACKET_V3 handle per interface, as tcpdump uses,
// the filter compiled by libpcap into the kernel's classic BPF socket filter, packets delivered to
// the same sinks as the eBPF capture. It exists so that eBPF and pcap tracing can be compared
// with everything else equal.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "capture/source.h"

namespace bpftap {

struct PcapCaptureOptions {
  std::vector<InterfaceInfo> interfaces;  // resolved
  bool ingress = true;
  bool egress = true;
  uint32_t snaplen = 262144;
  uint64_t count = 0;
  std::string filter;
  uint32_t buffer_bytes = 1u << 24;  // per interface (pcap_set_buffer_size)
  int timeout_ms = 100;              // TPACKET_V3 block timeout (tcpdump: 1000)
};

class PcapCapture final : public PacketSource {
public:
  // Opens and activates every handle; bad filters are bad input.
  static Result<std::unique_ptr<PcapCapture>> start(const PcapCaptureOptions &opts);
  ~PcapCapture() override;
  const std::vector<InterfaceInfo> &interfaces() const override;
  Result<> run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done = {}) override;
  Result<std::vector<InterfaceStats>> finish(PacketSink &sink) override;
  Result<std::vector<InterfaceStats>> stats() const override;

private:
  struct Impl;
  explicit PcapCapture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap
