// bpftap agent configuration (YAML; the REST API takes the same session shape as JSON).
// Every key is documented in the README; unknown keys, bad values and conflicts are bad input
// naming the file and line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpf/bpftap.h"
#include "capture/spec.h"
#include "mirror/spec.h"  // MirrorTarget: the mirror sessions' target, as bpftap mirror's
#include "util/error.h"

namespace YAML {
class Node;
}

namespace bpftap::agent {

struct CaptureTarget {
  std::string dir;           // files <dir>/<session>-<interface>-N.pcapng (or <session>-N.pcapng)
  uint64_t rotate_mb = 100;  // start a new file past this size (as tcpdump -C)
  uint32_t keep_files = 10;  // files kept per interface, or per session (as tcpdump -W)
  // "per-interface": one ring of files per interface; "per-session": one ring for the whole
  // session, one interface description block per interface (dumpcap with several -i), which
  // keeps one descriptor open instead of one per tap.
  std::string files = "per-interface";
  bool per_session() const { return files == "per-session"; }
  bool operator==(const CaptureTarget &) const = default;
};

struct InspectTarget {
  std::string alerts;  // EVE JSON lines file
  std::string flows;   // conn.log file ("" = none)
  std::string flows_format = "json";  // json or tsv (Zeek's tab-separated log)
  std::string ipfix;                  // HOST:PORT of an IPFIX collector ("" = none)
  bool operator==(const InspectTarget &) const = default;
};

struct SessionConfig {
  std::string name;
  std::vector<std::string> interfaces;  // names and globs
  std::string netns;                    // `ip netns` name the interfaces (and a local target) are in; "" = the agent's
  bool ingress = true, egress = true;   // direction: in | out | both
  std::string filter;                   // pcap-filter expression
  std::vector<std::string> rules;       // mirror rules, as for bpftap mirror --rule
  uint32_t snaplen = 0;                 // 0 = whole packets
  uint32_t sample = 0;                  // mirror: 1 in N flows
  uint64_t flow_cutoff = 0;             // mirror: payload bytes per flow
  // Hook, as bpftap capture's and mirror's --attach: auto (TCX, else tc), tcx or tc. With tc a
  // mirror session's copies are made by tc's mirred action (mirror/mirror.h), and a crashed
  // agent's filters stay until its next start or `bpftap cleanup` removes them.
  AttachMode attach = AttachMode::Auto;
  std::optional<CaptureTarget> capture;
  std::optional<MirrorTarget> mirror;   // mirror/spec.h, shared with bpftap mirror
  std::optional<InspectTarget> inspect;
  int line = 0;                         // where it was defined (messages)
  bool operator==(const SessionConfig &o) const;  // everything but `line`
};

// Whether two sessions cannot run at once: VXLAN targets in the same namespace with the same VNI
// and port, to different sensors (the kernel allows one such VXLAN device: mirror/vxlan.h).
bool vxlan_clash(const SessionConfig &a, const SessionConfig &b);

struct ApiConfig {
  std::string listen = "127.0.0.1:7878";
  std::string token_file;  // bearer token for writes; must be mode 0600 (no token: no writes)
  bool allow_remote = false;  // listen on an address other hosts can reach (no TLS: say so)
  // What any client gets, before it is authenticated (see ApiLimits in api_server.h).
  uint32_t max_connections = 64;         // open at once, all clients together
  uint32_t max_client_connections = 32;  // open at once from one address (a unix socket: one user)
  uint32_t requests_per_second = 100;    // per client address, bursts of twice as many
  uint32_t request_timeout_s = 10;       // a whole request (headers and body) must arrive within this
  uint32_t max_body_kb = 1024;           // larger bodies are refused before they are read
  bool operator==(const ApiConfig &) const = default;
};

// Is `listen` (HOST:PORT) an address only this host can reach (127.0.0.0/8, ::1, localhost)?
bool loopback_listen(const std::string &listen);

struct AgentConfig {
  ApiConfig api;
  std::vector<SessionConfig> sessions;
};

// A mirror session (s.mirror set) as bpftap mirror describes one: to_mirror_options() converts
// it (mirror/spec.h), for the config's checks and for the session that runs it.
MirrorSpec mirror_spec(const SessionConfig &s);

// A capture or inspect session as bpftap capture / inspect describe one (capture/spec.h).
CaptureSpec capture_spec(const SessionConfig &s);

// Parses and checks a whole config file.
Result<AgentConfig> load_agent_config(const std::string &path);
// Parses and checks one session from YAML text; `where` prefixes messages.
Result<SessionConfig> parse_session_text(const std::string &text, const std::string &where);
// The API's: strict JSON (UTF-8; each key of its type: a string is a string, a number a whole
// number, null is no value), then the same checks.
Result<SessionConfig> parse_session_json(const std::string &text, const std::string &where);
// The session as JSON text (the API's shape).
std::string session_to_json(const SessionConfig &s);

} // namespace bpftap::agent
