// Ledger rows (benchmark W1, docs/benchmarks.md): a deterministic generator for tests and
// benchmarks. stt int32, code utf8 (~9 chars), name utf8 (~24), unit utf8 (~3),
// quantity float64, unit_price float64, amount float64 = quantity * unit_price.
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

namespace quiver::testing {

inline std::shared_ptr<arrow::Schema> LedgerSchema() {
  return arrow::schema(
      {arrow::field("stt", arrow::int32(), false), arrow::field("code", arrow::utf8(), false),
       arrow::field("name", arrow::utf8(), false), arrow::field("unit", arrow::utf8(), false),
       arrow::field("quantity", arrow::float64(), false),
       arrow::field("unit_price", arrow::float64(), false),
       arrow::field("amount", arrow::float64(), false)});
}

/// `rows` rows from `seed`; `pool` decides where the buffers live.
inline std::shared_ptr<arrow::RecordBatch> MakeLedger(
    int64_t rows, uint64_t seed = 1, arrow::MemoryPool* pool = arrow::default_memory_pool()) {
  static const char* kUnits[] = {"kg", "pcs", "box", "m", "l"};
  std::mt19937_64 rng(seed);
  arrow::Int32Builder stt(pool);
  arrow::StringBuilder code(pool), name(pool), unit(pool);
  arrow::DoubleBuilder quantity(pool), unit_price(pool), amount(pool);
  // Exact reservations: builders never reallocate (which matters for in-loan building).
  (void)stt.Reserve(rows);
  (void)code.Reserve(rows);
  (void)code.ReserveData(rows * 9);
  (void)name.Reserve(rows);
  (void)name.ReserveData(rows * 24);
  (void)unit.Reserve(rows);
  (void)unit.ReserveData(rows * 3);
  (void)quantity.Reserve(rows);
  (void)unit_price.Reserve(rows);
  (void)amount.Reserve(rows);
  char buf[32];
  for (int64_t i = 0; i < rows; ++i) {
    stt.UnsafeAppend(static_cast<int32_t>(i + 1));
    std::snprintf(buf, sizeof(buf), "C%08llu", static_cast<unsigned long long>(rng() % 100000000));
    code.UnsafeAppend(buf, 9);
    std::snprintf(buf, sizeof(buf), "Item %019llu", static_cast<unsigned long long>(rng()));
    name.UnsafeAppend(buf, 24);
    unit.UnsafeAppend(std::string_view(kUnits[i % 5]));  // at most 3 bytes each
    const double q = static_cast<double>(rng() % 1000) / 10.0;
    const double p = static_cast<double>(rng() % 100000) / 100.0;
    quantity.UnsafeAppend(q);
    unit_price.UnsafeAppend(p);
    amount.UnsafeAppend(q * p);
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(7);
  (void)stt.Finish(&columns[0]);
  (void)code.Finish(&columns[1]);
  (void)name.Finish(&columns[2]);
  (void)unit.Finish(&columns[3]);
  (void)quantity.Finish(&columns[4]);
  (void)unit_price.Finish(&columns[5]);
  (void)amount.Finish(&columns[6]);
  return arrow::RecordBatch::Make(LedgerSchema(), rows, columns);
}

inline double SumAmount(const arrow::RecordBatch& batch) {
  auto amount = std::static_pointer_cast<arrow::DoubleArray>(batch.GetColumnByName("amount"));
  double sum = 0;
  for (int64_t i = 0; i < amount->length(); ++i) sum += amount->Value(i);
  return sum;
}

}  // namespace quiver::testing
