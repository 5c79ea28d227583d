// Reading Arrow samples (arrow_format.h): DecodeArrowSample, for a sample however it was
// received, and ArrowSubscriber, which receives and decodes with its schemas cached.
#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/message.h>
#include <arrow/ipc/reader.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "payload/arrow_format.h"
#include "payload/ipc_metadata.h"
#include "payload/sample_buffer.h"
#include "payload/schema_evolution.h"
#include "payload/typed_header.h"
#include "quiver/arrow.h"
#include "quiver/sample_header.h"

namespace quiver {
namespace {

using payload::MessageEntry;
using payload::MessageTable;

// The channel's schemas by version: [version - 1], filled as samples name them.
using SchemaCache = std::vector<std::shared_ptr<arrow::Schema>>;

Result<std::shared_ptr<arrow::Schema>> SchemaOf(const Channel& channel, uint32_t version,
                                                SchemaCache* schemas) {
  if (version == 0 || version > channel.type_versions()) {
    return Status::ShmCorruption("sample names schema version " + std::to_string(version) +
                                 " but channel '" + channel.name() + "' has " +
                                 std::to_string(channel.type_versions()));
  }
  if (schemas->size() < version) schemas->resize(version);
  if (!(*schemas)[version - 1]) {
    QUIVER_ASSIGN_OR_RETURN((*schemas)[version - 1], ChannelSchema(channel, version));
  }
  return (*schemas)[version - 1];
}

// Maps dictionary ids to their value types, walking the schema as the IPC writer does.
Status DictionaryValueTypes(const arrow::FieldVector& fields, std::vector<int>* path,
                            const arrow::ipc::DictionaryFieldMapper& mapper,
                            std::map<int64_t, std::shared_ptr<arrow::DataType>>* out) {
  for (int i = 0; i < static_cast<int>(fields.size()); ++i) {
    path->push_back(i);
    auto type = fields[i]->type();
    if (type->id() == arrow::Type::DICTIONARY) {
      auto id = mapper.GetFieldId(*path);
      if (!id.ok()) return Status::ShmCorruption(id.status().ToString());
      type = static_cast<const arrow::DictionaryType&>(*type).value_type();
      (*out)[*id] = type;
    }
    QUIVER_RETURN_IF_ERROR(DictionaryValueTypes(type->fields(), path, mapper, out));
    path->pop_back();
  }
  return Status::OK();
}

Result<ArrowSample> DecodeWith(const Channel& channel, Sample sample,
                               const ArrowDecodeOptions& decode, SchemaCache* schemas) {
  const uint64_t sequence = sample.sequence();
  auto held = std::make_shared<const Sample>(std::move(sample));
  const std::span<const std::byte> bytes = held->data();
  auto corrupt = [&](const std::string& what) {
    return Status::ShmCorruption("Arrow sample " + std::to_string(sequence) + " of '" +
                                 channel.name() + "': " + what);
  };
  MessageTable table;
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header,
                          payload::ReadTypedHeader(bytes, PayloadKind::kArrowBatch,
                                                   std::as_writable_bytes(std::span(&table, 1)),
                                                   payload::MetaLength::kAtLeast));
  if (table.count == 0 || table.count > payload::kMaxMessages ||
      sizeof(table) + uint64_t{table.count} * sizeof(MessageEntry) > header.meta_length) {
    return corrupt("message table of " + std::to_string(table.count) + " entries does not fit");
  }
  std::vector<MessageEntry> entries(table.count);
  std::memcpy(entries.data(), bytes.data() + header.meta_offset + sizeof(table),
              entries.size() * sizeof(MessageEntry));
  if (entries.back().dictionary_id != -1) return corrupt("last message is not the record batch");

  QUIVER_ASSIGN_OR_RETURN(auto schema, SchemaOf(channel, header.type_version, schemas));
  arrow::ipc::DictionaryMemo memo;
  std::map<int64_t, std::shared_ptr<arrow::DataType>> dictionary_types;
  if (!memo.fields().AddSchemaFields(*schema).ok()) return corrupt("schema has bad dictionaries");
  if (entries.size() > 1) {  // dictionary messages precede the batch
    std::vector<int> path;
    QUIVER_RETURN_IF_ERROR(
        DictionaryValueTypes(schema->fields(), &path, memo.fields(), &dictionary_types));
  }

