#include <arrow/api.h>
#include <arrow/ipc/writer.h>
#include <arrow/json/from_string.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "ledger.h"
#include "payload/conform.h"
#include "payload/ipc_metadata.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"
#include "test_support.h"

namespace quiver {
namespace {

using testing::UniqueName;

using std::chrono::milliseconds;

std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                            std::string_view json);

// Every buffer of every array (children and dictionaries too).
void CollectBuffers(const arrow::ArrayData& data, std::vector<const uint8_t*>* out) {
  for (const auto& b : data.buffers) {
    if (b && b->size() > 0) out->push_back(b->data());
  }
  for (const auto& child : data.child_data) CollectBuffers(*child, out);
  if (data.dictionary) CollectBuffers(*data.dictionary, out);
}

struct Fixture {
  Channel channel;
  ArrowPublisher publisher;
  Subscriber raw;  // to see the sample's bytes before decoding
  ArrowSubscriber subscriber;
};

Fixture Make(const std::string& name, const std::shared_ptr<arrow::Schema>& schema,
             ArrowSubscriberOptions options = {}, size_t capacity = 16 << 20) {
  auto channel = CreateArrowChannel(name, schema, {.capacity = capacity});
  EXPECT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = ArrowPublisher::Make(*channel);
  EXPECT_TRUE(publisher.ok()) << publisher.status().ToString();
  auto raw = channel->CreateSubscriber();
  auto subscriber = ArrowSubscriber::Make(*channel, options);
  EXPECT_TRUE(subscriber.ok()) << subscriber.status().ToString();
  return Fixture{*channel, std::move(*publisher), std::move(*raw), std::move(*subscriber)};
}

// Publishes `batch` and returns what a subscriber decodes, checking zero copy on the way.
ArrowSample RoundTrip(Fixture& f, const arrow::RecordBatch& batch) {
  Status published = f.publisher.Publish(batch);
  EXPECT_TRUE(published.ok()) << published.ToString();
  auto sample = f.raw.Receive(milliseconds(1000));
  EXPECT_TRUE(sample.ok()) << sample.status().ToString();
  const auto* begin = reinterpret_cast<const uint8_t*>(sample->data().data());
  const auto* end = begin + sample->size();
  auto decoded = f.subscriber.Decode(std::move(*sample));
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  std::vector<const uint8_t*> buffers;
  for (const auto& column : decoded->batch->columns()) CollectBuffers(*column->data(), &buffers);
  for (const uint8_t* p : buffers) {
    EXPECT_TRUE(p >= begin && p < end) << "a buffer was copied out of shared memory";
  }
  auto dropped = f.subscriber.TryReceive();  // the ArrowSubscriber's own copy of the sample
  EXPECT_TRUE(dropped.ok() && dropped->has_value());
  return *std::move(decoded);
}

TEST(ArrowBatchTest, LedgerRoundTripsWithoutCopyingOnRead) {
  auto ledger = testing::MakeLedger(1000);
  Fixture f = Make(UniqueName("ledger"), ledger->schema());
  ArrowSample got = RoundTrip(f, *ledger);
  EXPECT_TRUE(got.batch->Equals(*ledger));
  EXPECT_EQ(got.schema_version, 1u);
  EXPECT_TRUE(got.batch->ValidateFull().ok());
  EXPECT_DOUBLE_EQ(testing::SumAmount(*got.batch), testing::SumAmount(*ledger));
}

TEST(ArrowBatchTest, EveryTypeTheSeedsUsePlusNestedDictionaryAndNullRoundTrips) {
  auto dict_type = arrow::dictionary(arrow::int32(), arrow::utf8());
  auto schema = arrow::schema({
      arrow::field("i32", arrow::int32()),
      arrow::field("f64", arrow::float64()),
      arrow::field("text", arrow::utf8()),
      arrow::field("data", arrow::binary()),
      arrow::field("flag", arrow::boolean()),
      arrow::field("i64", arrow::int64()),
      arrow::field("list", arrow::list(arrow::int32())),
      arrow::field("struct", arrow::struct_({arrow::field("a", arrow::int32()),
                                             arrow::field("b", arrow::utf8())})),
      arrow::field("dict", dict_type),
      arrow::field("nothing", arrow::null()),
      arrow::field("list_of_struct",
                   arrow::list(arrow::struct_({arrow::field("x", arrow::float32())}))),
  });
  auto columns = std::vector<std::shared_ptr<arrow::Array>>{
      ArrayFromJson(arrow::int32(), "[1, null, 3]"),
      ArrayFromJson(arrow::float64(), "[1.5, 2.5, null]"),
      ArrayFromJson(arrow::utf8(), R"(["a", "", null])"),
      ArrayFromJson(arrow::binary(), R"(["\u0000\u0001", null, "xyz"])"),
      ArrayFromJson(arrow::boolean(), "[true, false, null]"),
      ArrayFromJson(arrow::int64(), "[9007199254740993, -1, 0]"),
      ArrayFromJson(arrow::list(arrow::int32()), "[[1, 2], [], null]"),
      ArrayFromJson(schema->field(7)->type(),
                    R"([{"a": 1, "b": "x"}, null, {"a": null, "b": "z"}])"),
      *arrow::DictionaryArray::FromArrays(dict_type, ArrayFromJson(arrow::int32(), "[0, 1, 0]"),
                                          ArrayFromJson(arrow::utf8(), R"(["kg", "pcs"])")),
      ArrayFromJson(arrow::null(), "[null, null, null]"),
      ArrayFromJson(schema->field(10)->type(),
                    R"([[{"x": 1.0}], null, [{"x": 2.0}, {"x": null}]])"),
  };
  auto batch = arrow::RecordBatch::Make(schema, 3, columns);
  ASSERT_TRUE(batch->ValidateFull().ok());
  Fixture f = Make(UniqueName("types"), schema);
  ArrowSample got = RoundTrip(f, *batch);
  EXPECT_TRUE(got.batch->Equals(*batch)) << got.batch->ToString() << "\nvs\n" << batch->ToString();
  EXPECT_TRUE(got.batch->ValidateFull().ok());
  // Sliced input: offsets in the source arrays are re-based by the encoder.
  auto sliced = batch->Slice(1, 2);
  ArrowSample got_sliced = RoundTrip(f, *sliced);
  EXPECT_TRUE(got_sliced.batch->Equals(*sliced));
}

TEST(ArrowBatchTest, SampleStaysHeldWhileAnyArrayOfItLives) {
  auto ledger = testing::MakeLedger(10000);
  Fixture f = Make(UniqueName("keepalive"), ledger->schema(), {}, 4 << 20);
  std::shared_ptr<arrow::Array> amount;
  {
    ArrowSample got = RoundTrip(f, *ledger);
    amount = got.batch->GetColumnByName("amount");
  }  // the batch is gone; one array remains
  const double first = std::static_pointer_cast<arrow::DoubleArray>(amount)->Value(0);
  // While `amount` lives, the publisher cannot reuse the sample's bytes: fill the channel.
  const size_t capacity = f.channel.capacity();
  EXPECT_EQ(f.publisher.publisher().TryLoan(capacity).status().code(), ErrorCode::kChannelFull);
  EXPECT_EQ(std::static_pointer_cast<arrow::DoubleArray>(amount)->Value(0), first);
  amount.reset();
  EXPECT_TRUE(f.publisher.publisher().TryLoan(capacity).ok()) << "released with the last array";
}

TEST(ArrowBatchTest, BatchBuiltInTheLoanIsPublishedWithoutCopy) {
  auto schema = testing::LedgerSchema();
  Fixture f = Make(UniqueName("inplace"), schema);
  auto loan = f.publisher.LoanBatch(1 << 20);
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  auto batch = testing::MakeLedger(2000, 7, loan->pool());
  std::vector<const uint8_t*> built;
  for (const auto& column : batch->columns()) CollectBuffers(*column->data(), &built);
  auto sample = f.publisher.Encode(std::move(*loan), *batch);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  // The sample's bytes are where the builders wrote them; remember their offsets.
  const auto* loan_begin = reinterpret_cast<const uint8_t*>(sample->data().data());
  std::vector<ptrdiff_t> offsets;
  for (const uint8_t* p : built) offsets.push_back(p - loan_begin);
  ASSERT_TRUE(f.publisher.publisher().Publish(std::move(*sample)).ok());

  auto received = f.raw.Receive(milliseconds(1000));
  ASSERT_TRUE(received.ok());
  const auto* begin = reinterpret_cast<const uint8_t*>(received->data().data());
  auto decoded = f.subscriber.Decode(std::move(*received));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->batch->Equals(*testing::MakeLedger(2000, 7)));
  EXPECT_TRUE(decoded->batch->ValidateFull().ok());
  std::vector<const uint8_t*> read;
  for (const auto& column : decoded->batch->columns()) CollectBuffers(*column->data(), &read);
  ASSERT_EQ(read.size(), offsets.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i] - begin, offsets[i]) << "buffer " << i << " was moved, i.e. copied";
  }
}

