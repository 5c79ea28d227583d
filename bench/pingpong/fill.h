// The "fill" case: writing the payload once, in one process, as every sender does per
// message. The bare futex and spin move no payload and a zero-copy transport still pays for
// writing it, so the report sets this beside them. Runs in the benchmark's main thread.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>

namespace quiver::bench::pingpong {

// Records its p50 in FillResults().
void BM_Fill(benchmark::State& state, size_t size);

}  // namespace quiver::bench::pingpong
