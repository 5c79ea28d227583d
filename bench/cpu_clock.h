// The CPU clock of the benchmark peers (bench/cpu_usage.py explains the method).
#pragma once

#include <time.h>

namespace quiver::bench {

/// User + system CPU seconds of this process so far, all threads: the sum getrusage
/// (RUSAGE_SELF) gives, in nanoseconds rather than microseconds, and up to date for the
/// calling thread (RUSAGE_THREAD moves in whole scheduler ticks).
inline double CpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

}  // namespace quiver::bench
