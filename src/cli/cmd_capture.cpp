// bpftap capture: tcpdump-like capture from many interfaces at once, and bpftap cleanup.
// tcpdump's habits hold: -D, -i any, -r FILE, -F, -c/-C/-G/-W with its refusals, SIGUSR1,
// and text output printed by the system's tcpdump (see sinks/tcpdump_printer.h).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "capture/capture.h"
#include "capture/spec.h"
#include "cli/any_watch.h"
#include "cli/capture_args.h"
#include "cli/commands.h"
#include "cli/interface_list.h"
#include "cli/options.h"
#include "cli/read_file.h"
#include "filter/build.h"
#include "kernel/netns.h"
#include "kernel/privileges.h"
#include "cli/source.h"
#include "filter/build.h"
#include "kernel/attach.h"
#include "kernel/netns.h"
#include "mirror/vxlan.h"
#include "sinks/rotating_sink.h"
#include "sinks/tcpdump_printer.h"
#include "sinks/text_sink.h"
#include "util/text.h"

extern char **environ;

namespace bpftap::cli {
namespace {

void print_stats(const std::vector<InterfaceStats> &stats, bool per_interface) {
  InterfaceStats total;
  for (const auto &s : stats) {
    if (per_interface)
      std::fprintf(stderr, "%s: %lu packets captured, %lu packets received by filter, %lu packets dropped by kernel\n",
                   s.name.c_str(), s.captured, s.matched, s.dropped);
    total.captured += s.captured;
    total.matched += s.matched;
    total.dropped += s.dropped;
  }
  std::fprintf(stderr, "%lu packets captured\n%lu packets received by filter\n%lu packets dropped by kernel\n",
               total.captured, total.matched, total.dropped);
}

uint64_t now_ns() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_nsec);
}

// The counters written as pcapng ISBs. The sink asks for them from inside a write (a rotation),
// while the capture holds the lock its stats() takes: so they are refreshed between reading
// rounds (at most ~200 ms old at a rotation) and set from finish()'s exact ones at the end.
class StatsCache {
public:
  explicit StatsCache(std::vector<InterfaceInfo> ifaces) : ifaces_(std::move(ifaces)), start_ns_(now_ns()) {}
  void set(const std::vector<InterfaceStats> &stats) {
    std::lock_guard lock(mu_);
    counters_.clear();
    for (const auto &s : stats)
      for (uint32_t i = 0; i < ifaces_.size(); i++)
        if (ifaces_[i].ifindex == s.ifindex) counters_.push_back({i, s.matched, s.dropped, start_ns_});
  }
  void add(uint32_t slot, const InterfaceInfo &info) {
    std::lock_guard lock(mu_);
    if (ifaces_.size() <= slot) ifaces_.resize(slot + 1);
    ifaces_[slot] = info;
  }
  std::vector<InterfaceTotals> get() const {
    std::lock_guard lock(mu_);
    return counters_;
  }

private:
  mutable std::mutex mu_;
  std::vector<InterfaceInfo> ifaces_;
  uint64_t start_ns_;
  std::vector<InterfaceTotals> counters_;
};

// `| head`: once the reader of our output has gone (EPIPE, from tcpdump's pipe or stdout), the
// first failure stops the capture and every later packet is dropped, so finish() can still
// detach and count: tcpdump's quiet exit with its summary.
class ReaderGoneGuard final : public PacketSink {
public:
  explicit ReaderGoneGuard(PacketSink &inner) : inner_(inner) {}
  Result<> write(const Packet &pkt) override { return gone_ ? Result<>{} : check(inner_.write(pkt)); }
  Result<> flush() override { return gone_ ? Result<>{} : check(inner_.flush()); }
  Result<> add_interface(uint32_t slot, const InterfaceInfo &info) override { return inner_.add_interface(slot, info); }
  bool gone() const { return gone_; }

private:
  Result<> check(Result<> r) {
    if (!r && r.error().code == EPIPE) gone_ = true;
    return r;
  }
  PacketSink &inner_;
  bool gone_ = false;
};

