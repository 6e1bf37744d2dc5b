#include "cli/source.h"

#include <net/if.h>
#include <signal.h>
#include <time.h>

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

bool VanishWatch::all_gone() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
  if (now - last_ms_ < 500) return false;
  last_ms_ = now;
  size_t n = 0;
  for (size_t i = 0; i < ifaces_.size(); i++) {
    if (!gone_[i]) {
      char name[IF_NAMESIZE] = {};
      if (if_indextoname(ifaces_[i].ifindex, name) == nullptr || ifaces_[i].name != name) {
        if (errno == EMFILE || errno == ENFILE) continue;  // cannot tell now
        gone_[i] = true;
        if (announce_) std::fprintf(stderr, "bpftap: %s went away\n", ifaces_[i].name.c_str());
      }
    }
    n += gone_[i];
  }
  return n == ifaces_.size();
}

std::string VanishWatch::names() const {
  std::string out;
  for (const auto &i : ifaces_) out += (out.empty() ? "" : ", ") + i.name;
  return out;
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
