// The layout of an Arrow batch sample, which its writer (arrow_writer.cc) and its reader
// (arrow_reader.cc) share; documented in docs/ARCHITECTURE.md ("Arrow batches"), change both
// together. Constants and plain structs; thread-safe. All offsets from the sample start:
//
//   [0, 64)          SampleHeader: kind kArrowBatch, type_version, count = rows,
//                    meta = the message table and flatbuffers, body = every message body
//   meta_offset      MessageTable { count } + MessageEntry[count]: dictionaries first
//                    (dictionary_id >= 0), the record batch last (dictionary_id = -1)
//   ...              each entry's IPC flatbuffer metadata (Message.fbs), 8-byte aligned
//   body_offset      the bodies, 64-byte aligned; buffers inside padded to 64 bytes
//
// No schema travels with a sample: it is the channel's type version `type_version`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "quiver/sample_header.h"

namespace quiver::payload {

/// The kind header of an Arrow sample: it opens the metadata, and its entries follow it.
struct MessageTable {
  uint32_t count;  // 1 (the record batch) .. kMaxMessages
  uint32_t reserved;
};
struct MessageEntry {
  int64_t dictionary_id;  // -1: the record batch
  uint64_t metadata_offset;
  uint64_t metadata_length;
  uint64_t body_offset;
  uint64_t body_length;
};
static_assert(std::is_trivially_copyable_v<MessageTable> && sizeof(MessageTable) == 8 &&
              alignof(MessageTable) == 4);
static_assert(std::is_trivially_copyable_v<MessageEntry> && sizeof(MessageEntry) == 40 &&
              alignof(MessageEntry) == 8);

/// Every buffer inside a message body starts at a multiple of this (and is padded to one).
inline constexpr int32_t kBufferAlignment = 64;
/// Arrow IPC's own rule: each message's metadata and body start at a multiple of this.
inline constexpr uint64_t kMessageAlignment = 8;
/// A reader refuses a table of more messages (dictionaries + the batch).
inline constexpr uint32_t kMaxMessages = 1024;

/// Where the first message's metadata may start: right after the table of `messages` entries.
constexpr uint64_t MessageTableEnd(size_t messages) {
  return kSampleHeaderBytes + sizeof(MessageTable) + messages * sizeof(MessageEntry);
}

}  // namespace quiver::payload
