// Arrow batch samples. Layout of one sample (all offsets from the sample start):
//
//   [0, 64)          SampleHeader: kind kArrowBatch, type_version, count = rows,
//                    meta = the message table and flatbuffers, body = every message body
//   meta_offset      MessageTable { count } + MessageEntry[count]: dictionaries first
//                    (dictionary_id >= 0), the record batch last (dictionary_id = -1)
//   ...              each entry's IPC flatbuffer metadata (Message.fbs), 8-byte aligned
//   body_offset      the bodies, 64-byte aligned; buffers inside padded to 64 bytes
//
// No schema travels with a sample: it is the channel's type version `type_version`.
#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/message.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>

#include <atomic>
#include <cstring>
#include <map>
#include <vector>

#include "payload/conform.h"
#include "payload/ipc_metadata.h"
#include "payload/sample_buffer.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"
#include "quiver/sample_header.h"

namespace quiver {
namespace {

struct MessageTable {
  uint32_t count;
  uint32_t reserved;
};
struct MessageEntry {
  int64_t dictionary_id;  // -1: the record batch
  uint64_t metadata_offset;
  uint64_t metadata_length;
  uint64_t body_offset;
  uint64_t body_length;
};
static_assert(sizeof(MessageTable) == 8 && sizeof(MessageEntry) == 40);

constexpr int32_t kBufferAlignment = 64;
constexpr size_t kMetadataReserve = 16 << 10;  // BatchLoan: room for the metadata
constexpr uint32_t kMaxMessages = 1024;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

Status FromArrow(const arrow::Status& st, ErrorCode code, const std::string& context) {
  if (st.ok()) return Status::OK();
  return Status(code, context + ": " + st.ToString());
}

arrow::ipc::IpcWriteOptions WriteOptions() {
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  options.alignment = kBufferAlignment;
  options.use_threads = false;
  return options;
}

// One IPC message to write: its flatbuffer and the buffers of its body.
struct Message {
  int64_t dictionary_id;
  arrow::ipc::IpcPayload payload;
};

// The messages for `batch`: one per dictionary (inner before outer), then the batch.
Result<std::vector<Message>> MessagesFor(const arrow::RecordBatch& batch) {
  const auto options = WriteOptions();
  std::vector<Message> messages;
  arrow::ipc::DictionaryFieldMapper mapper(*batch.schema());
  auto dictionaries = arrow::ipc::CollectDictionaries(batch, mapper);
  if (!dictionaries.ok()) {
    return Status::InvalidArgument(dictionaries.status().ToString());
  }
  for (const auto& [id, dictionary] : *dictionaries) {
    auto dict_batch = arrow::RecordBatch::Make(
        arrow::schema(arrow::FieldVector{arrow::field("dictionary", dictionary->type())}),
        dictionary->length(), {dictionary});
    Message m{id, {}};
    QUIVER_RETURN_IF_ERROR(
        FromArrow(arrow::ipc::GetRecordBatchPayload(*dict_batch, options, &m.payload),
                  ErrorCode::kInvalidArgument, "encoding dictionary " + std::to_string(id)));
    messages.push_back(std::move(m));
  }
  Message m{-1, {}};
  QUIVER_RETURN_IF_ERROR(FromArrow(arrow::ipc::GetRecordBatchPayload(batch, options, &m.payload),
                                   ErrorCode::kInvalidArgument, "encoding record batch"));
  messages.push_back(std::move(m));
  return messages;
}

// Where the metadata of each message goes, after the table; returns the end of it all.
uint64_t PlanMetadata(const std::vector<Message>& messages, std::vector<uint64_t>* offsets) {
  uint64_t at = kSampleHeaderBytes + sizeof(MessageTable) + messages.size() * sizeof(MessageEntry);
  for (const Message& m : messages) {
    at = AlignUp(at, 8);
    offsets->push_back(at);
    at += static_cast<uint64_t>(m.payload.metadata->size());
  }
  return at;
}

void WriteTableAndMetadata(std::byte* sample, const std::vector<Message>& messages,
                           const std::vector<uint64_t>& metadata_offsets,
                           const std::vector<MessageEntry>& entries) {
  MessageTable table{static_cast<uint32_t>(messages.size()), 0};
  std::memcpy(sample + kSampleHeaderBytes, &table, sizeof(table));
  std::memcpy(sample + kSampleHeaderBytes + sizeof(table), entries.data(),
              entries.size() * sizeof(MessageEntry));
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& metadata = messages[i].payload.metadata;
    std::memcpy(sample + metadata_offsets[i], metadata->data(),
                static_cast<size_t>(metadata->size()));
  }
}

void WriteHeader(std::byte* sample, uint32_t version, uint64_t meta_end, uint64_t body_offset,
                 uint64_t body_length, int64_t rows) {
  SampleHeader h = MakeSampleHeader(PayloadKind::kArrowBatch);
  h.type_version = version;
  h.meta_offset = kSampleHeaderBytes;
  h.meta_length = meta_end - kSampleHeaderBytes;
  h.body_offset = body_offset;
  h.body_length = body_length;
  h.count = static_cast<uint64_t>(rows);
  std::memcpy(sample, &h, sizeof(h));
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

}  // namespace

// ---- Channel and schema ---------------------------------------------------------------------

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
  return payload::CheckEvolution(versions, schema);
}

