// conn.log as Zeek 6.0 writes it (base/protocols/conn + policy/protocols/conn/community-id-logging
// and vlan-logging), as JSON lines (LogAscii::use_json=T) or as Zeek's tab-separated text with its
// #separator / #fields / #types header, so zeek-cut and Zeek log readers take it unchanged.
// bpftap adds three columns after Zeek's: interface, app (nDPI's name) and ndpi_risks.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "inspect/flow.h"
#include "sinks/line_file.h"

namespace bpftap::inspect {

enum class FlowFormat { Json, Tsv };

class ConnLog {
public:
  // Writes to `lines` if given (the agent's checked files), else to `out`; neither: nothing.
  ConnLog(FILE *out, LineOutput *lines, FlowFormat format) : out_(out), lines_(lines), format_(format) {}
  ~ConnLog();  // TSV: the #close line
  ConnLog(const ConnLog &) = delete;
  ConnLog &operator=(const ConnLog &) = delete;

  void write(const Flow &f, const std::string &interface);

private:
  void header();
  void emit(const std::string &line);  // without its newline
  FILE *out_;
  LineOutput *lines_;
  FlowFormat format_;
  bool header_done_ = false;
};

// Zeek's Site::private_address_space (RFC 1918, RFC 6598, loopback, link-local, ULA): what
// local_orig / local_resp call local, as zeekctl's default networks.cfg does.
bool is_local_address(const IpAddr &a);

} // namespace bpftap::inspect
