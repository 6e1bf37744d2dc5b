// A mirror session (virtual TAP): select in the kernel (expression, rules, sampling, flow
// cutoff), clone, and send the copy to a target: a local interface, or a remote sensor over VXLAN.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/bpftap.h"
#include "kernel/attach.h"
#include "mirror/vxlan.h"
#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap {

struct MirrorOptions {
  std::vector<std::string> from;  // source interfaces (names or globs)
  bool ingress = true;
  bool egress = true;
  std::string to;                     // local target interface, e.g. mon0; or
  std::optional<VxlanTarget> vxlan;   // a remote sensor
  std::string filter;                 // pcap-filter expression ("" = everything)
  std::vector<bpftap_rule> rules;     // sorted by number; empty = everything the filter accepts
  uint32_t snaplen = 0;               // 0 = whole packets; else at least kMinMirrorSnaplen
  uint32_t sample = 0;                // 1 in N flows; 0 or 1 = all
  uint64_t flow_cutoff = 0;           // payload bytes per flow; 0 = no cutoff
  uint32_t flow_table = 65536;        // flows tracked for the cutoff (LRU)
  AttachMode attach = AttachMode::Auto;
  std::string pin_dir;                // the agent's PinDir: TCX links pinned there ("" = fds held)
  bool allow_no_sources = false;      // start with no source (add them with add_source)
  const std::atomic<bool> *cancel = nullptr;  // stops a long filter compilation (start() fails)
};

// Shorter copies could not keep the headers a checksum offload needs.
inline constexpr uint32_t kMinMirrorSnaplen = 64;

struct MirrorStats {
  std::string name;
  uint8_t dir;  // BPFTAP_DIR_IN / BPFTAP_DIR_OUT
  bpftap_mirror_counters counters;
};

// The key the mirror program uses for a flow (both directions give the same key). Family 0 if
// the addresses are not both IPv4 or both IPv6.
bpftap_flow_key make_flow_key(uint8_t proto, const std::string &a, uint16_t pa, const std::string &b, uint16_t pb);

class MirrorSession {
public:
  // Checks everything, loads and attaches; on failure nothing stays attached.
  static Result<std::unique_ptr<MirrorSession>> start(const MirrorOptions &opts);
  ~MirrorSession();

  const std::vector<InterfaceInfo> &sources() const;
  // Empty, or why copies of full-size frames may not reach a VXLAN sensor whole (MTU).
  const std::string &mtu_note() const;
  std::string target() const;  // "mon0" or "10.77.1.1 VNI 42 via bpftap-vx5d10c2"
  uint32_t target_ifindex() const;  // the interface copies leave by (the VXLAN device's, for VXLAN)
  const std::string &target_device() const;  // its name: mon0, or bpftap's VXLAN device
  // read_tc: with --attach tc, read tc's failure counts now (over rtnetlink, in the calling
  // thread's network namespace, which must be the session's); false keeps the last read's.
  Result<std::vector<MirrorStats>> stats(bool read_tc = true) const;
  Result<bpftap_target_counters> target_stats() const;  // zero without truncation
  // Replaces the rule set while the session runs (no reattach); sorted, at most BPFTAP_MAX_RULES.
  Result<> set_rules(const std::vector<bpftap_rule> &rules);
  void detach();  // the counters stay readable

  // Sources can come and go while the session runs (the agent's auto-attach).
  Result<> add_source(const InterfaceInfo &iface);
  // Detaches one source; returns its last counters (they leave the session's stats).
  Result<std::vector<MirrorStats>> remove_source(uint32_t ifindex);

  // Stops mirroring one flow (both directions) for `seconds`; expire_bypass() forgets the
  // entries whose time is up.
  Result<> bypass(const bpftap_flow_key &key, double seconds);
  void expire_bypass();
  // Mirrors the flow again before its time is up; false if it was not bypassed.
  bool unbypass(const bpftap_flow_key &key);

  // For BPF_PROG_TEST_RUN tests: the programs and the tag that marks this session's clones.
  struct Programs {
    int in = -1, out = -1, target = -1;  // target: -1 without truncation or VXLAN
    uint32_t session_tag = 0;
  };
  Programs programs() const;

private:
  struct Impl;
  explicit MirrorSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap
