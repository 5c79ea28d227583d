// A small epoll wrapper: the supervisor's single event loop waits on it. Thread-compatible.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <span>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::supervisor {

class Epoll {
 public:
  static Result<Epoll> Create();

  /// Watches `fd` for `events` (EPOLLIN, ...); `tag` comes back with each event.
  Status Add(int fd, uint32_t events, uint64_t tag);
  /// Stops watching `fd` (call before closing it if it may be shared with a child).
  Status Remove(int fd);
  /// Waits up to `timeout_ms` (-1: forever). Returns the events filled in; 0 on timeout or
  /// when a signal interrupted the wait.
  Result<std::span<epoll_event>> Wait(std::span<epoll_event> events, int timeout_ms);

 private:
  explicit Epoll(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace quiver::supervisor
