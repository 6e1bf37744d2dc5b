// Reading a YAML file for bpftap's configs: a missing file or a syntax error is bad input
// naming the file (and the line). Header-only: yaml-cpp is linked by its users only.
#pragma once

#include <string>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "util/error.h"

namespace bpftap {

inline Result<YAML::Node> load_yaml_file(const std::string &path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile &) {
    return bad_input(fmt::format("{}: cannot be read", path));
  } catch (const YAML::Exception &e) {
    return bad_input(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
}

} // namespace bpftap
