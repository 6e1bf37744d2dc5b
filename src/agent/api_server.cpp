#include "agent/api_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/fd.h"

namespace bpftap::agent {
namespace {

using Clock = std::chrono::steady_clock;

// How long a refused connection's input is read and thrown away before it is closed, so the
// client sees the answer rather than a reset; and how long writing an answer may take.
constexpr auto kLinger = std::chrono::milliseconds(500);
constexpr size_t kMaxLingering = 32;  // beyond, refused connections are closed at once (descriptors)
constexpr auto kWriteTimeout = std::chrono::seconds(10);
// Workers for requests that change something (they may wait for a filter to compile); reads
// have their own, so a slow write never holds up a GET.
constexpr size_t kWriteWorkers = 2;

const char *reason_phrase(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Payload Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); i++)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

std::string trim(std::string_view v) {
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t\r");
  return a == std::string_view::npos ? std::string() : std::string(v.substr(a, b - a + 1));
}

// Reads the buffered request; writes to the socket (non-blocking, so with a deadline).
class BufferStream final : public httplib::Stream {
public:
  BufferStream(int fd, const std::string &buf, std::string addr, int port)
      : fd_(fd), buf_(buf), addr_(std::move(addr)), port_(port), deadline_(Clock::now() + kWriteTimeout) {}
  bool is_readable() const override { return at_ < buf_.size(); }
  bool is_writable() const override { return wait_writable(); }
  ssize_t read(char *ptr, size_t size) override {
    size_t n = std::min(size, buf_.size() - at_);
    std::memcpy(ptr, buf_.data() + at_, n);
    at_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char *ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable()) continue;
      return done ? static_cast<ssize_t>(done) : -1;
    }
    return static_cast<ssize_t>(done);
  }
  void get_remote_ip_and_port(std::string &ip, int &port) const override {
    ip = addr_;
    port = port_;
  }
  void get_local_ip_and_port(std::string &ip, int &port) const override {
    ip.clear();
    port = 0;
  }
  socket_t socket() const override { return fd_; }

private:
  bool wait_writable() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0 && (p.revents & POLLOUT);
  }
  int fd_;
  const std::string &buf_;
  size_t at_ = 0;
  std::string addr_;
  int port_;
  Clock::time_point deadline_;
};

} // namespace

ApiServer::ApiServer(ApiLimits limits) : limits_(limits) {
  set_payload_max_length(limits_.max_body_bytes);
  // No exception text in answers (httplib's default puts it in an EXCEPTION_WHAT header).
  set_exception_handler([](const httplib::Request &, httplib::Response &res, const std::exception_ptr &) {
    res.status = 500;
    res.set_content(R"({"error":"internal error"})", "application/json");
  });
  // Every error has a JSON body saying what it is.
  set_error_handler(HandlerWithResponse([](const httplib::Request &, httplib::Response &res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string what = res.status == 404 ? "no such resource" : res.status == 405 ? "method not allowed"
                       : res.status == 413 ? "the body is too large" : res.status == 414 ? "the URI is too long"
                                                                        : fmt::format("error {}", res.status);
    res.set_content(nlohmann::json{{"error", what}}.dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
}

ApiServer::~ApiServer() { shutdown(); }

Result<> ApiServer::listen_tcp(const std::string &host_port) {
  auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo *res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return bad_input(fmt::format("api listen {}: {}", host_port, gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, &freeaddrinfo);
  FD fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail_errno("api: open a socket", errno);
  // SO_REUSEADDR lets a restarted agent bind past old connections in TIME_WAIT; no
  // SO_REUSEPORT, so a second process cannot listen on the same port.
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
    if (errno == EADDRINUSE)
      return fail(fmt::format("api listen {}: the address is in use (is another bpftap agent running?)", host_port),
                  EADDRINUSE);
    return fail_errno("api listen " + host_port, errno);
  }
  if (::listen(fd.get(), 128) != 0) return fail_errno("api listen " + host_port, errno);
  listen_fd_ = fd.release();
  return {};
}

Result<> ApiServer::listen_unix(const std::string &path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  fs::create_directories(parent, ec);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return bad_input(fmt::format("api listen {}: exists and is not a socket", path));
    FD probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return fail_errno("api: open a unix socket", errno);
    if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) == 0)
      return fail(fmt::format("api listen {}: another process (an agent already running?) listens there", path));
    if (errno != ECONNREFUSED) return fail_errno("api listen " + path + ": cannot tell whether it is in use", errno);
  }
  // Made with its final mode: bound inside a private directory (0700, so nobody can reach it
  // meanwhile), set to 0600, then renamed into place (which also replaces a stale socket).
  std::string dir_template = (parent / ".bpftap-api.XXXXXX").string();
  if (!mkdtemp(dir_template.data())) return fail_errno("api: make a private directory in " + parent.string(), errno);
  std::string tmp = dir_template + "/s";
  auto cleanup = [&] {
    ::unlink(tmp.c_str());
    ::rmdir(dir_template.c_str());
  };
  sockaddr_un ta{};
  ta.sun_family = AF_UNIX;
  if (tmp.size() >= sizeof(ta.sun_path)) {
    cleanup();
    return bad_input(fmt::format("api listen {}: the path is too long", path));
  }
  std::snprintf(ta.sun_path, sizeof(ta.sun_path), "%s", tmp.c_str());
  FD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    cleanup();
    return fail_errno("api: open a unix socket", errno);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&ta), sizeof(ta)) != 0 || ::chmod(tmp.c_str(), 0600) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    cleanup();
    return fail_errno("api: create the socket " + path, err);
  }
  cleanup();
  if (::listen(fd.get(), 128) != 0) return fail_errno("api: listen on " + path, errno);
  unix_ = true;
  unix_path_ = path;
  listen_fd_ = fd.release();
  return {};
}

