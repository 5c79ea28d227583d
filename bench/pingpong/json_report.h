// The workload-shaped result file of docs/benchmarks.md (QUIVER_BENCH_SUMMARY_JSON), which
// bench/w3_frames.py reads: one entry per case, fill size and idle receiver. Reads the
// results of this run; single-threaded.
#pragma once

#include <string>

namespace quiver::bench::pingpong {

// Returns the result file; "median_us" is the p50 latency.
std::string SummaryJson();

}  // namespace quiver::bench::pingpong
