#include "inspect/inspector.h"

#include <netinet/in.h>

#include <algorithm>
#include <fstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "util/yaml_file.h"
#include "inspect/community_id.h"
#include "inspect/dpi.h"
#include "inspect/eve.h"
#include "inspect/flow.h"
#include "inspect/names.h"
#include "inspect/signatures.h"

namespace bpftap::inspect {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// Zeek's uid: "C" and 17 base62 digits (about 101 bits): 10 digits from one 64-bit word and
// 7 from another, so no digit is a leading zero of a number too short for 17.
std::string zeek_uid(uint64_t a, uint64_t b) {
  static const char *digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string s = "C";
  for (int i = 0; i < 17; i++) {
    uint64_t &v = i < 10 ? a : b;
    s += digits[v % 62];
    v /= 62;
  }
  return s;
}

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Zeek's originator heuristics: the first packet's sender is the originator, unless that packet
// is a SYN-ACK, or (mid-stream TCP, UDP) it comes from a server port to a port that is not one
// (a DNS response seen before its query).
bool sent_by_responder(const Decoded &d) {
  if (d.proto == IPPROTO_TCP) {
    if ((d.tcp_flags & (kSyn | kAck)) == (kSyn | kAck)) return true;
    if (d.tcp_flags & kSyn) return false;
  } else if (d.proto != IPPROTO_UDP) {
    return false;
  }
  return likely_server_port(d.sport) && !likely_server_port(d.dport);
}

// Zeek's history letters of one packet: S h A D F R (upper case from the originator).
void add_history(Flow &f, const Decoded &d, bool from_orig) {
  if (d.proto == IPPROTO_TCP) {
    uint8_t fl = d.tcp_flags;
    if (fl & kSyn) f.add_history((fl & kAck) ? 'H' : 'S', from_orig);
    if (fl & kFin) f.add_history('F', from_orig);
    if (fl & kRst) f.add_history('R', from_orig);
    if (d.payload_len) f.add_history('D', from_orig);
    else if ((fl & kAck) && !(fl & (kSyn | kFin | kRst))) f.add_history('A', from_orig);
  } else if (d.proto == IPPROTO_UDP && d.payload_len) {
    f.add_history('D', from_orig);
  }
}

} // namespace

struct Inspector::Impl {
  InspectOptions opts;
  std::shared_ptr<DpiEngine> dpi_engine;
  DpiEngine &dpi;
  Detectors detectors;
  ConnLog conn_log;
  std::unique_ptr<AlertPcaps> pcaps;  // --alert-pcap, or null
  std::unordered_map<FlowKey, std::unique_ptr<Flow>, FlowKeyHash> flows;
  InspectStats st;
  uint64_t last_sweep_ns = 0;
  uint64_t last_ms = 0;

  explicit Impl(InspectOptions o)
      : opts(std::move(o)), dpi_engine(opts.dpi ? opts.dpi : std::make_shared<DpiEngine>()), dpi(*dpi_engine),
        detectors(opts.detectors), conn_log(opts.flows, opts.flow_out, opts.flows_format) {
    if (!opts.alert_pcap.dir.empty())
      if (auto p = AlertPcaps::open(opts.alert_pcap)) pcaps = std::move(*p);
  }

  std::string iface_name(uint32_t i) const { return i < opts.interfaces.size() ? opts.interfaces[i].name : ""; }

  EveSource source(const Flow &f, uint64_t pcap_cnt) const {
    return opts.offline ? EveSource{"", pcap_cnt} : EveSource{iface_name(f.iface), 0};
  }

  void write_eve(const ojson &j) {
    if (!opts.alerts && !opts.alert_out && !opts.eve_tap) return;
    std::string line = j.dump(-1, ' ', false, ojson::error_handler_t::replace);
    if (opts.alert_out) opts.alert_out->line(line);
    else if (opts.alerts) std::fprintf(opts.alerts, "%s\n", line.c_str());
    if (opts.eve_tap) opts.eve_tap(std::move(line));
  }

  // pcap_cnt: the packet that raised it (0 when none did: a flow ending on a timeout).
  void emit_alert(Flow &f, uint64_t ts_ns, const Signature &sig, const ojson &metadata, uint64_t pcap_cnt) {
    st.alerts++;
    f.alerted = true;
    if (pcaps) pcaps->alerted(f, opts.interfaces);
    ojson j = eve_alert(f, ts_ns, sig, metadata, source(f, pcap_cnt));
    if (opts.on_alert) opts.on_alert(j);
    write_eve(j);
  }

  // Alerts for the flow's nDPI risks not alerted yet (once detection is over). None when nDPI
  // only guessed the protocol from a port: a SYN to port 143 is not an IMAP session, and a scan
  // is one scan alert, not one "Unsafe Protocol" per port tried.
  void risk_alerts(Flow &f, uint64_t ts_ns, uint64_t pcap_cnt) {
    if (!f.dpi || !f.dpi->done() || f.dpi->guessed()) return;
    uint64_t fresh = f.dpi->risks() & ~f.alerted_risks;
    for (int r = 1; r < 64; r++) {
      if (!(fresh & (1ull << r))) continue;
      std::string name = risk_name(r);
      Signature sig = ndpi_signature(name, risk_severity(r));
      ojson meta = ojson::object();
      if (sig.sid == 8000999) meta["ndpi_risk"] = ojson::array({name});
      emit_alert(f, ts_ns, sig, meta, pcap_cnt);
    }
    f.alerted_risks |= fresh;
  }

