// A mirror session as its user describes it. bpftap mirror's flags, an agent session's YAML and
// the API's JSON all fill a MirrorSpec; to_mirror_options() checks and converts it, once, and
// check_mirror_options() is what MirrorSession::start checks before it touches the kernel.
// Messages name what is wrong (the VXLAN VNI, the snapshot length) and keep the value, never a
// flag or a key: the same words reach a shell user and an API client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernel/attach.h"
#include "mirror/mirror.h"
#include "util/error.h"

namespace bpftap {

inline constexpr int64_t kMaxVxlanVni = 0xffffff;

// An IPv4 or IPv6 address as four network-order words (IPv4 in word 0, the rest zero): 4 or 6,
// 0 if it is neither. The mirror's addresses (VXLAN remote and local, bypassed flows) go through it.
int parse_address(const std::string &s, uint32_t out[4]);
inline int address_family(const std::string &s) {
  uint32_t words[4];
  return parse_address(s, words);
}

inline constexpr int64_t kDefaultVxlanPort = 4789;

// Where the copies go: a local interface, or a remote sensor over VXLAN. Numbers are kept as
// given (wide, signed) so that a value out of range is said as it was given.
struct MirrorTarget {
  std::string to;                          // local interface, or
  std::string vxlan;                       // remote sensor address (IPv4 or IPv6)
  std::optional<int64_t> vni;              // with vxlan (needed): 0-16777215
  int64_t vxlan_port = kDefaultVxlanPort;  // with vxlan: UDP destination port 1-65535
  std::string local;                       // with vxlan: source address of the outer packets
  bool operator==(const MirrorTarget &) const = default;
};

struct MirrorSpec {
  std::vector<std::string> interfaces;  // source names or globs
  bool ingress = true, egress = true;
  std::string filter;                   // pcap-filter expression ("" = everything)
  std::vector<std::string> rules;       // rule texts ('10 accept proto tcp ...'), see mirror/rules.h
  uint32_t snaplen = 0;                 // 0 = whole packets, else at least kMinMirrorSnaplen
  uint32_t sample = 0;                  // 1 in N flows
  uint64_t flow_cutoff = 0;             // payload bytes per flow
  uint32_t flow_table = 65536;          // flows tracked for the cutoff
  AttachMode attach = AttachMode::Auto;
  MirrorTarget target;
};

// The target alone (one of the two, its VXLAN numbers in range, its addresses), for a caller
// that reports it apart (the agent's config names the line of `mirror:`).
Result<> check_mirror_target(const MirrorTarget &t);

// Checks the whole spec and converts it (rules parsed, numbers narrowed once they are in range).
// The result passes check_mirror_options(); what needs the kernel (does the target interface
// exist?) is left to MirrorSession::start.
Result<MirrorOptions> to_mirror_options(const MirrorSpec &s);

// Everything in the options that can be checked without the kernel: one target, the VXLAN
// numbers and addresses, the snapshot length, the number of rules, the flow table.
Result<> check_mirror_options(const MirrorOptions &o);

} // namespace bpftap
