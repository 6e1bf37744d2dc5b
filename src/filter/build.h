// A tcpdump expression, ready to splice into a BPF program.
#pragma once

#include <linux/bpf.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap {

// Compiles a filter expression as `tcpdump -i iface` would and translates it to eBPF, without
// loading anything: also the check a command makes before it creates files or attaches hooks.
Result<std::vector<bpf_insn>> build_filter(const std::string &expression, uint32_t snaplen, const std::string &iface);

// The same, in a child process the caller waits for. libpcap's optimizer takes seconds on long
// expressions (300 ports: ~12 s) and cannot be stopped midway; a process can. When `cancel`
// becomes true (checked every 50 ms) the child is killed and the error says so. The child runs
// in the calling thread's network namespace and holds none of the caller's descriptors.
Result<std::vector<bpf_insn>> build_filter_cancellable(const std::string &expression, uint32_t snaplen,
                                                       const std::string &iface, const std::atomic<bool> *cancel);

} // namespace bpftap
