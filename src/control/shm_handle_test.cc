#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>

#include "quiver/channel.h"
#include "quiver/envelope.h"

namespace quiver::control {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(CheckDataRangeTest, AcceptsExactlyTheRangesInside) {
  struct Case {
    uint64_t offset, size, bound;
    bool ok;
  };
  const Case cases[] = {
      {0, 1, 1, true},        {0, 4096, 4096, true},     {4095, 1, 4096, true},
      {4096, 1, 4096, false}, {0, 4097, 4096, false},    {1, 4096, 4096, false},
      {0, 0, 4096, false},    {kMax, 1, 4096, false},    {kMax, kMax, kMax, false},
      {1, kMax, kMax, false}, {kMax - 1, 1, kMax, true}, {kMax / 2 + 1, kMax / 2 + 1, kMax, false},
      {0, 1, 0, false},       {5, 10, 14, false},        {4, 10, 14, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.offset) + "+" + std::to_string(c.size) + " in " +
                 std::to_string(c.bound));
    const Status st = CheckDataRange(c.offset, c.size, c.bound);
    EXPECT_EQ(st.ok(), c.ok) << st.ToString();
    if (!c.ok) {
      EXPECT_EQ(st.code(), ErrorCode::kHandleOutOfRange);
    }
  }
}

}  // namespace
}  // namespace quiver::control
