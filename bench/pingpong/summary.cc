#include "pingpong/summary.h"

#include <vector>

#include "pingpong/results.h"
#include "pingpong/stats.h"

namespace quiver::bench::pingpong {

std::optional<Summary> Summarize(Placement placement, size_t size, Kind kind) {
  auto it = Results().find({placement, size, kind});
  if (it == Results().end() || it->second.empty()) return std::nullopt;
  std::vector<double> p50, p99, p999, mean, cpu, csw, same_cpu;
  for (const CaseResult& r : it->second) {
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
    p999.push_back(r.p999_us);
    mean.push_back(r.mean_us);
    cpu.push_back(r.cpu_us_per_rt);
    csw.push_back(r.csw_per_rt);
    same_cpu.push_back(r.same_cpu_pct);
  }
  Summary s;
  s.p50 = Median(p50);
  s.p99 = Median(p99);
  s.p999 = Median(p999);
  s.mean = Median(mean);
  s.cpu = Median(cpu);
  s.csw = Median(csw);
  s.same_cpu = Median(same_cpu);
  s.runs = it->second.size();
  s.rounds = it->second.front().rounds;
  return s;
}

}  // namespace quiver::bench::pingpong
