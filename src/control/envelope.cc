#include "quiver/envelope.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

namespace quiver::control {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 7> kBuiltinTypes = {
    kCmdStreamStart, kCmdProcess, kCmdShutdown, kCmdAuth, kResOk, kResDataReady, kResErrorV2};

constexpr std::array<std::pair<ShmFormat, std::string_view>, 3> kFormatNames = {{
    {ShmFormat::kArrowStream, "arrow_stream"},
    {ShmFormat::kTensor, "tensor"},
    {ShmFormat::kRaw, "raw"},
}};

// JSON nested deeper than this is refused before it is parsed. The parser is iterative, but
// copying (the payload into the Envelope) and printing (Serialize) recurse once per level, so
// a 64 KiB line of '[' would overflow the stack.
constexpr int kMaxJsonDepth = 128;

// True if `line` opens more than kMaxJsonDepth arrays and objects at once (strings skipped).
bool NestedTooDeep(std::string_view line) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// A value from the peer, quoted in an error message: its JSON, cut to kMaxQuote characters, so
// that the RES_ERROR_V2 answering a bad line always fits in one line (kMaxLineBytes).
constexpr size_t kMaxQuote = 80;
std::string Quote(const json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxQuote) text.resize(kMaxQuote);
  return text;
}

ParseOutcome Fail(std::string_view code, std::string message, std::string msg_id = {}) {
  ParseOutcome out;
  out.error = {std::string(code), std::move(message), std::move(msg_id)};
  return out;
}

std::string_view JsonTypeName(const json& value) { return value.type_name(); }

// "2.0.0" → 2; nullopt unless it is MAJOR.MINOR.PATCH of decimal digits.
std::optional<int> MajorVersion(std::string_view version) {
  int parts[3] = {0, 0, 0};
  const char* p = version.data();
  const char* end = p + version.size();
  for (int i = 0; i < 3; ++i) {
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    auto [next, ec] = std::from_chars(p, end, parts[i]);
    if (ec != std::errc()) return std::nullopt;
    p = next;
    if (i < 2) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
  }
  if (p != end) return std::nullopt;
  return parts[0];
}

// Reads a non-negative integer field of shm_handle. Negative or beyond uint64 is
// HANDLE_OUT_OF_RANGE (the number names no place in any segment); any other non-integer is
// INVALID_ENVELOPE.
std::optional<EnvelopeError> ReadUint(const json& handle, const char* field, uint64_t* out) {
  auto it = handle.find(field);
  const std::string where = std::string("shm_handle.") + field;
  if (it == handle.end())
    return EnvelopeError{std::string(kInvalidEnvelope), where + " is missing"};
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return std::nullopt;
  }
  const std::string out_of_range(ErrorCodeName(ErrorCode::kHandleOutOfRange));
  if (it->is_number_integer()) {  // signed, so negative (non-negative ones are unsigned)
    return EnvelopeError{out_of_range, where + " is negative (" + it->dump() + ")"};
  }
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (std::isfinite(v) && (v < 0 || v >= 18446744073709551616.0)) {
      return EnvelopeError{out_of_range, where + " " + it->dump() + " is outside 0..2^64-1"};
    }
    return EnvelopeError{std::string(kInvalidEnvelope),
                         where + " must be an integer, got " + it->dump()};
  }
  return EnvelopeError{std::string(kInvalidEnvelope),
                       where + " must be an integer, got " + std::string(JsonTypeName(*it))};
}

// Checks the shape of a RES_ERROR_V2 payload: {"code":str,"message":str,"cause":same|null}.
std::optional<std::string> CheckErrorPayload(const json& payload, int depth) {
  if (depth > kMaxCauseDepth) return "error cause chain is deeper than 32";
  if (!payload.is_object()) return "error cause must be an object or null";
  auto code = payload.find("code");
  auto message = payload.find("message");
  if (code == payload.end() || !code->is_string() || code->get_ref<const std::string&>().empty()) {
    return "RES_ERROR_V2 payload.code must be a non-empty string";
  }
  if (message == payload.end() || !message->is_string()) {
    return "RES_ERROR_V2 payload.message must be a string";
  }
  auto cause = payload.find("cause");
  if (cause == payload.end() || cause->is_null()) return std::nullopt;
  return CheckErrorPayload(*cause, depth + 1);
}

