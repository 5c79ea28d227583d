#include "quiver/msgpack_records.h"

#include <arrow/api.h>
#include <arrow/util/utf8.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

// Built with MSGPACK_NO_BOOST and MSGPACK_DEFAULT_API_VERSION=3 (see CMakeLists.txt).
#include <msgpack.hpp>

namespace quiver {
namespace {

// The decoder streams msgpack events (msgpack::parse with a visitor) straight into Arrow
// builders: no object tree, no allocation per value, and the parser never allocates from a
// length in the input (it waits for the bytes a header promises), so a hostile header costs
// nothing. The visitor keeps its own stack of open arrays and maps; each frame is one step
// down the schema tree (or a subtree being skipped), which also yields the error path.

enum class Kind : uint8_t {
  kNull,
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat32,
  kFloat64,
  kUtf8,
  kLargeUtf8,
  kBinary,
  kLargeBinary,
  kTimestamp,
  kDate32,
  kList,
  kLargeList,
  kStruct,
  kDictionary,
  kRecord,  // the root: a record is a struct without a validity bitmap of its own
};

// One node of the schema tree, with the builder its values go to.
struct Column {
  Kind kind = Kind::kNull;
  std::string name;
  bool nullable = true;
  std::shared_ptr<arrow::DataType> type;
  std::shared_ptr<arrow::ArrayBuilder> owned;  // shared with the parent's builder
  arrow::ArrayBuilder* builder = nullptr;      // owned.get(), typed by `kind`
  arrow::TimeUnit::type unit = arrow::TimeUnit::SECOND;
  std::vector<std::unique_ptr<Column>> children;  // struct fields, or a list's value

