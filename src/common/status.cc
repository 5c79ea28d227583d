#include "quiver/status.h"

#include <cstring>
#include <iterator>

namespace quiver {

namespace {

// The codes' names on the wire, their Python classes (with the earlier names kept as
// aliases) and the built-in exceptions they also are. Order: ErrorCode's.
constexpr ErrorCodeInfo kErrorCodes[] = {
    {ErrorCode::kInvalidArgument, "INVALID_ARGUMENT", "InvalidArgumentError", "InvalidArgument",
     "ValueError", "A value that can never work."},
    {ErrorCode::kNotFound, "NOT_FOUND", "NotFoundError", "NotFound", "LookupError",
     "The channel (or what was named) does not exist."},
    {ErrorCode::kAlreadyExists, "ALREADY_EXISTS", "AlreadyExistsError", "AlreadyExists", "",
     "A live channel of that name exists."},
    {ErrorCode::kBusy, "BUSY", "BusyError", "Busy", "",
     "The role is taken (a second publisher, no free slot)."},
    {ErrorCode::kCapacityExceeded, "CAPACITY_EXCEEDED", "CapacityExceededError", "CapacityExceeded",
     "ValueError", "Larger than the channel (or its memory) can ever hold."},
    {ErrorCode::kChannelFull, "CHANNEL_FULL", "ChannelFullError", "ChannelFull", "",
     "No room now and the call does not wait."},
    {ErrorCode::kTimeout, "TIMEOUT", "TimeoutError", "Timeout", "TimeoutError",
     "Nothing arrived (or no room came) within the timeout."},
    {ErrorCode::kPeerGone, "PEER_DIED", "PeerGoneError", "PeerGone", "",
     "The publisher is gone and everything it sent was received."},
    {ErrorCode::kShmCorruption, "SHM_CORRUPTION", "ShmCorruptionError", "ShmCorruption", "",
     "Shared bytes failed validation."},
    {ErrorCode::kPermissionDenied, "PERMISSION_DENIED", "PermissionDeniedError", "PermissionDenied",
     "PermissionError", "Not ours, not private, or not exposed."},
    {ErrorCode::kIoError, "IO_ERROR", "IoError", "IoError", "OSError", "A system call failed."},
    {ErrorCode::kSchemaMismatch, "SCHEMA_MISMATCH", "SchemaMismatchError", "SchemaMismatch", "",
     "An incompatible schema (names the field and both types)."},
    {ErrorCode::kHandleOutOfRange, "HANDLE_OUT_OF_RANGE", "HandleOutOfRangeError",
     "HandleOutOfRange", "", "A handle outside its segment."},
    {ErrorCode::kResourceExhausted, "RESOURCE_EXHAUSTED", "ResourceExhaustedError",
     "ResourceExhausted", "",
     "A limit that protects the process was reached (a size, a count, a total)."},
    {ErrorCode::kUnauthenticated, "UNAUTHENTICATED", "UnauthenticatedError", "Unauthenticated",
     "PermissionError", "The caller did not prove who it is (no token, or a wrong one)."},
    {ErrorCode::kEvicted, "EVICTED", "EvictedError", "Evicted", "",
     "The channel's stall policy detached this subscriber: it kept the channel full."},
    {ErrorCode::kStaleHandle, "STALE_HANDLE", "StaleHandleError", "StaleHandle", "",
     "A handle whose sample is gone: released, replaced, or never published."},
};
static_assert(std::size(kErrorCodes) == static_cast<size_t>(ErrorCode::kStaleHandle));

}  // namespace

std::span<const ErrorCodeInfo> ErrorCodes() { return kErrorCodes; }

std::string_view ErrorCodeName(ErrorCode code) {
  if (code == ErrorCode::kOk) return "OK";
  const auto index = static_cast<size_t>(code) - 1;
  return index < std::size(kErrorCodes) ? kErrorCodes[index].name : "UNKNOWN";
}

Status::Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

Status Status::FromErrno(std::string_view what, int err) {
  return IoError(std::string(what) + ": " + std::strerror(err));
}

Status Status::InvalidArgument(std::string m) {
  return Status(ErrorCode::kInvalidArgument, std::move(m));
}
Status Status::NotFound(std::string m) { return Status(ErrorCode::kNotFound, std::move(m)); }
Status Status::AlreadyExists(std::string m) {
  return Status(ErrorCode::kAlreadyExists, std::move(m));
}
Status Status::Busy(std::string m) { return Status(ErrorCode::kBusy, std::move(m)); }
Status Status::CapacityExceeded(std::string m) {
  return Status(ErrorCode::kCapacityExceeded, std::move(m));
}
Status Status::ChannelFull(std::string m) { return Status(ErrorCode::kChannelFull, std::move(m)); }
Status Status::Timeout(std::string m) { return Status(ErrorCode::kTimeout, std::move(m)); }
Status Status::PeerGone(std::string m) { return Status(ErrorCode::kPeerGone, std::move(m)); }
Status Status::ShmCorruption(std::string m) {
  return Status(ErrorCode::kShmCorruption, std::move(m));
}
Status Status::PermissionDenied(std::string m) {
  return Status(ErrorCode::kPermissionDenied, std::move(m));
}
Status Status::IoError(std::string m) { return Status(ErrorCode::kIoError, std::move(m)); }
Status Status::SchemaMismatch(std::string m) {
  return Status(ErrorCode::kSchemaMismatch, std::move(m));
}
Status Status::HandleOutOfRange(std::string m) {
  return Status(ErrorCode::kHandleOutOfRange, std::move(m));
}
Status Status::ResourceExhausted(std::string m) {
  return Status(ErrorCode::kResourceExhausted, std::move(m));
}
Status Status::Unauthenticated(std::string m) {
  return Status(ErrorCode::kUnauthenticated, std::move(m));
}
Status Status::Evicted(std::string m) { return Status(ErrorCode::kEvicted, std::move(m)); }
Status Status::StaleHandle(std::string m) { return Status(ErrorCode::kStaleHandle, std::move(m)); }

Status Status::Wrap(ErrorCode code, std::string message) const {
  Status outer(code, std::move(message));
  outer.cause_ = std::make_shared<const Status>(*this);
  return outer;
}

std::string Status::ToString() const {
  std::string out(ErrorCodeName(code_));
  if (!message_.empty()) out += ": " + message_;
  for (const Status* c = cause(); c != nullptr; c = c->cause()) {
    out += " (caused by ";
    out += ErrorCodeName(c->code());
    if (!c->message().empty()) out += ": " + c->message();
    out += ")";
  }
  return out;
}

}  // namespace quiver