json HandleToJson(const ShmHandle& h) {
  json j = {{"segment_id", h.segment_id},
            {"offset", h.offset},
            {"size", h.size},
            {"format", ShmFormatName(h.format)}};
  if (h.generation && h.sequence) {
    j["generation"] = *h.generation;
    j["sequence"] = *h.sequence;
  }
  return j;
}

json StatusToJson(const Status& status) {
  // Built iteratively from the innermost cause outwards, so a long chain cannot recurse.
  std::vector<const Status*> chain;
  for (const Status* s = &status; s != nullptr; s = s->cause()) chain.push_back(s);
  json node = nullptr;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    node = json{{"code", ErrorCodeName((*it)->code())},
                {"message", (*it)->message()},
                {"cause", std::move(node)}};
  }
  return node;
}

ParseOutcome ParseJson(const json& doc) {
  if (!doc.is_object()) {
    return Fail(kInvalidEnvelope,
                "an envelope must be a JSON object, got " + std::string(JsonTypeName(doc)));
  }
  // Read the id first (without judging it yet), so later errors can answer it.
  std::string msg_id;
  auto id = doc.find("msg_id");
  if (id != doc.end() && id->is_string() && IsUuid(id->get_ref<const std::string&>())) {
    msg_id = id->get<std::string>();
  }

  auto version = doc.find("protocol_v");
  if (version == doc.end()) return Fail(kInvalidEnvelope, "protocol_v is missing", msg_id);
  if (!version->is_string()) {
    return Fail(kInvalidEnvelope,
                "protocol_v must be a string, got " + std::string(JsonTypeName(*version)), msg_id);
  }
  const std::string& v = version->get_ref<const std::string&>();
  const std::optional<int> major = MajorVersion(v);
  if (!major) {
    return Fail(kUnsupportedVersion, "protocol_v " + Quote(*version) + " is not MAJOR.MINOR.PATCH",
                msg_id);
  }
  if (*major != kProtocolMajor) {
    return Fail(kUnsupportedVersion,
                "protocol_v " + Quote(*version) + " is not supported (this side speaks " +
                    std::string(kProtocolVersion) + ")",
                msg_id);
  }

  if (id == doc.end()) return Fail(kInvalidEnvelope, "msg_id is missing");
  // null is allowed in exactly one place: an error answering a line whose id was unreadable.
  auto type = doc.find("type");
  const bool null_id_allowed = id->is_null() && type != doc.end() && *type == "RES_ERROR_V2";
  if (msg_id.empty() && !null_id_allowed) {
    return Fail(kInvalidEnvelope, "msg_id must be a UUID string, got " + Quote(*id));
  }

  if (type == doc.end()) return Fail(kInvalidEnvelope, "type is missing", msg_id);
  if (!type->is_string()) {
    return Fail(kInvalidEnvelope, "type must be a string, got " + std::string(JsonTypeName(*type)),
                msg_id);
  }
  const std::string& t = type->get_ref<const std::string&>();
  if (!ValidateTypeName(t).ok()) {
    return Fail(
        kUnknownType,
        "type " + Quote(*type) +
            " is not a type name (CMD_ or RES_, then A-Z, 0-9 and _, at most 64 characters)",
        msg_id);
  }

  auto payload = doc.find("payload");
  if (payload == doc.end()) return Fail(kInvalidEnvelope, "payload is missing", msg_id);
  if (!payload->is_object()) {
    return Fail(kInvalidEnvelope,
                "payload must be an object, got " + std::string(JsonTypeName(*payload)), msg_id);
  }

  Envelope envelope;
  envelope.protocol_v = v;
  envelope.msg_id = msg_id;
  envelope.type = t;
  auto handle = payload->find("shm_handle");
  if (handle != payload->end()) {
    ShmHandle parsed;
    if (auto e = ParseShmHandle(*handle, &parsed)) return Fail(e->code, e->message, msg_id);
    envelope.shm_handle = std::move(parsed);
  } else if (t == kCmdProcess || t == kResDataReady) {
    return Fail(kInvalidEnvelope, t + " needs payload.shm_handle", msg_id);
  }
  if (t == kResErrorV2) {
    if (auto e = CheckErrorPayload(*payload, 0)) return Fail(kInvalidEnvelope, *e, msg_id);
  }
  envelope.payload = *payload;
  ParseOutcome out;
  out.envelope = std::move(envelope);
  return out;
}

}  // namespace

