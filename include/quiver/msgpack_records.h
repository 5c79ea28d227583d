// The msgspec ingest path: records encoded as msgpack (by Python's msgspec, for schemas still
// in flux) decoded into an Arrow RecordBatch of a channel's schema, then published like any
// batch. A pure function: safe to call from any number of threads at once.
//
//   auto batch = quiver::DecodeMsgpackRecords(bytes, quiver::ChannelSchema(channel).value());
//   if (batch.ok()) publisher.Publish(**batch);
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include <memory>
#include <string_view>

#include "quiver/status.h"

namespace quiver {

/// The deepest nesting of msgpack arrays and maps DecodeMsgpackRecords accepts (the outer
/// records array is depth 1).
inline constexpr int kMaxMsgpackDepth = 64;

/// Decodes `msgpack`, one msgpack array of records, into a RecordBatch of `schema` whose
/// buffers are allocated from `pool` (a BatchLoan's pool builds the batch in the sample).
///
/// Each record is either
///  - a map {field name: value} (msgspec's default for Structs and dicts). Fields bind by
///    name; a missing key is null; keys the schema lacks are ignored, so producers may run
///    ahead of the channel's schema; or
///  - an array of values in schema order (msgspec `array_like=True`). Fewer elements than
///    fields means trailing nulls; extra trailing elements are ignored.
/// Missing values and nil are accepted only for nullable fields.
///
/// Field types and the msgpack values each accepts (nil is null for all of them):
///  - bool: bool.                         - int8..int64, uint8..uint64: int within range.
///  - float32, float64: float or int.     - utf8, large_utf8: str (valid UTF-8).
///  - binary, large_binary: bin or str.   - null: nil only.
///  - timestamp (any unit and zone): int, taken in the field's unit as-is, or the msgpack
///    timestamp extension (type -1, what msgspec writes for an aware datetime), converted.
///  - date32: int (days since the epoch).
///  - list<T>, large_list<T> of any supported T: array.
///  - struct: map by field name or array by position, with the same rules as records.
///  - dictionary<int32, utf8>: str.
/// Any other type in `schema` is kInvalidArgument before anything is decoded.
///
/// Every input error is kInvalidArgument naming the record and the field path, e.g.
/// "record 12, field 'items[3].price': expected float64, got str": wrong msgpack types,
/// integers out of range, invalid UTF-8, duplicate keys, nesting deeper than
/// kMaxMsgpackDepth, truncated or malformed msgpack, bytes after the array. No input can
/// crash the decoder or make it allocate much more than the input's size (times the width of
/// the widest field). kCapacityExceeded if `pool` runs out of memory.
Result<std::shared_ptr<arrow::RecordBatch>> DecodeMsgpackRecords(
    std::string_view msgpack, const std::shared_ptr<arrow::Schema>& schema,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

}  // namespace quiver
