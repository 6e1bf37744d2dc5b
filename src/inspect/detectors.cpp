#include "inspect/detectors.h"

#include <netinet/in.h>

#include <string_view>

#include <fmt/format.h>

namespace bpftap::inspect {
namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10;

uint64_t ns(double s) { return static_cast<uint64_t>(s * 1e9); }

bool starts_with(std::span<const uint8_t> p, std::string_view s) {
  return p.size() >= s.size() && std::equal(s.begin(), s.end(), p.begin());
}

bool contains(std::span<const uint8_t> p, std::string_view s) {
  return std::search(p.begin(), p.end(), s.begin(), s.end()) != p.end();
}

uint16_t be16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

} // namespace

// A TLS record that starts a TCP segment (no reassembly: heartbeats are small and come alone):
// type 24 (heartbeat), version 3.x, length; the message: type 1 request / 2 response, payload
// length. A request must hold its payload and at least 16 bytes of padding (RFC 6520).
void Detectors::check_heartbeat(const Decoded &d, const Flow &f,
                                const std::function<void(const DetectorAlert &)> &emit) {
  std::span<const uint8_t> p = d.payload;
  if (p.size() < 8 || p[0] != 24 || p[1] != 3 || p[2] > 4) return;
  uint32_t record = be16(&p[3]), declared = be16(&p[6]);
  uint8_t type = p[5];
  auto key = std::make_tuple(f.orig.ip, f.orig.port, f.resp.ip, f.resp.port);
  auto figures = [&](const char *what) {
    return std::vector<std::pair<std::string, std::string>>{
        {what, std::to_string(record)}, {"payload_length", std::to_string(declared)}};
  };
  if (type == 1 && declared + 3 + 16 > record) {
    heartbeats_[key] = record;
    emit({Detection::HeartbleedAttack, figures("record_length"), &f});
  } else if (type == 2) {
    auto it = heartbeats_.find(key);
    if (it == heartbeats_.end()) return;
    uint32_t request = it->second;
    heartbeats_.erase(it);
    if (record > request) {
      auto m = figures("response_record_length");
      m.emplace_back("request_record_length", std::to_string(request));
      emit({Detection::HeartbleedSuccess, std::move(m), &f});
    }
  }
}

void Detectors::check_scan(const IpAddr &src, Source &s, uint64_t ts_ns, const Flow &f,
                           const std::function<void(const DetectorAlert &)> &emit) {
  uint64_t window = ns(cfg_.scan_window_s);
  for (auto it = s.attempts.begin(); it != s.attempts.end();)
    it = ts_ns - it->second.ts_ns > window ? s.attempts.erase(it) : std::next(it);
  if (s.alerted && ts_ns - s.alerted_ns < window) return;
  // Fewer attempts than either threshold cannot be a scan: skip the per-host / per-port count,
  // which would otherwise run over every recent attempt for each new flow of a busy client.
  if (s.attempts.size() < std::min(cfg_.scan_ports, cfg_.scan_hosts)) return;
  // Per host: distinct ports; per port: distinct hosts.
  std::map<IpAddr, std::pair<uint32_t, uint32_t>> by_host;    // tried, unanswered
  std::map<uint16_t, std::pair<uint32_t, uint32_t>> by_port;
  for (const auto &[target, a] : s.attempts) {
    auto &h = by_host[target.first];
    auto &p = by_port[target.second];
    h.first++, p.first++;
    if (!a.answered) h.second++, p.second++;
  }
  auto fire = [&](Detection kind, std::vector<std::pair<std::string, std::string>> figures) {
    s.alerted = true;
    s.alerted_ns = ts_ns;
    figures.emplace_back("scanner", src.str());
    emit({kind, std::move(figures), &f});
  };
  for (const auto &[host, c] : by_host)
    if (c.first >= cfg_.scan_ports && c.second >= cfg_.scan_unanswered * c.first)
      return fire(Detection::ScanVertical, {{"target", host.str()},
                                            {"ports_tried", std::to_string(c.first)},
                                            {"unanswered", std::to_string(c.second)}});
  for (const auto &[port, c] : by_port)
    if (c.first >= cfg_.scan_hosts && c.second >= cfg_.scan_unanswered * c.first)
      return fire(Detection::ScanHorizontal, {{"port", std::to_string(port)},
                                              {"hosts_tried", std::to_string(c.first)},
                                              {"unanswered", std::to_string(c.second)}});
}

