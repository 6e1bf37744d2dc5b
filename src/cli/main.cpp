#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace {

size_t edit_distance(const std::string &a, const std::string &b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// "bpftap captur": CLI11 would only say that a subcommand is required. Like git, name the
// closest command (a prefix, or at most two edits away).
int unknown_command(CLI::App &app, const std::string &word) {
  std::string best;
  size_t best_distance = 3;
  for (const auto *sub : app.get_subcommands({})) {
    const std::string &name = sub->get_name();
    size_t d = name.starts_with(word) ? 0 : edit_distance(word, name);
    if (d < best_distance) best = name, best_distance = d;
  }
  if (best.empty())
    std::fprintf(stderr, "bpftap: unknown command '%s' (see bpftap --help)\n", word.c_str());
  else
    std::fprintf(stderr, "bpftap: unknown command '%s'; did you mean %s?\n", word.c_str(), best.c_str());
  return bpftap::cli::kExitBadInput;
}

// libbpf's own messages (verifier and BTF warnings, attach notes) through the one logger rather
// than libbpf's default fprintf: the agent's log gets them with its timestamps and levels (the
// agent sets its logger later; the callback looks it up each time), the other commands print
// them on stderr as their other warnings, "bpftap: warning: libbpf: ...", never on stdout (the
// packet stream of -w -). libbpf's INFO is debug here, its DEBUG trace: not shown by default.
int libbpf_to_logger(enum libbpf_print_level level, const char *format, va_list args) {
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  if (n < 0) return n;
  std::string_view msg(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  auto lvl = level == LIBBPF_WARN ? spdlog::level::warn : level == LIBBPF_INFO ? spdlog::level::debug : spdlog::level::trace;
  spdlog::log(lvl, "libbpf: {}", msg);
  return n;
}

} // namespace

int main(int argc, char **argv) {
  auto log = spdlog::stderr_color_mt("bpftap");
  log->set_pattern("bpftap: %l: %v");
  spdlog::set_default_logger(log);
  libbpf_set_print(libbpf_to_logger);
  using namespace bpftap::cli;
  CLI::App app{"bpftap: eBPF virtual TAP and packet tracer"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "bpftap " BPFTAP_VERSION);
  app.set_help_all_flag("--help-all", "the help of every command (the man page is made of it)");
  Context ctx;
  add_capture_command(app, ctx);
  add_cleanup_command(app, ctx);
  add_lab_command(app, ctx);
  add_mirror_command(app, ctx);
  add_inspect_command(app, ctx);
  add_agent_command(app, ctx);
  add_ctl_command(app, ctx);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto *sub : app.get_subcommands({})) known = known || sub->check_name(argv[1]);
    if (!known) return unknown_command(app, argv[1]);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::fprintf(stderr, "bpftap: %s\n", e.what());
    return kExitBadInput;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bpftap: %s\n", e.what());
    return kExitFailure;
  }
  return ctx.exit_code;
}
