#include "payload/loan_pool.h"

#include <algorithm>
#include <cstring>

#include "payload/arrow_format.h"
#include "payload/typed_header.h"

namespace quiver {
namespace payload {

arrow::Status LoanPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
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

arrow::Status LoanPool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                                   uint8_t** ptr) {
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

void LoanPool::Free(uint8_t* buffer, int64_t size, int64_t /*alignment*/) {
  if (buffer == last_ && buffer + size == begin_ + used_) used_ = buffer - begin_;
  allocated_ -= size;
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && detached_) delete this;
}

void LoanPool::Detach() {
  detached_ = true;
  if (live_.load(std::memory_order_acquire) == 0) delete this;
}

}  // namespace payload

BatchLoan::BatchLoan(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BatchLoan::BatchLoan(BatchLoan&&) noexcept = default;
BatchLoan& BatchLoan::operator=(BatchLoan&&) noexcept = default;
BatchLoan::~BatchLoan() = default;
arrow::MemoryPool* BatchLoan::pool() const { return impl_->pool; }
int64_t BatchLoan::bytes_free() const { return impl_->pool->free_bytes(); }

}  // namespace quiver
