// The control envelope, protocol 2.0.0: one JSON object per line, parsed strictly.
// Pure functions over values; safe to call from any thread.
//
//   {"protocol_v":"2.0.0","msg_id":"<uuid>","type":"CMD_PROCESS",
//    "payload":{"shm_handle":{"segment_id":"frames","offset":0,"size":4096,"format":"raw"}}}
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/status.h"

namespace quiver::control {

/// The version this side speaks. Peers must share the major version (2).
inline constexpr std::string_view kProtocolVersion = "2.0.0";
inline constexpr int kProtocolMajor = 2;
/// The longest line accepted, without its '\n'. Longer lines get LINE_TOO_LONG.
inline constexpr size_t kMaxLineBytes = size_t{64} << 10;

/// RES_ERROR_V2 codes for lines that are not valid envelopes (the other codes are
/// quiver::ErrorCodeName values, e.g. HANDLE_OUT_OF_RANGE).
inline constexpr std::string_view kInvalidEnvelope = "INVALID_ENVELOPE";
inline constexpr std::string_view kUnsupportedVersion = "UNSUPPORTED_VERSION";
inline constexpr std::string_view kUnknownType = "UNKNOWN_TYPE";
inline constexpr std::string_view kLineTooLong = "LINE_TOO_LONG";
/// A valid envelope whose type the receiver does not accept (a RES_* sent as a request).
inline constexpr std::string_view kUnexpectedType = "UNEXPECTED_TYPE";
/// A request handler failed without a Status (it threw).
inline constexpr std::string_view kInternal = "INTERNAL";

enum class MessageType {
  kCmdStreamStart,  ///< negotiate a channel and its segment size
  kCmdProcess,      ///< work on the input the payload's shm_handle names
  kCmdShutdown,     ///< acknowledge with RES_OK, then end the connection
  kCmdAuth,         ///< payload {"token"}: the first line on a TCP connection (see server.h)
  kResOk,           ///< a command succeeded and has no data to point at
  kResDataReady,    ///< data is published; the payload's shm_handle names it
  kResErrorV2,      ///< payload {"code","message","cause"}; cause is the same shape or null
};

/// Returns the wire name, e.g. "CMD_PROCESS".
std::string_view MessageTypeName(MessageType type);
/// Returns the type of a wire name, or nullopt for an unknown one.
std::optional<MessageType> MessageTypeFromName(std::string_view name);
/// True for the RES_* types.
bool IsResponse(MessageType type);
/// Every type's wire name, in declaration order.
std::vector<std::string_view> MessageTypeNames();

enum class ShmFormat { kArrowStream, kTensor, kRaw };
std::string_view ShmFormatName(ShmFormat format);
/// Every format's wire name: "arrow_stream", "tensor", "raw".
std::vector<std::string_view> ShmFormatNames();

/// A RES_ERROR_V2 cause chain deeper than this is refused: a peer cannot make us recurse
/// without bound.
inline constexpr int kMaxCauseDepth = 32;

/// Names `size` bytes at `offset` of the data area of channel `segment_id`. Parsing checks
/// only its shape; ResolveHandle (handle.h) checks it against the real segment.
struct ShmHandle {
  std::string segment_id;
  uint64_t offset = 0;
  uint64_t size = 0;
  ShmFormat format = ShmFormat::kRaw;

  bool operator==(const ShmHandle&) const = default;
};

/// One message. `msg_id` is empty only in a RES_ERROR_V2 answering a line whose id could
/// not be read (it is then null on the wire).
struct Envelope {
  std::string protocol_v = std::string(kProtocolVersion);
  std::string msg_id;
  MessageType type = MessageType::kResOk;
  /// Always an object. Unknown fields are kept and passed on.
  nlohmann::json payload = nlohmann::json::object();
  /// The parsed payload["shm_handle"], if present. Authoritative: Serialize writes it back.
  std::optional<ShmHandle> shm_handle;
};

/// Why a line is not a valid envelope.
struct EnvelopeError {
  std::string code;     ///< kInvalidEnvelope, kUnsupportedVersion, ..., HANDLE_OUT_OF_RANGE
  std::string message;  ///< what is wrong, naming the field
  std::string msg_id;   ///< the line's msg_id if it was a readable UUID, else empty
};

/// The outcome of ParseEnvelope: an envelope, or why the line is not one.
struct ParseOutcome {
  std::optional<Envelope> envelope;
  EnvelopeError error;  ///< meaningful only when !ok()
  bool ok() const { return envelope.has_value(); }
};

/// Parses one line (without its '\n'; one trailing '\r' is tolerated). Never throws.
ParseOutcome ParseEnvelope(std::string_view line);

/// Reads `value` (a payload's "shm_handle", as json::parse makes it: non-negative integers
/// unsigned) into `handle` by the rules ParseEnvelope applies to it. Returns the error
/// ParseEnvelope would answer (msg_id empty), or nullopt. For callers holding a payload that
/// did not come through ParseEnvelope (the Python package).
std::optional<EnvelopeError> ParseShmHandle(const nlohmann::json& value, ShmHandle* handle);

/// Returns the single-line JSON of `envelope` (no '\n'). Never throws: invalid UTF-8 in
/// strings is replaced by U+FFFD.
std::string Serialize(const Envelope& envelope);

/// Returns a fresh random (version 4) UUID in canonical lower-case form.
std::string NewMsgId();
/// True for a canonical 8-4-4-4-12 hexadecimal UUID (either case).
bool IsUuid(std::string_view text);

/// Returns an envelope of `type` with a fresh msg_id.
Envelope MakeEnvelope(MessageType type, nlohmann::json payload = nlohmann::json::object());

/// Returns RES_ERROR_V2 for `status` (must not be OK): code ErrorCodeName, its message, and
/// status.cause() as the nested cause chain. `msg_id` may be empty (null on the wire).
Envelope MakeError(std::string_view msg_id, const Status& status);
/// Returns RES_ERROR_V2 for a line that was not a valid envelope.
Envelope MakeError(const EnvelopeError& error);

/// Returns the RES_ERROR_V2 payload as a Status chain: the outermost code maps back to an
/// ErrorCode where one has that name, else kInvalidArgument with "CODE: message".
Status StatusFromError(const Envelope& error);

}  // namespace quiver::control
