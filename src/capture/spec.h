// A capture as its user describes it: bpftap capture's and inspect's flags and an agent capture
// or inspect session fill a CaptureSpec; to_capture_options() converts it, once. What only one
// of them has (-c, -B, --buffer; the agent's ring size and interfaces attached as they come) is
// set on the options afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "kernel/attach.h"

namespace bpftap {

struct CaptureSpec {
  std::vector<std::string> interfaces;  // names or globs
  bool ingress = true, egress = true;
  std::string filter;                   // pcap-filter expression ("" = everything)
  uint32_t snaplen = 0;                 // 0 = whole packets (BPFTAP_MAX_SNAPLEN)
  AttachMode attach = AttachMode::Auto;
};

CaptureOptions to_capture_options(const CaptureSpec &s);

} // namespace bpftap
