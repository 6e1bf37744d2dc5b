// Shared by the commands: the one-line error report (exit code from the error) and the choice
// of packet source (--backend ebpf|pcap).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/capture.h"
#include "core/error.h"
#include "core/source.h"

namespace bpftap::cli {

// Prints "bpftap: <message>" on stderr; returns kExitBadInput or kExitFailure.
int report(const Error &e);

// Starts the eBPF capture, or the libpcap backend on the already resolved interfaces.
Result<std::unique_ptr<PacketSource>> start_source(const std::string &backend, const CaptureOptions &o,
                                                   const std::vector<InterfaceInfo> &ifaces);

} // namespace bpftap::cli
