// Schema files of typed channels: a JSON list of fields, read into the Arrow schema a
// pipeline's channel is created with. Pure functions; thread-safe.
//
//   [{"name": "id", "type": "int64", "nullable": false},
//    {"name": "code", "type": "utf8"}]                     // nullable defaults to true
#pragma once

#include <arrow/type_fwd.h>

#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "quiver/status.h"

namespace quiver {

/// The type names a schema file may use, in Arrow's spelling: bool, int8, int16, int32,
/// int64, uint8, uint16, uint32, uint64, float32, float64, utf8, large_utf8, binary,
/// large_binary, date32, timestamp[s], timestamp[ms], timestamp[us], timestamp[ns].
std::span<const std::string_view> SchemaTypeNames();

/// Parses schema-file text. kInvalidArgument naming `source` and the offending field for
/// malformed JSON, an unknown type or key, a missing or duplicate name, or no fields.
Result<std::shared_ptr<arrow::Schema>> ParseSchemaJson(std::string_view text,
                                                       std::string_view source);

/// Reads and parses a schema file (a regular file of at most 1 MiB). kNotFound if it cannot
/// be read.
Result<std::shared_ptr<arrow::Schema>> LoadSchemaFile(const std::filesystem::path& path);

}  // namespace quiver
