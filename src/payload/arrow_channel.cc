// An Arrow channel's schemas: created with the channel as type version 1 (which also
// records the channel's SchemaEvolution, as schema metadata), read back by version from its
// type registry, and the check that a new schema may follow them all.
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/key_value_metadata.h>

#include <string>
#include <vector>

#include "payload/conform.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"

namespace quiver {

namespace {

/// The metadata key of schema version 1 that records the channel's SchemaEvolution; it is
/// taken out of the schemas ChannelSchema returns.
constexpr char kEvolutionKey[] = "quiver.evolution";

/// Type version 1 of a channel of `schema`: the schema with the evolution rule, serialized.
Result<std::string> FirstTypeDescriptor(const std::shared_ptr<arrow::Schema>& schema,
                                        SchemaEvolution evolution) {
  QUIVER_RETURN_IF_ERROR(payload::CheckEvolution({}, *schema));
  auto metadata =
      schema->metadata() ? schema->metadata()->Copy() : std::make_shared<arrow::KeyValueMetadata>();
  if (metadata->Contains(kEvolutionKey)) {
    return Status::InvalidArgument(std::string("schema metadata key '") + kEvolutionKey +
                                   "' is Quiver's own; remove it from the schema");
  }
  metadata->Append(kEvolutionKey, std::string(SchemaEvolutionName(evolution)));
  auto serialized = arrow::ipc::SerializeSchema(*schema->WithMetadata(metadata));
  if (!serialized.ok()) {
    return Status::InvalidArgument("serializing schema: " + serialized.status().ToString());
  }
  return (*serialized)->ToString();
}

/// Schema version `version` (1-based) as stored, metadata and all.
Result<std::shared_ptr<arrow::Schema>> StoredSchema(const Channel& channel, uint32_t version) {
  if (channel.type_versions() == 0) {
    return Status::InvalidArgument("channel '" + channel.name() + "' carries no Arrow schema");
  }
  QUIVER_ASSIGN_OR_RETURN(std::string_view bytes, channel.TypeDescriptor(version));
  // Copy the bytes: the schema outlives no mapping, and it is small.
  auto buffer = arrow::Buffer::FromString(std::string(bytes));
  arrow::io::BufferReader reader(buffer);
  arrow::ipc::DictionaryMemo memo;
  auto schema = arrow::ipc::ReadSchema(&reader, &memo);
  if (!schema.ok()) {
    return Status::ShmCorruption("schema version " + std::to_string(version) + " of channel '" +
                                 channel.name() + "': " + schema.status().ToString());
  }
  return *schema;
}

}  // namespace

Result<SchemaEvolution> ParseSchemaEvolution(std::string_view name) {
  if (name == "strict") return SchemaEvolution::kStrict;
  if (name == "add-nullable") return SchemaEvolution::kAddNullable;
  return Status::InvalidArgument("schema evolution must be 'strict' or 'add-nullable', not '" +
                                 std::string(name) + "'");
}

std::string_view SchemaEvolutionName(SchemaEvolution evolution) {
  return evolution == SchemaEvolution::kStrict ? "strict" : "add-nullable";
}

Result<Channel> CreateArrowChannel(std::string_view name,
                                   const std::shared_ptr<arrow::Schema>& schema,
                                   ChannelOptions options, SchemaEvolution evolution) {
  QUIVER_ASSIGN_OR_RETURN(options.type_descriptor, FirstTypeDescriptor(schema, evolution));
  return Channel::Create(name, options);
}

Result<Channel> OpenOrCreateArrowChannel(std::string_view name,
                                         const std::shared_ptr<arrow::Schema>& schema,
                                         ChannelOptions options, SchemaEvolution evolution) {
  QUIVER_ASSIGN_OR_RETURN(options.type_descriptor, FirstTypeDescriptor(schema, evolution));
  return Channel::OpenOrCreate(name, options);
}

Result<SchemaEvolution> ChannelEvolution(const Channel& channel) {
  QUIVER_ASSIGN_OR_RETURN(auto first, StoredSchema(channel, 1));
  const auto& metadata = first->metadata();
  // A channel made without the key (by a build before it existed) is strict.
  if (metadata == nullptr || !metadata->Contains(kEvolutionKey)) return SchemaEvolution::kStrict;
  auto name = metadata->Get(kEvolutionKey);
  Result<SchemaEvolution> parsed = ParseSchemaEvolution(name.ok() ? *name : "");
  if (!parsed.ok()) {
    return Status::ShmCorruption("channel '" + channel.name() + "': " + parsed.status().message());
  }
  return parsed;
}

Result<std::shared_ptr<arrow::Schema>> ChannelSchema(const Channel& channel, uint32_t version) {
  if (channel.type_versions() == 0) {
    return Status::InvalidArgument("channel '" + channel.name() + "' carries no Arrow schema");
  }
  if (version == 0) version = channel.type_versions();
  QUIVER_ASSIGN_OR_RETURN(auto schema, StoredSchema(channel, version));
  const auto& metadata = schema->metadata();
  if (metadata == nullptr || !metadata->Contains(kEvolutionKey)) return schema;
  auto rest = metadata->Copy();
  (void)rest->Delete(kEvolutionKey);
  return rest->size() == 0 ? schema->RemoveMetadata() : schema->WithMetadata(rest);
}

Status CheckSchemaFollows(const Channel& channel, const arrow::Schema& schema) {
  std::vector<std::shared_ptr<arrow::Schema>> versions;
  for (uint32_t v = 1; v <= channel.type_versions(); ++v) {
    QUIVER_ASSIGN_OR_RETURN(auto version, ChannelSchema(channel, v));
    versions.push_back(std::move(version));
  }
  if (versions.empty()) return payload::CheckEvolution(versions, schema);
  QUIVER_ASSIGN_OR_RETURN(SchemaEvolution evolution, ChannelEvolution(channel));
  // As its batches will be published: conformed to the newest version first.
  const auto given = std::make_shared<arrow::Schema>(schema.fields(), schema.metadata());
  return payload::CheckEvolution(versions, *payload::ConformSchema(given, *versions.back()),
                                 evolution);
}

}  // namespace quiver
