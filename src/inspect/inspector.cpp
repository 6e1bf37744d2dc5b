#include "inspect/inspector.h"

#include <netinet/in.h>

#include <ctime>
#include <fstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "util/yaml_file.h"
#include "inspect/dpi.h"
#include "inspect/flow.h"

namespace bpftap::inspect {
namespace {

using json = nlohmann::ordered_json;

const char *proto_name(uint8_t p) {
  switch (p) {
  case IPPROTO_TCP: return "TCP";
  case IPPROTO_UDP: return "UDP";
  case IPPROTO_ICMP: return "ICMP";
  case IPPROTO_ICMPV6: return "IPv6-ICMP";
  case IPPROTO_SCTP: return "SCTP";
  case IPPROTO_GRE: return "GRE";
  default: return nullptr;
  }
}

std::string eve_proto(uint8_t p) {
  const char *n = proto_name(p);
  return n ? n : std::to_string(p);
}

std::string zeek_proto(uint8_t p) {
  if (p == IPPROTO_TCP) return "tcp";
  if (p == IPPROTO_UDP) return "udp";
  if (p == IPPROTO_ICMP || p == IPPROTO_ICMPV6) return "icmp";
  return "unknown_transport";
}

// Suricata's timestamp: 2026-11-22T10:00:00.123456+0000
std::string eve_time(uint64_t ts_ns) {
  time_t sec = static_cast<time_t>(ts_ns / 1000000000ull);
  struct tm tm {};
  gmtime_r(&sec, &tm);
  char buf[40];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}+0000", buf, (ts_ns / 1000) % 1000000);
}

// Suricata classification for nDPI risks.
const char *risk_category(const std::string &name) {
  if (name.find("XSS") != std::string::npos || name.find("SQL") != std::string::npos ||
      name.find("RCE") != std::string::npos || name.find("Exploit") != std::string::npos ||
      name.find("Suspicious URL") != std::string::npos)
    return "Web Application Attack";
  if (name.find("Credential") != std::string::npos) return "Potential Corporate Privacy Violation";
  if (name.find("DGA") != std::string::npos || name.find("Malware") != std::string::npos ||
      name.find("Risky") != std::string::npos)
    return "Potentially Bad Traffic";
  return "Not Suspicious Traffic";
}

int eve_severity(int ndpi_severity) { return ndpi_severity >= 3 ? 1 : ndpi_severity == 2 ? 2 : 3; }

std::string base62(uint64_t v) {
  static const char *digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string s;
  for (int i = 0; i < 17; i++) {
    s += digits[v % 62];
    v /= 62;
  }
  return s;
}

} // namespace

struct Inspector::Impl {
  InspectOptions opts;
  std::shared_ptr<DpiEngine> dpi_engine;
  DpiEngine &dpi;
  Detectors detectors;
  std::unordered_map<FlowKey, std::unique_ptr<Flow>, FlowKeyHash> flows;
  InspectStats st;
  uint64_t last_sweep_ns = 0;
  uint64_t last_ms = 0;

  explicit Impl(InspectOptions o)
      : opts(std::move(o)), dpi_engine(opts.dpi ? opts.dpi : std::make_shared<DpiEngine>()), dpi(*dpi_engine),
        detectors(opts.detectors) {}

  std::string iface_name(uint32_t i) const { return i < opts.interfaces.size() ? opts.interfaces[i].name : ""; }

  json alert_base(const Flow &f, uint64_t ts_ns, bool to_server) {
    json j;
    j["timestamp"] = eve_time(ts_ns);
    j["flow_id"] = f.id;
    j["in_iface"] = iface_name(f.iface);
    j["event_type"] = "alert";
    const Endpoint &s = to_server ? f.orig : f.resp, &d = to_server ? f.resp : f.orig;
    j["src_ip"] = s.ip.str();
    if (f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP) j["src_port"] = s.port;
    j["dest_ip"] = d.ip.str();
    if (f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP) j["dest_port"] = d.port;
    j["proto"] = eve_proto(f.proto);
    if (f.vlan) j["vlan"] = json::array({f.vlan});
    j["direction"] = to_server ? "to_server" : "to_client";
    if (f.dpi && f.dpi->done() && !f.dpi->service().empty()) j["app_proto"] = f.dpi->service();
    return j;
  }

  void emit_alert(json j, const std::string &signature, const std::string &category, int severity, int sid) {
    j["alert"] = json{{"action", "allowed"}, {"gid", 1},           {"signature_id", sid}, {"rev", 1},
                      {"signature", signature}, {"category", category}, {"severity", severity}};
    st.alerts++;
    if (opts.alert_out || opts.alerts) {
      std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
      if (opts.alert_out) opts.alert_out->line(line);
      else std::fprintf(opts.alerts, "%s\n", line.c_str());
    }
  }