  // Struct state. A column is open at most once at a time (the stack is a path down the
  // tree), so it can live here: `seen[i] == generation` means child i has its value.
  std::vector<uint32_t> seen;
  uint32_t generation = 0;
  std::unordered_map<std::string_view, uint32_t> by_name;  // only for wide structs
};

// Above this many fields a hash lookup beats comparing names one by one.
constexpr size_t kLinearLookupMax = 16;

// Field names are short: a byte loop the compiler inlines beats a call to memcmp (which
// std::string's == makes), and keys are compared once per value.
inline bool SameName(const std::string& name, std::string_view key) {
  if (name.size() != key.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    if (name[i] != key[i]) return false;
  }
  return true;
}

std::string PathJoin(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

Status Unsupported(const std::string& path, const arrow::DataType& type) {
  return Status::InvalidArgument("DecodeMsgpackRecords: field '" + path + "' has type " +
                                 type.ToString() + ", which msgpack records cannot fill");
}

// Builds the column for `field` and its builder tree. The builders are made here rather than
// by arrow::MakeBuilder so that a dictionary column gets a StringDictionary32Builder, a type
// the decoder can append to (MakeBuilder's exact-index builder is an internal type).
Result<std::unique_ptr<Column>> MakeColumn(const arrow::Field& field, arrow::MemoryPool* pool,
                                           const std::string& path) {
  auto column = std::make_unique<Column>();
  column->name = field.name();
  column->nullable = field.nullable();
  column->type = field.type();
  const arrow::DataType& type = *field.type();
  switch (type.id()) {
    case arrow::Type::NA:
      column->kind = Kind::kNull;
      break;
    case arrow::Type::BOOL:
      column->kind = Kind::kBool;
      break;
    case arrow::Type::INT8:
      column->kind = Kind::kInt8;
      break;
    case arrow::Type::INT16:
      column->kind = Kind::kInt16;
      break;
    case arrow::Type::INT32:
      column->kind = Kind::kInt32;
      break;
    case arrow::Type::INT64:
      column->kind = Kind::kInt64;
      break;
    case arrow::Type::UINT8:
      column->kind = Kind::kUInt8;
      break;
    case arrow::Type::UINT16:
      column->kind = Kind::kUInt16;
      break;
    case arrow::Type::UINT32:
      column->kind = Kind::kUInt32;
      break;
    case arrow::Type::UINT64:
      column->kind = Kind::kUInt64;
      break;
    case arrow::Type::FLOAT:
      column->kind = Kind::kFloat32;
      break;
    case arrow::Type::DOUBLE:
      column->kind = Kind::kFloat64;
      break;
    case arrow::Type::STRING:
      column->kind = Kind::kUtf8;
      break;
    case arrow::Type::LARGE_STRING:
      column->kind = Kind::kLargeUtf8;
      break;
    case arrow::Type::BINARY:
      column->kind = Kind::kBinary;
      break;
    case arrow::Type::LARGE_BINARY:
      column->kind = Kind::kLargeBinary;
      break;
    case arrow::Type::DATE32:
      column->kind = Kind::kDate32;
      break;
    case arrow::Type::TIMESTAMP:
      column->kind = Kind::kTimestamp;
      column->unit = static_cast<const arrow::TimestampType&>(type).unit();
      break;
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const bool large = type.id() == arrow::Type::LARGE_LIST;
      column->kind = large ? Kind::kLargeList : Kind::kList;
      QUIVER_ASSIGN_OR_RETURN(auto child, MakeColumn(*type.field(0), pool, path + "[]"));
      if (large) {
        column->owned = std::make_shared<arrow::LargeListBuilder>(pool, child->owned, field.type());
      } else {
        column->owned = std::make_shared<arrow::ListBuilder>(pool, child->owned, field.type());
      }
      column->children.push_back(std::move(child));
      break;
    }
    case arrow::Type::STRUCT: {
      column->kind = Kind::kStruct;
      std::vector<std::shared_ptr<arrow::ArrayBuilder>> builders;
      for (const auto& child_field : type.fields()) {
        QUIVER_ASSIGN_OR_RETURN(
            auto child, MakeColumn(*child_field, pool, PathJoin(path, child_field->name())));
        builders.push_back(child->owned);
        column->children.push_back(std::move(child));
      }
      column->owned = std::make_shared<arrow::StructBuilder>(field.type(), pool, builders);
      break;
    }
    case arrow::Type::DICTIONARY: {
      // The builder always finishes an unordered dictionary, so an ordered one cannot match.
      const auto& dict = static_cast<const arrow::DictionaryType&>(type);
      if (dict.index_type()->id() != arrow::Type::INT32 ||
          dict.value_type()->id() != arrow::Type::STRING || dict.ordered()) {
        return Unsupported(path, type);
      }
      column->kind = Kind::kDictionary;
      column->owned = std::make_shared<arrow::StringDictionary32Builder>(dict.value_type(), pool);
      break;
    }
    default:
      return Unsupported(path, type);
  }
  if (column->owned == nullptr) {
    std::unique_ptr<arrow::ArrayBuilder> builder;
    if (!arrow::MakeBuilder(pool, field.type(), &builder).ok()) return Unsupported(path, type);
    column->owned = std::move(builder);
  }
  column->builder = column->owned.get();
  return column;
}

// Names as the msgspec side thinks of them (Arrow's ToString says "double" for float64).
std::string TypeName(const Column& c) {
  switch (c.kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "bool";
    case Kind::kInt8:
      return "int8";
    case Kind::kInt16:
      return "int16";
    case Kind::kInt32:
      return "int32";
    case Kind::kInt64:
      return "int64";
    case Kind::kUInt8:
      return "uint8";
    case Kind::kUInt16:
      return "uint16";
    case Kind::kUInt32:
      return "uint32";
    case Kind::kUInt64:
      return "uint64";
    case Kind::kFloat32:
      return "float32";
    case Kind::kFloat64:
      return "float64";
    case Kind::kUtf8:
      return "utf8";
    case Kind::kLargeUtf8:
      return "large_utf8";
    case Kind::kBinary:
      return "binary";
    case Kind::kLargeBinary:
      return "large_binary";
    case Kind::kTimestamp:
      return c.type->ToString();
    case Kind::kDate32:
      return "date32";
    case Kind::kList:
      return "list (array)";
    case Kind::kLargeList:
      return "large_list (array)";
    case Kind::kStruct:
      return "struct (map or array)";
    case Kind::kDictionary:
      return "dictionary<int32, utf8>";
    case Kind::kRecord:
      return "a record (map or array)";
  }
  return "?";
}

// Seconds and nanoseconds of a msgpack timestamp extension (type -1), or false.
bool ReadMsgpackTimestamp(const uint8_t* p, uint32_t size, int64_t* seconds, int64_t* nanos) {
  auto be = [p](int offset, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | p[offset + i];
    return v;
  };
  switch (size) {
    case 4:
      *seconds = static_cast<int64_t>(be(0, 4));
      *nanos = 0;
      return true;
    case 8: {
      const uint64_t v = be(0, 8);
      *nanos = static_cast<int64_t>(v >> 34);
      *seconds = static_cast<int64_t>(v & ((uint64_t{1} << 34) - 1));
      return *nanos < 1000000000;
    }
    case 12:
      *nanos = static_cast<int64_t>(be(0, 4));
      *seconds = static_cast<int64_t>(be(4, 8));
      return *nanos < 1000000000;
    default:
      return false;
  }
}

class RecordsVisitor {
 public:
  RecordsVisitor(Column* root, std::vector<arrow::ArrayBuilder*>* top, size_t input_size)
      : root_(root), top_(top), input_size_(input_size) {
    stack_.reserve(kMaxMsgpackDepth + 1);
  }

