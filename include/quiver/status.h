// Status and Result<T>: how every fallible Quiver call reports failure.
// Value types; safe to copy between threads. No exceptions cross the library boundary.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace quiver {

/// Error codes. Stable: the control plane (RES_ERROR_V2) and the Python exceptions map them.
enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,   // a caller passed a value that can never work (bad name, 0-byte loan)
  kNotFound,          // the channel (segment) does not exist
  kAlreadyExists,     // a live channel of that name exists
  kBusy,              // the role is taken: a second publisher, no free subscriber slot
  kCapacityExceeded,  // a loan larger than the channel can ever hold
  kChannelFull,       // no space now and the caller asked not to wait
  kTimeout,           // nothing arrived (or no space freed) within the deadline
  kPeerGone,          // the publisher is gone and every published sample was received
  kShmCorruption,     // shared bytes that fail validation (bad header, offset out of bounds)
  kPermissionDenied,  // owner or mode of a segment is not ours
  kIoError,           // a system call failed; the message carries errno's text
  kSchemaMismatch,
  kHandleOutOfRange,
  kResourceExhausted,  // a limit that protects the process was reached (size, count, bytes)
  kUnauthenticated,    // the caller did not prove who it is (no or a wrong token)
  kEvicted,            // the stall policy detached this subscriber (it kept the channel full)
  kStaleHandle,        // a handle whose sample is gone (released, replaced, never published)
};

/// Returns the stable upper-case name of `code`, e.g. "SHM_CORRUPTION".
std::string_view ErrorCodeName(ErrorCode code);

/// One row of the error table: everything the control plane and the Python package say of
/// an error code. The one place these are written (Python builds its exceptions from it).
struct ErrorCodeInfo {
  ErrorCode code;
  std::string_view name;            ///< on the wire (RES_ERROR_V2 code), e.g. "NOT_FOUND"
  std::string_view python_class;    ///< e.g. "NotFoundError"
  std::string_view python_alias;    ///< the class's earlier name, kept, e.g. "NotFound"
  std::string_view python_builtin;  ///< a built-in exception it also is, or ""
  std::string_view doc;
};

/// Every error code but kOk, in code order.
std::span<const ErrorCodeInfo> ErrorCodes();

/// The outcome of an operation: OK, or a code with a message and an optional cause.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message);

  static Status OK() { return {}; }
  /// An I/O error from a failed system call: "<what>: <strerror(err)>".
  static Status FromErrno(std::string_view what, int err);

  // A status of each code, as Arrow's Status::Invalid(...): Status::NotFound("...").
  static Status InvalidArgument(std::string message);
  static Status NotFound(std::string message);
  static Status AlreadyExists(std::string message);
  static Status Busy(std::string message);
  static Status CapacityExceeded(std::string message);
  static Status ChannelFull(std::string message);
  static Status Timeout(std::string message);
  static Status PeerGone(std::string message);
  static Status ShmCorruption(std::string message);
  static Status PermissionDenied(std::string message);
  static Status IoError(std::string message);
  static Status SchemaMismatch(std::string message);
  static Status HandleOutOfRange(std::string message);
  static Status ResourceExhausted(std::string message);
  static Status Unauthenticated(std::string message);
  static Status Evicted(std::string message);
  static Status StaleHandle(std::string message);

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// The status this one was caused by, or nullptr.
  const Status* cause() const { return cause_.get(); }

  /// Returns a new status of `code` and `message` whose cause is this one.
  Status Wrap(ErrorCode code, std::string message) const;

  /// "CODE: message (caused by CODE: message ...)".
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::shared_ptr<const Status> cause_;
};

/// A value or the Status of why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  /// The value, or `fallback` if there is none.
  T ValueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace quiver

#define QUIVER_CONCAT_INNER(a, b) a##b
#define QUIVER_CONCAT(a, b) QUIVER_CONCAT_INNER(a, b)

/// Returns early with the status of `expr` if it is not OK.
#define QUIVER_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::quiver::Status _quiver_st = (expr);    \
    if (!_quiver_st.ok()) return _quiver_st; \
  } while (false)

// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` is a declaration, it cannot be wrapped.
#define QUIVER_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

/// `QUIVER_ASSIGN_OR_RETURN(auto x, MakeX());` assigns the value or returns the error.
#define QUIVER_ASSIGN_OR_RETURN(lhs, rexpr) \
  QUIVER_ASSIGN_OR_RETURN_IMPL(QUIVER_CONCAT(_quiver_r_, __LINE__), lhs, rexpr)
