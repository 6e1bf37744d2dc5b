#include "core/vxlan.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>

#include <filesystem>

#include <fmt/format.h>

#include "core/attach.h"
#include "lab/run.h"

namespace bpftap {
namespace {

constexpr const char *kLockDir = "/run/bpftap";
constexpr const char *kPrefix = "bpftap-vx";

std::string lock_path(uint16_t port) { return fmt::format("{}/vxlan-{}-{}.lock", kLockDir, netns_id(), port); }

Result<FD> open_lock(uint16_t port) {
  std::error_code ec;
  std::filesystem::create_directories(kLockDir, ec);
  FD fd(::open(lock_path(port).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open " + lock_path(port), errno);
  return fd;
}

} // namespace

std::string vxlan_device_name(uint16_t port) { return fmt::format("{}{}", kPrefix, port); }

Result<std::unique_ptr<VxlanDevice>> VxlanDevice::acquire(uint16_t port) {
  auto lock = open_lock(port);
  if (!lock) return tl::unexpected(lock.error());
  // Exclusive while creating, so two sessions starting together do not race; then shared.
  if (flock(lock->get(), LOCK_EX) != 0) return fail_errno("lock " + lock_path(port), errno);
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
  if (flock(lock->get(), LOCK_SH) != 0) return fail_errno("lock " + lock_path(port), errno);
  return std::unique_ptr<VxlanDevice>(new VxlanDevice(name, ifindex, std::move(*lock)));
}

VxlanDevice::~VxlanDevice() {
  // The last holder deletes the device: nobody else holds the lock, so nobody else uses it.
  if (flock(lock_.get(), LOCK_EX | LOCK_NB) == 0) lab::run_command({"ip", "link", "del", "dev", name_});
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
    auto lock = open_lock(static_cast<uint16_t>(port));
    if (!lock) return tl::unexpected(lock.error());
    if (flock(lock->get(), LOCK_EX | LOCK_NB) != 0) continue;  // a running bpftap uses it
    if (auto r = lab::run_checked({"ip", "link", "del", "dev", name}); !r) return tl::unexpected(r.error());
    removed.push_back("VXLAN device " + name);
  }
  return removed;
}

} // namespace bpftap
