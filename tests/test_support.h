// Helpers for multi-process tests: child processes that are always reaped, readiness pipes,
// and deterministic sample contents a receiver can verify byte for byte.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "shm/segment.h"

namespace quiver::testing {

inline std::string UniqueName(std::string_view what) {
  return std::string(what) + "-" + std::to_string(getpid());
}

inline bool SegmentFileExists(const std::string& name) {
  return std::filesystem::exists(shm::Segment::PathOf(name));
}

/// A forked child running `body`; its return value is the exit code. Killed and reaped on
/// destruction if still running.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = fork();
    if (pid_ == 0) {
      int code = body();
      std::fflush(nullptr);
      _exit(code);  // no atexit handlers, no gtest teardown in the child
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  pid_t pid() const { return pid_; }
  void Kill(int sig = SIGKILL) { kill(pid_, sig); }
  /// Waits for the child; returns its raw wait status. `usage` receives its CPU times.
  int Wait(rusage* usage = nullptr) {
    if (reaped_) return status_;
    rusage ru{};
    while (wait4(pid_, &status_, 0, &ru) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    if (usage != nullptr) *usage = ru;
    return status_;
  }
  /// Waits; returns the exit code, or 128 + signal if it was killed.
  int ExitCode() {
    int st = Wait();
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

/// A pipe used to say "ready" (one byte per event) from one process to another.
class Signal {
 public:
  Signal() {
    if (pipe(fds_) != 0) std::abort();
  }
  ~Signal() {
    close(fds_[0]);
    close(fds_[1]);
  }
  void Notify(uint64_t value = 0) const {
    if (write(fds_[1], &value, sizeof(value)) != sizeof(value)) std::abort();
  }
  uint64_t Await() const {
    uint64_t value = 0;
    if (read(fds_[0], &value, sizeof(value)) != sizeof(value)) std::abort();
    return value;
  }

 private:
  int fds_[2];
};

/// Sample `seq`'s size in [1, max_size] and contents are a pure function of `seq`, so a
/// receiver can check every byte without any side channel.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline size_t PatternSize(uint64_t seq, size_t max_size) { return 1 + Mix(seq) % max_size; }
inline void FillPattern(std::span<std::byte> bytes, uint64_t seq) {
  uint64_t x = Mix(seq ^ 0x5555);
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = std::byte(static_cast<uint8_t>(x >> (8 * (i % 8))));
    if (i % 8 == 7) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
}
inline bool CheckPattern(std::span<const std::byte> bytes, uint64_t seq) {
  uint64_t x = Mix(seq ^ 0x5555);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte(static_cast<uint8_t>(x >> (8 * (i % 8))))) return false;
    if (i % 8 == 7) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
  return true;
}

}  // namespace quiver::testing
