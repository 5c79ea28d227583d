#include "quiver/schema_file.h"

#include <arrow/type.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace quiver {
namespace {

// The one table of schema-file types: each name with the Arrow type it stands for.
struct TypeName {
  std::string_view name;
  std::shared_ptr<arrow::DataType> (*make)();
};
const std::array<TypeName, 20> kTypes = {{
    {"bool", [] { return arrow::boolean(); }},
    {"int8", [] { return arrow::int8(); }},
    {"int16", [] { return arrow::int16(); }},
    {"int32", [] { return arrow::int32(); }},
    {"int64", [] { return arrow::int64(); }},
    {"uint8", [] { return arrow::uint8(); }},
    {"uint16", [] { return arrow::uint16(); }},
    {"uint32", [] { return arrow::uint32(); }},
    {"uint64", [] { return arrow::uint64(); }},
    {"float32", [] { return arrow::float32(); }},
    {"float64", [] { return arrow::float64(); }},
    {"utf8", [] { return arrow::utf8(); }},
    {"large_utf8", [] { return arrow::large_utf8(); }},
    {"binary", [] { return arrow::binary(); }},
    {"large_binary", [] { return arrow::large_binary(); }},
    {"date32", [] { return arrow::date32(); }},
    {"timestamp[s]", [] { return arrow::timestamp(arrow::TimeUnit::SECOND); }},
    {"timestamp[ms]", [] { return arrow::timestamp(arrow::TimeUnit::MILLI); }},
    {"timestamp[us]", [] { return arrow::timestamp(arrow::TimeUnit::MICRO); }},
    {"timestamp[ns]", [] { return arrow::timestamp(arrow::TimeUnit::NANO); }},
}};

const std::array<std::string_view, kTypes.size()> kTypeNames = [] {
  std::array<std::string_view, kTypes.size()> names;
  for (size_t i = 0; i < kTypes.size(); ++i) names[i] = kTypes[i].name;
  return names;
}();

std::shared_ptr<arrow::DataType> TypeOf(std::string_view name) {
  for (const TypeName& t : kTypes) {
    if (t.name == name) return t.make();
  }
  return nullptr;
}

Status Invalid(std::string_view source, const std::string& what) {
  return Status::InvalidArgument(std::string(source) + ": " + what);
}

}  // namespace

std::span<const std::string_view> SchemaTypeNames() { return kTypeNames; }

Result<std::shared_ptr<arrow::Schema>> ParseSchemaJson(std::string_view text,
                                                       std::string_view source) {
  // Parse without exceptions: a discarded value means malformed JSON.
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid(source, "not valid JSON");
  if (!doc.is_array() || doc.empty()) {
    return Invalid(source, "a schema file must be a non-empty JSON list of fields");
  }
  arrow::FieldVector fields;
  std::set<std::string> seen;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& entry = doc[i];
    const std::string where = "field " + std::to_string(i);
    if (!entry.is_object()) return Invalid(source, where + " is not an object");
    std::string name, type;
    bool nullable = true;
    for (const auto& [key, value] : entry.items()) {
      if (key == "name" && value.is_string()) {
        name = value.get<std::string>();
      } else if (key == "type" && value.is_string()) {
        type = value.get<std::string>();
      } else if (key == "nullable" && value.is_boolean()) {
        nullable = value.get<bool>();
      } else if (key == "name" || key == "type" || key == "nullable") {
        return Invalid(source, where + ": '" + key + "' has the wrong type");
      } else {
        return Invalid(source,
                       where + ": unknown key '" + key + "' (expected name, type, nullable)");
      }
    }
    if (name.empty()) return Invalid(source, where + " has no name");
    if (!seen.insert(name).second) return Invalid(source, "field '" + name + "' appears twice");
    std::shared_ptr<arrow::DataType> arrow_type = TypeOf(type);
    if (arrow_type == nullptr) {
      std::string known;
      for (std::string_view t : kTypeNames) known += (known.empty() ? "" : ", ") + std::string(t);
      return Invalid(source,
                     "field '" + name + "' has unknown type '" + type + "' (known: " + known + ")");
    }
    fields.push_back(arrow::field(name, std::move(arrow_type), nullable));
  }
  return arrow::schema(std::move(fields));
}

Result<std::shared_ptr<arrow::Schema>> LoadSchemaFile(const std::filesystem::path& path) {
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

}  // namespace quiver
