#include "mirror/rules.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

namespace bpftap {
namespace {

TEST(Rules, ParsesEveryField) {
  auto r = parse_rule("10 accept proto tcp src 10.1.2.3/8 dst 192.168.1.0/24 sport 1024-65535 dport 80");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->number, 10u);
  EXPECT_EQ(r->action, BPFTAP_RULE_ACCEPT);
  EXPECT_EQ(r->family, 4);
  EXPECT_TRUE(r->has_proto);
  EXPECT_EQ(r->proto, 6);
  EXPECT_EQ(r->src[0], htonl(0x0a000000));  // host bits cleared
  EXPECT_EQ(r->src_mask[0], htonl(0xff000000));
  EXPECT_EQ(r->dst[0], htonl(0xc0a80100));
  EXPECT_EQ(r->sport_lo, 1024);
  EXPECT_EQ(r->sport_hi, 65535);
  EXPECT_EQ(r->dport_lo, 80);
  EXPECT_EQ(r->dport_hi, 80);
  EXPECT_EQ(format_rule(*r), "10 accept proto 6 src 10.0.0.0/8 dst 192.168.1.0/24 sport 1024-65535 dport 80");
}

TEST(Rules, MinimalRuleMatchesEverything) {
  auto r = parse_rule("32766 reject");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->action, BPFTAP_RULE_REJECT);
  EXPECT_EQ(r->family, 0);
  EXPECT_FALSE(r->has_proto);
  EXPECT_EQ(r->sport_lo, 0);
  EXPECT_EQ(r->dport_hi, 65535);
  EXPECT_EQ(format_rule(*r), "32766 reject");
}

TEST(Rules, Ipv6AndProtocolNumbers) {
  auto r = parse_rule("5 accept proto 58 dst 2001:db8::/32");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->family, 6);
  EXPECT_EQ(r->proto, 58);
  EXPECT_EQ(r->dst_mask[0], 0xffffffffu);
  EXPECT_EQ(r->dst_mask[1], 0u);
  EXPECT_EQ(format_rule(*r), "5 accept proto 58 dst 2001:db8::/32");
  auto all = parse_rule("6 accept proto all");
  ASSERT_TRUE(all);
  EXPECT_FALSE(all->has_proto);
}

TEST(Rules, BadRulesAreBadInput) {
  for (const char *text : {"", "10", "0 accept", "32767 accept", "10 allow", "10 accept proto nosuch",
                           "10 accept src 10.0.0.0/33", "10 accept src 300.1.1.1", "10 accept src 10.0.0.0/8 dst ::1",
                           "10 accept dport 80-79", "10 accept dport 65536", "10 accept proto icmp dport 80",
                           "10 accept proto tcp proto udp", "10 accept sport", "10 accept colour red"}) {
    auto r = parse_rule(text);
    ASSERT_FALSE(r) << text;
    EXPECT_TRUE(r.error().bad_input) << text;
    EXPECT_NE(r.error().message().find("rule '"), std::string::npos) << r.error().message();
  }
}

TEST(Rules, SortedByNumberAndUnique) {
  auto rs = parse_rules({"20 reject", "10 accept proto udp", "15 accept proto tcp"});
  ASSERT_TRUE(rs);
  ASSERT_EQ(rs->size(), 3u);
  EXPECT_EQ((*rs)[0].number, 10u);
  EXPECT_EQ((*rs)[1].number, 15u);
  EXPECT_EQ((*rs)[2].number, 20u);
  auto dup = parse_rules({"10 accept", "10 reject"});
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("used twice"), std::string::npos);
  std::vector<std::string> many;
  for (int i = 1; i <= BPFTAP_MAX_RULES + 1; i++) many.push_back(std::to_string(i) + " accept");
  EXPECT_FALSE(parse_rules(many));
}

} // namespace
} // namespace bpftap
