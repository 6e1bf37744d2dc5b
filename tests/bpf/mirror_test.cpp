// The mirror programs on crafted packets (BPF_PROG_TEST_RUN): rules, flow cutoff, sampling,
// truncation, the VXLAN device and tc's mirred action making the copies (--attach tc). Each test
// runs in a network namespace of its own with two veth pairs: the session mirrors bta to btc
// (whose peer btd has nothing attached).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bpf_test_util.h"
#include "mirror/mirror.h"
#include "mirror/rules.h"
#include "mirror/spec.h"
#include "packet_builder.h"
#include "util/run.h"

using namespace bpftap;

namespace {

class MirrorProgTest : public ::testing::Test {
protected:
  void SetUp() override {
    home_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(home_, 0);
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    // No IPv6: links coming up would send router solicitations and MLD reports into the hook.
    for (const char *knob : {"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"})
      if (FILE *f = fopen(knob, "w")) {
        fputs("1", f);
        fclose(f);
      }
    for (auto cmd : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "bta", "type", "veth", "peer", "name", "btb"},
             {"ip", "link", "add", "btc", "type", "veth", "peer", "name", "btd"},
             {"ip", "link", "set", "bta", "up"}, {"ip", "link", "set", "btb", "up"},
             {"ip", "link", "set", "btc", "up"}, {"ip", "link", "set", "btd", "up"}}) {
      auto r = lab::run_checked(cmd);
      ASSERT_TRUE(r) << r.error().message();
    }
    ifindex_ = if_nametoindex("bta");
  }
  void TearDown() override {
    session_.reset();
    if (home_ >= 0) {
      setns(home_, CLONE_NEWNET);  // the private namespace and its veths go away
      close(home_);
    }
  }

  void start(MirrorOptions o) {
    o.from = {"bta"};
    if (!o.vxlan) o.to = "btc";
    auto s = MirrorSession::start(o);
    ASSERT_TRUE(s) << s.error().message();
    session_ = std::move(*s);
  }

  // Runs the ingress program on a frame arriving on bta.
  uint32_t run_in(const std::vector<uint8_t> &f) {
    __sk_buff ctx{};
    ctx.ifindex = ifindex_;
    auto r = test::run_tc(session_->programs().in, f, ctx);
    EXPECT_EQ(r.err, 0);
    return r.retval;
  }

  bpftap_mirror_counters counters() {
    auto st = session_->stats();
    EXPECT_TRUE(st);
    for (const auto &s : *st)
      if (s.name == "bta" && s.dir == BPFTAP_DIR_IN) return s.counters;
    return {};
  }

  int home_ = -1;
  int ifindex_ = 0;
  std::unique_ptr<MirrorSession> session_;
};

using test::PacketBuilder;

std::vector<uint8_t> tcp4(const char *src, const char *dst, uint16_t sport, uint16_t dport, size_t data,
                          uint8_t flags = test::kAck) {
  return PacketBuilder().eth().ipv4(src, dst).tcp(sport, dport, flags).payload(data).build();
}
std::vector<uint8_t> udp4(const char *src, const char *dst, uint16_t sport, uint16_t dport, size_t data) {
  return PacketBuilder().eth().ipv4(src, dst).udp(sport, dport).payload(data).build();
}
std::vector<uint8_t> ping4(const char *src, const char *dst, size_t data) {
  return PacketBuilder().eth().ipv4(src, dst).icmp(8).payload(data).build();
}
std::vector<uint8_t> udp6(const char *src, const char *dst, uint16_t sport, uint16_t dport) {
  return PacketBuilder().eth().ipv6(src, dst).udp(sport, dport).payload(10).build();
}
std::vector<uint8_t> arp() { return PacketBuilder().eth().arp("10.0.0.1", "10.0.0.2").build(); }

constexpr uint32_t kPass = static_cast<uint32_t>(TC_ACT_UNSPEC);

