// ExtentAllocator: hands out byte ranges of a channel's data area and takes them back in
// any order. Owned by the publisher alone (process-local, thread-compatible); never touches
// shared memory and never allocates from the heap after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace quiver::channel {

class ExtentAllocator {
 public:
  /// Manages [0, capacity), all free. At most `max_extents` allocations are ever live.
  ExtentAllocator(uint64_t capacity, uint32_t max_extents);

  /// Returns the offset of `size` free bytes, or nullopt if no free extent is that large.
  /// Next-fit: the search starts where the previous allocation ended, so a FIFO workload
  /// walks the area like a ring buffer.
  std::optional<uint64_t> Allocate(uint64_t size);
  /// Gives back [offset, offset + size), which must have come from Allocate (or MarkUsed).
  void Free(uint64_t offset, uint64_t size);
  /// Marks [offset, offset + size) used; false if any of it is not free.
  bool MarkUsed(uint64_t offset, uint64_t size);

  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t largest_free() const;

 private:
  struct Extent {
    uint64_t offset;
    uint64_t size;
  };
  std::vector<Extent> free_;  // sorted by offset, never two adjacent
  size_t cursor_ = 0;         // index in free_ where the next search starts
  uint64_t free_bytes_ = 0;
};

}  // namespace quiver::channel
