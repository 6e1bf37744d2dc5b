// The agent's HTTP front end: bpftap's own accept loop in front of cpp-httplib's routing, so that
// no client can take the agent down or the API away from the others. Before a request is looked
// at (before authentication), each connection is held to:
//  - a cap on connections open at once, overall and per client (address; on a unix socket, user):
//    503 beyond it, answered at once;
//  - a request rate per client (token bucket): 429 beyond it;
//  - a deadline for the whole request, headers and body (slow clients, slowloris): 408;
//  - a header size and a body size (Content-Length, checked before any of the body is read):
//    431 / 413; bodies without a length (chunked) are refused (411).
// One event loop reads requests; a few workers run the handlers on complete requests (a slow
// handler holds one worker, never the loop). One request per connection (Connection: close).
// Listening sockets are made here: TCP without SO_REUSEPORT (a second agent on the port is
// refused), unix sockets created with their final mode.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "util/error.h"

namespace bpftap::agent {

struct ApiLimits {
  size_t max_connections = 64;
  size_t max_client_connections = 32;
  double requests_per_second = 100;  // per client; the bucket holds twice as many
  std::chrono::milliseconds request_timeout{10000};
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
  size_t workers = 4;
};

// Requests refused before they reached a handler, by reason.
struct ApiRefusals {
  uint64_t connections = 0;         // 503: max_connections open
  uint64_t client_connections = 0;  // 503: max_client_connections open from that client
  uint64_t rate = 0;                // 429
  uint64_t timeout = 0;             // 408
  uint64_t too_large = 0;           // 413 / 431
  uint64_t bad_request = 0;         // 400 / 411: not HTTP as we take it
  uint64_t no_descriptor = 0;       // accept failed: the process is at its descriptor limit
};

class ApiServer : public httplib::Server {
public:
  explicit ApiServer(ApiLimits limits);
  ~ApiServer() override;
  Result<> listen_tcp(const std::string &host_port);
  Result<> listen_unix(const std::string &path);
  void start();
  void shutdown();  // stops accepting, drops what is queued, waits for the handlers running
  int port() const;  // the TCP port listened on (for port 0)
  ApiRefusals refusals() const;
  size_t open_connections() const;
  uint64_t served() const { return served_.load(); }

private:
  struct Conn {
    int fd = -1;
    std::string client;  // "ADDRESS" or "uid N"
    std::string remote_addr;
    int remote_port = 0;
    std::chrono::steady_clock::time_point deadline;
    std::string buf;
    size_t header_len = 0;  // 0 until the headers are complete
    size_t body_len = 0;
    bool continued = false;  // "100 Continue" sent
  };
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  void loop();
  void worker();
  void accept_all(std::chrono::steady_clock::time_point now);
  // false: the connection is finished with (answered or gone); true: keep it.
  bool read_some(Conn &c);
  void refuse(int fd, int status, const std::string &reason, uint64_t ApiRefusals::*counter);
  void release(const std::string &client);  // a connection of `client` ended
  void serve(Conn &c);

  ApiLimits limits_;
  int listen_fd_ = -1;
  bool unix_ = false;
  std::string unix_path_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread loop_thread_;
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;  // everything below
  std::condition_variable cv_;
  std::deque<Conn> ready_;  // complete requests for the workers
  size_t open_ = 0;         // connections open (reading, queued, being served)
  size_t writers_ = 0;      // workers running a write (POST, PUT, DELETE)
  std::map<std::string, size_t> per_client_;
  std::map<std::string, Bucket> buckets_;
  ApiRefusals refused_;
  std::atomic<uint64_t> served_{0};
  // The loop's own (not under mu_): connections being read, and refused ones being drained.
  struct Linger {
    int fd;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<Conn> reading_;
  std::vector<Linger> lingering_;
};

} // namespace bpftap::agent
