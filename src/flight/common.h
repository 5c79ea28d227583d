// What the Flight server and the bridge share: status conversion both ways, and becoming
// the Arrow publisher of a local channel as a remote producer should. Thread-safe.
#pragma once

#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/status.h"

namespace quiver::flight {

/// A Quiver status as an Arrow status whose code Flight maps to the matching gRPC code
/// (kNotFound: NOT_FOUND, kInvalidArgument/kSchemaMismatch: INVALID_ARGUMENT, kAlreadyExists:
/// ALREADY_EXISTS, kBusy, kPeerGone and kResourceExhausted: UNAVAILABLE, ...). The message keeps the
/// Quiver code name.
arrow::Status ToArrow(const Status& status);

/// An Arrow (or Flight) status as a Quiver status of `code`, prefixed by `context`.
Status FromArrow(const arrow::Status& status, ErrorCode code, std::string_view context);

/// The bytes of a small file (a PEM certificate, key or roots); `what` names it in the
/// kNotFound error.
Result<std::string> ReadWholeFile(const std::string& path, std::string_view what);

/// What remote producers may create on this machine: how many channels, and how many bytes
/// in all, they may hold at once. Thread-safe.
class CreationBudget {
  struct Used {
    std::mutex mu;
    size_t channels = 0;
    size_t bytes = 0;
  };

 public:
  CreationBudget(size_t max_channels, size_t max_bytes)
      : used_(std::make_shared<Used>()), max_channels_(max_channels), max_bytes_(max_bytes) {}

  /// A share of the budget, given back when it is destroyed. Movable, not copyable.
  class Reservation {
   public:
    Reservation(Reservation&& other) noexcept
        : used_(std::move(other.used_)), bytes_(other.bytes_) {}
    Reservation& operator=(Reservation&&) = delete;
    Reservation(const Reservation&) = delete;
    ~Reservation();

   private:
    friend class CreationBudget;
    Reservation(std::shared_ptr<Used> used, size_t bytes) : used_(std::move(used)), bytes_(bytes) {}
    std::shared_ptr<Used> used_;
    size_t bytes_;
  };

  /// One channel of `bytes` for `name`, or kResourceExhausted saying which limit it would pass.
  Result<Reservation> Reserve(std::string_view name, size_t bytes);

 private:
  std::shared_ptr<Used> used_;
  size_t max_channels_;
  size_t max_bytes_;
};

/// Checks a batch that came from the network before any byte of it reaches shared memory:
/// its structure and every value (offsets inside their buffers, valid UTF-8, ...), as Arrow's
/// ValidateFull does. kInvalidArgument naming the first bad column.
Status ValidateRemoteBatch(const arrow::RecordBatch& batch);

/// The publisher of a local channel on behalf of a remote producer (a DoPut, a bridge).
class RemotePublisher {
 public:
  /// Becomes the publisher of local channel `name` for batches of `schema`: opens it and
  /// checks `schema` may follow its schema versions (CheckEvolution), or creates it with
  /// `schema` (capacity, overflow) when it does not exist, within `budget` if given (the
  /// share is held as long as this publisher lives). kSchemaMismatch naming the field,
  /// kInvalidArgument for a channel that carries no Arrow, kBusy when it has a live
  /// publisher, kResourceExhausted past the budget. Loans wait at most `loan_timeout` (then
  /// Publish returns kTimeout and may be retried), so callers can notice cancellation.
  static Result<RemotePublisher> Open(std::string_view name,
                                      const std::shared_ptr<arrow::Schema>& schema, size_t capacity,
                                      OverflowPolicy overflow,
                                      std::chrono::milliseconds loan_timeout,
                                      CreationBudget* budget = nullptr);

  /// Validates `batch` fully (ValidateRemoteBatch: it came from the network), then publishes
  /// it (one copy of its buffers), waiting for room under `block` as long as `stop()` stays
  /// false (asked every loan timeout; once true: the loan's kTimeout). Batches are
  /// conformed to the channel as every publish does (ArrowPublisher::Publish): Flight
  /// clients such as Go's declare every field nullable.
  Status Publish(const std::shared_ptr<arrow::RecordBatch>& batch,
                 const std::function<bool()>& stop);

 private:
  explicit RemotePublisher(ArrowPublisher publisher);
  std::shared_ptr<CreationBudget::Reservation> reservation_;  // the budget share, if we created
  ArrowPublisher publisher_;
};

}  // namespace quiver::flight
