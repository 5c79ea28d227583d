#include "common/byte_size.h"

#include <gtest/gtest.h>

namespace quiver {
namespace {

TEST(ByteSizeTest, ParsesIntegersWithBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("1KiB"), 1024u);
  EXPECT_EQ(*ParseByteSize("256MiB"), 256ull << 20);
  EXPECT_EQ(*ParseByteSize("2 GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("3MB"), 3000000u);
  EXPECT_EQ(*ParseByteSize("1TiB"), 1ull << 40);
  for (const char* bad :
       {"", "MiB", "-1", "1.5MiB", "12 parsecs", "99999999999999999999", "20000000000TiB"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace quiver