// ---- BatchLoan --------------------------------------------------------------------------

// A bump allocator over the loan's arena. It deletes itself once the loan is gone and every
// buffer allocated from it was freed, because Arrow buffers keep a raw pointer to their pool.
class LoanPool final : public arrow::MemoryPool {
 public:
  LoanPool(uint8_t* begin, int64_t size) : begin_(begin), size_(size) {}

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    const int64_t start = static_cast<int64_t>(
        AlignUp(static_cast<uint64_t>(used_), std::max<int64_t>(alignment, kBufferAlignment)));
    if (size < 0 || start > size_ || size > size_ - start) {
      return arrow::Status::OutOfMemory("BatchLoan: ", size, " bytes do not fit (",
                                        size_ - std::min(start, size_), " left)");
    }
    *out = begin_ + start;
    last_ = *out;
    used_ = start + size;
    live_.fetch_add(1, std::memory_order_relaxed);
    allocated_ += size;
    ++allocations_;
    return arrow::Status::OK();
  }
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    if (*ptr == last_ && *ptr + new_size <= begin_ + size_) {  // the newest grows in place
      used_ = (*ptr - begin_) + new_size;
      allocated_ += new_size - old_size;
      return arrow::Status::OK();
    }
    uint8_t* moved = nullptr;
    ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &moved));
    std::memcpy(moved, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
    Free(*ptr, old_size, alignment);
    *ptr = moved;
    return arrow::Status::OK();
  }
  void Free(uint8_t* buffer, int64_t size, int64_t /*alignment*/) override {
    if (buffer == last_ && buffer + size == begin_ + used_) used_ = buffer - begin_;
    allocated_ -= size;
    if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && detached_) delete this;
  }
  int64_t bytes_allocated() const override { return allocated_; }
  int64_t total_bytes_allocated() const override { return allocated_; }
  int64_t num_allocations() const override { return allocations_; }
  std::string backend_name() const override { return "quiver-loan"; }

  // The loan is gone: delete once the last buffer is freed.
  void Detach() {
    detached_ = true;
    if (live_.load(std::memory_order_acquire) == 0) delete this;
  }
  bool Contains(const uint8_t* p, int64_t n) const {
    return p >= begin_ && n >= 0 && p + n <= begin_ + used_;
  }
  uint8_t* begin() const { return begin_; }
  int64_t used() const { return used_; }
  int64_t free_bytes() const { return size_ - used_; }

 private:
  uint8_t* begin_;
  int64_t size_;
  int64_t used_ = 0;
  uint8_t* last_ = nullptr;
  int64_t allocated_ = 0;
  int64_t allocations_ = 0;
  std::atomic<int64_t> live_{0};
  bool detached_ = false;
};

struct BatchLoan::Impl {
  Impl(LoanedSample l, LoanPool* p) : loan(std::move(l)), pool(p) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { pool->Detach(); }

  LoanedSample loan;
  LoanPool* pool;
};

