// Attaching a TC program to one direction of one interface, and detaching it (RAII).
//
// TCX links (kernel ≥ 6.6) are preferred: the kernel detaches them when the last file descriptor
// closes, so even a bpftap killed with SIGKILL leaves nothing behind. Older kernels get a cls_bpf
// filter on a clsact qdisc (the qdisc is removed again only if bpftap created it), and
// `bpftap cleanup` removes those after a crash.
//
// The agent, which may hold thousands of hooks, pins its TCX links in bpffs instead of holding
// a descriptor for each (PinDir): its descriptors do not grow with its taps. The price: a
// SIGKILLed agent's links stay attached (its programs keep running, their ring records counted
// as dropped with nobody reading) until `bpftap cleanup` or the agent's next start removes the
// pin directory of the dead process (cleanup_dead_agent_pins). A pin directory's bpffs dies with
// its mount namespace: an agent that had to mount bpffs in a private one (`ip netns exec`, a
// unit's own mount namespace without /sys/fs/bpf) leaves nothing attached either.
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
  virtual const char *kind() const = 0;  // "tcx", "tcx-pinned" or "tc"
};

// dir: BPFTAP_DIR_IN or BPFTAP_DIR_OUT. pin_dir: a PinDir's path, where a TCX link is pinned
// (its descriptor closed; the pin unlinked, detaching, when the hook goes); "" = the link's
// descriptor held by the hook. If pinning fails, the hook holds the descriptor (one warning on
// stderr per process): a session never fails for it.
Result<std::unique_ptr<Hook>> attach_hook(int prog_fd, uint32_t ifindex, uint8_t dir, AttachMode mode,
                                          const std::string &pin_dir = "");

// A cls_bpf filter on clsact (as AttachMode::Tc, same handle and priority, so cleanup finds it)
// in classifier mode, followed by tc's mirred action: the program returns 0 (no match) or -1 (a
// match), and act_mirred sends a copy of each match out of `mirror_to`. No uncloning of the
// original's head, which bpf_clone_redirect does after each clone. The action's control is
// `continue`: filters after ours still see every packet. Like any tc filter, it stays after a
// SIGKILL until `bpftap cleanup`. One exception to "the original is never dropped" comes with
// act_mirred: past its nesting limit (4 mirred actions deep in one call chain, e.g. a target
// whose own egress mirrors again) it drops the packet it runs for.
Result<std::unique_ptr<Hook>> attach_tc_mirred(int prog_fd, uint32_t ifindex, uint8_t dir, uint32_t mirror_to);

// The copies the mirred action of attach_tc_mirred's filter on ifindex/dir could not send (the
// action's overlimits, a 32-bit counter that wraps: target down, device gone, transmit errors).
// An error if the filter is not there.
Result<uint32_t> tc_mirred_failures(uint32_t ifindex, uint8_t dir);

// The agent's pin directory, /sys/fs/bpf/bpftap/agent-<pidns>-<pid>-<starttime> (starttime: field 22 of
// /proc/<pid>/stat, so that a reused pid is not taken for this process). Removed on destruction
// with every pin left in it (detaching their links), and /sys/fs/bpf/bpftap with it when no other
// agent's directory is there; a bpffs it mounted is unmounted again when it holds nothing else.
class PinDir {
public:
  // Mounts a bpffs on /sys/fs/bpf if none is there (as bpftool does), then creates the directory.
  static Result<std::unique_ptr<PinDir>> create();
  ~PinDir();
  PinDir(const PinDir &) = delete;
  PinDir &operator=(const PinDir &) = delete;
  const std::string &path() const { return path_; }

private:
  PinDir(std::string path, bool mounted) : path_(std::move(path)), mounted_(mounted) {}
  std::string path_;
  bool mounted_;  // create() mounted the bpffs: unmounted again when nothing else is in it
};

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

// Removes the pin directories of agents that are gone (pid not running, or running with another
// start time): each pinned link detached and unlinked, one line per link. A running agent's are
// left alone (a `skipped` line). Pins are per mount namespace, not per network namespace: once is
// enough. Nothing to do when /sys/fs/bpf is not a bpffs (it is not mounted here).
Result<CleanupReport> cleanup_dead_agent_pins();

} // namespace bpftap
