#include "capture/spec.h"

namespace bpftap {

CaptureOptions to_capture_options(const CaptureSpec &s) {
  CaptureOptions o;
  o.interfaces = s.interfaces;
  o.ingress = s.ingress;
  o.egress = s.egress;
  o.filter = s.filter;
  o.snaplen = s.snaplen ? s.snaplen : BPFTAP_MAX_SNAPLEN;
  o.attach = s.attach;
  return o;
}

} // namespace bpftap
