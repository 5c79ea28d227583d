// Rewrites where an Arrow IPC RecordBatch message says its buffers are. Lets a batch whose
// arrays were built in place be described without moving them. Works on the flatbuffer
// bytes of format/Message.fbs (Message -> RecordBatch -> buffers), with every read bounds-
// checked. Pure function; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "quiver/status.h"

namespace quiver::payload {

struct BufferSpan {
  int64_t offset;  // from the start of the message body
  int64_t length;
};

/// In the RecordBatch message flatbuffer `metadata`, replaces the (offset, length) of every
/// body buffer with `buffers` (same count and order as the message's) and the message's
/// body length with `body_length`. kInvalidArgument if the bytes are not such a message or
/// the counts differ.
Status RewriteBufferSpans(std::span<uint8_t> metadata, std::span<const BufferSpan> buffers,
                          int64_t body_length);

/// Whether the RecordBatch message flatbuffer `metadata` declares compressed body buffers
/// (RecordBatch.compression). Quiver samples never do: their buffers are read in place.
/// kInvalidArgument if the bytes are not such a message.
Result<bool> HasBodyCompression(std::span<const uint8_t> metadata);

}  // namespace quiver::payload