TEST_F(MirrorProgTest, FirstMatchingRuleDecidesAndRulesChangeWhileRunning) {
  start({});
  auto rules = parse_rules({"10 reject proto udp dport 53", "20 accept proto udp",
                            "30 accept proto tcp src 10.0.0.0/8 dport 80-90", "40 accept src 2001:db8::/32"});
  ASSERT_TRUE(rules) << rules.error().message();
  ASSERT_TRUE(session_->set_rules(*rules));
  struct Case {
    std::vector<uint8_t> frame;
    bool mirrored;
    const char *what;
  } cases[] = {
      {udp4("10.0.0.1", "10.0.0.2", 1000, 53, 10), false, "udp dport 53: rule 10 rejects"},
      {udp4("10.0.0.1", "10.0.0.2", 53, 1000, 10), true, "udp sport 53: rule 20"},
      {tcp4("10.9.9.9", "192.168.0.1", 4000, 85, 10), true, "tcp from 10/8 to 85: rule 30"},
      {tcp4("10.9.9.9", "192.168.0.1", 4000, 91, 10), false, "tcp to 91: no rule"},
      {tcp4("192.168.0.1", "10.9.9.9", 4000, 80, 10), false, "tcp from 192.168/16: no rule"},
      {ping4("10.0.0.1", "10.0.0.2", 10), false, "icmp: no rule"},
      {udp6("2001:db8::1", "2001:db9::1", 1, 2), true, "udp6: rule 20 (no family)"},
      {arp(), false, "arp: no rule"},
  };
  for (const auto &c : cases) {
    auto before = counters();
    EXPECT_EQ(run_in(c.frame), kPass) << c.what;
    auto after = counters();
    EXPECT_EQ(after.seen - before.seen, 1u) << c.what;
    EXPECT_EQ(after.matched - before.matched, c.mirrored ? 1u : 0u) << c.what;
    EXPECT_EQ(after.mirrored - before.mirrored, c.mirrored ? 1u : 0u) << c.what;
    EXPECT_EQ(after.failed, 0u) << c.what;
  }
  // Swapped while attached: now everything but ARP is rejected, then no rules = everything.
  ASSERT_TRUE(session_->set_rules(*parse_rules({"1 reject proto udp", "2 reject proto tcp", "3 reject proto icmp",
                                                "4 accept"})));
  auto before = counters();
  run_in(udp4("10.0.0.1", "10.0.0.2", 53, 1000, 10));
  run_in(arp());
  EXPECT_EQ(counters().mirrored - before.mirrored, 1u);
  ASSERT_TRUE(session_->set_rules({}));
  before = counters();
  run_in(udp4("10.0.0.1", "10.0.0.2", 1000, 53, 10));
  run_in(ping4("10.0.0.1", "10.0.0.2", 10));
  EXPECT_EQ(counters().mirrored - before.mirrored, 2u);
}

TEST_F(MirrorProgTest, FlowCutoffKeepsFirstBytesAndEverySynFinRst) {
  MirrorOptions o;
  o.flow_cutoff = 1000;
  start(o);
  const char *a = "10.0.0.1", *b = "10.0.0.2";
  struct Step {
    std::vector<uint8_t> frame;
    bool mirrored;
    const char *what;
  } steps[] = {
      {tcp4(a, b, 5000, 80, 0, test::kSyn), true, "SYN"},
      {tcp4(b, a, 80, 5000, 0, test::kSyn | test::kAck), true, "SYN-ACK"},
      {tcp4(a, b, 5000, 80, 600), true, "data at 0"},
      {tcp4(b, a, 80, 5000, 600), true, "reply data at 600 (same flow)"},
      {tcp4(a, b, 5000, 80, 600), false, "data at 1200"},
      {tcp4(b, a, 80, 5000, 0), false, "pure ACK past the cutoff"},
      {tcp4(a, b, 5001, 80, 600), true, "another flow"},
      {tcp4(a, b, 5000, 80, 0, test::kFin | test::kAck), true, "FIN"},
      {tcp4(b, a, 80, 5000, 0, test::kRst | test::kAck), true, "RST"},
      {udp4(a, b, 7, 7, 1200), true, "udp datagram at 0"},
      {udp4(b, a, 7, 7, 10), false, "udp reply at 1200"},
      {arp(), true, "not IP: always"},
  };
  for (const auto &s : steps) {
    auto before = counters();
    run_in(s.frame);
    auto after = counters();
    EXPECT_EQ(after.mirrored - before.mirrored, s.mirrored ? 1u : 0u) << s.what;
    EXPECT_EQ(after.cut_off - before.cut_off, s.mirrored ? 0u : 1u) << s.what;
  }
}

