// SubscriberOptions::from_oldest: a subscriber that joins late starts with the samples the
// channel still keeps for others, then goes on live without a gap or a duplicate.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "channel/layout.h"
#include "quiver/channel.h"
#include "shm/membarrier.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::CheckPattern;
using testing::Child;
using testing::FillPattern;
using testing::PatternSize;
using testing::Signal;
using testing::UniqueName;

constexpr size_t kMaxSampleBytes = 4096;
constexpr SubscriberOptions kFromOldest{.from_oldest = true};

Status PublishPattern(Publisher& publisher, uint64_t seq) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, publisher.Loan(PatternSize(seq, kMaxSampleBytes)));
  FillPattern(sample.data(), seq);
  return publisher.Publish(std::move(sample));
}

// Receives one sample and checks it is `seq`, whole.
void ExpectNext(Subscriber& subscriber, uint64_t seq) {
  auto sample = subscriber.Receive(seconds(5));
  ASSERT_TRUE(sample.ok()) << "expected " << seq << ": " << sample.status().ToString();
  EXPECT_EQ(sample->sequence(), seq);
  EXPECT_EQ(sample->size(), PatternSize(seq, kMaxSampleBytes));
  EXPECT_TRUE(CheckPattern(sample->data(), seq)) << seq;
}

void ExpectNothingQueued(Subscriber& subscriber) {
  auto none = subscriber.TryReceive();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value()) << "got sequence " << (*none)->sequence();
}

// The channel's header, mapped on its own (to play a publisher stuck in a publish).
struct HeaderView {
  explicit HeaderView(const Channel& channel)
      : bytes(mmap(nullptr, channel::kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, channel.fd(),
                   0)) {}
  ~HeaderView() {
    if (bytes != MAP_FAILED) munmap(bytes, channel::kPageSize);
  }
  channel::ChannelHeader* operator->() const { return static_cast<channel::ChannelHeader*>(bytes); }
  void* bytes;
};

