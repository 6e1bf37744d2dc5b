#include "cli/commands.h"

namespace bpftap::cli {
void add_lab_command(CLI::App &app, Context &ctx) {
  auto *lab = app.add_subcommand("lab", "network-namespace lab (placeholder)");
  lab->callback([&ctx] { ctx.exit_code = kExitFailure; });
}
} // namespace bpftap::cli
