#include "quiver/channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "shm/ofd_lock.h"
#include "shm/segment.h"
#include "test_support.h"

namespace quiver {
namespace {

using testing::SegmentFileExists;
using testing::UniqueName;

using std::chrono::milliseconds;

void Fill(std::span<std::byte> bytes, uint8_t seed) {
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(static_cast<uint8_t>(seed + i));
}

bool Matches(std::span<const std::byte> bytes, uint8_t seed) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte(static_cast<uint8_t>(seed + i))) return false;
  }
  return true;
}

TEST(ChannelTest, LoanPublishReceiveRoundTrip) {
  const std::string name = UniqueName("roundtrip");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(subscriber.ok()) << subscriber.status().ToString();

  auto loan = publisher->Loan(1000);
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(loan->data().data()) % 64, 0u);
  Fill(loan->data(), 7);
  ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());

  auto sample = subscriber->Receive(milliseconds(100));
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  EXPECT_EQ(sample->size(), 1000u);
  EXPECT_EQ(sample->sequence(), 0u);
  EXPECT_EQ(sample->offset() % 64, 0u);
  EXPECT_LT(sample->offset(), channel->capacity());
  EXPECT_TRUE(Matches(sample->data(), 7));
  ChannelStats stats = channel->Stats();
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.published_bytes, 1000u);
  ASSERT_EQ(stats.subscribers.size(), 1u);
  EXPECT_EQ(stats.subscribers[0].received, 1u);
  EXPECT_TRUE(stats.publisher_alive);
}