TEST(ArrowBatchTest, InLoanPublishRefusesBuffersFromElsewhere) {
  auto schema = testing::LedgerSchema();
  Fixture f = Make(UniqueName("inplace-bad"), schema);
  auto loan = f.publisher.LoanBatch(1 << 20);
  ASSERT_TRUE(loan.ok());
  auto heap_batch = testing::MakeLedger(10);  // default pool, not the loan
  Status st = f.publisher.Publish(std::move(*loan), *heap_batch);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not allocated from the BatchLoan"), std::string::npos);
  // A refused publish leaves the loan with the caller; dropping it gives the space back.
  EXPECT_EQ(f.publisher.publisher().TryLoan(f.channel.capacity()).status().code(),
            ErrorCode::kChannelFull);
  loan = Result<BatchLoan>(Status(ErrorCode::kOk, ""));
  EXPECT_TRUE(f.publisher.publisher().TryLoan(f.channel.capacity()).ok()) << "loan returned";
}

TEST(ArrowBatchTest, OutgrowingTheLoanIsOutOfMemoryNotACrash) {
  Fixture f = Make(UniqueName("inplace-oom"), testing::LedgerSchema());
  auto loan = f.publisher.LoanBatch(4096);
  ASSERT_TRUE(loan.ok());
  arrow::Int64Builder builder(loan->pool());
  EXPECT_TRUE(builder.Reserve(100000).IsOutOfMemory());
}

