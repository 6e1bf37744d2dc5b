#include "kernel/hook_words.h"

namespace bpftap {

std::optional<Directions> parse_direction(std::string_view word) {
  if (word == "in") return Directions{true, false};
  if (word == "out") return Directions{false, true};
  if (word == "inout" || word == "both") return Directions{true, true};
  return std::nullopt;
}

const char *direction_word(bool ingress, bool egress) {
  return ingress && egress ? "inout" : ingress ? "in" : "out";
}

std::optional<AttachMode> parse_attach_mode(std::string_view word) {
  if (word == "auto") return AttachMode::Auto;
  if (word == "tcx") return AttachMode::Tcx;
  if (word == "tc") return AttachMode::Tc;
  return std::nullopt;
}

const char *attach_mode_word(AttachMode m) {
  return m == AttachMode::Tcx ? "tcx" : m == AttachMode::Tc ? "tc" : "auto";
}

} // namespace bpftap