  const Status& status() const { return status_; }
  int64_t records() const { return records_; }

  // --- msgpack visitor concept ------------------------------------------------------------
  bool visit_nil() {
    Column* c;
    if (!Resolve("nil", &c)) return false;
    if (c == nullptr) return true;
    if (c->kind == Kind::kRecord) return TypeError(c, "nil");
    if (!c->nullable && c->kind != Kind::kNull) return Fail("null for a non-nullable field");
    return AppendNull(c);
  }

  bool visit_boolean(bool v) {
    Column* c;
    if (!Resolve("bool", &c)) return false;
    if (c == nullptr) return true;
    if (c->kind != Kind::kBool) return TypeError(c, "bool");
    return Check(static_cast<arrow::BooleanBuilder*>(c->builder)->Append(v));
  }

  bool visit_positive_integer(uint64_t v) {
    Column* c;
    if (!Resolve("int", &c)) return false;
    return c == nullptr || AppendInteger(c, false, v, 0);
  }

  // msgpack-c reports every signed encoding (int8..int64) here, non-negative values too.
  bool visit_negative_integer(int64_t v) {
    Column* c;
    if (!Resolve("int", &c)) return false;
    if (c == nullptr) return true;
    return v >= 0 ? AppendInteger(c, false, static_cast<uint64_t>(v), 0)
                  : AppendInteger(c, true, 0, v);
  }

  bool visit_float32(float v) { return visit_float64(v); }

  bool visit_float64(double v) {
    Column* c;
    if (!Resolve("float", &c)) return false;
    if (c == nullptr) return true;
    return AppendFloat(c, v, "float");
  }