// ---- Schema evolution -------------------------------------------------------------------

std::shared_ptr<arrow::Schema> V1() {
  return arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("price", arrow::float64(), true)});
}

std::shared_ptr<arrow::RecordBatch> Batch(const std::shared_ptr<arrow::Schema>& schema,
                                          std::vector<std::string> json) {
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (int i = 0; i < schema->num_fields(); ++i) {
    columns.push_back(ArrayFromJson(schema->field(i)->type(), json[i]));
  }
  return arrow::RecordBatch::Make(schema, columns[0]->length(), columns);
}

TEST(SchemaEvolutionTest, AStrictChannelRefusesAnyOtherFieldsNamingTheLikelyTypo) {
  auto channel = CreateArrowChannel(UniqueName("evolve-strict"), V1());  // strict: the default
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(*ChannelEvolution(*channel), SchemaEvolution::kStrict);
  auto publisher = ArrowPublisher::Make(*channel);
  // 'prcie' for 'price': both nullable, so an add-nullable channel would have taken it.
  auto typo = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("prcie", arrow::float64(), true)});
  Status st = publisher->Publish(*Batch(typo, {"[1]", "[1.5]"}));
  ASSERT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("adds 'prcie' (double)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("lacks 'price' (double)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'prcie' looks like a misspelling of 'price'"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("add-nullable"), std::string::npos) << st.message();
  // An added nullable field is refused too; nothing was registered.
  auto more = arrow::schema({arrow::field("id", arrow::int64(), false),
                             arrow::field("price", arrow::float64(), true),
                             arrow::field("note", arrow::utf8(), true)});
  EXPECT_EQ(publisher->Publish(*Batch(more, {"[1]", "[1.5]", "[\"x\"]"})).code(),
            ErrorCode::kSchemaMismatch);
  EXPECT_EQ(channel->type_versions(), 1u);
  // The channel's own fields pass, whatever their order or declared nullability.
  auto same = arrow::schema(
      {arrow::field("price", arrow::float64(), false), arrow::field("id", arrow::int64(), true)});
  EXPECT_TRUE(publisher->Publish(*Batch(same, {"[2.5]", "[2]"})).ok());
  // The rule is kept with version 1 but not shown in the schema readers get.
  EXPECT_EQ((*ChannelSchema(*channel))->metadata(), nullptr);
}

TEST(SchemaEvolutionTest, AnAddNullableChannelStillRefusesAMisspeltColumn) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-typo"), V1(), {}, SchemaEvolution::kAddNullable);
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(*ChannelEvolution(*channel), SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto typo = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("Price", arrow::float64(), true)});
  Status st = publisher->Publish(*Batch(typo, {"[1]", "[1.5]"}));
  ASSERT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("'Price' looks like a misspelling of 'price'"), std::string::npos)
      << st.message();
  // The documented way to rename: both fields first, then without the old one.
  auto both = arrow::schema({arrow::field("id", arrow::int64(), false),
                             arrow::field("price", arrow::float64(), true),
                             arrow::field("Price", arrow::float64(), true)});
  ASSERT_TRUE(publisher->Publish(*Batch(both, {"[1]", "[1.5]", "[1.5]"})).ok());
  EXPECT_TRUE(publisher->Publish(*Batch(typo, {"[1]", "[1.5]"})).ok());
}

