// The inspector on crafted packets and on the corpus's attack captures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inspect/community_id.h"
#include "inspect/decode.h"
#include "inspect/inspector.h"

using namespace bpftap;
using namespace bpftap::inspect;
using json = nlohmann::json;

namespace {

// Ethernet + IPv4 + TCP/UDP/ICMP.
std::vector<uint8_t> frame(uint8_t proto, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                           uint8_t flags = 0x10, const std::string &payload = "", uint8_t icmp_type = 8) {
  size_t l4 = proto == IPPROTO_TCP ? 20 : 8;
  std::vector<uint8_t> f(14 + 20 + l4 + payload.size(), 0);
  f[12] = 0x08;
  uint16_t tot = static_cast<uint16_t>(20 + l4 + payload.size());
  f[14] = 0x45;
  f[16] = static_cast<uint8_t>(tot >> 8);
  f[17] = static_cast<uint8_t>(tot);
  f[22] = 64;
  f[23] = proto;
  inet_pton(AF_INET, src, &f[26]);
  inet_pton(AF_INET, dst, &f[30]);
  if (proto == IPPROTO_ICMP) {
    f[34] = icmp_type;
  } else {
    f[34] = static_cast<uint8_t>(sport >> 8);
    f[35] = static_cast<uint8_t>(sport);
    f[36] = static_cast<uint8_t>(dport >> 8);
    f[37] = static_cast<uint8_t>(dport);
  }
  if (proto == IPPROTO_TCP) {
    f[46] = 5 << 4;
    f[47] = flags;
  }
  std::copy(payload.begin(), payload.end(), f.begin() + 14 + 20 + static_cast<long>(l4));
  return f;
}

// The Community ID of a conn.log record's 5-tuple.
std::string community_id(const json &f, uint8_t proto) {
  auto ip = [](const std::string &s) {
    IpAddr a{4, {}};
    inet_pton(AF_INET, s.c_str(), a.bytes.data());
    return a;
  };
  return bpftap::inspect::community_id(ip(f["id.orig_h"]), ip(f["id.resp_h"]), proto, f["id.orig_p"].get<uint16_t>(),
                                       f["id.resp_p"].get<uint16_t>());
}

// Runs packets (with timestamps) through an inspector; returns the alerts and flows as JSON.
struct Output {
  std::vector<json> alerts, eve_flows, flows;  // EVE alert events, EVE flow events, conn.log
};

class Capture {
public:
  Capture(InspectOptions o = {}) {
    alerts_ = open_memstream(&abuf_, &alen_);
    flows_ = open_memstream(&fbuf_, &flen_);
    o.alerts = alerts_;
    o.flows = flows_;
    if (o.interfaces.empty()) o.interfaces = {InterfaceInfo{"test0", 1, 1, 262144}};
    insp_ = std::make_unique<Inspector>(o);
  }
  ~Capture() {
    free(abuf_);
    free(fbuf_);
  }
  void add(uint64_t ts_ns, const std::vector<uint8_t> &f) {
    Packet p;
    p.ts_ns = ts_ns;
    p.wire_len = static_cast<uint32_t>(f.size());
    p.data = f;
    (void)insp_->write(p);
  }
  Output finish() {
    insp_->finish();
    std::fclose(alerts_);
    std::fclose(flows_);
    Output out;
    auto lines = [](const char *buf, size_t len, std::vector<json> &v) {
      std::string s(buf ? buf : "", len);
      size_t pos = 0;
      while (pos < s.size()) {
        size_t e = s.find('\n', pos);
        v.push_back(json::parse(s.substr(pos, e - pos)));
        pos = e + 1;
      }
    };
    std::vector<json> eve;
    lines(abuf_, alen_, eve);
    for (auto &e : eve) (e["event_type"] == "flow" ? out.eve_flows : out.alerts).push_back(e);
    lines(fbuf_, flen_, out.flows);
    return out;
  }
  // The behavioural detectors' alerts only (not nDPI's risks).
  std::vector<json> detector_alerts() {
    std::vector<json> out;
    for (auto &a : finish().alerts)
      if (!a["alert"]["signature"].get<std::string>().starts_with("nDPI:")) out.push_back(a);
    return out;
  }
  Inspector &inspector() { return *insp_; }

private:
  FILE *alerts_, *flows_;
  char *abuf_ = nullptr, *fbuf_ = nullptr;
  size_t alen_ = 0, flen_ = 0;
  std::unique_ptr<Inspector> insp_;
};

constexpr uint64_t kSec = 1000000000ull;

TEST(Decode, LinkTypesAndFragments) {
  auto f = frame(IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 1000, 53, 0, "abcd");
  auto d = decode(kLinkEthernet, f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->src.str(), "10.0.0.1");
  EXPECT_EQ(d->dport, 53);
  EXPECT_EQ(d->payload_len, 4u);
  EXPECT_EQ(d->l3.size(), f.size() - 14);
  // Raw IP and Linux cooked carry the same packet.
  std::vector<uint8_t> raw(f.begin() + 14, f.end());
  EXPECT_TRUE(decode(kLinkRaw, raw));
  std::vector<uint8_t> sll(16, 0);
  sll[14] = 0x08;
  sll.insert(sll.end(), raw.begin(), raw.end());
  auto ds = decode(kLinkLinuxSll, sll);
  ASSERT_TRUE(ds);
  EXPECT_EQ(ds->dport, 53);
  // VLAN-tagged.
  std::vector<uint8_t> tagged(f.begin(), f.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x2a});
  tagged.insert(tagged.end(), f.begin() + 12, f.end());
  auto dv = decode(kLinkEthernet, tagged);
  ASSERT_TRUE(dv);
  EXPECT_EQ(dv->vlan, 42);
  // Non-first fragment, truncated, not IP, garbage: not decoded.
  auto frag = f;
  frag[20] = 0x00;
  frag[21] = 0x10;
  EXPECT_FALSE(decode(kLinkEthernet, frag));
  EXPECT_FALSE(decode(kLinkEthernet, std::span(f).first(30)));
  auto arp = f;
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_FALSE(decode(kLinkEthernet, arp));
  EXPECT_FALSE(decode(kLinkEthernet, std::span<const uint8_t>()));
}

