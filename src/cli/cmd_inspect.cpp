// bpftap inspect: flows, nDPI classification and risks, behavioural detectors; alerts as EVE
// JSON lines and flows as Zeek conn.log JSON lines. From a capture file or live (eBPF capture).

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "capture/capture.h"
#include "filter/build.h"
#include "kernel/privileges.h"
#include "cli/source.h"
#include "inspect/inspector.h"
#include "inspect/pcap_file.h"

namespace bpftap::cli {
namespace {


struct InspectArgs {
  std::string read;
  std::vector<std::string> interfaces;
  std::string direction = "inout";
  std::string alerts = "-";
  std::string flows;
  std::string config;
  unsigned status_interval = 5;
  std::string backend = "ebpf";
  std::vector<std::string> expression;
};

struct FileCloser {
  void operator()(FILE *f) const {
    if (f && f != stdout) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

Result<File> open_output(const std::string &path) {
  if (path.empty()) return File(nullptr);
  if (path == "-") return File(stdout);
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) return tl::unexpected(Error{errno, "open " + path, true});
  return File(f);
}

// Offline: every packet of the file, through the same inspector the live path feeds.
int inspect_file(const InspectArgs &a, inspect::InspectOptions opts, const std::string &filter) {
  auto file = inspect::PcapFile::open(a.read, filter);
  if (!file) return report(file.error());
  InterfaceInfo iface;
  iface.name = a.read;
  iface.linktype = (*file)->linktype();
  opts.interfaces = {iface};
  auto alerts = open_output(a.alerts);
  if (!alerts) return report(alerts.error());
  auto flows = open_output(a.flows);
  if (!flows) return report(flows.error());
  opts.alerts = alerts->get();
  opts.flows = flows->get();
  inspect::Inspector inspector(opts);
  // A damaged file still gets what was read inspected, then a one-line error.
  auto read = (*file)->read_all(inspector);
  auto written = inspector.finish();
  if (!read) return report(read.error());  // the alerts and flows read so far are written
  if (!written) return report(written.error());
  auto st = inspector.stats();
  std::fprintf(stderr, "bpftap: %lu packets (%lu IP), %lu flows, %lu alerts\n", st.packets, st.ip_packets, st.flows,
               st.alerts);
  return kExitOk;
}

int inspect_live(const InspectArgs &a, inspect::InspectOptions opts, const std::string &filter) {
  CaptureOptions o;
  o.interfaces = a.interfaces;
  o.ingress = a.direction != "out";
  o.egress = a.direction != "in";
  o.filter = filter;
  for (const auto &i : a.interfaces)
    if (i.empty()) return report(Error{0, "-i '': an interface name cannot be empty", true});
  if (auto p = check_privileges("inspect -i", a.backend == "pcap" ? unsigned{kPrivNetRaw} : kPrivCapture); !p)
    return report(p.error());
  auto ifaces = resolve_interfaces(o.interfaces);
  if (!ifaces) return report(ifaces.error());
  auto f = build_filter_cancellable(o.filter, o.snaplen, ifaces->front().name, &g_stop);
  if (!f) return report(f.error());
  if (a.backend != "pcap") o.compiled = std::move(*f);
  auto alerts = open_output(a.alerts);
  if (!alerts) return report(alerts.error());
  auto flows = open_output(a.flows);
  if (!flows) return report(flows.error());
  opts.interfaces = *ifaces;
  opts.alerts = alerts->get();
  opts.flows = flows->get();
  inspect::Inspector inspector(opts);
  auto started = start_source(a.backend, o, *ifaces);
  if (!started) return report(started.error());
  std::unique_ptr<PacketSource> cap = std::move(*started);
  std::string names;
  for (const auto &i : *ifaces) names += (names.empty() ? "" : ", ") + i.name;
  std::fprintf(stderr, "bpftap: inspecting %s (%s)\n", names.c_str(), a.direction.c_str());
  auto status = [&] {
    uint64_t dropped = 0;
    if (auto s = cap->stats())
      for (const auto &i : *s) dropped += i.dropped;
    auto st = inspector.stats();
    std::fprintf(stderr, "bpftap: %lu packets, %lu flows (%lu active), %lu alerts, %lu dropped\n", st.packets,
                 st.flows, st.active_flows, st.alerts, dropped);
  };
  auto last = std::chrono::steady_clock::now();
  VanishWatch vanish(*ifaces);
  bool vanished = false;
  auto ran = cap->run(inspector, g_stop, [&] {
    if (a.status_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(a.status_interval)) {
      status();
      last = std::chrono::steady_clock::now();
    }
    return vanished = vanish.all_gone();
  });
  auto stats = cap->finish(inspector);
  auto written = inspector.finish();
  if (vanished) std::fprintf(stderr, "bpftap: every interface went away (%s)\n", vanish.names().c_str());
  status();
  if (!ran) return report(ran.error());
  if (!written) return report(written.error());
  if (vanished) return kExitFailure;
  return stats ? kExitOk : report(stats.error());
}

int run_inspect(const InspectArgs &a) {
  if (a.read.empty() == a.interfaces.empty()) return report(Error{0, "give either -r FILE or -i INTERFACE", true});
  inspect::InspectOptions opts;
  if (!a.config.empty()) {
    auto c = inspect::read_inspect_config(a.config, opts);
    if (!c) return report(c.error());
    opts = *c;
  }
  std::string filter;
  for (const auto &w : a.expression) filter += (filter.empty() ? "" : " ") + w;
  return a.read.empty() ? inspect_live(a, opts, filter) : inspect_file(a, opts, filter);
}

} // namespace

void add_inspect_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<InspectArgs>();
  auto *cmd = app.add_subcommand("inspect", "security inspection: flows, nDPI risks and behavioural detectors "
                                            "(EVE JSON alerts, Zeek conn.log JSON flows)");
  cmd->add_option("-r,--read", a->read, "read packets from a pcap or pcapng file");
  cmd->add_option("-i,--interface", a->interfaces, "trace live from this interface (names or globs, repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-Q,--direction", a->direction, "live: in, out or inout")->check(CLI::IsMember({"in", "out", "inout"}));
  cmd->add_option("--alerts", a->alerts, "alerts as EVE JSON lines to FILE ('-' = standard output, the default)");
  cmd->add_option("--flows", a->flows, "flows as Zeek conn.log JSON lines to FILE");
  cmd->add_option("--config", a->config, "detector thresholds (YAML)");
  cmd->add_option("--status-interval", a->status_interval, "live: a status line on stderr every this many seconds");
  cmd->add_option("--backend", a->backend, "live: ebpf (the default) or pcap (libpcap, as tcpdump; for comparisons)")
      ->check(CLI::IsMember({"ebpf", "pcap"}));
  cmd->add_option("expression", a->expression, "pcap-filter expression, as for tcpdump");
  cmd->callback([a, &ctx] {
    install_signal_handlers(false);
    ctx.exit_code = run_inspect(*a);
  });
}

} // namespace bpftap::cli
