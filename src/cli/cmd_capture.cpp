// bpftap capture: tcpdump-like capture from many interfaces at once, and bpftap cleanup.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "kernel/attach.h"
#include "capture/capture.h"
#include "filter/build.h"
#include "kernel/netns.h"
#include "kernel/privileges.h"
#include "cli/source.h"
#include "mirror/vxlan.h"
#include "sinks/rotating_sink.h"
#include "sinks/text_sink.h"

namespace bpftap::cli {
namespace {

struct CaptureArgs {
  std::vector<std::string> interfaces;
  std::string direction = "inout";
  uint32_t snaplen = 0;
  int64_t count = 0;
  std::string write;
  std::string format = "pcapng";
  int64_t rotate_mb = 0;
  int64_t rotate_seconds = 0;
  int64_t max_files = 0;
  std::string buffer = "ring";
  uint32_t buffer_kib = 0;  // 0: sized from the snapshot length (default_buffer_bytes)
  std::string attach = "auto";
  std::string backend = "ebpf";
  std::vector<std::string> expression;
};

void print_summary(const std::vector<InterfaceStats> &stats) {
  InterfaceStats total;
  for (const auto &s : stats) {
    std::fprintf(stderr, "%s: %lu packets captured, %lu packets received by filter, %lu packets dropped by kernel\n",
                 s.name.c_str(), s.captured, s.matched, s.dropped);
    total.captured += s.captured;
    total.matched += s.matched;
    total.dropped += s.dropped;
  }
  std::fprintf(stderr, "%lu packets captured\n%lu packets received by filter\n%lu packets dropped by kernel\n",
               total.captured, total.matched, total.dropped);
}

int run_capture(const CaptureArgs &a, const CLI::App &cmd) {
  // As tcpdump: a count, size, period or number of files given must be positive.
  for (auto [opt, v, what] : {std::tuple{"-c", a.count, "packet count"}, {"-C", a.rotate_mb, "file size"},
                              {"-G", a.rotate_seconds, "rotation seconds"}, {"-W", a.max_files, "number of files"}})
    if (cmd.count(opt) && v < 1) return report(Error{0, fmt::format("{} {}: invalid {} (must be at least 1)", opt, v, what), true});
  for (const auto &i : a.interfaces)
    if (i.empty()) return report(Error{0, "-i '': an interface name cannot be empty", true});
  CaptureOptions o;
  o.interfaces = a.interfaces;
  o.ingress = a.direction != "out";
  o.egress = a.direction != "in";
  o.snaplen = a.snaplen == 0 ? BPFTAP_MAX_SNAPLEN : a.snaplen;
  o.count = static_cast<uint64_t>(a.count);
  for (const auto &w : a.expression) o.filter += (o.filter.empty() ? "" : " ") + w;
  o.output = a.buffer == "perf" ? BPFTAP_OUT_PERFBUF : BPFTAP_OUT_RINGBUF;
  o.attach = a.attach == "tcx" ? AttachMode::Tcx : a.attach == "tc" ? AttachMode::Tc : AttachMode::Auto;
  o.buffer_bytes = a.buffer_kib * 1024u;
  if (a.buffer_kib && a.buffer_kib < 4) return report(Error{0, "-B: at least 4 KiB", true});
  if (a.buffer == "ring" && (o.buffer_bytes & (o.buffer_bytes - 1)))
    return report(Error{0, "-B: the ring buffer size must be a power of two (KiB)", true});
  if (a.write.empty() && (a.rotate_mb || a.rotate_seconds || a.max_files))
    return report(Error{0, "-C, -G and -W need -w FILE", true});
  if (a.write == "-" && (a.rotate_mb || a.rotate_seconds))
    return report(Error{0, "cannot rotate standard output (-w - with -C or -G)", true});

  if (auto p = check_privileges("capture", a.backend == "pcap" ? unsigned{kPrivNetRaw} : kPrivCapture); !p)
    return report(p.error());
  // Check interfaces and filter before creating any file or attaching anything (as tcpdump).
  // The filter is compiled once, in a child process Ctrl-C stops.
  auto ifaces = resolve_interfaces(o.interfaces);
  if (!ifaces) return report(ifaces.error());
  for (auto &i : *ifaces) i.snaplen = o.snaplen;
  if (a.backend != "pcap") {
    auto f = build_filter_cancellable(o.filter, o.snaplen, ifaces->front().name, &g_stop);
    if (!f) return report(f.error());
    o.compiled = std::move(*f);
  } else if (auto f = build_filter_cancellable(o.filter, o.snaplen, ifaces->front().name, &g_stop); !f) {
    return report(f.error());
  }

  std::unique_ptr<PacketSink> sink;
  RotatingFileSink *files = nullptr;
  if (a.write.empty()) {
    sink = std::make_unique<TextSink>(stdout, *ifaces);
  } else {
    RotationOptions r;
    r.path = a.write;
    r.format = a.format == "pcap" ? FileFormat::Pcap : FileFormat::Pcapng;
    r.rotate_bytes = static_cast<uint64_t>(a.rotate_mb) * 1'000'000ull;
    r.rotate_seconds = static_cast<uint32_t>(a.rotate_seconds);
    r.max_files = static_cast<uint32_t>(a.max_files);
    auto f = RotatingFileSink::open(r, *ifaces);
    if (!f) {
      Error e = f.error();
      e.bad_input = true;  // an output path that cannot be written
      return report(e);
    }
    files = f->get();
    sink = std::move(*f);
  }

  auto started = start_source(a.backend, o, *ifaces);
  if (!started) return report(started.error());
  std::unique_ptr<PacketSource> cap = std::move(*started);
  std::string names;
  for (const auto &i : *ifaces) names += (names.empty() ? "" : ", ") + i.name;
  std::fprintf(stderr, "bpftap: listening on %s (%s), link-type EN10MB (Ethernet), snapshot length %u bytes\n",
               names.c_str(), a.direction.c_str(), o.snaplen);
  // As tcpdump, the capture ends when its interfaces are gone (with the summary, exit 1); one
  // of several going is said and the others go on.
  VanishWatch vanish(*ifaces);
  bool vanished = false;
  auto ran = cap->run(*sink, g_stop, [&] { return (files && files->finished()) || (vanished = vanish.all_gone()); });
  auto stats = cap->finish(*sink);
  if (files)
    if (auto c = files->close(); !c && ran) ran = tl::unexpected(c.error());
  if (vanished) std::fprintf(stderr, "bpftap: every interface went away (%s)\n", vanish.names().c_str());
  if (stats) print_summary(*stats);
  if (!ran) return report(ran.error());
  if (vanished) return kExitFailure;
  return stats ? kExitOk : report(stats.error());
}

} // namespace

void add_capture_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<CaptureArgs>();
  auto *cmd = app.add_subcommand("capture", "capture packets from interfaces with eBPF (tcpdump-like)");
  cmd->add_option("-i,--interface", a->interfaces, "interface name or glob, e.g. 'tap-*' (repeatable)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("-Q,--direction", a->direction, "in, out or inout")->check(CLI::IsMember({"in", "out", "inout"}));
  cmd->add_option("-s,--snapshot-length", a->snaplen, "bytes to keep of each packet (0 = 262144)")
      ->check(CLI::Range(0u, BPFTAP_MAX_SNAPLEN));
  cmd->add_option("-c,--count", a->count, "stop after this many packets");
  cmd->add_option("-w,--write", a->write, "write packets to FILE ('-' = standard output)");
  cmd->add_option("--format", a->format, "file format")->check(CLI::IsMember({"pcapng", "pcap"}));
  cmd->add_option("-C", a->rotate_mb, "start a new file when the current one exceeds this many MB (1,000,000 bytes)");
  cmd->add_option("-G", a->rotate_seconds, "start a new file every this many seconds (FILE may hold strftime escapes)");
  cmd->add_option("-W", a->max_files, "with -C: keep this many files (ring); with -G: stop after this many files");
  cmd->add_option("-B,--buffer-size", a->buffer_kib, "kernel buffer size in KiB (power of two for the ring buffer; default: "
                                              "8-64 MiB by the snapshot length)")
      ->check(CLI::Range(0u, 1u << 20));
  cmd->add_option("--buffer", a->buffer, "kernel-to-user transport: ring (one ring buffer) or perf (per-CPU)")
      ->check(CLI::IsMember({"ring", "perf"}));
  cmd->add_option("--attach", a->attach, "hook: auto (TCX if the kernel has it), tcx, or tc (clsact + cls_bpf)")
      ->check(CLI::IsMember({"auto", "tcx", "tc"}));
  cmd->add_option("--backend", a->backend, "ebpf (TC programs, the default) or pcap (libpcap, one handle per "
                                           "interface, as tcpdump; for comparisons)")
      ->check(CLI::IsMember({"ebpf", "pcap"}));
  cmd->add_option("expression", a->expression, "pcap-filter expression, as for tcpdump");
  cmd->callback([a, &ctx, cmd] {
    install_signal_handlers(false);
    ctx.exit_code = run_capture(*a, *cmd);
  });
}

void add_cleanup_command(CLI::App &app, Context &ctx) {
  auto *cmd = app.add_subcommand("cleanup", "remove hooks, qdiscs and VXLAN devices a killed bpftap left in this network namespace");
  auto netns = std::make_shared<std::string>();
  cmd->add_option("--netns", *netns, "clean up in this `ip netns` namespace instead (an agent session's netns)");
  cmd->callback([&ctx, netns] {
    // Without these, the interfaces' filters and programs cannot be seen: "nothing to clean up"
    // would be a guess.
    if (auto p = check_privileges("cleanup", kPrivNetAdmin | kPrivSysAdmin); !p) {
      std::fprintf(stderr, "bpftap: %s: it cannot see what a killed bpftap left\n", p.error().message().c_str());
      ctx.exit_code = kExitFailure;
      return;
    }
    auto ns = Netns::open(*netns);
    if (!ns) {
      ctx.exit_code = report(ns.error());
      return;
    }
    auto scope = NetnsScope::enter(*ns);
    if (!scope) {
      ctx.exit_code = report(scope.error());
      return;
    }
    auto r = cleanup_leftovers();
    if (!r) {
      ctx.exit_code = report(r.error());
      return;
    }
    auto vx = cleanup_vxlan_devices();
    if (!vx) {
      ctx.exit_code = report(vx.error());
      return;
    }
    r->removed.insert(r->removed.end(), vx->begin(), vx->end());
    for (const auto &line : r->removed) std::printf("removed %s\n", line.c_str());
    for (const auto &line : r->skipped) std::fprintf(stderr, "bpftap: %s\n", line.c_str());
    if (r->removed.empty()) std::printf("nothing to clean up\n");
    ctx.exit_code = kExitOk;
  });
}

} // namespace bpftap::cli
