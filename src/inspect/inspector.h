// The inspector: a packet sink that tracks flows, classifies them with nDPI, runs the
// behavioural detectors and writes alerts (Suricata EVE style) and flow records (Zeek conn.log
// style) as JSON lines. Fed by a capture file or by the live eBPF capture, the same way.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"
#include "inspect/alert_pcap.h"
#include "inspect/conn_log.h"
#include "inspect/detectors.h"
#include "inspect/dpi.h"
#include "inspect/eve.h"
#include "inspect/ipfix_out.h"
#include "sinks/line_file.h"
#include "sinks/packet.h"

namespace bpftap::inspect {

struct InspectOptions {
  DetectorConfig detectors;
  std::vector<InterfaceInfo> interfaces;  // Packet::iface indexes this; linktype per interface
  FILE *alerts = nullptr;                 // the EVE stream (alert and flow events), or null
  FILE *flows = nullptr;                  // conn.log, or null
  FlowFormat flows_format = FlowFormat::Json;
  bool offline = false;                   // a capture file: EVE gets pcap_cnt, no in_iface
  // Every EVE line (without its newline) also goes here, e.g. to Redis; must not block.
  std::function<void(std::string)> eve_tap;
  // Every alert event as it is written (e.g. to the agent's log); must not block.
  std::function<void(const ojson &alert)> on_alert;
  AlertPcapOptions alert_pcap;            // dir "" = no alert pcaps
  std::shared_ptr<IpfixExporter> ipfix;   // every ended flow also as IPFIX records, or null
  LineOutput *alert_out = nullptr;        // instead of `alerts` (the agent's checked files)
  LineOutput *flow_out = nullptr;         // instead of `flows`
  double tcp_timeout_s = 300;             // idle flows are written out and forgotten
  double udp_timeout_s = 60;
  double closed_timeout_s = 5;            // after FIN/FIN or RST
  std::shared_ptr<DpiEngine> dpi;   // share one nDPI module (slow to set up); null = own
};

struct InspectStats {
  uint64_t packets = 0, ip_packets = 0, flows = 0, active_flows = 0, alerts = 0;
  AlertPcapStats alert_pcap;
};

// Reads the detector thresholds (and flow timeouts) from a YAML file; unknown keys and bad
// values are bad input naming the file and line.
Result<InspectOptions> read_inspect_config(const std::string &path, InspectOptions base);

class Inspector final : public PacketSink {
public:
  // Alert pcaps are off if their directory is unusable: check it first with AlertPcaps::open.
  explicit Inspector(InspectOptions opts);
  ~Inspector() override;
  Result<> write(const Packet &pkt) override;
  // Pushes the lines out; an output that failed (now or since the last flush) is an error.
  Result<> flush() override;
  // End of input: completes detection on every flow, writes their alerts and records; the
  // error of the last flush, if any.
  Result<> finish();
  // Live: ends the flows idle for longer than their timeout at wall-clock time now_ns (the
  // packets' clock), so a quiet link's flows are written without waiting for a next packet.
  void expire(uint64_t now_ns);
  InspectStats stats() const;
  // A new interface for Packet::iface to refer to (the agent attaches interfaces as they appear);
  // returns its index. Not thread-safe with write(). (PacketSink's add_interface(slot, info)
  // stays visible beside it.)
  using PacketSink::add_interface;
  uint32_t add_interface(const InterfaceInfo &iface);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap::inspect