void ApiServer::start() {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  loop_thread_ = std::thread([this] { loop(); });
  for (size_t i = 0; i < limits_.workers + kWriteWorkers; i++) workers_.emplace_back([this, i] {
    (void)i;
    worker();
  });
}

void ApiServer::shutdown() {
  if (stopping_.exchange(true)) return;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (loop_thread_.joinable()) loop_thread_.join();
  cv_.notify_all();
  for (auto &w : workers_)
    if (w.joinable()) w.join();
  std::lock_guard lock(mu_);
  for (auto &c : ready_) ::close(c.fd);
  ready_.clear();
  for (auto &c : reading_) ::close(c.fd);
  reading_.clear();
  for (auto &l : lingering_) ::close(l.fd);
  lingering_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (unix_) ::unlink(unix_path_.c_str());
  for (int &fd : wake_)
    if (fd >= 0) ::close(std::exchange(fd, -1));
}

int ApiServer::port() const {
  sockaddr_storage sa{};
  socklen_t len = sizeof(sa);
  if (listen_fd_ < 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&sa), &len) != 0) return 0;
  if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in *>(&sa)->sin_port);
  if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&sa)->sin6_port);
  return 0;
}

ApiRefusals ApiServer::refusals() const {
  std::lock_guard lock(mu_);
  return refused_;
}

size_t ApiServer::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}

