#include "quiver/msgpack_records.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <cstring>
#include <source_location>
#include <string>
#include <vector>

// MSGPACK_NO_BOOST and the API version come from quiver_payload (CMakeLists.txt).
#include <msgpack.hpp>

namespace quiver {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                            std::string_view json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return *array;
}

std::string_view View(const msgpack::sbuffer& buffer) { return {buffer.data(), buffer.size()}; }

void Key(Packer& pk, std::string_view name) { pk.pack(std::string(name)); }
void Str(Packer& pk, std::string_view s) { pk.pack(std::string(s)); }
void Bin(Packer& pk, std::string_view b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

// Encodes `records` records with `write(pk, i, as_map)` and decodes them.
template <typename Write>
Result<std::shared_ptr<arrow::RecordBatch>> Decode(const std::shared_ptr<arrow::Schema>& schema,
                                                   int records, bool as_map, Write write) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_array(records);
  for (int i = 0; i < records; ++i) write(pk, i, as_map);
  return DecodeMsgpackRecords(View(buffer), schema);
}

// Checks `got` failed with kInvalidArgument and exactly `message`.
void ExpectError(const Result<std::shared_ptr<arrow::RecordBatch>>& got, std::string_view message,
                 std::source_location where = std::source_location::current()) {
  SCOPED_TRACE(testing::Message() << "called from line " << where.line());
  ASSERT_FALSE(got.ok()) << "decoded: " << got.value()->ToString();
  EXPECT_EQ(got.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(got.status().message(), message);
}

// ---------------------------------------------------------------------------------------
// Every supported type
// ---------------------------------------------------------------------------------------

std::shared_ptr<arrow::DataType> DictType() {
  return arrow::dictionary(arrow::int32(), arrow::utf8());
}

std::shared_ptr<arrow::Schema> AllTypes() {
  return arrow::schema({
      arrow::field("flag", arrow::boolean()),
      arrow::field("i8", arrow::int8()),
      arrow::field("i16", arrow::int16()),
      arrow::field("i32", arrow::int32()),
      arrow::field("i64", arrow::int64()),
      arrow::field("u8", arrow::uint8()),
      arrow::field("u16", arrow::uint16()),
      arrow::field("u32", arrow::uint32()),
      arrow::field("u64", arrow::uint64()),
      arrow::field("f32", arrow::float32()),
      arrow::field("f64", arrow::float64()),
      arrow::field("text", arrow::utf8()),
      arrow::field("large_text", arrow::large_utf8()),
      arrow::field("data", arrow::binary()),
      arrow::field("large_data", arrow::large_binary()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")),
      arrow::field("day", arrow::date32()),
      arrow::field("nothing", arrow::null()),
      arrow::field("list", arrow::list(arrow::int32())),
      arrow::field("large_list", arrow::large_list(arrow::utf8())),
      arrow::field("struct", arrow::struct_({arrow::field("a", arrow::int32()),
                                             arrow::field("b", arrow::utf8())})),
      arrow::field("unit", DictType()),
      arrow::field("points", arrow::list(arrow::struct_({arrow::field("x", arrow::float32())}))),
  });
}

std::shared_ptr<arrow::RecordBatch> AllTypesExpected() {
  auto schema = AllTypes();
  auto type = [&](int i) { return schema->field(i)->type(); };
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      ArrayFromJson(type(0), "[true, false, null]"),
      ArrayFromJson(type(1), "[-128, 127, null]"),
      ArrayFromJson(type(2), "[-32768, 32767, null]"),
      ArrayFromJson(type(3), "[-2147483648, 2147483647, null]"),
      ArrayFromJson(type(4), "[-9223372036854775808, 9223372036854775807, null]"),
      ArrayFromJson(type(5), "[0, 255, null]"),
      ArrayFromJson(type(6), "[0, 65535, null]"),
      ArrayFromJson(type(7), "[0, 4294967295, null]"),
      ArrayFromJson(type(8), "[0, 18446744073709551615, null]"),
      ArrayFromJson(type(9), "[1.5, 7, null]"),
      ArrayFromJson(type(10), "[2.25, -3, null]"),
      ArrayFromJson(type(11), R"(["héllo", "", null])"),
      ArrayFromJson(type(12), R"(["big", "x", null])"),
      ArrayFromJson(type(13), R"(["\u0000\u0001", "from str", null])"),
      ArrayFromJson(type(14), R"(["bytes", "", null])"),
      ArrayFromJson(type(15), "[1700000000123, -1, null]"),
      ArrayFromJson(type(16), "[19000, -5, null]"),
      ArrayFromJson(type(17), "[null, null, null]"),
      ArrayFromJson(type(18), "[[1, null, 3], [], null]"),
      ArrayFromJson(type(19), R"([["a"], [], null])"),
      ArrayFromJson(type(20), R"([{"a": 1, "b": "x"}, {"a": null, "b": null}, null])"),
      *arrow::DictionaryArray::FromArrays(DictType(), ArrayFromJson(arrow::int32(), "[0, 1, null]"),
                                          ArrayFromJson(arrow::utf8(), R"(["kg", "pcs"])")),
      ArrayFromJson(type(22), R"([[{"x": 1.0}, {"x": null}], [], null])"),
  };
  return arrow::RecordBatch::Make(schema, 3, columns);
}

// Writes AllTypes record `i` (matching AllTypesExpected) as a map or a positional array.
void WriteAllTypes(Packer& pk, int i, bool as_map) {
  const int fields = AllTypes()->num_fields();
  if (as_map) {
    pk.pack_map(fields);
  } else {
    pk.pack_array(fields);
  }
  auto field = [&](std::string_view name) {
    if (as_map) Key(pk, name);
  };
  auto struct_ = [&](int n) { as_map ? pk.pack_map(n) : pk.pack_array(n); };
  if (i == 2) {  // all null
    for (int f = 0; f < fields; ++f) {
      field(AllTypes()->field(f)->name());
      pk.pack_nil();
    }
    return;
  }
  const bool first = i == 0;
  field("flag"), pk.pack(first);
  field("i8"), first ? pk.pack(int8_t{-128}) : pk.pack(int8_t{127});
  field("i16"), first ? pk.pack(int16_t{-32768}) : pk.pack(int16_t{32767});
  field("i32"), pk.pack(first ? INT32_MIN : INT32_MAX);
  field("i64"), pk.pack(first ? INT64_MIN : INT64_MAX);
  field("u8"), pk.pack(first ? 0 : 255);
  field("u16"), pk.pack(first ? 0 : 65535);
  field("u32"), pk.pack(first ? uint32_t{0} : UINT32_MAX);
  field("u64"), pk.pack(first ? uint64_t{0} : UINT64_MAX);
  field("f32"), first ? pk.pack(1.5) : pk.pack(7);  // an int is accepted for a float
  field("f64"), first ? pk.pack(2.25f) : pk.pack(-3);
  field("text"), Str(pk, first ? "héllo" : "");
  field("large_text"), Str(pk, first ? "big" : "x");
  field("data"), first ? Bin(pk, std::string_view("\0\1", 2)) : Str(pk, "from str");
  field("large_data"), Bin(pk, first ? "bytes" : "");
  field("ts"), pk.pack(first ? int64_t{1700000000123} : int64_t{-1});
  field("day"), pk.pack(first ? 19000 : -5);
  field("nothing"), pk.pack_nil();
  field("list");
  if (first) {
    pk.pack_array(3), pk.pack(1), pk.pack_nil(), pk.pack(3);
  } else {
    pk.pack_array(0);
  }
  field("large_list");
  if (first) {
    pk.pack_array(1), Str(pk, "a");
  } else {
    pk.pack_array(0);
  }
  field("struct");
  struct_(2);
  if (as_map) Key(pk, "a");
  first ? pk.pack(1) : pk.pack_nil();
  if (as_map) Key(pk, "b");
  if (first) {
    Str(pk, "x");
  } else {
    pk.pack_nil();
  }
  field("unit"), Str(pk, first ? "kg" : "pcs");
  field("points");
  if (first) {
    pk.pack_array(2);
    struct_(1);
    if (as_map) Key(pk, "x");
    pk.pack(1.0);
    struct_(1);
    if (as_map) Key(pk, "x");
    pk.pack_nil();
  } else {
    pk.pack_array(0);
  }
}

TEST(MsgpackRecordsTest, EveryTypeRoundTripsFromMapRecords) {
  auto got = Decode(AllTypes(), 3, true, WriteAllTypes);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE((*got)->ValidateFull().ok());
  auto expected = AllTypesExpected();
  EXPECT_TRUE((*got)->Equals(*expected)) << (*got)->ToString() << "\nvs\n" << expected->ToString();
}

TEST(MsgpackRecordsTest, EveryTypeRoundTripsFromArrayRecords) {
  auto got = Decode(AllTypes(), 3, false, WriteAllTypes);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE((*got)->ValidateFull().ok());
  auto expected = AllTypesExpected();
  EXPECT_TRUE((*got)->Equals(*expected)) << (*got)->ToString() << "\nvs\n" << expected->ToString();
}

TEST(MsgpackRecordsTest, EmptyArrayIsAnEmptyBatch) {
  auto got = Decode(AllTypes(), 0, true, WriteAllTypes);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->num_rows(), 0);
  EXPECT_TRUE((*got)->schema()->Equals(*AllTypes()));
}