TEST(Inspector, FlowRecordIsZeekConnLog) {
  Capture c;
  const char *a = "10.0.0.1", *b = "10.0.0.2";
  c.add(1 * kSec, frame(IPPROTO_TCP, a, b, 40000, 8080, 0x02));
  c.add(1 * kSec + 1000, frame(IPPROTO_TCP, b, a, 8080, 40000, 0x12));
  c.add(1 * kSec + 2000, frame(IPPROTO_TCP, a, b, 40000, 8080, 0x10));
  c.add(1 * kSec + 3000, frame(IPPROTO_TCP, a, b, 40000, 8080, 0x18, "hello"));
  c.add(2 * kSec, frame(IPPROTO_TCP, b, a, 8080, 40000, 0x18, "hi"));
  c.add(2 * kSec + 5000, frame(IPPROTO_TCP, a, b, 40000, 8080, 0x11));
  c.add(2 * kSec + 6000, frame(IPPROTO_TCP, b, a, 8080, 40000, 0x11));
  c.add(3 * kSec, frame(IPPROTO_TCP, "10.0.0.3", b, 40001, 22, 0x02));  // unanswered
  auto out = c.finish();
  ASSERT_EQ(out.flows.size(), 2u);
  const json &f = out.flows[0];
  EXPECT_EQ(f["id.orig_h"], a);
  EXPECT_EQ(f["id.orig_p"], 40000);
  EXPECT_EQ(f["id.resp_h"], b);
  EXPECT_EQ(f["id.resp_p"], 8080);
  EXPECT_EQ(f["proto"], "tcp");
  EXPECT_EQ(f["conn_state"], "SF");
  EXPECT_EQ(f["orig_pkts"], 4);
  EXPECT_EQ(f["resp_pkts"], 3);
  EXPECT_EQ(f["orig_bytes"], 5);
  EXPECT_EQ(f["resp_bytes"], 2);
  EXPECT_NEAR(f["duration"].get<double>(), 1.000006, 1e-9);
  EXPECT_EQ(f["ts"].get<double>(), 1.0);
  EXPECT_TRUE(f["uid"].get<std::string>().starts_with("C"));
  EXPECT_EQ(f["history"], "ShADdFf");
  EXPECT_EQ(f["missed_bytes"], 0);
  EXPECT_EQ(f["local_orig"], true);
  EXPECT_EQ(f["local_resp"], true);
  EXPECT_EQ(f["community_id"], community_id(f, 6));
  EXPECT_FALSE(f.contains("service"));  // nothing nDPI recognised
  const json &s0 = out.flows[1];
  EXPECT_EQ(s0["conn_state"], "S0");
  EXPECT_EQ(s0["history"], "S");
  // A single packet: Zeek leaves duration and the byte counts unset.
  EXPECT_FALSE(s0.contains("duration"));
  EXPECT_FALSE(s0.contains("orig_bytes"));
  EXPECT_TRUE(out.alerts.empty());
  // One EVE flow event per flow, with the conn.log's community_id.
  ASSERT_EQ(out.eve_flows.size(), 2u);
  EXPECT_EQ(out.eve_flows[0]["community_id"], f["community_id"]);
  EXPECT_EQ(out.eve_flows[0]["flow"]["state"], "closed");
  EXPECT_EQ(out.eve_flows[0]["flow"]["reason"], "shutdown");
  EXPECT_EQ(out.eve_flows[0]["flow"]["pkts_toserver"], 4);
  EXPECT_EQ(out.eve_flows[0]["tcp"]["tcp_flags_ts"], "1b");
  EXPECT_EQ(out.eve_flows[0]["in_iface"], "test0");
}

