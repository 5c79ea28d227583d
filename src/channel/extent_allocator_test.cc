#include "channel/extent_allocator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace quiver::channel {
namespace {

TEST(ExtentAllocatorTest, WholeCapacityFitsOnceAndComesBack) {
  ExtentAllocator a(4096, 8);
  EXPECT_EQ(a.Allocate(4096), 0u);
  EXPECT_EQ(a.Allocate(64), std::nullopt);
  a.Free(0, 4096);
  EXPECT_EQ(a.free_bytes(), 4096u);
  EXPECT_EQ(a.largest_free(), 4096u);
}

TEST(ExtentAllocatorTest, OutOfOrderFreesCoalesce) {
  ExtentAllocator a(4096, 8);
  auto x = a.Allocate(1024), y = a.Allocate(1024), z = a.Allocate(1024);
  ASSERT_TRUE(x && y && z);
  a.Free(*y, 1024);  // a hole in the middle, while x (the oldest) is still held
  auto w = a.Allocate(2048);
  EXPECT_FALSE(w) << "1024 at the end and 1024 in the middle are not contiguous";
  EXPECT_EQ(a.Allocate(1024), 3072u);
  EXPECT_EQ(a.Allocate(1024), *y) << "the hole behind a held extent is reused";
  a.Free(*x, 1024);
  a.Free(*y, 1024);
  a.Free(*z, 1024);
  a.Free(3072, 1024);
  EXPECT_EQ(a.largest_free(), 4096u);
}

TEST(ExtentAllocatorTest, MarkUsedSplitsAFreeExtent) {
  ExtentAllocator a(4096, 8);
  EXPECT_TRUE(a.MarkUsed(1024, 512));
  EXPECT_FALSE(a.MarkUsed(1280, 64)) << "already used";
  EXPECT_EQ(a.free_bytes(), 4096u - 512);
  EXPECT_EQ(a.largest_free(), 4096u - 1536);
  a.Free(1024, 512);
  EXPECT_EQ(a.largest_free(), 4096u);
}

TEST(ExtentAllocatorTest, RandomWorkloadNeverOverlapsAndAccountsEveryByte) {
  constexpr uint64_t kCapacity = 1 << 20;
  ExtentAllocator a(kCapacity, 64);
  std::map<uint64_t, uint64_t> live;  // offset -> size
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    if (live.size() < 64 && (live.empty() || rng() % 2 == 0)) {
      const uint64_t size = 64 * (1 + rng() % 512);
      if (auto off = a.Allocate(size)) {
        auto next = live.lower_bound(*off);
        ASSERT_TRUE(next == live.end() || *off + size <= next->first);
        if (next != live.begin()) {
          auto prev = std::prev(next);
          ASSERT_LE(prev->first + prev->second, *off);
        }
        ASSERT_LE(*off + size, kCapacity);
        live[*off] = size;
      }
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      a.Free(it->first, it->second);
      live.erase(it);
    }
    uint64_t used = 0;
    for (auto& [o, s] : live) used += s;
    ASSERT_EQ(a.free_bytes() + used, kCapacity);
  }
}

}  // namespace
}  // namespace quiver::channel
