// One vocabulary for every command: direction words, attach modes, interface lists. Declared
// once here so capture, mirror and inspect accept the same spellings (and the old ones users
// already have in scripts); the words themselves are kernel/hook_words.h's, which the agent's
// config reads too.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kernel/hook_words.h"

namespace bpftap::cli {

// -Q / --direction: in, out, inout, and `both` (the agent's YAML word) as a synonym of inout
// (the option's value is then "inout"). directions() reads a value it has checked.
CLI::Option *add_direction_option(CLI::App *cmd, std::string &direction, const std::string &what = "");
inline Directions directions(const std::string &checked) { return parse_direction(checked).value_or(Directions{}); }

// --attach: auto, tcx or tc. attach_mode() reads a value it has checked.
CLI::Option *add_attach_option(CLI::App *cmd, std::string &attach, const std::string &help);
inline AttachMode attach_mode(const std::string &checked) { return parse_attach_mode(checked).value_or(AttachMode::Auto); }

// Repeated options and comma lists both give a list: "-i a -i 'b, c'" = {a, b, c}; spaces
// around names are dropped. An empty name (-i '') is refused with "what: empty interface name".
CLI::Validator interface_list_check();
std::vector<std::string> split_interface_list(const std::vector<std::string> &given);

} // namespace bpftap::cli
