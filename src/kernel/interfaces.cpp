#include "kernel/interfaces.h"

#include <fnmatch.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "util/fd.h"

namespace bpftap {
namespace {

// ARPHRD_* of an interface (1 Ethernet, 772 loopback, 65534 TUN...), or -1.
int link_type(const std::string &name) {
  FD sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!sock || ioctl(sock.get(), SIOCGIFHWADDR, &req) != 0) return -1;
  return req.ifr_hwaddr.sa_family;
}

} // namespace

Result<std::vector<InterfaceInfo>> resolve_interfaces(const std::vector<std::string> &patterns) {
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) return fail_errno("list interfaces", errno);
  std::map<uint32_t, std::string> found;
  std::string missing;
  for (const auto &p : patterns) {
    bool any = false;
    for (struct if_nameindex *i = ifs; i->if_index != 0; i++)
      if (fnmatch(p.c_str(), i->if_name, 0) == 0) {
        found[i->if_index] = i->if_name;
        any = true;
      }
    if (!any) missing = p;
  }
  if_freenameindex(ifs);
  if (!missing.empty()) return bad_input(fmt::format("{}: no such interface in this network namespace", missing));
  if (found.empty()) return bad_input("no interface given (-i)");
  std::vector<InterfaceInfo> out;
  for (const auto &[index, name] : found) {
    // The programs and the files assume Ethernet framing (loopback has a zeroed Ethernet header).
    int type = link_type(name);
    if (type != ARPHRD_ETHER && type != ARPHRD_LOOPBACK)
      return bad_input(fmt::format("{}: not an Ethernet interface (ARPHRD {}); bpftap captures Ethernet only", name, type));
    out.push_back({name, index, 1, 0});
  }
  return out;
}

} // namespace bpftap
