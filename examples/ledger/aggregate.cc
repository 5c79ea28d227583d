// Pipeline node: reads channel `ledger` and totals `amount` per `code`, in C++, straight from
// shared memory (no copy of the batches). Prints a JSON report line when the producer is done.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_map>

#include <arrow/api.h>

#include "quiver/arrow.h"

int main() {
  auto channel = quiver::Channel::Attach("ledger");
  if (!channel.ok()) return std::fprintf(stderr, "%s\n", channel.status().ToString().c_str()), 1;
  auto reader = arrow::schema({arrow::field("code", arrow::utf8(), false),
                               arrow::field("amount", arrow::float64(), false)});
  auto subscriber = quiver::ArrowSubscriber::Make(*channel, {.reader_schema = reader});
  if (!subscriber.ok()) {
    return std::fprintf(stderr, "%s\n", subscriber.status().ToString().c_str()), 1;
  }
  std::unordered_map<std::string, double> per_code;
  int64_t rows = 0, batches = 0;
  double seconds = 0;
  double done = 0;  // CLOCK_MONOTONIC seconds when the last batch was totalled
  for (;;) {
    auto sample = subscriber->Receive(std::chrono::seconds(60));
    if (!sample.ok()) {
      if (sample.status().code() == quiver::ErrorCode::kPeerGone) break;  // producer done
      return std::fprintf(stderr, "%s\n", sample.status().ToString().c_str()), 1;
    }
    const auto start = std::chrono::steady_clock::now();
    const auto& codes = static_cast<const arrow::StringArray&>(*sample->batch->column(0));
    const auto& amounts = static_cast<const arrow::DoubleArray&>(*sample->batch->column(1));
    for (int64_t i = 0; i < sample->batch->num_rows(); ++i) {
      per_code[std::string(codes.GetView(i))] += amounts.Value(i);
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows += sample->batch->num_rows();
    ++batches;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    done = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
  }
  double total = 0;
  for (const auto& [code, amount] : per_code) total += amount;
  std::printf(
      "{\"node\": \"aggregate\", \"batches\": %lld, \"rows\": %lld, \"codes\": %zu, "
      "\"amount\": %.6f, \"aggregate_seconds\": %.6f, \"done\": %.6f}\n",
      static_cast<long long>(batches), static_cast<long long>(rows), per_code.size(), total,
      seconds, done);
  return 0;
}
