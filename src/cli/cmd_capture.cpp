#include "cli/commands.h"

namespace bpftap::cli {
void add_capture_command(CLI::App &app, Context &ctx) {
  auto *cap = app.add_subcommand("capture", "capture packets (placeholder)");
  cap->callback([&ctx] { ctx.exit_code = kExitFailure; });
}
void add_cleanup_command(CLI::App &app, Context &ctx) {
  auto *c = app.add_subcommand("cleanup", "remove leftovers (placeholder)");
  c->callback([&ctx] { ctx.exit_code = kExitFailure; });
}
} // namespace bpftap::cli
