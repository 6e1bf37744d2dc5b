#include "agent/netlink.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <fstream>

namespace bpftap::agent {

Result<LinkWatcher> LinkWatcher::open() {
  FD fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd) return fail_errno("open an rtnetlink socket", errno);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0) return fail_errno("bind the rtnetlink socket", errno);
  int size = 1 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  return LinkWatcher(std::move(fd));
}

std::vector<LinkEvent> LinkWatcher::read() {
  std::vector<LinkEvent> out;
  alignas(nlmsghdr) char buf[65536];
  for (;;) {
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) continue;
      auto *ifi = static_cast<ifinfomsg *>(NLMSG_DATA(h));
      LinkEvent e{h->nlmsg_type == RTM_NEWLINK, static_cast<uint32_t>(ifi->ifi_index), "", ifi->ifi_type == ARPHRD_ETHER};
      int len = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_IFNAME) e.name = static_cast<const char *>(RTA_DATA(a));
      out.push_back(e);
    }
  }
  return out;
}

std::vector<LinkEvent> current_links() {
  std::vector<LinkEvent> out;
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) return out;
  for (auto *i = ifs; i->if_index != 0; i++) {
    int type = 0;
    std::ifstream(std::string("/sys/class/net/") + i->if_name + "/type") >> type;
    out.push_back({true, i->if_index, i->if_name, type == ARPHRD_ETHER});
  }
  if_freenameindex(ifs);
  return out;
}

} // namespace bpftap::agent
