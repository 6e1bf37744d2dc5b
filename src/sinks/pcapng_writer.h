// Capture-file writers: pcapng (this file) and classic pcap (pcap_writer.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sinks/packet.h"

namespace bpftap {

// What both file formats share. A record's own bytes (block header, padding, trailer) are built
// in a userspace buffer; the packet's bytes are copied beside them when small, and referred to
// where they are when large (a 64 KB frame then goes from the kernel's ring buffer to the file
// with no copy in user space: Packet::stable). The buffer and the references are
// handed to the OS with writev(2) once they add up to a large write, and at every flush().
class CaptureFileWriter : public PacketSink {
public:
  CaptureFileWriter(const CaptureFileWriter &) = delete;
  CaptureFileWriter &operator=(const CaptureFileWriter &) = delete;
  // Best effort: flushes and closes an owned fd, dropping errors. Call close() to see them.
  ~CaptureFileWriter() override;

  Result<> flush() override;
  // A new interface at index ifaces().size() (pcapng: an IDB mid-file, which the format allows).
  // (PacketSink's add_interface(slot, info) stays visible beside it.)
  using PacketSink::add_interface;
  virtual Result<> add_interface(const InterfaceInfo &info) {
    ifaces_.push_back(info);
    return {};
  }
  // Interface statistics (pcapng ISBs; classic pcap has no place for them and writes nothing).
  virtual Result<> write_stats(const std::vector<InterfaceTotals> &, uint64_t /*ts_ns*/) { return {}; }
  // Flushes, then closes the fd if this writer opened it. Later writes fail.
  Result<> close();
  // Bytes of the file so far, pending ones included (what tcpdump -C compares).
  uint64_t size() const { return drained_ + buf_.size() + referenced_; }
  const std::string &name() const { return name_; }
  // Records not in the file yet (buffered, or kept after a failed write for a retry).
  uint64_t pending_records() const { return pending_records_; }
  // Forgets them (their file is being given up); returns how many there were.
  uint64_t discard_pending();
  // The descriptor written to (-1 through stdio), for fstat.
  int fd() const { return fp_ ? -1 : fd_; }

protected:
  // fp != nullptr: write through stdio; otherwise write(2) to fd.
  CaptureFileWriter(std::string name, FILE *fp, int fd, bool owns_fd,
                    std::vector<InterfaceInfo> ifaces);

  // open(2) for the path factories; returns the fd.
  static Result<int> open_file(const std::string &path);

  const std::vector<InterfaceInfo> &ifaces() const { return ifaces_; }
  // The snaplen put in headers: the largest one (0 = unlimited wins). pcapng could hold one
  // per interface, but libpcap (so tcpdump) refuses files whose IDB snaplens differ.
  uint32_t header_snaplen() const;
  // File and block headers are appended here (copied).
  std::vector<uint8_t> &buffer() { return buf_; }
  // Appends a packet's bytes: referred to when large and `stable` (Packet::stable), else
  // copied into buffer().
  void append_packet(std::span<const uint8_t> data, bool stable);
  // Checks the packet's interface and returns the bytes to store: cut to that interface's
  // snaplen (0 = no limit), as a capture with that snaplen would.
  Result<std::span<const uint8_t>> captured(const Packet &pkt) const;
  // Called after each complete record: writes out what is pending once it is large.
  // A failed write to a file this writer opened is undone (the file is cut back to where the
  // write began, a record boundary) and everything it was writing is kept for a retry: the file
  // never ends in half a record, whatever happens later.
  // `packet`: the record is a packet's (counted by pending_records(), what a failure loses);
  // interface and statistics blocks are not.
  Result<> commit(bool packet = true);

private:
  // A piece of the output, in order: bytes of buf_ (ext == nullptr) or the caller's bytes.
  struct Piece {
    const uint8_t *ext;
    size_t off;  // into buf_, when ext == nullptr
    size_t len;
  };
  void close_run();
  Result<> drain();
  Result<> drain_stdio();
  // After a failed write: what was not written becomes buffered bytes of our own, so a later
  // retry neither duplicates bytes nor refers to the caller's memory.
  void keep_unwritten(size_t piece, size_t skip);

  std::string name_; // for error messages: the path, or "stdout"
  FILE *fp_;
  int fd_;
  bool owns_fd_;
  bool closed_ = false;
  std::vector<InterfaceInfo> ifaces_;
  std::vector<uint8_t> buf_;
  std::vector<Piece> pieces_;
  size_t run_start_ = 0;   // start in buf_ of the bytes not yet in pieces_
  uint64_t referenced_ = 0; // bytes of the caller's referred to by pieces_
  uint64_t drained_ = 0;   // bytes already handed to the OS / stdio
  uint64_t pending_records_ = 0;
};

// pcapng in host byte order: SHB, one IDB per interface (if_name, nanosecond if_tsresol,
// the common header_snaplen()), then one EPB per packet with the direction in epb_flags.
// Interfaces may differ in link type, but libpcap reads only files where they do not.
class PcapngWriter final : public CaptureFileWriter {
public:
  // Creates/truncates path (mode 0666 & ~umask, as tcpdump).
  static Result<std::unique_ptr<PcapngWriter>> open(const std::string &path,
                                                     std::vector<InterfaceInfo> ifaces);
  // Writes to a stream / fd the caller keeps owning.
  static Result<std::unique_ptr<PcapngWriter>> to_stream(FILE *out, std::vector<InterfaceInfo> ifaces,
                                                          std::string name = "stdout");
  static Result<std::unique_ptr<PcapngWriter>> to_fd(int fd, std::vector<InterfaceInfo> ifaces,
                                                      std::string name = "output");

  Result<> write(const Packet &pkt) override;
  Result<> write_stats(const std::vector<InterfaceTotals> &counters, uint64_t ts_ns) override;
  Result<> add_interface(const InterfaceInfo &info) override;

private:
  using CaptureFileWriter::CaptureFileWriter;
  void append_idb(const InterfaceInfo &iface);
  static Result<std::unique_ptr<PcapngWriter>> start(std::unique_ptr<PcapngWriter> w);
};

} // namespace bpftap
