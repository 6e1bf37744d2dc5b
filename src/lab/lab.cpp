#include "lab/lab.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "util/run.h"

namespace bpftap::lab {
namespace {

// iproute2 keeps one bind-mounted file per named namespace here.
constexpr const char *kNetnsDir = "/var/run/netns/";

using Argv = std::vector<std::string>;

std::string S(std::string_view v) { return std::string(v); }
std::string with_len(std::string_view addr) { return fmt::format("{}/{}", addr, kAddrPrefixLen); }

bool ns_exists(const std::string &ns) {
  std::error_code ec;
  return std::filesystem::exists(kNetnsDir + ns, ec);
}

Result<> require_root() {
  if (::geteuid() != 0) return fail("the lab needs root (it creates network namespaces)", EPERM);
  return {};
}

std::vector<std::string> split_ws(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > b) out.emplace_back(line.substr(b, i - b));
  }
  return out;
}

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    std::size_t e = s.find('\n');
    out.push_back(s.substr(0, e));
    if (e == std::string_view::npos) break;
    s.remove_prefix(e + 1);
  }
  return out;
}

std::string ifname(std::string tok) {
  if (!tok.empty() && tok.back() == ':') tok.pop_back();
  if (auto at = tok.find('@'); at != std::string::npos) tok.resize(at);
  return tok;
}

// SIGINT/SIGTERM/SIGHUP during lab_up set this; lab_up then rolls back and fails.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

class InterruptGuard {
public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptGuard() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  InterruptGuard(const InterruptGuard &) = delete;
  InterruptGuard &operator=(const InterruptGuard &) = delete;

private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

const InterfaceStatus *find_if(const NamespaceStatus &ns, std::string_view name) {
  for (const auto &i : ns.interfaces)
    if (i.name == name) return &i;
  return nullptr;
}

// Checks one expected interface; appends what is wrong to problems.
void expect_if(const NamespaceStatus &ns, std::string_view name, std::string_view addr,
               std::string_view master, bool promisc, std::vector<std::string> &problems) {
  const InterfaceStatus *i = find_if(ns, name);
  auto where = fmt::format("{}: {}", ns.name, name);
  if (!i) {
    problems.push_back(where + " missing");
    return;
  }
  if (!i->admin_up || (i->state != "UP" && i->state != "UNKNOWN"))
    problems.push_back(fmt::format("{} is {}", where, i->admin_up ? i->state : "down"));
  if (name != "lo" && i->mtu != kMtu)
    problems.push_back(fmt::format("{} has mtu {} (want {})", where, i->mtu, kMtu));
  if (!addr.empty() && std::find(i->addrs.begin(), i->addrs.end(), with_len(addr)) == i->addrs.end())
    problems.push_back(fmt::format("{} lacks {}", where, with_len(addr)));
  if (i->master != master)
    problems.push_back(master.empty() ? fmt::format("{} should not be on {}", where, i->master)
                                      : fmt::format("{} is not a port of {}", where, master));
  if (promisc && !i->promisc) problems.push_back(where + " is not promiscuous");
}

} // namespace

// ---- names -----------------------------------------------------------------------------

std::vector<Guest> LabNames::guests() const {
  return {{"vm1", vm1, "tap-vm1", "10.77.0.1"},
          {"vm2", vm2, "tap-vm2", "10.77.0.2"},
          {"atk", atk, "tap-atk", "10.77.0.66"}};
}

std::vector<std::string> LabNames::namespaces() const { return {host, vm1, vm2, atk, mon, sen}; }

LabNames lab_names(std::string_view prefix) {
  std::string p(prefix);
  return {p, p + "host", p + "vm1", p + "vm2", p + "atk", p + "mon", p + "sen"};
}

Result<> validate_prefix(std::string_view prefix) {
  bool ok = !prefix.empty() && prefix.size() <= kMaxPrefixLen && prefix.front() != '-' &&
            std::all_of(prefix.begin(), prefix.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            });
  if (!ok)
    return fail(fmt::format("invalid lab prefix '{}': use 1-{} characters from [a-z0-9-], not "
                            "starting with '-'",
                            prefix, kMaxPrefixLen));
  return {};
}

std::string describe(const LabNames &n) {
  auto g = n.guests();
  return fmt::format("lab {}: host {} ({}: {} {} {}), vm1 {}, vm2 {}, atk {}, monitor {} via {}, "
                     "sensor {} {} (VXLAN VNI {}) via {}",
                     n.prefix, n.host, kBridge, g[0].tap, g[1].tap, g[2].tap, g[0].addr,
                     g[1].addr, g[2].addr, n.mon, kMonitorPort, n.sen, kSensorAddr, kSensorVni, kSensorPort);
}