BatchLoan::BatchLoan(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BatchLoan::BatchLoan(BatchLoan&&) noexcept = default;
BatchLoan& BatchLoan::operator=(BatchLoan&&) noexcept = default;
BatchLoan::~BatchLoan() = default;
arrow::MemoryPool* BatchLoan::pool() const { return impl_->pool; }
int64_t BatchLoan::bytes_free() const { return impl_->pool->free_bytes(); }

// ---- ArrowPublisher ---------------------------------------------------------------------

ArrowPublisher::ArrowPublisher(Publisher publisher, Channel channel)
    : publisher_(std::move(publisher)), channel_(std::move(channel)) {}

Result<ArrowPublisher> ArrowPublisher::Make(Channel& channel, const PublisherOptions& options) {
  QUIVER_ASSIGN_OR_RETURN(auto schema, ChannelSchema(channel));
  QUIVER_ASSIGN_OR_RETURN(Publisher publisher, channel.CreatePublisher(options));
  return ArrowPublisher(std::move(publisher), channel);
}

Result<uint32_t> ArrowPublisher::SchemaVersionFor(const std::shared_ptr<arrow::Schema>& schema) {
  if (schema == last_schema_ && last_version_ != 0) return last_version_;
  const uint32_t newest = channel_.type_versions();
  QUIVER_ASSIGN_OR_RETURN(auto current, ChannelSchema(channel_, newest));
  uint32_t version = newest;
  if (!schema->Equals(*current, /*check_metadata=*/false)) {
    QUIVER_RETURN_IF_ERROR(CheckSchemaFollows(channel_, *schema));
    auto serialized = arrow::ipc::SerializeSchema(*schema);
    if (!serialized.ok()) {
      return Status::InvalidArgument(serialized.status().ToString());
    }
    QUIVER_ASSIGN_OR_RETURN(version, publisher_.RegisterType((*serialized)->ToString()));
  }
  last_schema_ = schema;
  last_version_ = version;
  return version;
}

Result<std::shared_ptr<arrow::RecordBatch>> ArrowPublisher::Conform(
    const arrow::RecordBatch& batch) {
  // The common case, the same schema object as last time and fitting as it is, costs one
  // comparison; the channel's newest schema is read again only when its version changed.
  const uint32_t newest = channel_.type_versions();
  if (batch.schema() == fits_schema_ && fits_version_ == newest)
    return std::shared_ptr<arrow::RecordBatch>();
  if (newest_ == nullptr || newest_version_ != newest) {
    QUIVER_ASSIGN_OR_RETURN(newest_, ChannelSchema(channel_, newest));
    newest_version_ = newest;
  }
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::RecordBatch> conformed,
                          payload::ConformBatch(batch, *newest_));
  if (conformed == nullptr) {
    fits_schema_ = batch.schema();
    fits_version_ = newest;
  }
  return conformed;
}

Result<LoanedSample> ArrowPublisher::Encode(const arrow::RecordBatch& given) {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::RecordBatch> conformed, Conform(given));
  const arrow::RecordBatch& batch = conformed != nullptr ? *conformed : given;
  QUIVER_ASSIGN_OR_RETURN(uint32_t version, SchemaVersionFor(batch.schema()));
  QUIVER_ASSIGN_OR_RETURN(std::vector<Message> messages, MessagesFor(batch));
  std::vector<uint64_t> metadata_offsets;
  const uint64_t meta_end = PlanMetadata(messages, &metadata_offsets);
  const uint64_t body_offset = AlignUp(meta_end, kBodyAlignment);
  // Our own body layout: every buffer 64-byte aligned. The metadata is told where.
  std::vector<MessageEntry> entries;
  std::vector<std::vector<payload::BufferSpan>> spans(messages.size());
  uint64_t at = body_offset;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& p = messages[i].payload;
    int64_t offset = 0;
    for (const auto& buffer : p.body_buffers) {
      const int64_t size = buffer ? buffer->size() : 0;
      spans[i].push_back({size > 0 ? offset : 0, size});
      offset += static_cast<int64_t>(AlignUp(static_cast<uint64_t>(size), kBufferAlignment));
    }
    entries.push_back({messages[i].dictionary_id, metadata_offsets[i],
                       static_cast<uint64_t>(p.metadata->size()), at,
                       static_cast<uint64_t>(offset)});
    at = AlignUp(at + static_cast<uint64_t>(offset), kBodyAlignment);
  }
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan, publisher_.Loan(at));
  std::byte* sample = loan.data().data();
  WriteTableAndMetadata(sample, messages, metadata_offsets, entries);
  for (size_t i = 0; i < messages.size(); ++i) {
    // The one copy of the buffers.
    std::byte* body = sample + entries[i].body_offset;
    const auto& buffers = messages[i].payload.body_buffers;
    for (size_t b = 0; b < buffers.size(); ++b) {
      if (spans[i][b].length > 0) {
        std::memcpy(body + spans[i][b].offset, buffers[b]->data(),
                    static_cast<size_t>(spans[i][b].length));
      }
    }
    auto* metadata = reinterpret_cast<uint8_t*>(sample + metadata_offsets[i]);
    QUIVER_RETURN_IF_ERROR(payload::RewriteBufferSpans(
        {metadata, static_cast<size_t>(messages[i].payload.metadata->size())}, spans[i],
        static_cast<int64_t>(entries[i].body_length)));
  }
  WriteHeader(sample, version, meta_end, body_offset, at - body_offset, batch.num_rows());
  return loan;
}

