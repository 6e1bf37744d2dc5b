// Text output without a decoder of our own: packets go, as a pcap stream of Linux cooked v2
// (SLL2) frames, to the system's `tcpdump -r -`, which prints them on our stdout as it prints
// `tcpdump -i any`: "12:00:00.000001 tap-vm1 In  IP 10.0.0.1.22 > ...", with every protocol
// tcpdump decodes and its -v/-e/-X/-A/-q/-t options. SLL2 carries the interface index and the
// direction, so the interface name and In/Out/B/M come out in tcpdump's own words.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "sinks/packet.h"
#include "util/fd.h"

namespace bpftap {

class TcpdumpPrinter final : public PacketSink {
public:
  // Starts `tcpdump -r - <args>` (found on PATH; `tcpdump` by default) with our stdout as
  // its stdout. Its stderr is kept and shown only when it fails (not its "reading from file -"
  // banner).
  // out_fd: where tcpdump prints (our stdout unless told).
  static Result<std::unique_ptr<TcpdumpPrinter>> start(const std::vector<std::string> &args,
                                                       std::vector<InterfaceInfo> ifaces,
                                                       const std::string &program = "tcpdump", int out_fd = 1);
  ~TcpdumpPrinter() override;

  // A write to a tcpdump that has gone (its reader closed the pipe: `| head`) fails with
  // EPIPE: the caller stops quietly.
  Result<> write(const Packet &pkt) override;
  Result<> flush() override;
  Result<> add_interface(uint32_t slot, const InterfaceInfo &info) override {
    if (ifaces_.size() <= slot) ifaces_.resize(slot + 1);
    ifaces_[slot] = info;  // tcpdump names it by its index
    return {};
  }
  // Closes tcpdump's input and waits for it to print the rest; an error if it failed
  // (other than by SIGPIPE), with its last line of stderr.
  Result<> close();

private:
  TcpdumpPrinter(FD in, FD err, pid_t pid, std::vector<InterfaceInfo> ifaces)
      : in_(std::move(in)), err_(std::move(err)), pid_(pid), ifaces_(std::move(ifaces)) {}
  std::string last_error_line() const;

  FD in_;   // the pipe into tcpdump's stdin
  FD err_;  // a memfd holding tcpdump's stderr
  pid_t pid_;
  std::vector<InterfaceInfo> ifaces_;
  std::vector<uint8_t> buf_;
};

// The 20-byte SLL2 header bpftap gives tcpdump for an Ethernet frame (exposed for the tests):
// protocol = the frame's EtherType, the interface index, ARPHRD_ETHER, the packet type
// (outgoing, or host / broadcast / multicast by the destination MAC) and the source MAC.
void append_sll2_header(std::vector<uint8_t> &out, std::span<const uint8_t> frame, uint32_t ifindex,
                        Direction dir);

} // namespace bpftap
