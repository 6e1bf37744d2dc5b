// Lab pieces that need no root: names, prefix validation, the command plan, ip output parsing.
#include <algorithm>

#include <gtest/gtest.h>

#include "lab/lab.h"
#include "util/run.h"

namespace bpftap::lab {
namespace {

TEST(LabPrefix, AcceptsShortLowercase) {
  for (const char *p : {"bt-", "t1a2b-", "a", "abcdefgh", "0-9"}) EXPECT_TRUE(validate_prefix(p)) << p;
}

TEST(LabPrefix, RejectsBadInput) {
  for (const char *p : {"", "abcdefghi", "Bt-", "b_t", "b t", "-bt", "bt.", "bt/"})
    EXPECT_FALSE(validate_prefix(p)) << p;
  auto r = validate_prefix("BAD");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("'BAD'"), std::string::npos);
}

TEST(LabNames, NamespacesCarryThePrefix) {
  auto n = lab_names("bt-");
  EXPECT_EQ(n.host, "bt-host");
  EXPECT_EQ(n.mon, "bt-mon");
  EXPECT_EQ(n.namespaces(), (std::vector<std::string>{"bt-host", "bt-vm1", "bt-vm2", "bt-atk", "bt-mon", "bt-sen"}));
  auto g = n.guests();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[2].ns, "bt-atk");
  EXPECT_EQ(g[2].tap, "tap-atk");
  EXPECT_EQ(g[2].addr, "10.77.0.66");
}

TEST(LabNames, Describe) {
  EXPECT_EQ(describe(lab_names("bt-")),
            "lab bt-: host bt-host (br0: tap-vm1 tap-vm2 tap-atk), vm1 10.77.0.1, vm2 10.77.0.2, "
            "atk 10.77.0.66, monitor bt-mon via mon0, sensor bt-sen 10.77.1.1 (VXLAN VNI 42) via sen0");
}

TEST(LabPlan, SysctlsComeBeforeAnyLink) {
  auto plan = lab_up_plan(lab_names("x-"), true);
  auto first_link_add = std::find_if(plan.begin(), plan.end(), [](auto &c) {
    return std::find(c.begin(), c.end(), "add") != c.end() && std::find(c.begin(), c.end(), "link") != c.end();
  });
  ASSERT_NE(first_link_add, plan.end());
  int sysctls_after = 0, sysctls_before = 0;
  for (auto it = plan.begin(); it != plan.end(); ++it) {
    bool is_sysctl = std::find(it->begin(), it->end(), "sysctl") != it->end();
    if (is_sysctl) (it < first_link_add ? sysctls_before : sysctls_after)++;
  }
  EXPECT_EQ(sysctls_before, static_cast<int>(lab_names("x-").namespaces().size()));
  EXPECT_EQ(sysctls_after, 0);
  // Interface names are fixed and fit IFNAMSIZ whatever the prefix.
  for (auto &c : plan)
    for (std::size_t i = 0; i + 1 < c.size(); ++i)
      if (c[i] == "name") {
        EXPECT_LE(c[i + 1].size(), 15u);
      }
}

TEST(LabPlan, NoIpv6SysctlsWithoutIpv6) {
  for (auto &c : lab_up_plan(lab_names("x-"), false))
    for (auto &a : c) EXPECT_EQ(a.find("ipv6"), std::string::npos);
}

TEST(LabParse, IpLinkAndAddr) {
  const char *links =
      "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
      "2: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 2a:1b:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
      "3: tap-vm1@if2: <BROADCAST,MULTICAST,PROMISC,UP,LOWER_UP> mtu 9000 qdisc noqueue master br0 state UP mode DEFAULT group default qlen 1000\\    link/ether 2a:1b:00:00:00:02 brd ff:ff:ff:ff:ff:ff link-netns bt-vm1\n"
      "4: mon0@if3: <BROADCAST,MULTICAST> mtu 9000 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/ether 2a:1b:00:00:00:03 brd ff:ff:ff:ff:ff:ff\n";
  const char *addrs =
      "2: br0    inet 10.77.0.254/24 scope global br0\\       valid_lft forever preferred_lft forever\n"
      "3: tap-vm1    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
  auto ifs = parse_ip_link(links);
  merge_ip_addr(addrs, ifs);
  ASSERT_EQ(ifs.size(), 4u);
  EXPECT_EQ(ifs[0].name, "lo");
  EXPECT_EQ(ifs[0].state, "UNKNOWN");
  EXPECT_TRUE(ifs[0].admin_up);
  EXPECT_EQ(ifs[1].addrs, std::vector<std::string>{"10.77.0.254/24"});
  EXPECT_EQ(ifs[2].name, "tap-vm1");
  EXPECT_EQ(ifs[2].master, "br0");
  EXPECT_EQ(ifs[2].mtu, 9000);
  EXPECT_TRUE(ifs[2].promisc);
  EXPECT_EQ(ifs[2].addrs, std::vector<std::string>{"fe80::1/64"});
  EXPECT_EQ(ifs[3].name, "mon0");
  EXPECT_FALSE(ifs[3].admin_up);
  EXPECT_EQ(ifs[3].state, "DOWN");
}

TEST(LabRun, CapturesOutputAndStatus) {
  auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->status, 3);
  auto c = run_checked({"sh", "-c", "echo 'it broke' >&2; exit 1"});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), R"(`sh -c 'echo '\''it broke'\'' >&2; exit 1'` failed: it broke)");
  EXPECT_FALSE(run_command({"no-such-program-bpftap"}));
}

} // namespace
} // namespace bpftap::lab