  bool visit_str(const char* data, uint32_t size) {
    if (stack_.empty()) return Fail("expected an array of records, got str");
    Frame& f = stack_.back();
    if (f.type == FrameType::kMap && f.in_key) return OnKey(f, std::string_view(data, size));
    Column* c;
    if (!Resolve("str", &c)) return false;
    if (c == nullptr) return true;
    const auto* bytes = reinterpret_cast<const uint8_t*>(data);
    switch (c->kind) {
      case Kind::kUtf8:
        if (!arrow::util::ValidateUTF8(bytes, size)) return Fail("invalid UTF-8 in str");
        return Check(static_cast<arrow::StringBuilder*>(c->builder)->Append(data, size));
      case Kind::kLargeUtf8:
        if (!arrow::util::ValidateUTF8(bytes, size)) return Fail("invalid UTF-8 in str");
        return Check(static_cast<arrow::LargeStringBuilder*>(c->builder)->Append(data, size));
      case Kind::kBinary:
        return Check(static_cast<arrow::BinaryBuilder*>(c->builder)->Append(data, size));
      case Kind::kLargeBinary:
        return Check(static_cast<arrow::LargeBinaryBuilder*>(c->builder)->Append(data, size));
      case Kind::kDictionary:
        if (!arrow::util::ValidateUTF8(bytes, size)) return Fail("invalid UTF-8 in str");
        return Check(static_cast<arrow::StringDictionary32Builder*>(c->builder)
                         ->Append(std::string_view(data, size)));
      default:
        return TypeError(c, "str");
    }
  }

  bool visit_bin(const char* data, uint32_t size) {
    Column* c;
    if (!Resolve("bin", &c)) return false;
    if (c == nullptr) return true;
    switch (c->kind) {
      case Kind::kBinary:
        return Check(static_cast<arrow::BinaryBuilder*>(c->builder)->Append(data, size));
      case Kind::kLargeBinary:
        return Check(static_cast<arrow::LargeBinaryBuilder*>(c->builder)->Append(data, size));
      default:
        return TypeError(c, "bin");
    }
  }

  // `data` is the extension's type byte followed by its payload; `size` counts both.
  bool visit_ext(const char* data, uint32_t size) {
    Column* c;
    if (!Resolve("ext", &c)) return false;
    if (c == nullptr) return true;
    if (c->kind != Kind::kTimestamp || size == 0) return TypeError(c, "ext");
    if (static_cast<int8_t>(data[0]) != -1) {
      return TypeError(c, "ext type " + std::to_string(static_cast<int8_t>(data[0])));
    }
    int64_t seconds, nanos;
    if (!ReadMsgpackTimestamp(reinterpret_cast<const uint8_t*>(data + 1), size - 1, &seconds,
                              &nanos)) {
      return Fail("malformed msgpack timestamp extension");
    }
    int64_t per_second = 1, nanos_per_unit = 1000000000;
    switch (c->unit) {
      case arrow::TimeUnit::SECOND:
        break;
      case arrow::TimeUnit::MILLI:
        per_second = 1000, nanos_per_unit = 1000000;
        break;
      case arrow::TimeUnit::MICRO:
        per_second = 1000000, nanos_per_unit = 1000;
        break;
      case arrow::TimeUnit::NANO:
        per_second = 1000000000, nanos_per_unit = 1;
        break;
    }
    int64_t value;
    if (__builtin_mul_overflow(seconds, per_second, &value) ||
        __builtin_add_overflow(value, nanos / nanos_per_unit, &value)) {
      return Fail("timestamp out of range for " + TypeName(*c));
    }
    return Check(static_cast<arrow::TimestampBuilder*>(c->builder)->Append(value));
  }