// ts and duration with Zeek's 6 decimals, never more (the raw text, not the parsed number).
TEST(Inspector, ConnLogTimesHaveSixDecimals) {
  char *buf = nullptr;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  InspectOptions o;
  o.flows = out;
  o.interfaces = {InterfaceInfo{"test0", 1, 1, 262144}};
  {
    Inspector insp(o);
    Packet p;
    auto f1 = frame(IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 40000, 9999, 0, "x");
    p.ts_ns = 1700000000123456789ull;
    p.data = f1;
    (void)insp.write(p);
    p.ts_ns += 1234567;
    (void)insp.write(p);
    insp.finish();
  }
  std::fclose(out);
  std::string s(buf, len);
  free(buf);
  EXPECT_NE(s.find("\"ts\":1700000000.123457,"), std::string::npos) << s;
  EXPECT_NE(s.find("\"duration\":0.001235,"), std::string::npos) << s;
}

// Zeek's originator heuristics: a DNS response seen before its query keeps the client as the
// originator; a flow whose first packet is a SYN-ACK gets its server as responder and "^".
TEST(Inspector, OriginatorHeuristics) {
  Capture c;
  c.add(kSec, frame(IPPROTO_UDP, "10.0.0.53", "10.0.0.1", 53, 40000, 0, "response"));
  c.add(kSec + 10, frame(IPPROTO_UDP, "10.0.0.1", "10.0.0.53", 40000, 53, 0, "query"));
  c.add(2 * kSec, frame(IPPROTO_TCP, "10.0.0.80", "10.0.0.1", 80, 40001, 0x12));
  c.add(2 * kSec + 10, frame(IPPROTO_TCP, "10.0.0.1", "10.0.0.80", 40001, 80, 0x10));
  auto out = c.finish();
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0]["id.orig_h"], "10.0.0.1");
  EXPECT_EQ(out.flows[0]["id.resp_p"], 53);
  EXPECT_EQ(out.flows[0]["history"], "^dD");
  EXPECT_EQ(out.flows[1]["id.orig_h"], "10.0.0.1");
  EXPECT_EQ(out.flows[1]["id.resp_p"], 80);
  EXPECT_EQ(out.flows[1]["history"], "^hA");
}

