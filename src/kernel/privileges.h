// What a command needs of the kernel's privileges, checked before it does anything, so that a
// missing capability is one line naming it rather than an EPERM from deep inside (a socket, the
// verifier, a token file that cannot be read).
#pragma once

#include <string>

#include "util/error.h"

namespace bpftap {

enum Privilege : unsigned {
  kPrivBpf = 1u << 0,       // CAP_BPF: load programs, create maps (CAP_SYS_ADMIN also grants it)
  kPrivNetAdmin = 1u << 1,  // CAP_NET_ADMIN: attach to TC, create and delete interfaces
  kPrivPerfmon = 1u << 2,   // CAP_PERFMON: what the programs read (CAP_SYS_ADMIN also grants it)
  kPrivNetRaw = 1u << 3,    // CAP_NET_RAW: the packet socket libpcap compiles the filter on
  kPrivSysAdmin = 1u << 4,  // CAP_SYS_ADMIN: enter other network namespaces, look up programs by id
};

// What capturing or mirroring needs: load, attach, compile the filter as tcpdump does.
inline constexpr unsigned kPrivCapture = kPrivBpf | kPrivNetAdmin | kPrivPerfmon | kPrivNetRaw;

// The effective capabilities lacking for `need`, as "CAP_BPF, CAP_PERFMON"; "" when none is.
std::string missing_privileges(unsigned need);

// Bad privileges as an error (not bad input: exit 1): "COMMAND needs root, or the capabilities
// CAP_A, CAP_B and CAP_C (missing: CAP_B)".
Result<> check_privileges(const std::string &command, unsigned need);

} // namespace bpftap
