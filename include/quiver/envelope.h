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

/// The built-in message types. Their names are reserved; an application adds its own
/// commands and results under any other CMD_* / RES_* name (ValidateTypeName), e.g.
/// CMD_EXTRACT_EVIDENCE, and a worker answers a command it has no handler for with
/// RES_ERROR_V2 UNKNOWN_TYPE.
inline constexpr std::string_view kCmdStreamStart = "CMD_STREAM_START";  ///< negotiate a channel
inline constexpr std::string_view kCmdProcess = "CMD_PROCESS";    ///< work on the payload's handle
inline constexpr std::string_view kCmdShutdown = "CMD_SHUTDOWN";  ///< RES_OK, then end
inline constexpr std::string_view kCmdAuth = "CMD_AUTH";  ///< {"token"}: first line over TCP
inline constexpr std::string_view kResOk = "RES_OK";      ///< done, no data to point at
inline constexpr std::string_view kResDataReady = "RES_DATA_READY";  ///< shm_handle names data
/// payload {"code","message","cause"}; cause is the same shape or null.
inline constexpr std::string_view kResErrorV2 = "RES_ERROR_V2";

/// The longest type name.
inline constexpr size_t kMaxTypeName = 64;

/// The built-in types' names, in the order above.
std::vector<std::string_view> BuiltinTypeNames();
/// True for a built-in type's name.
bool IsBuiltinType(std::string_view type);
/// OK for a type name: CMD_ or RES_, then upper-case letters, digits and '_', at most
/// kMaxTypeName characters in all. kInvalidArgument saying so otherwise.
Status ValidateTypeName(std::string_view type);
/// True for a RES_* name.
bool IsResponse(std::string_view type);

enum class ShmFormat { kArrowStream, kTensor, kRaw };
std::string_view ShmFormatName(ShmFormat format);
/// Every format's wire name: "arrow_stream", "tensor", "raw".
std::vector<std::string_view> ShmFormatNames();
/// The format a name ShmFormatName gives, or nullopt.
std::optional<ShmFormat> ShmFormatFromName(std::string_view name);

/// A RES_ERROR_V2 cause chain deeper than this is refused: a peer cannot make us recurse
/// without bound.
inline constexpr int kMaxCauseDepth = 32;

/// Names `size` bytes at `offset` of the data area of channel `segment_id`. A safe handle
/// also names the channel's generation and the sample's sequence: resolving it
/// (HandleResolver, quiver/control.h) holds that very sample or fails STALE_HANDLE. Parsing
/// checks only its shape.
struct ShmHandle {
  std::string segment_id;
  uint64_t offset = 0;
  uint64_t size = 0;
  ShmFormat format = ShmFormat::kRaw;
  std::optional<uint64_t> generation;  ///< Channel::generation() of the channel meant
  std::optional<uint64_t> sequence;    ///< the sample's publish sequence

  bool operator==(const ShmHandle&) const = default;
};

/// One message. `msg_id` is empty only in a RES_ERROR_V2 answering a line whose id could
/// not be read (it is then null on the wire).
struct Envelope {
  std::string protocol_v = std::string(kProtocolVersion);
  std::string msg_id;
  std::string type = std::string(kResOk);  ///< a valid type name (ValidateTypeName)
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
Envelope MakeEnvelope(std::string_view type, nlohmann::json payload = nlohmann::json::object());

/// Returns RES_ERROR_V2 for `status` (must not be OK): code ErrorCodeName, its message, and
/// status.cause() as the nested cause chain. `msg_id` may be empty (null on the wire).
Envelope MakeError(std::string_view msg_id, const Status& status);
/// Returns RES_ERROR_V2 for a line that was not a valid envelope.
Envelope MakeError(const EnvelopeError& error);

/// Returns the RES_ERROR_V2 payload as a Status chain: the outermost code maps back to an
/// ErrorCode where one has that name, else kInvalidArgument with "CODE: message".
Status StatusFromError(const Envelope& error);

}  // namespace quiver::control
