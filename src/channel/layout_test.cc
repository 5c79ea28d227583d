#include "channel/layout.h"

#include <gtest/gtest.h>

#include <cstring>

namespace quiver::channel {
namespace {

ChannelConfig ValidConfig(Layout* out = nullptr) {
  auto layout = ComputeLayout(1 << 20, 64, 16, 4096);
  EXPECT_TRUE(layout.ok());
  ChannelConfig h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kMagic;
  h.layout_version = kLayoutVersion;
  h.segment_bytes = layout->segment_bytes;
  h.descs_offset = layout->descs_offset;
  h.slots_offset = layout->slots_offset;
  h.rings_offset = layout->rings_offset;
  h.registry_offset = layout->registry_offset;
  h.registry_bytes = layout->registry_bytes;
  h.data_offset = layout->data_offset;
  h.data_capacity = layout->data_capacity;
  h.max_samples = 64;
  h.max_subscribers = 16;
  if (out != nullptr) *out = *layout;
  return h;
}

TEST(LayoutTest, RegionsAreOrderedAlignedAndFitTheSegment) {
  auto l = ComputeLayout(1000, 64, 16, 0);
  ASSERT_TRUE(l.ok());
  EXPECT_LT(l->descs_offset, l->slots_offset);
  EXPECT_LT(l->slots_offset, l->rings_offset);
  EXPECT_LT(l->rings_offset, l->registry_offset);
  EXPECT_LT(l->registry_offset, l->data_offset);
  EXPECT_EQ(l->data_offset % kPageSize, 0u);
  EXPECT_EQ(l->data_capacity, 1024u);
  EXPECT_GE(l->segment_bytes, l->data_offset + l->data_capacity);
}

TEST(LayoutTest, ValidHeaderPasses) {
  Layout l;
  ChannelConfig h = ValidConfig(&l);
  EXPECT_TRUE(ValidateConfig(h, l.segment_bytes).ok());
}

TEST(LayoutTest, EveryCorruptedFieldIsShmCorruption) {
  Layout l;
  const ChannelConfig good = ValidConfig(&l);
  auto expect_corrupt = [&](auto mutate, const char* what) {
    ChannelConfig h = good;
    mutate(h);
    Status st = ValidateConfig(h, l.segment_bytes);
    EXPECT_EQ(st.code(), ErrorCode::kShmCorruption) << what << ": " << st.ToString();
  };
  expect_corrupt([](ChannelConfig& h) { h.magic ^= 1; }, "magic");
  expect_corrupt([](ChannelConfig& h) { h.layout_version = 99; }, "version");
  expect_corrupt([](ChannelConfig& h) { h.overflow_policy = 7; }, "policy");
  expect_corrupt([](ChannelConfig& h) { h.data_offset += 4096; }, "data offset");
  expect_corrupt([](ChannelConfig& h) { h.data_capacity = uint64_t{1} << 50; }, "capacity");
  expect_corrupt([](ChannelConfig& h) { h.max_samples = 0; }, "max_samples");
  expect_corrupt([](ChannelConfig& h) { h.max_subscribers = 65; }, "max_subscribers");
  expect_corrupt([](ChannelConfig& h) { h.rings_offset = 1; }, "rings offset");
  expect_corrupt([](ChannelConfig& h) { h.registry_bytes = uint64_t{1} << 40; }, "registry");
  expect_corrupt([](ChannelConfig& h) { h.descs_offset = ~uint64_t{0}; }, "descs offset");
  // A header that is self-consistent but claims more bytes than the segment really has.
  ChannelConfig h = good;
  EXPECT_EQ(ValidateConfig(h, l.segment_bytes - 4096).code(), ErrorCode::kShmCorruption);
  EXPECT_EQ(ValidateConfig(h, 10).code(), ErrorCode::kShmCorruption);
}

TEST(LayoutTest, ARingEntryIsSeenOnlyAtItsOwnPosition) {
  // A zeroed ring (a new channel) holds nothing at any position.
  for (uint64_t p : {uint64_t{0}, uint64_t{1}, uint64_t{4095}}) EXPECT_FALSE(RingEntryIsAt(0, p));
  const uint32_t n = 64;  // max_samples: entries of the last lap sit n positions behind
  for (uint64_t p : {uint64_t{0}, uint64_t{63}, uint64_t{64}, uint64_t{0xffffffff},
                     uint64_t{0x100000000}, ~uint64_t{0} - 1}) {
    const uint64_t entry = RingEntry(p, 7);
    EXPECT_TRUE(RingEntryIsAt(entry, p)) << p;
    EXPECT_EQ(RingIndex(entry), 7u);
    EXPECT_FALSE(RingEntryIsAt(entry, p + n)) << "a later lap must not see it: " << p;
    EXPECT_FALSE(RingEntryIsAt(entry, p + 1)) << p;
    if (p >= n) EXPECT_FALSE(RingEntryIsAt(RingEntry(p - n, 7), p)) << p;
  }
}

}  // namespace
}  // namespace quiver::channel