  bool start_array(uint32_t n) {
    if (!CheckDepth()) return false;
    if (stack_.empty()) {
      // An array of n records takes at least n bytes, so this reserves no more than the
      // input's size in rows, whatever the header claims.
      const int64_t rows = std::min<uint64_t>(n, input_size_);
      for (arrow::ArrayBuilder* builder : *top_) {
        if (!Check(builder->Reserve(rows))) return false;
      }
      stack_.push_back({FrameType::kRecords, root_});
      return true;
    }
    Column* c;
    if (!Resolve("array", &c)) return false;
    if (c == nullptr) {
      stack_.push_back({FrameType::kSkip, nullptr});
      return true;
    }
    switch (c->kind) {
      case Kind::kList:
        if (!Check(static_cast<arrow::ListBuilder*>(c->builder)->Append())) return false;
        stack_.push_back({FrameType::kList, c});
        return true;
      case Kind::kLargeList:
        if (!Check(static_cast<arrow::LargeListBuilder*>(c->builder)->Append())) return false;
        stack_.push_back({FrameType::kList, c});
        return true;
      case Kind::kStruct:
      case Kind::kRecord:
        if (!OpenStruct(c)) return false;
        stack_.push_back({FrameType::kArray, c});
        return true;
      default:
        return TypeError(c, "array");
    }
  }
  bool start_array_item() { return true; }
  bool end_array_item() {
    ++stack_.back().index;
    return true;
  }
  bool end_array() {
    Frame& f = stack_.back();
    if (f.type == FrameType::kArray) {
      const uint32_t given = f.index;
      f.index = kNoChild;  // the path of a missing field must not name the last given one
      for (size_t i = given; i < f.column->children.size(); ++i) {
        if (!FillMissing(f.column->children[i].get())) return false;
      }
    } else if (f.type == FrameType::kRecords) {
      records_ = f.index;
    }
    stack_.pop_back();
    return true;
  }

  bool start_map(uint32_t /*n*/) {
    if (!CheckDepth()) return false;
    if (stack_.empty()) return Fail("expected an array of records, got map");
    Column* c;
    if (!Resolve("map", &c)) return false;
    if (c == nullptr) {
      stack_.push_back({FrameType::kSkip, nullptr});
      return true;
    }
    if (c->kind != Kind::kStruct && c->kind != Kind::kRecord) return TypeError(c, "map");
    if (!OpenStruct(c)) return false;
    stack_.push_back({FrameType::kMap, c});
    return true;
  }
  bool start_map_key() {
    stack_.back().in_key = true;
    return true;
  }
  bool end_map_key() {
    stack_.back().in_key = false;
    return true;
  }
  bool start_map_value() { return true; }
  bool end_map_value() {
    stack_.back().current = kNoChild;
    return true;
  }
  bool end_map() {
    Frame& f = stack_.back();
    if (f.type == FrameType::kMap && f.present != f.column->children.size()) {
      Column& s = *f.column;
      for (size_t i = 0; i < s.children.size(); ++i) {
        if (s.seen[i] != s.generation && !FillMissing(s.children[i].get())) return false;
      }
    }
    stack_.pop_back();
    return true;
  }

  void parse_error(size_t /*parsed_offset*/, size_t error_offset) {
    if (status_.ok()) {
      Fail("malformed msgpack at byte " + std::to_string(error_offset));
    }
  }
  void insufficient_bytes(size_t /*parsed_offset*/, size_t /*error_offset*/) {
    if (!status_.ok()) return;
    if (stack_.empty()) {
      status_ =
          Status::InvalidArgument("truncated msgpack: expected an array of records, input has " +
                                  std::to_string(input_size_) + " bytes");
    } else {
      Fail("truncated msgpack: the input ends inside this value (" + std::to_string(input_size_) +
           " bytes)");
    }
  }
  bool referenced() const { return false; }
  void set_referenced(bool /*referenced*/) {}

 private:
  static constexpr uint32_t kNoChild = std::numeric_limits<uint32_t>::max();

  enum class FrameType : uint8_t { kRecords, kMap, kArray, kList, kSkip };
  struct Frame {
    FrameType type;
    Column* column;               // the struct or list being filled (the root for kRecords)
    uint32_t index = 0;           // kRecords, kList: element; kArray: the field it fills
    uint32_t current = kNoChild;  // kMap: the field the current value fills
    uint32_t present = 0;         // kMap: fields given so far
    bool in_key = false;          // kMap: between start_map_key and end_map_key
  };