// ICMP: type and code in the port fields, no service; no nDPI alert from a port guess.
TEST(Inspector, IcmpPortsAndUnansweredSyns) {
  Capture c;
  c.add(kSec, frame(IPPROTO_ICMP, "10.0.0.1", "10.0.0.2", 0, 0, 0, "", 8));
  c.add(kSec + 10, frame(IPPROTO_ICMP, "10.0.0.2", "10.0.0.1", 0, 0, 0, "", 0));
  for (uint16_t port : {21, 23, 143, 110})
    c.add(2 * kSec + port, frame(IPPROTO_TCP, "10.0.0.66", "10.0.0.2", 50000, port, 0x02));
  auto out = c.finish();
  ASSERT_EQ(out.flows.size(), 5u);
  EXPECT_EQ(out.flows[0]["proto"], "icmp");
  EXPECT_EQ(out.flows[0]["id.orig_p"], 8);
  EXPECT_EQ(out.flows[0]["id.resp_p"], 0);
  EXPECT_FALSE(out.flows[0].contains("service"));
  // The spec's own example: an echo request's Community ID.
  EXPECT_EQ(out.eve_flows[0]["icmp_type"], 8);
  for (size_t i = 1; i < 5; i++) EXPECT_FALSE(out.flows[i].contains("service")) << out.flows[i].dump();
  EXPECT_TRUE(out.alerts.empty()) << out.alerts.size() << " alerts, first: " << (out.alerts.empty() ? "" : out.alerts[0].dump());
}

// Live: flows idle past their timeout end on the wall clock (Inspector::expire), with no packet.
TEST(Inspector, ExpireEndsIdleFlowsWithoutPackets) {
  InspectOptions o;
  o.udp_timeout_s = 2;
  Capture c(o);
  c.add(10 * kSec, frame(IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 40000, 9999, 0, "x"));
  c.inspector().expire(11 * kSec);
  EXPECT_EQ(c.inspector().stats().active_flows, 1u);
  c.inspector().expire(12 * kSec + 1);
  EXPECT_EQ(c.inspector().stats().active_flows, 0u);
  auto out = c.finish();
  ASSERT_EQ(out.flows.size(), 1u);
  ASSERT_EQ(out.eve_flows.size(), 1u);
  EXPECT_EQ(out.eve_flows[0]["flow"]["reason"], "timeout");
}

// --flows-format tsv: Zeek's header, one tab-separated row per flow, "-" for unset fields.
TEST(Inspector, ConnLogTsv) {
  char *buf = nullptr;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  InspectOptions o;
  o.flows = out;
  o.flows_format = FlowFormat::Tsv;
  o.interfaces = {InterfaceInfo{"test0", 1, 1, 262144}};
  {
    Inspector insp(o);
    Packet p;
    auto f1 = frame(IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 40000, 80, 0x02);
    p.ts_ns = 5 * kSec;
    p.data = f1;
    (void)insp.write(p);
    insp.finish();
  }
  std::fclose(out);
  std::string s(buf, len);
  free(buf);
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < s.size();) {
    size_t e = s.find('\n', pos);
    lines.push_back(s.substr(pos, e - pos));
    pos = e + 1;
  }
  ASSERT_GE(lines.size(), 10u) << s;
  EXPECT_EQ(lines[0], "#separator \\x09");
  EXPECT_EQ(lines[4], "#path\tconn");
  ASSERT_TRUE(lines[6].starts_with("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice"));
  auto count = [](const std::string &l) { return std::count(l.begin(), l.end(), '\t'); };
  EXPECT_EQ(count(lines[6]), count(lines[7]));
  EXPECT_EQ(count(lines[6]) - 1, count(lines[8]));  // "#fields" is a column of the header only
  EXPECT_TRUE(lines[8].starts_with("5.000000\tC")) << lines[8];
  EXPECT_NE(lines[8].find("\t10.0.0.1\t40000\t10.0.0.2\t80\ttcp\t-\t-\t-\t-\tS0\tT\tT\t0\tS\t1\t40\t0\t0\t-\t1:"),
            std::string::npos) << lines[8];
  EXPECT_TRUE(lines.back().starts_with("#close\t"));
}

