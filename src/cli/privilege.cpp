#include "cli/privilege.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <span>

#include <fmt/format.h>

namespace bpftap::cli {
namespace {

// Effective capability set (64 bits), straight from capget(2): libcap is not a dependency.
Result<uint64_t> effective_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return fail_errno("capget", errno);
  return uint64_t(data[0].effective) | uint64_t(data[1].effective) << 32;
}

} // namespace

Result<> check_privileges(const std::string &command, Needs needs) {
  auto caps = effective_caps();
  if (!caps) return tl::unexpected(caps.error());
  struct Cap {
    int bit;
    const char *name;
  };
  static const Cap bpf[] = {{CAP_BPF, "CAP_BPF"}, {CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {CAP_PERFMON, "CAP_PERFMON"}};
  static const Cap netns[] = {{CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {CAP_NET_ADMIN, "CAP_NET_ADMIN"}};
  std::span<const Cap> wanted = needs == Needs::Bpf ? std::span<const Cap>(bpf) : std::span<const Cap>(netns);
  std::string missing, all;
  for (const auto &c : wanted) {
    all += fmt::format("{}{}", all.empty() ? "" : "+", c.name);
    if (!(*caps >> c.bit & 1)) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", c.name);
  }
  if (missing.empty()) return {};
  return fail(fmt::format("{} needs root or {} (missing {}{})", command, all, missing,
                          geteuid() == 0 ? "" : "; run it with sudo"));
}

} // namespace bpftap::cli
