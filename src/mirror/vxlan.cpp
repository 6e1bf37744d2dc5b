#include "mirror/vxlan.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernel/attach.h"
#include "mirror/spec.h"  // parse_address: the mirror's one address parser
#include "util/run.h"

namespace bpftap {
namespace {

constexpr const char *kLockDir = "/run/bpftap";
constexpr const char *kPrefix = "bpftap-vx";

// Two lock files per device: `mutex` serialises creating and deleting it; every user holds a
// shared lock on `users` while it sends, so "exclusive lock on users" means "no other user".
std::string lock_path(const std::string &device, const char *kind) {
  return fmt::format("{}/vxlan-{}-{}.{}", kLockDir, netns_id(), device, kind);
}

Result<FD> open_lock(const std::string &device, const char *kind) {
  std::error_code ec;
  std::filesystem::create_directories(kLockDir, ec);
  std::string path = lock_path(device, kind);
  FD fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open " + path, errno);
  return fd;
}

// Holds an exclusive flock for a scope.
class Mutex {
public:
  explicit Mutex(int fd) : fd_(fd) { ok_ = flock(fd_, LOCK_EX) == 0; }
  ~Mutex() { flock(fd_, LOCK_UN); }
  bool ok() const { return ok_; }

private:
  int fd_;
  bool ok_;
};

// "2001:db8:0::9" -> "2001:db8::9", as `ip -j` prints it; "" stays "".
std::string canonical(const std::string &address) {
  uint32_t words[4];
  char text[INET6_ADDRSTRLEN];
  int family = parse_address(address, words);
  if (family && inet_ntop(family == 4 ? AF_INET : AF_INET6, words, text, sizeof(text))) return text;
  return address;
}

// Whether the existing device `name` sends to `t` (else a hash collision, or not ours at all).
bool sends_to(const std::string &name, const VxlanTarget &t) {
  auto out = lab::run_checked({"ip", "-d", "-j", "link", "show", "dev", name});
  if (!out) return false;
  auto info = nlohmann::json::parse(*out, nullptr, false);
  if (!info.is_array() || info.empty()) return false;
  const auto &data = info[0].value("linkinfo", nlohmann::json::object()).value("info_data", nlohmann::json::object());
  bool v6 = address_family(t.remote) == 6;
  return data.value("id", -1) == int64_t(t.vni) && data.value("port", -1) == int64_t(t.port) &&
         data.value(v6 ? "remote6" : "remote", "") == canonical(t.remote) &&
         data.value(v6 ? "local6" : "local", "") == canonical(t.local);
}

} // namespace

std::string vxlan_device_name(const VxlanTarget &t) {
  std::string key = fmt::format("{}|{}|{}|{}", canonical(t.remote), canonical(t.local), t.vni, t.port);
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 16777619u;
  return fmt::format("{}{:06x}", kPrefix, h & 0xffffffu);
}

uint32_t interface_mtu(const std::string &name) {
  FD sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!sock || ioctl(sock.get(), SIOCGIFMTU, &req) != 0) return 0;
  return uint32_t(req.ifr_mtu);
}

std::string underlay_mtu_note(const std::string &remote, bool ipv6, uint32_t inner_mtu) {
  auto route = lab::run_checked({"ip", "-o", "route", "get", remote});
  if (!route) return fmt::format("no route to the sensor {}: {}", remote, route.error().message());
  auto at = route->find(" dev ");
  if (at == std::string::npos) return {};
  std::string dev = route->substr(at + 5);
  dev = dev.substr(0, dev.find(' '));
  uint32_t mtu = interface_mtu(dev), need = inner_mtu + vxlan_overhead(ipv6);
  if (mtu == 0 || mtu >= need) return {};
  return fmt::format("the underlay to {} leaves through {} (MTU {}): copies of {}-byte frames need MTU {} there, "
                     "else they are fragmented; raise it (ip link set dev {} mtu {}) or cut copies with -s",
                     remote, dev, mtu, inner_mtu, need, dev, need);
}

