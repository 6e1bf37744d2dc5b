// bpftap mirror: an in-kernel virtual TAP session to a local monitor port or a remote sensor.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "agent/counters.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/source.h"
#include "mirror/mirror.h"
#include "kernel/privileges.h"
#include "mirror/rules.h"
#include "mirror/spec.h"
#include "mirror/vxlan.h"
#include "util/text.h"

namespace bpftap::cli {
namespace {


struct MirrorArgs {
  std::vector<std::string> from;
  std::string direction = "inout";
  std::string to;
  std::string vxlan;
  std::optional<int64_t> vni;
  int64_t vxlan_port = kDefaultVxlanPort;
  std::string local;
  uint32_t snaplen = 0;
  uint32_t sample = 0;
  uint64_t flow_cutoff = 0;
  uint32_t flow_table = 65536;
  std::vector<std::string> rules;
  std::string rules_file;
  unsigned stats_interval = 0;
  std::string attach = "auto";
  std::vector<std::string> expression;
};

void print_stats(const MirrorSession &s) {
  auto stats = s.stats();
  if (!stats) {
    std::fprintf(stderr, "bpftap: %s\n", stats.error().message().c_str());
    return;
  }
  // "tap-vm1 in: 5 matched, 5 mirrored, 0 failed, ... (7 packets seen, 490 bytes matched, ...)":
  // the agent's counters (agent/counters.h), packets first, bytes in the parenthesis.
  for (const auto &st : *stats) {
    auto c = agent::from_mirror(st.name, st.dir, true, st.counters);
    std::string packets, bytes;
    for (const auto &k : agent::kCounters) {
      if (!agent::counts_in(k, true)) continue;
      std::string &to = std::string_view(k.key).starts_with("bytes_") ? bytes : packets;
      to += fmt::format(", {} {}", c.*(k.field), k.words);
    }
    fmt::print(stderr, "{} {}: {} ({} packets seen{})\n", c.name, c.direction, packets.substr(2), st.counters.seen, bytes);
  }
  if (auto t = s.target_stats(); t && t->copies)
    fmt::print(stderr, "target {}: {} copies, {} failed\n", s.target(), t->copies, t->failed);
}

// --rule texts, then the rules file's (re-read on SIGHUP).
Result<std::vector<std::string>> rule_texts(const MirrorArgs &a) {
  std::vector<std::string> texts = a.rules;
  if (!a.rules_file.empty()) {
    auto from_file = read_rules_file(a.rules_file);
    if (!from_file) return tl::unexpected(from_file.error());
    for (const auto &r : *from_file) texts.push_back(format_rule(r));
  }
  return texts;
}

// The flags as the description an agent session's YAML gives (mirror/spec.h).
Result<MirrorSpec> mirror_spec(const MirrorArgs &a) {
  MirrorSpec s;
  s.interfaces = split_interface_list(a.from);
  const auto dirs = directions(a.direction);
  s.ingress = dirs.ingress;
  s.egress = dirs.egress;
  s.target = MirrorTarget{a.to, a.vxlan, a.vni, a.vxlan_port, a.local};
  s.filter = join_words(a.expression);
  auto rules = rule_texts(a);
  if (!rules) return tl::unexpected(rules.error());
  s.rules = std::move(*rules);
  s.snaplen = a.snaplen;
  s.sample = a.sample;
  s.flow_cutoff = a.flow_cutoff;
  s.flow_table = a.flow_table;
  s.attach = attach_mode(a.attach);
  return s;
}

int run_mirror(const MirrorArgs &a) {
  auto spec = mirror_spec(a);
  if (!spec) return report(spec.error());
  auto opts = to_mirror_options(*spec);
  if (!opts) return report(opts.error());
  MirrorOptions &o = *opts;

  if (auto p = check_privileges("mirror", kPrivCapture); !p) return report(p.error());
  o.cancel = &g_stop;
  auto session = MirrorSession::start(o);
  if (!session) return report(session.error());
  std::string names;
  for (const auto &s : (*session)->sources()) names += (names.empty() ? "" : ", ") + s.name;
  std::fprintf(stderr, "bpftap: mirroring %s (%s) to %s%s\n", names.c_str(), a.direction.c_str(),
               (*session)->target().c_str(), o.rules.empty() ? "" : fmt::format(", {} rules", o.rules.size()).c_str());
  if (!(*session)->mtu_note().empty()) std::fprintf(stderr, "bpftap: warning: %s\n", (*session)->mtu_note().c_str());
  auto last = std::chrono::steady_clock::now();
  // The target or every source deleted: nothing more can be mirrored (the target's index is in
  // the program): said, and the session ends with its counters, exit 1.
  VanishWatch sources((*session)->sources());
  VanishWatch target({InterfaceInfo{(*session)->target_device(), (*session)->target_ifindex(), 1, 0}},
                     false);
  std::string vanished;
  while (!g_stop) {
    poll(nullptr, 0, 100);
    if (g_stats.exchange(false)) print_stats(**session);  // SIGUSR1, as capture
    if (target.all_gone()) vanished = "the target " + target.names() + " went away: nothing more can be mirrored";
    else if (sources.all_gone()) vanished = "every source went away (" + sources.names() + ")";
    if (!vanished.empty()) break;
    if (g_reload.exchange(false)) {
      // SIGHUP: re-read the rules; a bad file keeps the rules that run.
      auto fresh = rule_texts(a).and_then(parse_rules);
      if (!fresh) {
        std::fprintf(stderr, "bpftap: rules not reloaded: %s\n", fresh.error().message().c_str());
      } else if (auto r = (*session)->set_rules(*fresh); !r) {
        std::fprintf(stderr, "bpftap: rules not reloaded: %s\n", r.error().message().c_str());
      } else {
        std::fprintf(stderr, "bpftap: rules reloaded: %zu rules\n", fresh->size());
      }
    }
    if (a.stats_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(a.stats_interval)) {
      print_stats(**session);
      last = std::chrono::steady_clock::now();
    }
  }
  (*session)->detach();
  if (!vanished.empty()) std::fprintf(stderr, "bpftap: %s\n", vanished.c_str());
  print_stats(**session);
  return vanished.empty() ? kExitOk : kExitFailure;
}

} // namespace

void add_mirror_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<MirrorArgs>();
  auto *cmd = app.add_subcommand("mirror", "virtual TAP: clone selected packets in the kernel to a monitor "
                                           "interface or to a remote sensor over VXLAN");
  cmd->add_option("-i,--from,--interface", a->from, "source interfaces: names or globs (repeatable, or comma-separated)")
      ->required()
      ->allow_extra_args(false)
      ->check(interface_list_check());
  add_direction_option(cmd, a->direction);
  cmd->add_option("--to", a->to, "local target interface (e.g. mon0)");
  cmd->add_option("--vxlan", a->vxlan, "remote sensor address: copies go there in VXLAN");
  cmd->add_option("--vni", a->vni, fmt::format("VXLAN network identifier, 0-{}", kMaxVxlanVni));
  cmd->add_option("--vxlan-port", a->vxlan_port, "VXLAN UDP destination port (default 4789)");
  cmd->add_option("--local", a->local, "source address of the VXLAN packets (default: the kernel's choice)");
  cmd->add_option("-s,--snaplen,--snapshot-length", a->snaplen, "cut copies to this many bytes in the kernel (0 = whole packets)");
  cmd->add_option("--sample", a->sample, "mirror 1 in N flows (whole flows; non-IP packets 1 in N at random)");
  cmd->add_option("--flow-cutoff", a->flow_cutoff,
                  "mirror only the first BYTES of payload of each flow (and every SYN/FIN/RST)");
  cmd->add_option("--flow-table", a->flow_table, "flows tracked for --flow-cutoff (LRU, default 65536)");
  cmd->add_option("--rule", a->rules, "'N accept|reject [proto P] [src CIDR] [dst CIDR] [sport A[-B]] [dport A[-B]]' (repeat for more rules)")->allow_extra_args(false);
  cmd->add_option("--rules-file", a->rules_file, "rules, one per line; re-read on SIGHUP");
  cmd->add_option("--stats-interval", a->stats_interval, "print the counters every this many seconds");
  add_attach_option(cmd, a->attach,
                    std::string("hook: ") + kAttachModeWords +
                        " (tc: tc's mirred action makes the copies unless -s, without uncloning the original; "
                        "left attached by a crash until `bpftap cleanup`)");
  cmd->add_option("expression", a->expression, "pcap-filter expression selecting what is mirrored");
  cmd->callback([a, &ctx] {
    install_signal_handlers(true);
    ctx.exit_code = run_mirror(*a);
  });
}

} // namespace bpftap::cli