TEST_F(MirrorProgTest, SamplingKeepsWholeFlowsAtTheRate) {
  MirrorOptions o;
  o.sample = 4;
  start(o);
  int sampled = 0, flows = 400;
  for (int i = 0; i < flows; i++) {
    auto src = "10.1." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
    auto before = counters().mirrored;
    run_in(udp4(src.c_str(), "10.2.0.1", static_cast<uint16_t>(1024 + i), 53, 20));
    run_in(udp4("10.2.0.1", src.c_str(), 53, static_cast<uint16_t>(1024 + i), 20));
    run_in(udp4(src.c_str(), "10.2.0.1", static_cast<uint16_t>(1024 + i), 53, 20));
    auto got = counters().mirrored - before;
    EXPECT_TRUE(got == 0 || got == 3) << "flow " << i << " is split: " << got << " of 3 packets mirrored";
    sampled += got == 3;
  }
  auto c = counters();
  EXPECT_EQ(c.mirrored + c.sampled_out, c.matched);
  // 1 in 4 of 400 flows: expect 100, sd ~8.7.
  EXPECT_GT(sampled, 60);
  EXPECT_LT(sampled, 140);
}

// The target program cuts this session's clones to the snaplen; other packets pass untouched.
TEST_F(MirrorProgTest, TargetProgramTruncatesOnlyTaggedCopies) {
  MirrorOptions o;
  o.snaplen = 128;
  start(o);
  auto p = session_->programs();
  ASSERT_GE(p.target, 0);
  ASSERT_NE(p.session_tag, 0u);
  auto frame = udp4("10.0.0.1", "10.0.0.2", 1, 2, 900);
  for (uint32_t mark : {p.session_tag, p.session_tag + 1}) {
    std::vector<uint8_t> out(2048);
    __sk_buff ctx{};
    ctx.mark = mark;
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<uint32_t>(frame.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    opts.ctx_out = &ctx;
    opts.ctx_size_out = sizeof(ctx);
    ASSERT_EQ(bpf_prog_test_run_opts(p.target, &opts), 0);
    EXPECT_EQ(opts.retval, kPass);
    bool ours = mark == p.session_tag;
    EXPECT_EQ(opts.data_size_out, ours ? 128u : frame.size());
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + opts.data_size_out, frame.begin()));
    EXPECT_EQ(ctx.mark, ours ? 0u : mark) << "the tag is cleared from copies only";
  }
  auto before = counters();
  run_in(frame);
  auto after = counters();
  EXPECT_EQ(after.mirrored - before.mirrored, 1u);
  EXPECT_EQ(after.truncated - before.truncated, 1u);
  EXPECT_EQ(after.mirrored_bytes - before.mirrored_bytes, 128u);
  auto t = session_->target_stats();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->failed, 0u);
  EXPECT_EQ(t->copies, 2u) << "the tagged test run and the real clone";
}

// What `ip -d -j link show` says of a VXLAN device: VNI, remote, port, learning.
std::string vxlan_info(const std::string &name) {
  auto out = lab::run_checked({"ip", "-d", "-j", "link", "show", "dev", name});
  if (!out) return "no device " + name;
  auto data = nlohmann::json::parse(*out)[0]["linkinfo"]["info_data"];
  return fmt::format("id {} remote {} port {} learning {}", data.value("id", -1), data.value("remote", "?"),
                     data.value("port", -1), data.value("learning", true));
}