void ApiServer::release(const std::string &client) {
  std::lock_guard lock(mu_);
  open_--;
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

void ApiServer::refuse(int fd, int status, const std::string &reason, uint64_t ApiRefusals::*counter) {
  {
    std::lock_guard lock(mu_);
    refused_.*counter += 1;
  }
  std::string body = nlohmann::json{{"error", reason}}.dump();
  std::string head = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
                                 "Connection: close\r\n{}\r\n",
                                 status, reason_phrase(status), body.size(), status == 429 ? "Retry-After: 1\r\n" : "");
  std::string all = head + body;
  (void)!::send(fd, all.data(), all.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  // What the client still sends is read and dropped for a moment (by the loop, with the
  // others), so it gets the answer rather than a reset.
  if (lingering_.size() >= kMaxLingering) {
    ::close(fd);
    return;
  }
  lingering_.push_back({fd, Clock::now() + kLinger});
}

void ApiServer::accept_all(Clock::time_point now) {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof(sa);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr *>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::lock_guard lock(mu_);
        refused_.no_descriptor++;
      }
      return;
    }
    Conn c;
    c.fd = fd;
    c.deadline = now + limits_.request_timeout;
    if (unix_) {
      ucred cred{};
      socklen_t cl = sizeof(cred);
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
      c.client = fmt::format("uid {}", cred.uid);
      c.remote_addr = c.client;
    } else {
      char addr[INET6_ADDRSTRLEN] = "?";
      if (sa.ss_family == AF_INET) {
        auto *s4 = reinterpret_cast<sockaddr_in *>(&sa);
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
        c.remote_port = ntohs(s4->sin_port);
      } else if (sa.ss_family == AF_INET6) {
        auto *s6 = reinterpret_cast<sockaddr_in6 *>(&sa);
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
        c.remote_port = ntohs(s6->sin6_port);
      }
      c.client = c.remote_addr = addr;
    }
    int status = 0;
    std::string why;
    uint64_t ApiRefusals::*counter = nullptr;
    {
      std::lock_guard lock(mu_);
      auto &b = buckets_.try_emplace(c.client, Bucket{2 * limits_.requests_per_second, now}).first->second;
      double elapsed = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(2 * limits_.requests_per_second, b.tokens + elapsed * limits_.requests_per_second);
      b.at = now;
      if (open_ >= limits_.max_connections) {
        status = 503, counter = &ApiRefusals::connections;
        why = fmt::format("too many connections ({} open): try again", open_);
      } else if (per_client_[c.client] >= limits_.max_client_connections) {
        status = 503, counter = &ApiRefusals::client_connections;
        why = fmt::format("too many connections from {} ({} open): try again", c.client, per_client_[c.client]);
      } else if (b.tokens < 1) {
        status = 429, counter = &ApiRefusals::rate;
        why = fmt::format("more than {} requests a second from {}: slow down", limits_.requests_per_second, c.client);
      } else {
        b.tokens -= 1;
        open_++;
        per_client_[c.client]++;
      }
      if (per_client_.count(c.client) && per_client_[c.client] == 0) per_client_.erase(c.client);
      // Forget clients whose bucket is full again (bounded memory, whatever the addresses).
      if (buckets_.size() > 4096)
        for (auto it = buckets_.begin(); it != buckets_.end();)
          it = std::chrono::duration<double>(now - it->second.at).count() * limits_.requests_per_second >= 2 * limits_.requests_per_second
                   ? buckets_.erase(it)
                   : std::next(it);
    }
    if (status) {
      refuse(fd, status, why, counter);
      continue;
    }
    reading_.push_back(std::move(c));
  }
}

