// The rules by which a channel's Arrow schema may change while readers bind by name.
// Pure functions; thread-safe.
#pragma once

#include <arrow/type.h>

#include <memory>
#include <vector>

#include "quiver/status.h"

namespace quiver::payload {

/// Checks that `next` may follow `versions` (every schema the channel has had, oldest
/// first). Compatible: adding nullable fields, dropping nullable fields, reordering. Refused
/// with kSchemaMismatch naming the field and both types: a field whose type differs from
/// any version's field of that name; dropping a non-nullable field of the newest version;
/// adding a non-nullable field; duplicate field names.
Status CheckEvolution(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                      const arrow::Schema& next);

/// Checks that a reader asking for the fields of `reader` can read samples of
/// `channel_schema` (the newest version): every reader field the channel has must have the
/// same type (and be non-nullable in the channel if the reader requires it); a reader
/// field the channel lacks must be nullable (the reader sees nulls). kSchemaMismatch
/// otherwise, naming the field and both types.
Status CheckReader(const arrow::Schema& reader, const arrow::Schema& channel_schema);

/// Projects `batch` onto `reader`'s fields, by name, without copying column data; a field
/// the batch lacks becomes an all-null column. kSchemaMismatch as CheckReader.
Result<std::shared_ptr<arrow::RecordBatch>> ProjectByName(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::shared_ptr<arrow::Schema>& reader);

}  // namespace quiver::payload
