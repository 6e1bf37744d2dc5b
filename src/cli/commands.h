// Each subcommand registers itself on the CLI11 app; its callback stores the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace bpftap::cli {

// Exit codes shared by every command (tcpdump-like): 0 success, 1 run-time failure,
// 2 bad input (unknown interface, bad filter, bad option or config).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

struct Context {
  int exit_code = kExitOk;
};

void add_capture_command(CLI::App &app, Context &ctx);
void add_cleanup_command(CLI::App &app, Context &ctx);
void add_lab_command(CLI::App &app, Context &ctx);
void add_mirror_command(CLI::App &app, Context &ctx);
void add_inspect_command(CLI::App &app, Context &ctx);
void add_agent_command(CLI::App &app, Context &ctx);
void add_ctl_command(CLI::App &app, Context &ctx);

} // namespace bpftap::cli
