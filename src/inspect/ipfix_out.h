// Flow export over IPFIX (RFC 7011) with libfixbuf: every flow, when it ends, as two
// unidirectional records (originator -> responder, and back if the responder sent anything), so
// a collector (nfcapd, SiLK, ...) has the conn.log's 5-tuples, packets and IP bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/error.h"

namespace bpftap::inspect {

struct Flow;

class IpfixExporter {
public:
  // host:port over UDP. Bad input: an address that does not parse or resolve.
  static Result<std::unique_ptr<IpfixExporter>> open(const std::string &host_port);
  ~IpfixExporter();
  IpfixExporter(const IpfixExporter &) = delete;
  IpfixExporter &operator=(const IpfixExporter &) = delete;

  void flow(const Flow &f);
  void flush();  // emits the pending IPFIX message
  uint64_t records() const { return records_; }
  uint64_t errors() const { return errors_; }

private:
  IpfixExporter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t records_ = 0, errors_ = 0;
};

} // namespace bpftap::inspect
