// The mirror BPF object: loading with the translated filter spliced in, and its handles (the
// programs, the sources' counter slots, the rule sets and the bypass map). What a session does
// with them (target, VXLAN device, hooks, bypass bookkeeping) is MirrorSession's.
#pragma once

#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bpf/bpftap.h"
#include "kernel/bpf_object.h"
#include "kernel/ifslots.h"
#include "util/error.h"

struct mirror_bpf;

namespace bpftap {

struct MirrorProgramOptions {
  std::vector<bpf_insn> filter;  // translate_cbpf() output; empty = accept everything
  uint32_t target_ifindex = 0;   // where the copies go
  bool target_program = false;   // load bpftap_mirror_target (truncation); it gets a session tag
  uint32_t snaplen = 0;          // 0 = whole packets
  uint32_t sample = 0;           // 1 in N flows; 0 or 1 = all
  uint64_t flow_cutoff = 0;      // payload bytes per flow; 0 = no cutoff
  uint32_t flow_table = 65536;   // flows tracked for the cutoff (LRU)
  bool classify = false;         // no clone: a classifier for tc's mirred action (attach_tc_mirred)
};

class MirrorProgram {
public:
  static Result<std::unique_ptr<MirrorProgram>> load(const MirrorProgramOptions &opts);
  ~MirrorProgram();
  MirrorProgram(const MirrorProgram &) = delete;
  MirrorProgram &operator=(const MirrorProgram &) = delete;

  int in_fd() const;
  int out_fd() const;
  int target_fd() const;  // -1 without the target program
  int counters_fd() const;
  uint32_t target_ifindex() const;
  uint32_t session_tag() const;  // marks this session's clones; 0 without the target program

  // Registers a source so the programs count its packets, in both directions (which ones run is
  // a matter of the hooks attached); its counters start at zero. At most BPFTAP_MAX_SLOTS at once.
  Result<> watch(uint32_t ifindex);
  // The programs ignore the source from now on; its counter slot is free for another.
  void unwatch(uint32_t ifindex);
  // Counters summed over CPUs.
  Result<bpftap_mirror_counters> counters(uint32_t ifindex, uint8_t dir) const;
  Result<bpftap_target_counters> target_counters() const;

  // Writes the rule set the programs do not read, then makes it the live one. At most
  // BPFTAP_MAX_RULES rules, sorted (the caller checks).
  Result<> set_rules(const std::vector<bpftap_rule> &rules);

  // The bypass map: a flow (both directions) is not mirrored until `until_ns` (CLOCK_MONOTONIC).
  Result<> bypass(const bpftap_flow_key &key, uint64_t until_ns);
  void unbypass(const bpftap_flow_key &key);
  // How many flows the map holds, as the caller counts them: at 0 the programs skip the lookup.
  void set_bypass_entries(uint32_t n);

private:
  explicit MirrorProgram(Skeleton<mirror_bpf> skel);
  Skeleton<mirror_bpf> skel_;
  std::unique_ptr<IfSlots> slots_;  // refers to skel_'s maps: declared after it, so destroyed first
};

} // namespace bpftap
