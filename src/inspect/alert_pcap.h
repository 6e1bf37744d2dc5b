// Alert pcaps, as Suricata's conditional pcap-log: for every flow that raised an alert, its
// packets from the flow's first one, to DIR/<flow_id>_<community_id>.pcapng (the Community ID in
// base64url), so an analyst opens the evidence of an alert in Wireshark.
// Memory is bounded: a flow's packets are kept (copied) until it alerts or ends, at most
// `flow_bytes` per flow and `budget_bytes` for all flows together; once it alerted, its later
// packets go straight to its file, still up to `flow_bytes`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"
#include "sinks/packet.h"

namespace bpftap::inspect {

struct Flow;

struct AlertPcapOptions {
  std::string dir;                        // "" = off
  uint64_t flow_bytes = 1 << 20;          // frame bytes kept per flow
  uint64_t budget_bytes = 64ull << 20;    // frame bytes held in memory for all flows
};

struct AlertPcapStats {
  uint64_t files = 0, packets_written = 0, bytes_held = 0, packets_over_budget = 0, write_errors = 0;
};

// A flow's evidence: packets held while it has not alerted, then its open file.
struct FlowEvidence;
struct FlowEvidenceDeleter {
  void operator()(FlowEvidence *e) const;
};
using FlowEvidencePtr = std::unique_ptr<FlowEvidence, FlowEvidenceDeleter>;

class AlertPcaps {
public:
  // Creates dir if needed; an unusable dir is bad input.
  static Result<std::unique_ptr<AlertPcaps>> open(AlertPcapOptions o);
  // Every packet of a flow, in order, before detection runs on it.
  void packet(Flow &f, const Packet &pkt, const std::vector<InterfaceInfo> &ifaces);
  // The flow raised an alert: its file is written (idempotent).
  void alerted(Flow &f, const std::vector<InterfaceInfo> &ifaces);
  // The flow ended: its file is closed, its held packets released.
  void ended(Flow &f);
  AlertPcapStats stats() const { return st_; }

private:
  explicit AlertPcaps(AlertPcapOptions o) : opts_(std::move(o)) {}
  AlertPcapOptions opts_;
  AlertPcapStats st_;
};

} // namespace bpftap::inspect