TEST(Detectors, VerticalPortScan) {
  Capture c;
  for (uint16_t port = 1; port <= 60; port++) {
    c.add(kSec + port * 1000000ull, frame(IPPROTO_TCP, "10.0.0.66", "10.0.0.2", 50000, port, 0x02));
    c.add(kSec + port * 1000000ull + 1000, frame(IPPROTO_TCP, "10.0.0.2", "10.0.0.66", port, 50000, 0x14));  // RST
  }
  auto alerts = c.detector_alerts();
  ASSERT_EQ(alerts.size(), 1u);
  const json &a = alerts[0];
  EXPECT_EQ(a["event_type"], "alert");
  EXPECT_EQ(a["src_ip"], "10.0.0.66");
  EXPECT_EQ(a["dest_ip"], "10.0.0.2");
  EXPECT_EQ(a["proto"], "TCP");
  EXPECT_EQ(a["in_iface"], "test0");
  EXPECT_EQ(a["alert"]["signature"], "Port scan (vertical)");  // constant: the figures are in metadata
  EXPECT_EQ(a["alert"]["signature_id"], 9000001);
  EXPECT_EQ(a["alert"]["category"], "Attempted Information Leak");
  EXPECT_EQ(a["alert"]["metadata"]["target"], json::array({"10.0.0.2"}));
  EXPECT_EQ(a["alert"]["metadata"]["scanner"], json::array({"10.0.0.66"}));
  EXPECT_EQ(a["alert"]["metadata"]["ports_tried"], json::array({"50"}));
  EXPECT_TRUE(a.contains("community_id"));
  EXPECT_EQ(a["flow"]["src_ip"], "10.0.0.66");
}

TEST(Detectors, AnsweredConnectionsAreNotAScan) {
  Capture c;
  for (uint16_t port = 1; port <= 60; port++) {
    c.add(kSec + port * 1000000ull, frame(IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 50000, port, 0x02));
    c.add(kSec + port * 1000000ull + 1000, frame(IPPROTO_TCP, "10.0.0.2", "10.0.0.1", port, 50000, 0x12));
  }
  EXPECT_TRUE(c.detector_alerts().empty());
}

TEST(Detectors, SynAndIcmpFloods) {
  Capture c;
  for (uint32_t i = 0; i < 600; i++) {
    std::string src = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    c.add(5 * kSec + i * 1000000ull, frame(IPPROTO_TCP, src.c_str(), "10.0.0.2", static_cast<uint16_t>(1024 + i), 80, 0x02));
    c.add(5 * kSec + i * 1000000ull + 10, frame(IPPROTO_ICMP, "10.0.0.9", "10.0.0.3", 0, 0, 0, "", 8));
  }
  auto out = c.finish();
  std::set<std::string> sigs;
  for (const auto &a : out.alerts) sigs.insert(a["alert"]["signature"].get<std::string>().substr(0, 9));
  EXPECT_TRUE(sigs.count("SYN flood")) << out.alerts.size();
  EXPECT_TRUE(sigs.count("ICMP floo"));
}