  const std::shared_ptr<arrow::Buffer> whole = payload::WrapSample(held);
  const uint64_t meta_end = header.meta_offset + header.meta_length;
  const uint64_t body_end = header.body_offset + header.body_length;
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.use_threads = false;
  std::shared_ptr<arrow::RecordBatch> batch;
  for (size_t i = 0; i < entries.size(); ++i) {
    const MessageEntry& e = entries[i];
    const bool last = i + 1 == entries.size();
    // Both ranges inside their regions of the sample, or nothing is read at all.
    if (e.metadata_offset < header.meta_offset || e.metadata_offset > meta_end ||
        e.metadata_length > meta_end - e.metadata_offset ||
        e.metadata_offset % payload::kMessageAlignment != 0) {
      return corrupt("message " + std::to_string(i) +
                     " metadata lies outside the sample's metadata");
    }
    if (e.body_offset < header.body_offset || e.body_offset > body_end ||
        e.body_length > body_end - e.body_offset ||
        e.body_offset % payload::kMessageAlignment != 0) {
      return corrupt("message " + std::to_string(i) + " body lies outside the sample's body");
    }
    auto message =
        arrow::ipc::Message::Open(arrow::SliceBuffer(whole, static_cast<int64_t>(e.metadata_offset),
                                                     static_cast<int64_t>(e.metadata_length)),
                                  arrow::SliceBuffer(whole, static_cast<int64_t>(e.body_offset),
                                                     static_cast<int64_t>(e.body_length)));
    if (!message.ok())
      return corrupt("message " + std::to_string(i) + ": " + message.status().ToString());
    if ((*message)->type() != arrow::ipc::MessageType::RECORD_BATCH) {
      return corrupt("message " + std::to_string(i) + " is not a record batch");
    }
    // Compressed buffers would be decompressed onto the heap, into whatever size the sample
    // claims: a few bytes could make every subscriber allocate gigabytes. Quiver never
    // compresses (arrays point into the sample), so such a message is not a Quiver sample.
    const auto& metadata = *(*message)->metadata();
    auto compressed =
        payload::HasBodyCompression({metadata.data(), static_cast<size_t>(metadata.size())});
    if (!compressed.ok() || *compressed) {
      return corrupt(
          "message " + std::to_string(i) +
          (compressed.ok() ? " has a compressed body" : ": " + compressed.status().message()));
    }
    if (!last) {
      auto type = dictionary_types.find(e.dictionary_id);
      if (type == dictionary_types.end()) {
        return corrupt("dictionary id " + std::to_string(e.dictionary_id) +
                       " is not in the schema");
      }
      auto dict_batch = arrow::ipc::ReadRecordBatch(
          **message, arrow::schema(arrow::FieldVector{arrow::field("dictionary", type->second)}),
          nullptr, options);
      if (!dict_batch.ok()) return corrupt("dictionary: " + dict_batch.status().ToString());
      if ((*dict_batch)->num_columns() != 1) return corrupt("dictionary batch is not one column");
      auto added = memo.AddDictionary(e.dictionary_id, (*dict_batch)->column(0)->data());
      if (!added.ok()) return corrupt("dictionary: " + added.ToString());
      continue;
    }
    auto read = arrow::ipc::ReadRecordBatch(**message, schema, &memo, options);
    if (!read.ok()) return corrupt(read.status().ToString());
    batch = *std::move(read);
  }
  if (batch->num_rows() != static_cast<int64_t>(header.count)) {
    return corrupt("header says " + std::to_string(header.count) + " rows, the batch has " +
                   std::to_string(batch->num_rows()));
  }
  const arrow::Status valid =
      decode.validation == BatchValidation::kFull ? batch->ValidateFull() : batch->Validate();
  if (!valid.ok()) return corrupt(valid.ToString());
  if (decode.reader_schema) {
    QUIVER_ASSIGN_OR_RETURN(batch, payload::ProjectByName(batch, decode.reader_schema));
  }
  return ArrowSample{std::move(batch), header.type_version, sequence};
}

}  // namespace

Result<ArrowSample> DecodeArrowSample(const Channel& channel, Sample sample,
                                      const ArrowDecodeOptions& options) {
  SchemaCache schemas;
  return DecodeWith(channel, std::move(sample), options, &schemas);
}

// ---- ArrowSubscriber --------------------------------------------------------------------

ArrowSubscriber::ArrowSubscriber(Subscriber subscriber, Channel channel,
                                 ArrowSubscriberOptions options)
    : subscriber_(std::move(subscriber)),
      channel_(std::move(channel)),
      decode_{std::move(options.reader_schema), options.validation} {}

Result<ArrowSubscriber> ArrowSubscriber::Make(Channel& channel, ArrowSubscriberOptions options) {
  QUIVER_ASSIGN_OR_RETURN(auto newest, ChannelSchema(channel));
  if (options.reader_schema) {
    QUIVER_RETURN_IF_ERROR(payload::CheckReader(*options.reader_schema, *newest));
  }
  QUIVER_ASSIGN_OR_RETURN(Subscriber subscriber, channel.CreateSubscriber(options.subscriber));
  return ArrowSubscriber(std::move(subscriber), channel, std::move(options));
}

Result<ArrowSample> ArrowSubscriber::Decode(Sample sample) {
  QUIVER_RETURN_IF_ERROR(FollowRestarts());
  return DecodeWith(channel_, std::move(sample), decode_, &schemas_);
}

Status ArrowSubscriber::FollowRestarts() {
  if (subscriber_.restarts_followed() == followed_) return Status::OK();
  // The subscriber moved to a restarted publisher's channel: its own schema versions.
  followed_ = subscriber_.restarts_followed();
  channel_ = subscriber_.channel();
  schemas_.clear();
  if (decode_.reader_schema) {
    QUIVER_ASSIGN_OR_RETURN(auto newest, ChannelSchema(channel_));
    QUIVER_RETURN_IF_ERROR(payload::CheckReader(*decode_.reader_schema, *newest));
  }
  return Status::OK();
}

Result<ArrowSample> ArrowSubscriber::Receive(std::chrono::nanoseconds timeout) {
  QUIVER_ASSIGN_OR_RETURN(Sample sample, subscriber_.Receive(timeout));
  return Decode(std::move(sample));
}

Result<std::optional<ArrowSample>> ArrowSubscriber::TryReceive() {
  QUIVER_ASSIGN_OR_RETURN(std::optional<Sample> sample, subscriber_.TryReceive());
  if (!sample) return std::optional<ArrowSample>();
  QUIVER_ASSIGN_OR_RETURN(ArrowSample decoded, Decode(std::move(*sample)));
  return std::optional<ArrowSample>(std::move(decoded));
}

}  // namespace quiver
