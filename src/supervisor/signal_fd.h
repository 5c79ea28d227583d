// Signals as readable events: blocks a set of signals in the calling thread and reads them
// from a signalfd, restoring the thread's mask on destruction. Move-only; one thread at a time.
//
// Only the calling thread blocks the signals: in a process with other threads, a signal sent
// to the process may be delivered to one of those instead. Create it on the main thread
// before starting others (as `quiver run` does), or block the set in every thread.
#pragma once

#include <signal.h>

#include <initializer_list>
#include <optional>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::supervisor {

class SignalFd {
 public:
  static Result<SignalFd> Create(std::initializer_list<int> signals);
  SignalFd(SignalFd&& other) noexcept;
  SignalFd& operator=(SignalFd&&) = delete;
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  /// Discards the signals of the set still pending (they were meant for this loop, which is
  /// over) and restores the thread's signal mask.
  ~SignalFd();

  int fd() const { return fd_.get(); }
  /// Returns the next pending signal, or nullopt if none is pending.
  Result<std::optional<int>> Read();

 private:
  SignalFd(UniqueFd fd, sigset_t set, sigset_t old_mask)
      : fd_(std::move(fd)), set_(set), old_mask_(old_mask) {}
  UniqueFd fd_;
  sigset_t set_;
  sigset_t old_mask_;
  bool active_ = true;
};

}  // namespace quiver::supervisor
