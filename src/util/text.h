// Text that comes from outside (the API, config files, the kernel's interface names): UTF-8
// checks, an escaped form that is always valid UTF-8 (for JSON and Prometheus labels), and a
// comparison of secrets whose time does not depend on where they differ.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bpftap {

// Is `s` well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)?
bool valid_utf8(std::string_view s);

// Valid UTF-8 without control characters (C0, DEL, C1): what a name, path or expression given
// to bpftap may hold.
bool printable_utf8(std::string_view s);

// `s` as printable UTF-8: bytes that are not (invalid UTF-8, control characters, and the
// backslash itself) become \xNN, so distinct byte strings stay distinct and readable. Interface
// names are bytes to the kernel; this is how they appear in JSON and metrics.
std::string escape_bytes(std::string_view s);

// Words joined by one space: an expression given as several arguments (tcpdump's habit).
std::string join_words(const std::vector<std::string> &words);

// a == b in time that depends on their lengths only (bearer tokens).
bool constant_time_equal(std::string_view a, std::string_view b);

} // namespace bpftap
