// What ParseEnvelope (src/control/envelope.cc) promises of a line: one it refuses gets a code,
// a message and a RES_ERROR_V2 reply the peer can read; one it accepts carries a usable handle
// where its type needs one, and serializes and parses back to itself. Shared by the envelope
// target and the shm handle target, whose JSON handles arrive inside an envelope.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "quiver/envelope.h"
#include "fuzz_support.h"

namespace quiver::fuzz {

inline void CheckEnvelopeOutcome(const control::ParseOutcome& out) {
  using control::kCmdProcess;
  using control::kResDataReady;
  using control::kResErrorV2;
  if (!out.ok()) {
    const control::EnvelopeError& e = out.error;
    QUIVER_FUZZ_CHECK(!e.code.empty() && !e.message.empty(), "error without code or message");
    QUIVER_FUZZ_CHECK(e.msg_id.empty() || control::IsUuid(e.msg_id), "error msg_id " + e.msg_id);
    // The reply a server sends must itself be a valid line the peer can read.
    const control::Envelope reply = control::MakeError(e);
    const std::string wire = control::Serialize(reply);
    QUIVER_FUZZ_CHECK(wire.find('\n') == std::string::npos, "newline in a serialized reply");
    const control::ParseOutcome back = control::ParseEnvelope(wire);
    QUIVER_FUZZ_CHECK(back.ok(), "the RES_ERROR_V2 reply to a bad line does not parse: " +
                                     back.error.code + ": " + back.error.message.substr(0, 200) +
                                     " (reply of " + std::to_string(wire.size()) + " bytes)");
    QUIVER_FUZZ_CHECK(back.envelope->type == kResErrorV2, "reply type");
    QUIVER_FUZZ_CHECK(back.envelope->msg_id == e.msg_id, "reply msg_id");
    QUIVER_FUZZ_CHECK(!control::StatusFromError(*back.envelope).ok(), "an error reply reads OK");
    return;
  }
  const control::Envelope& env = *out.envelope;
  QUIVER_FUZZ_CHECK(env.payload.is_object(), "payload is not an object");
  QUIVER_FUZZ_CHECK(
      env.msg_id.empty() ? env.type == kResErrorV2 : control::IsUuid(env.msg_id),
      "msg_id '" + env.msg_id + "'");
  QUIVER_FUZZ_CHECK(control::ValidateTypeName(env.type).ok(), "type name " + env.type);
  if (env.type == kCmdProcess || env.type == kResDataReady) {
    QUIVER_FUZZ_CHECK(env.shm_handle.has_value(), "CMD_PROCESS/RES_DATA_READY without handle");
  }
  if (env.shm_handle) {
    const control::ShmHandle& h = *env.shm_handle;
    QUIVER_FUZZ_CHECK(!h.segment_id.empty(), "empty segment_id accepted");
    QUIVER_FUZZ_CHECK(h.size > 0, "size 0 accepted");
    QUIVER_FUZZ_CHECK(h.offset <= std::numeric_limits<uint64_t>::max() - h.size,
                      "offset + size overflows");
  }
  if (env.type == kResErrorV2) {
    QUIVER_FUZZ_CHECK(!control::StatusFromError(env).ok(), "RES_ERROR_V2 reads as OK");
  }
  // Serialize, parse, serialize: the same line (numbers may grow when re-printed, so a line
  // near the limit may no longer fit; that is not a round-trip failure).
  const std::string wire = control::Serialize(env);
  QUIVER_FUZZ_CHECK(wire.find('\n') == std::string::npos, "newline in a serialized envelope");
  if (wire.size() > control::kMaxLineBytes) return;
  const control::ParseOutcome again = control::ParseEnvelope(wire);
  QUIVER_FUZZ_CHECK(again.ok(), "a serialized envelope does not parse: " + again.error.code + ": " +
                                    again.error.message.substr(0, 200));
  const control::Envelope& env2 = *again.envelope;
  QUIVER_FUZZ_CHECK(env2.type == env.type && env2.msg_id == env.msg_id &&
                        env2.protocol_v == env.protocol_v && env2.shm_handle == env.shm_handle,
                    "round trip changed the envelope: " + wire.substr(0, 200));
  QUIVER_FUZZ_CHECK(control::Serialize(env2) == wire, "Serialize is not stable");
}

}  // namespace quiver::fuzz
