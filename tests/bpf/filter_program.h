// A translated filter loaded alone: the capture object's bpftap_filter_test program (no hooks),
// for tests that run filters under BPF_PROG_TEST_RUN.
#pragma once

#include <memory>
#include <vector>

#include "capture/capture_prog.h"

namespace bpftap::test {

inline Result<std::unique_ptr<CaptureProgram>> load_filter_program(const std::vector<bpf_insn> &filter) {
  CaptureProgramOptions o;
  o.filter = filter;
  o.taps = false;
  o.filter_test = true;
  return CaptureProgram::load(o);
}

} // namespace bpftap::test
