#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char **argv) {
  using namespace bpftap::cli;
  CLI::App app{"bpftap: eBPF virtual TAP and packet tracer"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "bpftap 0.1.0");
  Context ctx;
  add_capture_command(app, ctx);
  add_cleanup_command(app, ctx);
  add_lab_command(app, ctx);
  add_mirror_command(app, ctx);
  add_inspect_command(app, ctx);
  add_agent_command(app, ctx);
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
