#include "cli/interface_list.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "util/fd.h"

namespace bpftap::cli {

Result<std::vector<ListedInterface>> capturable_interfaces() {
  FD sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return fail_errno("list interfaces: socket", errno);
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) return fail_errno("list interfaces", errno);
  std::vector<ListedInterface> out;
  for (struct if_nameindex *i = ifs; i->if_index != 0; i++) {
    ifreq req{};
    std::strncpy(req.ifr_name, i->if_name, IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFHWADDR, &req) != 0) continue;  // gone since the listing
    int type = req.ifr_hwaddr.sa_family;
    if (type != ARPHRD_ETHER && type != ARPHRD_LOOPBACK) continue;
    ListedInterface l{i->if_index, i->if_name};
    if (ioctl(sock.get(), SIOCGIFFLAGS, &req) == 0) {
      l.up = req.ifr_flags & IFF_UP;
      l.running = req.ifr_flags & IFF_RUNNING;
      l.loopback = req.ifr_flags & IFF_LOOPBACK;
    }
    out.push_back(std::move(l));
  }
  if_freenameindex(ifs);
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.ifindex < b.ifindex; });
  return out;
}

void print_interface_list(FILE *out, const std::vector<ListedInterface> &ifaces) {
  unsigned n = 0;
  for (const auto &i : ifaces) {
    std::string flags = i.up ? "Up" : "";
    if (i.running) flags += flags.empty() ? "Running" : ", Running";
    if (i.loopback) flags += flags.empty() ? "Loopback" : ", Loopback";
    std::fprintf(out, "%u.%s%s%s%s\n", ++n, i.name.c_str(), flags.empty() ? "" : " [", flags.c_str(),
                 flags.empty() ? "" : "]");
  }
}

Result<std::vector<std::string>> expand_any(const std::vector<std::string> &patterns) {
  if (std::find(patterns.begin(), patterns.end(), "any") == patterns.end()) return patterns;
  auto all = capturable_interfaces();
  if (!all) return tl::unexpected(all.error());
  std::vector<std::string> out;
  for (const auto &p : patterns)
    if (p != "any") out.push_back(p);
  for (const auto &i : *all) out.push_back(i.name);
  return out;
}

} // namespace bpftap::cli
