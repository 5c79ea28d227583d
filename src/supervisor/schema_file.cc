#include "supervisor/schema_file.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace quiver::supervisor {
namespace {

constexpr std::array<std::string_view, 20> kTypeNames = {
    "bool",    "int8",         "int16",         "int32",         "int64",
    "uint8",   "uint16",       "uint32",        "uint64",        "float32",
    "float64", "utf8",         "large_utf8",    "binary",        "large_binary",
    "date32",  "timestamp[s]", "timestamp[ms]", "timestamp[us]", "timestamp[ns]"};

Status Invalid(std::string_view source, const std::string& what) {
  return Status::InvalidArgument(std::string(source) + ": " + what);
}

}  // namespace

std::span<const std::string_view> SchemaTypeNames() { return kTypeNames; }

Result<std::vector<SchemaField>> ParseSchemaJson(std::string_view text, std::string_view source) {
  // Parse without exceptions: a discarded value means malformed JSON.
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid(source, "not valid JSON");
  if (!doc.is_array() || doc.empty()) {
    return Invalid(source, "a schema file must be a non-empty JSON list of fields");
  }
  std::vector<SchemaField> fields;
  std::set<std::string> seen;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& entry = doc[i];
    const std::string where = "field " + std::to_string(i);
    if (!entry.is_object()) return Invalid(source, where + " is not an object");
    SchemaField field;
    for (const auto& [key, value] : entry.items()) {
      if (key == "name" && value.is_string()) {
        field.name = value.get<std::string>();
      } else if (key == "type" && value.is_string()) {
        field.type = value.get<std::string>();
      } else if (key == "nullable" && value.is_boolean()) {
        field.nullable = value.get<bool>();
      } else if (key == "name" || key == "type" || key == "nullable") {
        return Invalid(source, where + ": '" + key + "' has the wrong type");
      } else {
        return Invalid(source,
                       where + ": unknown key '" + key + "' (expected name, type, nullable)");
      }
    }
    if (field.name.empty()) return Invalid(source, where + " has no name");
    if (!seen.insert(field.name).second) {
      return Invalid(source, "field '" + field.name + "' appears twice");
    }
    if (std::find(kTypeNames.begin(), kTypeNames.end(), field.type) == kTypeNames.end()) {
      std::string known;
      for (std::string_view t : kTypeNames) known += (known.empty() ? "" : ", ") + std::string(t);
      return Invalid(source, "field '" + field.name + "' has unknown type '" + field.type +
                                 "' (known: " + known + ")");
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

Result<std::vector<SchemaField>> LoadSchemaFile(const std::filesystem::path& path) {
  // Only a regular file of sane size: a FIFO would block the supervisor forever, and a
  // device (/dev/zero) would be read without end.
  constexpr uintmax_t kMaxSchemaBytes = 1 << 20;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return Status::InvalidArgument("schema file " + path.string() + " is not a regular file");
  }
  if (!ec && std::filesystem::is_regular_file(status) &&
      std::filesystem::file_size(path, ec) > kMaxSchemaBytes && !ec) {
    return Status::InvalidArgument("schema file " + path.string() + " is larger than 1 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read schema file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return ParseSchemaJson(text.str(), path.string());
}

}  // namespace quiver::supervisor
