// Attaching a TC program to one direction of one interface, and detaching it (RAII).
//
// TCX links (kernel ≥ 6.6) are preferred: the kernel detaches them when the last file descriptor
// closes, so even a bpftap killed with SIGKILL leaves nothing behind. Older kernels get a cls_bpf
// filter on a clsact qdisc (the qdisc is removed again only if bpftap created it), and
// `bpftap cleanup` removes those after a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"

namespace bpftap {

enum class AttachMode { Auto, Tcx, Tc };

class Hook {
public:
  virtual ~Hook() = default;
  virtual const char *kind() const = 0;  // "tcx" or "tc"
};

// dir: BPFTAP_DIR_IN or BPFTAP_DIR_OUT.
Result<std::unique_ptr<Hook>> attach_hook(int prog_fd, uint32_t ifindex, uint8_t dir, AttachMode mode);

struct CleanupReport {
  std::vector<std::string> removed;  // one line per removed hook or qdisc
  std::vector<std::string> skipped;  // what was left, and why (another tool's qdisc, a stray state file)
};

// Identifies the current network namespace (its inode), for state kept under /run/bpftap.
std::string netns_id();

// Removes, in the current network namespace, every tc filter and clsact qdisc a dead bpftap left:
// its filters (bpftap's handle and priority, a bpftap_ program), and the qdiscs it created when
// nothing else is on them. Never another tool's filter or qdisc.
Result<CleanupReport> cleanup_leftovers();

} // namespace bpftap
