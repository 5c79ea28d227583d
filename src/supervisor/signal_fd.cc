#include "supervisor/signal_fd.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <utility>

namespace quiver::supervisor {

Result<SignalFd> SignalFd::Create(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  sigset_t old_mask;
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, &old_mask); err != 0) {
    return Status::FromErrno("pthread_sigmask", err);
  }
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    return Status::FromErrno("signalfd", err);
  }
  return SignalFd(std::move(fd), set, old_mask);
}

SignalFd::SignalFd(SignalFd&& other) noexcept
    : fd_(std::move(other.fd_)),
      set_(other.set_),
      old_mask_(other.old_mask_),
      active_(std::exchange(other.active_, false)) {}

SignalFd::~SignalFd() {
  if (!active_) return;
  // Consume what is pending of the signals this object blocked (and only those the caller had
  // not blocked itself), so that unblocking does not deliver, say, a late SIGPIPE.
  sigset_t drain = set_;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&old_mask_, sig) == 1) sigdelset(&drain, sig);
  }
  const timespec zero{};
  while (::sigtimedwait(&drain, nullptr, &zero) > 0) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

Result<std::optional<int>> SignalFd::Read() {
  signalfd_siginfo info{};
  ssize_t n;
  do {
    n = ::read(fd_.get(), &info, sizeof(info));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return std::optional<int>();
  if (n != sizeof(info)) return Status::FromErrno("read signalfd", errno);
  return std::optional<int>(static_cast<int>(info.ssi_signo));
}

}  // namespace quiver::supervisor
