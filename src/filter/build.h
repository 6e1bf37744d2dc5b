// A tcpdump expression, ready to splice into a BPF program.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap {

// Compiles a filter expression as `tcpdump -i iface` would and translates it to eBPF, without
// loading anything: also the check a command makes before it creates files or attaches hooks.
Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface);

} // namespace bpftap
