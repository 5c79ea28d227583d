// An Arrow channel's schemas: created with the channel as type version 1, read back by
// version from its type registry, and the check that a new schema may follow them all.
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>

#include <string>
#include <vector>

#include "payload/conform.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"

namespace quiver {

Result<Channel> CreateArrowChannel(std::string_view name,
                                   const std::shared_ptr<arrow::Schema>& schema,
                                   ChannelOptions options) {
  QUIVER_RETURN_IF_ERROR(payload::CheckEvolution({}, *schema));
  auto serialized = arrow::ipc::SerializeSchema(*schema);
  if (!serialized.ok()) {
    return Status::InvalidArgument("serializing schema: " + serialized.status().ToString());
  }
  options.type_descriptor = (*serialized)->ToString();
  return Channel::Create(name, options);
}

Result<std::shared_ptr<arrow::Schema>> ChannelSchema(const Channel& channel, uint32_t version) {
  if (channel.type_versions() == 0) {
    return Status::InvalidArgument("channel '" + channel.name() + "' carries no Arrow schema");
  }
  if (version == 0) version = channel.type_versions();
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

Status CheckSchemaFollows(const Channel& channel, const arrow::Schema& schema) {
  std::vector<std::shared_ptr<arrow::Schema>> versions;
  for (uint32_t v = 1; v <= channel.type_versions(); ++v) {
    QUIVER_ASSIGN_OR_RETURN(auto version, ChannelSchema(channel, v));
    versions.push_back(std::move(version));
  }
  if (versions.empty()) return payload::CheckEvolution(versions, schema);
  // As its batches will be published: conformed to the newest version first.
  const auto given = std::make_shared<arrow::Schema>(schema.fields(), schema.metadata());
  return payload::CheckEvolution(versions, *payload::ConformSchema(given, *versions.back()));
}

}  // namespace quiver
