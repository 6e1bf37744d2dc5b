// One line per packet on a stream, for `bpftap capture` without -w (like tcpdump's default).
#pragma once

#include <cstdio>
#include <vector>

#include "sinks/packet.h"

namespace bpftap {

class TextSink final : public PacketSink {
public:
  TextSink(FILE *out, std::vector<InterfaceInfo> ifaces) : out_(out), ifaces_(std::move(ifaces)) {}
  Result<> write(const Packet &pkt) override;
  Result<> flush() override;
  Result<> add_interface(uint32_t slot, const InterfaceInfo &info) override {
    if (ifaces_.size() <= slot) ifaces_.resize(slot + 1);
    ifaces_[slot] = info;
    return {};
  }

private:
  FILE *out_;
  std::vector<InterfaceInfo> ifaces_;
};

// "IPv4 10.0.0.1.1234 > 10.0.0.2.80 TCP" and the like: a short description of a frame.
std::string describe_frame(std::span<const uint8_t> frame);

} // namespace bpftap