TEST(SchemaEvolutionTest, MisspellingsAreSlipsOfTheKeyboardNotOtherNames) {
  EXPECT_TRUE(payload::LooksLikeMisspelling("qtty", "qty"));
  EXPECT_TRUE(payload::LooksLikeMisspelling("amuont", "amount"));  // a swap
  EXPECT_TRUE(payload::LooksLikeMisspelling("ID", "id"));          // case
  EXPECT_FALSE(payload::LooksLikeMisspelling("qty", "qty"));
  EXPECT_FALSE(payload::LooksLikeMisspelling("x", "y"));  // too short to tell
  EXPECT_FALSE(payload::LooksLikeMisspelling("price", "amount"));
  EXPECT_FALSE(payload::LooksLikeMisspelling("unit_price", "unit"));
}

TEST(SchemaEvolutionTest, TheRuleKeptInSharedMemoryIsCheckedAndTheKeyIsQuiversOwn) {
  // A schema that brings the key itself is refused: the rule is Quiver's to record.
  auto claimed = V1()->WithMetadata(arrow::key_value_metadata({"quiver.evolution"}, {"strict"}));
  EXPECT_EQ(CreateArrowChannel(UniqueName("evolve-key"), claimed).status().code(),
            ErrorCode::kInvalidArgument);
  // A version 1 whose recorded rule is not one (written by a buggy or foreign process) is
  // corruption, never taken for a rule.
  auto bogus = V1()->WithMetadata(arrow::key_value_metadata({"quiver.evolution"}, {"loose"}));
  auto serialized = arrow::ipc::SerializeSchema(*bogus);
  ASSERT_TRUE(serialized.ok());
  auto channel =
      Channel::Create(UniqueName("evolve-bogus"),
                      {.capacity = 1 << 16, .type_descriptor = (*serialized)->ToString()});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  EXPECT_EQ(ChannelEvolution(*channel).status().code(), ErrorCode::kShmCorruption);
  auto publisher = ArrowPublisher::Make(*channel);
  ASSERT_TRUE(publisher.ok());
  auto other = arrow::schema({arrow::field("id", arrow::int64(), false)});
  EXPECT_EQ(publisher->Publish(*Batch(other, {"[1]"})).code(), ErrorCode::kShmCorruption);
}

TEST(SchemaEvolutionTest, TheEvolutionNamesAreOneRule) {
  EXPECT_EQ(*ParseSchemaEvolution("strict"), SchemaEvolution::kStrict);
  EXPECT_EQ(*ParseSchemaEvolution("add-nullable"), SchemaEvolution::kAddNullable);
  Result<SchemaEvolution> bad = ParseSchemaEvolution("loose");
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'strict' or 'add-nullable'"), std::string::npos);
  EXPECT_EQ(SchemaEvolutionName(SchemaEvolution::kAddNullable), "add-nullable");
}

TEST(SchemaEvolutionTest, AddedNullableColumnOldReadersKeepTheirColumnsNewReadersSeeIt) {
  const std::string name = UniqueName("evolve-add");
  auto channel = CreateArrowChannel(name, V1(), {}, SchemaEvolution::kAddNullable);
  ASSERT_TRUE(channel.ok());
  auto publisher = ArrowPublisher::Make(*channel);
  auto old_reader = ArrowSubscriber::Make(*channel, {.reader_schema = V1()});
  ASSERT_TRUE(old_reader.ok()) << old_reader.status().ToString();
  auto v2 = arrow::schema({arrow::field("id", arrow::int64(), false),
                           arrow::field("price", arrow::float64(), true),
                           arrow::field("currency", arrow::utf8(), true)});
  auto new_reader_early = ArrowSubscriber::Make(*channel, {.reader_schema = v2});
  ASSERT_TRUE(new_reader_early.ok()) << "a reader may ask for a nullable field not there yet";

  ASSERT_TRUE(publisher->Publish(*Batch(V1(), {"[1]", "[2.5]"})).ok());
  ASSERT_TRUE(publisher->Publish(*Batch(v2, {"[2]", "[3.5]", R"(["EUR"])"})).ok());
  EXPECT_EQ(channel->type_versions(), 2u);

  auto o1 = old_reader->Receive(milliseconds(100));
  auto o2 = old_reader->Receive(milliseconds(100));
  ASSERT_TRUE(o1.ok() && o2.ok()) << o2.status().ToString();
  EXPECT_EQ(o1->schema_version, 1u);
  EXPECT_EQ(o2->schema_version, 2u) << "each sample says which schema version it carries";
  EXPECT_TRUE(o2->batch->schema()->Equals(*V1())) << "old readers see only their columns";
  EXPECT_TRUE(o2->batch->Equals(*Batch(V1(), {"[2]", "[3.5]"})));

  auto n1 = new_reader_early->Receive(milliseconds(100));
  auto n2 = new_reader_early->Receive(milliseconds(100));
  ASSERT_TRUE(n1.ok() && n2.ok());
  EXPECT_TRUE(n1->batch->Equals(*Batch(v2, {"[1]", "[2.5]", "[null]"}))) << "v1 sample: nulls";
  EXPECT_TRUE(n2->batch->Equals(*Batch(v2, {"[2]", "[3.5]", R"(["EUR"])"})));
  auto unbound = ArrowSubscriber::Make(*channel);  // no reader schema: as published
  ASSERT_TRUE(unbound.ok());
}

