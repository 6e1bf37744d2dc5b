// POST /v1/bypass's body, checked field by field (agent/bypass.h).
#include "agent/bypass.h"

#include <gtest/gtest.h>

using namespace bpftap::agent;

namespace {

std::string refused(const std::string &body) {
  auto b = parse_bypass(body);
  if (b) return "accepted";
  EXPECT_TRUE(b.error().bad_input) << body;
  return b.error().message();
}

} // namespace

TEST(AgentBypass, AFlowIsItsWholeFiveTuple) {
  auto b = parse_bypass(R"({"proto":"udp","src":"10.0.0.1","sport":53,"dst":"10.0.0.2","dport":5353,"seconds":1.5})");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->proto, IPPROTO_UDP);
  EXPECT_EQ(b->src, "10.0.0.1");
  EXPECT_EQ(b->dst, "10.0.0.2");
  EXPECT_EQ(b->sport, 53);
  EXPECT_EQ(b->dport, 5353);
  EXPECT_EQ(b->seconds, 1.5);
  auto d = parse_bypass(R"({"src":"fe80::1","dst":"fe80::2","sport":1,"dport":2})");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->proto, IPPROTO_TCP);  // the default, for 60 s
  EXPECT_EQ(d->seconds, 60);
  auto icmp = parse_bypass(R"({"proto":"icmp","src":"10.0.0.1","dst":"10.0.0.2"})");
  ASSERT_TRUE(icmp) << icmp.error().message();
  EXPECT_STREQ(proto_name(icmp->proto), "icmp");
}

TEST(AgentBypass, EveryFieldIsChecked) {
  EXPECT_EQ(refused("[]"), "expected a JSON object (UTF-8)");
  EXPECT_EQ(refused(R"({"proto":"sctp"})"), "proto must be tcp, udp or icmp");
  EXPECT_EQ(refused(R"({"sport":65536})"), "sport must be a whole number 0-65535");
  EXPECT_EQ(refused(R"({"seconds":0})"), "seconds must be in (0, 86400]");
  EXPECT_EQ(refused(R"({"port":1})"), "unknown key 'port' (known: proto, src, dst, sport, dport, seconds)");
  EXPECT_EQ(refused(R"({"src":"10.0.0.1","dst":"::1","sport":1,"dport":2})"), "src and dst must both be IPv4 or both IPv6");
  EXPECT_EQ(refused(R"({"src":"10.0.0.1","dst":"10.0.0.2","sport":1})"), "a tcp flow needs both ports: sport and dport");
  EXPECT_EQ(refused(R"({"proto":"icmp","src":"10.0.0.1","dst":"10.0.0.2","dport":2})"), "icmp has no ports");
  EXPECT_EQ(refused(R"({"src":"vm1","dst":"10.0.0.2","sport":1,"dport":2})"), "src 'vm1' is not an IPv4 or IPv6 address");
}

TEST(AgentBypass, UtcTime) {
  EXPECT_EQ(utc_time(std::chrono::system_clock::time_point(std::chrono::seconds(1795828200))), "2026-11-28T01:10:00Z");
}