TEST_F(MirrorProgTest, VxlanTargetIsADeviceWithTheSensorsRemoteAndVni) {
  MirrorOptions o;
  o.vxlan = VxlanTarget{"192.0.2.9", "", 42, 4789};
  start(o);
  std::string name = vxlan_device_name(*o.vxlan);
  EXPECT_EQ(vxlan_info(name), "id 42 remote 192.0.2.9 port 4789 learning false");
  EXPECT_EQ(session_->target_ifindex(), if_nametoindex(name.c_str()));
  EXPECT_EQ(session_->target(), "192.0.2.9 VNI 42 via " + name);
  EXPECT_LT(session_->programs().target, 0) << "nothing to do on the device's egress without a snaplen";

  // Another session to the same sensor shares the device; one that cuts copies has its program.
  MirrorOptions cut = o;
  cut.from = {"bta"};
  cut.snaplen = 128;
  auto second = MirrorSession::start(cut);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ((*second)->target_ifindex(), session_->target_ifindex());
  EXPECT_GE((*second)->programs().target, 0);

  // The kernel allows one device per VNI and port: the same VNI to another sensor is refused,
  // with what to do, and leaves nothing behind.
  MirrorOptions clash = o;
  clash.from = {"bta"};
  clash.vxlan->remote = "192.0.2.10";
  auto refused = MirrorSession::start(clash);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().bad_input);
  EXPECT_NE(refused.error().message().find("give this sensor another VNI"), std::string::npos)
      << refused.error().message();
  EXPECT_EQ(if_nametoindex(vxlan_device_name(*clash.vxlan).c_str()), 0u);

  // Nor can a fixed device use a port an external-mode device listens on (the kernel refuses when
  // it comes up): said as such, and the half-made device is deleted.
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"ip", "link", "add", "extvx", "type", "vxlan", "external", "dstport", "4790"},
           {"ip", "link", "set", "extvx", "up"}}) {
    auto r = lab::run_checked(cmd);
    ASSERT_TRUE(r) << r.error().message();
  }
  MirrorOptions taken = o;
  taken.from = {"bta"};
  taken.vxlan->port = 4790;
  auto busy = MirrorSession::start(taken);
  ASSERT_FALSE(busy);
  EXPECT_TRUE(busy.error().bad_input);
  EXPECT_NE(busy.error().message().find("UDP port 4790 is taken"), std::string::npos) << busy.error().message();
  EXPECT_EQ(if_nametoindex(vxlan_device_name(*taken.vxlan).c_str()), 0u);

  second->reset();
  EXPECT_NE(if_nametoindex(name.c_str()), 0u) << "the first session still sends to it";
  session_.reset();
  EXPECT_EQ(if_nametoindex(name.c_str()), 0u) << "the last session deletes its VXLAN device";
}

TEST(VxlanDeviceName, HashesTheCanonicalTarget) {
  VxlanTarget a{"2001:db8::9", "", 42, 4789}, b{"2001:db8:0:0::9", "", 42, 4789};
  EXPECT_EQ(vxlan_device_name(a), vxlan_device_name(b));
  EXPECT_EQ(vxlan_device_name(a).size(), 15u) << "IFNAMSIZ - 1";
  EXPECT_EQ(vxlan_device_name(a).rfind("bpftap-vx", 0), 0u);
  for (auto other : {VxlanTarget{"2001:db8::8", "", 42, 4789}, VxlanTarget{"2001:db8::9", "", 43, 4789},
                     VxlanTarget{"2001:db8::9", "", 42, 4790}, VxlanTarget{"2001:db8::9", "2001:db8::1", 42, 4789}})
    EXPECT_NE(vxlan_device_name(a), vxlan_device_name(other)) << other.remote << " " << other.vni;
}

