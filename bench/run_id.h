// The run a benchmark program belongs to, for the names of the channels it creates.
//
// Every channel the suite (bench/suite.py) makes is named `<workload>-<RUN>-...`, where RUN
// is the process id of the suite (QUIVER_BENCH_RUN_PID, which it exports to everything it
// starts), or this program's own pid when it runs alone. The suite's leftover check looks
// only at names of its own run, so a second suite running on the same machine at the same
// time neither fails it nor is blamed for its leftovers.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace quiver::bench {

inline std::string RunId() {
  const char* run = std::getenv("QUIVER_BENCH_RUN_PID");
  if (run != nullptr && *run != '\0' &&
      std::string(run).find_first_not_of("0123456789") == std::string::npos) {
    return run;
  }
  return std::to_string(getpid());
}

}  // namespace quiver::bench
