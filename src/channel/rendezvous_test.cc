// Rendezvous: Open with a wait, OpenOrCreate from two sides, WaitForSubscribers.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using testing::UniqueName;

TEST(RendezvousTest, OpenWaitsForTheChannelToBeCreated) {
  const std::string name = UniqueName("rdv-open");
  std::optional<Channel> created;
  std::thread creator([&] {
    std::this_thread::sleep_for(milliseconds(50));
    created.emplace(*Channel::Create(name, {.capacity = 4096}));
  });
  Result<Channel> opened = Channel::Open(name, milliseconds(5000));
  creator.join();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->name(), name);
}

TEST(RendezvousTest, OpenThatWaitsInVainIsATimeoutNamingTheChannel) {
  const std::string name = UniqueName("rdv-none");
  const auto start = std::chrono::steady_clock::now();
  Result<Channel> opened = Channel::Open(name, milliseconds(30));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(30));
  ASSERT_EQ(opened.status().code(), ErrorCode::kTimeout);
  EXPECT_NE(opened.status().message().find(name), std::string::npos);
  // Errors other than "not there yet" are not waited on.
  EXPECT_EQ(Channel::Open("../bad", milliseconds(1000)).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(RendezvousTest, OpenOrCreateCreatesOnceAndOpensAfterwards) {
  const std::string name = UniqueName("rdv-ooc");
  Result<Channel> first = Channel::OpenOrCreate(name, {.capacity = 8192});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Options are not compared: the second gets the first's channel.
  Result<Channel> second = Channel::OpenOrCreate(name, {.capacity = 4096});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->capacity(), 8192u);
  EXPECT_EQ(second->generation(), first->generation());
}

TEST(RendezvousTest, OpenOrCreateRacingThreadsAllGetOneChannel) {
  for (int round = 0; round < 20; ++round) {
    const std::string name = UniqueName("rdv-race");
    std::vector<std::optional<Channel>> got(4);
    std::vector<std::thread> threads;
    for (auto& slot : got) {
      threads.emplace_back([&slot, &name] {
        Result<Channel> c = Channel::OpenOrCreate(name, {.capacity = 4096});
        if (c.ok()) slot.emplace(*std::move(c));
      });
    }
    for (auto& t : threads) t.join();
    for (auto& slot : got) {
      ASSERT_TRUE(slot.has_value());
      EXPECT_EQ(slot->generation(), got[0]->generation());
    }
  }
}

TEST(RendezvousTest, OpenOrCreateRefusesAChannelOfAnotherType) {
  const std::string name = UniqueName("rdv-type");
  auto typed = Channel::OpenOrCreate(name, {.capacity = 4096, .type_descriptor = "schema-a"});
  ASSERT_TRUE(typed.ok()) << typed.status().ToString();
  EXPECT_TRUE(Channel::OpenOrCreate(name, {.type_descriptor = "schema-a"}).ok());
  EXPECT_TRUE(Channel::OpenOrCreate(name).ok());  // no type asked for: any channel
  Result<Channel> other = Channel::OpenOrCreate(name, {.type_descriptor = "schema-b"});
  ASSERT_EQ(other.status().code(), ErrorCode::kSchemaMismatch);
  EXPECT_NE(other.status().message().find("another schema"), std::string::npos);

  const std::string untyped = UniqueName("rdv-untyped");
  auto plain = Channel::Create(untyped, {.capacity = 4096});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Channel::OpenOrCreate(untyped, {.type_descriptor = "schema-a"}).status().code(),
            ErrorCode::kSchemaMismatch);
}

TEST(RendezvousTest, WaitForSubscribersReturnsOnceEnoughAttached) {
  const std::string name = UniqueName("rdv-subs");
  auto channel = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  EXPECT_TRUE(publisher->WaitForSubscribers(0, milliseconds(0)).ok());
  std::vector<Subscriber> subscribers;
  std::thread joiner([&] {
    for (int i = 0; i < 2; ++i) {
      std::this_thread::sleep_for(milliseconds(20));
      subscribers.push_back(*channel->CreateSubscriber());
    }
  });
  Status st = publisher->WaitForSubscribers(2, milliseconds(5000));
  joiner.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(publisher->subscriber_count(), 2u);
}

TEST(RendezvousTest, WaitForSubscribersTimesOutSayingHowManyCame) {
  const std::string name = UniqueName("rdv-few");
  auto channel = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(publisher.ok() && subscriber.ok());
  Status st = publisher->WaitForSubscribers(3, milliseconds(20));
  ASSERT_EQ(st.code(), ErrorCode::kTimeout);
  EXPECT_NE(st.message().find("1 of 3 subscribers"), std::string::npos) << st.ToString();
}

TEST(RendezvousTest, APipelineTellsAPublisherHowManySubscribersToExpect) {
  const std::string name = UniqueName("rdv-expect");
  auto channel = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  ::unsetenv(kPipelineSubscribersEnv);
  EXPECT_EQ(publisher->expected_subscribers(), 1u);  // outside a pipeline
  ::setenv(kPipelineSubscribersEnv, ("other=5," + name + "=3").c_str(), 1);
  EXPECT_EQ(publisher->expected_subscribers(), 3u);
  ::setenv(kPipelineSubscribersEnv, "other=5", 1);
  EXPECT_EQ(publisher->expected_subscribers(), 1u);  // not one of its channels
  ::setenv(kPipelineSubscribersEnv, ("broken," + name + "=3").c_str(), 1);
  EXPECT_EQ(publisher->expected_subscribers(), 1u);  // unreadable: as if not in a pipeline
  ::setenv(kPipelineSubscribersEnv, (name + "=many").c_str(), 1);
  EXPECT_EQ(publisher->expected_subscribers(), 1u);
  ::unsetenv(kPipelineSubscribersEnv);
}

}  // namespace
}  // namespace quiver