Result<std::unique_ptr<VxlanDevice>> VxlanDevice::acquire(const VxlanTarget &t, uint32_t inner_mtu) {
  std::string name = vxlan_device_name(t);
  auto mutex_fd = open_lock(name, "mutex");
  if (!mutex_fd) return tl::unexpected(mutex_fd.error());
  auto users = open_lock(name, "users");
  if (!users) return tl::unexpected(users.error());
  Mutex mutex(mutex_fd->get());
  if (!mutex.ok()) return fail_errno("lock " + lock_path(name, "mutex"), errno);
  std::string what = fmt::format("VXLAN device {} (to {} VNI {} port {})", name, t.remote, t.vni, t.port);
  bool created = false;
  if (if_nametoindex(name.c_str()) == 0) {
    std::vector<std::string> cmd = {"ip", "link", "add", "name", name, "type", "vxlan", "id", std::to_string(t.vni),
                                    "remote", t.remote, "dstport", std::to_string(t.port), "ttl", "64", "nolearning"};
    if (!t.local.empty()) cmd.insert(cmd.end(), {"local", t.local});
    auto r = lab::run_checked(cmd);
    if (!r) {
      // The two clashes a user can resolve are said as such (and are bad input: exit 2).
      std::string why = r.error().message();
      // (Kernels without extended errors say only "File exists": the name is ours and was free.)
      if (why.find("VNI already exists") != std::string::npos || why.find("File exists") != std::string::npos)
        return bad_input(fmt::format("create {}: another VXLAN device of this network namespace has VNI {} on port {} "
                                     "(ip -d link show type vxlan), and the kernel allows one: give this sensor "
                                     "another VNI", what, t.vni, t.port));
      return fail("create " + what + ": " + why);
    }
    created = true;
  } else if (!sends_to(name, t)) {
    return fail(fmt::format("{} exists but does not send to {} VNI {} port {}: delete it (ip link del {})", name,
                            t.remote, t.vni, t.port, name));
  }
  auto undo = [&](Error e) -> Result<std::unique_ptr<VxlanDevice>> {
    if (created) lab::run_command({"ip", "link", "del", "dev", name});
    return tl::unexpected(std::move(e));
  };
  // The device binds its UDP port when it comes up: that is where a port taken by another socket
  // (e.g. an external-mode VXLAN device's) shows.
  if (auto r = lab::run_checked({"ip", "link", "set", "dev", name, "up"}); !r) {
    if (r.error().message().find("Address already in use") != std::string::npos) {
      auto e = bad_input(fmt::format("bring {} up: UDP port {} is taken, e.g. by an external-mode VXLAN device (ip -d "
                                     "link show type vxlan): use another port", what, t.port));
      return undo(e.value());
    }
    return undo(Error{0, fmt::format("bring {} up: {}", what, r.error().message())});
  }
  uint32_t ifindex = if_nametoindex(name.c_str());
  if (ifindex == 0) return undo(Error{errno, "find " + what});
  // The device's MTU caps the frames it takes: at 1500 a 1514-byte copy of a full-size frame
  // would not go. Raised, never lowered (other sessions may need more).
  std::string note;
  if (uint32_t mtu = interface_mtu(name); inner_mtu > mtu) {
    if (auto r = lab::run_checked({"ip", "link", "set", "dev", name, "mtu", std::to_string(inner_mtu)}); !r)
      note = fmt::format("{} keeps MTU {} (copies of larger frames are dropped): {}", name, mtu, r.error().message());
  }
  if (flock(users->get(), LOCK_SH) != 0) return undo(Error{errno, "lock " + lock_path(name, "users")});
  std::unique_ptr<VxlanDevice> dev(new VxlanDevice(name, ifindex, std::move(*users)));
  dev->mtu_note_ = std::move(note);
  return dev;
}

VxlanDevice::~VxlanDevice() {
  // The last user deletes the device: if nobody else holds `users`, nobody else sends to it.
  auto mutex_fd = open_lock(name_, "mutex");
  if (!mutex_fd) return;
  Mutex mutex(mutex_fd->get());
  if (flock(users_.get(), LOCK_EX | LOCK_NB) == 0) lab::run_command({"ip", "link", "del", "dev", name_});
}

Result<std::vector<std::string>> cleanup_vxlan_devices() {
  std::vector<std::string> removed;
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) return fail_errno("list interfaces", errno);
  std::vector<std::string> names;
  for (auto *i = ifs; i->if_index != 0; i++)
    if (std::string_view(i->if_name).starts_with(kPrefix)) names.emplace_back(i->if_name);
  if_freenameindex(ifs);
  for (const auto &name : names) {
    auto mutex_fd = open_lock(name, "mutex");
    if (!mutex_fd) return tl::unexpected(mutex_fd.error());
    auto users = open_lock(name, "users");
    if (!users) return tl::unexpected(users.error());
    Mutex mutex(mutex_fd->get());
    if (flock(users->get(), LOCK_EX | LOCK_NB) != 0) continue;  // a running bpftap uses it
    if (auto r = lab::run_checked({"ip", "link", "del", "dev", name}); !r) return tl::unexpected(r.error());
    removed.push_back("VXLAN device " + name);
  }
  return removed;
}

} // namespace bpftap
