#include "flight/common.h"

#include <arrow/array.h>
#include <arrow/flight/types.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "discovery/discovery.h"

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
      return arrow::Status::AlreadyExists(text);
    case ErrorCode::kBusy:      // the role is taken for now: retry later
    case ErrorCode::kPeerGone:  // the process on the other side is gone (a worker died)
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unavailable, text);
    case ErrorCode::kPermissionDenied:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unauthorized, text);
    case ErrorCode::kTimeout:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::TimedOut, text);
    // A Flight server cannot send gRPC's RESOURCE_EXHAUSTED (Flight maps no Arrow status to
    // it); a limit that frees up when other calls end is UNAVAILABLE: retry later.
    case ErrorCode::kResourceExhausted:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unavailable, text);
    case ErrorCode::kUnauthenticated:
      return arrow::flight::MakeFlightError(arrow::flight::FlightStatusCode::Unauthenticated, text);
    default:
      return arrow::Status::IOError(text);
  }
}

Status FromArrow(const arrow::Status& status, ErrorCode code, std::string_view context) {
  if (status.ok()) return Status();
  return Status(code, std::string(context) + ": " + status.ToString());
}

Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound(std::string(what) + " '" + path + "' cannot be read");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

CreationBudget::Reservation::~Reservation() {
  if (used_ == nullptr) return;
  std::lock_guard lock(used_->mu);
  used_->channels -= 1;
  used_->bytes -= bytes_;
}

Result<CreationBudget::Reservation> CreationBudget::Reserve(std::string_view name, size_t bytes) {
  std::lock_guard lock(used_->mu);
  auto refuse = [&](const std::string& why) {
    return Status::ResourceExhausted(
        "cannot create channel '" + std::string(name) + "' for this stream: " + why +
        "; wait for other streams to end, or raise the limit (quiver serve "
        "--put-max-channels / --put-max-bytes)");
  };
  if (used_->channels + 1 > max_channels_) {
    return refuse("streams hold " + std::to_string(used_->channels) + " channels, the limit");
  }
  if (bytes > max_bytes_ || used_->bytes > max_bytes_ - bytes) {
    return refuse("streams hold " + std::to_string(used_->bytes) + " bytes of channels and " +
                  std::to_string(bytes) + " more would pass the limit of " +
                  std::to_string(max_bytes_));
  }
  used_->channels += 1;
  used_->bytes += bytes;
  return Reservation(used_, bytes);
}

Status ValidateRemoteBatch(const arrow::RecordBatch& batch) {
  if (arrow::Status st = batch.Validate(); !st.ok()) {
    return Status::InvalidArgument("the batch is not valid Arrow data: " + st.message());
  }
  for (int i = 0; i < batch.num_columns(); ++i) {
    if (arrow::Status st = batch.column(i)->ValidateFull(); !st.ok()) {
      return Status::InvalidArgument(
          "column '" + batch.schema()->field(i)->name() +
          "' of the batch is not valid Arrow data (refused before it reached shared "
          "memory): " +
          st.message());
    }
  }
  return Status::OK();
}

Result<RemotePublisher> RemotePublisher::Open(std::string_view name,
                                              const std::shared_ptr<arrow::Schema>& schema,
                                              size_t capacity, OverflowPolicy overflow,
                                              std::chrono::milliseconds loan_timeout,
                                              CreationBudget* budget) {
  std::optional<CreationBudget::Reservation> reservation;
  Result<Channel> channel = discovery::OpenChannel(name);
  // A channel whose publisher died takes no successor: a remote producer restarting makes
  // it anew, as a local one would (Channel::Create replaces it; its subscribers follow).
  if (channel.ok() && channel->publisher_died()) {
    channel = Status::NotFound("its publisher died");
  }
  if (!channel.ok() && channel.status().code() == ErrorCode::kNotFound) {
    if (budget != nullptr) {
      QUIVER_ASSIGN_OR_RETURN(CreationBudget::Reservation share, budget->Reserve(name, capacity));
      reservation.emplace(std::move(share));
    }
    channel = CreateArrowChannel(name, schema, {.capacity = capacity, .overflow = overflow});
    // Another producer created it between our Open and Create: use theirs.
    if (!channel.ok() && channel.status().code() == ErrorCode::kAlreadyExists) {
      reservation.reset();
      channel = Channel::Open(name);
    }
  }
  if (!channel.ok()) return channel.status();
  if (channel->type_versions() == 0) {
    return Status::InvalidArgument("channel '" + std::string(name) +
                                   "' carries no Arrow schema (raw samples)");
  }
  QUIVER_RETURN_IF_ERROR(CheckSchemaFollows(*channel, *schema));
  Result<ArrowPublisher> publisher = ArrowPublisher::Make(*channel, {.loan_timeout = loan_timeout});
  if (!publisher.ok() && publisher.status().code() == ErrorCode::kBusy) {
    return Status::Busy("channel '" + std::string(name) + "' already has a live publisher");
  }
  if (!publisher.ok()) return publisher.status();
  RemotePublisher remote(std::move(*publisher));
  if (reservation) {
    remote.reservation_ = std::make_shared<CreationBudget::Reservation>(std::move(*reservation));
  }
  return remote;
}

RemotePublisher::RemotePublisher(ArrowPublisher publisher) : publisher_(std::move(publisher)) {}

Status RemotePublisher::Publish(const std::shared_ptr<arrow::RecordBatch>& batch,
                                const std::function<bool()>& stop) {
  QUIVER_RETURN_IF_ERROR(ValidateRemoteBatch(*batch));
  for (;;) {  // one copy into a loan; under `block` the loan waits for the subscribers
    const Status published = publisher_.Publish(*batch);
    if (published.code() != ErrorCode::kTimeout || stop()) return published;
  }
}

}  // namespace quiver::flight
