#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>

#include "control/handle.h"
#include "quiver/channel.h"

namespace quiver::control {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

std::string UniqueName(const char* stem) {
  return std::string("ctl-") + stem + "-" + NewMsgId().substr(0, 8);
}

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

class ResolveHandleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName("resolve");
    auto channel = Channel::Create(name_, {.capacity = 64 << 10, .max_samples = 8});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    channel_.emplace(std::move(channel).value());
  }

  std::string name_;
  std::optional<Channel> channel_;
};

TEST_F(ResolveHandleTest, MapsExactlyThePublishedBytes) {
  auto subscriber = channel_->CreateSubscriber();
  auto publisher = channel_->CreatePublisher();
  ASSERT_TRUE(subscriber.ok() && publisher.ok());
  std::string first(100, 'a');
  std::string second = "the second sample, which starts at a 64-byte boundary";
  ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(first))).ok());
  ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(second))).ok());
  auto s1 = subscriber->Receive(std::chrono::seconds(1));
  auto s2 = subscriber->Receive(std::chrono::seconds(1));
  ASSERT_TRUE(s1.ok() && s2.ok());
  // The first loan starts the data area; the second's offset is the distance between them.
  const uint64_t offset2 = static_cast<uint64_t>(s2->data().data() - s1->data().data());

  auto view = ResolveHandle({name_, offset2, second.size(), ShmFormat::kRaw});
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(
      std::string_view(reinterpret_cast<const char*>(view->bytes().data()), view->bytes().size()),
      second);
  auto whole = ResolveHandle({name_, 0, channel_->capacity(), ShmFormat::kRaw});
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(std::memcmp(whole->bytes().data(), first.data(), first.size()), 0);
}

TEST_F(ResolveHandleTest, RangeOutsideTheDataAreaIsOutOfRange) {
  const uint64_t cap = channel_->capacity();
  const ShmHandle bad[] = {
      {name_, 0, cap + 1, ShmFormat::kRaw},
      {name_, cap, 1, ShmFormat::kRaw},
      {name_, cap - 10, 11, ShmFormat::kRaw},
      {name_, kMax, 1, ShmFormat::kRaw},
      {name_, uint64_t{1} << 63, uint64_t{1} << 63, ShmFormat::kRaw},
  };
  for (const ShmHandle& h : bad) {
    auto view = ResolveHandle(h);
    ASSERT_FALSE(view.ok());
    EXPECT_EQ(view.status().code(), ErrorCode::kHandleOutOfRange) << view.status().ToString();
    ASSERT_NE(view.status().cause(), nullptr);
  }
}

TEST_F(ResolveHandleTest, UnknownSegmentIsNotFound) {
  auto view = ResolveHandle({UniqueName("absent"), 0, 1, ShmFormat::kRaw});
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), ErrorCode::kNotFound) << view.status().ToString();
  auto bad_name = ResolveHandle({"../etc/passwd", 0, 1, ShmFormat::kRaw});
  EXPECT_FALSE(bad_name.ok());
}

}  // namespace
}  // namespace quiver::control