// Runs `tcpdump -r FILE ...` in our place and returns its exit code: printing a saved file is
// exactly what tcpdump does, with every option it has.
int exec_tcpdump_read(const CaptureArgs &a, const std::string &filter) {
  std::vector<std::string> args{"tcpdump", "-r", a.read};
  auto p = printer_args(a);
  args.insert(args.end(), p.begin(), p.end());
  if (a.count > 0) args.insert(args.end(), {"-c", std::to_string(a.count)});
  if (!filter.empty()) args.push_back(filter);
  std::vector<char *> argv;
  argv.reserve(args.size() + 1);
  for (auto &s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "tcpdump", nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return report(Error{rc, "run tcpdump to print " + a.read + " (install tcpdump, or use -w)"});
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGPIPE ? kExitOk : kExitFailure;
  return WEXITSTATUS(status);
}

Result<std::unique_ptr<RotatingFileSink>> open_files(const CaptureArgs &a, const std::vector<InterfaceInfo> &ifaces) {
  RotationOptions r;
  r.path = a.write;
  r.format = a.format == "pcap" ? FileFormat::Pcap : FileFormat::Pcapng;
  r.rotate_bytes = a.rotate_mb > 0 ? uint64_t(a.rotate_mb) * 1'000'000ull : 0;
  r.rotate_seconds = a.rotate_seconds > 0 ? uint32_t(a.rotate_seconds) : 0;
  r.max_files = a.max_files > 0 ? uint32_t(a.max_files) : 0;
  if (r.format == FileFormat::Pcap && ifaces.size() > 1)
    std::fprintf(stderr, "bpftap: warning: pcap has no interface names; %zu interfaces go into %s "
                         "indistinguishably (use pcapng)\n", ifaces.size(), a.write.c_str());
  auto f = RotatingFileSink::open(r, ifaces);
  if (!f) {
    Error e = f.error();
    e.bad_input = true;  // an output path that cannot be written
    return tl::unexpected(e);
  }
  return f;
}

int run_read(const CaptureArgs &a, const std::string &filter) {
  if (a.write.empty()) return exec_tcpdump_read(a, filter);
  auto iface = saved_file_interface(a.read);
  if (!iface) return report(iface.error());
  if (a.snaplen) iface->snaplen = a.snaplen;
  auto files = open_files(a, {*iface});
  if (!files) return report(files.error());
  auto r = copy_saved_file(a.read, filter, a.count > 0 ? uint64_t(a.count) : 0, **files, g_stop);
  auto c = (*files)->close();
  if (!r) return report(r.error());
  if (!c) return report(c.error());
  std::fprintf(stderr, "bpftap: %lu of %lu packets of %s written\n", r->written, r->read, a.read.c_str());
  return kExitOk;
}

// A sink that prints: through tcpdump, or with bpftap's one-line description if there is none.
Result<std::unique_ptr<PacketSink>> open_printer(const CaptureArgs &a, const std::vector<InterfaceInfo> &ifaces,
                                                 TcpdumpPrinter **printer) {
  auto t = TcpdumpPrinter::start(printer_args(a), ifaces);
  if (t) {
    *printer = t->get();
    return std::unique_ptr<PacketSink>(std::move(*t));
  }
  if (t.error().code != ENOENT) return tl::unexpected(t.error());
  std::fprintf(stderr, "bpftap: warning: no tcpdump to print with; one short line per packet (-v, -e, -X and -A "
                       "need tcpdump)\n");
  return std::unique_ptr<PacketSink>(std::make_unique<TextSink>(stdout, ifaces));
}

int run_live(const CaptureArgs &a, const std::string &filter) {
  auto given = split_interface_list(a.interfaces);
  bool any = std::find(given.begin(), given.end(), "any") != given.end();
  auto patterns = expand_any(given);
  if (!patterns) return report(patterns.error());
  const auto dirs = directions(a.direction);
  // As an agent capture session's (capture/spec.h), then what only the command has.
  CaptureOptions o = to_capture_options({.interfaces = *patterns, .ingress = dirs.ingress, .egress = dirs.egress,
                                         .filter = filter, .snaplen = a.snaplen, .attach = attach_mode(a.attach)});
  o.count = a.count > 0 ? uint64_t(a.count) : 0;
  o.output = a.buffer == "perf" ? BPFTAP_OUT_PERFBUF : BPFTAP_OUT_RINGBUF;
  o.buffer_bytes = a.buffer_kib * 1024u;

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
  TcpdumpPrinter *printer = nullptr;
  if (a.write.empty()) {
    auto p = open_printer(a, *ifaces, &printer);
    if (!p) return report(p.error());
    sink = std::move(*p);
  } else {
    auto f = open_files(a, *ifaces);
    if (!f) return report(f.error());
    files = f->get();
    sink = std::move(*f);
  }
  StatsCache cache(*ifaces);
  if (files) files->set_statistics([&cache] { return cache.get(); });

  auto started = start_source(a.backend, o, *ifaces);
  if (!started) return report(started.error());
  std::unique_ptr<PacketSource> cap = std::move(*started);
  std::string names;
  for (const auto &i : *ifaces) names += (names.empty() ? "" : ", ") + i.name;
  std::fprintf(stderr, "bpftap: listening on %s (%s), link-type EN10MB (Ethernet), snapshot length %u bytes\n",
               names.c_str(), a.direction.c_str(), o.snaplen);
  // -i any: interfaces created from now on join (eBPF backend: the pcap one opens its handles once).
  std::unique_ptr<AnyWatcher> watcher;
  if (any) {
    auto *c = dynamic_cast<Capture *>(cap.get());
    auto w = c ? AnyWatcher::open(*c, *ifaces, o.snaplen,
                                  [&](uint32_t slot, const InterfaceInfo &info) {
                                    cache.add(slot, info);
                                    return sink->add_interface(slot, info);
                                  })
               : Result<std::unique_ptr<AnyWatcher>>(tl::unexpected(Error{0, "the pcap backend opens its handles once"}));
    if (w) watcher = std::move(*w);
    else std::fprintf(stderr, "bpftap: warning: -i any: interfaces created later are not captured (%s)\n",
                      w.error().message().c_str());
  }
  uint64_t last_refresh = 0;
  bool many = ifaces->size() > 1 || any;
  // As tcpdump, the capture ends when its interfaces are gone (with the summary, exit 1); one
  // of several going is said and the others go on (-i any: ones created later join).
  VanishWatch vanish(*ifaces);
  bool vanished = false;
  ReaderGoneGuard guarded(*sink);
  auto ran = cap->run(guarded, g_stop, [&] {
    if (watcher) watcher->poll();
    bool usr1 = g_stats.exchange(false);
    if (usr1 || (files && now_ns() - last_refresh > 200'000'000ull)) {
      if (auto s = cap->stats(); s) {
        cache.set(*s);
        if (usr1) print_stats(*s, many);
      }
      last_refresh = now_ns();
    }
    return (files && files->finished()) || (!any && (vanished = vanish.all_gone()));
  });
  auto stats = cap->finish(guarded);
  bool reader_gone = guarded.gone();
  // finish() detaches first, then repeats the sink's failure: the counters are still there.
  if (!stats && reader_gone) stats = cap->stats();
  if (stats && watcher) stats->insert(stats->end(), watcher->departed().begin(), watcher->departed().end());
  if (stats) cache.set(*stats);
  Result<> closed = files ? files->close() : printer ? printer->close() : Result<>{};
  if (!closed && ran && closed.error().code != EPIPE) ran = tl::unexpected(closed.error());
  if (vanished) std::fprintf(stderr, "bpftap: every interface went away (%s)\n", vanish.names().c_str());
  if (stats) print_stats(*stats, many);
  if (!ran && !reader_gone) return report(ran.error());
  if (vanished) return kExitFailure;
  return stats ? kExitOk : report(stats.error());
}

Result<std::string> filter_text(const CaptureArgs &a) {
  std::string filter = join_words(a.expression);
  if (a.filter_file.empty()) return filter;
  if (!filter.empty())
    std::fprintf(stderr, "bpftap: warning: -F %s given: the expression on the command line is ignored (as tcpdump)\n",
                 a.filter_file.c_str());
  std::ifstream in(a.filter_file);
  if (!in) return tl::unexpected(Error{errno, "-F " + a.filter_file, true});
  // tcpdump's read_infile(): the whole file is the expression; '#' starts a comment.
  std::string text, line;
  while (std::getline(in, line)) text += line.substr(0, line.find('#')) + " ";
  return text;
}

int run_capture(const CaptureArgs &a) {
  if (auto bad = check_capture_args(a); !bad.empty()) return report(Error{0, bad, true});
  if (a.list) {
    auto l = capturable_interfaces();
    if (!l) return report(l.error());
    print_interface_list(stdout, *l);
    return kExitOk;
  }
  auto filter = filter_text(a);
  if (!filter) return report(filter.error());
  if (!a.read.empty()) return run_read(a, *filter);
  return run_live(a, *filter);
}

} // namespace

