// The interfaces a command names: names or globs resolved in the current network namespace.
#pragma once

#include <string>
#include <vector>

#include "sinks/packet.h"
#include "util/error.h"

namespace bpftap {

// Interfaces of the current network namespace matching names or globs, in ifindex order.
// A pattern that matches nothing is an error.
Result<std::vector<InterfaceInfo>> resolve_interfaces(const std::vector<std::string> &patterns);

} // namespace bpftap
