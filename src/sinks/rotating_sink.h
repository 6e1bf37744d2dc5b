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
  // "" = tcpdump's names (the counter at the end: NAME.pcapng3). Else the counter goes before
  // this extension, after a dash (PATH-3.pcapng with path PATH and extension .pcapng), so file
  // dialogs that filter by extension (Wireshark's) still show every file: the agent's names.
  std::string extension;
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
  // Flushes and closes the current file, after its statistics (what it cannot write then is
  // lost()).
  Result<> close();
  // Where the interface counters come from: asked before each file is closed (rotation or
  // the end), and written as pcapng interface statistics blocks at the end of that file.
  void set_statistics(std::function<std::vector<InterfaceTotals>()> counters) { counters_ = std::move(counters); }

  // After a failed write or flush: tries again. The records kept from the failure are written
  // if they can be; if the file was deleted meanwhile (to free space), they are given up and a
  // new file is started under its name; if the disk is full and this is a ring of files
  // (rotate_bytes and max_files > 1), the oldest other file of the ring is deleted first, as
  // the ring would have done at its next turn.
  Result<> recover();
  // logrotate moved or deleted the file: start a new one under its name (SIGHUP). Returns
  // whether it did.
  Result<bool> reopen_if_moved();
  // Records that never reached a file and never will (their file was given up, or no file was
  // open to take them). Records kept for a retry are not counted.
  uint64_t lost() const { return lost_; }

  // -G with -W (and no -C): max_files files are complete, the capture should stop (tcpdump
  // exits 0). The packet that would have started the next file was not written.
  bool finished() const { return finished_; }
  // The file being written ("-" for stdout); empty once finished.
  std::string current_path() const { return file_ ? file_->name() : std::string(); }

private:
  RotatingFileSink(RotationOptions opt, std::vector<InterfaceInfo> ifaces)
      : opt_(std::move(opt)), ifaces_(std::move(ifaces)) {}
  // Closes the current file and starts `path` with fresh headers. The error of closing the old
  // one (its pending records are then lost) is returned after the new one is open.
  Result<> reopen(const std::string &path);
  // Writes the statistics (if any) and closes the current file.
  Result<> close_file();
  // Deletes the ring's file (not the current one) written longest ago; false if there is none.
  bool remove_oldest();

  RotationOptions opt_;
  std::vector<InterfaceInfo> ifaces_;
  std::unique_ptr<CaptureFileWriter> file_;
  std::function<std::vector<InterfaceTotals>()> counters_;
  time_t file_time_ = 0;    // tcpdump's Gflag_time: when the last -G rotation happened
  unsigned time_files_ = 0; // tcpdump's Gflag_count: -G rotations so far
  unsigned size_count_ = 0; // tcpdump's Cflag_count: the counter in the name
  bool finished_ = false;
  uint64_t lost_ = 0;
};

} // namespace bpftap