TEST_F(MirrorProgTest, BypassedFlowsAreNotMirroredUntilTheirTimeIsUp) {
  start({});
  auto fwd = tcp4("10.0.0.1", "10.0.0.2", 5000, 80, 100);
  auto rev = tcp4("10.0.0.2", "10.0.0.1", 80, 5000, 100);
  auto other = tcp4("10.0.0.1", "10.0.0.2", 5001, 80, 100);
  // The key is the same whichever way round the flow is given.
  auto k1 = make_flow_key(IPPROTO_TCP, "10.0.0.2", 80, "10.0.0.1", 5000);
  auto k2 = make_flow_key(IPPROTO_TCP, "10.0.0.1", 5000, "10.0.0.2", 80);
  EXPECT_EQ(std::memcmp(&k1, &k2, sizeof(k1)), 0);
  ASSERT_TRUE(session_->bypass(k1, 0.3));
  auto before = counters();
  run_in(fwd);
  run_in(rev);
  run_in(other);
  auto after = counters();
  EXPECT_EQ(after.bypassed - before.bypassed, 2u) << "both directions of the bypassed flow";
  EXPECT_EQ(after.mirrored - before.mirrored, 1u) << "the other flow still mirrored";
  usleep(400 * 1000);
  session_->expire_bypass();
  before = counters();
  run_in(fwd);
  EXPECT_EQ(counters().mirrored - before.mirrored, 1u) << "mirrored again once the bypass expired";
  EXPECT_FALSE(session_->bypass(make_flow_key(IPPROTO_TCP, "10.0.0.1", 1, "::1", 2), 1)) << "mixed families";
}

// Sends `n` copies of a frame out of `dev` (they arrive on its veth peer).
void send_frames(const char *dev, const std::vector<uint8_t> &frame, int n) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0) << strerror(errno);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex(dev));
  to.sll_halen = ETH_ALEN;
  for (int i = 0; i < n; i++)
    ASSERT_EQ(sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to)),
              static_cast<ssize_t>(frame.size()));
  close(fd);
}

// By netlink: /sys shows the interfaces of the namespace it was mounted in, not this test's.
uint64_t tx_packets(const char *dev) {
  auto out = lab::run_checked({"ip", "-s", "-j", "link", "show", "dev", dev});
  EXPECT_TRUE(out) << "ip -s link show " << dev;
  return out ? nlohmann::json::parse(*out)[0]["stats64"]["tx"]["packets"].get<uint64_t>() : 0;
}

// Polls `get` until it returns `want` or 2 s pass (frames sent to a veth are received in a softirq
// after sendto returns); returns the last value.
template <typename F> uint64_t settle(F get, uint64_t want) {
  uint64_t v = get();
  for (int i = 0; i < 200 && v != want; i++) {
    usleep(10000);
    v = get();
  }
  return v;
}

// --attach tc: the program is a classifier (0 = no match, -1 = a match) in front of tc's mirred
// action, which makes the copies; the copies it cannot send are counted as failed.
TEST_F(MirrorProgTest, AttachTcLetsTcsMirredActionCopy) {
  MirrorOptions o;
  o.attach = AttachMode::Tc;
  o.ingress = true;
  o.egress = false;
  o.rules = *parse_rules({"10 reject proto udp dport 53", "20 accept"});
  start(o);
  EXPECT_EQ(session_->programs().target, -1);
  EXPECT_EQ(run_in(udp4("10.0.0.1", "10.0.0.2", 1000, 53, 10)), 0u) << "rejected: no match";
  EXPECT_EQ(run_in(udp4("10.0.0.1", "10.0.0.2", 1000, 54, 10)), kPass) << "accepted: a match (-1)";
  __sk_buff other{};
  other.ifindex = if_nametoindex("btb");
  EXPECT_EQ(test::run_tc(session_->programs().in, udp4("10.0.0.1", "10.0.0.2", 1, 2, 10), other).retval, 0u)
      << "an interface the session does not watch";

  auto shown = lab::run_checked({"tc", "-j", "filter", "show", "dev", "bta", "ingress"});
  ASSERT_TRUE(shown);
  EXPECT_NE(shown->find("\"kind\":\"mirred\""), std::string::npos) << *shown;
  EXPECT_NE(shown->find("\"to_dev\":\"btc\""), std::string::npos) << *shown;
  EXPECT_NE(shown->find("\"control_action\":{\"type\":\"continue\"}"), std::string::npos) << *shown;
  EXPECT_EQ(shown->find("direct-action"), std::string::npos) << *shown;

  auto before = counters();
  uint64_t tx = tx_packets("btc");
  send_frames("btb", udp4("10.0.0.1", "10.0.0.2", 1000, 54, 100), 20);
  send_frames("btb", udp4("10.0.0.1", "10.0.0.2", 1000, 53, 100), 5);
  EXPECT_EQ(settle([&] { return counters().mirrored - before.mirrored; }, 20), 20u);
  EXPECT_EQ(settle([&] { return tx_packets("btc") - tx; }, 20), 20u) << "act_mirred sent the copies out of the target";
  EXPECT_EQ(counters().failed, 0u);

  ASSERT_TRUE(lab::run_checked({"ip", "link", "set", "btc", "down"}));
  send_frames("btb", udp4("10.0.0.1", "10.0.0.2", 1000, 54, 100), 7);
  EXPECT_EQ(settle([&] { return counters().failed; }, 7), 7u) << "copies to a target that is down";
  EXPECT_EQ(counters().mirrored - before.mirrored, 20u);
  session_->detach();
  EXPECT_EQ(counters().failed, 7u) << "the counters stay readable after detach";
  shown = lab::run_checked({"tc", "filter", "show", "dev", "bta", "ingress"});
  ASSERT_TRUE(shown);
  EXPECT_EQ(*shown, "") << "detach removed the filter and its action";
}

