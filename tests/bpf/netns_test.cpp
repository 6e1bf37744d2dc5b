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
#include "capture/capture_prog.h"
#include "kernel/attach.h"
#include "filter/filter.h"
#include "kernel/netns.h"
#include "util/run.h"

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

// "" is the process's own namespace even for a thread that is elsewhere now.
TEST_F(NetnsTest, OwnNamespaceFromInsideAnother) {
  const std::string home = netns_id();
  auto ns = Netns::open(name_);
  auto own = Netns::open("");
  ASSERT_TRUE(ns && own);
  {
    auto outer = NetnsScope::enter(*ns);
    ASSERT_TRUE(outer);
    const std::string there = netns_id();
    ASSERT_NE(there, home);
    {
      auto inner = NetnsScope::enter(*own);
      ASSERT_TRUE(inner);
      EXPECT_EQ(netns_id(), home);
    }
    EXPECT_EQ(netns_id(), there);
  }
  EXPECT_EQ(netns_id(), home);
}

TEST_F(NetnsTest, StillNamedUntilDeletedOrReplaced) {
  auto ns = Netns::open(name_);
  ASSERT_TRUE(ns);
  EXPECT_TRUE(ns->still_named());
  ASSERT_TRUE(lab::run_checked({"ip", "netns", "del", name_}));
  EXPECT_FALSE(ns->still_named());
  ASSERT_TRUE(lab::run_checked({"ip", "netns", "add", name_}));  // a new one under the same name
  EXPECT_FALSE(ns->still_named());
  auto fresh = Netns::open(name_);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->still_named());
}

TEST(Netns, BadNamesAreBadInput) {
  for (const char *n : {"does-not-exist-bpftap", "../etc", ".", "a/b"}) {
    auto ns = Netns::open(n);
    ASSERT_FALSE(ns) << n;
    EXPECT_TRUE(ns.error().bad_input) << n;
  }
  EXPECT_NE(Netns::open("does-not-exist-bpftap").error().message().find("no such network namespace"), std::string::npos);
}

// A VM's tap is attached while still down: libpcap refuses to open it, so its filter is compiled
// on loopback (this namespace's, or the process's own when that is down too). The result must
// be what the interface itself gives once up (tcpdump's live semantics, VLAN tags from metadata).
TEST_F(NetnsTest, DownInterfaceFilterIsTheUpInterfaceFilter) {
  auto ns = Netns::open(name_);
  ASSERT_TRUE(ns);
  auto scope = NetnsScope::enter(*ns);
  ASSERT_TRUE(scope);
  const std::vector<std::string> exprs = {"tcp or vlan", "inbound and udp port 53", "vlan 10 and icmp"};
  auto compile_all = [&] {
    std::vector<std::vector<sock_filter>> out;
    for (const auto &e : exprs) {
      auto p = compile_pcap_filter_live(e, 262144, "btn0");
      EXPECT_TRUE(p) << e << ": " << (p ? "" : p.error().message());
      out.push_back(p ? *p : std::vector<sock_filter>{});
    }
    return out;
  };
  auto down_ns_lo = compile_all();  // btn0 down, this namespace's lo up
  ASSERT_TRUE(lab::run_checked({"ip", "link", "set", "lo", "down"}));
  auto down_home_lo = compile_all();  // btn0 and lo down: the process's own lo
  ASSERT_TRUE(lab::run_checked({"ip", "link", "set", "btn0", "up"}));
  auto up = compile_all();  // btn0 itself
  for (size_t i = 0; i < exprs.size(); i++) {
    ASSERT_FALSE(up[i].empty()) << exprs[i];
    for (const auto *down : {&down_ns_lo[i], &down_home_lo[i]}) {
      ASSERT_EQ(down->size(), up[i].size()) << exprs[i];
      EXPECT_EQ(0, std::memcmp(down->data(), up[i].data(), up[i].size() * sizeof(sock_filter))) << exprs[i];
    }
  }
}

} // namespace

namespace {

// Two namespaces whose interfaces share an ifindex (a fresh namespace numbers its links from 2).
// With the tc fallback, bpftap counts the hooks on each clsact qdisc it created: the count must
// be per namespace, or the second namespace's qdisc is never created (its attach fails) and the
// first one's is removed or kept on the other's say.
class TcQdiscAcrossNamespaces : public ::testing::Test {
protected:
  void SetUp() override {
    for (int i = 0; i < 2; i++) {
      names_[i] = fmt::format("btqd{}-{}-{}", i, getpid(), ::testing::UnitTest::GetInstance()->random_seed());
      ASSERT_TRUE(lab::run_checked({"ip", "netns", "add", names_[i]}));
      ASSERT_TRUE(lab::run_checked({"ip", "-n", names_[i], "link", "add", "btq0", "type", "veth", "peer", "name", "btq1"}));
      ASSERT_TRUE(lab::run_checked({"ip", "-n", names_[i], "link", "set", "btq0", "up"}));
    }
  }
  void TearDown() override {
    for (const auto &n : names_)
      if (!n.empty()) lab::run_command({"ip", "netns", "del", n});
  }
  bool has_clsact(int i) {
    auto out = lab::run_checked({"ip", "netns", "exec", names_[i], "tc", "qdisc", "show", "dev", "btq0"});
    return out && out->find("clsact") != std::string::npos;
  }
  std::string names_[2];
};

} // namespace

TEST_F(TcQdiscAcrossNamespaces, EachNamespaceKeepsItsOwnQdiscCount) {
  auto prog = CaptureProgram::load({});
  ASSERT_TRUE(prog) << prog.error().message();
  auto ns0 = Netns::open(names_[0]), ns1 = Netns::open(names_[1]);
  ASSERT_TRUE(ns0 && ns1);
  const Netns *ns[2] = {&*ns0, &*ns1};
  uint32_t ifindex[2] = {};
  std::unique_ptr<Hook> hook[2];
  for (int i = 0; i < 2; i++) {
    auto scope = NetnsScope::enter(*ns[i]);
    ASSERT_TRUE(scope) << scope.error().message();
    ifindex[i] = if_nametoindex("btq0");
  }
  if (ifindex[0] != ifindex[1]) GTEST_SKIP() << "the two btq0 have different ifindexes here";
  for (int i = 0; i < 2; i++) {
    auto scope = NetnsScope::enter(*ns[i]);
    auto h = attach_hook((*prog)->ingress_fd(), ifindex[i], BPFTAP_DIR_IN, AttachMode::Tc);
    ASSERT_TRUE(h) << "namespace " << i << ": " << h.error().message();
    hook[i] = std::move(*h);
    EXPECT_TRUE(has_clsact(i)) << "namespace " << i << " has no clsact qdisc";
  }
  {  // the first namespace's hook goes: its qdisc (ours) goes, the other's stays
    auto scope = NetnsScope::enter(*ns[0]);
    hook[0].reset();
  }
  EXPECT_FALSE(has_clsact(0)) << "the qdisc bpftap created in namespace 0 was left behind";
  EXPECT_TRUE(has_clsact(1)) << "namespace 1 lost its qdisc while its hook is attached";
  {
    auto scope = NetnsScope::enter(*ns[1]);
    hook[1].reset();
  }
  EXPECT_FALSE(has_clsact(1)) << "the qdisc bpftap created in namespace 1 was left behind";
}