  // Sets `*out` to the column the next value fills, or nullptr if it is skipped. False (with
  // the status set) where no value may stand, e.g. a map key that is not a str.
  bool Resolve(const char* got, Column** out) {
    if (stack_.empty()) return Fail(std::string("expected an array of records, got ") + got);
    Frame& f = stack_.back();
    switch (f.type) {
      case FrameType::kRecords:
        *out = root_;
        return true;
      case FrameType::kMap:
        if (f.in_key) return Fail(std::string("map keys must be str, got ") + got);
        *out = f.current == kNoChild ? nullptr : f.column->children[f.current].get();
        return true;
      case FrameType::kArray:
        // Trailing elements past the schema's fields are ignored, like unknown keys.
        *out = f.index < f.column->children.size() ? f.column->children[f.index].get() : nullptr;
        return true;
      case FrameType::kList:
        *out = f.column->children[0].get();
        return true;
      case FrameType::kSkip:
        *out = nullptr;
        return true;
    }
    return false;
  }

  bool OnKey(Frame& f, std::string_view key) {
    Column& s = *f.column;
    const size_t n = s.children.size();
    uint32_t found = kNoChild;
    // Producers write fields in one order, usually the schema's: try the next one first.
    const uint32_t hint = f.present;
    if (hint < n && SameName(s.children[hint]->name, key)) {
      found = hint;
    } else if (n <= kLinearLookupMax) {
      for (uint32_t i = 0; i < n; ++i) {
        if (SameName(s.children[i]->name, key)) {
          found = i;
          break;
        }
      }
    } else if (auto it = s.by_name.find(key); it != s.by_name.end()) {
      found = it->second;
    }
    if (found == kNoChild) return true;  // unknown key: its value is skipped
    if (s.seen[found] == s.generation) {
      return Fail("duplicate key '" + s.children[found]->name + "'");
    }
    s.seen[found] = s.generation;
    ++f.present;
    f.current = found;
    return true;
  }

  bool OpenStruct(Column* c) {
    if (c->kind == Kind::kStruct &&
        !Check(static_cast<arrow::StructBuilder*>(c->builder)->Append())) {
      return false;
    }
    if (c->seen.empty() && !c->children.empty()) {
      c->seen.assign(c->children.size(), 0);
      if (c->children.size() > kLinearLookupMax) {
        for (uint32_t i = 0; i < c->children.size(); ++i) c->by_name[c->children[i]->name] = i;
      }
    }
    if (++c->generation == 0) {  // wrapped after 2^32 structs: forget every old mark
      std::fill(c->seen.begin(), c->seen.end(), 0);
      c->generation = 1;
    }
    return true;
  }

  bool FillMissing(Column* c) {
    if (!c->nullable && c->kind != Kind::kNull) {
      return Fail("missing, and the field is not nullable", c);
    }
    return AppendNull(c);
  }

  // A null struct still holds one value in each child. StructBuilder::AppendNull would give
  // every child its "empty value", which for a dictionary is index 0, valid, even while the
  // dictionary is empty: a batch that fails ValidateFull and, unvalidated, reads outside the
  // dictionary. So a struct's children are filled here, with a null index for a dictionary.
  bool AppendNull(Column* c) {
    if (c->kind != Kind::kStruct) return Check(c->builder->AppendNull());
    if (!Check(static_cast<arrow::StructBuilder*>(c->builder)->Append(false))) return false;
    return AppendEmptyChildren(c);
  }
  bool AppendEmptyChildren(Column* c) {
    for (const auto& child : c->children) {
      bool ok = false;
      if (child->kind == Kind::kDictionary) {
        ok = Check(child->builder->AppendNull());
      } else if (child->kind == Kind::kStruct) {
        ok = Check(static_cast<arrow::StructBuilder*>(child->builder)->Append(true)) &&
             AppendEmptyChildren(child.get());
      } else {
        ok = Check(child->builder->AppendEmptyValue());
      }
      if (!ok) return false;
    }
    return true;
  }

