// Flows: both directions of a 5-tuple (and VLAN) as one, the first packet's sender is the
// originator (Zeek's "orig"). Counters each way, TCP state for Zeek's conn_state.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <string>

#include "inspect/alert_pcap.h"
#include "inspect/decode.h"
#include "inspect/dpi.h"

namespace bpftap::inspect {

struct FlowKey {
  uint16_t vlan = 0;
  uint8_t proto = 0;
  IpAddr a, b;  // a <= b (by address, then port)
  uint16_t pa = 0, pb = 0;
  auto operator<=>(const FlowKey &) const = default;
};

// The key of a packet, and whether the packet goes from a to b.
FlowKey flow_key(const Decoded &d, bool &a_to_b);

struct FlowKeyHash {
  size_t operator()(const FlowKey &k) const;
};

struct Endpoint {
  IpAddr ip;
  uint16_t port = 0;
};

struct Flow {
  uint64_t id = 0;      // EVE flow_id
  std::string uid;      // Zeek uid
  Endpoint orig, resp;
  uint8_t proto = 0;
  uint16_t vlan = 0;
  uint32_t iface = 0;   // interface of the first packet
  uint64_t first_ns = 0, last_ns = 0;
  uint64_t orig_pkts = 0, resp_pkts = 0;
  uint64_t orig_bytes = 0, resp_bytes = 0;        // L4 payload
  uint64_t orig_ip_bytes = 0, resp_ip_bytes = 0;  // IP lengths
  uint64_t orig_frame_bytes = 0, resp_frame_bytes = 0;  // captured frame lengths (Suricata's bytes_toserver)
  uint8_t icmp_type = 0, icmp_code = 0;  // of the first packet (Zeek's orig_p / resp_p for ICMP)
  uint8_t orig_tcp_flags = 0, resp_tcp_flags = 0;  // every flag each side sent (EVE tcp block)
  std::string history;  // Zeek's conn history, each letter once
  std::string community_id;
  uint64_t first_pcap_cnt = 0;  // position of the first packet in the input (1-based)
  bool alerted = false;
  // TCP history (Zeek's letters, upper case = originator): S h A D F R
  bool orig_syn = false, resp_synack = false, resp_syn = false, orig_ack = false;
  bool orig_fin = false, resp_fin = false, orig_rst = false, resp_rst = false;
  bool orig_data = false, resp_data = false;
  std::unique_ptr<DpiFlow> dpi;
  uint64_t alerted_risks = 0;  // risks already alerted
  FlowEvidencePtr evidence;    // --alert-pcap: its packets (alert_pcap.h)

  // Adds Zeek's history letter for one packet (upper case: from the originator) if new.
  void add_history(char letter, bool from_orig);

  std::string conn_state() const;  // S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH
  bool closed() const;             // TCP: both FINs or a RST
};

} // namespace bpftap::inspect
