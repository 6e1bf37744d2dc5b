// libndpi (Debian's 4.2), driven as ndpiReader 4.2 drives it, so that the application protocol
// and the flow risks bpftap reports are the ones ndpiReader prints for the same packets:
// every packet of a flow goes to ndpi_detection_process_packet until the protocol is known and
// no extra dissection is possible, or 80 TCP / 24 UDP packets were seen; undetected flows get
// ndpi_detection_giveup (with guessing) at the end; an HTTP URL is checked with
// ndpi_validate_url (XSS, SQL injection, suspicious URL), as ndpiReader's printFlow does.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct ndpi_detection_module_struct;
struct ndpi_flow_struct;

namespace bpftap::inspect {

class DpiEngine;

// The nDPI state of one flow.
class DpiFlow {
public:
  explicit DpiFlow(DpiEngine &engine);
  ~DpiFlow();
  DpiFlow(const DpiFlow &) = delete;
  DpiFlow &operator=(const DpiFlow &) = delete;

  // One packet of the flow (L3 onwards), timestamp in ms. `proto` is the IP protocol.
  void process(std::span<const uint8_t> l3, uint64_t ts_ms, uint8_t proto);
  // No more packets: give up detection if it is not complete, and collect the final risks.
  void finish();

  bool done() const { return done_; }
  uint64_t risks() const { return risks_; }  // bitmask of ndpi_risk_enum
  std::string app_name() const;               // "HTTP", "DNS", "TLS.Google", "Unknown"
  std::string protocol() const;               // nDPI's name in lower case: "http", "tls", "" if unknown
  std::string category() const;
  std::string url() const;                    // HTTP host+path, "" if none
  // What nDPI 4.2 keeps of an HTTP request / response ("" / 0 when it saw none), and the
  // server name (HTTP Host, TLS SNI, DNS query).
  const std::string &http_path() const { return path_; }
  const std::string &http_method() const { return method_; }
  const std::string &http_user_agent() const { return user_agent_; }
  const std::string &http_content_type() const { return content_type_; }
  uint16_t http_status() const { return status_; }
  uint16_t http_port() const { return port_; }  // of the Host header, 0 if it named none
  const std::string &server_name() const { return server_name_; }
  // The protocol is nDPI's guess from the ports (ndpi_detection_giveup), not a dissector's.
  bool guessed() const { return guessed_; }
  bool is_http() const;
  bool is_tls() const;

private:
  void collect();
  DpiEngine &engine_;
  ndpi_flow_struct *flow_ = nullptr;
  uint32_t packets_ = 0;
  bool done_ = false;
  uint16_t master_ = 0, app_ = 0;
  uint32_t category_ = 0;
  uint64_t risks_ = 0;
  std::string url_, path_, method_, user_agent_, content_type_, server_name_;
  uint16_t status_ = 0, port_ = 0;
  bool guessed_ = false;
};

class DpiEngine {
public:
  DpiEngine();
  ~DpiEngine();
  DpiEngine(const DpiEngine &) = delete;
  DpiEngine &operator=(const DpiEngine &) = delete;
  ndpi_detection_module_struct *module() { return mod_; }

private:
  ndpi_detection_module_struct *mod_ = nullptr;
};

// "SQL Injection", as ndpi_risk2str names it.
std::string risk_name(int risk);
// Names of the risks in a bitmask, in ascending order.
std::vector<std::string> risk_names(uint64_t risks);
// nDPI's severity of a risk: 1 low, 2 medium, 3 high, 4 severe.
int risk_severity(int risk);

} // namespace bpftap::inspect
