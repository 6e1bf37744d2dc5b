// bpftap lab up|down|status [--prefix P]
//
// up:     builds the lab; if the complete lab already exists it says so and exits 0; if only
//         part of it exists it exits 1 (run `lab down` first). A failed step removes
//         everything created so far and exits 1 naming the command.
// down:   removes the lab's namespaces; exits 0 also when there is nothing to remove.
// status: prints the namespaces and interfaces; exit 0 if complete, 1 if absent or partial.
// A bad --prefix exits 2.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/source.h"
#include "lab/lab.h"
#include "kernel/privileges.h"

namespace bpftap::cli {
namespace {

void print_error(const char *cmd, const Error &e) {
  std::fprintf(stderr, "bpftap lab %s: %s\n", cmd, e.message().c_str());
}

int run_up(const lab::LabOptions &opts) {
  const auto names = lab::lab_names(opts.prefix);
  auto r = lab::lab_up(opts);
  if (!r) {
    print_error("up", r.error());
    return kExitFailure;
  }
  if (*r == lab::UpOutcome::already_up)
    fmt::print("lab {}: already up, nothing changed\n", names.prefix);
  else
    fmt::print("{}\n", lab::describe(names));
  return kExitOk;
}

int run_down(const lab::LabOptions &opts) {
  auto r = lab::lab_down(opts);
  if (!r) {
    print_error("down", r.error());
    return kExitFailure;
  }
  if (r->empty()) {
    fmt::print("lab {}: nothing to remove\n", opts.prefix);
  } else {
    std::string list;
    for (const auto &ns : *r) list += " " + ns;
    fmt::print("lab {}: removed{}\n", opts.prefix, list);
  }
  return kExitOk;
}

int run_status(const lab::LabOptions &opts) {
  auto r = lab::lab_status(opts);
  if (!r) {
    print_error("status", r.error());
    return kExitFailure;
  }
  fmt::print("{}", lab::format_status(*r));
  return r->complete() ? kExitOk : kExitFailure;
}

} // namespace

void add_lab_command(CLI::App &app, Context &ctx) {
  auto *lab = app.add_subcommand("lab", "network-namespace lab imitating a hypervisor host");
  lab->require_subcommand(1);
  auto opts = std::make_shared<lab::LabOptions>();

  struct Action {
    const char *name;
    const char *help;
    int (*run)(const lab::LabOptions &);
  };
  static constexpr Action kActions[] = {
      {"up", "create the lab namespaces, bridge and veths", run_up},
      {"down", "remove the lab (safe when nothing exists)", run_down},
      {"status", "show the lab; exit 0 only if it is complete", run_status},
  };
  for (const auto &a : kActions) {
    auto *sub = lab->add_subcommand(a.name, a.help);
    sub->add_option("--prefix", opts->prefix,
                    fmt::format("namespace name prefix, [a-z0-9-], at most {} chars", lab::kMaxPrefixLen))
        ->capture_default_str();
    sub->callback([&ctx, opts, a] {
      if (auto v = lab::validate_prefix(opts->prefix); !v) {
        std::fprintf(stderr, "bpftap lab %s: %s\n", a.name, v.error().message().c_str());
        ctx.exit_code = kExitBadInput;
        return;
      }
      if (auto p = check_privileges(fmt::format("lab {}", a.name), kPrivSysAdmin | kPrivNetAdmin); !p) {
        ctx.exit_code = report(p.error());
        return;
      }
      ctx.exit_code = a.run(*opts);
    });
  }
}

} // namespace bpftap::cli
