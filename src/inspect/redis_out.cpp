#include "inspect/redis_out.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace bpftap::inspect {

Result<RedisOptions> parse_redis_address(const std::string &s) {
  RedisOptions o;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return bad_input(fmt::format("--redis {}: expected HOST:PORT", s));
  o.host = s.substr(0, colon);
  if (o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
  std::string port = s.substr(colon + 1);
  char *end = nullptr;
  unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (*end || p == 0 || p > 65535) return bad_input(fmt::format("--redis {}: bad port '{}'", s, port));
  o.port = static_cast<uint16_t>(p);
  return o;
}

struct RedisPublisher::Impl {
  RedisOptions opts;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  RedisStats st;
  bool stopping = false;
  std::thread sender;
  redisContext *ctx = nullptr;
  std::chrono::steady_clock::time_point next_connect{};

  ~Impl() {
    if (ctx) redisFree(ctx);
  }

  // A connection, or null; a failed attempt is retried no sooner than a second later, so a
  // Redis that is down costs one connect per second, not one per line.
  redisContext *connection() {
    if (ctx) return ctx;
    auto now = std::chrono::steady_clock::now();
    if (now < next_connect) return nullptr;
    next_connect = now + std::chrono::seconds(1);
    timeval tv{1, 0};
    ctx = redisConnectWithTimeout(opts.host.c_str(), opts.port, tv);
    if (ctx && !ctx->err && redisSetTimeout(ctx, tv) == REDIS_OK) return ctx;
    if (ctx) redisFree(ctx);
    ctx = nullptr;
    return nullptr;
  }

  // Pipelines a batch: all commands appended, then every reply read. False: connection lost.
  bool send(const std::vector<std::string> &batch) {
    redisContext *c = connection();
    if (!c) return false;
    const char *cmd = opts.channel ? "PUBLISH" : "RPUSH";
    for (const auto &line : batch)
      redisAppendCommand(c, "%s %b %b", cmd, opts.key.data(), opts.key.size(), line.data(), line.size());
    for (size_t i = 0; i < batch.size(); i++) {
      void *reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK || !reply ||
          static_cast<redisReply *>(reply)->type == REDIS_REPLY_ERROR) {
        if (reply) freeReplyObject(reply);
        redisFree(ctx);
        ctx = nullptr;
        return false;
      }
      freeReplyObject(reply);
    }
    return true;
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty() && stopping) return;
      std::vector<std::string> batch;
      while (!queue.empty() && batch.size() < 512) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      lock.unlock();
      bool ok = send(batch);
      lock.lock();
      (ok ? st.sent : st.dropped) += batch.size();
    }
  }
};

RedisPublisher::RedisPublisher(RedisOptions o) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(o);
  impl_->sender = std::thread([this] { impl_->run(); });
}

RedisPublisher::~RedisPublisher() { close(); }

RedisStats RedisPublisher::close() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  if (impl_->sender.joinable()) impl_->sender.join();
  return stats();
}

void RedisPublisher::push(std::string line) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->queue.size() >= impl_->opts.max_queued) {
      impl_->st.dropped++;
      return;
    }
    impl_->queue.push_back(std::move(line));
  }
  impl_->cv.notify_one();
}

RedisStats RedisPublisher::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->st;
}

} // namespace bpftap::inspect