// ---- up / down ---------------------------------------------------------------------------

std::vector<std::vector<std::string>> lab_up_plan(const LabNames &n, bool have_ipv6) {
  const std::string mtu = std::to_string(kMtu);
  std::vector<Argv> plan;
  // Sysctls first: IPv6 must be off before any link exists or comes up, so no link-local
  // addresses, router solicitations or MLD reports ever appear in the lab.
  for (const auto &ns : n.namespaces()) {
    Argv sysctl{"ip", "netns", "exec", ns, "sysctl", "-q", "-w"};
    if (have_ipv6) {
      sysctl.push_back("net.ipv6.conf.all.disable_ipv6=1");
      sysctl.push_back("net.ipv6.conf.default.disable_ipv6=1");
    }
    sysctl.push_back("net.ipv4.conf.all.rp_filter=0");
    sysctl.push_back("net.ipv4.conf.default.rp_filter=0");
    plan.push_back(sysctl);
    plan.push_back({"ip", "-n", ns, "link", "set", "dev", "lo", "up"});
  }
  // The bridge: no STP and no forwarding delay (ports forward at once), no multicast snooping
  // and link-local group addresses forwarded (LLDP, 802.1X...), so that every replayed frame
  // reaches every port.
  plan.push_back({"ip", "-n", n.host, "link", "add", "name", S(kBridge), "mtu", mtu, "type",
                  "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0",
                  "group_fwd_mask", "0xfff8"});
  for (const auto &g : n.guests()) {
    plan.push_back({"ip", "-n", n.host, "link", "add", "name", g.tap, "mtu", mtu, "type", "veth",
                    "peer", "name", S(kGuestIf), "mtu", mtu, "netns", g.ns});
    plan.push_back({"ip", "-n", n.host, "link", "set", "dev", g.tap, "master", S(kBridge)});
    // No learning + flooding: frames with any destination MAC go to every port.
    plan.push_back({"ip", "-n", n.host, "link", "set", "dev", g.tap, "type", "bridge_slave",
                    "learning", "off", "flood", "on", "mcast_flood", "on"});
    plan.push_back({"ip", "-n", n.host, "link", "set", "dev", g.tap, "up"});
    plan.push_back({"ip", "-n", g.ns, "addr", "add", with_len(g.addr), "dev", S(kGuestIf)});
    plan.push_back({"ip", "-n", g.ns, "link", "set", "dev", S(kGuestIf), "up"});
  }
  plan.push_back({"ip", "-n", n.host, "link", "add", "name", S(kMonitorPort), "mtu", mtu, "type",
                  "veth", "peer", "name", S(kGuestIf), "mtu", mtu, "netns", n.mon});
  plan.push_back({"ip", "-n", n.host, "link", "set", "dev", S(kMonitorPort), "up"});
  plan.push_back({"ip", "-n", n.mon, "link", "set", "dev", S(kGuestIf), "promisc", "on", "up"});
  // The remote sensor: routed from the host over sen0; vxlan0 decapsulates VNI 42.
  plan.push_back({"ip", "-n", n.host, "link", "add", "name", S(kSensorPort), "mtu", mtu, "type",
                  "veth", "peer", "name", S(kGuestIf), "mtu", mtu, "netns", n.sen});
  plan.push_back({"ip", "-n", n.host, "addr", "add", with_len(kSensorHostAddr), "dev", S(kSensorPort)});
  plan.push_back({"ip", "-n", n.host, "link", "set", "dev", S(kSensorPort), "up"});
  plan.push_back({"ip", "-n", n.sen, "addr", "add", with_len(kSensorAddr), "dev", S(kGuestIf)});
  plan.push_back({"ip", "-n", n.sen, "link", "set", "dev", S(kGuestIf), "up"});
  plan.push_back({"ip", "-n", n.sen, "link", "add", "name", S(kSensorVxlan), "mtu", mtu,
                  "type", "vxlan", "id", std::to_string(kSensorVni), "dstport", "4789", "local",
                  S(kSensorAddr), "nolearning"});
  plan.push_back({"ip", "-n", n.sen, "link", "set", "dev", S(kSensorVxlan), "up"});
  plan.push_back({"ip", "-n", n.host, "addr", "add", with_len(kHostAddr), "dev", S(kBridge)});
  plan.push_back({"ip", "-n", n.host, "link", "set", "dev", S(kBridge), "up"});
  return plan;
}

