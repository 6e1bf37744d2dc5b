// Behavioural detectors for what DPI does not see: port scans, SYN floods, ICMP floods and
// password guessing. Thresholds come from the inspect config (see README); defaults are chosen
// so that none of the corpus's benign captures raises an alert.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "inspect/decode.h"
#include "inspect/flow.h"
#include "inspect/signatures.h"

namespace bpftap::inspect {

struct DetectorConfig {
  // Port scan: within `scan_window_s`, one source tried at least `scan_ports` ports of one host
  // (vertical) or one port on at least `scan_hosts` hosts (horizontal), and at least
  // `scan_unanswered` of those attempts were never answered (no SYN-ACK / no reply).
  double scan_window_s = 60;
  uint32_t scan_ports = 50;
  uint32_t scan_hosts = 100;  // P2P clients try dozens of peers on one port (gnutella.pcap: 50)
  double scan_unanswered = 0.8;
  // SYN flood: at least `syn_flood_pps` SYNs (without ACK) to one host and port within one second, of
  // which at most `syn_flood_answered` were answered with a SYN-ACK.
  uint32_t syn_flood_pps = 500;
  double syn_flood_answered = 0.2;
  // ICMP flood: at least `icmp_flood_pps` echo requests to one host within one second.
  uint32_t icmp_flood_pps = 500;
  // TLS Heartbleed (CVE-2014-0160), as Zeek's Heartbleed::SSL_Heartbeat_Attack: a cleartext
  // heartbeat request whose declared payload length exceeds its record; and
  // ..._Attack_Success: the peer answering it with a heartbeat response longer than the request.
  // Password guessing against SSH (22), FTP (21) and Telnet (23): within `guess_window_s`, one
  // source opened at least `guess_connections` connections to one server, or had at least
  // `guess_failed_logins` logins refused (FTP "530", Telnet "Login incorrect").
  double guess_window_s = 60;
  uint32_t guess_connections = 10;
  uint32_t guess_failed_logins = 3;
};

struct DetectorAlert {
  Detection kind;  // its signature, SID, category and severity: signatures.h
  // The figures behind it, for alert.metadata: {"ports_tried", "1000"}, ...
  std::vector<std::pair<std::string, std::string>> metadata;
  const Flow *flow = nullptr;  // the flow that crossed the threshold
};

class Detectors {
public:
  explicit Detectors(DetectorConfig cfg) : cfg_(cfg) {}
  // Every decoded packet, after the flow was updated. `from_orig`: sent by the originator;
  // `new_flow`: the flow's first packet.
  void packet(const Decoded &d, const Flow &f, bool from_orig, bool new_flow, uint64_t ts_ns,
              const std::function<void(const DetectorAlert &)> &emit);

private:
  struct Attempt {
    uint64_t ts_ns;
    bool answered;
  };
  struct Source {
    std::map<std::pair<IpAddr, uint16_t>, Attempt> attempts;  // (dst host, dst port)
    uint64_t alerted_ns = 0;
    bool alerted = false;
  };
  struct Rate {
    uint64_t second = 0;
    uint32_t count = 0, answered = 0;
    uint64_t alerted_second = UINT64_MAX;  // never
  };
  struct Guess {
    std::deque<uint64_t> conns, failures;
    bool alerted = false;
    uint64_t alerted_ns = 0;
  };
  void check_heartbeat(const Decoded &d, const Flow &f, const std::function<void(const DetectorAlert &)> &emit);
  void check_scan(const IpAddr &src, Source &s, uint64_t ts_ns, const Flow &f,
                  const std::function<void(const DetectorAlert &)> &emit);

  DetectorConfig cfg_;
  std::map<IpAddr, Source> sources_;
  using Service = std::pair<IpAddr, uint16_t>;  // (host, port); port 0 for ICMP
  std::map<Service, Rate> syn_, icmp_;
  std::map<std::tuple<IpAddr, IpAddr, uint16_t>, Guess> guess_;
  // Heartbleed: the record length of the last over-long heartbeat request, per connection
  // (originator, its port, responder, its port); forgotten once its response was judged.
  std::map<std::tuple<IpAddr, uint16_t, IpAddr, uint16_t>, uint32_t> heartbeats_;
};

} // namespace bpftap::inspect
