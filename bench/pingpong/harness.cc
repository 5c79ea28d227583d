#include "pingpong/harness.h"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pingpong/cleanup.h"
#include "pingpong/echo_child.h"
#include "pingpong/results.h"
#include "pingpong/stats.h"
#include "pingpong/transport.h"

namespace quiver::bench::pingpong {

void BM_PingPong(benchmark::State& state, Kind kind, size_t size, Placement placement) {
  const Pinning pin = PinningFromEnv();
  const int parent_cpu = placement == Placement::kScheduler ? -1 : pin.parent;
  const int child_cpu = placement == Placement::kScheduler ? -1
                        : placement == Placement::kApart   ? pin.child
                                                           : pin.parent;
  ScopedPin parent_pin(parent_cpu);
  if (!parent_pin.ok()) {
    state.SkipWithError(("cannot pin the parent to CPU " + std::to_string(pin.parent)).c_str());
    return;
  }
  std::string error;
  std::optional<Session> session =
      StartSession(MakeTransport(kind, size, placement), child_cpu, &error);
  if (!session) {
    ForgetShmPaths();
    state.SkipWithError(error.c_str());
    return;
  }
  Endpoint& ep = *session->endpoint;
  // quiver-spin-own-method loans its next sample between round trips, off the timed path.
  auto* loan_ahead = dynamic_cast<LoanAheadEndpoint*>(&ep);
  auto between = [&] { return loan_ahead == nullptr || loan_ahead->LoanAhead(); };
  uint64_t seq = 0;

  // Warm-up: page faults, caches, the scheduler's idea of both processes.
  const int64_t rounds = state.max_iterations;
  const int64_t warmup = std::max<int64_t>(rounds / 10, 50);
  for (int64_t i = 0; i < warmup && error.empty(); ++i) {
    ++seq;
    if (!ep.Send(seq)) {
      error = ep.error();
    } else if (std::optional<uint64_t> got = ep.Receive(); !got || *got != seq) {
      error = got ? "echo out of order" : ep.error();
    } else if (!between()) {
      error = ep.error();
    }
  }

  std::vector<double> one_way_us;
  one_way_us.reserve(static_cast<size_t>(rounds));
  rusage before{}, after{};
  int64_t cpu_samples = 0, same_cpu = 0;
  getrusage(RUSAGE_SELF, &before);
  if (!error.empty()) state.SkipWithError(("warm-up: " + error).c_str());
  for (auto _ : state) {
    ++seq;
    const Clock::time_point t0 = Clock::now();
    if (!ep.Send(seq)) {
      error = ep.error();
      break;
    }
    const std::optional<uint64_t> got = ep.Receive();
    const Clock::time_point t1 = Clock::now();
    if (!got || *got != seq) {
      error = got ? "echo out of order" : ep.error();
      break;
    }
    const double one_way = std::chrono::duration<double>(t1 - t0).count() / 2;
    one_way_us.push_back(one_way * 1e6);
    state.SetIterationTime(one_way);
    if (!between()) {
      error = ep.error();
      break;
    }
    if (seq % 16 == 0) {
      ++cpu_samples;
      same_cpu += g_cpu_board->child_cpu.load(std::memory_order_relaxed) == sched_getcpu();
    }
  }
  getrusage(RUSAGE_SELF, &after);
  if (!error.empty() && !state.error_occurred()) state.SkipWithError(error.c_str());

  const std::string stop = session->Stop();
  session.reset();  // the channels go here, after the child detached: the files go with them
  ForgetShmPaths();
  if (!stop.empty() && !state.error_occurred()) state.SkipWithError(stop.c_str());
  if (state.error_occurred() || one_way_us.empty()) return;

  CaseResult r;
  r.rounds = static_cast<int64_t>(one_way_us.size());
  double sum = 0;
  for (double v : one_way_us) sum += v;
  r.mean_us = sum / static_cast<double>(one_way_us.size());
  std::sort(one_way_us.begin(), one_way_us.end());
  r.p50_us = Percentile(one_way_us, 0.50);
  r.p99_us = Percentile(one_way_us, 0.99);
  r.p999_us = Percentile(one_way_us, 0.999);
  r.max_us = one_way_us.back();
  r.cpu_us_per_rt = (CpuSeconds(after) - CpuSeconds(before)) * 1e6 / static_cast<double>(r.rounds);
  r.csw_per_rt =
      static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / static_cast<double>(r.rounds);
  r.same_cpu_pct = cpu_samples > 0
                       ? 100.0 * static_cast<double>(same_cpu) / static_cast<double>(cpu_samples)
                       : NAN;
  Results()[{placement, size, kind}].push_back(r);

  state.counters["p50_us"] = r.p50_us;
  state.counters["p99_us"] = r.p99_us;
  state.counters["p999_us"] = r.p999_us;
  state.counters["mean_us"] = r.mean_us;
  state.counters["max_us"] = r.max_us;
  state.counters["cpu_us_per_rt"] = r.cpu_us_per_rt;
  state.counters["vcsw_per_rt"] = r.csw_per_rt;
  state.counters["same_cpu_pct"] = r.same_cpu_pct;
  state.counters["bytes"] = static_cast<double>(size);
}

}  // namespace quiver::bench::pingpong