TEST(ChannelTest, LoanLargerThanCapacityIsAClearError) {
  auto channel = Channel::Create(UniqueName("overcap"), {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  auto loan = publisher->Loan(4097);
  ASSERT_FALSE(loan.ok());
  EXPECT_EQ(loan.status().code(), ErrorCode::kCapacityExceeded);
  EXPECT_NE(loan.status().message().find("exceeds the capacity"), std::string::npos);
  EXPECT_TRUE(publisher->Loan(4096).ok()) << "a loan of exactly the capacity fits";
  auto zero = publisher->Loan(0);
  EXPECT_EQ(zero.status().code(), ErrorCode::kInvalidArgument);
}

TEST(ChannelTest, ReceiveTimeoutIsAClearError) {
  auto channel = Channel::Create(UniqueName("timeout"), {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(subscriber.ok());
  auto sample = subscriber->Receive(milliseconds(20));
  ASSERT_FALSE(sample.ok());
  EXPECT_EQ(sample.status().code(), ErrorCode::kTimeout);
  auto none = subscriber->TryReceive();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(ChannelTest, OpeningAMissingChannelIsNotFound) {
  auto channel = Channel::Open(UniqueName("missing"));
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(channel.status().message().find("does not exist"), std::string::npos);
}

TEST(ChannelTest, BadNamesAndOptionsAreRefused) {
  EXPECT_EQ(Channel::Create("").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Channel::Create("a/b").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Channel::Create("..").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Channel::Create(UniqueName("opts"), {.max_subscribers = 65}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Channel::Create(UniqueName("opts"), {.capacity = 0}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      Channel::Create(UniqueName("opts"), {.stall_timeout = kMaxStallTimeout * 2}).status().code(),
      ErrorCode::kInvalidArgument);
}

TEST(ChannelTest, StallTimeoutsInSecondsAreOneRule) {
  EXPECT_EQ(*StallTimeoutFromSeconds(1.5), std::chrono::milliseconds(1500));
  EXPECT_EQ(*StallTimeoutFromSeconds(0.0001), std::chrono::milliseconds(1)) << "at least 1 ms";
  EXPECT_EQ(*StallTimeoutFromSeconds(86400), kMaxStallTimeout);
  for (double bad : {0.0, -1.0, 86400.5, std::nan("")}) {
    const auto refused = StallTimeoutFromSeconds(bad);
    EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.status().message().find("more than 0 and at most 86400 s"),
              std::string::npos);
  }
}

TEST(ChannelTest, SecondPublisherIsRefused) {
  const std::string name = UniqueName("twopub");
  auto first = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(first.ok());
  auto publisher = first->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  EXPECT_EQ(first->CreatePublisher().status().code(), ErrorCode::kBusy);
  auto second = Channel::Open(name);  // another attachment, as another process would have
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  auto refused = second->CreatePublisher();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kBusy);
  EXPECT_NE(refused.status().message().find("already has a publisher"), std::string::npos);
}

TEST(ChannelTest, CreatingALiveChannelTwiceIsAlreadyExists) {
  const std::string name = UniqueName("twice");
  auto first = Channel::Create(name, {.capacity = 4096});
  ASSERT_TRUE(first.ok());
  auto second = Channel::Create(name, {.capacity = 4096});
  EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyExists);
}

TEST(ChannelTest, AllSubscriberSlotsTakenIsBusy) {
  auto channel = Channel::Create(UniqueName("slots"), {.capacity = 4096, .max_subscribers = 16});
  ASSERT_TRUE(channel.ok());
  std::vector<Subscriber> subscribers;
  for (int i = 0; i < 16; ++i) {
    auto s = channel->CreateSubscriber();
    ASSERT_TRUE(s.ok()) << i << ": " << s.status().ToString();
    subscribers.push_back(std::move(*s));
  }
  auto extra = channel->CreateSubscriber();
  EXPECT_EQ(extra.status().code(), ErrorCode::kBusy);
}

TEST(ChannelTest, EverySubscriberReadsTheSameBytes) {
  auto channel = Channel::Create(UniqueName("fanout"), {.capacity = 1 << 16});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  std::vector<Subscriber> subscribers;
  subscribers.reserve(4);
  for (int i = 0; i < 4; ++i) subscribers.push_back(std::move(*channel->CreateSubscriber()));
  EXPECT_EQ(publisher->subscriber_count(), 4u);
  auto loan = publisher->Loan(256);
  Fill(loan->data(), 3);
  ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
  std::vector<Sample> samples;
  samples.reserve(subscribers.size());
  for (auto& s : subscribers) samples.push_back(std::move(*s.Receive(milliseconds(100))));
  for (auto& s : samples) {
    EXPECT_EQ(s.data().data(), samples[0].data().data()) << "zero copy: one set of bytes";
    EXPECT_TRUE(Matches(s.data(), 3));
  }
}

TEST(ChannelTest, VariableSizeSamplesWrapAroundIntact) {
  auto channel = Channel::Create(UniqueName("wrap"), {.capacity = 64 << 10, .max_samples = 16});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  std::mt19937 rng(42);
  std::uniform_int_distribution<size_t> size(1, 20000);
  for (int i = 0; i < 5000; ++i) {
    const size_t n = size(rng);
    auto loan = publisher->TryLoan(n);
    ASSERT_TRUE(loan.ok()) << i << ": " << loan.status().ToString();
    Fill(loan->data(), static_cast<uint8_t>(i));
    ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
    auto sample = subscriber->TryReceive();
    ASSERT_TRUE(sample.ok() && sample->has_value());
    ASSERT_EQ((*sample)->size(), n);
    ASSERT_EQ((*sample)->sequence(), static_cast<uint64_t>(i));
    ASSERT_TRUE(Matches((*sample)->data(), static_cast<uint8_t>(i))) << i;
  }
  // Every sample was released: the whole capacity is one free extent again.
  EXPECT_TRUE(publisher->TryLoan(64 << 10).ok());
}

TEST(ChannelTest, BlockPolicyKeepsHeldSamplesAndReportsFull) {
  auto channel = Channel::Create(UniqueName("full"), {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  for (int i = 0; i < 4; ++i) {
    auto loan = publisher->Loan(1024);
    ASSERT_TRUE(loan.ok());
    ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
  }
  EXPECT_EQ(publisher->TryLoan(64).status().code(), ErrorCode::kChannelFull);
  {
    auto held = subscriber->Receive(milliseconds(10));  // released at end of scope
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(publisher->TryLoan(64).status().code(), ErrorCode::kChannelFull);
  }
  EXPECT_TRUE(publisher->TryLoan(1024).ok());
}

TEST(ChannelTest, LoanTimesOutUnderBlockWhenNobodyReleases) {
  auto channel = Channel::Create(UniqueName("loantimeout"), {.capacity = 4096});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = milliseconds(30)});
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(4096))).ok());
  auto loan = publisher->Loan(64);
  EXPECT_EQ(loan.status().code(), ErrorCode::kTimeout);
  EXPECT_EQ(channel->Stats().publisher_stalls, 1u);
}

TEST(ChannelTest, OwnUnpublishedLoanThatBlocksSpaceIsAnErrorNotADeadlock) {
  auto channel = Channel::Create(UniqueName("ownloan"), {.capacity = 4096});
  auto publisher = channel->CreatePublisher();
  auto first = publisher->Loan(4096);
  ASSERT_TRUE(first.ok());
  auto second = publisher->Loan(64);
  EXPECT_EQ(second.status().code(), ErrorCode::kChannelFull);
  first = Result<LoanedSample>(Status(ErrorCode::kOk, ""));  // drop the loan unpublished
}

TEST(ChannelTest, DroppedLoanGivesItsSpaceBack) {
  auto channel = Channel::Create(UniqueName("droploan"), {.capacity = 4096});
  auto publisher = channel->CreatePublisher();
  { auto loan = publisher->Loan(4096); }
  EXPECT_EQ(channel->Stats().bytes_in_use, 0u);
  EXPECT_TRUE(publisher->TryLoan(4096).ok());
}

TEST(ChannelTest, DropOldestRecyclesOnlySamplesNoSubscriberHolds) {
  auto channel = Channel::Create(UniqueName("dropold"),
                                 {.capacity = 4096, .overflow = OverflowPolicy::kDropOldest});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  {
    auto loan = publisher->Loan(1024);
    Fill(loan->data(), 200);
    ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
  }
  auto first = subscriber->TryReceive();  // held through the whole test
  ASSERT_TRUE(first.ok() && first->has_value());
  const std::byte* held_at = (*first)->data().data();
  // Fill the rest, then keep publishing: the queued (unreceived) samples get dropped, the
  // held one never does.
  for (int i = 0; i < 20; ++i) {
    auto loan = publisher->TryLoan(1024);
    ASSERT_TRUE(loan.ok()) << i << ": " << loan.status().ToString();
    EXPECT_NE(loan->data().data(), held_at) << "a held sample was handed out again";
    Fill(loan->data(), static_cast<uint8_t>(i));
    ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
  }
  EXPECT_GT(subscriber->missed(), 0u);
  EXPECT_EQ(channel->Stats().dropped, subscriber->missed());
  // What is left is the newest samples, in order.
  uint64_t last = (*first)->sequence();
  uint64_t received = 1;
  for (;;) {
    auto next = subscriber->TryReceive();
    ASSERT_TRUE(next.ok());
    if (!next->has_value()) break;
    EXPECT_GT((*next)->sequence(), last);
    last = (*next)->sequence();
    ++received;
    EXPECT_TRUE(Matches((*next)->data(), static_cast<uint8_t>(last - 1)));
  }
  EXPECT_EQ(last, 20u);
  EXPECT_EQ(subscriber->missed() + received, 21u) << "every sample was received or counted missed";
  EXPECT_TRUE(Matches((*first)->data(), 200)) << "the held sample was never rewritten";
}

TEST(ChannelTest, SubscriberCannotWriteIntoSamples) {
  auto channel = Channel::Create(UniqueName("readonly"), {.capacity = 4096});
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(64))).ok());
  auto sample = subscriber->Receive(milliseconds(100));
  ASSERT_TRUE(sample.ok());
  auto* bytes = const_cast<std::byte*>(sample->data().data());
  EXPECT_DEATH({ bytes[0] = std::byte{1}; }, "");
}

