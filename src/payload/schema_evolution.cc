#include "payload/schema_evolution.h"

#include <arrow/array.h>
#include <arrow/array/util.h>
#include <arrow/record_batch.h>

#include <set>
#include <string>

namespace quiver::payload {
namespace {

Status Mismatch(const std::string& message) { return Status::SchemaMismatch(message); }

Status CheckUniqueNames(const arrow::Schema& schema, const char* whose) {
  std::set<std::string> seen;
  for (const auto& field : schema.fields()) {
    if (!seen.insert(field->name()).second) {
      return Mismatch(std::string(whose) + " has two fields named '" + field->name() +
                      "'; fields are bound by name, so names must be unique");
    }
  }
  return Status::OK();
}

}  // namespace

Status CheckEvolution(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                      const arrow::Schema& next) {
  QUIVER_RETURN_IF_ERROR(CheckUniqueNames(next, "the new schema"));
  if (versions.empty()) return Status::OK();
  // A name keeps its type forever, even across a version that dropped it: a reader of an
  // old sample must never find a different type under a name it bound.
  for (size_t v = 0; v < versions.size(); ++v) {
    for (const auto& old_field : versions[v]->fields()) {
      const auto field = next.GetFieldByName(old_field->name());
      if (field != nullptr && !field->type()->Equals(*old_field->type())) {
        return Mismatch("field '" + old_field->name() + "' changes type from " +
                        old_field->type()->ToString() + " (channel schema version " +
                        std::to_string(v + 1) + ") to " + field->type()->ToString());
      }
    }
  }
  const arrow::Schema& newest = *versions.back();
  for (const auto& old_field : newest.fields()) {
    const auto field = next.GetFieldByName(old_field->name());
    if (field == nullptr && !old_field->nullable()) {
      return Mismatch("the new schema drops non-nullable field '" + old_field->name() + "' (" +
                      old_field->type()->ToString() + "), which readers may require");
    }
    if (field != nullptr && field->nullable() && !old_field->nullable()) {
      return Mismatch("field '" + old_field->name() + "' (" + old_field->type()->ToString() +
                      ") becomes nullable; readers may require it non-null");
    }
  }
  for (const auto& field : next.fields()) {
    bool existed = false;
    for (const auto& version : versions)
      existed |= version->GetFieldByName(field->name()) != nullptr;
    if (!existed && !field->nullable()) {
      return Mismatch("the new schema adds non-nullable field '" + field->name() + "' (" +
                      field->type()->ToString() +
                      "); older samples lack it, so a new field must be nullable");
    }
  }
  return Status::OK();
}

Status CheckReader(const arrow::Schema& reader, const arrow::Schema& channel_schema) {
  QUIVER_RETURN_IF_ERROR(CheckUniqueNames(reader, "the reader schema"));
  for (const auto& wanted : reader.fields()) {
    const auto field = channel_schema.GetFieldByName(wanted->name());
    if (field == nullptr) {
      if (!wanted->nullable()) {
        return Mismatch("reader requires non-nullable field '" + wanted->name() + "' (" +
                        wanted->type()->ToString() + ") but the channel schema has no such field");
      }
      continue;
    }
    if (!field->type()->Equals(*wanted->type())) {
      return Mismatch("field '" + wanted->name() + "': reader asks for " +
                      wanted->type()->ToString() + " but the channel has " +
                      field->type()->ToString());
    }
    if (!wanted->nullable() && field->nullable()) {
      return Mismatch("reader requires field '" + wanted->name() + "' (" +
                      wanted->type()->ToString() + ") non-null but the channel's is nullable");
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<arrow::RecordBatch>> ProjectByName(
    const std::shared_ptr<arrow::RecordBatch>& batch,
    const std::shared_ptr<arrow::Schema>& reader) {
  std::vector<std::shared_ptr<arrow::Array>> columns;
  columns.reserve(reader->num_fields());
  for (const auto& wanted : reader->fields()) {
    const int index = batch->schema()->GetFieldIndex(wanted->name());
    if (index >= 0) {
      const auto& column = batch->column(index);
      if (!column->type()->Equals(*wanted->type())) {
        return Mismatch("field '" + wanted->name() + "': reader asks for " +
                        wanted->type()->ToString() + " but the sample has " +
                        column->type()->ToString());
      }
      if (!wanted->nullable() && column->null_count() > 0) {
        return Mismatch("field '" + wanted->name() +
                        "' has nulls but the reader requires it "
                        "non-null");
      }
      columns.push_back(column);
      continue;
    }
    if (!wanted->nullable()) {
      return Mismatch("sample lacks non-nullable field '" + wanted->name() + "' (" +
                      wanted->type()->ToString() + ") that the reader requires");
    }
    auto nulls = arrow::MakeArrayOfNull(wanted->type(), batch->num_rows());
    if (!nulls.ok()) return Status::IoError(nulls.status().ToString());
    columns.push_back(*std::move(nulls));
  }
  return arrow::RecordBatch::Make(reader, batch->num_rows(), std::move(columns));
}

}  // namespace quiver::payload
