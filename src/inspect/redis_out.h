// The EVE stream to Redis, as Suricata's eve-log `filetype: redis` does: each JSON line RPUSHed
// to a list or PUBLISHed on a channel. A thread of its own sends, so the inspector never waits on
// the network; the queue between them is bounded, and what cannot be delivered (Redis down, queue
// full) is counted as dropped, never kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/error.h"

namespace bpftap::inspect {

struct RedisOptions {
  std::string host;
  uint16_t port = 6379;
  std::string key = "bpftap";
  bool channel = false;        // PUBLISH instead of RPUSH
  size_t max_queued = 10000;   // lines waiting for the sender; more are dropped
};

// "HOST:PORT" (IPv6 as [ADDR]:PORT); bad input names the option.
Result<RedisOptions> parse_redis_address(const std::string &s);

struct RedisStats {
  uint64_t sent = 0, dropped = 0;
};

class RedisPublisher {
public:
  explicit RedisPublisher(RedisOptions o);
  ~RedisPublisher();  // close()
  // Sends what is queued (one try), stops the sender; the final counts. Idempotent.
  RedisStats close();
  RedisPublisher(const RedisPublisher &) = delete;
  RedisPublisher &operator=(const RedisPublisher &) = delete;
  void push(std::string line);  // never blocks on the network
  RedisStats stats() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace bpftap::inspect
