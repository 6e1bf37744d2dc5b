// tcpdump's -w/-C/-G/-W: file naming and rotation, replicated from tcpdump 4.99
// (MakeFilename() and dump_packet_and_trunc() in tcpdump.c).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sinks/pcapng_writer.h"

namespace bpftap {

enum class FileFormat { Pcapng, Pcap };

struct RotationOptions {
  std::string path;            // -w; "-" = stdout (no rotation then)
  FileFormat format = FileFormat::Pcapng;
  uint64_t rotate_bytes = 0;   // -C, in bytes (tcpdump's unit is 1,000,000 bytes); 0 = off
  uint32_t rotate_seconds = 0; // -G; 0 = off. path may then hold strftime(3) escapes
  uint32_t max_files = 0;      // -W; 0 = unlimited
  // Where the -G clock starts and what names the first file, in seconds since the epoch;
  // 0 = now. tcpdump reads the clock at startup; later files use packet timestamps.
  time_t start_time = 0;
};

// The name of a savefile, as tcpdump's MakeFilename(): with -G the path goes through
// strftime() with the local time of `when`; with -C a counter is appended, zero-padded to
// the digits of max_files - 1 when -W is given (-W 10: NAME0..NAME9; without -W: NAME,
// NAME1, NAME2...). Count 0 with no padding appends nothing.
std::string rotated_name(const RotationOptions &opt, unsigned count, time_t when);

class RotatingFileSink final : public PacketSink {
public:
  // Opens the first file right away (as tcpdump), so an unwritable path fails here.
  static Result<std::unique_ptr<RotatingFileSink>> open(RotationOptions opt,
                                                         std::vector<InterfaceInfo> ifaces);

  // Rotates first if due (-G by the packet's timestamp, then -C if the file is already
  // larger than rotate_bytes). After finished(), packets are dropped.
  Result<> write(const Packet &pkt) override;
  Result<> flush() override;
  // Joins the current file and every later one (slot: the next index, or beyond: gaps get
  // unnamed entries, as slots are never reused).
  Result<> add_interface(uint32_t slot, const InterfaceInfo &info) override;
  // Flushes and closes the current file (after its statistics).
  Result<> close();
  // Where the interface counters come from: asked before each file is closed (rotation or
  // the end), and written as pcapng interface statistics blocks at the end of that file.
  void set_statistics(std::function<std::vector<InterfaceTotals>()> counters) { counters_ = std::move(counters); }

  // -G with -W (and no -C): max_files files are complete, the capture should stop (tcpdump
  // exits 0). The packet that would have started the next file was not written.
  bool finished() const { return finished_; }
  // The file being written ("-" for stdout); empty once finished.
  std::string current_path() const { return file_ ? file_->name() : std::string(); }

private:
  RotatingFileSink(RotationOptions opt, std::vector<InterfaceInfo> ifaces)
      : opt_(std::move(opt)), ifaces_(std::move(ifaces)) {}
  // Closes the current file and starts `path` with fresh headers.
  Result<> reopen(const std::string &path);
  // Writes the statistics (if any) and closes the current file.
  Result<> close_file();

  RotationOptions opt_;
  std::vector<InterfaceInfo> ifaces_;
  std::unique_ptr<CaptureFileWriter> file_;
  std::function<std::vector<InterfaceTotals>()> counters_;
  time_t file_time_ = 0;    // tcpdump's Gflag_time: when the last -G rotation happened
  unsigned time_files_ = 0; // tcpdump's Gflag_count: -G rotations so far
  unsigned size_count_ = 0; // tcpdump's Cflag_count: the counter in the name
  bool finished_ = false;
};

} // namespace bpftap
