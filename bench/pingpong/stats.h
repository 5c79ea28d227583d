// The statistics of the benchmark: percentiles and medians of samples, CPU time from
// rusage. Pure functions.
#pragma once

#include <sys/resource.h>

#include <vector>

namespace quiver::bench::pingpong {

// Returns the nearest-rank q-quantile (0 < q <= 1) of sorted, non-empty values.
double Percentile(const std::vector<double>& sorted, double q);

// Returns the median of `v` (the mean of the middle two for an even count), NaN if empty.
double Median(std::vector<double> v);

// Returns the user plus system CPU time of `r`, in seconds.
double CpuSeconds(const rusage& r);

}  // namespace quiver::bench::pingpong
