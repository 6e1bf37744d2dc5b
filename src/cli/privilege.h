// The one-line answer to "why did it fail?" when bpftap runs without the privileges it needs,
// given before anything is opened (a kernel EPERM from deep inside libbpf or libpcap names the
// wrong thing: "lo: socket: Operation not permitted").
#pragma once

#include <string>

#include "util/error.h"

namespace bpftap::cli {

enum class Needs {
  Bpf,    // load and attach BPF programs, read their maps: CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON
  Netns,  // the lab: create network namespaces and veths (CAP_SYS_ADMIN + CAP_NET_ADMIN)
};

// Checks the effective capabilities of this process; the error (not bad input: exit 1) names
// the command, root, and the capabilities that are missing.
Result<> check_privileges(const std::string &command, Needs needs);

} // namespace bpftap::cli