TEST(Detectors, PasswordGuessing) {
  Capture c;
  for (uint16_t i = 0; i < 12; i++) {
    uint64_t t = kSec + i * 200000000ull;
    uint16_t sport = static_cast<uint16_t>(40000 + i);
    c.add(t, frame(IPPROTO_TCP, "10.0.0.66", "10.0.0.2", sport, 22, 0x02));
    c.add(t + 1000, frame(IPPROTO_TCP, "10.0.0.2", "10.0.0.66", 22, sport, 0x12));
    c.add(t + 2000, frame(IPPROTO_TCP, "10.0.0.66", "10.0.0.2", sport, 22, 0x14));
  }
  auto alerts = c.detector_alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_TRUE(alerts[0]["alert"]["signature"].get<std::string>().starts_with("SSH password guessing"));
  // FTP: three refused logins.
  Capture f;
  f.add(kSec, frame(IPPROTO_TCP, "10.0.0.66", "10.0.0.2", 40000, 21, 0x02));
  for (int i = 0; i < 3; i++)
    f.add(2 * kSec + i, frame(IPPROTO_TCP, "10.0.0.2", "10.0.0.66", 21, 40000, 0x18, "530 Login incorrect.\r\n"));
  auto fo = f.detector_alerts();
  ASSERT_EQ(fo.size(), 1u);
  EXPECT_TRUE(fo[0]["alert"]["signature"].get<std::string>().starts_with("FTP password guessing"));
}

// Heartbleed as Zeek's notices: a heartbeat request declaring 16 KiB in a 3-byte record, then
// the server's 16 KiB response; a well-formed heartbeat raises nothing.
TEST(Detectors, Heartbleed) {
  auto hb = [](uint8_t type, uint16_t record, uint16_t declared, size_t body) {
    std::string p = {24, 3, 2, static_cast<char>(record >> 8), static_cast<char>(record & 0xff), static_cast<char>(type),
                     static_cast<char>(declared >> 8), static_cast<char>(declared & 0xff)};
    return p + std::string(body, 'x');
  };
  Capture c;
  const char *cl = "10.0.0.1", *sv = "10.0.0.2";
  c.add(kSec, frame(IPPROTO_TCP, cl, sv, 40000, 443, 0x02));
  c.add(kSec + 1, frame(IPPROTO_TCP, sv, cl, 443, 40000, 0x12));
  c.add(kSec + 2, frame(IPPROTO_TCP, cl, sv, 40000, 443, 0x18, hb(1, 19 + 4, 4, 16)));     // honest: no alert
  c.add(kSec + 3, frame(IPPROTO_TCP, sv, cl, 443, 40000, 0x18, hb(2, 19 + 4, 4, 16)));
  c.add(kSec + 4, frame(IPPROTO_TCP, cl, sv, 40000, 443, 0x18, hb(1, 3, 0x4000, 0)));      // the attack
  c.add(kSec + 5, frame(IPPROTO_TCP, sv, cl, 443, 40000, 0x18, hb(2, 0x4013, 0x4000, 1000)));  // the leak
  auto alerts = c.detector_alerts();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["alert"]["signature"], "TLS Heartbleed attack");
  EXPECT_EQ(alerts[0]["alert"]["signature_id"], 9000008);
  EXPECT_EQ(alerts[0]["alert"]["metadata"]["payload_length"], json::array({"16384"}));
  EXPECT_EQ(alerts[1]["alert"]["signature"], "TLS Heartbleed attack success");
  EXPECT_EQ(alerts[1]["alert"]["metadata"]["response_record_length"], json::array({"16403"}));
}

TEST(Config, ThresholdsAndBadKeys) {
  char path[] = "/tmp/bpftap-inspect-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "scan_ports: 20\nicmp_flood_pps: 100\n";
  auto c = read_inspect_config(path, {});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->detectors.scan_ports, 20u);
  EXPECT_EQ(c->detectors.icmp_flood_pps, 100u);
  std::ofstream(path) << "scan_ports: 20\nscan_prots: 3\n";
  auto bad = read_inspect_config(path, {});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().bad_input);
  EXPECT_NE(bad.error().message().find(":2: unknown setting 'scan_prots'"), std::string::npos) << bad.error().message();
  std::ofstream(path) << "scan_ports: many\n";
  EXPECT_FALSE(read_inspect_config(path, {}));
  std::ofstream(path) << "scan_ports: [1, \n";
  EXPECT_FALSE(read_inspect_config(path, {}));
  unlink(path);
}

} // namespace
