// The figures of one ping-pong case over every repetition of this run: the median of each
// statistic (the median of the medians for p50). Read from Results(); single-threaded.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "pingpong/cases.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {

struct Summary {
  double p50 = NAN, p99 = NAN, p999 = NAN, mean = NAN, cpu = NAN, csw = NAN, same_cpu = NAN;
  size_t runs = 0;
  int64_t rounds = 0;  // round trips per run
};

// Returns the case's summary, or nullopt if it has no successful run.
std::optional<Summary> Summarize(Placement placement, size_t size, Kind kind);

}  // namespace quiver::bench::pingpong
