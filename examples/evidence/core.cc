// The Evidence core: commands a pool of workers (the pipeline file's `controls`) to extract
// evidence from (file, page) pairs. For each worker it starts a result stream
// (CMD_STREAM_START) and watches it; then it sends CMD_EXTRACT_EVIDENCE for every page from
// two threads through a WorkerPool, and reads both results of each answer zero-copy: a
// 1920x1080 RGBA Evidence frame and a 10,000-row Ledger batch, checked against the page. A
// worker that dies costs a retry on another one; every page must arrive exactly once.
//
//   evidence_core --files 4 --pages 6      (under `quiver run examples/evidence.toml`)
//
// Prints one JSON line: pages, retried, per-command latency percentiles (microseconds).
#include <arrow/api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/control.h"
#include "quiver/frame.h"

namespace {

using namespace quiver;
using namespace quiver::control;

int Fail(const std::string& what) {
  std::fprintf(stderr, "evidence_core: %s\n", what.c_str());
  return 1;
}

// The handle named `key` in a result's payload.
Result<ShmHandle> HandleAt(const Envelope& result, const char* key) {
  auto it = result.payload.find(key);
  if (it == result.payload.end()) {
    return Status::InvalidArgument(std::string("result has no payload.") + key);
  }
  ShmHandle handle;
  if (auto e = ParseShmHandle(*it, &handle)) return Status::InvalidArgument(e->message);
  return handle;
}

// Reads a page's frame (the result's shm_handle) and batch (payload.ledger) zero-copy and checks
// them against the page.
Status CheckPage(HandleResolver& resolver, const std::map<std::string, Channel>& streams,
                 const Envelope& result, int page) {
  if (!result.shm_handle) return Status::InvalidArgument("result has no shm_handle");
  const ShmHandle& frame_handle = *result.shm_handle;
  QUIVER_ASSIGN_OR_RETURN(ShmHandle ledger_handle, HandleAt(result, "ledger"));
  QUIVER_ASSIGN_OR_RETURN(Sample frame_sample, resolver.Resolve(frame_handle));
  QUIVER_ASSIGN_OR_RETURN(ImageFrameView frame,
                          ReadImageFrame(std::make_shared<const Sample>(std::move(frame_sample))));
  if (frame.info.width != 1920 || frame.info.height != 1080 ||
      frame.info.format != PixelFormat::kRgba8) {
    return Status::InvalidArgument("page " + std::to_string(page) + ": not a 1920x1080 RGBA frame");
  }
  const auto expected = static_cast<std::byte>(page % 251);
  const std::byte* last_row = frame.data.data() + size_t{frame.info.stride} * 1079;
  if (frame.data[0] != expected || last_row[1919 * 4 + 3] != std::byte{255}) {
    return Status::InvalidArgument("page " + std::to_string(page) + ": wrong pixels");
  }
  QUIVER_ASSIGN_OR_RETURN(Sample ledger_sample, resolver.Resolve(ledger_handle));
  QUIVER_ASSIGN_OR_RETURN(
      ArrowSample ledger,
      DecodeArrowSample(streams.at(ledger_handle.segment_id), std::move(ledger_sample)));
  const arrow::RecordBatch& batch = *ledger.batch;
  if (batch.num_rows() != 10'000) {
    return Status::InvalidArgument("page " + std::to_string(page) + ": " +
                                   std::to_string(batch.num_rows()) + " ledger rows");
  }
  auto pages = std::static_pointer_cast<arrow::Int64Array>(batch.GetColumnByName("page"));
  if (!pages || pages->Value(0) != page || pages->Value(9'999) != page) {
    return Status::InvalidArgument("page " + std::to_string(page) + ": ledger of another page");
  }
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  int files = 4, pages_per_file = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--files") == 0)
      files = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--pages") == 0)
      pages_per_file = std::atoi(argv[i + 1]);
    else
      return Fail("usage: evidence_core [--files N] [--pages N]");
  }
  auto workers = ControlWorkersFromEnvironment();
  if (!workers.ok()) return Fail(workers.status().ToString());
  if (workers->empty()) return Fail("no workers: the pipeline file names none in controls");
  WorkerPool pool(Dispatch::kLeastLoaded);
  HandleResolver resolver;
  std::map<std::string, Channel> streams;
  const nlohmann::json ledger_schema = nlohmann::json::parse(
      R"([{"name":"page","type":"int64"},{"name":"row","type":"int64"},
          {"name":"amount","type":"float64"},{"name":"code","type":"utf8"}])");
  for (const WorkerFd& w : *workers) {
    auto client = Client::FromFds(w.fds, w.name);
    if (!client.ok()) return Fail(client.status().ToString());
    const std::string tag = w.name + "-" + std::to_string(::getpid());
    for (auto [kind, payload] :
         {std::pair<std::string, nlohmann::json>{
              "frame", {{"stream", "evidence-frames-" + tag}, {"capacity", 64 << 20}}},
          {"ledger",
           {{"stream", "evidence-ledger-" + tag},
            {"capacity", 64 << 20},
            {"schema", ledger_schema}}}}) {
      auto started = (*client)->Call(MakeEnvelope(kCmdStreamStart, payload));
      if (!started.ok()) return Fail("CMD_STREAM_START: " + started.status().ToString());
      auto channel = Channel::Open(started->payload["segment_id"].get<std::string>());
      if (!channel.ok()) return Fail(channel.status().ToString());
      if (Status st = resolver.Watch(*channel); !st.ok()) return Fail(st.ToString());
      streams.emplace(channel->name(), *channel);
    }
    pool.Add(std::move(client).value());
  }

  std::vector<std::pair<std::string, int>> work;
  for (int f = 0; f < files; ++f) {
    for (int p = 0; p < pages_per_file; ++p)
      work.emplace_back("report-" + std::to_string(f) + ".pdf", p);
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::map<int, int> arrived;  // global page number -> times
  std::vector<double> latencies_us;
  std::string failure;
  auto drive = [&] {
    for (size_t i = next++; i < work.size(); i = next++) {
      const int page = static_cast<int>(i);
      const auto start = std::chrono::steady_clock::now();
      auto result = pool.Call(
          MakeEnvelope("CMD_EXTRACT_EVIDENCE",
                       {{"file_path", work[i].first}, {"page", work[i].second}, {"id", page}}),
          {.timeout = std::chrono::seconds(60), .retries = 3});
      Status checked = result.ok() ? CheckPage(resolver, streams, *result, page) : result.status();
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count();
      std::lock_guard lock(mu);
      if (!checked.ok()) {
        if (failure.empty()) failure = "page " + std::to_string(page) + ": " + checked.ToString();
        continue;
      }
      ++arrived[page];
      latencies_us.push_back(us);
    }
  };
  std::thread a(drive), b(drive);
  a.join();
  b.join();
  if (!failure.empty()) return Fail(failure);
  for (size_t i = 0; i < work.size(); ++i) {
    if (arrived[static_cast<int>(i)] != 1)
      return Fail("page " + std::to_string(i) + " arrived " +
                  std::to_string(arrived[static_cast<int>(i)]) + " times");
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double q) {
    return latencies_us[static_cast<size_t>(q * (latencies_us.size() - 1))];
  };
  std::printf(
      "{\"pages\": %zu, \"exactly_once\": true, \"live_workers\": %zu, \"workers\": %zu, "
      "\"p50_us\": %.0f, \"p99_us\": %.0f}\n",
      work.size(), pool.live_workers(), workers->size(), pct(0.5), pct(0.99));
  std::fflush(stdout);
  return 0;
}