std::vector<std::string_view> BuiltinTypeNames() {
  return {kBuiltinTypes.begin(), kBuiltinTypes.end()};
}

bool IsBuiltinType(std::string_view type) {
  for (std::string_view builtin : kBuiltinTypes) {
    if (builtin == type) return true;
  }
  return false;
}

Status ValidateTypeName(std::string_view type) {
  const bool prefixed = type.starts_with("CMD_") || type.starts_with("RES_");
  bool charset = prefixed && type.size() > 4 && type.size() <= kMaxTypeName;
  for (size_t i = 4; charset && i < type.size(); ++i) {
    const char c = type[i];
    charset = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  if (charset) return Status::OK();
  return Status::InvalidArgument("\"" + std::string(type.substr(0, kMaxTypeName)) +
                                 "\" is not a message type name: CMD_ or RES_, then upper-case "
                                 "letters, digits and _, at most 64 characters");
}

bool IsResponse(std::string_view type) { return type.starts_with("RES_"); }

std::string_view ShmFormatName(ShmFormat format) {
  for (const auto& [f, name] : kFormatNames) {
    if (f == format) return name;
  }
  return "raw";
}

std::vector<std::string_view> ShmFormatNames() {
  std::vector<std::string_view> names;
  for (const auto& [f, name] : kFormatNames) names.push_back(name);
  return names;
}

std::optional<ShmFormat> ShmFormatFromName(std::string_view name) {
  for (const auto& [f, n] : kFormatNames) {
    if (n == name) return f;
  }
  return std::nullopt;
}

std::optional<EnvelopeError> ParseShmHandle(const nlohmann::json& value, ShmHandle* handle) {
  const std::string invalid(kInvalidEnvelope);
  if (!value.is_object()) {
    return EnvelopeError{invalid,
                         "shm_handle must be an object, got " + std::string(JsonTypeName(value))};
  }
  auto id = value.find("segment_id");
  if (id == value.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    return EnvelopeError{invalid, "shm_handle.segment_id must be a non-empty string"};
  }
  handle->segment_id = id->get<std::string>();
  if (auto e = ReadUint(value, "offset", &handle->offset)) return e;
  if (auto e = ReadUint(value, "size", &handle->size)) return e;
  if (handle->size == 0) return EnvelopeError{invalid, "shm_handle.size must be at least 1"};
  if (handle->offset > std::numeric_limits<uint64_t>::max() - handle->size) {
    return EnvelopeError{std::string(ErrorCodeName(ErrorCode::kHandleOutOfRange)),
                         "shm_handle offset " + std::to_string(handle->offset) + " + size " +
                             std::to_string(handle->size) + " overflows 64 bits"};
  }
  auto format = value.find("format");
  if (format == value.end() || !format->is_string()) {
    return EnvelopeError{invalid, "shm_handle.format must be a string"};
  }
  const std::optional<ShmFormat> known = ShmFormatFromName(format->get_ref<const std::string&>());
  if (known) handle->format = *known;
  if (!known) {
    return EnvelopeError{
        invalid, "shm_handle.format " + Quote(*format) + " is not arrow_stream, tensor or raw"};
  }
  // A safe handle's sample: both or neither (a generation alone names no sample).
  handle->generation.reset();
  handle->sequence.reset();
  const bool has_generation = value.contains("generation");
  if (has_generation != value.contains("sequence")) {
    return EnvelopeError{invalid, "shm_handle.generation and shm_handle.sequence come together"};
  }
  if (has_generation) {
    uint64_t generation = 0, sequence = 0;
    if (auto e = ReadUint(value, "generation", &generation)) return e;
    if (auto e = ReadUint(value, "sequence", &sequence)) return e;
    handle->generation = generation;
    handle->sequence = sequence;
  }
  return std::nullopt;
}

ParseOutcome ParseEnvelope(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxLineBytes) {
    return Fail(kLineTooLong, "line of " + std::to_string(line.size()) + " bytes exceeds " +
                                  std::to_string(kMaxLineBytes));
  }
  if (line.find_first_not_of(" \t") == std::string_view::npos) {
    return Fail(kInvalidEnvelope, "empty line");
  }
  if (NestedTooDeep(line)) {
    return Fail(kInvalidEnvelope,
                "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  // No exceptions: a parse failure yields a `discarded` value.
  json doc = json::parse(line.begin(), line.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail(kInvalidEnvelope, "not valid JSON");
  try {
    return ParseJson(doc);
  } catch (const std::exception& e) {  // defensive: the checks above should make this unreachable
    return Fail(kInvalidEnvelope, std::string("malformed envelope: ") + e.what());
  }
}

std::string Serialize(const Envelope& envelope) {
  json payload = envelope.payload.is_object() ? envelope.payload : json::object();
  if (envelope.shm_handle) payload["shm_handle"] = HandleToJson(*envelope.shm_handle);
  json doc = {{"protocol_v", envelope.protocol_v},
              {"msg_id", envelope.msg_id.empty() ? json(nullptr) : json(envelope.msg_id)},
              {"type", envelope.type},
              {"payload", std::move(payload)}};
  return doc.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

std::string NewMsgId() {
  std::array<unsigned char, 16> b{};
  size_t filled = 0;
  while (filled < b.size()) {
    const ssize_t n = getrandom(b.data() + filled, b.size() - filled, 0);
    if (n > 0) filled += static_cast<size_t>(n);
    // EINTR: try again. getrandom without GRND_NONBLOCK fails for no other reason here.
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

Envelope MakeEnvelope(std::string_view type, nlohmann::json payload) {
  Envelope e;
  e.msg_id = NewMsgId();
  e.type = std::string(type);
  e.payload = payload.is_object() ? std::move(payload) : json::object();
  return e;
}

Envelope MakeError(std::string_view msg_id, const Status& status) {
  Envelope e;
  e.msg_id = std::string(msg_id);
  e.type = std::string(kResErrorV2);
  e.payload = status.ok() ? json{{"code", "OK"}, {"message", ""}, {"cause", nullptr}}
                          : StatusToJson(status);
  return e;
}

Envelope MakeError(const EnvelopeError& error) {
  Envelope e;
  e.msg_id = error.msg_id;
  e.type = std::string(kResErrorV2);
  e.payload = {{"code", error.code}, {"message", error.message}, {"cause", nullptr}};
  return e;
}

Status StatusFromError(const Envelope& error) {
  std::vector<const json*> chain;
  for (const json* node = &error.payload; node != nullptr && node->is_object() &&
                                          chain.size() <= static_cast<size_t>(kMaxCauseDepth);) {
    chain.push_back(node);
    auto cause = node->find("cause");
    node = (cause == node->end() || cause->is_null()) ? nullptr : &*cause;
  }
  auto to_status = [](const json& node) {
    const std::string code = node.value("code", std::string(kInternal));
    const std::string message = node.value("message", std::string());
    for (const ErrorCodeInfo& info : ErrorCodes()) {
      if (info.name == code) return Status(info.code, message);
    }
    return Status::InvalidArgument(code + ": " + message);
  };
  if (chain.empty()) return Status::InvalidArgument("RES_ERROR_V2 without a payload");
  try {
    Status status = to_status(*chain.back());
    for (auto it = chain.rbegin() + 1; it != chain.rend(); ++it) {
      const Status outer = to_status(**it);
      status = status.Wrap(outer.code(), outer.message());
    }
    return status;
  } catch (const std::exception& e) {  // a non-string code or message
    return Status::InvalidArgument(std::string("malformed RES_ERROR_V2: ") + e.what());
  }
}

}  // namespace quiver::control