Status ArrowPublisher::Publish(const arrow::RecordBatch& batch) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan, Encode(batch));
  return publisher_.Publish(std::move(loan));
}

Result<BatchLoan> ArrowPublisher::LoanBatch(size_t bytes) {
  const uint64_t arena_offset = AlignUp(kSampleHeaderBytes + kMetadataReserve, kBodyAlignment);
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan, publisher_.Loan(arena_offset + bytes));
  auto* arena = reinterpret_cast<uint8_t*>(loan.data().data()) + arena_offset;
  auto impl = std::make_unique<BatchLoan::Impl>(std::move(loan),
                                                new LoanPool(arena, static_cast<int64_t>(bytes)));
  return BatchLoan(std::move(impl));
}

Result<LoanedSample> ArrowPublisher::Encode(BatchLoan&& batch_loan,
                                            const arrow::RecordBatch& given) {
  // Conforming may only relabel nullability here: a cast column would lie outside the loan
  // (and is refused below, pointing at Publish(batch)).
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::RecordBatch> conformed, Conform(given));
  const arrow::RecordBatch& batch = conformed != nullptr ? *conformed : given;
  QUIVER_ASSIGN_OR_RETURN(uint32_t version, SchemaVersionFor(batch.schema()));
  QUIVER_ASSIGN_OR_RETURN(std::vector<Message> messages, MessagesFor(batch));
  LoanPool& pool = *batch_loan.impl_->pool;
  std::byte* sample = batch_loan.impl_->loan.data().data();
  const uint64_t body_offset =
      static_cast<uint64_t>(reinterpret_cast<std::byte*>(pool.begin()) - sample);
  // Every message's body is the whole arena; its metadata names where each buffer is.
  std::vector<MessageEntry> entries;
  std::vector<uint64_t> metadata_offsets;
  const uint64_t meta_end = PlanMetadata(messages, &metadata_offsets);
  if (meta_end > body_offset) {
    return Status::InvalidArgument("the batch's IPC metadata (" + std::to_string(meta_end) +
                                   " bytes) exceeds the BatchLoan's reserve; use Publish(batch)");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    entries.push_back({messages[i].dictionary_id, metadata_offsets[i],
                       static_cast<uint64_t>(messages[i].payload.metadata->size()), body_offset,
                       static_cast<uint64_t>(pool.used())});
  }
  WriteTableAndMetadata(sample, messages, metadata_offsets, entries);
  for (size_t i = 0; i < messages.size(); ++i) {
    std::vector<payload::BufferSpan> spans;
    int b = 0;
    for (const auto& buffer : messages[i].payload.body_buffers) {
      const int64_t size = buffer ? buffer->size() : 0;
      if (size > 0 && !pool.Contains(buffer->data(), size)) {
        return Status(
            ErrorCode::kInvalidArgument,
            "buffer " + std::to_string(b) +
                " of the batch was not allocated from the "
                "BatchLoan's pool (a sliced array, or built elsewhere); use Publish(batch)");
      }
      spans.push_back({size > 0 ? buffer->data() - pool.begin() : 0, size});
      ++b;
    }
    auto* metadata = reinterpret_cast<uint8_t*>(sample + metadata_offsets[i]);
    QUIVER_RETURN_IF_ERROR(payload::RewriteBufferSpans(
        {metadata, static_cast<size_t>(messages[i].payload.metadata->size())}, spans, pool.used()));
  }
  WriteHeader(sample, version, meta_end, body_offset, static_cast<uint64_t>(pool.used()),
              batch.num_rows());
  return std::move(batch_loan.impl_->loan);
}

Status ArrowPublisher::Publish(BatchLoan&& loan, const arrow::RecordBatch& batch) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, Encode(std::move(loan), batch));
  return publisher_.Publish(std::move(sample));
}

