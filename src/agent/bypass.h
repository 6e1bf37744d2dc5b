// The body of POST /v1/bypass, checked, and the words its answers and listing use. The bypasses
// in force are the agent's (agent_impl.h), applied by its routes (routes.cpp).
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "util/error.h"

namespace bpftap::agent {

// POST /v1/bypass: every field checked, whatever sessions run. A flow is its whole 5-tuple (as a
// Traffic Mirroring filter's): src, dst, and for tcp and udp both ports.
struct Bypass {
  uint8_t proto = IPPROTO_TCP;
  std::string src, dst;
  uint16_t sport = 0, dport = 0;
  double seconds = 60;
};

Result<Bypass> parse_bypass(const std::string &body);
const char *proto_name(uint8_t p);                          // "tcp", "udp", "icmp"
std::string utc_time(std::chrono::system_clock::time_point t);  // 2026-11-28T01:10:00Z

} // namespace bpftap::agent
