// The agent's HTTP front end, on loopback (no root): what any client gets before a handler (and
// the token check) sees its request.
#include "agent/api_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace bpftap::agent;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string &s) {
  for (size_t at = 0; at < s.size();) {
    ssize_t n = send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes (or `ms` pass).
std::string read_all(int fd, int ms = 5000) {
  std::string out;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string request(int port, const std::string &raw) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  send_all(fd, raw);
  std::string r = read_all(fd);
  close(fd);
  return r;
}

std::string get(int port, const std::string &path) {
  return request(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

struct Server {
  explicit Server(ApiLimits l = {}) : srv(l) {
    auto r = srv.listen_tcp("127.0.0.1:0");
    EXPECT_TRUE(r) << r.error().message();
    srv.Get("/ok", [](const httplib::Request &, httplib::Response &res) { res.set_content("fine", "text/plain"); });
    srv.Get("/slow", [](const httplib::Request &, httplib::Response &res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content("slow", "text/plain");
    });
    srv.Post("/echo", [](const httplib::Request &req, httplib::Response &res) { res.set_content(std::to_string(req.body.size()), "text/plain"); });
    srv.Get("/throw", [](const httplib::Request &, httplib::Response &) { throw std::runtime_error("secret detail"); });
    srv.start();
  }
  ~Server() { srv.shutdown(); }
  int port() const { return srv.port(); }
  ApiServer srv;
};

TEST(ApiServer, AnswersAndClosesEachConnection) {
  Server s;
  auto r = get(s.port(), "/ok");
  EXPECT_THAT(r, HasSubstr("200 OK"));
  EXPECT_THAT(r, HasSubstr("Connection: close"));
  EXPECT_THAT(r, HasSubstr("fine"));
  auto e = request(s.port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_THAT(e, HasSubstr("200 OK"));
  EXPECT_THAT(e, HasSubstr("\r\n\r\n5"));
}

TEST(ApiServer, UnknownPathsAndExceptionsGetJsonErrorsWithoutDetails) {
  Server s;
  auto nf = get(s.port(), "/nope");
  EXPECT_THAT(nf, HasSubstr("404"));
  EXPECT_THAT(nf, HasSubstr(R"({"error":)"));
  auto ex = get(s.port(), "/throw");
  EXPECT_THAT(ex, HasSubstr("500"));
  EXPECT_THAT(ex, HasSubstr(R"({"error":"internal error"})"));
  EXPECT_THAT(ex, Not(HasSubstr("EXCEPTION_WHAT")));
  EXPECT_THAT(ex, Not(HasSubstr("secret detail")));
}

TEST(ApiServer, RefusesALargeBodyBeforeReadingIt) {
  ApiLimits l;
  l.max_body_bytes = 1024;
  Server s(l);
  // 50 MB announced, none sent: the answer comes at once, so nothing of it was awaited.
  auto t0 = std::chrono::steady_clock::now();
  auto r = request(s.port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n");
  EXPECT_THAT(r, HasSubstr("413"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(s.srv.refusals().too_large, 1u);
  // Headers beyond the limit (16 KiB by default).
  auto big = request(s.port(), "GET /ok HTTP/1.1\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_THAT(big, HasSubstr("431"));
  // Chunked bodies have no length to check.
  auto chunked = request(s.port(), "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_THAT(chunked, HasSubstr("411"));
}

TEST(ApiServer, ExpectContinueIsAnsweredOnce) {
  Server s;
  int fd = connect_to(s.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  pollfd p{fd, POLLIN, 0};
  ASSERT_GT(poll(&p, 1, 2000), 0) << "no 100 Continue";
  char buf[64] = {};
  ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(buf), HasSubstr("100 Continue"));
  send_all(fd, "abc");
  auto r = read_all(fd);
  close(fd);
  EXPECT_THAT(r, HasSubstr("200 OK"));
  EXPECT_THAT(r, Not(HasSubstr("100 Continue")));
}

TEST(ApiServer, SlowClientsTimeOutAndDoNotStopOthers) {
  ApiLimits l;
  l.request_timeout = std::chrono::milliseconds(1500);
  Server s(l);
  // Eight slowloris connections: a header line, then nothing.
  std::vector<int> slow;
  for (int i = 0; i < 8; i++) {
    int fd = connect_to(s.port());
    ASSERT_GE(fd, 0);
    send_all(fd, "GET /ok HTTP/1.1\r\nX-a: b\r\n");
    slow.push_back(fd);
  }
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(get(s.port(), "/ok"), HasSubstr("200 OK"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  for (int fd : slow) {
    EXPECT_THAT(read_all(fd, 4000), HasSubstr("408"));
    close(fd);
  }
  EXPECT_EQ(s.srv.refusals().timeout, 8u);
}

TEST(ApiServer, CapsConnectionsOverallAndPerClient) {
  ApiLimits l;
  l.max_connections = 10;
  l.max_client_connections = 10;
  Server s(l);
  std::vector<int> idle;
  for (int i = 0; i < 10; i++) idle.push_back(connect_to(s.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // all accepted
  auto r = get(s.port(), "/ok");
  EXPECT_THAT(r, HasSubstr("503"));
  EXPECT_THAT(r, HasSubstr("too many connections"));
  EXPECT_GE(s.srv.refusals().connections + s.srv.refusals().client_connections, 1u);
  for (int fd : idle) close(fd);
  for (int i = 0; i < 50 && s.srv.open_connections() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_THAT(get(s.port(), "/ok"), HasSubstr("200 OK"));

  ApiLimits pc;
  pc.max_client_connections = 3;
  Server t(pc);
  std::vector<int> mine;
  for (int i = 0; i < 3; i++) mine.push_back(connect_to(t.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_THAT(get(t.port(), "/ok"), HasSubstr("too many connections from 127.0.0.1"));
  for (int fd : mine) close(fd);
}

TEST(ApiServer, LimitsTheRequestRatePerClient) {
  ApiLimits l;
  l.requests_per_second = 5;  // a bucket of 10
  Server s(l);
  int ok = 0, limited = 0;
  for (int i = 0; i < 20; i++) {
    auto r = get(s.port(), "/ok");
    ok += r.find("200 OK") != std::string::npos;
    limited += r.find("429") != std::string::npos;
  }
  EXPECT_GE(ok, 10);
  EXPECT_LE(ok, 12);
  EXPECT_EQ(ok + limited, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_THAT(get(s.port(), "/ok"), HasSubstr("200 OK"));  // refilled
}

TEST(ApiServer, ASlowHandlerLeavesReadsToTheOthers) {
  Server s;
  std::vector<std::thread> slow;
  for (int i = 0; i < 3; i++) slow.emplace_back([&] { get(s.port(), "/slow"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(get(s.port(), "/ok"), HasSubstr("200 OK"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  for (auto &t : slow) t.join();
}

TEST(ApiServer, ASecondServerOnThePortIsRefused) {
  Server s;
  ApiServer other(ApiLimits{});
  auto r = other.listen_tcp("127.0.0.1:" + std::to_string(s.port()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EADDRINUSE);
  EXPECT_THAT(r.error().message(), HasSubstr("another bpftap agent"));
}

TEST(ApiServer, UnixSocketIsCreatedWithItsFinalMode) {
  auto dir = std::filesystem::temp_directory_path() / ("bpftap-api-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "api.sock").string();
  {
    ApiServer srv(ApiLimits{});
    auto r = srv.listen_unix(path);
    ASSERT_TRUE(r) << r.error().message();
    struct stat st {};
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // Nothing left of the private directory it was made in.
    size_t entries = 0;
    for (const auto &e : std::filesystem::directory_iterator(dir)) entries += e.path().filename() != "api.sock";
    EXPECT_EQ(entries, 0u);
    // A second one is refused while the first listens.
    ApiServer other(ApiLimits{});
    EXPECT_FALSE(other.listen_unix(path));
  }
  std::filesystem::remove_all(dir);
}

} // namespace