void add_capture_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<CaptureArgs>();
  auto *cmd = app.add_subcommand("capture", "capture packets from interfaces with eBPF (tcpdump-like)");
  add_capture_options(cmd, *a);
  cmd->callback([a, &ctx] {
    install_signal_handlers(false);
    ctx.exit_code = run_capture(*a);
  });
}

void add_cleanup_command(CLI::App &app, Context &ctx) {
  auto *cmd = app.add_subcommand("cleanup", "remove hooks, qdiscs and VXLAN devices a killed bpftap left in this network namespace, and killed agents' pinned TCX links");
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
    // Pins first, and whatever fails after: they are not per network namespace (a killed agent's,
    // wherever its links are), and a failed tc dump must not leave a dead agent's links running.
    auto pins = cleanup_dead_agent_pins();
    if (!pins) {
      ctx.exit_code = report(pins.error());
      return;
    }
    auto print = [](const CleanupReport &r) {
      for (const auto &line : r.removed) std::printf("removed %s\n", line.c_str());
      for (const auto &line : r.skipped) std::fprintf(stderr, "bpftap: %s\n", line.c_str());
    };
    auto r = cleanup_leftovers();
    if (!r) {
      print(*pins);
      ctx.exit_code = report(r.error());
      return;
    }
    auto vx = cleanup_vxlan_devices();
    if (!vx) {
      print(*pins);
      print(*r);
      ctx.exit_code = report(vx.error());
      return;
    }
    r->removed.insert(r->removed.end(), vx->begin(), vx->end());
    r->removed.insert(r->removed.end(), pins->removed.begin(), pins->removed.end());
    r->skipped.insert(r->skipped.end(), pins->skipped.begin(), pins->skipped.end());
    print(*r);
    if (r->removed.empty()) std::printf("nothing to clean up\n");
    ctx.exit_code = kExitOk;
  });
}

} // namespace bpftap::cli
