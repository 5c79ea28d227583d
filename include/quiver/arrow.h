// Arrow RecordBatches over Quiver channels: the schema is stored once per channel (versioned
// in its type registry), each sample carries one batch as Arrow IPC metadata plus body, and
// subscribers get arrow::RecordBatch objects whose buffers point into shared memory.
// ArrowPublisher / ArrowSubscriber are thread-compatible, like Publisher / Subscriber;
// received batches are immutable and may be shared between threads.
//
//   auto channel = quiver::CreateArrowChannel("ledger", schema, {.capacity = 256 << 20});
//   auto publisher = quiver::ArrowPublisher::Make(*channel);
//   publisher->Publish(*batch);                            // one copy of the buffers
//   auto opened = quiver::Channel::Open("ledger");            // in the reading process
//   auto subscriber = quiver::ArrowSubscriber::Make(*opened);
//   auto sample = subscriber->Receive(std::chrono::seconds(1));
//   sample->batch->column(6);                              // zero copy: shared memory
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver {

/// How much a subscriber checks a batch before handing it out.
enum class BatchValidation {
  /// The default, O(columns): the IPC metadata is verified (flatbuffer verifier), every
  /// buffer must lie inside the sample's body, and RecordBatch::Validate() checks every
  /// buffer is large enough for its array's length. Value offsets inside string/list
  /// arrays are trusted: producers of the same user are trusted to be correct, and data from
  /// the network is validated fully by the gateway and the bridge before it is published.
  kStructure,
  /// kStructure plus RecordBatch::ValidateFull(): every offset, dictionary index and UTF-8
  /// string is checked, O(bytes). A defence against a buggy producer, not a hostile one: a
  /// process that can write the segment can change the bytes after the check.
  kFull,
};

/// Whether an Arrow channel's schema may change after it was created; chosen at creation,
/// kept with schema version 1, and obeyed by every publisher (C++, Python, Flight DoPut,
/// bridge).
enum class SchemaEvolution : uint8_t {
  /// The default: every batch has the channel's fields, names, types and nullability (in
  /// any order, with columns in other layouts of the same values cast). A misspelt column
  /// is refused at publish, naming the field it probably meant, instead of becoming a new
  /// version whose readers see nulls.
  kStrict,
  /// A batch may also add nullable fields, leave out nullable ones, and reorder them: each
  /// change is registered as a new schema version, and readers bound by name see nulls for
  /// what a sample lacks (the rules of CheckEvolution). A name keeps its type forever. A
  /// field that is new and looks like a misspelling of one left out (`qtty` for `qty`) is
  /// still refused: to rename, publish a batch with both fields, then one without the old.
  kAddNullable,
};

/// "strict" or "add-nullable" (pipeline files, Python); kInvalidArgument naming both.
Result<SchemaEvolution> ParseSchemaEvolution(std::string_view name);
std::string_view SchemaEvolutionName(SchemaEvolution evolution);

/// Creates a channel carrying Arrow batches of `schema`, stored once as type version 1.
Result<Channel> CreateArrowChannel(std::string_view name,
                                   const std::shared_ptr<arrow::Schema>& schema,
                                   ChannelOptions options = {},
                                   SchemaEvolution evolution = SchemaEvolution::kStrict);
/// Opens Arrow channel `name` if it exists, else creates it (Channel::OpenOrCreate): the
/// rendezvous of two processes either of which may start first. kSchemaMismatch if the
/// existing channel never had exactly `schema` (and `evolution`) as one of its versions.
Result<Channel> OpenOrCreateArrowChannel(std::string_view name,
                                         const std::shared_ptr<arrow::Schema>& schema,
                                         ChannelOptions options = {},
                                         SchemaEvolution evolution = SchemaEvolution::kStrict);

/// The evolution rule `channel` was created with (kInvalidArgument without a schema).
Result<SchemaEvolution> ChannelEvolution(const Channel& channel);

/// The Arrow schema of type version `version` of `channel` (0: the newest).
/// kInvalidArgument for a channel without an Arrow schema.
Result<std::shared_ptr<arrow::Schema>> ChannelSchema(const Channel& channel, uint32_t version = 0);

/// Checks that batches of `schema` may be published into `channel`: that `schema`, conformed
/// to the newest version as ArrowPublisher::Publish conforms a batch, may follow every one
/// of its schema versions under the channel's SchemaEvolution (the rules of CheckEvolution,
/// see docs/ARCHITECTURE.md). kSchemaMismatch naming the fields and types that differ.
Status CheckSchemaFollows(const Channel& channel, const arrow::Schema& schema);

/// A loan whose memory backs Arrow buffers: build arrays with `pool()` (any Arrow builder
/// or allocation taking a MemoryPool*), then ArrowPublisher::Publish(loan, batch) sends the
/// batch without copying its buffers. Move-only; dropping it returns the loan.
class BatchLoan {
 public:
  BatchLoan(BatchLoan&&) noexcept;
  BatchLoan& operator=(BatchLoan&&) noexcept;
  ~BatchLoan();

  /// Allocates from the loan (64-byte aligned). Allocations that outgrow the loan fail
  /// with arrow's OutOfMemory; reallocations move within the loan.
  arrow::MemoryPool* pool() const;
  /// Bytes left for allocations.
  int64_t bytes_free() const;

 private:
  friend class ArrowPublisher;
  struct Impl;
  explicit BatchLoan(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Publishes Arrow batches into a channel created by CreateArrowChannel.
class ArrowPublisher {
 public:
  /// Becomes the channel's publisher (as Channel::CreatePublisher).
  static Result<ArrowPublisher> Make(Channel& channel, const PublisherOptions& options = {});

  /// Writes `batch` into a loan with exactly one copy of its buffers and publishes it.
  /// A column holding the channel's values in another layout (a large or view string,
  /// binary or list, as polars exports) is cast to the channel's type first; a field
  /// nullable in the batch but not in the channel is accepted if it holds no null, else
  /// kSchemaMismatch. A batch whose schema still differs from the channel's newest is
  /// registered as a new version if the change is compatible (see CheckEvolution in
  /// docs/ARCHITECTURE.md), else kSchemaMismatch naming the field and both types.
  Status Publish(const arrow::RecordBatch& batch);
  /// Like Publish, but returns the filled loan instead of publishing it.
  Result<LoanedSample> Encode(const arrow::RecordBatch& batch);

  /// Loans `bytes` for building a batch in place (see BatchLoan).
  Result<BatchLoan> LoanBatch(size_t bytes);
  /// Publishes `batch`, whose buffers were all allocated from `loan.pool()`, with no copy of
  /// them. kInvalidArgument if a buffer lies outside the loan (use Publish(batch) then).
  Status Publish(BatchLoan&& loan, const arrow::RecordBatch& batch);
  /// Like Publish(loan, batch), but returns the filled loan instead of publishing it.
  Result<LoanedSample> Encode(BatchLoan&& loan, const arrow::RecordBatch& batch);

  Publisher& publisher() { return publisher_; }

 private:
  ArrowPublisher(Publisher publisher, Channel channel);
  Result<uint32_t> SchemaVersionFor(const std::shared_ptr<arrow::Schema>& schema);
  // The channel's newest schema, cached by version.
  Result<std::shared_ptr<arrow::Schema>> NewestSchema();
  // `batch` conformed to the newest schema (payload::ConformBatch); nullptr: it fits as is.
  Result<std::shared_ptr<arrow::RecordBatch>> Conform(const arrow::RecordBatch& batch);

  Publisher publisher_;
  Channel channel_;
  std::shared_ptr<arrow::Schema> last_schema_;  // the schema object last published
  uint32_t last_version_ = 0;
  std::shared_ptr<arrow::Schema> newest_;  // the channel's newest schema, cached
  uint32_t newest_version_ = 0;
  std::shared_ptr<arrow::Schema> fits_schema_;  // a schema object known to need no conforming
  uint32_t fits_version_ = 0;
};

/// A received batch. Its buffers point into the channel's shared memory; the sample stays
/// held (and its memory unrecycled) while any array of `batch` is alive.
struct ArrowSample {
  std::shared_ptr<arrow::RecordBatch> batch;
  uint32_t schema_version = 0;  ///< the channel type version the sample was written with
  uint64_t sequence = 0;        ///< the publisher's sequence number
};

/// What decoding a sample checks and keeps (ArrowSubscriberOptions has the same fields).
struct ArrowDecodeOptions {
  /// The fields this reader needs, bound by name. nullptr: batches as published.
  std::shared_ptr<arrow::Schema> reader_schema;
  BatchValidation validation = BatchValidation::kStructure;
};

/// Decodes a sample of the Arrow channel `channel` however it was received (a plain
/// Subscriber, a tool reading a sample it holds), without an ArrowSubscriber. The sample's
/// schema version is read from the channel's type registry on every call (an
/// ArrowSubscriber reads each version once). kShmCorruption for a sample that fails
/// validation, kInvalidArgument for a sample of another kind, kSchemaMismatch if the
/// sample's schema cannot be read as `options.reader_schema`.
Result<ArrowSample> DecodeArrowSample(const Channel& channel, Sample sample,
                                      const ArrowDecodeOptions& options = {});

struct ArrowSubscriberOptions {
  SubscriberOptions subscriber;
  /// The fields this reader needs, bound by name. nullptr: batches as published.
  std::shared_ptr<arrow::Schema> reader_schema;
  BatchValidation validation = BatchValidation::kStructure;
};

/// Receives Arrow batches from a channel.
class ArrowSubscriber {
 public:
  /// Takes a subscriber slot. With a reader schema, checks it against the channel's newest
  /// schema first: kSchemaMismatch naming the field and both types if incompatible.
  static Result<ArrowSubscriber> Make(Channel& channel, ArrowSubscriberOptions options = {});

  /// As Subscriber::Receive, decoded. kShmCorruption for a sample that fails validation.
  Result<ArrowSample> Receive(std::chrono::nanoseconds timeout);
  /// As Subscriber::TryReceive, decoded.
  Result<std::optional<ArrowSample>> TryReceive();
  /// Decodes a sample received from this channel by other means (DecodeArrowSample with
  /// this subscriber's options and cached schemas).
  Result<ArrowSample> Decode(Sample sample);

  Subscriber& subscriber() { return subscriber_; }

 private:
  ArrowSubscriber(Subscriber subscriber, Channel channel, ArrowSubscriberOptions options);
  // After the subscriber followed a restarted publisher: that channel's schemas.
  Status FollowRestarts();

  Subscriber subscriber_;
  Channel channel_;
  ArrowDecodeOptions decode_;
  std::vector<std::shared_ptr<arrow::Schema>> schemas_;  // [version - 1], filled lazily
  uint32_t followed_ = 0;  // subscriber_.restarts_followed() that channel_ belongs to
};

}  // namespace quiver
