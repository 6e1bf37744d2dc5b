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
  // Creates the device (or joins the one that exists) and brings it up. With inner_mtu (the
  // largest source MTU), raises the device's MTU to it, so a copy of a full-size frame fits
  // (a device shared with other sessions is never lowered); when it cannot, mtu_note() says why.
  static Result<std::unique_ptr<VxlanDevice>> acquire(uint16_t port, uint32_t inner_mtu = 0);
  ~VxlanDevice();
  const std::string &name() const { return name_; }
  uint32_t ifindex() const { return ifindex_; }
  // Empty, or why full-size copies will not fit: the device's MTU, or the underlay's.
  const std::string &mtu_note() const { return mtu_note_; }

private:
  VxlanDevice(std::string name, uint32_t ifindex, uint16_t port, FD users)
      : name_(std::move(name)), ifindex_(ifindex), port_(port), users_(std::move(users)) {}
  std::string name_;
  uint32_t ifindex_;
  uint16_t port_;
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

std::string vxlan_device_name(uint16_t port);

// Deletes bpftap VXLAN devices of this namespace that no running bpftap holds. One line per device.
Result<std::vector<std::string>> cleanup_vxlan_devices();

} // namespace bpftap
