// Running helper programs (ip, sysctl) without a shell: fork/exec via posix_spawn, with
// stdout and stderr captured so failures can be reported in one line.
#pragma once

#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap::lab {

struct CommandResult {
  int status = 0; // exit code, or 128 + signal number if the program was killed
  std::string out;
  std::string err;
};

// Runs argv (argv[0] is looked up in PATH, then in /usr/sbin, /sbin, /usr/bin, /bin) with
// stdin from /dev/null. An error only when the program cannot be started; a non-zero exit
// is reported in CommandResult::status.
Result<CommandResult> run_command(const std::vector<std::string> &argv);

// Like run_command, but a non-zero exit is an error "`ip ...` failed: <first stderr line>".
// Returns stdout.
Result<std::string> run_checked(const std::vector<std::string> &argv);

// "ip -n bt-host link add ..." for messages (arguments with spaces are single-quoted).
std::string format_command(const std::vector<std::string> &argv);

} // namespace bpftap::lab