TEST(ArrowBatchTest, ASampleIsDecodedWithoutAnArrowSubscriber) {
  const std::string name = UniqueName("decode-free");
  auto channel = CreateArrowChannel(name, V1(), {}, SchemaEvolution::kAddNullable);
  ASSERT_TRUE(channel.ok());
  auto publisher = ArrowPublisher::Make(*channel);
  ASSERT_TRUE(publisher.ok());
  auto raw = channel->CreateSubscriber();  // a plain Subscriber: no ArrowSubscriber anywhere
  ASSERT_TRUE(raw.ok());
  auto v2 = arrow::schema({arrow::field("id", arrow::int64(), false),
                           arrow::field("price", arrow::float64(), true),
                           arrow::field("currency", arrow::utf8(), true)});
  ASSERT_TRUE(publisher->Publish(*Batch(V1(), {"[1]", "[2.5]"})).ok());
  ASSERT_TRUE(publisher->Publish(*Batch(v2, {"[2]", "[3.5]", R"(["EUR"])"})).ok());

  auto s1 = raw->Receive(milliseconds(100));
  ASSERT_TRUE(s1.ok());
  auto d1 = DecodeArrowSample(*channel, std::move(*s1), {.reader_schema = v2});
  ASSERT_TRUE(d1.ok()) << d1.status().ToString();
  EXPECT_EQ(d1->schema_version, 1u);
  EXPECT_TRUE(d1->batch->Equals(*Batch(v2, {"[1]", "[2.5]", "[null]"}))) << "projected";
  auto s2 = raw->Receive(milliseconds(100));
  ASSERT_TRUE(s2.ok());
  auto d2 = DecodeArrowSample(*channel, std::move(*s2), {.validation = BatchValidation::kFull});
  ASSERT_TRUE(d2.ok()) << d2.status().ToString();
  EXPECT_EQ(d2->schema_version, 2u);
  EXPECT_TRUE(d2->batch->Equals(*Batch(v2, {"[2]", "[3.5]", R"(["EUR"])"}))) << "as published";

  // A sample whose metadata is too short for the message table is corrupt, not read.
  auto loan = publisher->Encode(*Batch(V1(), {"[3]", "[4.5]"}));
  ASSERT_TRUE(loan.ok());
  const uint64_t short_meta = 4;
  std::memcpy(loan->data().data() + 24, &short_meta, sizeof(short_meta));  // meta_length
  ASSERT_TRUE(publisher->publisher().Publish(std::move(*loan)).ok());
  auto s3 = raw->Receive(milliseconds(100));
  ASSERT_TRUE(s3.ok());
  auto d3 = DecodeArrowSample(*channel, std::move(*s3));
  EXPECT_EQ(d3.status().code(), ErrorCode::kShmCorruption) << d3.status().ToString();
  EXPECT_NE(d3.status().message().find("meta_length"), std::string::npos) << d3.status().message();
}

TEST(SchemaEvolutionTest, ReorderedColumnsAreCompatibleAndBoundByName) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-order"), V1(), {}, SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto reader = ArrowSubscriber::Make(*channel, {.reader_schema = V1()});
  auto reordered = arrow::schema(
      {arrow::field("price", arrow::float64(), true), arrow::field("id", arrow::int64(), false)});
  ASSERT_TRUE(publisher->Publish(*Batch(reordered, {"[9.5]", "[7]"})).ok());
  auto got = reader->Receive(milliseconds(100));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->schema_version, 2u);
  EXPECT_TRUE(got->batch->Equals(*Batch(V1(), {"[7]", "[9.5]"})));
}

