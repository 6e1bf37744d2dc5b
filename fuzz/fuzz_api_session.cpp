// The agent's API input: a session body (strict JSON, then the config's checks) and the text
// helpers that carry kernel bytes out (escape_bytes must always give printable UTF-8).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/config.h"
#include "util/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  auto s = bpftap::agent::parse_session_json(text, "request");
  if (s) {
    // What was accepted is printable and round-trips.
    if (!bpftap::printable_utf8(s->name)) std::abort();
    auto again = bpftap::agent::parse_session_json(bpftap::agent::session_to_json(*s), "again");
    if (!again || !(*again == *s)) std::abort();
  }
  std::string e = bpftap::escape_bytes(text);
  if (!bpftap::printable_utf8(e)) std::abort();
  (void)bpftap::constant_time_equal(text, e);
  return 0;
}
