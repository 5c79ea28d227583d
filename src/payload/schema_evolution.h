// The rules by which a channel's Arrow schema may change while readers bind by name.
// Pure functions; thread-safe.
#pragma once

#include <arrow/type.h>

#include <memory>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/status.h"

namespace quiver::payload {

/// Checks that `next` may follow `versions` (every schema the channel has had, oldest
/// first) under `evolution`. kStrict: `next` has the newest version's fields (names, types,
/// nullability; any order). kAddNullable, compatible: adding nullable fields, dropping
/// nullable fields, reordering. Refused under both with kSchemaMismatch naming the field and
/// both types: a field whose type differs from any version's field of that name; dropping
/// a non-nullable field of the newest version; adding a non-nullable field; a new field
/// whose name looks like a misspelling of one it leaves out (LooksLikeMisspelling); under
/// kStrict any added or dropped field or changed nullability. Duplicate names always.
Status CheckEvolution(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                      const arrow::Schema& next,
                      SchemaEvolution evolution = SchemaEvolution::kAddNullable);

/// True if `written` is probably a slip of the keyboard for `meant`: the same name but for
/// letter case, or (both at least 3 characters) at most one edit apart per 4 characters of
/// the shorter (at least one): an insertion, deletion, substitution or swap of neighbours.
bool LooksLikeMisspelling(std::string_view written, std::string_view meant);

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