  // Alerts for the flow's nDPI risks not alerted yet (once detection is over).
  void risk_alerts(Flow &f, uint64_t ts_ns) {
    if (!f.dpi || !f.dpi->done()) return;
    uint64_t fresh = f.dpi->risks() & ~f.alerted_risks;
    for (int r = 1; r < 64; r++) {
      if (!(fresh & (1ull << r))) continue;
      std::string name = risk_name(r);
      json j = alert_base(f, ts_ns, true);
      if (!f.dpi->url().empty()) j["http"] = json{{"url", f.dpi->url()}};
      emit_alert(std::move(j), "nDPI: " + name, risk_category(name), eve_severity(risk_severity(r)), 8000000 + r);
    }
    f.alerted_risks |= fresh;
  }

  void write_flow(const Flow &f) {
    if (!opts.flows && !opts.flow_out) return;
    json j;
    j["ts"] = static_cast<double>(f.first_ns) / 1e9;
    j["uid"] = f.uid;
    j["id.orig_h"] = f.orig.ip.str();
    j["id.orig_p"] = f.orig.port;
    j["id.resp_h"] = f.resp.ip.str();
    j["id.resp_p"] = f.resp.port;
    j["proto"] = zeek_proto(f.proto);
    if (f.dpi && !f.dpi->service().empty()) j["service"] = f.dpi->service();
    j["duration"] = static_cast<double>(f.last_ns - f.first_ns) / 1e9;
    j["orig_bytes"] = f.orig_bytes;
    j["resp_bytes"] = f.resp_bytes;
    j["conn_state"] = f.conn_state();
    j["orig_pkts"] = f.orig_pkts;
    j["orig_ip_bytes"] = f.orig_ip_bytes;
    j["resp_pkts"] = f.resp_pkts;
    j["resp_ip_bytes"] = f.resp_ip_bytes;
    if (f.vlan) j["vlan"] = f.vlan;
    j["interface"] = iface_name(f.iface);
    if (f.dpi) {
      j["app"] = f.dpi->app_name();
      j["ndpi_risks"] = risk_names(f.dpi->risks());
    }
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (opts.flow_out) opts.flow_out->line(line);
    else std::fprintf(opts.flows, "%s\n", line.c_str());
  }

  void end_flow(Flow &f) {
    if (f.dpi) f.dpi->finish();
    risk_alerts(f, f.last_ns);
    write_flow(f);
  }

  void sweep(uint64_t now) {
    for (auto it = flows.begin(); it != flows.end();) {
      Flow &f = *it->second;
      double idle = static_cast<double>(now - f.last_ns) / 1e9;
      double limit = f.closed() ? opts.closed_timeout_s : f.proto == IPPROTO_TCP ? opts.tcp_timeout_s : opts.udp_timeout_s;
      if (idle > limit) {
        end_flow(f);
        it = flows.erase(it);
      } else {
        ++it;
      }
    }
  }

  void packet(const Packet &pkt) {
    st.packets++;
    uint16_t linktype = pkt.iface < opts.interfaces.size() ? opts.interfaces[pkt.iface].linktype : 1;
    auto d = decode(linktype, pkt.data);
    if (!d) return;
    st.ip_packets++;
    uint64_t ts = pkt.ts_ns;
    if (ts >= last_sweep_ns + 1000000000ull) {
      if (last_sweep_ns) sweep(ts);
      last_sweep_ns = ts;
    }
    bool a_to_b = false;
    FlowKey key = flow_key(*d, a_to_b);
    auto &slot = flows[key];
    bool new_flow = !slot;
    if (new_flow) {
      slot = std::make_unique<Flow>();
      Flow &f = *slot;
      st.flows++;
      f.orig = {d->src, d->sport};
      f.resp = {d->dst, d->dport};
      f.proto = d->proto;
      f.vlan = d->vlan;
      f.iface = pkt.iface;
      f.first_ns = ts;
      f.id = (FlowKeyHash{}(key) ^ (ts * 0x9e3779b97f4a7c15ull)) & ((1ull << 51) - 1);
      f.uid = "C" + base62(f.id ^ (ts << 7));
      f.dpi = std::make_unique<DpiFlow>(dpi);
    }
    Flow &f = *slot;
    bool from_orig = d->src == f.orig.ip && d->sport == f.orig.port;
    f.last_ns = std::max(f.last_ns, ts);
    (from_orig ? f.orig_pkts : f.resp_pkts)++;
    (from_orig ? f.orig_bytes : f.resp_bytes) += d->payload_len;
    (from_orig ? f.orig_ip_bytes : f.resp_ip_bytes) += d->ip_len;
    if (d->proto == IPPROTO_TCP) {
      uint8_t fl = d->tcp_flags;
      bool syn = fl & 0x02, ack = fl & 0x10;
      if (from_orig) {
        f.orig_syn |= syn && !ack;
        f.orig_ack |= ack;
        f.orig_fin |= (fl & 0x01) != 0;
        f.orig_rst |= (fl & 0x04) != 0;
      } else {
        f.resp_synack |= syn && ack;
        f.resp_syn |= syn;
        f.resp_fin |= (fl & 0x01) != 0;
        f.resp_rst |= (fl & 0x04) != 0;
      }
    }
    // nDPI wants milliseconds that never go back (as ndpiReader feeds it).
    uint64_t ms = ts / 1000000ull;
    if (ms < last_ms) ms = last_ms;
    last_ms = ms;
    if (f.dpi && !f.dpi->done()) {
      f.dpi->process(d->l3, ms, d->proto);
      if (f.dpi->done()) risk_alerts(f, ts);
    }
    detectors.packet(*d, f, from_orig, new_flow, ts, [&](const DetectorAlert &a) {
      emit_alert(alert_base(*a.flow, ts, true), a.signature, a.category, a.severity, a.sid);
    });
  }
};

