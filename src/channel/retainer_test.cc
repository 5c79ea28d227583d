// Retainer: a late subscriber with from_oldest gets the channel's last samples even though
// nobody else held them; the history never holds the publisher back.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using testing::UniqueName;

Status PublishNumber(Publisher& publisher, uint64_t n) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, publisher.Loan(sizeof(n)));
  std::memcpy(sample.data().data(), &n, sizeof(n));
  return publisher.Publish(std::move(sample));
}

uint64_t NumberOf(const Sample& sample) {
  uint64_t n = 0;
  std::memcpy(&n, sample.data().data(), sizeof(n));
  return n;
}

void AwaitHeld(const Retainer& retainer, size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (retainer.held() != count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(retainer.held(), count);
}

TEST(RetainerTest, ALateJoinerFromTheOldestGetsTheLastSamplesThenTheLiveOnes) {
  auto channel = Channel::Create(UniqueName("retain"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto retainer = Retainer::Start(*channel, {.samples = 3});
  ASSERT_TRUE(retainer.ok()) << retainer.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  for (uint64_t n = 0; n < 10; ++n) ASSERT_TRUE(PublishNumber(*publisher, n).ok());
  AwaitHeld(**retainer, 3);

  auto late = channel->CreateSubscriber({.from_oldest = true});
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  ASSERT_TRUE(PublishNumber(*publisher, 10).ok());
  for (uint64_t want = 7; want <= 10; ++want) {
    auto got = late->Receive(milliseconds(1000));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(NumberOf(*got), want);
  }
  // Without the retainer, nobody held them: a late joiner gets only what comes next.
  retainer->reset();
  auto later = channel->CreateSubscriber({.from_oldest = true});
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->TryReceive()->has_value(), false);
}

TEST(RetainerTest, SamplesOlderThanTheAgeAreLetGo) {
  auto channel = Channel::Create(UniqueName("retain-age"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto retainer = Retainer::Start(*channel, {.max_age = milliseconds(500)});
  ASSERT_TRUE(retainer.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  for (uint64_t n = 0; n < 5; ++n) ASSERT_TRUE(PublishNumber(*publisher, n).ok());
  AwaitHeld(**retainer, 5);
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ((*retainer)->held(), 0u);
}

TEST(RetainerTest, TheHistoryNeverHoldsAFullBlockChannelsPublisherBack) {
  // 8 samples in flight: a history of 100 would fill the channel, so it keeps 4 at most.
  auto channel =
      Channel::Create(UniqueName("retain-full"), {.capacity = 1 << 20, .max_samples = 8});
  ASSERT_TRUE(channel.ok());
  auto retainer = Retainer::Start(*channel, {.samples = 100});
  ASSERT_TRUE(retainer.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = milliseconds(2000)});
  ASSERT_TRUE(publisher.ok());
  for (uint64_t n = 0; n < 200; ++n) {
    ASSERT_TRUE(PublishNumber(*publisher, n).ok()) << "blocked at sample " << n;
  }
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_LE((*retainer)->held(), 4u);
}

TEST(RetainerTest, NeedsALimit) {
  auto channel = Channel::Create(UniqueName("retain-none"), {.capacity = 1 << 16});
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(Retainer::Start(*channel, {}).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver
