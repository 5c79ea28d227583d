// The live tail of one channel as a Flight data stream (the body of DoGet).
#pragma once

#include <arrow/flight/server.h>

#include <chrono>
#include <functional>
#include <memory>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::flight {

/// Subscribes to `channel` (an Arrow channel) now with `subscriber` options and streams
/// every batch published from then on (with `from_oldest`, the channel's backlog first),
/// ending when the publisher is gone and everything it published was sent. The
/// IPC payloads' body buffers are the received batches' own buffers, views of the shared
/// mapping: the samples stay held until the transport has written them, so nothing is
/// copied before gRPC and at most its flow-control window is outstanding. The stream's
/// schema is the channel's newest at attach time; batches of later versions are projected
/// onto it by name. `stop` is polled every `poll` while no batch comes: true ends the
/// stream with an error (the call was cancelled, the server is stopping).
Result<std::unique_ptr<arrow::flight::FlightDataStream>> MakeTailStream(
    Channel& channel, const SubscriberOptions& subscriber, std::function<bool()> stop,
    std::chrono::milliseconds poll);

}  // namespace quiver::flight
