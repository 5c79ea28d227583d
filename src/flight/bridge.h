// `quiver bridge`: subscribes a remote channel (a Flight DoGet of `quiver serve`) into a local
// one, so a node on host B reads host A's data through the same local API. RunBridge blocks
// the calling thread until the bridge ends; separate calls share no state.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::flight {

struct BridgeOptions {
  std::string remote;  ///< grpc://HOST:PORT/CHANNEL
  std::string to;      ///< the local channel (created if absent, schema checked if present)
  size_t capacity = size_t{64} << 20;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  std::string token;           ///< sent as a bearer token; empty: none
  std::string tls_roots_file;  ///< PEM roots for a grpc+tls remote; empty: the system's
  uint64_t max_batches = 0;    ///< stop after this many (0: until the remote stream ends)
  /// The largest message accepted from the remote (a batch); 0: `capacity` + 1 MiB, since a
  /// larger batch could never be published into the local channel anyway.
  size_t max_message_bytes = 0;
};

struct BridgeReport {
  uint64_t batches = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;  ///< body bytes published locally
  double seconds = 0;
};

/// Subscribes the remote channel and publishes every batch into the local one, until the
/// remote stream ends (its publisher went away), `max_batches`, or `stop` becomes true
/// (checked at least every `poll`). `progress` (optional) is called after every batch.
Result<BridgeReport> RunBridge(const BridgeOptions& options, const std::atomic<bool>& stop,
                               const std::function<void(const BridgeReport&)>& progress = {});

}  // namespace quiver::flight
