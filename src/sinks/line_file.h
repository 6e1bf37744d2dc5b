// JSON-lines outputs (EVE alerts, conn.log flows): the interface the inspector writes to, and a
// file whose every write is checked, for the agent, where a full disk must be neither fatal nor
// silent.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace bpftap {

class LineOutput {
public:
  virtual ~LineOutput() = default;
  virtual void line(std::string_view text) = 0;  // one record, without its newline
  virtual Result<> flush() = 0;
};

struct LineFileStats {
  uint64_t lines = 0;         // written to the file
  uint64_t dropped = 0;       // given up: more were waiting than max_pending allows
  uint64_t write_errors = 0;  // failed writes
  bool failing = false;       // the last write failed
  std::string error;          // and why
};

// Lines appended to a file (O_APPEND, so other writers and logrotate's copytruncate are safe).
// Lines are buffered and written at flush() (or once 64 KiB wait). A failed write keeps them for
// a retry; while failing, flush() retries at most once per `retry` (reopening the path if the
// file was deleted), and lines beyond `max_pending` bytes are dropped and counted, so that
// memory stays bounded. Thread-safe.
class LineFile final : public LineOutput {
public:
  static Result<std::unique_ptr<LineFile>> open(const std::string &path, size_t max_pending = 4u << 20,
                                                std::chrono::milliseconds retry = std::chrono::seconds(1));
  void line(std::string_view text) override;
  Result<> flush() override;
  // Opens the path again (logrotate moved the file away: SIGHUP) and writes what waits there.
  Result<> reopen();
  LineFileStats stats() const;
  const std::string &path() const { return path_; }
  // Told when writing starts failing (with the error) and when it works again: once per
  // episode, not at every retry. Called without the file's lock held.
  void on_change(std::function<void(bool failing, const std::string &error)> fn) { listener_ = std::move(fn); }

private:
  LineFile(std::string path, FD fd, size_t max_pending, std::chrono::milliseconds retry)
      : path_(std::move(path)), fd_(std::move(fd)), max_pending_(max_pending), retry_(retry) {}
  Result<> write_locked();
  void tell(bool was_failing);  // the listener, if the state changed (after unlocking)

  const std::string path_;
  mutable std::mutex mu_;
  FD fd_;
  const size_t max_pending_;
  const std::chrono::milliseconds retry_;
  std::string pending_;
  std::chrono::steady_clock::time_point next_try_{};
  LineFileStats st_;
  std::function<void(bool, const std::string &)> listener_;
};

} // namespace bpftap