TEST(SchemaEvolutionTest, ChangingAFieldTypeIsRefusedNamingFieldAndBothTypes) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-type"), V1(), {}, SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto changed = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("price", arrow::utf8(), true)});
  Status st = publisher->Publish(*Batch(changed, {"[1]", R"(["1.5"])"}));
  EXPECT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("'price'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("double"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("string"), std::string::npos) << st.message();
  EXPECT_EQ(channel->type_versions(), 1u);
}

TEST(SchemaEvolutionTest, DroppingANonNullableFieldIsRefused) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-drop"), V1(), {}, SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto dropped = arrow::schema({arrow::field("price", arrow::float64(), true)});
  Status st = publisher->Publish(*Batch(dropped, {"[1.5]"}));
  EXPECT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("'id'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("int64"), std::string::npos) << st.message();
  // Dropping a nullable field is fine; its readers see nulls.
  auto no_price = arrow::schema({arrow::field("id", arrow::int64(), false)});
  EXPECT_TRUE(publisher->Publish(*Batch(no_price, {"[1]"})).ok());
}

TEST(SchemaEvolutionTest, AddingANonNullableFieldIsRefused) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-addnn"), V1(), {}, SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto v2 = arrow::schema({arrow::field("id", arrow::int64(), false),
                           arrow::field("price", arrow::float64(), true),
                           arrow::field("qty", arrow::int32(), false)});
  Status st = publisher->Publish(*Batch(v2, {"[1]", "[1.5]", "[3]"}));
  EXPECT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("'qty'"), std::string::npos) << st.message();
}

TEST(SchemaEvolutionTest, IncompatibleReaderIsRefusedAtAttach) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-reader"), V1(), {}, SchemaEvolution::kAddNullable);
  auto wrong_type = arrow::schema({arrow::field("id", arrow::int32(), false)});
  auto r1 = ArrowSubscriber::Make(*channel, {.reader_schema = wrong_type});
  EXPECT_EQ(r1.status().code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(r1.status().message().find("'id'"), std::string::npos);
  EXPECT_NE(r1.status().message().find("int32"), std::string::npos);
  EXPECT_NE(r1.status().message().find("int64"), std::string::npos);
  auto missing = arrow::schema({arrow::field("qty", arrow::int32(), false)});
  auto r2 = ArrowSubscriber::Make(*channel, {.reader_schema = missing});
  EXPECT_EQ(r2.status().code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(r2.status().message().find("'qty'"), std::string::npos);
}

TEST(SchemaEvolutionTest, ANameKeepsItsTypeEvenAfterItWasDropped) {
  auto channel =
      CreateArrowChannel(UniqueName("evolve-readd"), V1(), {}, SchemaEvolution::kAddNullable);
  auto publisher = ArrowPublisher::Make(*channel);
  auto no_price = arrow::schema({arrow::field("id", arrow::int64(), false)});
  ASSERT_TRUE(publisher->Publish(*Batch(no_price, {"[1]"})).ok());
  auto price_text = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("price", arrow::utf8(), true)});
  EXPECT_EQ(publisher->Publish(*Batch(price_text, {"[1]", R"(["x"])"})).code(),
            ErrorCode::kSchemaMismatch);
}

// ---- Conforming a batch to the channel ---------------------------------------------------

// The channel's values in other layouts (large strings and lists, as polars and Go export),
// every field nullable (as Flight clients declare them).
std::shared_ptr<arrow::Schema> Strict() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("tags", arrow::list(arrow::utf8()), true)});
}
std::shared_ptr<arrow::Schema> Loose() {
  return arrow::schema({arrow::field("id", arrow::int64(), true),
                        arrow::field("tags", arrow::large_list(arrow::large_utf8()), true)});
}

TEST(ConformTest, OtherLayoutsAndUnneededNullabilityArePublishedInTheChannelsSchema) {
  Fixture f = Make(UniqueName("conform"), Strict());
  auto loose = Batch(Loose(), {"[1, 2]", R"([["a", "b"], null])"});
  ArrowSample got = RoundTrip(f, *loose);
  EXPECT_TRUE(got.batch->schema()->Equals(*Strict())) << got.batch->schema()->ToString();
  EXPECT_TRUE(got.batch->column(1)->Equals(
      *ArrayFromJson(arrow::list(arrow::utf8()), R"([["a", "b"], null])")));
  EXPECT_EQ(got.schema_version, 1u) << "nothing new was registered";
  EXPECT_EQ(f.channel.type_versions(), 1u);
}

