// One vocabulary for every command: direction words, interface lists, snapshot length, and
// the checks tcpdump makes of its numbers. Declared once here so capture, mirror and inspect
// accept the same spellings (and the old ones users already have in scripts).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace bpftap::cli {

// -Q / --direction: in, out, inout, and `both` (the agent's YAML word) as a synonym of inout.
CLI::Option *add_direction_option(CLI::App *cmd, std::string &direction, const std::string &what = "");
inline bool wants_ingress(const std::string &d) { return d != "out"; }
inline bool wants_egress(const std::string &d) { return d != "in"; }

// Repeated options and comma lists both give a list: "-i a -i 'b, c'" = {a, b, c}; spaces
// around names are dropped. An empty name (-i '') is refused with "what: empty interface name".
CLI::Validator interface_list_check();
std::vector<std::string> split_interface_list(const std::vector<std::string> &given);

} // namespace bpftap::cli