TEST(ChannelTest, NotifyFdBecomesReadableOnPublish) {
  auto channel = Channel::Create(UniqueName("notify"), {.capacity = 4096});
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  auto fd = subscriber->NotifyFd();
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  pollfd p{.fd = *fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "nothing published yet";
  ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(8))).ok());
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  auto sample = subscriber->TryReceive();
  ASSERT_TRUE(sample.ok() && sample->has_value());
  auto none = subscriber->TryReceive();  // drains and re-arms
  ASSERT_TRUE(none.ok() && !none->has_value());
  EXPECT_EQ(poll(&p, 1, 0), 0);
  ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(8))).ok());
  EXPECT_EQ(poll(&p, 1, 1000), 1);
}

TEST(ChannelTest, ClosedPublisherIsPeerGoneAfterTheQueueDrains) {
  auto channel = Channel::Create(UniqueName("closedpub"), {.capacity = 4096});
  auto subscriber = channel->CreateSubscriber();
  {
    auto publisher = channel->CreatePublisher();
    ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(8))).ok());
  }
  EXPECT_TRUE(subscriber->Receive(milliseconds(100)).ok()) << "queued sample still delivered";
  auto gone = subscriber->Receive(milliseconds(100));
  EXPECT_EQ(gone.status().code(), ErrorCode::kPeerGone);
  // A publisher that closed cleanly can be succeeded.
  auto next = channel->CreatePublisher();
  EXPECT_TRUE(next.ok()) << next.status().ToString();
}

