#include "inspect/eve.h"

#include <netinet/in.h>

#include <ctime>

#include <fmt/format.h>

#include "inspect/names.h"

namespace bpftap::inspect {
namespace {

std::string eve_proto(uint8_t p) {
  switch (p) {
  case IPPROTO_TCP: return "TCP";
  case IPPROTO_UDP: return "UDP";
  case IPPROTO_ICMP: return "ICMP";
  case IPPROTO_ICMPV6: return "IPv6-ICMP";
  case IPPROTO_SCTP: return "SCTP";
  case IPPROTO_GRE: return "GRE";
  default: return fmt::format("{:03d}", p);  // Suricata: "017" for protocols without a name
  }
}

bool has_ports(uint8_t p) { return p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP; }
bool is_icmp(uint8_t p) { return p == IPPROTO_ICMP || p == IPPROTO_ICMPV6; }

// The common head of every event: timestamp, flow_id, [pcap_cnt,] [in_iface,] event_type, the
// tuple, proto, community_id.
ojson head(const Flow &f, uint64_t ts_ns, const char *type, const EveSource &src, bool to_server) {
  ojson j;
  j["timestamp"] = eve_time(ts_ns);
  j["flow_id"] = f.id;
  if (src.pcap_cnt) j["pcap_cnt"] = src.pcap_cnt;
  if (!src.in_iface.empty()) j["in_iface"] = src.in_iface;
  j["event_type"] = type;
  if (f.vlan) j["vlan"] = ojson::array({f.vlan});
  const Endpoint &s = to_server ? f.orig : f.resp, &d = to_server ? f.resp : f.orig;
  j["src_ip"] = s.ip.str();
  if (has_ports(f.proto)) j["src_port"] = s.port;
  j["dest_ip"] = d.ip.str();
  if (has_ports(f.proto)) j["dest_port"] = d.port;
  j["proto"] = eve_proto(f.proto);
  if (is_icmp(f.proto)) {
    j["icmp_type"] = f.icmp_type;
    j["icmp_code"] = f.icmp_code;
  }
  if (!f.community_id.empty()) j["community_id"] = f.community_id;
  return j;
}

ojson flow_counters(const Flow &f) {
  return ojson{{"pkts_toserver", f.orig_pkts},
               {"pkts_toclient", f.resp_pkts},
               {"bytes_toserver", f.orig_frame_bytes},
               {"bytes_toclient", f.resp_frame_bytes},
               {"start", eve_time(f.first_ns)}};
}

// Suricata's flow.state: new (one side only), established, closed.
const char *flow_state(const Flow &f) {
  if (f.proto == IPPROTO_TCP) {
    if (f.closed()) return "closed";
    return f.orig_syn && f.resp_synack ? "established" : "new";
  }
  return f.resp_pkts ? "established" : "new";
}

// Suricata's TCP stream state names (stream-tcp.c StreamTcpStateAsString).
const char *tcp_state(const Flow &f) {
  if (f.orig_rst || f.resp_rst || (f.orig_fin && f.resp_fin)) return "closed";
  if (f.orig_fin) return "fin_wait1";
  if (f.resp_fin) return "close_wait";
  if (f.orig_syn && f.resp_synack) return "established";
  if (f.resp_synack) return "syn_recv";
  if (f.orig_syn) return "syn_sent";
  return "none";
}

ojson tcp_block(const Flow &f) {
  uint8_t all = f.orig_tcp_flags | f.resp_tcp_flags;
  ojson t;
  t["tcp_flags"] = fmt::format("{:02x}", all);
  t["tcp_flags_ts"] = fmt::format("{:02x}", f.orig_tcp_flags);
  t["tcp_flags_tc"] = fmt::format("{:02x}", f.resp_tcp_flags);
  const std::pair<uint8_t, const char *> names[] = {{0x02, "syn"}, {0x01, "fin"}, {0x04, "rst"}, {0x08, "psh"},
                                                    {0x10, "ack"}, {0x20, "urg"}, {0x40, "ecn"}, {0x80, "cwr"}};
  for (auto [bit, name] : names)
    if (all & bit) t[name] = true;
  t["state"] = tcp_state(f);
  return t;
}

} // namespace

std::string eve_time(uint64_t ts_ns) {
  time_t sec = static_cast<time_t>(ts_ns / 1000000000ull);
  struct tm tm {};
  gmtime_r(&sec, &tm);
  char buf[40];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}+0000", buf, (ts_ns / 1000) % 1000000);
}

std::string eve_app_proto(const Flow &f) {
  if (!f.dpi || f.dpi->guessed()) return f.orig_bytes + f.resp_bytes ? "failed" : "";
  std::string name = suricata_app_proto(f.dpi->protocol());
  if (!name.empty()) return name;
  return f.orig_bytes + f.resp_bytes ? "failed" : "";
}

ojson eve_alert(const Flow &f, uint64_t ts_ns, const Signature &sig, const ojson &metadata, const EveSource &src) {
  ojson j = head(f, ts_ns, "alert", src, true);
  j["pkt_src"] = "wire/pcap";
  ojson a{{"action", "allowed"},          {"gid", 1},        {"signature_id", sig.sid}, {"rev", 1},
          {"signature", sig.text},        {"category", sig.category}, {"severity", sig.severity}};
  if (!metadata.empty()) a["metadata"] = metadata;
  j["alert"] = a;
  if (f.dpi && f.dpi->done() && f.dpi->is_http()) {
    const DpiFlow &d = *f.dpi;
    ojson h;
    if (!d.server_name().empty()) h["hostname"] = d.server_name();
    if (d.http_port()) h["http_port"] = d.http_port();
    if (!d.http_path().empty()) h["url"] = d.http_path();
    if (!d.http_user_agent().empty()) h["http_user_agent"] = d.http_user_agent();
    if (!d.http_content_type().empty()) h["http_content_type"] = d.http_content_type();
    if (!d.http_method().empty()) h["http_method"] = d.http_method();
    if (d.http_status()) h["status"] = d.http_status();
    if (!h.empty()) j["http"] = h;
  } else if (f.dpi && f.dpi->done() && f.dpi->is_tls() && !f.dpi->server_name().empty()) {
    j["tls"] = ojson{{"sni", f.dpi->server_name()}};
  }
  if (f.dpi && f.dpi->done()) {
    std::string app = eve_app_proto(f);
    if (!app.empty()) j["app_proto"] = app;
  }
  j["direction"] = "to_server";
  ojson fl = flow_counters(f);
  fl["src_ip"] = f.orig.ip.str();
  fl["dest_ip"] = f.resp.ip.str();
  if (has_ports(f.proto)) {
    fl["src_port"] = f.orig.port;
    fl["dest_port"] = f.resp.port;
  }
  j["flow"] = fl;
  return j;
}

ojson eve_flow(const Flow &f, const char *reason, const EveSource &src) {
  ojson j = head(f, f.first_ns, "flow", src, true);
  std::string app = eve_app_proto(f);
  if (!app.empty()) j["app_proto"] = app;
  ojson fl = flow_counters(f);
  fl["end"] = eve_time(f.last_ns);
  fl["age"] = (f.last_ns - f.first_ns) / 1000000000ull;
  fl["state"] = flow_state(f);
  fl["reason"] = reason;
  fl["alerted"] = f.alerted;
  j["flow"] = fl;
  if (f.proto == IPPROTO_TCP) j["tcp"] = tcp_block(f);
  return j;
}

} // namespace bpftap::inspect
