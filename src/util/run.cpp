#include "util/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

extern char **environ;

namespace bpftap::lab {
namespace {

std::string find_program(const std::string &name) {
  if (name.find('/') != std::string::npos) return name;
  std::vector<std::string> dirs;
  if (const char *path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) dirs.push_back(p.substr(start, end - start));
      start = end + 1;
    }
  }
  // Root's tools live in sbin, which a non-login PATH may lack.
  for (const char *d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.emplace_back(d);
  for (const auto &d : dirs) {
    std::string full = d;
    full += '/';
    full += name;
    if (::access(full.c_str(), X_OK) == 0) return full;
  }
  return {};
}

std::string first_line(const std::string &s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  std::size_t e = s.find('\n', b);
  return s.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

} // namespace

std::string format_command(const std::vector<std::string> &argv) {
  std::string s;
  for (const auto &a : argv) {
    if (!s.empty()) s += ' ';
    if (!a.empty() && a.find_first_of(" \t'\"\\$&;|<>*?") == std::string::npos) {
      s += a;
      continue;
    }
    s += '\'';
    for (char c : a) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    s += '\'';
  }
  return s;
}

Result<CommandResult> run_command(const std::vector<std::string> &argv) {
  if (argv.empty()) return fail("run: empty command");
  std::string prog = find_program(argv[0]);
  if (prog.empty()) return fail(argv[0] + ": command not found", ENOENT);

  Fd out_r, out_w, err_r, err_w;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail("pipe", errno);
  out_r.fd = p[0];
  out_w.fd = p[1];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail("pipe", errno);
  err_r.fd = p[0];
  err_w.fd = p[1];

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t def;
  sigemptyset(&def);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&def, s);
  posix_spawnattr_setsigdefault(&attr, &def);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char *> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto &a : argv) cargv.push_back(const_cast<char *>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, prog.c_str(), &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  out_w.reset();
  err_w.reset();
  if (rc != 0) return fail("spawn " + prog, rc);

  CommandResult res;
  std::array<pollfd, 2> fds{{{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}}};
  std::array<std::string *, 2> sinks{&res.out, &res.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue; // a signal for us; the child decides for itself
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }

  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return fail("waitpid " + prog, errno);
  }
  res.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return res;
}

Result<std::string> run_checked(const std::vector<std::string> &argv) {
  auto r = run_command(argv);
  if (!r) return fail("`" + format_command(argv) + "`: " + r.error().message());
  if (r->status != 0) {
    std::string why = first_line(r->err);
    if (why.empty()) why = first_line(r->out);
    if (why.empty()) why = "exit status " + std::to_string(r->status);
    return fail("`" + format_command(argv) + "` failed: " + why);
  }
  return std::move(r->out);
}

} // namespace bpftap::lab
