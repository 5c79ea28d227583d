#include "pingpong/fill.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "pingpong/endpoint.h"
#include "pingpong/payload.h"
#include "pingpong/results.h"
#include "pingpong/stats.h"

namespace quiver::bench::pingpong {

// Into a buffer as large as the Quiver channel, at a rotating offset as its loans are.
void BM_Fill(benchmark::State& state, size_t size) {
  const size_t capacity = std::max<size_t>(size_t{4} << 20, 4 * size);
  std::vector<std::byte> buffer(capacity + 64);
  std::byte* base = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
  std::vector<double> fill_us;
  fill_us.reserve(static_cast<size_t>(state.max_iterations));
  size_t offset = 0;
  uint64_t seq = 0;
  for (auto _ : state) {
    if (offset + size > capacity) offset = 0;
    const Clock::time_point t0 = Clock::now();
    FillPayload(base + offset, size, ++seq);
    benchmark::ClobberMemory();
    const Clock::time_point t1 = Clock::now();
    offset += (size + 63) / 64 * 64;
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    fill_us.push_back(seconds * 1e6);
    state.SetIterationTime(seconds);
  }
  std::sort(fill_us.begin(), fill_us.end());
  const double p50 = Percentile(fill_us, 0.5);
  FillResults()[size].push_back(p50);
  state.counters["p50_us"] = p50;
  state.counters["p99_us"] = Percentile(fill_us, 0.99);
}

}  // namespace quiver::bench::pingpong
