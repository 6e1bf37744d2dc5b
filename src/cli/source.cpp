#include "cli/source.h"

#include <signal.h>

#include <cstdio>

#include "cli/commands.h"
#include "capture/pcap_capture.h"

namespace bpftap::cli {

std::atomic<bool> g_stop{false}, g_reload{false}, g_stats{false};

void install_signal_handlers(bool reload) {
  struct sigaction stop {};
  stop.sa_handler = [](int) { g_stop = true; };
  sigemptyset(&stop.sa_mask);
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  if (reload) {
    struct sigaction hup {};
    hup.sa_handler = [](int) { g_reload = true; };
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, nullptr);
  }
  struct sigaction usr1 {};
  usr1.sa_handler = [](int) { g_stats = true; };
  sigemptyset(&usr1.sa_mask);
  sigaction(SIGUSR1, &usr1, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int report(const Error &e) {
  std::fprintf(stderr, "bpftap: %s\n", e.message().c_str());
  return e.bad_input ? kExitBadInput : kExitFailure;
}

Result<std::unique_ptr<PacketSource>> start_source(const std::string &backend, const CaptureOptions &o,
                                                   const std::vector<InterfaceInfo> &ifaces) {
  if (backend == "pcap") {
    auto p = PcapCapture::start({ifaces, o.ingress, o.egress, o.snaplen, o.count, o.filter, o.buffer_bytes ? o.buffer_bytes : 16u << 20});
    if (!p) return tl::unexpected(p.error());
    return std::unique_ptr<PacketSource>(std::move(*p));
  }
  auto e = Capture::start(o);
  if (!e) return tl::unexpected(e.error());
  return std::unique_ptr<PacketSource>(std::move(*e));
}

} // namespace bpftap::cli
