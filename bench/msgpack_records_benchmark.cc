// DecodeMsgpackRecords on 1M W4 nodes (id uint64, kind uint8, parent uint64, weight float32),
// encoded as msgspec would (maps in field order, or array_like arrays; floats as float64),
// against building the same batch directly with Arrow builders in the same run.
//
//   build-release/msgpack_records_benchmark --benchmark_repetitions=5
//
// Counters: items_per_second is nodes/s; x_builders is the median decode time over the median
// time of the direct build, both measured in this process.
#include <arrow/api.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "quiver/msgpack_records.h"

// As quiver_payload is built (CMakeLists.txt): header-only, no Boost, API v3.
#include <msgpack.hpp>

namespace {

constexpr int64_t kNodes = 1'000'000;

struct Node {
  uint64_t id;
  uint8_t kind;
  bool has_parent;
  uint64_t parent;
  double weight;
};

const std::vector<Node>& Nodes() {
  static const std::vector<Node> nodes = [] {
    std::vector<Node> v(kNodes);
    for (int64_t i = 0; i < kNodes; ++i) {
      v[i] = {static_cast<uint64_t>(i) + (uint64_t{1} << 33), static_cast<uint8_t>(i % 7), i != 0,
              static_cast<uint64_t>(i / 2) + (uint64_t{1} << 33), 0.25 * (i % 1000) + 0.125};
    }
    return v;
  }();
  return nodes;
}

std::shared_ptr<arrow::Schema> W4Schema() {
  return arrow::schema({
      arrow::field("id", arrow::uint64(), false),
      arrow::field("kind", arrow::uint8(), false),
      arrow::field("parent", arrow::uint64()),
      arrow::field("weight", arrow::float32(), false),
  });
}

// msgspec writes every Python float as float64; msgpack-c's pack_double would write integral
// values as ints, so the bytes are written by hand.
void PackFloat64(msgpack::sbuffer& out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  char buf[9] = {static_cast<char>(0xcb)};
  for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  out.write(buf, 9);
}

std::string Encode(bool as_map) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(kNodes);
  auto key = [&](const char* name) {
    if (as_map) pk.pack_str(std::strlen(name)), pk.pack_str_body(name, std::strlen(name));
  };
  for (const Node& n : Nodes()) {
    as_map ? pk.pack_map(4) : pk.pack_array(4);
    key("id"), pk.pack_uint64(n.id);
    key("kind"), pk.pack_uint8(n.kind);
    key("parent");
    n.has_parent ? pk.pack_uint64(n.parent) : pk.pack_nil();
    key("weight"), PackFloat64(out, n.weight);
  }
  return std::string(out.data(), out.size());
}

const std::string& Encoded(bool as_map) {
  static const std::string maps = Encode(true);
  static const std::string arrays = Encode(false);
  return as_map ? maps : arrays;
}

std::shared_ptr<arrow::RecordBatch> BuildDirect(const std::shared_ptr<arrow::Schema>& schema) {
  const auto& nodes = Nodes();
  arrow::UInt64Builder id;
  arrow::UInt8Builder kind;
  arrow::UInt64Builder parent;
  arrow::FloatBuilder weight;
  if (!id.Reserve(kNodes).ok() || !kind.Reserve(kNodes).ok() || !parent.Reserve(kNodes).ok() ||
      !weight.Reserve(kNodes).ok()) {
    return nullptr;
  }
  for (const Node& n : nodes) {
    id.UnsafeAppend(n.id);
    kind.UnsafeAppend(n.kind);
    if (n.has_parent) {
      parent.UnsafeAppend(n.parent);
    } else {
      parent.UnsafeAppendNull();
    }
    weight.UnsafeAppend(static_cast<float>(n.weight));
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(4);
  if (!id.Finish(&columns[0]).ok() || !kind.Finish(&columns[1]).ok() ||
      !parent.Finish(&columns[2]).ok() || !weight.Finish(&columns[3]).ok()) {
    return nullptr;
  }
  return arrow::RecordBatch::Make(schema, kNodes, columns);
}

// Median seconds of the direct build, measured once per process for the x_builders ratio.
double DirectBuildSeconds() {
  static const double seconds = [] {
    auto schema = W4Schema();
    std::vector<double> runs;
    for (int i = 0; i < 9; ++i) {
      const auto start = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(BuildDirect(schema));
      runs.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(runs.begin(), runs.begin() + runs.size() / 2, runs.end());
    return runs[runs.size() / 2];
  }();
  return seconds;
}

void BM_DirectArrowBuilders(benchmark::State& state) {
  auto schema = W4Schema();
  Nodes();
  for (auto _ : state) {
    auto batch = BuildDirect(schema);
    if (batch == nullptr) state.SkipWithError("build failed");
    benchmark::DoNotOptimize(batch);
  }
  state.SetItemsProcessed(state.iterations() * kNodes);
}

void DecodeBenchmark(benchmark::State& state, bool as_map) {
  auto schema = W4Schema();
  const std::string& bytes = Encoded(as_map);
  const double direct = DirectBuildSeconds();
  std::vector<double> runs;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto batch = quiver::DecodeMsgpackRecords(bytes, schema);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!batch.ok()) {
      state.SkipWithError(batch.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*batch);
  }
  state.SetItemsProcessed(state.iterations() * kNodes);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
  if (!runs.empty()) {
    std::nth_element(runs.begin(), runs.begin() + runs.size() / 2, runs.end());
    state.counters["x_builders"] = runs[runs.size() / 2] / direct;
  }
}

void BM_DecodeMsgpackMaps(benchmark::State& state) { DecodeBenchmark(state, true); }
void BM_DecodeMsgpackArrays(benchmark::State& state) { DecodeBenchmark(state, false); }

// The alternative design, measured rather than guessed: msgpack::unpack into a zone-allocated
// object tree alone, before any Arrow work, already costs this much.
void ObjectTreeBenchmark(benchmark::State& state, bool as_map) {
  const std::string& bytes = Encoded(as_map);
  for (auto _ : state) {
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    benchmark::DoNotOptimize(handle.get());
  }
  state.SetItemsProcessed(state.iterations() * kNodes);
}

// The floor: msgpack's parser alone, with a visitor that does nothing.
void NullVisitorBenchmark(benchmark::State& state, bool as_map) {
  const std::string& bytes = Encoded(as_map);
  for (auto _ : state) {
    msgpack::null_visitor visitor;
    benchmark::DoNotOptimize(msgpack::parse(bytes.data(), bytes.size(), visitor));
  }
  state.SetItemsProcessed(state.iterations() * kNodes);
}

void BM_ParseOnlyNullVisitorMaps(benchmark::State& state) { NullVisitorBenchmark(state, true); }
void BM_ParseOnlyNullVisitorArrays(benchmark::State& state) { NullVisitorBenchmark(state, false); }
void BM_UnpackObjectTreeOnlyMaps(benchmark::State& state) { ObjectTreeBenchmark(state, true); }
void BM_UnpackObjectTreeOnlyArrays(benchmark::State& state) { ObjectTreeBenchmark(state, false); }

BENCHMARK(BM_DirectArrowBuilders)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeMsgpackMaps)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeMsgpackArrays)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseOnlyNullVisitorMaps)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseOnlyNullVisitorArrays)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_UnpackObjectTreeOnlyMaps)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_UnpackObjectTreeOnlyArrays)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
