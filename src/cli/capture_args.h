// bpftap capture's options, as tcpdump spells them, and tcpdump's refusals of bad numbers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace bpftap::cli {

// "Not given" for the numbers tcpdump refuses at 0 or below (-1 is a value to refuse, not a default).
inline constexpr int64_t kUnset = INT64_MIN;

struct CaptureArgs {
  std::vector<std::string> interfaces;  // -i, repeated or comma lists; "any"
  std::string direction = "inout";
  uint32_t snaplen = 0;
  int64_t count = kUnset;    // 0 and below are refused, as tcpdump does
  std::string write, read, filter_file;
  std::string format = "pcapng";
  int64_t rotate_mb = kUnset, rotate_seconds = kUnset, max_files = kUnset;
  std::string buffer = "ring";
  uint32_t buffer_kib = 0;   // 0: sized from the snapshot length (default_buffer_bytes)
  std::string attach = "auto";
  std::string backend = "ebpf";
  bool list = false;
  // Passed to tcpdump, which prints (sinks/tcpdump_printer.h).
  int verbose = 0, numeric = 0, hex = 0, hex_ascii = 0, timestamps = 0;
  bool ether = false, ascii = false, quiet = false;
  // Accepted and ignored: bpftap never resolves names (-n is always in effect for the lookups
  // tcpdump would make), flushes every batch (-U, -l), and a TC hook sees every packet the
  // interface handles whatever its promiscuity (-p).
  bool unbuffered = false, line_buffered = false, no_promisc = false;
  std::vector<std::string> expression;
};

void add_capture_options(CLI::App *cmd, CaptureArgs &a);
// tcpdump's checks: "invalid packet count 0" and the like; empty when the arguments are fine.
std::string check_capture_args(const CaptureArgs &a);
// The options tcpdump prints with: -l, -n or -nn, and -v -e -x -X -A -q -t as given.
std::vector<std::string> printer_args(const CaptureArgs &a);

} // namespace bpftap::cli