TEST(MsgpackRecordsTest, MapAndArrayRecordsMayBeMixed) {
  auto schema =
      arrow::schema({arrow::field("a", arrow::int32()), arrow::field("b", arrow::utf8())});
  auto got = Decode(schema, 2, true, [](Packer& pk, int i, bool) {
    if (i == 0) {
      pk.pack_map(2), Key(pk, "b"), Str(pk, "x"), Key(pk, "a"), pk.pack(1);  // any key order
    } else {
      pk.pack_array(2), pk.pack(2), Str(pk, "y");
    }
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE((*got)->column(0)->Equals(ArrayFromJson(arrow::int32(), "[1, 2]")));
  EXPECT_TRUE((*got)->column(1)->Equals(ArrayFromJson(arrow::utf8(), R"(["x", "y"])")));
}

TEST(MsgpackRecordsTest, TimestampAcceptsTheMsgpackTimestampExtension) {
  auto schema = arrow::schema({arrow::field("us", arrow::timestamp(arrow::TimeUnit::MICRO)),
                               arrow::field("s", arrow::timestamp(arrow::TimeUnit::SECOND))});
  // The three encodings of the extension (type -1): 32-bit seconds, 64-bit packed, 96-bit.
  auto ext = [](Packer& pk, int64_t seconds, uint32_t nanos, int size) {
    char body[12];
    auto put = [&body](int at, uint64_t v, int bytes) {
      for (int b = bytes - 1; b >= 0; --b, v >>= 8) body[at + b] = static_cast<char>(v & 0xff);
    };
    if (size == 4) put(0, static_cast<uint64_t>(seconds), 4);
    if (size == 8) put(0, uint64_t{nanos} << 34 | static_cast<uint64_t>(seconds), 8);
    if (size == 12) put(0, nanos, 4), put(4, static_cast<uint64_t>(seconds), 8);
    pk.pack_ext(size, -1);
    pk.pack_ext_body(body, size);
  };
  auto got = Decode(schema, 3, true, [&](Packer& pk, int i, bool) {
    pk.pack_array(2);
    if (i == 0) ext(pk, 1700000000, 0, 4), ext(pk, 1700000000, 0, 4);
    if (i == 1) ext(pk, 1700000000, 123456789, 8), ext(pk, 1700000000, 999999999, 8);
    if (i == 2) ext(pk, -2, 500000000, 12), ext(pk, -2, 500000000, 12);
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE((*got)->column(0)->Equals(
      ArrayFromJson(schema->field(0)->type(), "[1700000000000000, 1700000000123456, -1500000]")));
  EXPECT_TRUE((*got)->column(1)->Equals(
      ArrayFromJson(schema->field(1)->type(), "[1700000000, 1700000000, -2]")));
}

// ---------------------------------------------------------------------------------------
// Schema in flux: missing and unknown fields
// ---------------------------------------------------------------------------------------

std::shared_ptr<arrow::Schema> Item() {
  return arrow::schema({
      arrow::field("id", arrow::uint64(), /*nullable=*/false),
      arrow::field("name", arrow::utf8()),
      arrow::field("tags", arrow::list(arrow::utf8())),
      arrow::field("price", arrow::float64()),
  });
}

TEST(MsgpackRecordsTest, MissingKeysAreNullAndUnknownKeysAreIgnored) {
  auto got = Decode(Item(), 2, true, [](Packer& pk, int i, bool) {
    if (i == 0) {
      pk.pack_map(4);
      Key(pk, "new_scalar"), pk.pack(1);
      Key(pk, "id"), pk.pack(7);
      // Unknown keys with nested values are skipped whole, whatever is inside.
      Key(pk, "new_nested"), pk.pack_map(1), Key(pk, "k"), pk.pack_array(2), pk.pack(1),
          pk.pack_map(0);
      Key(pk, "price"), pk.pack(9.5);
    } else {
      pk.pack_map(1), Key(pk, "id"), pk.pack(8);
    }
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE((*got)->ValidateFull().ok());
  auto expected = arrow::RecordBatch::Make(
      Item(), 2,
      {ArrayFromJson(arrow::uint64(), "[7, 8]"), ArrayFromJson(arrow::utf8(), "[null, null]"),
       ArrayFromJson(arrow::list(arrow::utf8()), "[null, null]"),
       ArrayFromJson(arrow::float64(), "[9.5, null]")});
  EXPECT_TRUE((*got)->Equals(*expected)) << (*got)->ToString();
}

TEST(MsgpackRecordsTest, ShortArrayRecordsGetTrailingNullsAndExtraElementsAreIgnored) {
  auto got = Decode(Item(), 2, false, [](Packer& pk, int i, bool) {
    if (i == 0) {
      pk.pack_array(2), pk.pack(7), Str(pk, "a");
    } else {
      pk.pack_array(6), pk.pack(8), Str(pk, "b"), pk.pack_array(0), pk.pack(1.0), pk.pack_array(1),
          pk.pack(1), Str(pk, "extra");
    }
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto expected = arrow::RecordBatch::Make(
      Item(), 2,
      {ArrayFromJson(arrow::uint64(), "[7, 8]"), ArrayFromJson(arrow::utf8(), R"(["a", "b"])"),
       ArrayFromJson(arrow::list(arrow::utf8()), "[null, []]"),
       ArrayFromJson(arrow::float64(), "[null, 1.0]")});
  EXPECT_TRUE((*got)->Equals(*expected)) << (*got)->ToString();
}

TEST(MsgpackRecordsTest, MissingNonNullableFieldIsAnErrorNamingIt) {
  ExpectError(Decode(Item(), 2, true,
                     [](Packer& pk, int i, bool) {
                       pk.pack_map(1);
                       i == 0 ? Key(pk, "id") : Key(pk, "name");
                       if (i == 0) {
                         pk.pack(1);
                       } else {
                         Str(pk, "x");
                       }
                     }),
              "record 1, field 'id': missing, and the field is not nullable");
  ExpectError(Decode(Item(), 1, false, [](Packer& pk, int, bool) { pk.pack_array(0); }),
              "record 0, field 'id': missing, and the field is not nullable");
  auto nested = arrow::schema(
      {arrow::field("items", arrow::list(arrow::struct_({arrow::field("sku", arrow::utf8(), false),
                                                         arrow::field("qty", arrow::int32())})))});
  ExpectError(Decode(nested, 1, true,
                     [](Packer& pk, int, bool) {
                       pk.pack_map(1), Key(pk, "items"), pk.pack_array(2);
                       pk.pack_map(1), Key(pk, "sku"), Str(pk, "a");
                       pk.pack_map(1), Key(pk, "qty"), pk.pack(2);
                     }),
              "record 0, field 'items[1].sku': missing, and the field is not nullable");
}

// ---------------------------------------------------------------------------------------
// Errors name the record and the field path
// ---------------------------------------------------------------------------------------

std::shared_ptr<arrow::Schema> Order() {
  return arrow::schema({
      arrow::field("id", arrow::uint64(), false),
      arrow::field("items", arrow::list(arrow::struct_({arrow::field("sku", arrow::utf8()),
                                                        arrow::field("price", arrow::float64()),
                                                        arrow::field("qty", arrow::uint8())}))),
  });
}

// Writes an Order whose items[3] has `write_bad(pk)` as its `field`, all else valid.
template <typename WriteBad>
Result<std::shared_ptr<arrow::RecordBatch>> OrdersWithBad(int bad_record, std::string_view field,
                                                          WriteBad write_bad) {
  return Decode(Order(), 13, true, [&](Packer& pk, int i, bool) {
    pk.pack_map(2), Key(pk, "id"), pk.pack(i), Key(pk, "items"), pk.pack_array(4);
    for (int item = 0; item < 4; ++item) {
      pk.pack_map(3);
      for (std::string_view name : {"sku", "price", "qty"}) {
        Key(pk, name);
        if (i == bad_record && item == 3 && name == field) {
          write_bad(pk);
        } else if (name == "sku") {
          Str(pk, "s");
        } else if (name == "price") {
          pk.pack(1.25);
        } else {
          pk.pack(2);
        }
      }
    }
  });
}

TEST(MsgpackRecordsTest, WrongTypeNamesRecordAndFieldPath) {
  auto good = OrdersWithBad(-1, "", [](Packer&) {});
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ((*good)->num_rows(), 13);
  ExpectError(OrdersWithBad(12, "price", [](Packer& pk) { Str(pk, "1.5"); }),
              "record 12, field 'items[3].price': expected float64, got str");
  ExpectError(OrdersWithBad(4, "sku", [](Packer& pk) { pk.pack(true); }),
              "record 4, field 'items[3].sku': expected utf8, got bool");
  ExpectError(OrdersWithBad(4, "sku", [](Packer& pk) { Bin(pk, "x"); }),
              "record 4, field 'items[3].sku': expected utf8, got bin");
  ExpectError(OrdersWithBad(0, "qty", [](Packer& pk) { pk.pack(1.5); }),
              "record 0, field 'items[3].qty': expected uint8, got float");
  ExpectError(OrdersWithBad(0, "qty", [](Packer& pk) { pk.pack_array(0); }),
              "record 0, field 'items[3].qty': expected uint8, got array");
  ExpectError(OrdersWithBad(0, "price", [](Packer& pk) { pk.pack_map(0); }),
              "record 0, field 'items[3].price': expected float64, got map");
  ExpectError(
      OrdersWithBad(0, "price", [](Packer& pk) { pk.pack_ext(1, 5), pk.pack_ext_body("x", 1); }),
      "record 0, field 'items[3].price': expected float64, got ext");
  ExpectError(Decode(Order(), 1, true, [](Packer& pk, int, bool) { pk.pack(1); }),
              "record 0: expected a record (map or array), got int");
  ExpectError(Decode(Order(), 2, true,
                     [](Packer& pk, int i, bool) {
                       i == 0 ? pk.pack_array(1), pk.pack(1) : pk.pack_nil();
                     }),
              "record 1: expected a record (map or array), got nil");
  ExpectError(Decode(Order(), 1, true,
                     [](Packer& pk, int, bool) { pk.pack_map(1), Key(pk, "items"), pk.pack(3); }),
              "record 0, field 'items': expected list (array), got int");
}

TEST(MsgpackRecordsTest, OutOfRangeIntegersAreErrors) {
  ExpectError(OrdersWithBad(2, "qty", [](Packer& pk) { pk.pack(256); }),
              "record 2, field 'items[3].qty': 256 is out of range for uint8");
  ExpectError(OrdersWithBad(2, "qty", [](Packer& pk) { pk.pack(-1); }),
              "record 2, field 'items[3].qty': -1 is out of range for uint8");
  auto ints =
      arrow::schema({arrow::field("i8", arrow::int8()), arrow::field("u64", arrow::uint64()),
                     arrow::field("i64", arrow::int64()), arrow::field("day", arrow::date32()),
                     arrow::field("f32", arrow::float32())});
  auto one = [&](int field, auto write) {
    return Decode(ints, 1, true, [&](Packer& pk, int, bool) {
      pk.pack_map(1), Key(pk, ints->field(field)->name()), write(pk);
    });
  };
  ExpectError(one(0, [](Packer& pk) { pk.pack(-129); }),
              "record 0, field 'i8': -129 is out of range for int8");
  ExpectError(one(0, [](Packer& pk) { pk.pack(128); }),
              "record 0, field 'i8': 128 is out of range for int8");
  ExpectError(one(1, [](Packer& pk) { pk.pack(int64_t{-5}); }),
              "record 0, field 'u64': -5 is out of range for uint64");
  ExpectError(one(2, [](Packer& pk) { pk.pack(uint64_t{1} << 63); }),
              "record 0, field 'i64': 9223372036854775808 is out of range for int64");
  ExpectError(one(3, [](Packer& pk) { pk.pack(int64_t{1} << 31); }),
              "record 0, field 'day': 2147483648 is out of range for date32");
  ExpectError(one(4, [](Packer& pk) { pk.pack(1e39); }),
              "record 0, field 'f32': 1e+39 is out of range for float32");
  // A msgpack int8..int64 encoding of a non-negative value is accepted for unsigned fields.
  auto ok = one(1, [](Packer& pk) { pk.pack_int64(5); });
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)->column(1)->Equals(ArrayFromJson(arrow::uint64(), "[5]")));
}

TEST(MsgpackRecordsTest, InvalidUtf8AndBadKeysAreErrors) {
  ExpectError(OrdersWithBad(5, "sku", [](Packer& pk) { Str(pk, "\xff\xfe"); }),
              "record 5, field 'items[3].sku': invalid UTF-8 in str");
  ExpectError(Decode(Item(), 1, true,
                     [](Packer& pk, int, bool) {
                       pk.pack_map(2), Key(pk, "id"), pk.pack(1), Key(pk, "id"), pk.pack(2);
                     }),
              "record 0: duplicate key 'id'");
  ExpectError(Decode(Item(), 1, true,
                     [](Packer& pk, int, bool) { pk.pack_map(1), pk.pack(1), pk.pack(2); }),
              "record 0: map keys must be str, got int");
  // A non-nullable field may not be nil either.
  ExpectError(Decode(Item(), 1, true,
                     [](Packer& pk, int, bool) { pk.pack_map(1), Key(pk, "id"), pk.pack_nil(); }),
              "record 0, field 'id': null for a non-nullable field");
}

TEST(MsgpackRecordsTest, NestingDeeperThan64IsAnError) {
  auto schema = arrow::schema({arrow::field("deep", arrow::list(arrow::int32()))});
  auto nest = [&](int depth) {  // depth counts the records array and the record map
    return Decode(schema, 1, true, [&](Packer& pk, int, bool) {
      pk.pack_map(1), Key(pk, "unknown");
      for (int d = 2; d < depth; ++d) pk.pack_array(1);
      pk.pack(1);
    });
  };
  EXPECT_TRUE(nest(kMaxMsgpackDepth).ok()) << nest(kMaxMsgpackDepth).status().ToString();
  ExpectError(nest(kMaxMsgpackDepth + 1), "record 0: nesting deeper than 64");
  // A million nested arrays: refused at depth 65, long before the parser's stack grows.
  std::string deep(1'000'000, '\x91');
  EXPECT_EQ(DecodeMsgpackRecords(deep, schema).status().code(), ErrorCode::kInvalidArgument);
}

TEST(MsgpackRecordsTest, MalformedInputIsAnErrorNotACrash) {
  auto schema = Item();
  auto decode = [&](std::string_view bytes) { return DecodeMsgpackRecords(bytes, schema); };
  ExpectError(decode(""), "truncated msgpack: expected an array of records, input has 0 bytes");
  ExpectError(decode("\xc1"), "malformed msgpack at byte 0");
  ExpectError(decode(std::string_view("\x91\x81\xa2id\xc1", 6)),
              "record 0, field 'id': malformed msgpack at byte 5");
  ExpectError(decode("\x81\xa1x\x01"), "expected an array of records, got map");
  ExpectError(decode("\x05"), "expected an array of records, got int");
  ExpectError(decode(std::string_view("\x90\x00", 2)),
              "1 trailing bytes after the records array (at byte 1)");
  ExpectError(
      decode(std::string_view("\x91\x81\xa2id", 5)),
      "record 0, field 'id': truncated msgpack: the input ends inside this value (5 bytes)");
  // Hostile headers: 4 billion records, a 4 GiB string. Nothing is allocated for them.
  ExpectError(decode(std::string_view("\xdd\xff\xff\xff\xff", 5)),
              "record 0: truncated msgpack: the input ends inside this value (5 bytes)");
  auto huge_str = decode(std::string_view("\x91\x82\xa2id\x01\xa4name\xdb\xff\xff\xff\xff", 15));
  EXPECT_EQ(huge_str.status().code(), ErrorCode::kInvalidArgument);
}

TEST(MsgpackRecordsTest, UnsupportedSchemaTypeIsRefusedUpFront) {
  auto schema = arrow::schema({arrow::field("h", arrow::float16())});
  auto got = DecodeMsgpackRecords("\x90", schema);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("field 'h'"), std::string::npos) << got.status().message();
}

// Truncating a valid encoding at every length, and corrupting every byte of it, gives OK (a
// valid batch) or kInvalidArgument: never a crash, never an invalid batch.
TEST(MsgpackRecordsTest, TruncatedOrCorruptedEncodingsNeverCrash) {
  for (bool as_map : {true, false}) {
    msgpack::sbuffer buffer;
    Packer pk(buffer);
    pk.pack_array(3);
    for (int i = 0; i < 3; ++i) WriteAllTypes(pk, i, as_map);
    const std::string valid(buffer.data(), buffer.size());
    auto schema = AllTypes();
    auto check = [&](std::string_view bytes, const std::string& what) {
      auto got = DecodeMsgpackRecords(bytes, schema);
      if (got.ok()) {
        ASSERT_TRUE((*got)->ValidateFull().ok()) << what;
      } else {
        ASSERT_EQ(got.status().code(), ErrorCode::kInvalidArgument) << what;
      }
    };
    ASSERT_TRUE(DecodeMsgpackRecords(valid, schema).ok());
    for (size_t n = 0; n < valid.size(); ++n) {
      auto got = DecodeMsgpackRecords(std::string_view(valid).substr(0, n), schema);
      ASSERT_FALSE(got.ok()) << "a prefix of " << n << " bytes decoded";
      ASSERT_EQ(got.status().code(), ErrorCode::kInvalidArgument);
    }
    for (size_t at = 0; at < valid.size(); ++at) {
      for (uint8_t mask : {0x01, 0x10, 0x80, 0xff}) {
        std::string bad = valid;
        bad[at] = static_cast<char>(bad[at] ^ mask);
        check(bad, "byte " + std::to_string(at) + " ^ " + std::to_string(mask));
      }
      for (uint8_t value : {0x00, 0xc0, 0xc1, 0xdc, 0xdd, 0xde, 0xdf, 0xdb, 0xc6, 0xc9}) {
        std::string bad = valid;
        bad[at] = static_cast<char>(value);
        check(bad, "byte " + std::to_string(at) + " = " + std::to_string(value));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// The W4 shape
// ---------------------------------------------------------------------------------------

TEST(MsgpackRecordsTest, W4NodesDecode) {
  auto schema = arrow::schema({
      arrow::field("id", arrow::uint64(), false),
      arrow::field("kind", arrow::uint8(), false),
      arrow::field("parent", arrow::uint64()),
      arrow::field("weight", arrow::float32(), false),
  });
  for (bool as_map : {true, false}) {
    auto got = Decode(schema, 4, as_map, [](Packer& pk, int i, bool map) {
      map ? pk.pack_map(4) : pk.pack_array(4);
      if (map) Key(pk, "id");
      pk.pack(uint64_t{1} << 40 | i);
      if (map) Key(pk, "kind");
      pk.pack(i % 3);
      if (map) Key(pk, "parent");
      i == 0 ? pk.pack_nil() : pk.pack(uint64_t{1} << 40 | (i - 1));
      if (map) Key(pk, "weight");
      pk.pack(0.5 * i);  // float64 from Python, narrowed to float32
    });
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto expected = arrow::RecordBatch::Make(
        schema, 4,
        {ArrayFromJson(arrow::uint64(),
                       "[1099511627776, 1099511627777, 1099511627778, 1099511627779]"),
         ArrayFromJson(arrow::uint8(), "[0, 1, 2, 0]"),
         ArrayFromJson(arrow::uint64(), "[null, 1099511627776, 1099511627777, 1099511627778]"),
         ArrayFromJson(arrow::float32(), "[0, 0.5, 1.0, 1.5]")});
    EXPECT_TRUE((*got)->Equals(*expected)) << (*got)->ToString();
  }
}

TEST(MsgpackRecordsTest, WideStructsBindByName) {
  arrow::FieldVector fields;
  for (int i = 0; i < 40; ++i)
    fields.push_back(arrow::field("f" + std::to_string(i), arrow::int32()));
  auto schema = arrow::schema(fields);
  auto got = Decode(schema, 1, true, [](Packer& pk, int, bool) {
    pk.pack_map(2), Key(pk, "f33"), pk.pack(33), Key(pk, "f7"), pk.pack(7);
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE((*got)->column(33)->Equals(ArrayFromJson(arrow::int32(), "[33]")));
  EXPECT_TRUE((*got)->column(7)->Equals(ArrayFromJson(arrow::int32(), "[7]")));
  EXPECT_TRUE((*got)->column(0)->Equals(ArrayFromJson(arrow::int32(), "[null]")));
}

}  // namespace
}  // namespace quiver
