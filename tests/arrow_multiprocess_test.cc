// Arrow batches across real processes: Ledger rows, 1M of them,, read zero-copy in
// another process and checked column by column.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cstring>

#include "ledger.h"
#include "quiver/arrow.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::SegmentFileExists;
using testing::Signal;
using testing::UniqueName;

// A checksum of every value of every column (FNV-1a over the values' bytes, in order).
uint64_t LedgerChecksum(const arrow::RecordBatch& batch) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& column : batch.columns()) {
    for (int64_t i = 0; i < column->length(); ++i) {
      switch (column->type_id()) {
        case arrow::Type::INT32: {
          const int32_t v = std::static_pointer_cast<arrow::Int32Array>(column)->Value(i);
          mix(&v, sizeof(v));
          break;
        }
        case arrow::Type::DOUBLE: {
          const double v = std::static_pointer_cast<arrow::DoubleArray>(column)->Value(i);
          mix(&v, sizeof(v));
          break;
        }
        case arrow::Type::STRING: {
          const std::string_view v = std::static_pointer_cast<arrow::StringArray>(column)->Value(i);
          mix(v.data(), v.size());
          break;
        }
        default:
          ADD_FAILURE() << "unexpected column type " << column->type()->ToString();
      }
    }
  }
  return h;
}

TEST(ArrowMultiProcessTest, MillionRowLedgerCrossesProcessesIntact) {
  constexpr int64_t kRows = 1'000'000;
  const std::string name = UniqueName("ledger-1m");
  {
    auto channel =
        CreateArrowChannel(name, testing::LedgerSchema(), {.capacity = size_t{160} << 20});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    Signal ready, result;
    Child reader([&] {
      auto ch = Channel::Open(name);
      if (!ch.ok()) return 10;
      auto subscriber = ArrowSubscriber::Make(*ch, {.validation = BatchValidation::kFull});
      if (!subscriber.ok()) return 11;
      ready.Notify();
      auto sample = subscriber->Receive(seconds(60));
      if (!sample.ok()) {
        std::fprintf(stderr, "%s\n", sample.status().ToString().c_str());
        return 12;
      }
      if (sample->batch->num_rows() != kRows) return 13;
      double sum = testing::SumAmount(*sample->batch);
      uint64_t bits;
      std::memcpy(&bits, &sum, sizeof(bits));
      result.Notify(bits);
      result.Notify(LedgerChecksum(*sample->batch));
      return 0;
    });
    ready.Await();
    auto ledger = testing::MakeLedger(kRows, 2026);
    auto publisher = ArrowPublisher::Make(*channel);
    ASSERT_TRUE(publisher.ok());
    Status st = publisher->Publish(*ledger);
    ASSERT_TRUE(st.ok()) << st.ToString();

    const uint64_t sum_bits = result.Await();
    const uint64_t checksum = result.Await();
    EXPECT_EQ(reader.ExitCode(), 0);
    double sum;
    std::memcpy(&sum, &sum_bits, sizeof(sum));
    EXPECT_EQ(sum, testing::SumAmount(*ledger)) << "same doubles, same order: bit-equal";
    EXPECT_EQ(checksum, LedgerChecksum(*ledger));
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

}  // namespace
}  // namespace quiver
