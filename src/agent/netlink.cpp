#include "agent/netlink.h"

#include <net/if_arp.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <optional>

namespace bpftap::agent {
namespace {

enum class Parsed { More, Done, Error, Interrupted };

// Appends the links in one buffer of rtnetlink messages.
Parsed parse_links(const char *buf, ssize_t n, std::vector<LinkEvent> &out) {
  for (auto *h = reinterpret_cast<const nlmsghdr *>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_flags & NLM_F_DUMP_INTR) return Parsed::Interrupted;  // links changed during the dump
    if (h->nlmsg_type == NLMSG_DONE) return Parsed::Done;
    if (h->nlmsg_type == NLMSG_ERROR) return Parsed::Error;
    if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) continue;
    auto *ifi = static_cast<const ifinfomsg *>(NLMSG_DATA(h));
    LinkEvent e{h->nlmsg_type == RTM_NEWLINK, static_cast<uint32_t>(ifi->ifi_index), "", ifi->ifi_type == ARPHRD_ETHER, ifi->ifi_flags};
    int len = static_cast<int>(IFLA_PAYLOAD(h));
    for (auto *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
      if (a->rta_type == IFLA_IFNAME) e.name = static_cast<const char *>(RTA_DATA(a));
    out.push_back(e);
  }
  return Parsed::More;
}

} // namespace

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
  overflowed_ = false;
  for (;;) {
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == ENOBUFS) {
      overflowed_ = true;
      continue;
    }
    if (n <= 0) break;
    parse_links(buf, n, out);
  }
  return out;
}

namespace {

// One RTM_GETLINK dump; nullopt if the links changed while it ran.
Result<std::optional<std::vector<LinkEvent>>> dump_links() {
  FD fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return fail_errno("open an rtnetlink socket", errno);
  struct {
    nlmsghdr h;
    ifinfomsg ifi;
  } req{};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(fd.get(), &req, sizeof(req), 0) < 0) return fail_errno("ask rtnetlink for the links", errno);
  std::vector<LinkEvent> out;
  alignas(nlmsghdr) char buf[65536];
  for (;;) {
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0) return fail_errno("read the links from rtnetlink", errno);
    if (n == 0) return fail("read the links from rtnetlink: the dump ended early");
    switch (parse_links(buf, n, out)) {
    case Parsed::More: continue;
    case Parsed::Done: return std::optional(std::move(out));
    case Parsed::Interrupted: return std::optional<std::vector<LinkEvent>>();
    case Parsed::Error: return fail("read the links from rtnetlink: the kernel answered with an error");
    }
  }
}

} // namespace

Result<std::vector<LinkEvent>> current_links() {
  for (int attempt = 0; attempt < 10; attempt++) {
    auto d = dump_links();
    if (!d) return tl::unexpected(d.error());
    if (*d) return std::move(**d);
  }
  return fail("read the links from rtnetlink: they kept changing during the dump");
}

} // namespace bpftap::agent
