#include "shm/stream_copy.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quiver::shm {
namespace {

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + 7);
  return v;
}

// Every byte lands, none outside: unaligned heads, partial lines and tails, whether the copy
// streams (a total from the threshold up) or not.
TEST(StreamCopyTest, CopiesEveryByteAndNothingElseStreamedOrNot) {
  const size_t big = StreamThreshold();
  EXPECT_GE(big, size_t{1} << 20);
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{4095}, big - 1,
                   big, big + 100}) {
    for (size_t shift : {size_t{0}, size_t{1}, size_t{17}, size_t{63}}) {
      for (size_t total : {n, big}) {
        SCOPED_TRACE("n " + std::to_string(n) + " shift " + std::to_string(shift) + " total " +
                     std::to_string(total));
        const std::vector<uint8_t> src = Pattern(n + shift);
        std::vector<uint8_t> dst(n + 2 * 64 + shift, 0xEE);
        CopyToShared(dst.data() + 64 + shift, src.data() + shift, n, total);
        for (size_t i = 0; i < 64 + shift; ++i) ASSERT_EQ(dst[i], 0xEE) << "before, at " << i;
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(dst[64 + shift + i], src[shift + i]) << i;
        for (size_t i = 64 + shift + n; i < dst.size(); ++i) ASSERT_EQ(dst[i], 0xEE) << i;
      }
    }
  }
}

}  // namespace
}  // namespace quiver::shm
