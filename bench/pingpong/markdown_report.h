// The summary tables printed after the benchmark's own output (and written to
// QUIVER_BENCH_SUMMARY_MD): latency, same-run ratios and cost per placement, then the fill
// and idle-receiver figures. Reads the results of this run; single-threaded.
#pragma once

#include <string>

namespace quiver::bench::pingpong {

// Returns the summary as markdown.
std::string SummaryMarkdown();

}  // namespace quiver::bench::pingpong
