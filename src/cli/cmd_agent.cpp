// bpftap agent: the long-running vTAP service (see src/agent/agent.h and the README).

#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "cli/commands.h"
#include "cli/source.h"

namespace bpftap::cli {
namespace {

int run_agent(const std::string &config) {
  // The multi-threaded kind: the API's workers, the background starter, the sessions' readers
  // and the main loop all log.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bpftap"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  auto agent = agent::Agent::start({config, &g_stop});
  if (!agent) {
    std::fprintf(stderr, "bpftap: %s\n", agent.error().message().c_str());
    return agent.error().bad_input ? kExitBadInput : kExitFailure;
  }
  auto r = (*agent)->run(g_stop, g_reload);
  agent->reset();  // detach everything before saying goodbye
  if (!r) {
    std::fprintf(stderr, "bpftap: %s\n", r.error().message().c_str());
    return kExitFailure;
  }
  spdlog::info("stopped; nothing of bpftap's is attached");
  return kExitOk;
}

} // namespace

void add_agent_command(CLI::App &app, Context &ctx) {
  auto config = std::make_shared<std::string>("/etc/bpftap/agent.yaml");
  auto *cmd = app.add_subcommand("agent", "the long-running vTAP service: sessions from a config, auto-attach, "
                                          "REST API, metrics");
  cmd->add_option("--config", *config, "agent configuration (YAML)");
  cmd->callback([config, &ctx] {
    install_signal_handlers(true);
    ctx.exit_code = run_agent(*config);
  });
}

} // namespace bpftap::cli
