// Mirror rules in the style of AWS Traffic Mirroring filters:
//   N accept|reject [proto P] [src CIDR] [dst CIDR] [sport A[-B]] [dport A[-B]]
// Rules are tried in ascending N; the first that matches decides; with rules but no match the
// packet is not mirrored. IPv4 and IPv6 CIDRs; P is a name (tcp, udp, icmp, icmpv6, all) or a
// number. A rule's criteria match like tcpdump's `proto`, `net` and `portrange` primitives.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bpf/bpftap.h"
#include "util/error.h"

namespace bpftap {

// One rule, or a bad_input error naming the rule and what is wrong with it.
Result<bpftap_rule> parse_rule(std::string_view text);

// Parses, checks numbers are unique and sorts by number.
Result<std::vector<bpftap_rule>> parse_rules(const std::vector<std::string> &texts);

// Rules from a file: one per line; blank lines and lines starting with '#' are skipped.
Result<std::vector<bpftap_rule>> read_rules_file(const std::string &path);

// The rule in its canonical text form ("10 accept proto tcp dst 10.0.0.0/8 dport 80").
std::string format_rule(const bpftap_rule &r);

} // namespace bpftap
