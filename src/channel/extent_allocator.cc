#include "channel/extent_allocator.h"

#include <algorithm>

namespace quiver::channel {

ExtentAllocator::ExtentAllocator(uint64_t capacity, uint32_t max_extents) {
  // n live allocations split the area into at most n + 1 free extents.
  free_.reserve(static_cast<size_t>(max_extents) + 2);
  if (capacity > 0) free_.push_back({0, capacity});
  free_bytes_ = capacity;
}

std::optional<uint64_t> ExtentAllocator::Allocate(uint64_t size) {
  const size_t n = free_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (cursor_ + k) % n;
    Extent& e = free_[i];
    if (e.size < size) continue;
    const uint64_t offset = e.offset;
    e.offset += size;
    e.size -= size;
    free_bytes_ -= size;
    if (e.size == 0) {
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
      cursor_ = free_.empty() ? 0 : i % free_.size();
    } else {
      cursor_ = i;
    }
    return offset;
  }
  return std::nullopt;
}

void ExtentAllocator::Free(uint64_t offset, uint64_t size) {
  auto next = std::lower_bound(free_.begin(), free_.end(), offset,
                               [](const Extent& e, uint64_t o) { return e.offset < o; });
  size_t i = static_cast<size_t>(next - free_.begin());
  free_bytes_ += size;
  const bool joins_prev = i > 0 && free_[i - 1].offset + free_[i - 1].size == offset;
  const bool joins_next = i < free_.size() && offset + size == free_[i].offset;
  if (joins_prev && joins_next) {
    free_[i - 1].size += size + free_[i].size;
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
    if (cursor_ >= i && cursor_ > 0) --cursor_;
  } else if (joins_prev) {
    free_[i - 1].size += size;
  } else if (joins_next) {
    free_[i].offset = offset;
    free_[i].size += size;
  } else {
    free_.insert(free_.begin() + static_cast<std::ptrdiff_t>(i), Extent{offset, size});
    if (cursor_ >= i && free_.size() > 1) ++cursor_;
  }
  if (cursor_ >= free_.size()) cursor_ = 0;
}

bool ExtentAllocator::MarkUsed(uint64_t offset, uint64_t size) {
  auto it = std::upper_bound(free_.begin(), free_.end(), offset,
                             [](uint64_t o, const Extent& e) { return o < e.offset; });
  if (it == free_.begin()) return false;
  --it;  // the extent starting at or before offset
  if (offset + size > it->offset + it->size) return false;
  const Extent before{it->offset, offset - it->offset};
  const Extent after{offset + size, it->offset + it->size - (offset + size)};
  const auto i = it - free_.begin();
  free_.erase(it);
  auto pos = free_.begin() + i;
  if (after.size > 0) pos = free_.insert(pos, after);
  if (before.size > 0) free_.insert(pos, before);
  free_bytes_ -= size;
  cursor_ = 0;
  return true;
}

uint64_t ExtentAllocator::largest_free() const {
  uint64_t best = 0;
  for (const Extent& e : free_) best = std::max(best, e.size);
  return best;
}

}  // namespace quiver::channel