TEST(ChannelTest, ClosedSubscriberSlotIsReclaimedAndReused) {
  auto channel = Channel::Create(UniqueName("reuse"), {.capacity = 4096, .max_subscribers = 1});
  auto publisher = channel->CreatePublisher();
  {
    auto subscriber = channel->CreateSubscriber();
    ASSERT_TRUE(subscriber.ok());
    ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(4096))).ok());
  }                                      // closes with a sample still queued
  auto loan = publisher->TryLoan(4096);  // reclaims the closed slot's queue
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  auto again = channel->CreateSubscriber();
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(ChannelTest, LastParticipantRemovesTheNamedSegment) {
  const std::string name = UniqueName("lastout");
  {
    auto channel = Channel::Create(name, {.capacity = 4096});
    ASSERT_TRUE(channel.ok());
    auto other = Channel::Open(name);
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(SegmentFileExists(name));
    channel = Result<Channel>(Status::NotFound(""));
    EXPECT_TRUE(SegmentFileExists(name)) << "still attached through `other`";
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(ChannelTest, StaleSegmentOfADeadOwnerIsRemovedOnOpen) {
  const std::string name = UniqueName("stale");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto channel = Channel::Create(name, {.capacity = 4096});
    kill(getpid(), SIGKILL);  // die holding it, no clean-up
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_TRUE(SegmentFileExists(name)) << "the dead owner left its segment behind";
  auto open = Channel::Open(name);
  EXPECT_EQ(open.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(open.status().message().find("stale"), std::string::npos);
  EXPECT_FALSE(SegmentFileExists(name));
}

TEST(ChannelTest, MemfdChannelLeavesNothingInDevShm) {
  const std::string name = UniqueName("memfd");
  auto channel = Channel::Create(name, {.capacity = 4096, .backing = Backing::kMemfd});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  EXPECT_FALSE(SegmentFileExists(name));
  auto attached = Channel::FromFd(channel->fd());
  ASSERT_TRUE(attached.ok()) << attached.status().ToString();
  auto publisher = channel->CreatePublisher();
  auto subscriber = attached->CreateSubscriber();
  ASSERT_TRUE(publisher->Publish(std::move(*publisher->Loan(8))).ok());
  EXPECT_TRUE(subscriber->Receive(milliseconds(100)).ok());
  EXPECT_EQ(attached->CreatePublisher().status().code(), ErrorCode::kBusy);
}

TEST(ChannelTest, GarbageSegmentOfALiveOwnerIsShmCorruptionNotACrash) {
  const std::string name = UniqueName("garbage");
  const std::string path = shm::Segment::PathOf(name);
  ::mkdir(shm::Segment::Directory().c_str(), 0700);  // as the first CreateNamed would
  UniqueFd fd(open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  // Someone live holds it (so it is not stale), but its bytes are not a channel.
  ASSERT_TRUE(shm::LockByte(fd.get(), shm::kParticipantLockByte, shm::LockKind::kShared).ok());
  std::vector<char> junk(size_t{3} * 4096);
  std::mt19937 rng(1);
  for (char& c : junk) c = static_cast<char>(rng());
  ASSERT_EQ(write(fd.get(), junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  auto channel = Channel::Open(name);
  EXPECT_EQ(channel.status().code(), ErrorCode::kShmCorruption) << channel.status().ToString();

  ASSERT_EQ(ftruncate(fd.get(), 100), 0);  // too small to even hold a header
  channel = Channel::Open(name);
  EXPECT_EQ(channel.status().code(), ErrorCode::kShmCorruption) << channel.status().ToString();
  unlink(path.c_str());
}

TEST(ChannelTest, TypeDescriptorsAreStoredOnceAndVersioned) {
  const std::string name = UniqueName("types");
  auto channel = Channel::Create(name, {.capacity = 4096, .type_descriptor = "schema v1"});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  EXPECT_EQ(channel->type_versions(), 1u);
  auto other = Channel::Open(name);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other->TypeDescriptor(1), "schema v1");
  auto publisher = channel->CreatePublisher();
  EXPECT_EQ(*publisher->RegisterType("schema v1"), 1u) << "same bytes: same version";
  EXPECT_EQ(*publisher->RegisterType("schema v2"), 2u);
  EXPECT_EQ(other->type_versions(), 2u) << "visible to other attachments at once";
  EXPECT_EQ(*other->TypeDescriptor(2), "schema v2");
  EXPECT_EQ(*other->TypeDescriptor(1), "schema v1") << "old versions stay";
  EXPECT_EQ(other->TypeDescriptor(3).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(other->TypeDescriptor(0).status().code(), ErrorCode::kNotFound);
}

TEST(ChannelTest, FullTypeRegistryIsAClearError) {
  auto channel =
      Channel::Create(UniqueName("typesfull"), {.capacity = 4096, .type_registry_bytes = 64});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  EXPECT_TRUE(publisher->RegisterType(std::string(60, 'a')).ok());
  auto full = publisher->RegisterType(std::string(60, 'b'));
  EXPECT_EQ(full.status().code(), ErrorCode::kCapacityExceeded);
  EXPECT_NE(full.status().message().find("type_registry_bytes"), std::string::npos);
  EXPECT_EQ(Channel::Create(UniqueName("typesbig"), {.capacity = 4096,
                                                     .type_registry_bytes = 64,
                                                     .type_descriptor = std::string(100, 'x')})
                .status()
                .code(),
            ErrorCode::kCapacityExceeded);
}

TEST(ChannelTest, AttachUsesTheFdHandedDownBySupervisorThenTheName) {
  const std::string name = UniqueName("attach");
  auto memfd = Channel::Create(name, {.capacity = 4096, .backing = Backing::kMemfd});
  ASSERT_TRUE(memfd.ok());
  const std::string env = "other=99," + name + "=" + std::to_string(memfd->fd());
  setenv("QUIVER_CHANNELS", env.c_str(), 1);
  auto attached = Channel::Attach(name);
  ASSERT_TRUE(attached.ok()) << attached.status().ToString();
  auto publisher = memfd->CreatePublisher();
  EXPECT_EQ(attached->CreatePublisher().status().code(), ErrorCode::kBusy) << "same channel";
  setenv("QUIVER_CHANNELS", "broken", 1);
  EXPECT_EQ(Channel::Attach(name).status().code(), ErrorCode::kInvalidArgument);
  unsetenv("QUIVER_CHANNELS");
  EXPECT_EQ(Channel::Attach(name).status().code(), ErrorCode::kNotFound) << "falls back to Open";
}

// A node of `quiver run` that opens its pipeline channel by name gets it (users write
// Channel.open, not attach), and a name it does not have says which ones it has.
TEST(ChannelTest, OpenInAPipelineNodeFindsItsChannelsAndNamesThemWhenAsked) {
  const std::string name = UniqueName("nodeopen");
  auto memfd = Channel::Create(name, {.capacity = 4096, .backing = Backing::kMemfd});
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(Channel::Open(name).status().code(), ErrorCode::kNotFound) << "not named";
  const std::string env = "frames=99," + name + "=" + std::to_string(memfd->fd());
  setenv("QUIVER_CHANNELS", env.c_str(), 1);
  auto opened = Channel::Open(name);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto publisher = memfd->CreatePublisher();
  EXPECT_EQ(opened->CreatePublisher().status().code(), ErrorCode::kBusy) << "same channel";
  auto other = Channel::Open(UniqueName("absent"));
  EXPECT_EQ(other.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(other.status().message().find("frames, " + name), std::string::npos)
      << other.status().ToString();
  unsetenv("QUIVER_CHANNELS");
}

TEST(ChannelTest, NotEnoughSharedMemoryIsAClearErrorAndLeavesNothing) {
  const std::string name = UniqueName("toobig");
  // Far beyond /dev/shm: the pages are reserved at creation (posix_fallocate), so this
  // fails here with a message, never later with a SIGBUS in the middle of a write.
  auto channel = Channel::Create(name, {.capacity = (size_t{1} << 40) - 4096});
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), ErrorCode::kCapacityExceeded) << channel.status().ToString();
  // It says what to do: a smaller channel, a bigger /dev/shm, or a memfd channel.
  for (const char* advice :
       {"not enough shared memory", "smaller capacity", "--shm-size", "memfd"}) {
    EXPECT_NE(channel.status().message().find(advice), std::string::npos)
        << channel.status().ToString();
  }
  EXPECT_FALSE(SegmentFileExists(name));
}

// The publisher probes its subscribers' liveness locks every 20 ms. Its own process's locks
// never look held "by others", so a subscriber of the publisher's process that joins while a
// probe runs must not be taken for a dead one (its slot reclaimed under it).
TEST(ChannelTest, SubscribersJoiningThePublishersProcessUnderLoadAreNeverReclaimed) {
  auto channel =
      Channel::Create(UniqueName("join-probe"), {.capacity = 1 << 20, .max_samples = 64});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = milliseconds(20)});
  ASSERT_TRUE(publisher.ok());
  std::atomic<bool> stop{false};
  std::thread publish([&] {
    uint64_t n = 0;
    while (!stop.load()) {
      const Status published = publisher->PublishCopy(std::as_bytes(std::span(&n, 1)));
      if (published.ok()) {
        ++n;
      } else if (published.code() != ErrorCode::kTimeout) {
        ADD_FAILURE() << published.ToString();
        return;
      }
    }
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int rounds = 0;
  for (; std::chrono::steady_clock::now() < until; ++rounds) {
    auto joiner = channel->CreateSubscriber();
    ASSERT_TRUE(joiner.ok()) << joiner.status().ToString();
    uint64_t last = 0;
    for (int i = 0; i < 20; ++i) {
      auto next = joiner->Receive(milliseconds(1000));
      ASSERT_TRUE(next.ok()) << "round " << rounds << ": " << next.status().ToString();
      ASSERT_TRUE(i == 0 || next->sequence() == last + 1) << "round " << rounds;
      last = next->sequence();
    }
  }
  stop.store(true);
  publish.join();
  EXPECT_EQ(channel->Stats().reclaimed_subscribers, 0u) << "a live subscriber was reclaimed";
  EXPECT_GT(rounds, 50);
}

}  // namespace
}  // namespace quiver
