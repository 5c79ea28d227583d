#include "payload/conform.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <mutex>

namespace quiver::payload {
namespace {

// The layout-free name of a type: string, large_string and string_view are all "string".
std::string Representation(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW:
      return "string";
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW:
      return "binary";
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW:
      return "list<" + Representation(*static_cast<const arrow::BaseListType&>(type).value_type()) +
             ">";
    default:
      return type.ToString();
  }
}

Status InitializeCompute() {
  static std::once_flag once;
  static arrow::Status initialized;
  std::call_once(once, [] { initialized = arrow::compute::Initialize(); });
  if (!initialized.ok()) {
    return Status::IoError("cannot initialize Arrow compute: " + initialized.ToString());
  }
  return Status::OK();
}

}  // namespace

std::shared_ptr<arrow::Schema> ConformSchema(const std::shared_ptr<arrow::Schema>& schema,
                                             const arrow::Schema& target) {
  std::vector<std::shared_ptr<arrow::Field>> fields = schema->fields();
  bool changed = false;
  for (auto& field : fields) {
    const std::shared_ptr<arrow::Field> theirs = target.GetFieldByName(field->name());
    if (theirs == nullptr) continue;
    if (!field->type()->Equals(*theirs->type()) &&
        Representation(*field->type()) == Representation(*theirs->type())) {
      field = field->WithType(theirs->type());
      changed = true;
    }
    if (field->nullable() != theirs->nullable() && field->type()->Equals(*theirs->type())) {
      field = field->WithNullable(theirs->nullable());
      changed = true;
    }
  }
  return changed ? arrow::schema(std::move(fields), schema->metadata()) : schema;
}

Result<std::shared_ptr<arrow::RecordBatch>> ConformBatch(const arrow::RecordBatch& batch,
                                                         const arrow::Schema& target) {
  const std::shared_ptr<arrow::Schema> conformed = ConformSchema(batch.schema(), target);
  if (conformed == batch.schema()) return std::shared_ptr<arrow::RecordBatch>();
  std::vector<std::shared_ptr<arrow::Array>> columns = batch.columns();
  for (int i = 0; i < batch.num_columns(); ++i) {
    const arrow::Field& was = *batch.schema()->field(i);
    const arrow::Field& now = *conformed->field(i);
    if (was.nullable() && !now.nullable() && columns[i]->null_count() != 0) {
      return Status::SchemaMismatch("field '" + now.name() +
                                    "' is non-nullable in the channel, but the batch holds " +
                                    std::to_string(columns[i]->null_count()) + " nulls in it");
    }
    if (!was.type()->Equals(*now.type())) {
      QUIVER_RETURN_IF_ERROR(InitializeCompute());
      arrow::Result<std::shared_ptr<arrow::Array>> cast =
          arrow::compute::Cast(*columns[i], now.type());
      if (!cast.ok()) {
        return Status::SchemaMismatch("field '" + now.name() + "' of type " +
                                      was.type()->ToString() +
                                      " cannot be stored as the channel's " +
                                      now.type()->ToString() + ": " + cast.status().message());
      }
      columns[i] = std::move(*cast);
    }
  }
  return arrow::RecordBatch::Make(conformed, batch.num_rows(), std::move(columns));
}

}  // namespace quiver::payload
