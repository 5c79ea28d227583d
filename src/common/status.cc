#include "quiver/status.h"

#include <cstring>

namespace quiver {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case ErrorCode::kNotFound:
      return "NOT_FOUND";
    case ErrorCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case ErrorCode::kBusy:
      return "BUSY";
    case ErrorCode::kCapacityExceeded:
      return "CAPACITY_EXCEEDED";
    case ErrorCode::kChannelFull:
      return "CHANNEL_FULL";
    case ErrorCode::kTimeout:
      return "TIMEOUT";
    case ErrorCode::kPeerGone:
      return "PEER_DIED";
    case ErrorCode::kShmCorruption:
      return "SHM_CORRUPTION";
    case ErrorCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case ErrorCode::kIoError:
      return "IO_ERROR";
    case ErrorCode::kSchemaMismatch:
      return "SCHEMA_MISMATCH";
    case ErrorCode::kHandleOutOfRange:
      return "HANDLE_OUT_OF_RANGE";
    case ErrorCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case ErrorCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    case ErrorCode::kEvicted:
      return "EVICTED";
  }
  return "UNKNOWN";
}

Status::Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

Status Status::FromErrno(std::string_view what, int err) {
  return {ErrorCode::kIoError, std::string(what) + ": " + std::strerror(err)};
}

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
