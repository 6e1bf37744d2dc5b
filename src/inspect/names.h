// Protocol vocabularies: nDPI's protocol names (lower case) as Suricata 7 names them in EVE's
// app_proto and as Zeek 6.0 names them in conn.log's service. Each tool only names what it has a
// parser for; the rest is "failed" (Suricata) or empty (Zeek).
#pragma once

#include <cstdint>
#include <string>

namespace bpftap::inspect {

// "" when nDPI's name has no Suricata 7 parser.
std::string suricata_app_proto(const std::string &ndpi_name);
// "" when Zeek 6.0 has no analyzer for it.
std::string zeek_service(const std::string &ndpi_name, uint8_t ip_proto);
// A port a server listens on (IANA well-known, or a common service port): the originator
// heuristics flip a flow whose first packet comes from such a port to one that is not.
bool likely_server_port(uint16_t port);

} // namespace bpftap::inspect
