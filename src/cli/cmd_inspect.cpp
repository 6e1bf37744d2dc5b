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
#include "cli/interface_list.h"
#include "cli/options.h"
#include "capture/capture.h"
#include "capture/spec.h"
#include "filter/build.h"
#include "kernel/privileges.h"
#include "cli/source.h"
#include "inspect/inspector.h"
#include "inspect/pcap_file.h"
#include "inspect/redis_out.h"
#include "util/text.h"

namespace bpftap::cli {
namespace {


struct InspectArgs {
  std::string read;
  std::vector<std::string> interfaces;
  std::string direction = "inout";
  std::string alerts = "-";
  std::string flows;
  std::string flows_format = "json";
  std::string redis, redis_key = "bpftap", redis_mode = "list";
  std::string alert_pcap, ipfix;
  uint64_t alert_pcap_flow_bytes = 1 << 20, alert_pcap_budget = 64ull << 20;
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
  opts.offline = true;
  inspect::Inspector inspector(opts);
  // A damaged file still gets what was read inspected, then a one-line error.
  auto read = (*file)->read_all(inspector);
  auto written = inspector.finish();
  if (!read) return report(read.error());  // the alerts and flows read so far are written
  if (!written) return report(written.error());
  auto st = inspector.stats();
  std::fprintf(stderr, "bpftap: %lu packets (%lu IP), %lu flows, %lu alerts\n", st.packets, st.ip_packets, st.flows,
               st.alerts);
  if (!a.alert_pcap.empty())
    std::fprintf(stderr, "bpftap: alert pcaps: %lu files, %lu packets, %lu packets over the memory budget\n",
                 st.alert_pcap.files, st.alert_pcap.packets_written, st.alert_pcap.packets_over_budget);
  return kExitOk;
}

int inspect_live(const InspectArgs &a, inspect::InspectOptions opts, const std::string &filter) {
  auto patterns = expand_any(split_interface_list(a.interfaces));
  if (!patterns) return report(patterns.error());
  const auto dirs = directions(a.direction);
  // As an agent inspect session's (capture/spec.h).
  CaptureOptions o = to_capture_options({.interfaces = *patterns, .ingress = dirs.ingress, .egress = dirs.egress, .filter = filter});
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
  auto last_expiry = last;
  VanishWatch vanish(*ifaces);
  bool vanished = false;
  auto ran = cap->run(inspector, g_stop, [&] {
    // Idle flows end on wall-clock time: on a quiet link no later packet would end them.
    if (std::chrono::steady_clock::now() - last_expiry >= std::chrono::milliseconds(250)) {
      inspector.expire(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count()));
      last_expiry = std::chrono::steady_clock::now();
    }
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
  opts.flows_format = a.flows_format == "tsv" ? inspect::FlowFormat::Tsv : inspect::FlowFormat::Json;
  if (!a.config.empty()) {
    auto c = inspect::read_inspect_config(a.config, opts);
    if (!c) return report(c.error());
    opts = *c;
  }
  if (!a.alert_pcap.empty()) {
    opts.alert_pcap = {a.alert_pcap, a.alert_pcap_flow_bytes, a.alert_pcap_budget};
    if (auto p = inspect::AlertPcaps::open(opts.alert_pcap); !p) return report(p.error());
  }
  if (!a.ipfix.empty()) {
    auto x = inspect::IpfixExporter::open(a.ipfix);
    if (!x) return report(x.error());
    opts.ipfix = std::move(*x);
  }
  std::string filter = join_words(a.expression);
  // The EVE stream also to Redis (Suricata's filetype: redis): its own thread, bounded queue.
  std::unique_ptr<inspect::RedisPublisher> redis;
  if (!a.redis.empty()) {
    auto ro = inspect::parse_redis_address(a.redis);
    if (!ro) return report(ro.error());
    ro->key = a.redis_key;
    ro->channel = a.redis_mode == "channel";
    redis = std::make_unique<inspect::RedisPublisher>(*ro);
    opts.eve_tap = [r = redis.get()](std::string line) { r->push(std::move(line)); };
  }
  int rc = a.read.empty() ? inspect_live(a, opts, filter) : inspect_file(a, opts, filter);
  if (opts.ipfix)
    std::fprintf(stderr, "bpftap: ipfix: %lu records exported, %lu errors\n", opts.ipfix->records(), opts.ipfix->errors());
  if (redis) {
    auto st = redis->close();  // sends what is still queued
    std::fprintf(stderr, "bpftap: redis: %lu EVE lines sent, %lu dropped\n", st.sent, st.dropped);
  }
  return rc;
}

} // namespace

void add_inspect_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<InspectArgs>();
  auto *cmd = app.add_subcommand("inspect", "security inspection: flows, nDPI risks and behavioural detectors "
                                            "(Suricata EVE JSON, Zeek conn.log)");
  cmd->add_option("-r,--read", a->read, "read packets from a pcap or pcapng file");
  cmd->add_option("-i,--interface", a->interfaces, "trace live from these interfaces (names or globs, repeatable or "
                                                   "comma-separated; any = every Ethernet interface)")
      ->allow_extra_args(false);
  add_direction_option(cmd, a->direction, "live: ");
  cmd->add_option("--alerts", a->alerts,
                  "EVE JSON (Suricata 7): alert and flow events to FILE ('-' = standard output, the default)");
  cmd->add_option("--flows", a->flows, "flows as Zeek's conn.log to FILE");
  cmd->add_option("--flows-format", a->flows_format, "conn.log as json (JSON lines) or tsv (Zeek's tab-separated logs)")
      ->check(CLI::IsMember({"json", "tsv"}));
  cmd->add_option("--redis", a->redis, "the EVE stream also to Redis at HOST:PORT (as Suricata's filetype: redis)");
  cmd->add_option("--redis-key", a->redis_key, "Redis list or channel name (default bpftap)");
  cmd->add_option("--redis-mode", a->redis_mode, "list (RPUSH, the default) or channel (PUBLISH)")
      ->check(CLI::IsMember({"list", "channel"}));
  cmd->add_option("--alert-pcap", a->alert_pcap,
                  "for every alerted flow, its packets to DIR/<flow_id>_<community_id>.pcapng (as Suricata's conditional pcap-log)");
  cmd->add_option("--alert-pcap-flow-bytes", a->alert_pcap_flow_bytes, "frame bytes kept per flow (default 1 MiB)");
  cmd->add_option("--alert-pcap-budget", a->alert_pcap_budget,
                  "frame bytes held in memory for flows that have not alerted yet, all flows together (default 64 MiB)");
  cmd->add_option("--ipfix", a->ipfix, "every flow also as IPFIX records (RFC 7011, UDP) to a collector at HOST:PORT");
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
