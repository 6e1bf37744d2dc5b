// EVE JSON as Suricata 7.0 writes it: "alert" and "flow" events of one stream, with the fields,
// value vocabularies and types Suricata's consumers (Elastic, Splunk, jq scripts) expect.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "inspect/flow.h"
#include "inspect/signatures.h"

namespace bpftap::inspect {

using ojson = nlohmann::ordered_json;

struct EveSource {
  std::string in_iface;   // "" for a capture file (Suricata omits in_iface then)
  uint64_t pcap_cnt = 0;  // the packet's position in the file; 0 = not from a file, or no packet
};

// Suricata's timestamp: 2026-11-22T10:00:00.123456+0000
std::string eve_time(uint64_t ts_ns);

// An alert on `f`, raised by a packet from the originator (to_server) at ts_ns. `metadata`:
// the detector's figures, an object of string arrays as Suricata's rule metadata.
ojson eve_alert(const Flow &f, uint64_t ts_ns, const Signature &sig, const ojson &metadata, const EveSource &src);

// The flow event written when `f` ends; reason "timeout" (idle) or "shutdown" (end of input).
ojson eve_flow(const Flow &f, const char *reason, const EveSource &src);

// Suricata's app_proto for the flow: its parser's name, "failed" when there was payload but no
// parser of Suricata's would take it, "" when there is nothing to name (no payload, port guess).
std::string eve_app_proto(const Flow &f);

} // namespace bpftap::inspect