TEST(ConformTest, NullsInAFieldTheChannelHasNonNullableAreRefusedNamingIt) {
  Fixture f = Make(UniqueName("conform-null"), Strict());
  Status st = f.publisher.Publish(*Batch(Loose(), {"[1, null]", "[null, null]"}));
  EXPECT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_EQ(st.message(),
            "field 'id' is non-nullable in the channel, but the batch holds 1 nulls in it");
  // A real type change is not a layout: CheckEvolution refuses it.
  auto retyped = arrow::schema({arrow::field("id", arrow::float64(), false)});
  st = f.publisher.Publish(*Batch(retyped, {"[1.5]"}));
  EXPECT_EQ(st.code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(st.message().find("'id'"), std::string::npos) << st.message();
}

TEST(ConformTest, AnInLoanBatchThatNeedsACastIsSentToPublish) {
  Fixture f = Make(UniqueName("conform-loan"), Strict());
  auto loan = f.publisher.LoanBatch(1 << 16);
  ASSERT_TRUE(loan.ok());
  arrow::Int64Builder ids(loan->pool());
  ASSERT_TRUE(ids.AppendValues({1, 2}).ok());
  arrow::LargeListBuilder tags(loan->pool(),
                               std::make_shared<arrow::LargeStringBuilder>(loan->pool()));
  ASSERT_TRUE(tags.AppendNulls(2).ok());
  auto batch = arrow::RecordBatch::Make(Loose(), 2, {*ids.Finish(), *tags.Finish()});
  Status st = f.publisher.Publish(std::move(*loan), *batch);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("use Publish(batch)"), std::string::npos) << st.message();
}

TEST(ConformTest, ConformSchemaLeavesNewFieldsAndRealChangesToTheEvolutionCheck) {
  auto with_new = arrow::schema(
      {arrow::field("id", arrow::int32(), true), arrow::field("note", arrow::large_utf8(), true)});
  auto conformed = payload::ConformSchema(with_new, *Strict());
  EXPECT_EQ(conformed, with_new) << "int32 is not int64's layout; 'note' is not the channel's";
  auto strict = Strict();
  EXPECT_EQ(payload::ConformSchema(strict, *Strict()), strict) << "nothing to change: itself";
}

// ---- Corrupted samples ------------------------------------------------------------------

// Encodes `batch` into a loan (the publisher's writable mapping), lets `corrupt` change the
// bytes, publishes, and returns what the subscriber makes of it.
Status DecodeCorrupted(Fixture& f, const arrow::RecordBatch& batch,
                       const std::function<void(std::span<std::byte>)>& corrupt,
                       BatchValidation validation = BatchValidation::kStructure) {
  auto loan = f.publisher.Encode(batch);
  EXPECT_TRUE(loan.ok());
  corrupt(loan->data());
  EXPECT_TRUE(f.publisher.publisher().Publish(std::move(*loan)).ok());
  auto sample = f.raw.Receive(milliseconds(1000));
  EXPECT_TRUE(sample.ok());
  (void)f.subscriber.TryReceive();  // drop the other subscriber's copy, whatever it holds
  auto decoder = ArrowSubscriber::Make(f.channel, {.validation = validation});
  EXPECT_TRUE(decoder.ok());
  auto decoded = decoder->Decode(std::move(*sample));
  if (decoded.ok()) {
    // Whatever decodes must be safe to read fully.
    EXPECT_TRUE(decoded->batch->ValidateFull().ok() || validation == BatchValidation::kStructure);
    return Status::OK();
  }
  return decoded.status();
}

uint64_t Load64(std::span<std::byte> bytes, size_t at) {
  uint64_t v;
  std::memcpy(&v, bytes.data() + at, 8);
  return v;
}
void Store64(std::span<std::byte> bytes, size_t at, uint64_t v) {
  std::memcpy(bytes.data() + at, &v, 8);
}

