#include "pingpong/fd_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace quiver::bench::pingpong {

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

bool WriteAll(int fd, const std::byte* p, size_t n, std::string* error) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      *error = Errno("write");
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, std::byte* p, size_t n, std::string* error) {
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      *error = Errno("read");
      return false;
    }
    if (r == 0) {
      *error = "the peer closed its end";
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace quiver::bench::pingpong
