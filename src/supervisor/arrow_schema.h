// Arrow for schema files: turns SchemaFields into an arrow::Schema and gives the ChannelFactory
// that creates typed channels with CreateArrowChannel. Header-only on purpose: the core library
// has no Arrow, so only targets that link quiver_payload (the `quiver` binary, tests) include
// it. Thread-safe (pure functions).
#pragma once

#include <arrow/api.h>

#include <memory>
#include <string_view>
#include <vector>

#include "quiver/arrow.h"
#include "supervisor/schema_file.h"
#include "supervisor/supervisor.h"

namespace quiver::supervisor {

/// Returns the Arrow type of a schema-file type name, or nullptr for an unknown one.
inline std::shared_ptr<arrow::DataType> ArrowTypeOf(std::string_view type) {
  if (type == "bool") return arrow::boolean();
  if (type == "int8") return arrow::int8();
  if (type == "int16") return arrow::int16();
  if (type == "int32") return arrow::int32();
  if (type == "int64") return arrow::int64();
  if (type == "uint8") return arrow::uint8();
  if (type == "uint16") return arrow::uint16();
  if (type == "uint32") return arrow::uint32();
  if (type == "uint64") return arrow::uint64();
  if (type == "float32") return arrow::float32();
  if (type == "float64") return arrow::float64();
  if (type == "utf8") return arrow::utf8();
  if (type == "large_utf8") return arrow::large_utf8();
  if (type == "binary") return arrow::binary();
  if (type == "large_binary") return arrow::large_binary();
  if (type == "date32") return arrow::date32();
  if (type == "timestamp[s]") return arrow::timestamp(arrow::TimeUnit::SECOND);
  if (type == "timestamp[ms]") return arrow::timestamp(arrow::TimeUnit::MILLI);
  if (type == "timestamp[us]") return arrow::timestamp(arrow::TimeUnit::MICRO);
  if (type == "timestamp[ns]") return arrow::timestamp(arrow::TimeUnit::NANO);
  return nullptr;
}

/// The arrow::Schema of a schema file's fields. kInvalidArgument naming an unknown type.
inline Result<std::shared_ptr<arrow::Schema>> ToArrowSchema(
    const std::vector<SchemaField>& fields) {
  arrow::FieldVector arrow_fields;
  for (const SchemaField& f : fields) {
    auto type = ArrowTypeOf(f.type);
    if (type == nullptr) {
      return Status::InvalidArgument("field '" + f.name + "' has unknown type '" + f.type + "'");
    }
    arrow_fields.push_back(arrow::field(f.name, std::move(type), f.nullable));
  }
  return arrow::schema(std::move(arrow_fields));
}

/// A ChannelFactory for RunOptions::create_channel: channels with a schema become Arrow
/// channels (the schema stored as type version 1), the others plain channels.
inline ChannelFactory ArrowChannelFactory() {
  return [](const ChannelSpec& spec, ChannelOptions options) -> Result<Channel> {
    if (spec.schema.empty()) return Channel::Create(spec.name, options);
    QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Schema> schema, ToArrowSchema(spec.schema));
    return CreateArrowChannel(spec.name, schema, std::move(options));
  };
}

}  // namespace quiver::supervisor