  bool AppendInteger(Column* c, bool negative, uint64_t u, int64_t s) {
    auto in_range = [&](int64_t lo, uint64_t hi) { return negative ? s >= lo : u <= hi; };
    auto out_of_range = [&]() {
      return Fail((negative ? std::to_string(s) : std::to_string(u)) + " is out of range for " +
                  TypeName(*c));
    };
    const int64_t value = negative ? s : static_cast<int64_t>(u);
    switch (c->kind) {
      case Kind::kInt8:
        if (!in_range(INT8_MIN, INT8_MAX)) return out_of_range();
        return Check(static_cast<arrow::Int8Builder*>(c->builder)->Append(value));
      case Kind::kInt16:
        if (!in_range(INT16_MIN, INT16_MAX)) return out_of_range();
        return Check(static_cast<arrow::Int16Builder*>(c->builder)->Append(value));
      case Kind::kInt32:
        if (!in_range(INT32_MIN, INT32_MAX)) return out_of_range();
        return Check(static_cast<arrow::Int32Builder*>(c->builder)->Append(value));
      case Kind::kInt64:
        if (!in_range(INT64_MIN, INT64_MAX)) return out_of_range();
        return Check(static_cast<arrow::Int64Builder*>(c->builder)->Append(value));
      case Kind::kUInt8:
        if (!in_range(0, UINT8_MAX)) return out_of_range();
        return Check(static_cast<arrow::UInt8Builder*>(c->builder)->Append(u));
      case Kind::kUInt16:
        if (!in_range(0, UINT16_MAX)) return out_of_range();
        return Check(static_cast<arrow::UInt16Builder*>(c->builder)->Append(u));
      case Kind::kUInt32:
        if (!in_range(0, UINT32_MAX)) return out_of_range();
        return Check(static_cast<arrow::UInt32Builder*>(c->builder)->Append(u));
      case Kind::kUInt64:
        if (negative) return out_of_range();
        return Check(static_cast<arrow::UInt64Builder*>(c->builder)->Append(u));
      case Kind::kFloat32:
      case Kind::kFloat64:
        return AppendFloat(c, negative ? static_cast<double>(s) : static_cast<double>(u), "int");
      case Kind::kTimestamp:
        if (!in_range(INT64_MIN, INT64_MAX)) return out_of_range();
        return Check(static_cast<arrow::TimestampBuilder*>(c->builder)->Append(value));
      case Kind::kDate32:
        if (!in_range(INT32_MIN, INT32_MAX)) return out_of_range();
        return Check(static_cast<arrow::Date32Builder*>(c->builder)->Append(value));
      default:
        return TypeError(c, "int");
    }
  }

  bool AppendFloat(Column* c, double v, const char* got) {
    switch (c->kind) {
      case Kind::kFloat32:
        // Python floats arrive as float64; narrowing is expected, overflowing to inf is not.
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          char text[32];
          std::snprintf(text, sizeof(text), "%g", v);
          return Fail(std::string(text) + " is out of range for float32");
        }
        return Check(static_cast<arrow::FloatBuilder*>(c->builder)->Append(static_cast<float>(v)));
      case Kind::kFloat64:
        return Check(static_cast<arrow::DoubleBuilder*>(c->builder)->Append(v));
      default:
        return TypeError(c, got);
    }
  }

  bool CheckDepth() {
    if (stack_.size() < static_cast<size_t>(kMaxMsgpackDepth)) return true;
    return Fail("nesting deeper than " + std::to_string(kMaxMsgpackDepth));
  }

  bool TypeError(const Column* c, const std::string& got) {
    return Fail("expected " + TypeName(*c) + ", got " + got);
  }

  // Builders fail only on memory (or a 2 GiB offset limit); both stop the decode.
  bool Check(const arrow::Status& st) {
    if (st.ok()) return true;
    const std::string where = Where(nullptr);
    status_ =
        Status(st.IsOutOfMemory() ? ErrorCode::kCapacityExceeded : ErrorCode::kInvalidArgument,
               where.empty() ? st.ToString() : where + ": " + st.ToString());
    return false;
  }

