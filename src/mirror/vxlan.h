// bpftap's VXLAN device: one per UDP port and network namespace, in external (collect-md)
// mode, named bpftap-vx<port>. Mirror sessions with a VXLAN target clone to it; their program on
// its egress gives each clone its tunnel key (remote, VNI), and the kernel encapsulates.
//
// Sessions in several processes share the device: each holds a shared flock on
// /run/bpftap/vxlan-<netns>-<port>.users, and the last one to leave deletes the device.
// `bpftap cleanup` deletes devices no running bpftap holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace bpftap {

class VxlanDevice {
public:
  // Creates the device (or joins the one that exists) and brings it up.
  static Result<std::unique_ptr<VxlanDevice>> acquire(uint16_t port);
  ~VxlanDevice();
  const std::string &name() const { return name_; }
  uint32_t ifindex() const { return ifindex_; }

private:
  VxlanDevice(std::string name, uint32_t ifindex, uint16_t port, FD users)
      : name_(std::move(name)), ifindex_(ifindex), port_(port), users_(std::move(users)) {}
  std::string name_;
  uint32_t ifindex_;
  uint16_t port_;
  FD users_;
};

std::string vxlan_device_name(uint16_t port);

// Deletes bpftap VXLAN devices of this namespace that no running bpftap holds. One line per device.
Result<std::vector<std::string>> cleanup_vxlan_devices();

} // namespace bpftap