Result<UpOutcome> lab_up(const LabOptions &opts) {
  if (auto r = validate_prefix(opts.prefix); !r) return tl::unexpected(r.error());
  if (auto r = require_root(); !r) return tl::unexpected(r.error());
  const LabNames n = lab_names(opts.prefix);

  std::vector<std::string> existing;
  for (const auto &ns : n.namespaces())
    if (ns_exists(ns)) existing.push_back(ns);
  if (!existing.empty()) {
    auto st = lab_status(opts);
    if (!st) return tl::unexpected(st.error());
    if (st->complete()) return UpOutcome::already_up;
    return fail(fmt::format("lab {} is partly present ({}); run `bpftap lab down --prefix {}` first",
                            n.prefix, st->problems.front(), n.prefix));
  }

  InterruptGuard guard;
  std::vector<std::string> created;
  auto rollback = [&](Error e) -> Result<UpOutcome> {
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      if (auto r = run_checked({"ip", "netns", "del", *it}); !r)
        e.what += "; cleanup also failed: " + r.error().message();
    }
    return tl::unexpected(std::move(e));
  };
  auto interrupted = [&]() { return g_interrupted != 0; };

  for (const auto &ns : n.namespaces()) {
    auto r = run_checked({"ip", "netns", "add", ns});
    if (!r) return rollback(r.error());
    created.push_back(ns);
    if (interrupted()) return rollback(Error{0, "interrupted; removed what was created"});
  }
  std::error_code ec;
  const bool have_ipv6 = std::filesystem::exists("/proc/sys/net/ipv6", ec);
  for (const auto &cmd : lab_up_plan(n, have_ipv6)) {
    auto r = run_checked(cmd);
    if (interrupted()) return rollback(Error{0, "interrupted; removed what was created"});
    if (!r) return rollback(r.error());
  }
  // The bridge turns operationally UP (ports forwarding) a moment after `link set up`; return
  // only once the whole lab checks out, so callers can send traffic at once.
  for (int attempt = 0;; ++attempt) {
    auto st = lab_status(opts);
    if (!st) return rollback(st.error());
    if (st->complete()) break;
    if (attempt == 50)
      return rollback(Error{0, "lab not ready after 5 s: " + st->problems.front()});
    ::usleep(100 * 1000);
    if (interrupted()) return rollback(Error{0, "interrupted; removed what was created"});
  }
  return UpOutcome::created;
}

Result<std::vector<std::string>> lab_down(const LabOptions &opts) {
  if (auto r = validate_prefix(opts.prefix); !r) return tl::unexpected(r.error());
  if (auto r = require_root(); !r) return tl::unexpected(r.error());
  std::vector<std::string> removed;
  std::vector<std::string> errors;
  const auto all = lab_names(opts.prefix).namespaces();
  // Guests first, host last: the host holds the other veth ends.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!ns_exists(*it)) continue;
    if (auto r = run_checked({"ip", "netns", "del", *it}); r)
      removed.push_back(*it);
    else
      errors.push_back(r.error().message());
  }
  if (!errors.empty()) {
    std::string msg = errors.front();
    if (errors.size() > 1) msg += fmt::format(" (and {} more failures)", errors.size() - 1);
    return fail(msg);
  }
  return removed;
}

// ---- status ----------------------------------------------------------------------------

std::vector<InterfaceStatus> parse_ip_link(std::string_view out) {
  std::vector<InterfaceStatus> ifaces;
  for (auto line : lines(out)) {
    // "5: tap-vm1@if2: <BROADCAST,UP,LOWER_UP> mtu 9000 qdisc noqueue master br0 state UP ...\ link/ether ..."
    if (auto bs = line.find('\\'); bs != std::string_view::npos) line = line.substr(0, bs);
    auto tok = split_ws(line);
    if (tok.size() < 3) continue;
    InterfaceStatus i;
    i.name = ifname(tok[1]);
    std::string flags = tok[2];
    if (flags.size() >= 2 && flags.front() == '<' && flags.back() == '>') {
      std::stringstream ss(flags.substr(1, flags.size() - 2));
      for (std::string f; std::getline(ss, f, ',');) {
        if (f == "UP") i.admin_up = true;
        if (f == "PROMISC") i.promisc = true;
      }
    }
    for (std::size_t k = 3; k + 1 < tok.size(); ++k) {
      if (tok[k] == "mtu") i.mtu = std::atoi(tok[k + 1].c_str());
      else if (tok[k] == "master") i.master = tok[k + 1];
      else if (tok[k] == "state") i.state = tok[k + 1];
    }
    ifaces.push_back(std::move(i));
  }
  return ifaces;
}

