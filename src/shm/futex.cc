#include "shm/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace quiver::shm {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

FutexWaitResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                          std::chrono::nanoseconds timeout) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // Not FUTEX_PRIVATE_FLAG: the word is shared between processes.
  long rc =
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (rc == 0) return FutexWaitResult::kWoken;
  switch (errno) {
    case ETIMEDOUT:
      return FutexWaitResult::kTimedOut;
    case EAGAIN:
      return FutexWaitResult::kValueChanged;
    case EINTR:
      return FutexWaitResult::kInterrupted;
    default:
      return FutexWaitResult::kWoken;
  }
}

int FutexWake(std::atomic<uint32_t>* word, int count) {
  long rc =
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace quiver::shm
