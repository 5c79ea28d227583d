#include "payload/ipc_metadata.h"

#include <cstring>
#include <string>

namespace quiver::payload {
namespace {

// Field indices and union tags of format/Message.fbs.
constexpr int kMessageHeaderType = 1;
constexpr int kMessageHeader = 2;
constexpr int kMessageBodyLength = 3;
constexpr int kRecordBatchBuffers = 2;
constexpr int kRecordBatchCompression = 3;
constexpr uint8_t kHeaderRecordBatch = 3;
constexpr size_t kBufferStructBytes = 16;  // struct Buffer { offset: long; length: long; }

// A bounds-checked view of flatbuffer bytes (little-endian, as Arrow writes them).
class Flatbuffer {
 public:
  // Stores go to `writable` (the same bytes), or fail if it is null.
  explicit Flatbuffer(std::span<const uint8_t> bytes, uint8_t* writable = nullptr)
      : bytes_(bytes), writable_(writable) {}

  template <typename T>
  bool Load(size_t pos, T* out) const {
    if (pos > bytes_.size() || sizeof(T) > bytes_.size() - pos) return false;
    std::memcpy(out, bytes_.data() + pos, sizeof(T));
    return true;
  }
  template <typename T>
  bool Store(size_t pos, T value) {
    if (writable_ == nullptr || pos > bytes_.size() || sizeof(T) > bytes_.size() - pos) {
      return false;
    }
    std::memcpy(writable_ + pos, &value, sizeof(T));
    return true;
  }
  // Position of field `index` of the table at `table`, or 0 if absent / out of bounds.
  size_t Field(size_t table, int index) const {
    int32_t to_vtable = 0;
    if (!Load(table, &to_vtable)) return 0;
    const int64_t vtable = static_cast<int64_t>(table) - to_vtable;
    uint16_t vtable_bytes = 0;
    if (vtable < 0 || !Load(static_cast<size_t>(vtable), &vtable_bytes)) return 0;
    const size_t entry = 4 + 2 * static_cast<size_t>(index);
    if (entry + 2 > vtable_bytes) return 0;
    uint16_t field_offset = 0;
    if (!Load(static_cast<size_t>(vtable) + entry, &field_offset) || field_offset == 0) return 0;
    return table + field_offset;
  }
  // Follows the uoffset stored at `pos`; 0 if out of bounds.
  size_t Deref(size_t pos) const {
    uint32_t offset = 0;
    if (pos == 0 || !Load(pos, &offset)) return 0;
    const size_t target = pos + offset;
    return target < bytes_.size() ? target : 0;
  }

 private:
  std::span<const uint8_t> bytes_;
  uint8_t* writable_;
};

Status NotARecordBatch(const std::string& why) {
  return Status::InvalidArgument("not an Arrow RecordBatch message: " + why);
}

}  // namespace

Status RewriteBufferSpans(std::span<uint8_t> metadata, std::span<const BufferSpan> buffers,
                          int64_t body_length) {
  Flatbuffer fb(metadata, metadata.data());
  uint32_t root_offset = 0;
  if (!fb.Load(0, &root_offset) || root_offset >= metadata.size()) {
    return NotARecordBatch("no root table");
  }
  const size_t message = root_offset;
  uint8_t header_type = 0;
  const size_t type_field = fb.Field(message, kMessageHeaderType);
  if (type_field == 0 || !fb.Load(type_field, &header_type) || header_type != kHeaderRecordBatch) {
    return NotARecordBatch("header is not a RecordBatch");
  }
  const size_t record_batch = fb.Deref(fb.Field(message, kMessageHeader));
  if (record_batch == 0) return NotARecordBatch("no RecordBatch table");
  const size_t body_length_field = fb.Field(message, kMessageBodyLength);
  if (body_length_field == 0 || !fb.Store(body_length_field, body_length)) {
    return NotARecordBatch("no body length field");
  }
  const size_t vector = fb.Deref(fb.Field(record_batch, kRecordBatchBuffers));
  uint32_t count = 0;
  if (vector == 0 || !fb.Load(vector, &count)) return NotARecordBatch("no buffers vector");
  if (count != buffers.size()) {
    return Status::InvalidArgument("the message describes " + std::to_string(count) +
                                   " buffers, not " + std::to_string(buffers.size()));
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    const size_t entry = vector + 4 + i * kBufferStructBytes;
    if (!fb.Store(entry, buffers[i].offset) || !fb.Store(entry + 8, buffers[i].length)) {
      return NotARecordBatch("buffers vector runs past the end");
    }
  }
  return Status::OK();
}

Result<bool> HasBodyCompression(std::span<const uint8_t> metadata) {
  Flatbuffer fb(metadata);
  uint32_t root_offset = 0;
  if (!fb.Load(0, &root_offset) || root_offset >= metadata.size()) {
    return NotARecordBatch("no root table");
  }
  uint8_t header_type = 0;
  const size_t type_field = fb.Field(root_offset, kMessageHeaderType);
  if (type_field == 0 || !fb.Load(type_field, &header_type) || header_type != kHeaderRecordBatch) {
    return NotARecordBatch("header is not a RecordBatch");
  }
  const size_t record_batch = fb.Deref(fb.Field(root_offset, kMessageHeader));
  if (record_batch == 0) return NotARecordBatch("no RecordBatch table");
  return fb.Field(record_batch, kRecordBatchCompression) != 0;
}

}  // namespace quiver::payload
