// A network-namespace lab that imitates a hypervisor host:
//
//   <P>host: bridge br0 (10.77.0.254/24) with ports tap-vm1, tap-vm2, tap-atk (learning off,
//            flood on), and mon0 (not on the bridge)
//   <P>vm1:  eth0 10.77.0.1/24   (peer of tap-vm1)
//   <P>vm2:  eth0 10.77.0.2/24   (peer of tap-vm2)
//   <P>atk:  eth0 10.77.0.66/24  (peer of tap-atk, the attacker)
//   <P>mon:  eth0, no address, promiscuous (peer of mon0, the monitor)
//   <P>sen:  eth0 10.77.1.1/24 (peer of sen0, 10.77.1.254/24 in <P>host), the remote sensor:
//            vxlan0 (VNI 42, UDP 4789) decapsulates what bpftap mirrors to it over VXLAN
//
// Only namespace names carry the prefix; interface names are fixed (they live in the lab's own
// namespaces, so they cannot collide and stay within IFNAMSIZ). Every namespace has IPv6
// disabled, rp_filter 0 and lo up; every veth has MTU 9000.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace bpftap::lab {

inline constexpr std::string_view kDefaultPrefix = "bt-";
inline constexpr std::size_t kMaxPrefixLen = 8;

inline constexpr std::string_view kBridge = "br0";
inline constexpr std::string_view kMonitorPort = "mon0"; // in <P>host, peer of <P>mon eth0
inline constexpr std::string_view kGuestIf = "eth0";     // inside vm1/vm2/atk/mon
inline constexpr std::string_view kHostAddr = "10.77.0.254";
inline constexpr std::string_view kSensorPort = "sen0";          // in <P>host, peer of <P>sen eth0
inline constexpr std::string_view kSensorHostAddr = "10.77.1.254"; // on sen0
inline constexpr std::string_view kSensorAddr = "10.77.1.1";     // on <P>sen eth0
inline constexpr std::string_view kSensorVxlan = "vxlan0";       // in <P>sen
inline constexpr int kSensorVni = 42;
inline constexpr int kAddrPrefixLen = 24;
inline constexpr int kMtu = 9000;

// One namespace attached to the bridge through a tap-like veth.
struct Guest {
  std::string role; // "vm1", "vm2", "atk"
  std::string ns;   // "<P>vm1"
  std::string tap;  // "tap-vm1" (in the host namespace, a port of br0)
  std::string addr; // "10.77.0.1" (on eth0 in ns, /24)
};

struct LabNames {
  std::string prefix;
  std::string host; // <P>host
  std::string vm1;  // <P>vm1
  std::string vm2;  // <P>vm2
  std::string atk;  // <P>atk
  std::string mon;  // <P>mon
  std::string sen;  // <P>sen

  std::vector<Guest> guests() const;         // vm1, vm2, atk
  std::vector<std::string> namespaces() const; // host, vm1, vm2, atk, mon, sen
};

LabNames lab_names(std::string_view prefix);

// 1..8 characters of [a-z0-9-], not starting with '-' (it would read as an option to ip).
Result<> validate_prefix(std::string_view prefix);

struct LabOptions {
  std::string prefix{kDefaultPrefix};
};

enum class UpOutcome { created, already_up };

// Builds the lab. If the complete lab already exists: already_up, nothing changed. If only part
// of it exists: an error (run lab_down first). If a step fails (or SIGINT/SIGTERM/SIGHUP
// arrives), everything created so far is removed and the error names the failed command.
Result<UpOutcome> lab_up(const LabOptions &opts);

// Deletes every lab namespace that exists (their veths go with them). Returns the namespaces
// deleted; nothing to delete is not an error.
Result<std::vector<std::string>> lab_down(const LabOptions &opts);

struct InterfaceStatus {
  std::string name;  // without the "@peer" suffix
  std::string state; // operstate as ip prints it: UP, DOWN, UNKNOWN, LOWERLAYERDOWN...
  std::string master;
  int mtu = 0;
  bool admin_up = false;
  bool promisc = false;
  std::vector<std::string> addrs; // "10.77.0.1/24", IPv6 too if any
};

struct NamespaceStatus {
  std::string name;
  bool present = false;
  std::vector<InterfaceStatus> interfaces; // includes lo
};

struct LabStatus {
  LabNames names;
  std::vector<NamespaceStatus> namespaces; // in LabNames::namespaces() order
  std::vector<std::string> problems;       // empty when the lab is complete

  bool any_present() const;
  bool complete() const { return problems.empty(); }
};

Result<LabStatus> lab_status(const LabOptions &opts);

// "lab bt-: host bt-host (br0: tap-vm1 tap-vm2 tap-atk), vm1 10.77.0.1, ..."
std::string describe(const LabNames &names);
// Multi-line report: one line per namespace and interface, then the problems.
std::string format_status(const LabStatus &st);

// The ip/sysctl commands lab_up runs after creating the namespaces, in order.
std::vector<std::vector<std::string>> lab_up_plan(const LabNames &names, bool have_ipv6);

// Parsers for `ip -o link show` and `ip -o addr show` (exposed for unit tests).
std::vector<InterfaceStatus> parse_ip_link(std::string_view out);
void merge_ip_addr(std::string_view out, std::vector<InterfaceStatus> &ifaces);

} // namespace bpftap::lab
