// A batch made to fit a channel's schema, where the same values only came in another layout:
// the one rule by which a publish (C++, Python), a Flight DoPut and a bridge accept a batch.
// Pure functions; thread-safe.
#pragma once

#include <arrow/type_fwd.h>

#include <memory>

#include "quiver/status.h"

namespace quiver::payload {

/// `schema` with each field that `target` has (matched by name) conformed to it:
/// - a type that holds the target field's values in another layout takes the target's type
///   (large or view strings and binaries, large lists, recursively);
/// - a field declared nullable where the target's is not becomes non-nullable (its batches
///   must then hold no null, which ConformBatch checks), and one declared non-nullable
///   where the target's is nullable becomes nullable (its values fit as they are).
/// Other differences (a new field, a real type change) are left as they are: CheckEvolution
/// decides on them. Returns `schema` itself when nothing changes.
std::shared_ptr<arrow::Schema> ConformSchema(const std::shared_ptr<arrow::Schema>& schema,
                                             const arrow::Schema& target);

/// `batch` as ConformSchema describes it: the columns to retype are cast (a copy of those
/// columns only); kSchemaMismatch naming the field if one made non-nullable holds nulls.
/// nullptr when the batch already fits (use it as it is).
Result<std::shared_ptr<arrow::RecordBatch>> ConformBatch(const arrow::RecordBatch& batch,
                                                         const arrow::Schema& target);

}  // namespace quiver::payload
