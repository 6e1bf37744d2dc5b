// Errors as values: every failure carries the operation that failed and its errno.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace bpftap {

struct Error {
  int code = 0;     // errno value (positive); 0 when not an OS error
  std::string what; // the operation and its object, e.g. "attach tcx ingress on tap-vm1"
  bool bad_input = false; // the user's input is at fault (CLI exit code 2)

  std::string message() const {
    if (code == 0) return what;
    return what + ": " + std::strerror(code);
  }
};

template <class T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string what, int code = 0) {
  return tl::unexpected(Error{code, std::move(what)});
}

inline tl::unexpected<Error> bad_input(std::string what) {
  return tl::unexpected(Error{0, std::move(what), true});
}

// libbpf returns -errno (or sets errno and returns NULL); convert in one place.
inline tl::unexpected<Error> fail_errno(std::string what, int negative_or_positive_errno) {
  int c = negative_or_positive_errno < 0 ? -negative_or_positive_errno : negative_or_positive_errno;
  return tl::unexpected(Error{c, std::move(what)});
}

// An error from below, said with what was being done ("session east-west: " + its text): errno
// and bad_input are kept. `return fail_in(r.error(), "session " + name);`
inline tl::unexpected<Error> fail_in(Error e, const std::string &doing) {
  e.what = doing + ": " + e.what;
  return tl::unexpected(std::move(e));
}

} // namespace bpftap
