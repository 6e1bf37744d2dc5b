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

// Interfaces a command was started on that the kernel deleted since (or gave to another name).
// Looked at every half second at most; each one is announced once on stderr.
class VanishWatch {
public:
  explicit VanishWatch(std::vector<InterfaceInfo> ifaces, bool announce = true)
      : ifaces_(std::move(ifaces)), gone_(ifaces_.size(), false), announce_(announce) {}
  // True once every interface is gone.
  bool all_gone();
  std::string names() const;  // "tap-vm1, tap-vm2"

private:
  std::vector<InterfaceInfo> ifaces_;
  std::vector<bool> gone_;
  bool announce_;
  uint64_t last_ms_ = 0;
};

// A process runs one command: SIGINT and SIGTERM set g_stop, SIGHUP sets g_reload when the
// command reloads (else it keeps its default), SIGUSR1 sets g_stats (print the counters, as
// tcpdump does), and SIGPIPE is ignored (a closed pipe shows up as a write error instead).
extern std::atomic<bool> g_stop, g_reload, g_stats;
void install_signal_handlers(bool reload);

} // namespace bpftap::cli