TEST_F(MirrorProgTest, SourcesComeAndGo) {
  MirrorOptions o;
  o.to = "btc";
  o.allow_no_sources = true;
  auto s = MirrorSession::start(o);
  ASSERT_TRUE(s) << s.error().message();
  session_ = std::move(*s);
  EXPECT_TRUE(session_->sources().empty());
  InterfaceInfo bta{"bta", static_cast<uint32_t>(ifindex_), 1, 262144};
  ASSERT_TRUE(session_->add_source(bta));
  run_in(udp4("10.0.0.1", "10.0.0.2", 1, 2, 10));
  EXPECT_EQ(counters().mirrored, 1u);
  auto last = session_->remove_source(bta.ifindex);
  ASSERT_TRUE(last);
  ASSERT_FALSE(last->empty());
  EXPECT_EQ((*last)[0].counters.mirrored, 1u) << "the removed source's last counters";
  EXPECT_TRUE(session_->sources().empty());
  auto st = session_->stats();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->empty());
  EXPECT_FALSE(session_->add_source(InterfaceInfo{"btc", if_nametoindex("btc"), 1, 262144})) << "target as source";
}

TEST_F(MirrorProgTest, BadTargetsAreBadInput) {
  MirrorOptions o;
  o.from = {"bta"};
  auto expect_bad = [&](MirrorOptions x, const char *what) {
    auto s = MirrorSession::start(x);
    ASSERT_FALSE(s) << what;
    EXPECT_TRUE(s.error().bad_input) << what << ": " << s.error().message();
  };
  auto none = o;
  expect_bad(none, "no target");
  auto both = o;
  both.to = "btc";
  both.vxlan = VxlanTarget{"192.0.2.9", "", 1, 4789};
  expect_bad(both, "two targets");
  auto vni = o;
  vni.vxlan = VxlanTarget{"192.0.2.9", "", 1u << 24, 4789};
  expect_bad(vni, "VNI out of range");
  auto addr = o;
  addr.vxlan = VxlanTarget{"192.0.2.300", "", 1, 4789};
  expect_bad(addr, "bad remote");
  auto local = o;
  local.vxlan = VxlanTarget{"192.0.2.9", "2001:db8::1", 1, 4789};
  expect_bad(local, "local of another family");
  auto snap = o;
  snap.to = "btc";
  snap.snaplen = 20;
  expect_bad(snap, "snaplen below the minimum");
  for (const char *remote : {"0.0.0.0", "239.1.1.1", "255.255.255.255", "::", "ff02::1", "fe80::1"}) {
    auto x = o;
    x.vxlan = VxlanTarget{remote, "", 1, 4789};
    expect_bad(x, remote);
  }
  auto ok = o;
  ok.vxlan = VxlanTarget{"2001:db8::9", "", 1, 4789};
  EXPECT_TRUE(check_mirror_options(ok)) << "a unicast IPv6 remote";
  // Nothing was created for any of them.
  auto r = lab::run_checked({"ip", "-o", "link", "show", "type", "vxlan"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->find("bpftap-vx"), std::string::npos) << *r;
}

} // namespace