Inspector::Inspector(InspectOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Inspector::~Inspector() = default;

Result<> Inspector::write(const Packet &pkt) {
  impl_->packet(pkt);
  return {};
}

Result<> Inspector::flush() {
  const auto &o = impl_->opts;
  Result<> r;
  // Every output is flushed, whichever failed; the first error is returned.
  auto keep = [&](Result<> x) {
    if (!x && r) r = std::move(x);
  };
  auto stdio = [&](FILE *f, const char *what) -> Result<> {
    if (!f) return {};
    if (std::fflush(f) != 0 || std::ferror(f)) {
      int err = errno ? errno : EIO;
      std::clearerr(f);
      return fail_errno(std::string("write ") + what, err);
    }
    return {};
  };
  if (o.alert_out) keep(o.alert_out->flush());
  else keep(stdio(o.alerts, "alerts"));
  if (o.flow_out) keep(o.flow_out->flush());
  else keep(stdio(o.flows, "flows"));
  return r;
}

Result<> Inspector::finish() {
  // In order of first packet, so the records come out in a stable order.
  std::vector<Flow *> all;
  for (auto &[k, f] : impl_->flows) all.push_back(f.get());
  std::sort(all.begin(), all.end(), [](const Flow *a, const Flow *b) { return a->first_ns < b->first_ns; });
  for (Flow *f : all) impl_->end_flow(*f);
  impl_->flows.clear();
  return flush();
}

uint32_t Inspector::add_interface(const InterfaceInfo &iface) {
  impl_->opts.interfaces.push_back(iface);
  return static_cast<uint32_t>(impl_->opts.interfaces.size() - 1);
}

InspectStats Inspector::stats() const {
  InspectStats s = impl_->st;
  s.active_flows = impl_->flows.size();
  return s;
}

Result<InspectOptions> read_inspect_config(const std::string &path, InspectOptions base) {
  auto loaded = load_yaml_file(path);
  if (!loaded) return tl::unexpected(loaded.error());
  const YAML::Node root = *loaded;
  if (!root.IsMap()) return bad_input(fmt::format("{}: expected a mapping of detector settings", path));
  auto &c = base.detectors;
  struct Key {
    const char *name;
    double *d;
    uint32_t *u;
  } keys[] = {
      {"scan_window_s", &c.scan_window_s, nullptr}, {"scan_ports", nullptr, &c.scan_ports},
      {"scan_hosts", nullptr, &c.scan_hosts}, {"scan_unanswered", &c.scan_unanswered, nullptr},
      {"syn_flood_pps", nullptr, &c.syn_flood_pps}, {"syn_flood_answered", &c.syn_flood_answered, nullptr},
      {"icmp_flood_pps", nullptr, &c.icmp_flood_pps}, {"guess_window_s", &c.guess_window_s, nullptr},
      {"guess_connections", nullptr, &c.guess_connections}, {"guess_failed_logins", nullptr, &c.guess_failed_logins},
      {"tcp_timeout_s", &base.tcp_timeout_s, nullptr}, {"udp_timeout_s", &base.udp_timeout_s, nullptr},
      {"closed_timeout_s", &base.closed_timeout_s, nullptr},
  };
  for (const auto &kv : root) {
    std::string name = kv.first.as<std::string>("");
    int line = kv.first.Mark().line + 1;
    const Key *k = nullptr;
    for (const auto &cand : keys)
      if (name == cand.name) k = &cand;
    if (!k) return bad_input(fmt::format("{}:{}: unknown setting '{}'", path, line, name));
    try {
      double v = kv.second.as<double>();
      if (v < 0 || (k->u && v != static_cast<double>(static_cast<uint32_t>(v))))
        return bad_input(fmt::format("{}:{}: {} must be a {}", path, line, name, k->u ? "whole number" : "non-negative number"));
      if (k->d) *k->d = v;
      else *k->u = static_cast<uint32_t>(v);
    } catch (const YAML::Exception &) {
      return bad_input(fmt::format("{}:{}: {} must be a number", path, line, name));
    }
  }
  return base;
}

} // namespace bpftap::inspect
