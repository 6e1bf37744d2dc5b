#include "kernel/privileges.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace bpftap {
namespace {

// Not in every libc's headers (CAP_BPF and CAP_PERFMON arrived with Linux 5.8).
constexpr int kCapNetAdmin = 12, kCapNetRaw = 13, kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;

struct Cap {
  unsigned bit;
  int cap;
  const char *name;
  bool sys_admin_grants;  // the kernel's bpf_capable() / perfmon_capable()
};
constexpr Cap kCaps[] = {
    {kPrivBpf, kCapBpf, "CAP_BPF", true},
    {kPrivNetAdmin, kCapNetAdmin, "CAP_NET_ADMIN", false},
    {kPrivPerfmon, kCapPerfmon, "CAP_PERFMON", true},
    {kPrivNetRaw, kCapNetRaw, "CAP_NET_RAW", false},
    {kPrivSysAdmin, kCapSysAdmin, "CAP_SYS_ADMIN", false},
};

uint64_t effective_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return 0;
  return static_cast<uint64_t>(data[0].effective) | (static_cast<uint64_t>(data[1].effective) << 32);
}

std::string join(const std::vector<std::string> &v) {
  std::string out;
  for (size_t i = 0; i < v.size(); i++) out += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
  return out;
}

} // namespace

std::string missing_privileges(unsigned need) {
  uint64_t have = effective_caps();
  auto has = [&](int cap) { return (have >> cap) & 1; };
  std::string out;
  for (const auto &c : kCaps) {
    if (!(need & c.bit) || has(c.cap) || (c.sys_admin_grants && has(kCapSysAdmin))) continue;
    out += (out.empty() ? "" : ", ") + std::string(c.name);
  }
  return out;
}

Result<> check_privileges(const std::string &command, unsigned need) {
  std::string missing = missing_privileges(need);
  if (missing.empty()) return {};
  std::vector<std::string> all;
  for (const auto &c : kCaps)
    if (need & c.bit) all.emplace_back(c.name);
  return fail(fmt::format("{} needs root, or the {} {} (missing: {})", command, all.size() == 1 ? "capability" : "capabilities",
                          join(all), missing));
}

} // namespace bpftap
