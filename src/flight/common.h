// What the Flight server and the bridge share: status conversion both ways, and becoming
// the Arrow publisher of a local channel as a remote producer should. Thread-safe.
#pragma once

#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <chrono>
#include <memory>
#include <string_view>

#include "quiver/arrow.h"
#include "quiver/status.h"

namespace quiver::flight {

/// A Quiver status as an Arrow status whose code Flight maps to the matching gRPC code
/// (kNotFound: NOT_FOUND, kInvalidArgument/kSchemaMismatch: INVALID_ARGUMENT, kBusy and
/// kAlreadyExists: ALREADY_EXISTS, ...). The message keeps the Quiver code name.
arrow::Status ToArrow(const Status& status);

/// An Arrow (or Flight) status as a Quiver status of `code`, prefixed by `context`.
Status FromArrow(const arrow::Status& status, ErrorCode code, std::string_view context);

/// Becomes the publisher of local channel `name` for batches of `schema`: opens it and
/// checks `schema` may follow its schema versions (CheckEvolution), or creates it with
/// `schema` (capacity, overflow) when it does not exist. kSchemaMismatch naming the field,
/// kInvalidArgument for a channel that carries no Arrow, kBusy when it has a live publisher.
/// The publisher's loans wait at most `loan_timeout`, so callers can notice cancellation.
Result<ArrowPublisher> PublishInto(std::string_view name,
                                   const std::shared_ptr<arrow::Schema>& schema, size_t capacity,
                                   OverflowPolicy overflow, std::chrono::milliseconds loan_timeout);

}  // namespace quiver::flight
