// Shared by the commands: the one-line error report (exit code from the error), the choice
// of packet source (--backend ebpf|pcap) and the signals that stop or reload a command.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "util/error.h"
#include "capture/source.h"

namespace bpftap::cli {

// Prints "bpftap: <message>" on stderr; returns kExitBadInput or kExitFailure.
int report(const Error &e);

// Starts the eBPF capture, or the libpcap backend on the already resolved interfaces.
Result<std::unique_ptr<PacketSource>> start_source(const std::string &backend, const CaptureOptions &o,
                                                   const std::vector<InterfaceInfo> &ifaces);

// A process runs one command: SIGINT and SIGTERM set g_stop, SIGHUP sets g_reload when the
// command reloads (else it keeps its default), SIGUSR1 sets g_stats (print the counters, as
// tcpdump does), and SIGPIPE is ignored (a closed pipe shows up as a write error instead).
extern std::atomic<bool> g_stop, g_reload, g_stats;
void install_signal_handlers(bool reload);

} // namespace bpftap::cli
