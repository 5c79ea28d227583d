// Thin wrappers over the futex(2) system call on 32-bit words in shared memory.
// Thread-safe; the words may live in any MAP_SHARED mapping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace quiver::shm {

enum class FutexWaitResult { kWoken, kTimedOut, kValueChanged, kInterrupted };

/// Sleeps while `*word == expected`, at most `timeout` (negative: no limit).
/// Returns why it came back; spurious wake-ups are reported as kWoken.
FutexWaitResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                          std::chrono::nanoseconds timeout);

/// Wakes up to `count` waiters sleeping on `word`. Returns how many were woken.
int FutexWake(std::atomic<uint32_t>* word, int count);

}  // namespace quiver::shm
