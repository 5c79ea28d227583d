// The ping-pong case: pins the parent, forks the echo child through the case's transport,
// times every round trip and records the case's statistics in Results(). Runs in the
// benchmark's main thread.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>

#include "pingpong/cases.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {

// One case: `kind` with a `size`-byte payload in `placement`, state.max_iterations round
// trips after a warm-up. Reports one-way latency (round trip / 2) as its manual time.
void BM_PingPong(benchmark::State& state, Kind kind, size_t size, Placement placement);

}  // namespace quiver::bench::pingpong
