// bpftap's VXLAN devices: one per sensor (remote, VNI, UDP port, local address) and network
// namespace, with that remote and VNI fixed, as a user builds one by hand for tc mirred
// (`ip link add type vxlan id 42 remote 10.77.1.1 dstport 4789 nolearning`). Mirror sessions
// clone to it and the kernel encapsulates, with the route to the sensor cached in the device.
// Named bpftap-vx<six hex digits of a hash of the four>; `ip -d link show` shows what it sends to.
//
// Sessions in several processes share the device: each holds a shared flock on
// /run/bpftap/vxlan-<netns>-<name>.users, and the last one to leave deletes the device.
// `bpftap cleanup` deletes devices no running bpftap holds.
//
// The kernel allows one such device per VNI and port in a namespace, and none on a port an
// external-mode (collect-md) VXLAN device listens on: acquire() says so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace bpftap {

struct VxlanTarget {
  std::string remote;  // IPv4 or IPv6 address of the sensor
  std::string local;   // source address of the outer packets ("" = the kernel's choice)
  uint32_t vni = 0;    // 0..2^24-1
  uint16_t port = 4789;
};

class VxlanDevice {
public:
  // Creates the device (or joins the one that exists) and brings it up. With inner_mtu (the
  // largest source MTU), raises the device's MTU to it, so a copy of a full-size frame fits
  // (a device shared with other sessions is never lowered); when it cannot, mtu_note() says why.
  // The target's addresses are valid (check_vxlan, mirror/spec.h).
  static Result<std::unique_ptr<VxlanDevice>> acquire(const VxlanTarget &target, uint32_t inner_mtu = 0);
  ~VxlanDevice();
  const std::string &name() const { return name_; }
  uint32_t ifindex() const { return ifindex_; }
  // Empty, or why full-size copies will not fit: the device's MTU, or the underlay's.
  const std::string &mtu_note() const { return mtu_note_; }

private:
  VxlanDevice(std::string name, uint32_t ifindex, FD users)
      : name_(std::move(name)), ifindex_(ifindex), users_(std::move(users)) {}
  std::string name_;
  uint32_t ifindex_;
  FD users_;
  std::string mtu_note_;
};

// The MTU of an interface of this namespace; 0 if there is none of that name.
uint32_t interface_mtu(const std::string &name);

// VXLAN adds 50 bytes on an IPv4 underlay (inner Ethernet 14, VXLAN 8, UDP 8, IPv4 20), 70 on IPv6.
inline uint32_t vxlan_overhead(bool ipv6) { return ipv6 ? 70 : 50; }

// Empty if the route to `remote` leaves through an interface whose MTU carries a copy of an
// inner_mtu frame; else a sentence naming that interface, its MTU and the MTU it needs.
std::string underlay_mtu_note(const std::string &remote, bool ipv6, uint32_t inner_mtu);

// bpftap-vx + 6 hex digits of a hash of the target (addresses in canonical form).
std::string vxlan_device_name(const VxlanTarget &target);

// Deletes bpftap VXLAN devices of this namespace that no running bpftap holds. One line per device.
Result<std::vector<std::string>> cleanup_vxlan_devices();

} // namespace bpftap
