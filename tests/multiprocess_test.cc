// The channel's promises across real processes: no loss under block, no torn sample under
// drop-oldest, and kill -9 of a subscriber or of the publisher hurting nobody else.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using testing::CheckPattern;
using testing::Child;
using testing::FillPattern;
using testing::PatternSize;
using testing::SegmentFileExists;
using testing::Signal;
using testing::UniqueName;

constexpr size_t kMaxSampleBytes = 8192;

// Receives `count` samples and checks each one's sequence, size and every byte.
// Returns 0, or a code naming the first failure.
int ReceiveAndVerify(Subscriber& subscriber, uint64_t count) {
  for (uint64_t seq = 0; seq < count; ++seq) {
    auto sample = subscriber.Receive(seconds(20));
    if (!sample.ok()) {
      std::fprintf(stderr, "receive %llu: %s\n", static_cast<unsigned long long>(seq),
                   sample.status().ToString().c_str());
      return 2;
    }
    if (sample->sequence() != seq) return 3;
    if (sample->size() != PatternSize(seq, kMaxSampleBytes)) return 4;
    if (!CheckPattern(sample->data(), seq)) return 5;
  }
  return 0;
}

Status PublishPattern(Publisher& publisher, uint64_t seq) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, publisher.Loan(PatternSize(seq, kMaxSampleBytes)));
  FillPattern(sample.data(), seq);
  return publisher.Publish(std::move(sample));
}

