// A capture session: the interfaces, the loaded program, the hooks, and the reading loop.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <linux/bpf.h>

#include "bpf/bpftap.h"
#include "kernel/attach.h"
#include "kernel/interfaces.h"
#include "util/error.h"
#include "capture/source.h"
#include "sinks/packet.h"

namespace bpftap {

struct CaptureOptions {
  std::vector<std::string> interfaces;  // names or globs ("tap-*")
  bool ingress = true;                  // -Q in / out / inout
  bool egress = true;
  uint32_t snaplen = BPFTAP_MAX_SNAPLEN;
  uint64_t count = 0;                   // -c; 0 = until stopped
  std::string filter;                   // pcap-filter expression
  bpftap_output output = BPFTAP_OUT_RINGBUF;
  AttachMode attach = AttachMode::Auto;
  uint32_t buffer_bytes = 1u << 24;     // ring buffer size, or per-CPU perf buffer size
};

// Compiles a filter expression as `tcpdump -i iface` would and translates it to eBPF, without
// loading anything: also the check a command makes before it creates files or attaches hooks.
Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface);

// How full the kernel's ring buffer is (ring transport only).
struct RingUsage {
  uint64_t size = 0;  // bytes
  uint64_t used = 0;  // waiting for bpftap at the last drain
  uint64_t peak = 0;  // the most ever waiting at a drain (size reached = drops)
};

class Capture final : public PacketSource {
public:
  // Compiles the filter, loads the program and attaches to every hook; on any failure nothing
  // stays attached.
  static Result<std::unique_ptr<Capture>> start(const CaptureOptions &opts);
  ~Capture() override;

  const std::vector<InterfaceInfo> &interfaces() const override;
  Result<> run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done = {}) override;
  // Detaches, writes what the kernel still held, and returns the per-interface counters.
  Result<std::vector<InterfaceStats>> finish(PacketSink &sink) override;
  Result<std::vector<InterfaceStats>> stats() const override;
  // nullopt with the perf transport. Safe to call while run() drains.
  std::optional<RingUsage> ring_usage() const;

private:
  struct Impl;
  explicit Capture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap
