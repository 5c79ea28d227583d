// Cross-process "something happened" signals delivered through a file descriptor, so a
// subscriber can wait in its own epoll/poll/asyncio loop. Backed by abstract-namespace Unix
// datagram sockets: nothing in the file system, nothing to leak when a process dies.
#pragma once

#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::channel {

/// The receiving end: a bound, non-blocking datagram socket. Move-only.
class NotifyReceiver {
 public:
  /// Binds a socket under the abstract name `name` (at most 47 bytes).
  static Result<NotifyReceiver> Bind(std::string_view name);
  int fd() const { return fd_.get(); }
  /// Discards every queued signal.
  void Drain() const;

 private:
  explicit NotifyReceiver(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

/// The sending end: one unbound socket that can signal any receiver by name.
class NotifySender {
 public:
  /// Sends one signal to `name`; silently does nothing if no one is bound there or the
  /// receiver's queue is full (a signal is already pending then).
  void Signal(std::string_view name);

 private:
  UniqueFd fd_;
};

}  // namespace quiver::channel
