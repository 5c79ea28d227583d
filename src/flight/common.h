// What the Flight server and the bridge share: status conversion both ways, and becoming
// the Arrow publisher of a local channel as a remote producer should. Thread-safe.
#pragma once

#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/status.h"

namespace quiver::flight {

/// A Quiver status as an Arrow status whose code Flight maps to the matching gRPC code
/// (kNotFound: NOT_FOUND, kInvalidArgument/kSchemaMismatch: INVALID_ARGUMENT, kBusy and
/// kAlreadyExists: ALREADY_EXISTS, ...). The message keeps the Quiver code name.
arrow::Status ToArrow(const Status& status);

/// An Arrow (or Flight) status as a Quiver status of `code`, prefixed by `context`.
Status FromArrow(const arrow::Status& status, ErrorCode code, std::string_view context);

/// The bytes of a small file (a PEM certificate, key or roots); `what` names it in the
/// kNotFound error.
Result<std::string> ReadWholeFile(const std::string& path, std::string_view what);

/// The publisher of a local channel on behalf of a remote producer (a DoPut, a bridge).
class RemotePublisher {
 public:
  /// Becomes the publisher of local channel `name` for batches of `schema`: opens it and
  /// checks `schema` may follow its schema versions (CheckEvolution), or creates it with
  /// `schema` (capacity, overflow) when it does not exist. kSchemaMismatch naming the
  /// field, kInvalidArgument for a channel that carries no Arrow, kBusy when it has a live
  /// publisher. Loans wait at most `loan_timeout` (then Publish returns kTimeout and may be
  /// retried), so callers can notice cancellation.
  static Result<RemotePublisher> Open(std::string_view name,
                                      const std::shared_ptr<arrow::Schema>& schema, size_t capacity,
                                      OverflowPolicy overflow,
                                      std::chrono::milliseconds loan_timeout);

  /// Publishes `batch` (one copy of its buffers), waiting for room under `block` as long as
  /// `stop()` stays false (asked every loan timeout; once true: the loan's kTimeout). Flight
  /// clients such as Go's declare every field nullable: a field the channel has
  /// non-nullable is accepted if the batch holds no null in it (as Python's
  /// Publisher.publish does), else kSchemaMismatch.
  Status Publish(const std::shared_ptr<arrow::RecordBatch>& batch,
                 const std::function<bool()>& stop);

 private:
  RemotePublisher(ArrowPublisher publisher, std::shared_ptr<arrow::Schema> relabel,
                  std::vector<int> relaxed);
  ArrowPublisher publisher_;
  std::shared_ptr<arrow::Schema> relabel_;  // the stream's schema with the channel's
                                            // nullability; null: publish batches as they are
  std::vector<int> relaxed_;                // fields that must hold no null
};

}  // namespace quiver::flight
