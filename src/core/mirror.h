// A mirror session (virtual TAP): filter in the kernel, clone to a target interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpf/bpftap.h"
#include "core/attach.h"
#include "core/error.h"
#include "sinks/packet.h"

namespace bpftap {

struct MirrorOptions {
  std::vector<std::string> from;  // source interfaces (names or globs)
  bool ingress = true;
  bool egress = true;
  std::string to;                 // local target interface, e.g. mon0
  std::string filter;             // pcap-filter expression ("" = everything)
  AttachMode attach = AttachMode::Auto;
};

struct MirrorStats {
  std::string name;
  uint8_t dir;  // BPFTAP_DIR_IN / BPFTAP_DIR_OUT
  bpftap_mirror_counters counters;
};

class MirrorSession {
public:
  // Checks everything, loads and attaches; on failure nothing stays attached.
  static Result<std::unique_ptr<MirrorSession>> start(const MirrorOptions &opts);
  ~MirrorSession();

  const std::vector<InterfaceInfo> &sources() const;
  Result<std::vector<MirrorStats>> stats() const;
  void detach();  // the counters stay readable

private:
  struct Impl;
  explicit MirrorSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap
