// `quiver bridge`: a remote channel's live tail (Flight DoGet) published into a local channel.
#include "flight/bridge.h"

#include <arrow/flight/client.h>
#include <arrow/record_batch.h>
#include <arrow/util/byte_size.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include "flight/common.h"
#include "flight/location.h"

namespace quiver::flight {
namespace fl = arrow::flight;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

// Cancels the stream once `stop` becomes true; the reader's Next() then returns Cancelled.
class CancelOnStop {
 public:
  CancelOnStop(fl::FlightStreamReader& reader, const std::atomic<bool>& stop)
      : thread_([this, &reader, &stop] {
          std::unique_lock lock(mu_);
          while (!done_) {
            if (stop.load()) {
              reader.Cancel();
              return;
            }
            cv_.wait_for(lock, kPoll);
          }
        }) {}
  ~CancelOnStop() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace

Result<BridgeReport> RunBridge(const BridgeOptions& options, const std::atomic<bool>& stop,
                               const std::function<void(const BridgeReport&)>& progress) {
  QUIVER_ASSIGN_OR_RETURN(RemoteChannel remote, ParseRemoteChannel(options.remote));
  if (options.to.empty()) return Status::InvalidArgument("bridge: no local channel");
  auto location = fl::Location::Parse(remote.location);
  if (!location.ok()) {
    return FromArrow(location.status(), ErrorCode::kInvalidArgument, options.remote);
  }
  fl::FlightClientOptions client_options = fl::FlightClientOptions::Defaults();
  // The remote is not trusted: a batch larger than the local channel could never be
  // published, so none larger is buffered either (gRPC refuses it by its length prefix).
  const size_t limit = options.max_message_bytes != 0
                           ? options.max_message_bytes
                           : std::max<size_t>(options.capacity, 1) + (size_t{1} << 20);
  client_options.generic_options.emplace_back(
      "grpc.max_receive_message_length",
      static_cast<int>(std::min<size_t>(limit, std::numeric_limits<int>::max())));
  if (!options.tls_roots_file.empty()) {
    QUIVER_ASSIGN_OR_RETURN(client_options.tls_root_certs,
                            ReadWholeFile(options.tls_roots_file, "TLS roots file"));
  }
  auto client = fl::FlightClient::Connect(*location, client_options);
  if (!client.ok()) {
    return FromArrow(client.status(), ErrorCode::kIoError, "cannot connect to " + remote.location);
  }
  fl::FlightCallOptions call;
  if (!options.token.empty()) call.headers.emplace_back("authorization", "Bearer " + options.token);
  auto reader = (*client)->DoGet(call, fl::Ticket{remote.ticket});
  if (!reader.ok()) {
    return FromArrow(reader.status(), ErrorCode::kIoError,
                     "DoGet '" + remote.channel + "' from " + remote.location);
  }
  auto schema = (*reader)->GetSchema();
  if (!schema.ok()) {
    return FromArrow(schema.status(), ErrorCode::kIoError,
                     "DoGet '" + remote.channel + "' from " + remote.location);
  }
  QUIVER_ASSIGN_OR_RETURN(
      RemotePublisher publisher,
      RemotePublisher::Open(options.to, *schema, options.capacity, options.overflow, kPoll));

  BridgeReport report;
  const auto start = std::chrono::steady_clock::now();
  CancelOnStop cancel(**reader, stop);
  while (options.max_batches == 0 || report.batches < options.max_batches) {
    auto chunk = (*reader)->Next();
    if (!chunk.ok()) {
      if (stop.load()) break;  // our own cancel
      return FromArrow(chunk.status(), ErrorCode::kIoError,
                       "stream of '" + remote.channel + "' from " + remote.location);
    }
    if (chunk->data == nullptr) break;  // the remote publisher is gone and all was sent
    // Under `block` a full local channel holds the remote stream back.
    const Status published = publisher.Publish(chunk->data, [&stop] { return stop.load(); });
    if (stop.load()) break;
    QUIVER_RETURN_IF_ERROR(published);
    ++report.batches;
    report.rows += static_cast<uint64_t>(chunk->data->num_rows());
    report.bytes += static_cast<uint64_t>(arrow::util::TotalBufferSize(*chunk->data));
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(report);
  }
  if (options.max_batches != 0 && report.batches >= options.max_batches) (*reader)->Cancel();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace quiver::flight
