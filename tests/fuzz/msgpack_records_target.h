// The msgpack records target: DecodeMsgpackRecords (src/payload/msgpack_records.cc) with a
// fixed schema of every supported type, once with an unbounded pool (whose peak is bounded by
// the input size) and once with a pool capped below that peak (a clean kCapacityExceeded).
// A decoded batch must have the schema and pass ValidateFull. Run by
// msgpack_records_fuzzer.cc; replayed by tests/fuzz_regression_test.cc.
#pragma once

#include <arrow/api.h>
#include <arrow/pretty_print.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "quiver/msgpack_records.h"
#include "quiver/status.h"

namespace quiver::fuzz {

inline std::shared_ptr<arrow::Schema> MsgpackSchema() {
  using arrow::field;
  return arrow::schema({
      field("id", arrow::int64(), /*nullable=*/false),
      field("ok", arrow::boolean()),
      field("i8", arrow::int8()),
      field("i16", arrow::int16()),
      field("i32", arrow::int32()),
      field("u8", arrow::uint8()),
      field("u16", arrow::uint16()),
      field("u32", arrow::uint32()),
      field("u64", arrow::uint64()),
      field("f32", arrow::float32()),
      field("f64", arrow::float64()),
      field("name", arrow::utf8()),
      field("text", arrow::large_utf8()),
      field("blob", arrow::binary()),
      field("big_blob", arrow::large_binary()),
      field("nothing", arrow::null()),
      field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      field("ts_ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      field("day", arrow::date32()),
      field("tags", arrow::list(arrow::utf8())),
      field("matrix", arrow::large_list(arrow::list(arrow::float64()))),
      field("point",
            arrow::struct_({field("x", arrow::int32(), false), field("y", arrow::float64()),
                            field("label", arrow::dictionary(arrow::int32(), arrow::utf8()))})),
      field("items", arrow::list(arrow::struct_(
                         {field("sku", arrow::utf8(), false), field("qty", arrow::uint32())}))),
      field("code", arrow::dictionary(arrow::int32(), arrow::utf8())),
  });
}

// A pool that counts (and optionally caps) what it hands out.
class CountingPool final : public arrow::MemoryPool {
 public:
  explicit CountingPool(int64_t cap = std::numeric_limits<int64_t>::max())
      : base_(arrow::system_memory_pool()), cap_(cap) {}
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    if (size > cap_ - allocated_) return arrow::Status::OutOfMemory("fuzz cap");
    ARROW_RETURN_NOT_OK(base_->Allocate(size, alignment, out));
    Add(size);
    return arrow::Status::OK();
  }
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    if (new_size - old_size > cap_ - allocated_) return arrow::Status::OutOfMemory("fuzz cap");
    ARROW_RETURN_NOT_OK(base_->Reallocate(old_size, new_size, alignment, ptr));
    Add(new_size - old_size);
    return arrow::Status::OK();
  }
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    base_->Free(buffer, size, alignment);
    allocated_ -= size;
  }
  int64_t bytes_allocated() const override { return allocated_; }
  int64_t max_memory() const override { return peak_; }
  int64_t total_bytes_allocated() const override { return total_; }
  int64_t num_allocations() const override { return 0; }
  std::string backend_name() const override { return "fuzz-counting"; }

 private:
  void Add(int64_t n) {
    allocated_ += n;
    if (n > 0) total_ += n;
    peak_ = std::max(peak_, allocated_);
  }
  arrow::MemoryPool* base_;
  int64_t cap_;
  int64_t allocated_ = 0;
  int64_t peak_ = 0;
  int64_t total_ = 0;
};

inline void FuzzMsgpackRecords(const uint8_t* data, size_t size) {
  UseSystemMemoryPool();
  static const std::shared_ptr<arrow::Schema> schema = MsgpackSchema();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  int64_t peak = 0;
  bool decoded_ok = false;
  {
    CountingPool pool;
    Result<std::shared_ptr<arrow::RecordBatch>> batch = DecodeMsgpackRecords(bytes, schema, &pool);
    if (batch.ok()) {
      decoded_ok = true;
      QUIVER_FUZZ_CHECK((*batch)->schema()->Equals(*schema, false), "schema");
      const arrow::Status valid = (*batch)->ValidateFull();
      QUIVER_FUZZ_CHECK(valid.ok(), "decoded batch does not validate: " + valid.ToString());
      std::ostringstream text;
      (void)arrow::PrettyPrint(**batch, 0, &text);
    } else {
      QUIVER_FUZZ_CHECK(batch.status().code() == ErrorCode::kInvalidArgument,
                        StatusText(batch.status()));
      QUIVER_FUZZ_CHECK(
          batch.status().message().find("DecodeMsgpackRecords") != std::string::npos ||
              batch.status().message().find("record") != std::string::npos ||
              !batch.status().message().empty(),
          "error without a message");
    }
    peak = pool.max_memory();
    // "No input can make it allocate much more than the input's size (times the width of
    // the widest field)": a row of this schema costs at most ~300 bytes of builders, doubled
    // by geometric growth, and one byte of input can make a row.
    const int64_t bound = (int64_t{1} << 20) + static_cast<int64_t>(size) * 1024;
    QUIVER_FUZZ_CHECK(peak <= bound, "decoding " + std::to_string(size) + " bytes allocated " +
                                         std::to_string(peak) + " bytes at peak");
  }
  if (peak > 64) {  // the same input with too little memory: a clean kCapacityExceeded
    CountingPool capped(peak / 2);
    Result<std::shared_ptr<arrow::RecordBatch>> batch =
        DecodeMsgpackRecords(bytes, schema, &capped);
    if (batch.ok()) {
      QUIVER_FUZZ_CHECK((*batch)->ValidateFull().ok(), "capped decode does not validate");
    } else {
      const ErrorCode code = batch.status().code();
      QUIVER_FUZZ_CHECK(code == ErrorCode::kCapacityExceeded ||
                            (!decoded_ok && code == ErrorCode::kInvalidArgument),
                        "out of memory reported as " + StatusText(batch.status()));
    }
  }
}

}  // namespace quiver::fuzz