void Detectors::packet(const Decoded &d, const Flow &f, bool from_orig, bool new_flow, uint64_t ts_ns,
                       const std::function<void(const DetectorAlert &)> &emit) {
  const bool tcp = d.proto == IPPROTO_TCP, udp = d.proto == IPPROTO_UDP;
  const bool syn = tcp && (d.tcp_flags & (kSyn | kAck)) == kSyn;
  const bool synack = tcp && (d.tcp_flags & (kSyn | kAck)) == (kSyn | kAck);

  // Port scan: an attempt is a SYN opening a flow, or a UDP flow's first packet; it is answered
  // by a SYN-ACK, or by any UDP packet back.
  if (from_orig && new_flow && (syn || udp)) {
    auto &s = sources_[d.src];
    s.attempts[{d.dst, d.dport}] = Attempt{ts_ns, false};
    check_scan(d.src, s, ts_ns, f, emit);
  } else if (!from_orig && (synack || (udp && f.resp_pkts == 1))) {
    auto it = sources_.find(f.orig.ip);
    if (it != sources_.end()) {
      auto a = it->second.attempts.find({f.resp.ip, f.resp.port});
      if (a != it->second.attempts.end()) a->second.answered = true;
    }
  }

  // Floods: per destination host and second.
  // Floods: per destination host, counted per second; at most one alert per host and minute.
  auto rate = [&](std::map<Service, Rate> &m, const Service &target, bool count, bool answer, uint32_t threshold,
                  double max_answered, Detection kind) {
    auto &r = m[target];
    uint64_t sec = ts_ns / 1000000000ull;
    if (sec != r.second) {
      r.second = sec;
      r.count = r.answered = 0;
    }
    r.count += count;
    r.answered += answer;
    bool quiet = r.alerted_second == UINT64_MAX || sec >= r.alerted_second + 60;
    if (count && quiet && r.count >= threshold && r.answered <= max_answered * r.count) {
      r.alerted_second = sec;
      std::vector<std::pair<std::string, std::string>> figures = {
          {"target", target.first.str()}, {"per_second_threshold", std::to_string(threshold)}};
      if (kind == Detection::SynFlood) figures.emplace_back("port", std::to_string(target.second));
      emit({kind, std::move(figures), &f});
    }
  };
  // A SYN flood hits one service: count per (host, port), so a fast scan of many ports is not one.
  if (syn || synack) {
    Service target = syn ? Service{d.dst, d.dport} : Service{d.src, d.sport};
    rate(syn_, target, syn, synack, cfg_.syn_flood_pps, cfg_.syn_flood_answered, Detection::SynFlood);
  }
  bool echo = (d.proto == IPPROTO_ICMP && d.icmp_type == 8) || (d.proto == IPPROTO_ICMPV6 && d.icmp_type == 128);
  if (echo) rate(icmp_, Service{d.dst, 0}, true, false, cfg_.icmp_flood_pps, 1.0, Detection::IcmpFlood);

  if (tcp && !d.payload.empty()) check_heartbeat(d, f, emit);

  // Password guessing against SSH, FTP, Telnet.
  uint16_t service = f.resp.port;
  if (tcp && (service == 21 || service == 22 || service == 23)) {
    auto &g = guess_[{f.orig.ip, f.resp.ip, service}];
    uint64_t window = ns(cfg_.guess_window_s);
    bool counted = false;
    if (from_orig && new_flow && syn) {
      g.conns.push_back(ts_ns);
      counted = true;
    }
    if (!from_orig && !d.payload.empty() &&
        ((service == 21 && starts_with(d.payload, "530")) || (service == 23 && contains(d.payload, "Login incorrect")))) {
      g.failures.push_back(ts_ns);
      counted = true;
    }
    while (!g.conns.empty() && ts_ns - g.conns.front() > window) g.conns.pop_front();
    while (!g.failures.empty() && ts_ns - g.failures.front() > window) g.failures.pop_front();
    if (counted && !(g.alerted && ts_ns - g.alerted_ns < window) &&
        (g.conns.size() >= cfg_.guess_connections || g.failures.size() >= cfg_.guess_failed_logins)) {
      g.alerted = true;
      g.alerted_ns = ts_ns;
      Detection kind = service == 22 ? Detection::GuessSsh : service == 21 ? Detection::GuessFtp : Detection::GuessTelnet;
      emit({kind,
            {{"connections", std::to_string(g.conns.size())},
             {"failed_logins", std::to_string(g.failures.size())},
             {"window_s", fmt::format("{:g}", cfg_.guess_window_s)}},
            &f});
    }
  }
}

} // namespace bpftap::inspect