// Reads what the client sent; answers and closes on anything wrong. Returns false when the
// connection is done with here (closed, or handed to a worker).
bool ApiServer::read_some(Conn &c) {
  char tmp[16384];
  for (;;) {
    ssize_t n = ::recv(c.fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {  // gone before the request was complete
      ::close(c.fd);
      release(c.client);
      return false;
    }
    c.buf.append(tmp, static_cast<size_t>(n));
    if (c.header_len == 0) {
      size_t end = c.buf.find("\r\n\r\n");
      if (end == std::string::npos || end + 4 > limits_.max_header_bytes) {
        if (c.buf.size() <= limits_.max_header_bytes) continue;
        refuse(c.fd, 431, fmt::format("the request's headers exceed {} bytes", limits_.max_header_bytes), &ApiRefusals::too_large);
        release(c.client);
        return false;
      }
      // The headers that decide how much body follows. The rest is httplib's to parse.
      std::string head = c.buf.substr(0, end + 2), kept;
      bool expect = false, bad = false;
      size_t line_start = 0;
      for (size_t i = 0; line_start < head.size(); i++) {
        size_t eol = head.find("\r\n", line_start);
        std::string_view line(head.data() + line_start, eol - line_start);
        line_start = eol + 2;
        if (i > 0 && iequals_prefix(line, "content-length:")) {
          std::string v = trim(line.substr(15));
          if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) bad = true;
          else c.body_len = std::stoull(v);
        } else if (i > 0 && iequals_prefix(line, "transfer-encoding:")) {
          refuse(c.fd, 411, "a body needs a Content-Length (chunked bodies are not taken)", &ApiRefusals::bad_request);
          release(c.client);
          return false;
        } else if (i > 0 && iequals_prefix(line, "expect:")) {
          expect = true;  // answered here; httplib would answer it again after the body
          continue;
        }
        kept.append(line);
        kept += "\r\n";
      }
      if (bad) {
        refuse(c.fd, 400, "Content-Length is not a number", &ApiRefusals::bad_request);
        release(c.client);
        return false;
      }
      if (c.body_len > limits_.max_body_bytes) {
        refuse(c.fd, 413, fmt::format("the body exceeds {} bytes", limits_.max_body_bytes), &ApiRefusals::too_large);
        release(c.client);
        return false;
      }
      c.buf = kept + "\r\n" + c.buf.substr(end + 4);
      c.header_len = kept.size() + 2;
      if (expect && c.buf.size() < c.header_len + c.body_len && !c.continued) {
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!::send(c.fd, kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        c.continued = true;
      }
    }
    if (c.buf.size() >= c.header_len + c.body_len) {
      c.buf.resize(c.header_len + c.body_len);  // nothing pipelined: one request per connection
      {
        std::lock_guard lock(mu_);
        ready_.push_back(std::move(c));
      }
      cv_.notify_all();
      return false;
    }
  }
}

void ApiServer::loop() {
  std::vector<pollfd> pfds;
  while (!stopping_) {
    auto now = Clock::now();
    pfds.clear();
    pfds.push_back({wake_[0], POLLIN, 0});
    pfds.push_back({listen_fd_, POLLIN, 0});
    Clock::time_point next = now + std::chrono::seconds(1);
    for (const auto &c : reading_) {
      pfds.push_back({c.fd, POLLIN, 0});
      next = std::min(next, c.deadline);
    }
    const size_t linger_at = pfds.size();
    for (const auto &l : lingering_) {
      pfds.push_back({l.fd, POLLIN, 0});
      next = std::min(next, l.until);
    }
    int timeout = static_cast<int>(std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
    int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      ::poll(nullptr, 0, 10);
      continue;
    }
    if (stopping_) break;
    if (pfds[0].revents & POLLIN) {
      char tmp[64];
      while (::read(wake_[0], tmp, sizeof(tmp)) > 0) {
      }
    }
    now = Clock::now();
    // Refused connections: drained until they close or their time is up.
    std::vector<Linger> keep;
    for (size_t i = 0; i < lingering_.size(); i++) {
      auto &l = lingering_[i];
      bool done = now >= l.until;
      if (!done && (pfds[linger_at + i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char tmp[16384];
        ssize_t got;
        while ((got = ::recv(l.fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0) {
        }
        done = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      }
      if (done) ::close(l.fd);
      else keep.push_back(l);
    }
    lingering_.swap(keep);
    // Reads (pfds[2..] are reading_ as it was), then new connections.
    std::vector<Conn> still;
    still.reserve(reading_.size());
    for (size_t i = 0; i < reading_.size(); i++) {
      Conn &c = reading_[i];
      if (pfds[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!read_some(c)) continue;
      }
      if (now >= c.deadline) {
        refuse(c.fd, 408, fmt::format("the request did not arrive within {} s", limits_.request_timeout.count() / 1000),
               &ApiRefusals::timeout);
        release(c.client);
        continue;
      }
      still.push_back(std::move(c));
    }
    reading_.swap(still);
    if (pfds[1].revents & POLLIN) accept_all(now);
    else if (pfds[1].revents & (POLLERR | POLLNVAL)) ::poll(nullptr, 0, 100);
  }
}

namespace {
bool is_write(const std::string &buf) {
  return !(buf.starts_with("GET ") || buf.starts_with("HEAD ") || buf.starts_with("OPTIONS "));
}
} // namespace

void ApiServer::worker() {
  // Any worker takes reads; a write only while fewer than kWriteWorkers workers run one, so
  // reads always have `workers` threads however slow the writes.
  for (;;) {
    Conn c;
    bool writing = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        if (stopping_) return true;
        for (const auto &r : ready_)
          if (!is_write(r.buf) || writers_ < kWriteWorkers) return true;
        return false;
      });
      if (stopping_) return;
      auto it = std::find_if(ready_.begin(), ready_.end(), [&](const Conn &r) { return !is_write(r.buf) || writers_ < kWriteWorkers; });
      c = std::move(*it);
      ready_.erase(it);
      writing = is_write(c.buf);
      if (writing) writers_++;
    }
    serve(c);
    if (writing) {
      std::lock_guard lock(mu_);
      writers_--;
    }
    cv_.notify_all();
  }
}

void ApiServer::serve(Conn &c) {
  BufferStream strm(c.fd, c.buf, c.remote_addr, c.remote_port);
  bool closed = false;
  process_request(strm, true, closed, nullptr);
  ::shutdown(c.fd, SHUT_WR);
  ::close(c.fd);
  release(c.client);
  served_++;
}

} // namespace bpftap::agent
