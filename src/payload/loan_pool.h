// LoanPool: an arrow::MemoryPool over a loan's arena, the memory of a BatchLoan (whose Impl
// is here too). Allocation is thread-compatible (one builder at a time); the last Free, from
// any thread, deletes the pool once its loan is gone.
#pragma once

#include <arrow/memory_pool.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "quiver/arrow.h"
#include "quiver/channel.h"

namespace quiver {
namespace payload {

/// A bump allocator over [begin, begin + size), every allocation 64-byte aligned; the newest
/// allocation grows in place, and freeing it gives its bytes back. It deletes itself once the loan
/// is gone (Detach) and every buffer allocated from it was freed, because Arrow buffers keep a raw
/// pointer to their pool.
class LoanPool final : public arrow::MemoryPool {
 public:
  LoanPool(uint8_t* begin, int64_t size) : begin_(begin), size_(size) {}

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;
  int64_t bytes_allocated() const override { return allocated_; }
  int64_t total_bytes_allocated() const override { return allocated_; }
  int64_t num_allocations() const override { return allocations_; }
  std::string backend_name() const override { return "quiver-loan"; }

  /// The loan is gone: deletes the pool now, or when the last buffer is freed.
  void Detach();
  /// Whether [p, p + n) lies inside what was allocated.
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

}  // namespace payload

struct BatchLoan::Impl {
  Impl(LoanedSample l, payload::LoanPool* p) : loan(std::move(l)), pool(p) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { pool->Detach(); }

  LoanedSample loan;
  payload::LoanPool* pool;
};

}  // namespace quiver
