// The results of every case and repetition of this run, recorded by the benchmarks and read
// by the report at exit. Process-wide; single-threaded use only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "pingpong/cases.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {

// One run of one ping-pong case; latencies are one-way (round trip / 2).
struct CaseResult {
  double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, max_us = 0;
  double cpu_us_per_rt = 0;  // the parent's CPU time per round trip
  double csw_per_rt = 0;     // the parent's voluntary context switches per round trip
  double same_cpu_pct = 0;   // sampled round trips with parent and child on one CPU
  int64_t rounds = 0;
};

using CaseKey = std::tuple<Placement, size_t, Kind>;

// Every run of every ping-pong case.
std::map<CaseKey, std::vector<CaseResult>>& Results();

// p50 of writing the payload once, per payload size, one per run.
std::map<size_t, std::vector<double>>& FillResults();

// CPU % of an idle receiver, per quiver kind, one per run.
std::map<Kind, std::vector<double>>& IdleResults();

}  // namespace quiver::bench::pingpong
