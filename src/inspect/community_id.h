// Community ID v1 (https://github.com/corelight/community-id-spec): the flow hash Suricata, Zeek
// and Elastic share, so an alert of one tool joins the flow record of another.
#pragma once

#include <cstdint>
#include <string>

#include "inspect/decode.h"

namespace bpftap::inspect {

// "1:<base64 of SHA-1>". For TCP, UDP and SCTP, sport/dport are the ports; for ICMP and
// ICMPv6, sport is the ICMP type and dport the code (mapped to the counterpart type as the spec
// says); other protocols hash no ports.
std::string community_id(const IpAddr &src, const IpAddr &dst, uint8_t proto, uint16_t sport, uint16_t dport,
                         uint16_t seed = 0);

} // namespace bpftap::inspect
