#include "flight/common.h"

#include <arrow/flight/types.h>
#include <arrow/type.h>

#include <string>
#include <vector>

#include "payload/schema_evolution.h"

namespace quiver::flight {

arrow::Status ToArrow(const Status& status) {
  if (status.ok()) return arrow::Status::OK();
  const std::string text = status.ToString();
  switch (status.code()) {
    case ErrorCode::kNotFound:
      return arrow::Status::KeyError(text);
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kSchemaMismatch:
    case ErrorCode::kCapacityExceeded:
    case ErrorCode::kHandleOutOfRange:
      return arrow::Status::Invalid(text);
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kBusy:
      return arrow::Status::AlreadyExists(text);
    case ErrorCode::kPermissionDenied:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unauthorized, text);
    case ErrorCode::kTimeout:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::TimedOut, text);
    default:
      return arrow::Status::IOError(text);
  }
}

Status FromArrow(const arrow::Status& status, ErrorCode code, std::string_view context) {
  if (status.ok()) return Status();
  return Status(code, std::string(context) + ": " + status.ToString());
}

Result<ArrowPublisher> PublishInto(std::string_view name,
                                   const std::shared_ptr<arrow::Schema>& schema, size_t capacity,
                                   OverflowPolicy overflow,
                                   std::chrono::milliseconds loan_timeout) {
  Result<Channel> channel = Channel::Open(name);
  if (!channel.ok() && channel.status().code() == ErrorCode::kNotFound) {
    channel = CreateArrowChannel(name, schema, {.capacity = capacity, .overflow = overflow});
    // Another producer created it between our Open and Create: use theirs.
    if (!channel.ok() && channel.status().code() == ErrorCode::kAlreadyExists) {
      channel = Channel::Open(name);
    }
  }
  if (!channel.ok()) return channel.status();
  const uint32_t versions = channel->type_versions();
  if (versions == 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "channel '" + std::string(name) + "' carries no Arrow schema (raw samples)");
  }
  std::vector<std::shared_ptr<arrow::Schema>> known;
  for (uint32_t v = 1; v <= versions; ++v) {
    QUIVER_ASSIGN_OR_RETURN(auto version, ChannelSchema(*channel, v));
    known.push_back(std::move(version));
  }
  QUIVER_RETURN_IF_ERROR(payload::CheckEvolution(known, *schema));
  Result<ArrowPublisher> publisher = ArrowPublisher::Make(*channel, {.loan_timeout = loan_timeout});
  if (!publisher.ok() && publisher.status().code() == ErrorCode::kBusy) {
    return Status(ErrorCode::kBusy,
                  "channel '" + std::string(name) + "' already has a live publisher");
  }
  return publisher;
}

}  // namespace quiver::flight
