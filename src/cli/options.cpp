#include "cli/options.h"

#include <map>
#include <sstream>

namespace bpftap::cli {
namespace {

std::string trim(const std::string &s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

} // namespace

CLI::Option *add_direction_option(CLI::App *cmd, std::string &direction, const std::string &what) {
  return cmd
      ->add_option("-Q,--direction", direction, what + kDirectionWords)
      ->transform(CLI::Validator(
          [](std::string &v) -> std::string {
            if (!parse_direction(v)) return v + " is not a direction: " + kDirectionWords;
            if (v == "both") v = "inout";
            return {};
          },
          ""))
      ->type_name("WORD");
}

CLI::Option *add_attach_option(CLI::App *cmd, std::string &attach, const std::string &help) {
  return cmd->add_option("--attach", attach, help)
      ->check(CLI::Validator(
          [](std::string &v) -> std::string {
            return parse_attach_mode(v) ? std::string() : v + " is not an attach mode: " + kAttachModeWords;
          },
          ""))
      ->type_name("MODE");
}

CLI::Validator interface_list_check() {
  return CLI::Validator(
      [](std::string &v) -> std::string {
        // getline would drop a trailing empty item ("a,"): split by hand.
        for (size_t from = 0;;) {
          size_t comma = v.find(',', from);
          if (trim(v.substr(from, comma - from)).empty())
            return v.empty() ? std::string("empty interface name") : "empty interface name in '" + v + "'";
          if (comma == std::string::npos) return {};
          from = comma + 1;
        }
      },
      "");
}

std::vector<std::string> split_interface_list(const std::vector<std::string> &given) {
  std::vector<std::string> out;
  for (const auto &g : given) {
    std::stringstream list(g);
    for (std::string item; std::getline(list, item, ',');)
      if (auto t = trim(item); !t.empty()) out.push_back(t);
  }
  return out;
}

} // namespace bpftap::cli
