// Named network namespaces and the scope that runs a thread inside one (agent sessions with
// `netns:`): interfaces, netlink and spawned `ip` commands all land in the namespace entered,
// and the thread is back home afterwards. Also: a filter for a down interface compiles as
// for any up Ethernet-framed one. Root; each test makes its own `ip netns` namespace.
#include <net/if.h>
#include <net/if_arp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/netlink.h"
#include "core/attach.h"
#include "core/filter.h"
#include "core/netns.h"
#include "lab/run.h"

using namespace bpftap;

namespace {

class NetnsTest : public ::testing::Test {
protected:
  void SetUp() override {
    name_ = fmt::format("bttest-{}-{}", getpid(), ::testing::UnitTest::GetInstance()->random_seed());
    auto r = lab::run_checked({"ip", "netns", "add", name_});
    ASSERT_TRUE(r) << r.error().message();
    for (auto cmd : std::vector<std::vector<std::string>>{
             {"ip", "-n", name_, "link", "set", "lo", "up"},
             {"ip", "-n", name_, "link", "add", "btn0", "type", "veth", "peer", "name", "btn1"}}) {
      auto c = lab::run_checked(cmd);
      ASSERT_TRUE(c) << c.error().message();
    }
  }
  void TearDown() override { lab::run_command({"ip", "netns", "del", name_}); }
  std::string name_;
};

TEST_F(NetnsTest, ScopeEntersAndReturns) {
  auto ns = Netns::open(name_);
  ASSERT_TRUE(ns) << ns.error().message();
  const std::string home = netns_id();
  ASSERT_EQ(if_nametoindex("btn0"), 0u) << "btn0 must not exist outside the test namespace";
  {
    auto scope = NetnsScope::enter(*ns);
    ASSERT_TRUE(scope) << scope.error().message();
    EXPECT_NE(netns_id(), home);
    EXPECT_NE(if_nametoindex("btn0"), 0u);
    // A spawned command runs there too.
    auto r = lab::run_checked({"ip", "link", "add", "btn2", "type", "veth", "peer", "name", "btn3"});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_NE(if_nametoindex("btn2"), 0u);
    // So does the rtnetlink dump (sysfs would show the mounter's namespace).
    auto links = agent::current_links();
    ASSERT_TRUE(links) << links.error().message();
    auto find = [&](const char *n) {
      return std::find_if(links->begin(), links->end(), [&](const auto &l) { return l.name == n; });
    };
    ASSERT_NE(find("btn0"), links->end());
    EXPECT_TRUE(find("btn0")->ethernet);
    EXPECT_EQ(find("btn0")->flags & IFF_UP, 0u);
    ASSERT_NE(find("lo"), links->end());
    EXPECT_FALSE(find("lo")->ethernet);
    EXPECT_EQ(links->size(), 5u);  // lo, btn0-3: nothing of the home namespace
  }
  EXPECT_EQ(netns_id(), home);
  EXPECT_EQ(if_nametoindex("btn0"), 0u);
  EXPECT_EQ(if_nametoindex("btn2"), 0u);
}

TEST_F(NetnsTest, CurrentNamespaceScopeDoesNothing) {
  auto ns = Netns::open("");
  ASSERT_TRUE(ns);
  EXPECT_TRUE(ns->is_current());
  const std::string home = netns_id();
  auto scope = NetnsScope::enter(*ns);
  ASSERT_TRUE(scope);
  EXPECT_EQ(netns_id(), home);
}

TEST(Netns, BadNamesAreBadInput) {
  for (const char *n : {"does-not-exist-bpftap", "../etc", ".", "a/b"}) {
    auto ns = Netns::open(n);
    ASSERT_FALSE(ns) << n;
    EXPECT_TRUE(ns.error().bad_input) << n;
  }
  EXPECT_NE(Netns::open("does-not-exist-bpftap").error().message().find("no such network namespace"), std::string::npos);
}

// A VM's tap is attached while still down: its filter compiles as on loopback (tcpdump's live
// semantics, VLAN tags from metadata), where libpcap itself would refuse to open it.
TEST_F(NetnsTest, DownInterfaceFilterCompilesAsLoopback) {
  auto ns = Netns::open(name_);
  ASSERT_TRUE(ns);
  auto scope = NetnsScope::enter(*ns);
  ASSERT_TRUE(scope);
  for (const char *expr : {"tcp or vlan", "inbound and udp port 53", "vlan 10 and icmp"}) {
    auto down = compile_pcap_filter_live(expr, 262144, "btn0");
    ASSERT_TRUE(down) << expr << ": " << down.error().message();
    auto lo = compile_pcap_filter_live(expr, 262144, "lo");
    ASSERT_TRUE(lo) << lo.error().message();
    ASSERT_EQ(down->size(), lo->size()) << expr;
    EXPECT_EQ(0, std::memcmp(down->data(), lo->data(), lo->size() * sizeof((*lo)[0]))) << expr;
  }
  // Up, it compiles on itself, to the same program.
  ASSERT_TRUE(lab::run_checked({"ip", "link", "set", "btn0", "up"}));
  auto up = compile_pcap_filter_live("tcp or vlan", 262144, "btn0");
  auto lo = compile_pcap_filter_live("tcp or vlan", 262144, "lo");
  ASSERT_TRUE(up && lo);
  EXPECT_EQ(0, std::memcmp(up->data(), lo->data(), lo->size() * sizeof((*lo)[0])));
}

} // namespace
