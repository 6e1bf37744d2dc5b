// capture -r FILE with -w: packets of a saved file, through a tcpdump filter, into bpftap's
// writers (pcapng with interface names and statistics, rotation). Printing a file needs none of
// this: capture execs tcpdump -r itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "sinks/packet.h"
#include "util/error.h"

namespace bpftap::cli {

struct ReadResult {
  uint64_t read = 0;     // packets in the file (up to where we stopped)
  uint64_t written = 0;  // accepted by the filter and written
};

// The interface written to the output: the file's link type and snapshot length, named after
// the file. Bad file or filter: bad input.
Result<InterfaceInfo> saved_file_interface(const std::string &path);

// Reads `path`, writes what `filter` accepts (at most `count` packets, 0 = all) to `sink` as
// interface 0, until the end or `stop`.
Result<ReadResult> copy_saved_file(const std::string &path, const std::string &filter, uint64_t count,
                                   PacketSink &sink, const std::atomic<bool> &stop);

} // namespace bpftap::cli
