// bpftap mirror: an in-kernel virtual TAP session to a local monitor port.
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/mirror.h"

namespace bpftap::cli {
namespace {

std::atomic<bool> g_mirror_stop{false};

struct MirrorArgs {
  std::string from;
  std::string direction = "inout";
  std::string to;
  unsigned stats_interval = 0;
  std::string attach = "auto";
  std::vector<std::string> expression;
};

void print_stats(const std::vector<MirrorStats> &stats) {
  for (const auto &s : stats)
    fmt::print(stderr, "{} {}: {} matched, {} mirrored, {} failed ({} packets seen)\n", s.name,
               s.dir == BPFTAP_DIR_IN ? "in" : "out", s.counters.matched, s.counters.mirrored, s.counters.failed,
               s.counters.seen);
}

int run_mirror(const MirrorArgs &a) {
  MirrorOptions o;
  std::stringstream list(a.from);
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty()) o.from.push_back(item);
  o.ingress = a.direction != "out";
  o.egress = a.direction != "in";
  o.to = a.to;
  o.attach = a.attach == "tcx" ? AttachMode::Tcx : a.attach == "tc" ? AttachMode::Tc : AttachMode::Auto;
  for (const auto &w : a.expression) o.filter += (o.filter.empty() ? "" : " ") + w;
  auto session = MirrorSession::start(o);
  if (!session) {
    std::fprintf(stderr, "bpftap: %s\n", session.error().message().c_str());
    return session.error().bad_input ? kExitBadInput : kExitFailure;
  }
  std::string names;
  for (const auto &s : (*session)->sources()) names += (names.empty() ? "" : ", ") + s.name;
  std::fprintf(stderr, "bpftap: mirroring %s (%s) to %s\n", names.c_str(), a.direction.c_str(), a.to.c_str());
  auto last = std::chrono::steady_clock::now();
  while (!g_mirror_stop) {
    poll(nullptr, 0, 100);
    if (a.stats_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(a.stats_interval)) {
      if (auto st = (*session)->stats()) print_stats(*st);
      last = std::chrono::steady_clock::now();
    }
  }
  (*session)->detach();
  auto st = (*session)->stats();
  if (!st) {
    std::fprintf(stderr, "bpftap: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  print_stats(*st);
  return kExitOk;
}

} // namespace

void add_mirror_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<MirrorArgs>();
  auto *cmd = app.add_subcommand("mirror", "virtual TAP: clone matching packets in the kernel to a monitor interface");
  cmd->add_option("--from", a->from, "source interfaces: names or globs, comma-separated")->required();
  cmd->add_option("-Q,--direction", a->direction, "in, out or inout")->check(CLI::IsMember({"in", "out", "inout"}));
  cmd->add_option("--to", a->to, "local target interface (e.g. mon0)")->required();
  cmd->add_option("--stats-interval", a->stats_interval, "print the counters every this many seconds");
  cmd->add_option("--attach", a->attach, "hook: auto, tcx or tc")->check(CLI::IsMember({"auto", "tcx", "tc"}));
  cmd->add_option("expression", a->expression, "pcap-filter expression selecting what is mirrored");
  cmd->callback([a, &ctx] {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_mirror_stop = true; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    ctx.exit_code = run_mirror(*a);
  });
}

} // namespace bpftap::cli