  // Records the error at the current position; returns false to stop the parser.
  bool Fail(const std::string& what, const Column* missing = nullptr) {
    const std::string where = Where(missing);
    status_ = Status::InvalidArgument(where.empty() ? what : where + ": " + what);
    return false;
  }

  // "record 12, field 'items[3].price'": where the parser is, for error messages only.
  std::string Where(const Column* missing) const {
    if (stack_.empty()) return "";
    std::string path;
    auto add = [&path](const std::string& name) {
      if (!path.empty()) path += '.';
      path += name;
    };
    for (size_t i = 1; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      const auto& children = f.column == nullptr ? kNoChildren : f.column->children;
      switch (f.type) {
        case FrameType::kMap:
          if (!f.in_key && f.current < children.size()) add(children[f.current]->name);
          break;
        case FrameType::kArray:
          if (f.index < children.size()) add(children[f.index]->name);
          break;
        case FrameType::kList:
          path.append("[").append(std::to_string(f.index)).append("]");
          break;
        case FrameType::kRecords:
        case FrameType::kSkip:
          break;
      }
    }
    if (missing != nullptr) add(missing->name);
    std::string where = "record ";
    where.append(std::to_string(stack_[0].index));
    if (!path.empty()) where.append(", field '").append(path).append("'");
    return where;
  }

  static inline const std::vector<std::unique_ptr<Column>> kNoChildren;

  Column* root_;
  std::vector<arrow::ArrayBuilder*>* top_;
  size_t input_size_;
  std::vector<Frame> stack_;
  Status status_;
  int64_t records_ = 0;
};

}  // namespace

Result<std::shared_ptr<arrow::RecordBatch>> DecodeMsgpackRecords(
    std::string_view msgpack, const std::shared_ptr<arrow::Schema>& schema,
    arrow::MemoryPool* pool) {
  if (schema == nullptr) return Status::InvalidArgument("DecodeMsgpackRecords: no schema");
  static const bool utf8_ready = (arrow::util::InitializeUTF8(), true);
  (void)utf8_ready;

  std::vector<arrow::ArrayBuilder*> builders;
  Column root;
  root.kind = Kind::kRecord;
  root.nullable = false;
  for (const auto& field : schema->fields()) {
    QUIVER_ASSIGN_OR_RETURN(auto column, MakeColumn(*field, pool, field->name()));
    builders.push_back(column->owned.get());
    root.children.push_back(std::move(column));
  }

  RecordsVisitor visitor(&root, &builders, msgpack.size());
  size_t offset = 0;
  bool parsed = false;
  try {
    parsed = msgpack::parse(msgpack.data(), msgpack.size(), offset, visitor);
  } catch (const std::exception& e) {
    // The parser's own stack can throw bad_alloc; nothing else in it should.
    return Status::InvalidArgument(std::string("malformed msgpack: ") + e.what());
  }
  if (!visitor.status().ok()) return visitor.status();
  if (!parsed) return Status::InvalidArgument("malformed msgpack");
  if (offset != msgpack.size()) {
    return Status::InvalidArgument(std::to_string(msgpack.size() - offset) +
                                   " trailing bytes after the records array (at byte " +
                                   std::to_string(offset) + ")");
  }

  std::vector<std::shared_ptr<arrow::Array>> columns;
  columns.reserve(builders.size());
  for (size_t i = 0; i < builders.size(); ++i) {
    std::shared_ptr<arrow::Array> array;
    if (arrow::Status st = builders[i]->Finish(&array); !st.ok()) {
      return Status(st.IsOutOfMemory() ? ErrorCode::kCapacityExceeded : ErrorCode::kInvalidArgument,
                    "field '" + schema->field(static_cast<int>(i))->name() + "': " + st.ToString());
    }
    columns.push_back(std::move(array));
  }
  return arrow::RecordBatch::Make(schema, visitor.records(), std::move(columns));
}

}  // namespace quiver