  void end_flow(Flow &f, const char *reason) {
    if (f.dpi) f.dpi->finish();
    risk_alerts(f, f.last_ns, 0);
    write_eve(eve_flow(f, reason, source(f, 0)));
    conn_log.write(f, opts.offline ? "" : iface_name(f.iface));
    if (pcaps) pcaps->ended(f);
    if (opts.ipfix) opts.ipfix->flow(f);
  }

  void sweep(uint64_t now) {
    for (auto it = flows.begin(); it != flows.end();) {
      Flow &f = *it->second;
      double idle = now > f.last_ns ? static_cast<double>(now - f.last_ns) / 1e9 : 0;
      double limit = f.closed() ? opts.closed_timeout_s : f.proto == IPPROTO_TCP ? opts.tcp_timeout_s : opts.udp_timeout_s;
      if (idle > limit) {
        end_flow(f, "timeout");
        it = flows.erase(it);
      } else {
        ++it;
      }
    }
  }

  Flow &new_flow(const Decoded &d, const FlowKey &key, const Packet &pkt, std::unique_ptr<Flow> &slot) {
    slot = std::make_unique<Flow>();
    Flow &f = *slot;
    st.flows++;
    bool flip = sent_by_responder(d);
    f.orig = flip ? Endpoint{d.dst, d.dport} : Endpoint{d.src, d.sport};
    f.resp = flip ? Endpoint{d.src, d.sport} : Endpoint{d.dst, d.dport};
    if (flip) f.history = "^";
    f.proto = d.proto;
    f.vlan = d.vlan;
    f.iface = pkt.iface;
    f.first_ns = pkt.ts_ns;
    f.first_pcap_cnt = st.packets;
    f.icmp_type = d.icmp_type;
    f.icmp_code = d.icmp_code;
    bool icmp = d.proto == IPPROTO_ICMP || d.proto == IPPROTO_ICMPV6;
    f.community_id = icmp ? community_id(d.src, d.dst, d.proto, d.icmp_type, d.icmp_code)
                          : community_id(f.orig.ip, f.resp.ip, d.proto, f.orig.port, f.resp.port);
    f.id = (FlowKeyHash{}(key) ^ (pkt.ts_ns * 0x9e3779b97f4a7c15ull)) & ((1ull << 51) - 1);
    f.uid = zeek_uid(splitmix64(f.id ^ pkt.ts_ns), splitmix64(f.id + pkt.ts_ns));
    f.dpi = std::make_unique<DpiFlow>(dpi);
    return f;
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
    bool fresh = !slot;
    Flow &f = fresh ? new_flow(*d, key, pkt, slot) : *slot;
    bool from_orig = d->src == f.orig.ip && d->sport == f.orig.port;
    f.last_ns = std::max(f.last_ns, ts);
    (from_orig ? f.orig_pkts : f.resp_pkts)++;
    (from_orig ? f.orig_bytes : f.resp_bytes) += d->payload_len;
    (from_orig ? f.orig_ip_bytes : f.resp_ip_bytes) += d->ip_len;
    (from_orig ? f.orig_frame_bytes : f.resp_frame_bytes) += pkt.data.size();
    add_history(f, *d, from_orig);
    if (pcaps) pcaps->packet(f, pkt, opts.interfaces);
    if (d->proto == IPPROTO_TCP) {
      uint8_t fl = d->tcp_flags;
      bool syn = fl & kSyn, ack = fl & kAck;
      (from_orig ? f.orig_tcp_flags : f.resp_tcp_flags) |= fl;
      if (from_orig) {
        f.orig_syn |= syn && !ack;
        f.orig_ack |= ack;
        f.orig_fin |= (fl & kFin) != 0;
        f.orig_rst |= (fl & kRst) != 0;
      } else {
        f.resp_synack |= syn && ack;
        f.resp_syn |= syn;
        f.resp_fin |= (fl & kFin) != 0;
        f.resp_rst |= (fl & kRst) != 0;
      }
    }
    // nDPI wants milliseconds that never go back (as ndpiReader feeds it).
    uint64_t ms = ts / 1000000ull;
    if (ms < last_ms) ms = last_ms;
    last_ms = ms;
    if (f.dpi && !f.dpi->done()) {
      f.dpi->process(d->l3, ms, d->proto);
      if (f.dpi->done()) risk_alerts(f, ts, st.packets);
    }
    detectors.packet(*d, f, from_orig, fresh, ts, [&](const DetectorAlert &a) {
      ojson meta = ojson::object();
      for (const auto &[k, v] : a.metadata) meta[k] = ojson::array({v});
      emit_alert(f, ts, signature(a.kind), meta, st.packets);  // a.flow is f: the packet's flow
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
  if (o.ipfix) o.ipfix->flush();
  return r;
}

Result<> Inspector::finish() {
  // In order of first packet, so the records come out in a stable order.
  std::vector<Flow *> all;
  for (auto &[k, f] : impl_->flows) all.push_back(f.get());
  std::sort(all.begin(), all.end(), [](const Flow *a, const Flow *b) { return a->first_ns < b->first_ns; });
  for (Flow *f : all) impl_->end_flow(*f, "shutdown");
  impl_->flows.clear();
  return flush();
}

void Inspector::expire(uint64_t now_ns) {
  impl_->sweep(now_ns);
  flush();
}

uint32_t Inspector::add_interface(const InterfaceInfo &iface) {
  impl_->opts.interfaces.push_back(iface);
  return static_cast<uint32_t>(impl_->opts.interfaces.size() - 1);
}

InspectStats Inspector::stats() const {
  InspectStats s = impl_->st;
  s.active_flows = impl_->flows.size();
  if (impl_->pcaps) s.alert_pcap = impl_->pcaps->stats();
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
