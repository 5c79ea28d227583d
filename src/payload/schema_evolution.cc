#include "payload/schema_evolution.h"

#include <arrow/array.h>
#include <arrow/array/util.h>
#include <arrow/record_batch.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

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

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours, each one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string Describe(const arrow::Field& field) {
  return "'" + field.name() + "' (" + field.type()->ToString() +
         (field.nullable() ? "" : ", non-null") + ")";
}

/// The fields of `next` that are new to every version and look like a misspelling of a
/// field of `newest` that `next` leaves out, as "'qtty' looks like a misspelling of 'qty'".
std::vector<std::string> Misspellings(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                                      const arrow::Schema& next) {
  const arrow::Schema& newest = *versions.back();
  std::vector<std::string> found;
  for (const auto& field : next.fields()) {
    bool existed = false;
    for (const auto& version : versions) {
      existed |= version->GetFieldByName(field->name()) != nullptr;
    }
    if (existed) continue;
    for (const auto& old_field : newest.fields()) {
      if (next.GetFieldByName(old_field->name()) == nullptr &&
          LooksLikeMisspelling(field->name(), old_field->name())) {
        found.push_back("'" + field->name() + "' looks like a misspelling of '" +
                        old_field->name() + "'");
        break;
      }
    }
  }
  return found;
}

std::string Joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : ", ") + part;
  return out;
}

/// kStrict: `next` must have the newest version's fields, names, types and nullability.
Status CheckSameFields(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                       const arrow::Schema& next) {
  const arrow::Schema& newest = *versions.back();
  std::vector<std::string> differences;
  for (const auto& field : next.fields()) {
    const auto old_field = newest.GetFieldByName(field->name());
    if (old_field == nullptr) {
      differences.push_back("adds " + Describe(*field));
    } else if (!old_field->type()->Equals(*field->type()) ||
               old_field->nullable() != field->nullable()) {
      differences.push_back("has " + Describe(*field) + " where the channel has " +
                            Describe(*old_field));
    }
  }
  for (const auto& old_field : newest.fields()) {
    if (next.GetFieldByName(old_field->name()) == nullptr) {
      differences.push_back("lacks " + Describe(*old_field));
    }
  }
  if (differences.empty()) return Status::OK();
  const std::vector<std::string> typos = Misspellings(versions, next);
  return Mismatch("the batch's schema differs from the channel's (version " +
                  std::to_string(versions.size()) + "): it " + Joined(differences) +
                  (typos.empty() ? "" : "; " + Joined(typos)) +
                  ". The channel was created with schema evolution 'strict' (the default), "
                  "which takes only batches of its schema; create it with evolution "
                  "'add-nullable' to let it grow by nullable fields");
}

}  // namespace

bool LooksLikeMisspelling(std::string_view written, std::string_view meant) {
  if (written == meant) return false;
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  if (lower(written) == lower(meant)) return true;
  const size_t shorter = std::min(written.size(), meant.size());
  if (shorter < 3) return false;
  return EditDistance(written, meant) <= std::max<size_t>(1, shorter / 4);
}

Status CheckEvolution(const std::vector<std::shared_ptr<arrow::Schema>>& versions,
                      const arrow::Schema& next, SchemaEvolution evolution) {
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
  if (evolution == SchemaEvolution::kStrict) return CheckSameFields(versions, next);
  if (const std::vector<std::string> typos = Misspellings(versions, next); !typos.empty()) {
    return Mismatch("the new schema " + Joined(typos) +
                    ", which it leaves out; check the column names. To rename a field, "
                    "publish a batch with both fields first, then batches without the old one");
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