// ---- ArrowSubscriber --------------------------------------------------------------------

ArrowSubscriber::ArrowSubscriber(Subscriber subscriber, Channel channel,
                                 ArrowSubscriberOptions options)
    : subscriber_(std::move(subscriber)),
      channel_(std::move(channel)),
      options_(std::move(options)) {}

Result<ArrowSubscriber> ArrowSubscriber::Make(Channel& channel, ArrowSubscriberOptions options) {
  QUIVER_ASSIGN_OR_RETURN(auto newest, ChannelSchema(channel));
  if (options.reader_schema) {
    QUIVER_RETURN_IF_ERROR(payload::CheckReader(*options.reader_schema, *newest));
  }
  QUIVER_ASSIGN_OR_RETURN(Subscriber subscriber, channel.CreateSubscriber(options.subscriber));
  return ArrowSubscriber(std::move(subscriber), channel, std::move(options));
}

Result<std::shared_ptr<arrow::Schema>> ArrowSubscriber::SchemaOf(uint32_t version) {
  if (version == 0 || version > channel_.type_versions()) {
    return Status::ShmCorruption("sample names schema version " + std::to_string(version) +
                                 " but channel '" + channel_.name() + "' has " +
                                 std::to_string(channel_.type_versions()));
  }
  if (schemas_.size() < version) schemas_.resize(version);
  if (!schemas_[version - 1]) {
    QUIVER_ASSIGN_OR_RETURN(schemas_[version - 1], ChannelSchema(channel_, version));
  }
  return schemas_[version - 1];
}

Result<ArrowSample> ArrowSubscriber::Decode(Sample sample) {
  QUIVER_RETURN_IF_ERROR(FollowRestarts());
  const uint64_t sequence = sample.sequence();
  auto held = std::make_shared<const Sample>(std::move(sample));
  const std::span<const std::byte> bytes = held->data();
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header, ReadSampleHeader(bytes, PayloadKind::kArrowBatch));
  auto corrupt = [&](const std::string& what) {
    return Status::ShmCorruption("Arrow sample " + std::to_string(sequence) + " of '" +
                                 channel_.name() + "': " + what);
  };
  MessageTable table;
  if (header.meta_length < sizeof(table)) return corrupt("no message table");
  std::memcpy(&table, bytes.data() + header.meta_offset, sizeof(table));
  if (table.count == 0 || table.count > kMaxMessages ||
      sizeof(table) + uint64_t{table.count} * sizeof(MessageEntry) > header.meta_length) {
    return corrupt("message table of " + std::to_string(table.count) + " entries does not fit");
  }
  std::vector<MessageEntry> entries(table.count);
  std::memcpy(entries.data(), bytes.data() + header.meta_offset + sizeof(table),
              entries.size() * sizeof(MessageEntry));
  if (entries.back().dictionary_id != -1) return corrupt("last message is not the record batch");

  QUIVER_ASSIGN_OR_RETURN(auto schema, SchemaOf(header.type_version));
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
        e.metadata_length > meta_end - e.metadata_offset || e.metadata_offset % 8 != 0) {
      return corrupt("message " + std::to_string(i) +
                     " metadata lies outside the sample's metadata");
    }
    if (e.body_offset < header.body_offset || e.body_offset > body_end ||
        e.body_length > body_end - e.body_offset || e.body_offset % 8 != 0) {
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
      options_.validation == BatchValidation::kFull ? batch->ValidateFull() : batch->Validate();
  if (!valid.ok()) return corrupt(valid.ToString());
  if (options_.reader_schema) {
    QUIVER_ASSIGN_OR_RETURN(batch, payload::ProjectByName(batch, options_.reader_schema));
  }
  return ArrowSample{std::move(batch), header.type_version, sequence};
}

Status ArrowSubscriber::FollowRestarts() {
  if (subscriber_.restarts_followed() == followed_) return Status::OK();
  // The subscriber moved to a restarted publisher's channel: its own schema versions.
  followed_ = subscriber_.restarts_followed();
  channel_ = subscriber_.channel();
  schemas_.clear();
  if (options_.reader_schema) {
    QUIVER_ASSIGN_OR_RETURN(auto newest, ChannelSchema(channel_));
    QUIVER_RETURN_IF_ERROR(payload::CheckReader(*options_.reader_schema, *newest));
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
