// Blocking reads and writes of whole buffers on file descriptors (pipes, sockets), with the
// error as text. Thread-compatible.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace quiver::bench::pingpong {

using Fd = quiver::UniqueFd;

// Returns "<what>: <strerror(errno)>".
std::string Errno(std::string_view what);

// Writes all `n` bytes, retrying after EINTR. Returns false with `error` set on failure.
bool WriteAll(int fd, const std::byte* p, size_t n, std::string* error);

// Reads exactly `n` bytes, retrying after EINTR. Returns false with `error` set on error or
// end of file (the peer closed its end: it exited).
bool ReadAll(int fd, std::byte* p, size_t n, std::string* error);

}  // namespace quiver::bench::pingpong
