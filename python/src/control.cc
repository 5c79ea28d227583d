// quiver._quiver.envelope: the control envelope codec of quiver/envelope.h (protocol
// 2.0.0) for python/quiver/control.py, so that both languages accept and refuse the same
// lines with the same code and message. Payloads cross as Python objects (parse) or as
// JSON text (serialize: json.dumps keeps Python's own mapping of values to JSON).
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "module.h"
#include "quiver/envelope.h"

namespace nb = nanobind;

namespace quiver::python {
namespace {

using nlohmann::json;

nb::object OptionalId(const std::string& msg_id) {
  return msg_id.empty() ? nb::none() : nb::object(nb::str(msg_id.data(), msg_id.size()));
}

// A parsed JSON value as the Python objects json.loads gives. Recursion is bounded: a line
// nested deeper than ParseEnvelope allows never gets here.
nb::object ToPython(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return nb::none();
    case json::value_t::boolean:
      return nb::bool_(value.get<bool>());
    case json::value_t::number_integer:
      return nb::steal(PyLong_FromLongLong(value.get<int64_t>()));
    case json::value_t::number_unsigned:
      return nb::steal(PyLong_FromUnsignedLongLong(value.get<uint64_t>()));
    case json::value_t::number_float:
      return nb::float_(value.get<double>());
    case json::value_t::string: {
      const std::string& s = value.get_ref<const std::string&>();
      return nb::str(s.data(), s.size());
    }
    case json::value_t::array: {
      nb::list out;
      for (const json& item : value) out.append(ToPython(item));
      return out;
    }
    case json::value_t::object: {
      nb::dict out;
      for (const auto& [key, item] : value.items()) {
        out[nb::str(key.data(), key.size())] = ToPython(item);
      }
      return out;
    }
    default:  // binary and discarded values: the parser makes neither
      return nb::none();
  }
}

nb::tuple Refusal(const control::EnvelopeError& e) {
  return nb::make_tuple(false, e.code, e.message, OptionalId(e.msg_id));
}

// ParseEnvelope(line): (True, type, payload, msg_id or None, protocol_v), or
// (False, code, message, msg_id or None).
nb::tuple Parse(nb::bytes line) {
  const control::ParseOutcome out =
      control::ParseEnvelope(std::string_view(line.c_str(), line.size()));
  if (!out.ok()) return Refusal(out.error);
  const control::Envelope& e = *out.envelope;
  return nb::make_tuple(true, e.type, ToPython(e.payload), OptionalId(e.msg_id), e.protocol_v);
}

// ParseShmHandle of a handle given as JSON text: (True, segment_id, offset, size, format,
// generation or None, sequence or None), or
// (False, code, message, None).
nb::tuple ParseHandle(const std::string& handle_json) {
  const json value = json::parse(handle_json, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return Refusal({std::string(control::kInvalidEnvelope), "shm_handle is not valid JSON", ""});
  }
  control::ShmHandle h;
  if (auto e = control::ParseShmHandle(value, &h)) return Refusal(*e);
  nb::object generation = h.generation ? nb::object(nb::int_(*h.generation)) : nb::none();
  nb::object sequence = h.sequence ? nb::object(nb::int_(*h.sequence)) : nb::none();
  return nb::make_tuple(true, h.segment_id, h.offset, h.size, control::ShmFormatName(h.format),
                        generation, sequence);
}

// Serialize of the envelope (type, payload as JSON text, msg_id, protocol_v): (True, line),
// or (False, code, message, None) for a type no envelope can have or a payload that is not
// JSON.
nb::tuple Serialize(const std::string& type, const std::string& payload_json,
                    std::optional<std::string> msg_id, const std::string& protocol_v) {
  if (Status valid = control::ValidateTypeName(type); !valid.ok()) {
    return Refusal({std::string(control::kUnknownType), valid.message(), ""});
  }
  control::Envelope e;
  e.type = type;
  e.protocol_v = protocol_v;
  e.msg_id = msg_id.value_or("");
  e.payload = json::parse(payload_json, nullptr, /*allow_exceptions=*/false);
  if (e.payload.is_discarded()) {
    return Refusal({std::string(control::kInvalidEnvelope), "payload is not valid JSON", ""});
  }
  // As ParseEnvelope would have parsed it, so Python writes back what C++ would: a valid
  // handle in its canonical form, anything else as it is.
  if (e.payload.is_object() && e.payload.contains("shm_handle")) {
    control::ShmHandle h;
    if (!control::ParseShmHandle(e.payload["shm_handle"], &h)) e.shm_handle = std::move(h);
  }
  return nb::make_tuple(true, control::Serialize(e));
}

}  // namespace

void RegisterControl(nb::module_& m) {
  nb::module_ c = m.def_submodule("envelope", "The control envelope codec (control/envelope.h).");
  c.attr("PROTOCOL_VERSION") = std::string(control::kProtocolVersion);
  c.attr("PROTOCOL_MAJOR") = control::kProtocolMajor;
  c.attr("MAX_LINE_BYTES") = control::kMaxLineBytes;
  c.attr("MAX_CAUSE_DEPTH") = control::kMaxCauseDepth;
  c.attr("TYPES") = control::BuiltinTypeNames();
  c.def("validate_type_name", [](const std::string& type) {
    const Status valid = control::ValidateTypeName(type);
    return valid.ok() ? std::string() : valid.message();
  });
  c.attr("FORMATS") = control::ShmFormatNames();
  c.attr("INVALID_ENVELOPE") = std::string(control::kInvalidEnvelope);
  c.attr("UNSUPPORTED_VERSION") = std::string(control::kUnsupportedVersion);
  c.attr("UNKNOWN_TYPE") = std::string(control::kUnknownType);
  c.attr("LINE_TOO_LONG") = std::string(control::kLineTooLong);
  c.attr("UNEXPECTED_TYPE") = std::string(control::kUnexpectedType);
  c.attr("INTERNAL") = std::string(control::kInternal);
  c.attr("HANDLE_OUT_OF_RANGE") = std::string(ErrorCodeName(ErrorCode::kHandleOutOfRange));
  c.attr("PEER_DIED") = std::string(ErrorCodeName(ErrorCode::kPeerGone));
  c.def("parse", &Parse);
  c.def("parse_shm_handle", &ParseHandle);
  c.def("serialize", &Serialize);
  c.def("new_msg_id", &control::NewMsgId);
}

}  // namespace quiver::python
