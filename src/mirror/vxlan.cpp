#include "mirror/vxlan.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "kernel/attach.h"
#include "util/run.h"

namespace bpftap {
namespace {

constexpr const char *kLockDir = "/run/bpftap";
constexpr const char *kPrefix = "bpftap-vx";

// Two lock files per device: `mutex` serialises creating and deleting it; every user holds a
// shared lock on `users` while it sends, so "exclusive lock on users" means "no other user".
std::string lock_path(uint16_t port, const char *kind) {
  return fmt::format("{}/vxlan-{}-{}.{}", kLockDir, netns_id(), port, kind);
}

Result<FD> open_lock(uint16_t port, const char *kind) {
  std::error_code ec;
  std::filesystem::create_directories(kLockDir, ec);
  std::string path = lock_path(port, kind);
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

} // namespace

std::string vxlan_device_name(uint16_t port) { return fmt::format("{}{}", kPrefix, port); }

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

Result<std::unique_ptr<VxlanDevice>> VxlanDevice::acquire(uint16_t port, uint32_t inner_mtu) {
  auto mutex_fd = open_lock(port, "mutex");
  if (!mutex_fd) return tl::unexpected(mutex_fd.error());
  auto users = open_lock(port, "users");
  if (!users) return tl::unexpected(users.error());
  Mutex mutex(mutex_fd->get());
  if (!mutex.ok()) return fail_errno("lock " + lock_path(port, "mutex"), errno);
  std::string name = vxlan_device_name(port);
  bool created = false;
  if (if_nametoindex(name.c_str()) == 0) {
    auto r = lab::run_checked({"ip", "link", "add", "name", name, "type", "vxlan", "external", "dstport",
                               std::to_string(port)});
    if (!r) return fail(fmt::format("create VXLAN device {}: {}", name, r.error().message()));
    created = true;
  }
  auto undo = [&](Error e) -> Result<std::unique_ptr<VxlanDevice>> {
    if (created) lab::run_command({"ip", "link", "del", "dev", name});
    return tl::unexpected(std::move(e));
  };
  if (auto r = lab::run_checked({"ip", "link", "set", "dev", name, "up"}); !r)
    return undo(Error{0, fmt::format("bring VXLAN device {} up: {}", name, r.error().message())});
  uint32_t ifindex = if_nametoindex(name.c_str());
  if (ifindex == 0) return undo(Error{errno, "find VXLAN device " + name});
  // The device's MTU caps the frames it takes: at 1500 a 1514-byte copy of a full-size frame
  // would not go. Raised, never lowered (other sessions may need more).
  std::string note;
  if (uint32_t mtu = interface_mtu(name); inner_mtu > mtu) {
    if (auto r = lab::run_checked({"ip", "link", "set", "dev", name, "mtu", std::to_string(inner_mtu)}); !r)
      note = fmt::format("{} keeps MTU {} (copies of larger frames are dropped): {}", name, mtu, r.error().message());
  }
  if (flock(users->get(), LOCK_SH) != 0) return undo(Error{errno, "lock " + lock_path(port, "users")});
  std::unique_ptr<VxlanDevice> dev(new VxlanDevice(name, ifindex, port, std::move(*users)));
  dev->mtu_note_ = std::move(note);
  return dev;
}

VxlanDevice::~VxlanDevice() {
  // The last user deletes the device: if nobody else holds `users`, nobody else sends to it.
  auto mutex_fd = open_lock(port_, "mutex");
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
    unsigned port = 0;
    try {
      port = static_cast<unsigned>(std::stoul(name.substr(std::string_view(kPrefix).size())));
    } catch (...) {
      continue;
    }
    auto mutex_fd = open_lock(static_cast<uint16_t>(port), "mutex");
    if (!mutex_fd) return tl::unexpected(mutex_fd.error());
    auto users = open_lock(static_cast<uint16_t>(port), "users");
    if (!users) return tl::unexpected(users.error());
    Mutex mutex(mutex_fd->get());
    if (flock(users->get(), LOCK_EX | LOCK_NB) != 0) continue;  // a running bpftap uses it
    if (auto r = lab::run_checked({"ip", "link", "del", "dev", name}); !r) return tl::unexpected(r.error());
    removed.push_back("VXLAN device " + name);
  }
  return removed;
}

} // namespace bpftap
