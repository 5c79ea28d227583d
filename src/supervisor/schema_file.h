// Schema files of typed channels: a JSON list of fields, parsed without Arrow so the core
// library can validate a pipeline before anything starts. Pure functions; thread-safe.
//
//   [{"name": "id", "type": "int64", "nullable": false},
//    {"name": "code", "type": "utf8"}]                     // nullable defaults to true
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/status.h"

namespace quiver::supervisor {

/// One column of a schema file.
struct SchemaField {
  std::string name;
  std::string type;  ///< one of SchemaTypeNames()
  bool nullable = true;
};

/// The type names a schema file may use, in Arrow's spelling: bool, int8, int16, int32,
/// int64, uint8, uint16, uint32, uint64, float32, float64, utf8, large_utf8, binary,
/// large_binary, date32, timestamp[s], timestamp[ms], timestamp[us], timestamp[ns].
std::span<const std::string_view> SchemaTypeNames();

/// Parses schema-file text. kInvalidArgument naming `source` and the offending field for
/// malformed JSON, an unknown type or key, a missing or duplicate name, or no fields.
Result<std::vector<SchemaField>> ParseSchemaJson(std::string_view text, std::string_view source);

/// Reads and parses a schema file. kNotFound if it cannot be read.
Result<std::vector<SchemaField>> LoadSchemaFile(const std::filesystem::path& path);

}  // namespace quiver::supervisor
