#include "mirror/spec.h"

#include <functional>

#include <gtest/gtest.h>

#include "agent/config.h"
#include "kernel/hook_words.h"

namespace bpftap {
namespace {

MirrorSpec vxlan_spec() {
  MirrorSpec s;
  s.interfaces = {"tap-*"};
  s.target.vxlan = "192.0.2.9";
  s.target.vni = 42;
  return s;
}

TEST(MirrorSpec, ConvertsToOptions) {
  auto s = vxlan_spec();
  s.ingress = false;
  s.filter = "tcp port 80";
  s.rules = {"20 reject proto udp", "10 accept proto tcp"};
  s.snaplen = 128;
  s.target.vxlan_port = 4790;
  s.target.local = "192.0.2.1";
  s.attach = AttachMode::Tc;
  auto o = to_mirror_options(s);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->from, s.interfaces);
  EXPECT_FALSE(o->ingress);
  EXPECT_TRUE(o->egress);
  EXPECT_TRUE(o->to.empty());
  ASSERT_TRUE(o->vxlan);
  EXPECT_EQ(o->vxlan->remote, "192.0.2.9");
  EXPECT_EQ(o->vxlan->local, "192.0.2.1");
  EXPECT_EQ(o->vxlan->vni, 42u);
  EXPECT_EQ(o->vxlan->port, 4790);
  ASSERT_EQ(o->rules.size(), 2u);
  EXPECT_EQ(o->rules[0].number, 10u);  // sorted
  EXPECT_EQ(o->snaplen, 128u);
  EXPECT_EQ(o->attach, AttachMode::Tc);
  EXPECT_TRUE(check_mirror_options(*o));
}

// Messages name the concept and keep the value: they reach CLI users and API clients alike.
TEST(MirrorSpec, MistakesNameConceptsNotFlags) {
  struct Case {
    std::function<void(MirrorSpec &)> change;
    std::string want;
  } cases[] = {
      {[](MirrorSpec &s) { s.target.vni = 16777216; }, "VXLAN VNI 16777216 is out of range 0-16777215"},
      {[](MirrorSpec &s) { s.target.vni = -1; }, "VXLAN VNI -1 is out of range 0-16777215"},
      {[](MirrorSpec &s) { s.target.vni.reset(); }, "VXLAN remote 192.0.2.9: give its VNI"},
      {[](MirrorSpec &s) { s.target.vxlan_port = 0; }, "VXLAN UDP port 0 is out of range 1-65535"},
      {[](MirrorSpec &s) { s.target.vxlan_port = 65536; }, "VXLAN UDP port 65536 is out of range 1-65535"},
      {[](MirrorSpec &s) { s.target.vxlan = "192.0.2.300"; }, "VXLAN remote 192.0.2.300: not an IPv4 or IPv6 address"},
      {[](MirrorSpec &s) { s.target.local = "::1"; }, "VXLAN local address ::1: not an address of the same family"},
      {[](MirrorSpec &s) { s.target.to = "mon0"; }, "a mirror has one target: the interface mon0 or the VXLAN remote 192.0.2.9, not both"},
      {[](MirrorSpec &s) { s.target = MirrorTarget{}; }, "a mirror needs a target"},
      {[](MirrorSpec &s) { s.target = MirrorTarget{.to = "mon0", .vni = 1}; }, "go with a VXLAN remote"},
      {[](MirrorSpec &s) { s.target = MirrorTarget{.to = "mon0", .vxlan_port = 4790}; }, "go with a VXLAN remote"},
      {[](MirrorSpec &s) { s.snaplen = 10; }, "snapshot length 10: a mirror's must be 0 (whole packets) or at least 64"},
      {[](MirrorSpec &s) { s.rules = {"10 allow"}; }, "rule '10 allow'"},
      {[](MirrorSpec &s) {
         s.flow_cutoff = 100;
         s.flow_table = 0;
       },
       "the flow table needs at least one entry"},
  };
  for (const auto &c : cases) {
    auto s = vxlan_spec();
    c.change(s);
    auto o = to_mirror_options(s);
    ASSERT_FALSE(o) << c.want;
    EXPECT_TRUE(o.error().bad_input) << c.want;
    EXPECT_NE(o.error().message().find(c.want), std::string::npos) << o.error().message();
    EXPECT_EQ(o.error().message().find("--"), std::string::npos) << "a flag in: " << o.error().message();
  }
}

// Options built by hand (not from a spec) meet the same checks.
TEST(MirrorSpec, OptionsBuiltByHandAreChecked) {
  MirrorOptions o;
  o.vxlan = VxlanTarget{"192.0.2.9", "", 1u << 24, 4789};
  auto r = check_mirror_options(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "VXLAN VNI 16777216 is out of range 0-16777215");
  o.vxlan->vni = 1;
  o.vxlan->port = 0;
  EXPECT_FALSE(check_mirror_options(o));
}

// The agent's session and bpftap mirror's flags meet in one MirrorSpec.
TEST(MirrorSpec, AgentSessionGivesTheSameSpec) {
  auto c = agent::parse_session_text("name: m\ninterfaces: [tap-a]\ndirection: in\nsnaplen: 96\n"
                                     "mirror: {vxlan: 192.0.2.9, vni: 7}\n",
                                     "test");
  ASSERT_TRUE(c) << c.error().message();
  auto s = agent::mirror_spec(*c);
  EXPECT_EQ(s.interfaces, std::vector<std::string>{"tap-a"});
  EXPECT_TRUE(s.ingress);
  EXPECT_FALSE(s.egress);
  EXPECT_EQ(s.snaplen, 96u);
  EXPECT_EQ(s.target.vni, std::optional<int64_t>(7));
  EXPECT_EQ(s.target.vxlan_port, kDefaultVxlanPort);
  EXPECT_TRUE(to_mirror_options(s));
}

TEST(HookWords, OneVocabulary) {
  for (const char *w : {"inout", "both"}) {
    auto d = parse_direction(w);
    ASSERT_TRUE(d) << w;
    EXPECT_TRUE(d->ingress && d->egress) << w;
  }
  EXPECT_TRUE(parse_direction("in")->ingress);
  EXPECT_FALSE(parse_direction("in")->egress);
  EXPECT_FALSE(parse_direction("out")->ingress);
  EXPECT_FALSE(parse_direction("sideways"));
  EXPECT_STREQ(direction_word(true, false), "in");
  EXPECT_STREQ(direction_word(true, true), "inout");
  EXPECT_EQ(parse_attach_mode("tcx"), AttachMode::Tcx);
  EXPECT_EQ(parse_attach_mode("tc"), AttachMode::Tc);
  EXPECT_EQ(parse_attach_mode("auto"), AttachMode::Auto);
  EXPECT_FALSE(parse_attach_mode("xdp"));
}

} // namespace
} // namespace bpftap
