// The "idle" case: a Quiver subscriber left waiting in Receive() with nothing to receive,
// and how much CPU it burns meanwhile. Runs in the benchmark's main thread.
#pragma once

#include <benchmark/benchmark.h>

#include "pingpong/cases.h"

namespace quiver::bench::pingpong {

// `kind` is a quiver kind; waits QUIVER_BENCH_IDLE_MS. Records the CPU % in IdleResults().
void BM_IdleReceiver(benchmark::State& state, Kind kind);

}  // namespace quiver::bench::pingpong
