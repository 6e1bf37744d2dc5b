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
  bool allow_no_interfaces = false;     // none yet: they come with add_interface() (the agent)
  std::string filter_iface;             // compile the filter as on this one ("" = the first)
  bool ingress = true;                  // -Q in / out / inout
  bool egress = true;
  uint32_t snaplen = BPFTAP_MAX_SNAPLEN;
  uint64_t count = 0;                   // -c; 0 = until stopped
  std::string filter;                   // pcap-filter expression
  // `filter` already compiled (build_filter()), so that a command that checked it before
  // creating files does not compile it twice; nullopt: start() compiles it.
  std::optional<std::vector<bpf_insn>> compiled;
  // Compiling takes seconds for long expressions: it stops (start() fails) when this turns true.
  const std::atomic<bool> *cancel = nullptr;
  bpftap_output output = BPFTAP_OUT_RINGBUF;
  AttachMode attach = AttachMode::Auto;
  std::string pin_dir;                  // the agent's PinDir: TCX links pinned there ("" = fds held)
  uint32_t buffer_bytes = 0;            // the big records' ring size (with a snapshot length of at
                                        // most BPFTAP_SMALL_RECORD, the one ring's), or the per-CPU
                                        // perf buffer size; 0 = by default_buffer_bytes(). The small
                                        // records' ring is never bigger.
};

// The ring buffer a capture gets unless told otherwise: room for about a thousand records of
// the snapshot length, more with more interfaces, a power of two between 8 and 128 MiB. At full
// length that is 128 MiB, a quarter of a second of 4 Gbit/s: writes to a file stall for up to
// ~100 ms now and then (measured on tmpfs), and the ring is what absorbs them. Past 8 MiB the
// program writes an 8 MiB ring while the reader keeps up and spills into this one when it is full.
uint32_t default_buffer_bytes(uint32_t snaplen, size_t interfaces);

// How full one of the kernel's ring buffers is (ring transport only): "small" (copies of up to
// BPFTAP_SMALL_RECORD bytes) and, with a longer snapshot length, "big", and with a buffer of
// more than 8 MiB, "spill" (the buffer itself: longer copies when "big", 8 MiB, is full).
struct RingUsage {
  const char *ring = "";
  uint64_t size = 0;  // bytes
  uint64_t used = 0;  // waiting for bpftap at the last drain
  uint64_t peak = 0;  // the most ever waiting at a drain (size reached = drops)
};

// One BPF object, one ring buffer and one reader for all the interfaces of a capture, however
// many: the programs (one per hook direction) are shared by every hook, and records come out of
// the ring in time order across interfaces and CPUs, written from the ring's memory.
class Capture final : public PacketSource {
public:
  // Compiles the filter, loads the program and attaches to every hook; on any failure nothing
  // stays attached.
  static Result<std::unique_ptr<Capture>> start(const CaptureOptions &opts);
  ~Capture() override;

  // The interfaces given to start(), in slot order (the Packet::iface of their packets).
  const std::vector<InterfaceInfo> &interfaces() const override;

  // Adds an interface while the capture runs; its packets carry the returned slot (that of an
  // interface removed earlier, or a new one). `prepare(slot)` runs first, under the lock the reader writes under, so the sink
  // can learn the slot before any packet of it arrives; if it fails nothing is attached.
  // Safe to call from another thread than run()'s.
  Result<uint32_t> add_interface(const InterfaceInfo &iface, const std::function<Result<>(uint32_t slot)> &prepare = {});
  // Detaches an interface and returns its counters. Its records still in the ring are dropped
  // (not counted as captured). `after(slot)` runs under the same lock once it is detached.
  Result<InterfaceStats> remove_interface(uint32_t ifindex, const std::function<void(uint32_t slot)> &after = {});

  Result<> run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done = {}) override;
  // Detaches, writes what the kernel still held, and returns the per-interface counters.
  Result<std::vector<InterfaceStats>> finish(PacketSink &sink) override;
  // The interfaces attached now. Safe to call from another thread than run()'s.
  Result<std::vector<InterfaceStats>> stats() const override;
  // One per ring; none with the perf transport. Safe to call while run() drains.
  std::vector<RingUsage> ring_usage() const;
  // Runs `fn` under the lock the reader writes under (the sink's state is then the caller's).
  void locked(const std::function<void()> &fn);

private:
  struct Impl;
  explicit Capture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap
