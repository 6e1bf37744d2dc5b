#include "agent/config.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

using namespace bpftap::agent;

namespace {

std::string write_tmp(const std::string &text) {
  char path[] = "/tmp/bpftap-agent-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(AgentConfig, TheIssueExampleParses) {
  auto path = write_tmp(R"(api:
  listen: 127.0.0.1:7878
  token_file: /etc/bpftap/token
sessions:
  - name: vm-capture
    interfaces: ["tap-*", "vnet*"]
    direction: both
    filter: "tcp or udp"
    snaplen: 262144
    capture: { dir: /var/lib/bpftap/pcap, rotate_mb: 100, keep_files: 10 }
  - name: ids-feed
    interfaces: ["tap-*"]
    direction: in
    rules: ["10 accept proto tcp dport 80", "20 reject"]
    flow_cutoff: 16384
    attach: tc
    mirror: { to: mon0 }
  - name: sensor
    interfaces: ["vnet*"]
    netns: tenant-1
    mirror: { vxlan: 10.0.0.9, vni: 42, local: 10.0.0.1 }
)");
  auto c = load_agent_config(path);
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->sessions.size(), 3u);
  EXPECT_EQ(c->api.token_file, "/etc/bpftap/token");
  const auto &cap = c->sessions[0];
  EXPECT_EQ(cap.interfaces, (std::vector<std::string>{"tap-*", "vnet*"}));
  EXPECT_TRUE(cap.ingress && cap.egress);
  ASSERT_TRUE(cap.capture);
  EXPECT_EQ(cap.capture->keep_files, 10u);
  const auto &ids = c->sessions[1];
  EXPECT_TRUE(ids.ingress);
  EXPECT_FALSE(ids.egress);
  EXPECT_EQ(ids.flow_cutoff, 16384u);
  ASSERT_TRUE(ids.mirror);
  EXPECT_EQ(ids.mirror->to, "mon0");
  EXPECT_EQ(c->sessions[2].mirror->vni, std::optional<int64_t>(42));
  EXPECT_EQ(ids.attach, bpftap::AttachMode::Tc);
  EXPECT_EQ(cap.attach, bpftap::AttachMode::Auto);
  EXPECT_EQ(c->sessions[2].line, 18);
  EXPECT_EQ(c->sessions[2].netns, "tenant-1");
  EXPECT_EQ(ids.netns, "");
  auto sensor = parse_session_text(session_to_json(c->sessions[2]), "api");
  ASSERT_TRUE(sensor) << sensor.error().message();
  EXPECT_TRUE(*sensor == c->sessions[2]);
  // The same session through the API's JSON gives the same config.
  auto again = parse_session_text(session_to_json(ids), "api");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(*again == ids);
  EXPECT_NE(session_to_json(ids).find(R"("attach":"tc")"), std::string::npos) << session_to_json(ids);
  unlink(path.c_str());
}

TEST(AgentConfig, ListenOnAUnixSocket) {
  auto path = write_tmp("api:\n  listen: unix:/run/bpftap/api.sock\n");
  auto c = load_agent_config(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->api.listen, "unix:/run/bpftap/api.sock");
  unlink(path.c_str());
}

// Issue 14's inspect keys: conn.log format and an IPFIX collector.
TEST(AgentConfig, InspectFormatsAndIpfix) {
  auto path = write_tmp("sessions:\n  - name: ids\n    interfaces: [x]\n"
                        "    inspect: {alerts: /tmp/eve.json, flows: /tmp/conn.log, flows_format: tsv, ipfix: 127.0.0.1:4739}\n");
  auto c = load_agent_config(path);
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->sessions.size(), 1u);
  ASSERT_TRUE(c->sessions[0].inspect);
  EXPECT_EQ(c->sessions[0].inspect->flows_format, "tsv");
  EXPECT_EQ(c->sessions[0].inspect->ipfix, "127.0.0.1:4739");
  unlink(path.c_str());
}

TEST(AgentConfig, MistakesNameTheFileAndLine) {
  struct Case {
    const char *text, *want;
  } cases[] = {
      {"sessions:\n  - name: a\n    interfaces: [x]\n    capture: {dir: /tmp}\n    colour: red\n", ":5: unknown key 'colour'"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    direction: sideways\n    capture: {dir: /tmp}\n", ":4: direction must be"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n", ":2: session a: give a target"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {to: m, vxlan: 1.2.3.4}\n", ":4: a mirror has one target: the interface m or the VXLAN remote 1.2.3.4, not both"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {vxlan: 1.2.3.4, vni: 16777216}\n",
       ":4: VXLAN VNI 16777216 is out of range 0-16777215"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {vxlan: 1.2.3.4}\n", "VXLAN remote 1.2.3.4: give its VNI"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {vxlan: 1.2.3.4, vni: 1, vxlan_port: 0}\n",
       "VXLAN UDP port 0 is out of range 1-65535"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {vxlan: 1.2.3.300, vni: 1}\n", "VXLAN remote 1.2.3.300: not an IPv4"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {to: m, local: 10.0.0.1}\n", "go with a VXLAN remote"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    snaplen: 10\n    mirror: {to: m}\n",
       ":4: snapshot length 10: a mirror's must be 0 (whole packets) or at least 64"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    rules: ['10 allow']\n    mirror: {to: m}\n", ":4: rule '10 allow'"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    capture: {dir: /tmp}\n  - name: a\n    interfaces: [y]\n    capture: {dir: /tmp}\n", "used twice"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    flow_cutoff: 10\n    capture: {dir: /tmp}\n", "apply to mirror sessions"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    attach: xdp\n    mirror: {to: m}\n", ":4: attach must be auto, tcx or tc"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    mirror: {to: m}\n    capture: {dir: /tmp}\n", "cannot be combined"},
      {"sessions:\n  - name: a b\n    interfaces: [x]\n    capture: {dir: /tmp}\n", "use letters"},
      {"sessions:\n  - name: a\n    interfaces: []\n    capture: {dir: /tmp}\n", "interfaces must be a list"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    snaplen: -1\n    capture: {dir: /tmp}\n", "snaplen must be a whole number"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    netns: ../../proc/1/ns/net\n    capture: {dir: /tmp}\n", ":4: session a: netns '../../proc/1/ns/net' is not a namespace name"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    netns: ''\n    capture: {dir: /tmp}\n", "is not a namespace name"},
      {"api:\n  listen: unix:run/x.sock\n", ":2: listen unix:PATH needs an absolute path"},
      {"api:\n  listen: 127.0.0.1:70000\n", "port 1-65535"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    inspect: {alerts: /tmp/a, flows_format: csv}\n", "flows_format must be json or tsv"},
      {"api:\n  listen: \"127.0.0.1:\"\n", "HOST:PORT"},
      {"api: {listen: nowhere}\n", "HOST:PORT"},
      {"api:\n  listen: 0.0.0.0:7878\n", "other hosts can reach this address"},
      {"api:\n  listen: \"[::]:7878\"\n", "set allow_remote: true"},
      {"api:\n  max_connections: 0\n", "max_connections must be 1-100000"},
      {"api:\n  request_timeout_s: -3\n", "request_timeout_s must be a whole number"},
      {"sessions:\n  - name: ~\n    interfaces: [x]\n    capture: {dir: /tmp}\n", "name must be a string"},
      {"sessions:\n  - name: null\n    interfaces: [x]\n    capture: {dir: /tmp}\n", "name must be a string"},
      {"sessions:\n  - name: a\n    interfaces: [\"x\\x01\"]\n    capture: {dir: /tmp}\n", "printable UTF-8"},
      {"sessions:\n  - name: a\n    interfaces: [x]\n    filter: \"tcp\\nudp\"\n    capture: {dir: /tmp}\n", "filter must be printable"},
      {"sessions: [\n", ":"},
      {"bogus: 1\n", ":1: unknown key 'bogus'"},
  };
  for (const auto &c : cases) {
    auto path = write_tmp(c.text);
    auto r = load_agent_config(path);
    ASSERT_FALSE(r) << c.text;
    EXPECT_TRUE(r.error().bad_input);
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << c.text << " -> " << r.error().message();
    unlink(path.c_str());
  }
}

TEST(AgentConfig, ListenBeyondLoopbackNeedsAllowRemote) {
  EXPECT_TRUE(loopback_listen("127.0.0.1:7878"));
  EXPECT_TRUE(loopback_listen("127.3.2.1:1"));
  EXPECT_TRUE(loopback_listen("[::1]:7878"));
  EXPECT_TRUE(loopback_listen("localhost:7878"));
  EXPECT_FALSE(loopback_listen("0.0.0.0:7878"));
  EXPECT_FALSE(loopback_listen("10.0.0.1:7878"));
  EXPECT_FALSE(loopback_listen("[::]:7878"));
  auto path = write_tmp("api:\n  listen: 0.0.0.0:7878\n  allow_remote: true\n  max_connections: 8\n");
  auto c = load_agent_config(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->api.allow_remote);
  EXPECT_EQ(c->api.max_connections, 8u);
  unlink(path.c_str());
}

// capture.files: one ring of files per interface (the default, as before) or one per session;
// any other word is refused at its line, naming the two words; the API's JSON takes it too and
// gives it back.
TEST(AgentConfig, CaptureFilesPerInterfaceOrPerSession) {
  auto def = parse_session_text("name: a\ninterfaces: [x]\ncapture: {dir: /tmp}\n", "t");
  ASSERT_TRUE(def) << def.error().message();
  EXPECT_EQ(def->capture->files, "per-interface");
  EXPECT_FALSE(def->capture->per_session());
  auto one = parse_session_text("name: a\ninterfaces: [x]\ncapture: {dir: /tmp, files: per-session}\n", "t");
  ASSERT_TRUE(one) << one.error().message();
  EXPECT_TRUE(one->capture->per_session());
  EXPECT_FALSE(*one == *def);  // a change of files restarts the session
  auto bad = parse_session_text("name: a\ninterfaces: [x]\ncapture:\n  dir: /tmp\n  files: one\n", "t");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().bad_input);
  EXPECT_NE(bad.error().message().find("t:5: files must be per-interface or per-session"), std::string::npos)
      << bad.error().message();
  auto j = parse_session_json(R"({"name":"a","interfaces":["x"],"capture":{"dir":"/tmp","files":"per-session"}})", "request");
  ASSERT_TRUE(j) << j.error().message();
  EXPECT_TRUE(j->capture->per_session());
  auto back = parse_session_json(session_to_json(*j), "again");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, *j);
  auto jbad = parse_session_json(R"({"name":"a","interfaces":["x"],"capture":{"dir":"/tmp","files":1}})", "request");
  ASSERT_FALSE(jbad);
  EXPECT_NE(jbad.error().message().find("capture.files must be a string"), std::string::npos) << jbad.error().message();
}

// What GET /sessions/NAME gives for an inspect session is taken back by POST as it is (the
// JSON's inspect keys are the YAML's: flows_format and ipfix were refused).
TEST(AgentConfig, InspectSessionJsonRoundTrip) {
  auto y = parse_session_text("name: i\ninterfaces: [x]\ninspect: {alerts: /tmp/a.json, flows: /tmp/f.tsv, "
                              "flows_format: tsv, ipfix: 127.0.0.1:4739}\n", "t");
  ASSERT_TRUE(y) << y.error().message();
  auto back = parse_session_json(session_to_json(*y), "again");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, *y);
  EXPECT_EQ(back->inspect->flows_format, "tsv");
  EXPECT_EQ(back->inspect->ipfix, "127.0.0.1:4739");
}

// The API's JSON: each key of its type, nothing coerced; the text checked as the config's.
TEST(AgentConfig, ApiJsonIsStrict) {
  const std::string ok = R"({"name":"a","interfaces":["tap-*"],"snaplen":128,"capture":{"dir":"/tmp","keep_files":2}})";
  auto c = parse_session_json(ok, "request");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->snaplen, 128u);
  EXPECT_EQ(c->capture->keep_files, 2u);
  struct Case {
    std::string body, want;
  } cases[] = {
      {R"({"name":null,"interfaces":["x"],"capture":{"dir":"/tmp"}})", "name must be a string"},
      {R"({"name":7,"interfaces":["x"],"capture":{"dir":"/tmp"}})", "name must be a string"},
      {R"({"name":"a","interfaces":"x","capture":{"dir":"/tmp"}})", "interfaces must be a list of strings"},
      {R"({"name":"a","interfaces":[1],"capture":{"dir":"/tmp"}})", "interfaces must be a list of strings"},
      {R"({"name":"a","interfaces":["x"],"snaplen":"128","capture":{"dir":"/tmp"}})", "snaplen must be a whole number"},
      {R"({"name":"a","interfaces":["x"],"snaplen":-1,"capture":{"dir":"/tmp"}})", "snaplen must be a whole number"},
      {R"({"name":"a","interfaces":["x"],"snaplen":1.5,"capture":{"dir":"/tmp"}})", "snaplen must be a whole number"},
      {R"({"name":"a","interfaces":["x"],"capture":"/tmp"})", "capture must be a JSON object"},
      {R"({"name":"a","interfaces":["x"],"capture":{"dir":"/tmp","rotate":1}})", "unknown key 'capture.rotate'"},
      {R"({"name":"a","interfaces":["x"],"mirror":{"to":"m","vni":true}})", "mirror.vni must be a whole number"},
      {"{\"name\":\"a\xff\",\"interfaces\":[\"x\"],\"capture\":{\"dir\":\"/tmp\"}}", "not JSON (UTF-8)"},
      {R"({"name":"a","interfaces":["x\u0001"],"capture":{"dir":"/tmp"}})", "printable UTF-8"},
      {R"({"name":"a","interfaces":["x"],"capture":{"dir":"/tmp\u0000x"}})", "printable UTF-8"},
      {R"(["a"])", "must be a JSON object"},
      {"name: a\ninterfaces: [x]\ncapture: {dir: /tmp}\n", "not JSON"},
  };
  for (const auto &k : cases) {
    auto r = parse_session_json(k.body, "request");
    ASSERT_FALSE(r) << k.body;
    EXPECT_TRUE(r.error().bad_input);
    EXPECT_NE(r.error().message().find(k.want), std::string::npos) << k.body << " -> " << r.error().message();
  }
}

} // namespace

// One vocabulary: capture's and mirror's -Q word inout means what this file calls both; and the
// shipped configs (packaging/) are valid.
TEST(AgentConfig, InoutIsBoth) {
  auto c = load_agent_config(write_tmp("sessions:\n  - name: a\n    interfaces: [x]\n    direction: inout\n"
                                       "    capture: {dir: /tmp}\n"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->sessions[0].ingress && c->sessions[0].egress);
}

TEST(AgentConfig, ShippedConfigsAreValid) {
  for (const char *f : {"agent.yaml", "agent.yaml.example"}) {
    auto c = load_agent_config(std::string(BPFTAP_SOURCE_DIR) + "/packaging/" + f);
    EXPECT_TRUE(c) << f << ": " << c.error().message();
  }
}