TEST(ArrowCorruptionTest, HostileOffsetsAndSizesAreShmCorruption) {
  auto ledger = testing::MakeLedger(100);
  Fixture f = Make(UniqueName("corrupt"), ledger->schema());
  struct Case {
    const char* what;
    std::function<void(std::span<std::byte>)> corrupt;
  };
  // SampleHeader: meta_offset 16, meta_length 24, body_offset 32, body_length 40, count 48.
  // Message table at 64: count; entries at 72: id, meta off, meta len, body off, body len.
  const std::vector<Case> cases = {
      {"magic", [](auto b) { b[0] = std::byte{0}; }},
      {"header meta_length", [](auto b) { Store64(b, 24, ~uint64_t{0} / 2); }},
      {"header body_offset", [](auto b) { Store64(b, 32, Load64(b, 32) + 8); }},
      {"header body_length", [](auto b) { Store64(b, 40, Load64(b, 40) + 4096); }},
      {"row count", [](auto b) { Store64(b, 48, 101); }},
      {"type version", [](auto b) { b[8] = std::byte{9}; }},
      {"message count", [](auto b) { Store64(b, 64, 100000); }},
      {"message metadata offset", [](auto b) { Store64(b, 80, uint64_t{1} << 40); }},
      {"message metadata length", [](auto b) { Store64(b, 88, 1 << 30); }},
      {"message body offset", [](auto b) { Store64(b, 96, Load64(b, 96) + (1 << 20)); }},
      {"message body length", [](auto b) { Store64(b, 104, Load64(b, 104) * 4); }},
      {"flatbuffer root", [](auto b) { Store64(b, Load64(b, 80), 0xFFFFFFFFFFull); }},
  };
  for (const Case& c : cases) {
    Status st = DecodeCorrupted(f, *ledger, c.corrupt);
    EXPECT_EQ(st.code(), ErrorCode::kShmCorruption) << c.what << ": " << st.ToString();
  }
}

TEST(ArrowCorruptionTest, BufferOffsetsInTheMetadataPointingOutsideTheBodyAreShmCorruption) {
  auto ledger = testing::MakeLedger(100);
  Fixture f = Make(UniqueName("corrupt-buffers"), ledger->schema());
  for (int64_t wild : {int64_t{1} << 40, int64_t{-64}, int64_t{8} * 1024 * 1024}) {
    Status st = DecodeCorrupted(f, *ledger, [&](std::span<std::byte> b) {
      const uint64_t meta = Load64(b, 80), meta_len = Load64(b, 88);
      // 7 columns: int32 (2 buffers), 3 strings (3 each), 3 doubles (2 each) = 17 buffers.
      std::vector<payload::BufferSpan> spans(17, payload::BufferSpan{wild, 64});
      ASSERT_TRUE(
          payload::RewriteBufferSpans({reinterpret_cast<uint8_t*>(b.data() + meta), meta_len},
                                      spans, static_cast<int64_t>(Load64(b, 104)))
              .ok());
    });
    EXPECT_EQ(st.code(), ErrorCode::kShmCorruption) << wild << ": " << st.ToString();
  }
}

TEST(ArrowCorruptionTest, EveryFlippedMetadataByteIsAnErrorOrHarmlessNeverACrash) {
  auto ledger = testing::MakeLedger(20);
  Fixture f = Make(UniqueName("corrupt-flip"), ledger->schema());
  auto probe = f.publisher.Encode(*ledger);
  ASSERT_TRUE(probe.ok());
  const size_t meta_end = 64 + Load64(probe->data(), 24);
  probe = Result<LoanedSample>(Status(ErrorCode::kOk, ""));
  int errors = 0;
  for (size_t at = 0; at < meta_end; ++at) {
    Status st = DecodeCorrupted(
        f, *ledger, [&](std::span<std::byte> b) { b[at] ^= std::byte{0xA5}; },
        BatchValidation::kFull);
    if (!st.ok()) {
      EXPECT_EQ(st.code(), ErrorCode::kShmCorruption) << at << ": " << st.ToString();
      ++errors;
    }
  }
  EXPECT_GT(errors, static_cast<int>(meta_end / 4)) << "most metadata bytes matter";
}

TEST(ArrowCorruptionTest, CorruptedStringOffsetsAreCaughtByFullValidation) {
  auto ledger = testing::MakeLedger(100);
  Fixture f = Make(UniqueName("corrupt-values"), ledger->schema());
  auto corrupt_offsets = [](std::span<std::byte> b) {
    // The `code` column's offsets buffer is the 4th buffer of the body (after stt's
    // validity and values and code's validity), each padded to 64 bytes: find it as the
    // first int32 run 0, 9, 18, ... and break one offset.
    const size_t body = Load64(b, 96);
    for (size_t at = body; at + 12 <= b.size(); at += 64) {
      int32_t o[3];
      std::memcpy(o, b.data() + at, 12);
      if (o[0] == 0 && o[1] == 9 && o[2] == 18) {
        const int32_t wild = 1 << 30;
        std::memcpy(b.data() + at + 8, &wild, 4);
        return;
      }
    }
    FAIL() << "offsets not found";
  };
  EXPECT_EQ(DecodeCorrupted(f, *ledger, corrupt_offsets, BatchValidation::kFull).code(),
            ErrorCode::kShmCorruption);
}

std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                            std::string_view json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return *array;
}

}  // namespace
}  // namespace quiver
