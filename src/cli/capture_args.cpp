#include "cli/capture_args.h"

#include <fmt/format.h>

#include "bpf/bpftap.h"
#include "cli/options.h"

namespace bpftap::cli {

void add_capture_options(CLI::App *cmd, CaptureArgs &a) {
  cmd->add_option("-i,--interface", a.interfaces,
                  "interface name or glob, e.g. 'tap-*' (repeatable, or comma-separated); any = every Ethernet "
                  "interface of this network namespace")
      ->allow_extra_args(false)
      ->check(interface_list_check());
  cmd->add_flag("-D,--list-interfaces", a.list, "list the interfaces bpftap can capture on, and exit");
  cmd->add_option("-r,--read", a.read, "read packets from a pcap or pcapng file (print them, or -w them)");
  add_direction_option(cmd, a.direction);
  cmd->add_option("-s,--snapshot-length,--snaplen", a.snaplen, "bytes to keep of each packet (0 = 262144)")
      ->check(CLI::Range(0u, uint32_t(BPFTAP_MAX_SNAPLEN)));
  cmd->add_option("-c,--count", a.count, "stop after this many packets");
  cmd->add_option("-w,--write", a.write, "write packets to FILE ('-' = standard output)");
  cmd->add_option("--format", a.format, "file format")->check(CLI::IsMember({"pcapng", "pcap"}));
  cmd->add_option("-C", a.rotate_mb, "start a new file when the current one exceeds this many MB (1,000,000 bytes)");
  cmd->add_option("-G", a.rotate_seconds, "start a new file every this many seconds (FILE may hold strftime escapes)");
  cmd->add_option("-W", a.max_files, "with -C: keep this many files (ring); with -G: stop after this many files");
  cmd->add_option("-F", a.filter_file, "read the filter expression from FILE ('#' starts a comment)");
  cmd->add_option("-B,--buffer-size", a.buffer_kib, "kernel buffer size in KiB (power of two for the ring buffer; "
                                                    "default: 8-128 MiB by the snapshot length and interfaces); "
                                                    "copies of at most 512 bytes go to a ring of their own, "
                                                    "of 8 MiB or more, never bigger than this; above 8 MiB, "
                                                    "longer copies go to an 8 MiB ring and this buffer takes "
                                                    "what that one cannot hold while the reader is behind")
      ->check(CLI::Range(0u, 1u << 20));
  cmd->add_option("--buffer", a.buffer, "kernel-to-user transport: ring (ring buffers shared by all CPUs) or perf (per-CPU)")
      ->check(CLI::IsMember({"ring", "perf"}));
  add_attach_option(cmd, a.attach, "hook: auto (TCX if the kernel has it), tcx, or tc (clsact + cls_bpf)");
  cmd->add_option("--backend", a.backend, "ebpf (TC programs, the default) or pcap (libpcap, one handle per "
                                          "interface, as tcpdump; for comparisons)")
      ->check(CLI::IsMember({"ebpf", "pcap"}));
  auto *print = "printing (by tcpdump)";
  cmd->add_flag("-v", a.verbose, "more detail (-vv, -vvv)")->group(print);
  cmd->add_flag("-e", a.ether, "print the link-level header")->group(print);
  cmd->add_flag("-x", a.hex, "print each packet in hex (-xx: with its link-level header)")->group(print);
  cmd->add_flag("-X", a.hex_ascii, "print each packet in hex and ASCII (-XX: with its link-level header)")->group(print);
  cmd->add_flag("-A", a.ascii, "print each packet in ASCII")->group(print);
  cmd->add_flag("-q", a.quiet, "print less protocol information")->group(print);
  cmd->add_flag("-t", a.timestamps, "-t no time stamp, -tt seconds since the epoch, -ttt delta, -tttt date, "
                                   "-ttttt since the first packet")->group(print);
  cmd->add_flag("-n", a.numeric, "names are never resolved; -nn also keeps port numbers")->group(print);
  auto *compat = "accepted for tcpdump's sake (bpftap always behaves so)";
  cmd->add_flag("-l", a.line_buffered, "line-buffered output")->group(compat);
  cmd->add_flag("-U", a.unbuffered, "packet-buffered output")->group(compat);
  cmd->add_flag("-p", a.no_promisc, "no promiscuous mode (a TC hook sees what the interface handles)")->group(compat);
  cmd->add_option("expression", a.expression, "pcap-filter expression, as for tcpdump");
}

std::string check_capture_args(const CaptureArgs &a) {
  auto bad = [](int64_t v, int64_t most = INT64_MAX) { return v != kUnset && (v <= 0 || v > most); };
  if (bad(a.count)) return fmt::format("invalid packet count {}", a.count);
  if (bad(a.rotate_mb)) return fmt::format("invalid file size {}", a.rotate_mb);
  if (bad(a.rotate_seconds, UINT32_MAX)) return fmt::format("invalid number of seconds {}", a.rotate_seconds);
  if (bad(a.max_files, UINT32_MAX)) return fmt::format("invalid number of output files {}", a.max_files);
  if (a.rotate_mb > int64_t(UINT64_MAX / 1'000'000)) return fmt::format("invalid file size {}", a.rotate_mb);
  if (a.buffer_kib && a.buffer_kib < 4) return "-B: at least 4 KiB";
  if (a.buffer == "ring" && a.buffer_kib & (a.buffer_kib - 1))
    return "-B: the ring buffer size must be a power of two (KiB)";
  bool rotates = a.rotate_mb > 0 || a.rotate_seconds > 0;
  if (a.write.empty() && (rotates || a.max_files > 0)) return "-C, -G and -W need -w FILE";
  if (a.write == "-" && rotates) return "cannot rotate standard output (-w - with -C or -G)";
  if (a.list) return a.interfaces.empty() && a.read.empty() ? "" : "-D lists interfaces: give it alone";
  if (!a.read.empty() && !a.interfaces.empty()) return "-r reads a file: no -i with it";
  if (a.read.empty() && a.interfaces.empty())
    return "no interface given: -i NAME (or a glob, or any); bpftap capture -D lists them";
  return {};
}

std::vector<std::string> printer_args(const CaptureArgs &a) {
  std::vector<std::string> out{"-l", a.numeric >= 2 ? "-nn" : "-n"};
  auto repeat = [&](char c, int n, int most) {
    if (n > 0) out.push_back("-" + std::string(size_t(std::min(n, most)), c));
  };
  repeat('v', a.verbose, 3);
  repeat('x', a.hex, 2);
  repeat('X', a.hex_ascii, 2);
  repeat('t', a.timestamps, 5);
  if (a.ether) out.push_back("-e");
  if (a.ascii) out.push_back("-A");
  if (a.quiet) out.push_back("-q");
  return out;
}

} // namespace bpftap::cli