TEST(MultiProcessTest, OnePublisherThreeSubscriberProcessesPass100kSamplesWithoutLoss) {
  constexpr uint64_t kSamples = 100'000;
  const std::string name = UniqueName("mp-noloss");
  {
    // Small enough that the publisher must wait for the slowest subscriber again and again.
    auto channel = Channel::Create(name, {.capacity = 256 << 10, .max_samples = 64});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    Signal ready;
    std::vector<std::unique_ptr<Child>> subscribers;
    subscribers.reserve(3);
    for (int i = 0; i < 3; ++i) {
      subscribers.push_back(std::make_unique<Child>([&] {
        auto ch = Channel::Open(name);
        if (!ch.ok()) return 10;
        auto subscriber = ch->CreateSubscriber();
        if (!subscriber.ok()) return 11;
        ready.Notify();
        return ReceiveAndVerify(*subscriber, kSamples);
      }));
    }
    for (int i = 0; i < 3; ++i) ready.Await();
    auto publisher = channel->CreatePublisher();
    ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
    ASSERT_EQ(publisher->subscriber_count(), 3u);
    for (uint64_t seq = 0; seq < kSamples; ++seq) {
      Status st = PublishPattern(*publisher, seq);
      ASSERT_TRUE(st.ok()) << seq << ": " << st.ToString();
    }
    for (auto& child : subscribers) EXPECT_EQ(child->ExitCode(), 0);
    ChannelStats stats = channel->Stats();
    EXPECT_EQ(stats.published, kSamples);
    EXPECT_EQ(stats.dropped, 0u);
    EXPECT_GT(stats.publisher_stalls, 0u) << "the test should exercise backpressure";
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(MultiProcessTest, DropOldestNeverHandsASubscriberASampleBeingRewritten) {
  constexpr uint64_t kSamples = 20'000;
  const std::string name = UniqueName("mp-dropold");
  {
    auto channel = Channel::Create(
        name, {.capacity = 64 << 10, .max_samples = 32, .overflow = OverflowPolicy::kDropOldest});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    Signal ready, report;
    Child subscriber_process([&] {
      auto ch = Channel::Open(name);
      if (!ch.ok()) return 10;
      auto subscriber = ch->CreateSubscriber();
      if (!subscriber.ok()) return 11;
      ready.Notify();
      uint64_t received = 0;
      uint64_t last = 0;
      for (;;) {
        auto sample = subscriber->Receive(seconds(20));
        if (!sample.ok()) {
          if (sample.status().code() == ErrorCode::kPeerGone) break;
          return 2;
        }
        if (received > 0 && sample->sequence() <= last) return 3;  // order kept
        last = sample->sequence();
        ++received;
        if (sample->size() != PatternSize(last, kMaxSampleBytes)) return 4;
        if (!CheckPattern(sample->data(), last)) return 5;
        // Hold it a while the publisher keeps recycling memory, then look again: a
        // recycled sample would have changed under us.
        if (received % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (!CheckPattern(sample->data(), last)) return 6;
      }
      report.Notify(received);
      report.Notify(subscriber->missed());
      return 0;
    });
    ready.Await();
    {
      auto publisher = channel->CreatePublisher({.loan_timeout = seconds(20)});
      ASSERT_TRUE(publisher.ok());
      for (uint64_t seq = 0; seq < kSamples; ++seq) {
        Status st = PublishPattern(*publisher, seq);
        ASSERT_TRUE(st.ok()) << seq << ": " << st.ToString();
      }
    }  // closing the publisher ends the subscriber's loop with kPeerGone
    const uint64_t received = report.Await();
    const uint64_t missed = report.Await();
    EXPECT_EQ(subscriber_process.ExitCode(), 0);
    EXPECT_EQ(received + missed, kSamples) << "every sample was received or counted as missed";
    EXPECT_GT(missed, 0u) << "a slow subscriber should have missed some";
    EXPECT_EQ(channel->Stats().dropped, missed);
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(MultiProcessTest, SubscriberKilledWhileHoldingSamplesDoesNotBlockPublisher) {
  const std::string name = UniqueName("mp-subkill");
  constexpr uint64_t kBefore = 8, kAfter = 2000;
  {
    auto channel = Channel::Create(name, {.capacity = 64 << 10, .max_samples = 32});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    Signal ready, holding;
    Child victim([&] {
      auto ch = Channel::Open(name);
      if (!ch.ok()) return 10;
      auto subscriber = ch->CreateSubscriber();
      if (!subscriber.ok()) return 11;
      ready.Notify();
      auto a = subscriber->Receive(seconds(20));
      auto b = subscriber->Receive(seconds(20));
      if (!a.ok() || !b.ok()) return 12;
      holding.Notify();
      pause();  // hold both samples (and leave the rest queued) until killed
      return 0;
    });
    Child survivor([&] {
      auto ch = Channel::Open(name);
      if (!ch.ok()) return 10;
      auto subscriber = ch->CreateSubscriber();
      if (!subscriber.ok()) return 11;
      ready.Notify();
      return ReceiveAndVerify(*subscriber, kBefore + kAfter);
    });
    ready.Await();
    ready.Await();
    auto publisher = channel->CreatePublisher({.loan_timeout = seconds(20)});
    ASSERT_TRUE(publisher.ok());
    for (uint64_t seq = 0; seq < kBefore; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
    holding.Await();
    victim.Kill(SIGKILL);
    EXPECT_EQ(victim.ExitCode(), 128 + SIGKILL);

    // The victim's queue fills the channel; the publisher must notice it died and go on.
    Clock::duration longest_loan{};
    for (uint64_t seq = kBefore; seq < kBefore + kAfter; ++seq) {
      const auto start = Clock::now();
      Status st = PublishPattern(*publisher, seq);
      longest_loan = std::max(longest_loan, Clock::now() - start);
      ASSERT_TRUE(st.ok()) << seq << ": " << st.ToString();
    }
    EXPECT_EQ(survivor.ExitCode(), 0);
    ChannelStats stats = channel->Stats();
    EXPECT_EQ(stats.reclaimed_subscribers, 1u);
    EXPECT_EQ(stats.dropped, 0u);
    // The promise is "within 100 ms of the publisher needing the space"; a loan also waits
    // for the survivor, so allow a wide margin for sanitizers and a loaded 2-core machine.
    EXPECT_LT(std::chrono::duration_cast<milliseconds>(longest_loan).count(), 1000);
    std::printf("longest loan after the kill: %.1f ms\n",
                std::chrono::duration<double, std::milli>(longest_loan).count());
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(MultiProcessTest, PublisherKilledMidLoanExposesNothingAndSubscribersSeePeerGone) {
  const std::string name = UniqueName("mp-pubkill");
  constexpr uint64_t kComplete = 100;
  {
    auto channel = Channel::Create(name, {.capacity = 1 << 20});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    auto subscriber = channel->CreateSubscriber({.spin = std::chrono::nanoseconds(0)});
    ASSERT_TRUE(subscriber.ok());
    Signal mid_loan;
    Child publisher_process([&] {
      auto ch = Channel::Open(name);
      if (!ch.ok()) return 10;
      auto publisher = ch->CreatePublisher();
      if (!publisher.ok()) return 11;
      for (uint64_t seq = 0; seq < kComplete; ++seq) {
        if (!PublishPattern(*publisher, seq).ok()) return 12;
      }
      auto loan = publisher->Loan(4096);
      if (!loan.ok()) return 13;
      std::memset(loan->data().data(), 0xAB, 2048);  // half written
      mid_loan.Notify();
      pause();
      return 0;
    });
    mid_loan.Await();
    publisher_process.Kill(SIGKILL);
    EXPECT_EQ(publisher_process.ExitCode(), 128 + SIGKILL);
    const auto killed_at = Clock::now();

    EXPECT_EQ(ReceiveAndVerify(*subscriber, kComplete), 0);
    auto after = subscriber->Receive(seconds(5));
    ASSERT_FALSE(after.ok()) << "the half-written loan must never be delivered";
    EXPECT_EQ(after.status().code(), ErrorCode::kPeerGone) << after.status().ToString();
    const double noticed_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count();
    std::printf("subscriber learned the publisher was gone after %.1f ms\n", noticed_ms);
    EXPECT_LT(noticed_ms, 1000);
    EXPECT_FALSE(channel->Stats().publisher_alive);
    // A dead publisher may have been anywhere in a publish: the channel takes no successor.
    EXPECT_EQ(channel->CreatePublisher().status().code(), ErrorCode::kPeerGone);
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(MultiProcessTest, SecondPublisherInAnotherProcessIsRefused) {
  const std::string name = UniqueName("mp-twopub");
  auto channel = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  Child other([&] {
    auto ch = Channel::Open(name);
    if (!ch.ok()) return 10;
    auto second = ch->CreatePublisher();
    if (second.ok()) return 1;
    return second.status().code() == ErrorCode::kBusy ? 0 : 2;
  });
  EXPECT_EQ(other.ExitCode(), 0);
}

TEST(MultiProcessTest, BlockedReceiverUsesNoCpu) {
  const std::string name = UniqueName("mp-idle");
  auto channel = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  Child receiver([&] {
    auto ch = Channel::Open(name);
    auto subscriber = ch->CreateSubscriber();
    auto sample = subscriber->Receive(milliseconds(1000));
    return sample.status().code() == ErrorCode::kTimeout ? 0 : 1;
  });
  rusage usage{};
  int status = receiver.Wait(&usage);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const double cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
                        (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
  std::printf("CPU time of a receiver blocked for 1 s: %.2f ms\n", cpu_ms);
  // Set-up (mapping the segment) costs a little; a spinning receiver would burn ~1000 ms.
  EXPECT_LT(cpu_ms, 100.0);
}

TEST(MultiProcessTest, MemfdChannelReachesAnExecedChildThroughAnInheritedFd) {
  const std::string name = UniqueName("mp-memfd");
  auto channel = Channel::Create(name, {.capacity = 1 << 20, .backing = Backing::kMemfd});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  EXPECT_FALSE(SegmentFileExists(name));
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());

  int to_parent[2];
  ASSERT_EQ(pipe(to_parent), 0);
  const int inherited = dup(channel->fd());  // dup() clears FD_CLOEXEC
  constexpr uint64_t kCount = 500;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(to_parent[1], STDOUT_FILENO);
    const std::string peer = std::string(QUIVER_TEST_PEER_DIR) + "/channel_peer_main";
    const std::string fd_arg = std::to_string(inherited);
    const std::string count_arg = std::to_string(kCount);
    execl(peer.c_str(), peer.c_str(), fd_arg.c_str(), count_arg.c_str(), nullptr);
    _exit(127);
  }
  close(inherited);
  close(to_parent[1]);
  FILE* out = fdopen(to_parent[0], "r");
  char line[128] = {};
  ASSERT_NE(fgets(line, sizeof(line), out), nullptr);
  EXPECT_STREQ(line, "ready\n");
  for (uint64_t seq = 0; seq < kCount; ++seq) {
    ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  }
  ASSERT_NE(fgets(line, sizeof(line), out), nullptr);
  EXPECT_STREQ(line, "verified 500\n");
  fclose(out);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace quiver
