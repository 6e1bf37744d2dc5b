// bpftap agent: the long-running vTAP service (see src/agent/agent.h and the README).

#include <cstdio>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "cli/commands.h"
#include "cli/source.h"

namespace bpftap::cli {
namespace {

// --check-config (the unit's ExecStartPre, and a package test): parse and check the file as
// the agent would, touch nothing.
int check_config(const std::string &config) {
  auto cfg = agent::load_agent_config(config);
  if (!cfg) return report(cfg.error());
  std::printf("%s: valid, %zu sessions, API on %s\n", config.c_str(), cfg->sessions.size(), cfg->api.listen.c_str());
  return kExitOk;
}

int run_agent(const std::string &config) {
  // main()'s logger is the multi-threaded kind: the API's workers, the background starter, the
  // sessions' readers and the main loop all log. The agent's lines carry their time.
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
  auto check = std::make_shared<bool>(false);
  cmd->add_option("--config", *config, "agent configuration (YAML)");
  cmd->add_flag("--check-config", *check, "check the configuration and exit (0: valid; 2: the error, in one line)");
  cmd->callback([config, check, &ctx] {
    if (*check) {
      ctx.exit_code = check_config(*config);
      return;
    }
    install_signal_handlers(true);
    ctx.exit_code = run_agent(*config);
  });
}

} // namespace bpftap::cli
