// W4 ingest (docs/benchmarks.md): the C++ side of "10M small nodes from Python into the C++ core".
// Subscribes to the named Arrow channel of nodes (id uint64, kind uint8, parent uint64,
// weight float32), prints "ready", and reads batches zero-copy until the publisher closes.
// Every time it has summed another N nodes (one run of the producer) it prints one JSON line:
// {"nodes", "batches", "id_sum", "parent_sum", "weight_sum", "done_ns"} (done_ns:
// CLOCK_MONOTONIC when the run's last batch was summed), and starts the next run's sums. The
// Python driver (bench/w4_ingest.py) checks the sums against what it published.
//
//   w4_ingest_peer --channel NAME --nodes-per-run N
#include <arrow/api.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "quiver/arrow.h"
#include "quiver/channel.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "w4_ingest_peer: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name;
  uint64_t per_run = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--channel" && i + 1 < argc) {
      name = argv[++i];
    } else if (arg == "--nodes-per-run" && i + 1 < argc) {
      per_run = std::stoull(argv[++i]);
    } else if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: w4_ingest_peer --channel NAME --nodes-per-run N\n"
          "  Sums the W4 node batches of channel NAME, one JSON line per N nodes,\n"
          "  until its publisher closes.");
      return 0;
    } else {
      return Fail("unknown argument '" + arg + "' (see --help)");
    }
  }
  if (name.empty() || per_run == 0)
    return Fail("--channel NAME and --nodes-per-run N are required");

  auto channel = quiver::Channel::Open(name);
  if (!channel.ok()) return Fail("Open: " + channel.status().ToString());
  const auto reader =
      arrow::schema({arrow::field("id", arrow::uint64()), arrow::field("parent", arrow::uint64()),
                     arrow::field("weight", arrow::float32())});
  quiver::ArrowSubscriberOptions options{.reader_schema = reader};
  options.subscriber.spin = std::chrono::microseconds(0);
  auto subscriber = quiver::ArrowSubscriber::Make(*channel, options);
  if (!subscriber.ok()) return Fail("subscribe: " + subscriber.status().ToString());
  std::puts("ready");
  std::fflush(stdout);

  uint64_t nodes = 0, batches = 0, id_sum = 0, parent_sum = 0;
  double weight_sum = 0;
  for (;;) {
    auto sample = subscriber->Receive(std::chrono::seconds(120));
    if (!sample.ok()) {
      if (sample.status().code() == quiver::ErrorCode::kPeerGone) break;
      return Fail("Receive: " + sample.status().ToString());
    }
    const arrow::RecordBatch& batch = *sample->batch;
    const auto& ids = static_cast<const arrow::UInt64Array&>(*batch.column(0));
    const auto& parents = static_cast<const arrow::UInt64Array&>(*batch.column(1));
    const auto& weights = static_cast<const arrow::FloatArray&>(*batch.column(2));
    const uint64_t* id = ids.raw_values();
    const uint64_t* parent = parents.raw_values();
    const float* weight = weights.raw_values();
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      id_sum += id[i];
      parent_sum += parent[i];
      weight_sum += weight[i];
    }
    nodes += static_cast<uint64_t>(batch.num_rows());
    ++batches;
    if (nodes < per_run) continue;
    const int64_t done_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count();
    std::printf(
        "{\"nodes\": %llu, \"batches\": %llu, \"id_sum\": %llu, \"parent_sum\": %llu, "
        "\"weight_sum\": %.17g, \"done_ns\": %lld}\n",
        static_cast<unsigned long long>(nodes), static_cast<unsigned long long>(batches),
        static_cast<unsigned long long>(id_sum), static_cast<unsigned long long>(parent_sum),
        weight_sum, static_cast<long long>(done_ns));
    std::fflush(stdout);
    nodes = batches = id_sum = parent_sum = 0;
    weight_sum = 0;
  }
  if (nodes != 0)
    return Fail("the publisher closed mid-run, after " + std::to_string(nodes) + " nodes");
  return 0;
}
