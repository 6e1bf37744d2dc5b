// The words users give for hooks, read once for every command and the agent: directions
// (-Q, the agent's `direction:`) and attach modes (--attach).
#pragma once

#include <optional>
#include <string_view>

#include "kernel/attach.h"

namespace bpftap {

struct Directions {
  bool ingress = true;
  bool egress = true;
};

// in, out, inout, and both (the agent's word) as a synonym of inout; nullopt for anything else.
std::optional<Directions> parse_direction(std::string_view word);
inline constexpr const char *kDirectionWords = "in, out or inout (both = inout)";
// The word for a pair of hooks: in, out or inout.
const char *direction_word(bool ingress, bool egress);

// auto (TCX if the kernel has it), tcx, tc; nullopt for anything else.
std::optional<AttachMode> parse_attach_mode(std::string_view word);
const char *attach_mode_word(AttachMode m);  // the word parse_attach_mode takes
inline constexpr const char *kAttachModeWords = "auto, tcx or tc";

} // namespace bpftap