// Makes membarrier(2) fail with EPERM in this process from now on, as a seccomp policy
// (a container's, say) that does not allow it would.
bool RefuseMembarrier() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{.len = std::size(filter), .filter = filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

TEST(FromOldestTest, StartsWithTheRunOthersStillHoldThenGoesOnLive) {
  auto channel = Channel::Create(UniqueName("oldest-run"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  for (uint64_t seq = 0; seq < 5; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  // `early` holds 0, has released 1, and still queues 2, 3 and 4.
  auto held = early->Receive(seconds(1));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(early->Receive(seconds(1)).ok());

  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  auto latest = channel->CreateSubscriber();
  ASSERT_TRUE(latest.ok());
  for (uint64_t seq = 5; seq < 7; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());

  // 1 is gone, so 0 cannot be handed out without a gap: the backlog is 2, 3, 4.
  for (uint64_t seq = 2; seq < 7; ++seq) ExpectNext(*late, seq);
  ExpectNothingQueued(*late);
  // The default subscriber sees only what was published after it joined.
  for (uint64_t seq = 5; seq < 7; ++seq) ExpectNext(*latest, seq);
  ExpectNothingQueued(*latest);
  // `early` is untouched: it still gets everything it had queued.
  for (uint64_t seq = 2; seq < 7; ++seq) ExpectNext(*early, seq);

  const ChannelStats stats = channel->Stats();
  ASSERT_EQ(stats.subscribers.size(), 3u);
  for (const SubscriberStats& s : stats.subscribers) {
    if (s.slot == late->slot()) {
      EXPECT_EQ(s.received, 5u);
    }
  }
}

TEST(FromOldestTest, WithNothingHeldStartsWithTheNextSample) {
  auto channel = Channel::Create(UniqueName("oldest-none"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  {
    auto before = channel->CreateSubscriber(kFromOldest);
    ASSERT_TRUE(before.ok()) << "no publisher yet: " << before.status().ToString();
    ExpectNothingQueued(*before);
  }
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  for (uint64_t seq = 0; seq < 3; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_TRUE(late.ok());
  ExpectNothingQueued(*late);
  ASSERT_TRUE(PublishPattern(*publisher, 3).ok());
  ExpectNext(*late, 3);
}

TEST(FromOldestTest, BacklogOfAClosedPublisherDrainsThenPeerGone) {
  auto channel = Channel::Create(UniqueName("oldest-closed"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  {
    auto publisher = channel->CreatePublisher();
    ASSERT_TRUE(publisher.ok());
    for (uint64_t seq = 0; seq < 4; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  }
  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_TRUE(late.ok());
  for (uint64_t seq = 0; seq < 4; ++seq) ExpectNext(*late, seq);
  auto end = late->Receive(seconds(1));
  EXPECT_EQ(end.status().code(), ErrorCode::kPeerGone) << end.status().ToString();
}

TEST(FromOldestTest, UndeliveredBacklogIsGivenBackOnClose) {
  // Four descriptors: while anyone keeps one, the publisher cannot loan it.
  auto channel =
      Channel::Create(UniqueName("oldest-close"), {.capacity = 1 << 20, .max_samples = 4});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(5)});
  ASSERT_TRUE(publisher.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  for (uint64_t seq = 0; seq < 4; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  {
    auto late = channel->CreateSubscriber(kFromOldest);
    ASSERT_TRUE(late.ok());
    ExpectNext(*late, 0);  // and leaves 1, 2, 3 claimed but undelivered
  }
  for (uint64_t seq = 0; seq < 4; ++seq) ExpectNext(*early, seq);
  for (uint64_t seq = 4; seq < 8; ++seq) {
    ASSERT_TRUE(PublishPattern(*publisher, seq).ok()) << seq;
    ExpectNext(*early, seq);
  }
}

TEST(FromOldestTest, KilledJoinerHoldingABacklogDoesNotBlockThePublisher) {
  const std::string name = UniqueName("oldest-kill");
  auto channel = Channel::Create(name, {.capacity = 1 << 20, .max_samples = 8});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(10)});
  ASSERT_TRUE(publisher.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  for (uint64_t seq = 0; seq < 8; ++seq) ASSERT_TRUE(PublishPattern(*publisher, seq).ok());
  Signal claimed;
  Child joiner([&] {
    auto ch = Channel::Open(name);
    if (!ch.ok()) return 10;
    auto late = ch->CreateSubscriber(kFromOldest);
    if (!late.ok()) return 11;
    auto first = late->Receive(seconds(5));
    if (!first.ok() || !CheckPattern(first->data(), first->sequence())) return 12;
    claimed.Notify(first->sequence());
    pause();  // holds sample 0 and the claims on 1..7 until killed
    return 0;
  });
  EXPECT_EQ(claimed.Await(), 0u) << "the whole channel was its backlog";
  joiner.Kill(SIGKILL);
  EXPECT_EQ(joiner.ExitCode(), 128 + SIGKILL);
  for (uint64_t seq = 0; seq < 8; ++seq) ExpectNext(*early, seq);
  // Every descriptor was claimed by the dead joiner: loans succeed only once the publisher
  // has noticed the death and taken its bits back.
  for (uint64_t seq = 8; seq < 40; ++seq) {
    ASSERT_TRUE(PublishPattern(*publisher, seq).ok()) << seq;
    ExpectNext(*early, seq);
  }
  EXPECT_EQ(channel->Stats().reclaimed_subscribers, 1u);
}

TEST(FromOldestTest, APublishThatNeverEndsIsATimeoutWhileItsPublisherLives) {
  auto channel = Channel::Create(UniqueName("oldest-stuck"), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(PublishPattern(*publisher, 0).ok());
  HeaderView header(*channel);
  ASSERT_NE(header.bytes, MAP_FAILED);
  const uint64_t done = header->publish_state.load();
  EXPECT_EQ(done, 2u) << "even, 2 x the next sequence";
  // Where the kernel allows it, Publish leaves the fence to the joiner's membarrier.
  EXPECT_EQ(header->publish_barrier.load(), shm::RegisterForHeavyBarrier() ? 1u : 0u);
  std::printf("publish barrier: %s\n", header->publish_barrier.load() != 0
                                           ? "membarrier (the joiner's)"
                                           : "seq_cst store (the publisher's)");
  header->publish_state.store(done + 1);  // as if stopped inside Publish
  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kTimeout);
  EXPECT_NE(late.status().message().find("did not finish a publish"), std::string::npos)
      << late.status().ToString();
  header->publish_state.store(done);
  // The refused join gave its slot back; the default join never waits.
  EXPECT_TRUE(channel->CreateSubscriber().ok());
  EXPECT_TRUE(channel->CreateSubscriber(kFromOldest).ok());
}

TEST(FromOldestTest, APublisherKilledInsideAPublishDoesNotHoldUpTheJoin) {
  const std::string name = UniqueName("oldest-deadpub");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  Signal stuck;
  Child dying([&] {
    auto ch = Channel::Open(name);
    if (!ch.ok()) return 10;
    auto publisher = ch->CreatePublisher();
    if (!publisher.ok()) return 11;
    for (uint64_t seq = 0; seq < 3; ++seq) {
      if (!PublishPattern(*publisher, seq).ok()) return 12;
    }
    HeaderView header(*ch);
    header->publish_state.fetch_add(1);  // dies "inside" the publish of sequence 3
    stuck.Notify();
    pause();
    return 0;
  });
  stuck.Await();
  dying.Kill(SIGKILL);
  EXPECT_EQ(dying.ExitCode(), 128 + SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(900));
  for (uint64_t seq = 0; seq < 3; ++seq) ExpectNext(*late, seq);
  auto end = late->Receive(seconds(1));
  EXPECT_EQ(end.status().code(), ErrorCode::kPeerGone) << end.status().ToString();
}

TEST(FromOldestTest, AJoinerThatCannotRunTheBarrierThePublisherReliesOnIsAClearError) {
  const std::string name = UniqueName("oldest-nobarrier");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  HeaderView header(*channel);
  if (header->publish_barrier.load() == 0) {
    GTEST_SKIP() << "membarrier(2) is not available here: publishers fence themselves";
  }
  Child joiner([&] {
    if (!RefuseMembarrier()) return 10;
    auto ch = Channel::Open(name);
    if (!ch.ok()) return 11;
    auto late = ch->CreateSubscriber(kFromOldest);
    if (late.ok() || late.status().code() != ErrorCode::kIoError ||
        late.status().message().find("from_oldest needs what the publisher of channel") ==
            std::string::npos) {
      std::fprintf(stderr, "join: %s\n", late.status().ToString().c_str());
      return 12;
    }
    return ch->CreateSubscriber().ok() ? 0 : 13;  // a default join needs no barrier
  });
  EXPECT_EQ(joiner.ExitCode(), 0);
}

TEST(FromOldestTest, APublisherWithoutMembarrierFencesItselfAndJoinsStillWork) {
  const std::string name = UniqueName("oldest-fenced");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto early = channel->CreateSubscriber();
  ASSERT_TRUE(early.ok());
  Signal published, go_on;
  Child producer([&] {
    if (!RefuseMembarrier()) return 10;
    auto ch = Channel::Open(name);
    if (!ch.ok()) return 11;
    auto publisher = ch->CreatePublisher();
    if (!publisher.ok()) return 12;
    for (uint64_t seq = 0; seq < 3; ++seq) {
      if (!PublishPattern(*publisher, seq).ok()) return 13;
    }
    published.Notify();
    go_on.Await();
    for (uint64_t seq = 3; seq < 6; ++seq) {
      if (!PublishPattern(*publisher, seq).ok()) return 14;
    }
    return 0;
  });
  published.Await();
  HeaderView header(*channel);
  EXPECT_EQ(header->publish_barrier.load(), 0u) << "the publisher could not register";
  auto late = channel->CreateSubscriber(kFromOldest);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  go_on.Notify();
  for (uint64_t seq = 0; seq < 6; ++seq) ExpectNext(*late, seq);
  EXPECT_EQ(producer.ExitCode(), 0);
}

// Joins again and again while a publisher runs flat out and a steady subscriber keeps a
// few samples held: every joiner must see consecutive (under block) or increasing sequences
// with intact bytes, and joins must find a backlog.
void JoinUnderLoad(OverflowPolicy overflow) {
  constexpr uint64_t kJoins = 1500;
  auto channel = Channel::Create(
      UniqueName(overflow == OverflowPolicy::kBlock ? "oldest-load" : "oldest-drop"),
      {.capacity = 256 << 10, .max_samples = 64, .overflow = overflow});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(20)});
  ASSERT_TRUE(publisher.ok());
  auto steady = channel->CreateSubscriber();
  ASSERT_TRUE(steady.ok());

  std::atomic<bool> stop{false};
  std::thread steady_reader([&] {
    std::deque<Sample> window;  // the last three received stay held
    for (;;) {
      auto sample = steady->Receive(seconds(20));
      if (!sample.ok()) {
        if (sample.status().code() != ErrorCode::kPeerGone) {
          ADD_FAILURE() << "steady: " << sample.status().ToString();
        }
        return;
      }
      window.push_back(std::move(*sample));
      if (window.size() > 3) window.pop_front();
    }
  });
  std::thread producer([&] {
    for (uint64_t seq = 0; !stop; ++seq) {
      Status st = PublishPattern(*publisher, seq);
      if (!st.ok()) {
        ADD_FAILURE() << seq << ": " << st.ToString();
        break;
      }
    }
  });

  uint64_t joins = 0, with_backlog = 0, received = 0;
  while (joins < kJoins && !::testing::Test::HasFailure()) {
    const uint64_t published = channel->Stats().published;
    auto late = channel->CreateSubscriber(kFromOldest);
    if (!late.ok()) {
      // Slots of joiners that left await the publisher's reclaim.
      ASSERT_EQ(late.status().code(), ErrorCode::kBusy) << late.status().ToString();
      std::this_thread::yield();
      continue;
    }
    ++joins;
    std::optional<uint64_t> last;
    for (int i = 0; i < 20; ++i) {
      auto sample = late->Receive(seconds(5));
      ASSERT_TRUE(sample.ok()) << sample.status().ToString();
      const uint64_t seq = sample->sequence();
      if (!last) {
        if (seq < published) ++with_backlog;
      } else if (overflow == OverflowPolicy::kBlock) {
        ASSERT_EQ(seq, *last + 1) << "join " << joins;
      } else {
        ASSERT_GT(seq, *last) << "join " << joins;
      }
      ASSERT_EQ(sample->size(), PatternSize(seq, kMaxSampleBytes)) << seq;
      ASSERT_TRUE(CheckPattern(sample->data(), seq)) << seq;
      last = seq;
      ++received;
    }
  }
  stop = true;
  producer.join();
  { Publisher closed = std::move(*publisher); }  // the steady reader sees PEER_GONE
  steady_reader.join();
  std::printf("%llu joins, %llu started with a backlog, %llu samples received\n",
              static_cast<unsigned long long>(joins), static_cast<unsigned long long>(with_backlog),
              static_cast<unsigned long long>(received));
  EXPECT_EQ(joins, kJoins);
  EXPECT_GT(with_backlog, 0u);
}

// Two slots: one steady reader, and joiners that leave at once, so nearly every join takes
// over the slot the last joiner closed (ClaimGoneSlot) while the publisher, a thread of the
// same process, reclaims closed slots. The byte lock cannot tell the two threads apart: the
// publisher once adopted a slot a joiner was taking over and freed the joiner's samples
// under it (torn bytes, caught by JoinersUnderLoad about once in twenty runs).
TEST(FromOldestTest, AJoinerTakingOverAClosedSlotIsNeverReclaimedUnderIt) {
  auto channel = Channel::Create(UniqueName("oldest-takeover"),
                                 {.capacity = 64 << 10, .max_samples = 16, .max_subscribers = 2});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(20)});
  ASSERT_TRUE(publisher.ok());
  auto steady = channel->CreateSubscriber();
  ASSERT_TRUE(steady.ok());
  std::atomic<bool> stop{false};
  std::thread steady_reader([&] {
    for (;;) {
      auto sample = steady->Receive(seconds(20));
      if (!sample.ok()) return;
    }
  });
  std::thread producer([&] {
    for (uint64_t seq = 0; !stop; ++seq) {
      if (!PublishPattern(*publisher, seq).ok()) break;
    }
  });
  uint64_t joins = 0;
  while (joins < 3000 && !::testing::Test::HasFailure()) {
    auto late = channel->CreateSubscriber(kFromOldest);
    if (!late.ok()) {
      ASSERT_EQ(late.status().code(), ErrorCode::kBusy) << late.status().ToString();
      continue;
    }
    ++joins;
    for (int i = 0; i < 3; ++i) {
      auto sample = late->Receive(seconds(5));
      ASSERT_TRUE(sample.ok()) << sample.status().ToString();
      ASSERT_TRUE(CheckPattern(sample->data(), sample->sequence())) << sample->sequence();
    }
  }
  stop = true;
  producer.join();
  { Publisher closed = std::move(*publisher); }
  steady_reader.join();
  EXPECT_EQ(joins, 3000u);
}

TEST(FromOldestTest, JoinersUnderLoadSeeConsecutiveIntactSamples) {
  JoinUnderLoad(OverflowPolicy::kBlock);
}

TEST(FromOldestTest, JoinersUnderDropOldestSeeIncreasingIntactSamples) {
  JoinUnderLoad(OverflowPolicy::kDropOldest);
}

}  // namespace
}  // namespace quiver
