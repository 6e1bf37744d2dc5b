// The counters of one interface in one session, defined once: the struct below and the table
// after it, which drives the merge of kept counters, the API's JSON, /metrics and the mirror
// CLI's printout. A new counter is a field here, a row in kCounters, and (for the mirror) the
// BPF field it is read from.
#pragma once

#include <cstdint>
#include <string>

#include "bpf/bpftap.h"
#include "capture/source.h"

namespace bpftap::agent {

struct InterfaceCounters {
  std::string name;
  std::string direction;  // "in" / "out" (mirror sessions); "" for captures, one entry per interface
  bool attached = false;
  uint64_t matched = 0, bytes = 0;  // filter (and rules) accepted
  uint64_t mirrored = 0, mirrored_bytes = 0, failed = 0, truncated = 0, cut_off = 0, sampled_out = 0, bypassed = 0;
  uint64_t captured = 0, dropped = 0;  // capture / inspect sessions
  // Captured but not in the interface's capture file (writing failed). With capture.files:
  // per-session, the packets skipped while the session's file failed; records that file itself
  // lost are the session's file_lost (SessionHealth).
  uint64_t unwritten = 0;
  // Capture / inspect sessions: matched, captured and dropped of each hook (the totals above are
  // their sums). The capture file, and so `unwritten`, is the interface's, both directions.
  InterfaceStats::Hooked in, out;
};

enum class CounterOf { All, Mirror, Capture };  // the sessions a counter exists in

struct Counter {
  uint64_t InterfaceCounters::*field;
  const char *key;     // in the API's JSON
  const char *words;   // in a printout: "12 cut off"
  const char *metric;  // Prometheus name
  const char *help;
  CounterOf of;
  __u64 bpftap_mirror_counters::*from_mirror = nullptr;  // where the mirror program counts it
  uint64_t InterfaceStats::Hooked::*hooked = nullptr;    // capture: its count in each hook
};

using Hooked = InterfaceStats::Hooked;
using MC = bpftap_mirror_counters;
inline constexpr Counter kCounters[] = {
    {&InterfaceCounters::matched, "matched", "matched", "bpftap_packets_matched_total",
     "Packets accepted by the session's filter (and rules).", CounterOf::All, &MC::matched, &Hooked::matched},
    {&InterfaceCounters::bytes, "bytes_matched", "bytes matched", "bpftap_bytes_matched_total",
     "Bytes of matched packets (mirror sessions).", CounterOf::Mirror, &MC::bytes},
    {&InterfaceCounters::mirrored, "mirrored", "mirrored", "bpftap_packets_mirrored_total",
     "Copies sent to the mirror target.", CounterOf::Mirror, &MC::mirrored},
    {&InterfaceCounters::mirrored_bytes, "bytes_mirrored", "bytes mirrored", "bpftap_bytes_mirrored_total",
     "Bytes of copies sent to the mirror target (after truncation).", CounterOf::Mirror, &MC::mirrored_bytes},
    {&InterfaceCounters::failed, "failed", "failed", "bpftap_mirror_failed_total",
     "Copies that could not be sent (originals are unaffected).", CounterOf::Mirror, &MC::failed},
    {&InterfaceCounters::truncated, "truncated", "truncated", "bpftap_packets_truncated_total",
     "Copies cut to the snaplen.", CounterOf::Mirror, &MC::truncated},
    {&InterfaceCounters::cut_off, "cut_off", "cut off", "bpftap_packets_cut_off_total",
     "Matched packets past their flow's cutoff.", CounterOf::Mirror, &MC::cut_off},
    {&InterfaceCounters::sampled_out, "sampled_out", "sampled out", "bpftap_packets_sampled_out_total",
     "Matched packets of flows not in the sample.", CounterOf::Mirror, &MC::sampled_out},
    {&InterfaceCounters::bypassed, "bypassed", "bypassed", "bpftap_packets_bypassed_total",
     "Matched packets of bypassed flows.", CounterOf::Mirror, &MC::bypassed},
    {&InterfaceCounters::captured, "captured", "captured", "bpftap_packets_captured_total",
     "Packets captured (written / inspected).", CounterOf::Capture, nullptr, &Hooked::captured},
    {&InterfaceCounters::dropped, "dropped", "dropped", "bpftap_packets_dropped_total",
     "Copies the kernel could not hand to bpftap (ring buffer full).", CounterOf::Capture, nullptr, &Hooked::dropped},
    {&InterfaceCounters::unwritten, "unwritten", "unwritten", "bpftap_packets_unwritten_total",
     "Captured packets that are not in their capture file (writing it failed).", CounterOf::Capture},
};

inline bool counts_in(const Counter &c, bool mirror) {
  return c.of == CounterOf::All || (c.of == CounterOf::Mirror) == mirror;
}

// A mirror hook's counters as the agent keeps them.
inline InterfaceCounters from_mirror(std::string name, uint8_t dir, bool attached, const bpftap_mirror_counters &m) {
  InterfaceCounters c{.name = std::move(name), .direction = dir == BPFTAP_DIR_IN ? "in" : "out", .attached = attached};
  for (const auto &k : kCounters)
    if (k.from_mirror) c.*(k.field) = m.*(k.from_mirror);
  return c;
}

// Counters of an interface that went away, added to what came after (or to older ones).
inline void add_counts(InterfaceCounters &to, const InterfaceCounters &c) {
  for (const auto &k : kCounters) to.*(k.field) += c.*(k.field);
  for (const auto &k : kCounters)
    if (k.hooked) to.in.*(k.hooked) += c.in.*(k.hooked), to.out.*(k.hooked) += c.out.*(k.hooked);
}

} // namespace bpftap::agent
