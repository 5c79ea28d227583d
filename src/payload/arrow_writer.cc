// ArrowPublisher: writes batches as Arrow samples (arrow_format.h), copying their buffers
// once into a loan, or none when they were built in a BatchLoan (loan_pool.h).
#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/writer.h>

#include <cstring>
#include <string>
#include <vector>

#include "payload/arrow_format.h"
#include "payload/conform.h"
#include "payload/ipc_metadata.h"
#include "payload/loan_pool.h"
#include "payload/typed_header.h"
#include "quiver/arrow.h"
#include "quiver/sample_header.h"
#include "shm/stream_copy.h"

namespace quiver {
namespace {

using payload::AlignUp;
using payload::kBufferAlignment;
using payload::MessageEntry;
using payload::MessageTable;

constexpr size_t kMetadataReserve = 16 << 10;  // BatchLoan: room for the metadata

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
  uint64_t at = payload::MessageTableEnd(messages.size());
  for (const Message& m : messages) {
    at = AlignUp(at, payload::kMessageAlignment);
    offsets->push_back(at);
    at += static_cast<uint64_t>(m.payload.metadata->size());
  }
  return at;
}

// The table's entries (the table itself is the kind header: WriteHeader) and the metadata.
void WriteEntriesAndMetadata(std::span<std::byte> sample, const std::vector<Message>& messages,
                             const std::vector<uint64_t>& metadata_offsets,
                             const std::vector<MessageEntry>& entries) {
  std::memcpy(sample.data() + kSampleHeaderBytes + sizeof(MessageTable), entries.data(),
              entries.size() * sizeof(MessageEntry));
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& metadata = messages[i].payload.metadata;
    std::memcpy(sample.data() + metadata_offsets[i], metadata->data(),
                static_cast<size_t>(metadata->size()));
  }
}

void WriteHeader(std::span<std::byte> sample, uint32_t version, size_t messages, uint64_t meta_end,
                 uint64_t body_offset, uint64_t body_length, int64_t rows) {
  SampleHeader h = MakeSampleHeader(PayloadKind::kArrowBatch);
  h.type_version = version;
  h.meta_offset = kSampleHeaderBytes;
  h.meta_length = meta_end - kSampleHeaderBytes;
  h.body_offset = body_offset;
  h.body_length = body_length;
  h.count = static_cast<uint64_t>(rows);
  const MessageTable table{static_cast<uint32_t>(messages), 0};
  payload::WriteTypedHeader(sample, h, std::as_bytes(std::span(&table, 1)));
}

}  // namespace

ArrowPublisher::ArrowPublisher(Publisher publisher, Channel channel)
    : publisher_(std::move(publisher)), channel_(std::move(channel)) {}

Result<ArrowPublisher> ArrowPublisher::Make(Channel& channel, const PublisherOptions& options) {
  QUIVER_ASSIGN_OR_RETURN(auto schema, ChannelSchema(channel));
  QUIVER_ASSIGN_OR_RETURN(Publisher publisher, channel.CreatePublisher(options));
  return ArrowPublisher(std::move(publisher), channel);
}

Result<std::shared_ptr<arrow::Schema>> ArrowPublisher::NewestSchema() {
  // Read from shared memory again only when a version was added.
  const uint32_t newest = channel_.type_versions();
  if (newest_ == nullptr || newest_version_ != newest) {
    QUIVER_ASSIGN_OR_RETURN(newest_, ChannelSchema(channel_, newest));
    newest_version_ = newest;
  }
  return newest_;
}

Result<uint32_t> ArrowPublisher::SchemaVersionFor(const std::shared_ptr<arrow::Schema>& schema) {
  // The same schema object as last time: a C++ producer's batches. A batch imported from
  // Python has a new one each time, compared field by field with the cached newest version.
  if (schema == last_schema_ && last_version_ != 0) return last_version_;
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Schema> current, NewestSchema());
  uint32_t version = newest_version_;
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
  // comparison.
  const uint32_t newest = channel_.type_versions();
  if (batch.schema() == fits_schema_ && fits_version_ == newest) {
    return std::shared_ptr<arrow::RecordBatch>();
  }
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Schema> target, NewestSchema());
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::RecordBatch> conformed,
                          payload::ConformBatch(batch, *target));
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
  WriteEntriesAndMetadata(loan.data(), messages, metadata_offsets, entries);
  for (size_t i = 0; i < messages.size(); ++i) {
    // The one copy of the buffers.
    std::byte* body = sample + entries[i].body_offset;
    const auto& buffers = messages[i].payload.body_buffers;
    for (size_t b = 0; b < buffers.size(); ++b) {
      if (spans[i][b].length > 0) {
        shm::CopyToShared(body + spans[i][b].offset, buffers[b]->data(),
                          static_cast<size_t>(spans[i][b].length), at - body_offset);
      }
    }
    auto* metadata = reinterpret_cast<uint8_t*>(sample + metadata_offsets[i]);
    QUIVER_RETURN_IF_ERROR(payload::RewriteBufferSpans(
        {metadata, static_cast<size_t>(messages[i].payload.metadata->size())}, spans[i],
        static_cast<int64_t>(entries[i].body_length)));
  }
  WriteHeader(loan.data(), version, messages.size(), meta_end, body_offset, at - body_offset,
              batch.num_rows());
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
  auto impl = std::make_unique<BatchLoan::Impl>(
      std::move(loan), new payload::LoanPool(arena, static_cast<int64_t>(bytes)));
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
  payload::LoanPool& pool = *batch_loan.impl_->pool;
  const std::span<std::byte> sample = batch_loan.impl_->loan.data();
  const auto body_offset =
      static_cast<uint64_t>(reinterpret_cast<std::byte*>(pool.begin()) - sample.data());
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
  WriteEntriesAndMetadata(sample, messages, metadata_offsets, entries);
  for (size_t i = 0; i < messages.size(); ++i) {
    std::vector<payload::BufferSpan> spans;
    int b = 0;
    for (const auto& buffer : messages[i].payload.body_buffers) {
      const int64_t size = buffer ? buffer->size() : 0;
      if (size > 0 && !pool.Contains(buffer->data(), size)) {
        return Status::InvalidArgument(
            "buffer " + std::to_string(b) +
            " of the batch was not allocated from the "
            "BatchLoan's pool (a sliced array, or built elsewhere); use Publish(batch)");
      }
      spans.push_back({size > 0 ? buffer->data() - pool.begin() : 0, size});
      ++b;
    }
    auto* metadata = reinterpret_cast<uint8_t*>(sample.data() + metadata_offsets[i]);
    QUIVER_RETURN_IF_ERROR(payload::RewriteBufferSpans(
        {metadata, static_cast<size_t>(messages[i].payload.metadata->size())}, spans, pool.used()));
  }
  WriteHeader(sample, version, messages.size(), meta_end, body_offset,
              static_cast<uint64_t>(pool.used()), batch.num_rows());
  return std::move(batch_loan.impl_->loan);
}

Status ArrowPublisher::Publish(BatchLoan&& loan, const arrow::RecordBatch& batch) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, Encode(std::move(loan), batch));
  return publisher_.Publish(std::move(sample));
}

}  // namespace quiver
