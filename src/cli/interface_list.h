// tcpdump's -D and -i any: the interfaces of this network namespace bpftap can capture on
// (Ethernet framing: Ethernet devices, veths, TAPs, bridges, loopback).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap::cli {

struct ListedInterface {
  unsigned ifindex = 0;
  std::string name;
  bool up = false, running = false, loopback = false;
};

// In ifindex order; interfaces of other link types (TUN, WireGuard, CAN...) are left out.
Result<std::vector<ListedInterface>> capturable_interfaces();

// "1.lo [Up, Running, Loopback]", one a line, as tcpdump -D.
void print_interface_list(FILE *out, const std::vector<ListedInterface> &ifaces);

// -i any (alone or among names): every capturable interface in place of "any".
Result<std::vector<std::string>> expand_any(const std::vector<std::string> &patterns);

} // namespace bpftap::cli