void merge_ip_addr(std::string_view out, std::vector<InterfaceStatus> &ifaces) {
  for (auto line : lines(out)) {
    // "3: eth0    inet 10.77.0.1/24 brd 10.77.0.255 scope global eth0\ valid_lft ..."
    auto tok = split_ws(line);
    if (tok.size() < 4 || (tok[2] != "inet" && tok[2] != "inet6")) continue;
    std::string name = ifname(tok[1]);
    for (auto &i : ifaces)
      if (i.name == name) i.addrs.push_back(tok[3]);
  }
}

bool LabStatus::any_present() const {
  return std::any_of(namespaces.begin(), namespaces.end(), [](auto &n) { return n.present; });
}

Result<LabStatus> lab_status(const LabOptions &opts) {
  if (auto r = validate_prefix(opts.prefix); !r) return tl::unexpected(r.error());
  if (auto r = require_root(); !r) return tl::unexpected(r.error());
  LabStatus st;
  st.names = lab_names(opts.prefix);
  for (const auto &name : st.names.namespaces()) {
    NamespaceStatus ns;
    ns.name = name;
    ns.present = ns_exists(name);
    if (ns.present) {
      auto links = run_checked({"ip", "-n", name, "-o", "link", "show"});
      if (!links) return tl::unexpected(links.error());
      auto addrs = run_checked({"ip", "-n", name, "-o", "addr", "show"});
      if (!addrs) return tl::unexpected(addrs.error());
      ns.interfaces = parse_ip_link(*links);
      merge_ip_addr(*addrs, ns.interfaces);
    }
    st.namespaces.push_back(std::move(ns));
  }

  auto &p = st.problems;
  const auto guests = st.names.guests();
  for (const auto &ns : st.namespaces) {
    if (!ns.present) {
      p.push_back(ns.name + " missing");
      continue;
    }
    expect_if(ns, "lo", "", "", false, p);
    for (const auto &i : ns.interfaces)
      for (const auto &a : i.addrs)
        if (a.find(':') != std::string::npos)
          p.push_back(fmt::format("{}: {} has IPv6 address {}", ns.name, i.name, a));
    if (ns.name == st.names.host) {
      expect_if(ns, kBridge, kHostAddr, "", false, p);
      for (const auto &g : guests) expect_if(ns, g.tap, "", kBridge, false, p);
      expect_if(ns, kMonitorPort, "", "", false, p);
      expect_if(ns, kSensorPort, kSensorHostAddr, "", false, p);
    } else if (ns.name == st.names.mon) {
      expect_if(ns, kGuestIf, "", "", true, p);
    } else if (ns.name == st.names.sen) {
      expect_if(ns, kGuestIf, kSensorAddr, "", false, p);
      expect_if(ns, kSensorVxlan, "", "", false, p);
    } else {
      for (const auto &g : guests)
        if (g.ns == ns.name) expect_if(ns, kGuestIf, g.addr, "", false, p);
    }
  }
  return st;
}

std::string format_status(const LabStatus &st) {
  std::string out;
  const char *verdict = st.complete() ? "complete" : st.any_present() ? "partial" : "not present";
  out += fmt::format("lab {}: {}\n", st.names.prefix, verdict);
  for (const auto &ns : st.namespaces) {
    if (!ns.present) {
      out += fmt::format("  {:<12} missing\n", ns.name);
      continue;
    }
    bool first = true;
    for (const auto &i : ns.interfaces) {
      if (i.name == "lo") continue;
      std::string extra;
      for (const auto &a : i.addrs) extra += " " + a;
      if (!i.master.empty()) extra += " master " + i.master;
      if (i.promisc) extra += " promisc";
      out += fmt::format("  {:<12} {:<8} {:<5} mtu {}{}\n", first ? ns.name : "", i.name,
                         i.admin_up ? (i.state.empty() ? "UP" : i.state) : "DOWN", i.mtu, extra);
      first = false;
    }
    if (first) out += fmt::format("  {:<12} (no interfaces)\n", ns.name);
  }
  if (st.any_present())
    for (const auto &pr : st.problems) out += "  problem: " + pr + "\n";
  return out;
}

} // namespace bpftap::lab
