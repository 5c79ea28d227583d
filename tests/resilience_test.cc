// A peer that misbehaves, stalls or dies at the worst moment never wedges a channel: shared
// fields scribbled by another process, subscribers killed inside join or close, slots left
// behind while the publisher is idle.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "channel/layout.h"
#include "quiver/channel.h"
#include "shm/ofd_lock.h"
#include "shm/segment.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Child;
using testing::UniqueName;

// The control area of a channel (header, descriptors, slots, rings) mapped read-write, as
// any attached process could.
class ControlView {
 public:
  explicit ControlView(const Channel& channel) {
    channel::ChannelConfig config{};
    std::memcpy(&config, Map(channel, channel::kPageSize), sizeof(config));
    munmap(bytes_, size_);
    config_ = config;
    Map(channel, config.data_offset);
  }
  ~ControlView() { munmap(bytes_, size_); }
  channel::ChannelHeader& header() { return *reinterpret_cast<channel::ChannelHeader*>(bytes_); }
  channel::SampleDesc& desc(uint32_t i) {
    return reinterpret_cast<channel::SampleDesc*>(bytes_ + config_.descs_offset)[i];
  }
  channel::SubscriberSlot& slot(uint32_t i) {
    return reinterpret_cast<channel::SubscriberSlot*>(bytes_ + config_.slots_offset)[i];
  }
  std::atomic<uint64_t>& ring(uint32_t slot, uint32_t entry) {
    return reinterpret_cast<std::atomic<uint64_t>*>(
        bytes_ + config_.rings_offset)[size_t{slot} * config_.max_samples + entry];
  }
  const channel::ChannelConfig& config() const { return config_; }

 private:
  std::byte* Map(const Channel& channel, size_t size) {
    size_ = size;
    bytes_ = static_cast<std::byte*>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, channel.fd(), 0));
    if (bytes_ == MAP_FAILED) std::abort();
    return bytes_;
  }
  std::byte* bytes_ = nullptr;
  size_t size_ = 0;
  channel::ChannelConfig config_{};
};

// One publish of `value` repeated over `size` bytes.
void PublishPattern(Publisher& publisher, uint8_t value, size_t size) {
  auto loan = publisher.Loan(size);
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  std::memset(loan->data().data(), value, size);
  ASSERT_TRUE(publisher.Publish(std::move(*loan)).ok());
}

bool AllBytesAre(const Sample& sample, uint8_t value) {
  for (std::byte b : sample.data()) {
    if (static_cast<uint8_t>(b) != value) return false;
  }
  return true;
}

// Bits of active_mask and closing_mask past the last slot, and descriptor offsets, spans
// and states written by another process while the publisher loans and publishes: the
// publisher never indexes, writes or frees by them. (Before: a bit past max_subscribers
// made Publish push into a ring that does not exist; an offset read back from a descriptor
// made the loan point outside the data mapping.)
TEST(ResilienceTest, ThePublisherNeverUsesAScribbledIndexMaskOrOffset) {
  auto channel = Channel::Create(UniqueName("scribbled"),
                                 {.capacity = 1 << 20, .max_samples = 16, .max_subscribers = 4});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(publisher.ok() && subscriber.ok());
  ControlView view(*channel);  // another process's view, written at the worst moments
  std::mt19937_64 rng(7);
  int refused = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto value = static_cast<uint8_t>(i);
    const size_t size = 1000 + i % 3000;
    view.header().active_mask.fetch_or(~uint64_t{0xF});
    view.header().closing_mask.fetch_or(uint64_t{1} << 63);
    auto loan = publisher->Loan(size);
    ASSERT_TRUE(loan.ok()) << loan.status().ToString();
    // The loan's descriptor, rewritten while the publisher holds it: the offset and span
    // it frees by later, the state it decides by.
    for (uint32_t d = 0; d < 16; ++d) {
      if (view.desc(d).state.load() == static_cast<uint32_t>(channel::DescState::kLoaned)) {
        view.desc(d).offset.store((rng() | (uint64_t{1} << 40)) & ~uint64_t{63});
        view.desc(d).span.store(rng());
        view.desc(d).state.store(static_cast<uint32_t>(channel::DescState::kPublished));
      }
    }
    std::memset(loan->data().data(), value, size);  // inside the data area, always
    ASSERT_TRUE(publisher->Publish(std::move(*loan)).ok());
    // The subscriber reads the shared (scribbled) offset: it refuses one outside the data
    // area rather than read it.
    auto sample = subscriber->Receive(seconds(5));
    if (!sample.ok()) {
      ASSERT_EQ(sample.status().code(), ErrorCode::kShmCorruption) << sample.status().ToString();
      ++refused;
      continue;
    }
    EXPECT_TRUE(AllBytesAre(*sample, value)) << "sample " << i;
  }
  EXPECT_EQ(refused, 2000) << "every descriptor was scribbled out of range";
  EXPECT_EQ(publisher->subscriber_count(), 1u + 60u)
      << "the scribbled bits are there, and were never used";
  // Everything was given back at the right place: the whole capacity can be loaned.
  auto whole = publisher->Loan(1 << 20);
  EXPECT_TRUE(whole.ok()) << whole.status().ToString();
}

// A subscriber that died between claiming its slot (lock taken, state Active) and setting
// its bit in active_mask: no one had ever looked at such a slot again.
TEST(ResilienceTest, ASubscriberKilledWhileJoiningLeavesNoSlotBehind) {
  const std::string name = UniqueName("join-window");
  auto channel = Channel::Create(name, {.capacity = 1 << 16, .max_subscribers = 2});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  for (uint32_t slot = 0; slot < 2; ++slot) {
    Child joiner([&] {
      auto mine = Channel::Open(name);
      if (!mine.ok()) return 1;
      // What CreateSubscriber had done when it died: the lock, then Free -> Active.
      if (!shm::TryLockByte(mine->fd(), shm::kFirstSubscriberLockByte + slot,
                            shm::LockKind::kExclusive)
               .ok()) {
        return 2;
      }
      ControlView(*mine).slot(slot).state.store(static_cast<uint32_t>(channel::SlotState::kActive));
      kill(getpid(), SIGKILL);
      return 3;
    });
    ASSERT_EQ(joiner.ExitCode(), 128 + SIGKILL);
  }
  // Both slots look taken, and nobody holds them. A publisher that loans finds them (its
  // liveness probe looks at every slot in use, not only those in active_mask) ...
  std::this_thread::sleep_for(milliseconds(25));
  PublishPattern(*publisher, 1, 100);
  auto first = channel->CreateSubscriber();
  EXPECT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GE(channel->Stats().reclaimed_subscribers, 1u);
}

// A subscriber that died after marking its slot Closing but before it set its closing bit:
// its bit stayed in active_mask, every sample kept it, and a `block` channel filled up for
// good (every loan timed out; `quiver ls` showed no subscriber).
TEST(ResilienceTest, ASubscriberKilledWhileClosingDoesNotFillABlockChannel) {
  const std::string name = UniqueName("close-window");
  auto channel = Channel::Create(name, {.capacity = 64 << 10, .max_samples = 8});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(5)});
  ASSERT_TRUE(publisher.ok());
  testing::Signal joined;
  Child closer([&] {
    auto mine = Channel::Open(name);
    if (!mine.ok()) return 1;
    auto subscriber = mine->CreateSubscriber();
    if (!subscriber.ok()) return 2;
    joined.Notify(subscriber->slot());
    // What ~Subscriber had done when it died: state Closing, and nothing else.
    ControlView(*mine)
        .slot(subscriber->slot())
        .state.store(static_cast<uint32_t>(channel::SlotState::kClosing));
    kill(getpid(), SIGKILL);
    return 3;
  });
  joined.Await();
  ASSERT_EQ(closer.ExitCode(), 128 + SIGKILL);
  auto reader = channel->CreateSubscriber();
  ASSERT_TRUE(reader.ok());
  for (int i = 0; i < 200; ++i) {  // 200 x 16 KiB through 64 KiB: the dead slot must let go
    PublishPattern(*publisher, static_cast<uint8_t>(i), 16 << 10);
    auto sample = reader->Receive(seconds(5));
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    EXPECT_TRUE(AllBytesAre(*sample, static_cast<uint8_t>(i)));
  }
}

// Reconnecting subscribers (a DoGet that comes and goes, say) while the producer is idle:
// nobody reclaimed their slots until the publisher loaned again, so after max_subscribers
// of them every new subscriber was BUSY.
TEST(ResilienceTest, JoinLeaveCyclesWithAnIdlePublisherNeverRunOutOfSlots) {
  const std::string name = UniqueName("idle-cycles");
  auto channel = Channel::Create(name, {.capacity = 1 << 16, .max_subscribers = 4});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  PublishPattern(*publisher, 9, 64);  // then the publisher stays idle
  for (int cycle = 0; cycle < 16; ++cycle) {
    Child subscriber([&] {
      auto mine = Channel::Open(name);
      if (!mine.ok()) return 1;
      auto joined = mine->CreateSubscriber();
      if (!joined.ok()) return 2;
      if (cycle % 2 == 0) kill(getpid(), SIGKILL);  // half die, half close cleanly
      return 0;
    });
    const int code = subscriber.ExitCode();
    ASSERT_TRUE(code == 0 || code == 128 + SIGKILL) << "cycle " << cycle << ": " << code;
  }
  for (int cycle = 0; cycle < 16; ++cycle) {  // and in this process, closing cleanly
    auto joined = channel->CreateSubscriber();
    ASSERT_TRUE(joined.ok()) << "cycle " << cycle << ": " << joined.status().ToString();
  }
  // The slots still work: a subscriber that took over a gone one receives.
  auto reader = channel->CreateSubscriber();
  ASSERT_TRUE(reader.ok());
  PublishPattern(*publisher, 5, 128);
  auto sample = reader->Receive(seconds(5));
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  EXPECT_TRUE(AllBytesAre(*sample, 5));
}

// Waits until process `pid` is stopped (state T in /proc/PID/stat).
bool AwaitStopped(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'T')
      return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return false;
}

// A subscriber stopped with SIGSTOP (a debugger, a hung interpreter) used to stall a `block`
// channel forever. With a stall policy it is evicted after stall_timeout: the publisher
// goes on, the others lose nothing, and the stopped one learns why when it runs again.
TEST(ResilienceTest, AStoppedSubscriberStallsABlockChannelOnlyForTheStallTimeout) {
  const std::string name = UniqueName("stall");
  auto channel = Channel::Create(
      name, {.capacity = 64 << 10, .max_samples = 16, .stall_timeout = milliseconds(200)});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher({.loan_timeout = seconds(10)});
  auto live = channel->CreateSubscriber();
  ASSERT_TRUE(publisher.ok() && live.ok());
  testing::Signal joined, holding;
  Child stuck([&] {
    auto mine = Channel::Open(name);
    if (!mine.ok()) return 1;
    auto subscriber = mine->CreateSubscriber();
    if (!subscriber.ok()) return 2;
    joined.Notify();
    auto first = subscriber->Receive(seconds(5));  // holds the first sample while stopped
    holding.Notify();
    raise(SIGSTOP);
    // Running again: it was evicted, and it says why; the sample it holds is still whole.
    auto next = subscriber->Receive(seconds(1));
    if (next.ok() || next.status().code() != ErrorCode::kEvicted) return 3;
    if (next.status().message().find("stall_timeout 200 ms") == std::string::npos) return 4;
    if (!first.ok() || !AllBytesAre(*first, 0)) return 5;
    return 0;
  });
  joined.Await();
  PublishPattern(*publisher, 0, 8 << 10);
  ASSERT_TRUE(live->Receive(seconds(5)).ok());
  holding.Await();
  ASSERT_TRUE(AwaitStopped(stuck.pid()));
  auto longest = std::chrono::steady_clock::duration::zero();
  for (int i = 1; i <= 100; ++i) {  // 800 KiB through 64 KiB
    const auto start = std::chrono::steady_clock::now();
    PublishPattern(*publisher, static_cast<uint8_t>(i), 8 << 10);
    longest = std::max(longest, std::chrono::steady_clock::now() - start);
    auto sample = live->Receive(seconds(5));
    ASSERT_TRUE(sample.ok()) << "sample " << i << ": " << sample.status().ToString();
    ASSERT_TRUE(AllBytesAre(*sample, static_cast<uint8_t>(i))) << "the live reader lost " << i;
  }
  EXPECT_GE(longest, milliseconds(190)) << "the publisher did wait for the stopped reader";
  EXPECT_LT(longest, seconds(2)) << "but not much past the stall timeout";
  const ChannelStats stats = channel->Stats();
  EXPECT_EQ(stats.evicted_subscribers, 1u);
  ASSERT_EQ(stats.subscribers.size(), 2u);
  EXPECT_GE(std::max(stats.subscribers[0].evicted_after, stats.subscribers[1].evicted_after),
            milliseconds(200));
  kill(stuck.pid(), SIGCONT);
  EXPECT_EQ(stuck.ExitCode(), 0);
}

// Without a stall policy (the default) nothing is ever lost: the stopped reader holds the
// channel, and a loan gives up only at its own timeout.
TEST(ResilienceTest, WithoutAStallPolicyAStoppedSubscriberHoldsABlockChannel) {
  const std::string name = UniqueName("no-stall");
  auto channel = Channel::Create(name, {.capacity = 16 << 10, .max_samples = 16});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher({.loan_timeout = milliseconds(300)});
  ASSERT_TRUE(publisher.ok());
  testing::Signal joined;
  Child stuck([&] {
    auto mine = Channel::Open(name);
    auto subscriber = mine->CreateSubscriber();
    joined.Notify();
    raise(SIGSTOP);
    return 0;
  });
  joined.Await();
  ASSERT_TRUE(AwaitStopped(stuck.pid()));
  Status last;
  for (int i = 0; i < 8 && last.ok(); ++i) {
    auto loan = publisher->Loan(4 << 10);
    last = loan.ok() ? publisher->Publish(std::move(*loan)) : loan.status();
  }
  EXPECT_EQ(last.code(), ErrorCode::kTimeout) << last.ToString();
  EXPECT_NE(last.message().find("within 300 ms"), std::string::npos) << last.message();
  EXPECT_EQ(channel->Stats().evicted_subscribers, 0u);
  kill(stuck.pid(), SIGCONT);
}

// A producer that creates `name`, waits for one subscriber, publishes `count` samples of
// `first`, `first + 1`, ... and then dies (SIGKILL) or closes.
int Produce(const std::string& name, int first, int count, bool die) {
  auto channel = Channel::Create(name, {.capacity = 1 << 16});
  if (!channel.ok()) {
    std::fprintf(stderr, "producer: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  auto publisher = channel->CreatePublisher();
  if (!publisher.ok()) return 2;
  const auto give_up = std::chrono::steady_clock::now() + seconds(10);
  while (publisher->subscriber_count() == 0) {
    if (std::chrono::steady_clock::now() > give_up) return 3;
    std::this_thread::sleep_for(milliseconds(2));
  }
  for (int i = 0; i < count; ++i) PublishPattern(*publisher, static_cast<uint8_t>(first + i), 64);
  if (die) kill(getpid(), SIGKILL);
  return 0;
}

// A producer that crashes and is restarted: `create` used to fail (ALREADY_EXISTS) while
// old subscribers held the name, and those subscribers only learnt that the publisher "is
// gone". Now the restart takes the name and the same subscriber goes on without code.
TEST(ResilienceTest, AProducerRestartedAfterACrashIsFollowedBySubscribers) {
  const std::string name = UniqueName("restart");
  Child first([&] { return Produce(name, 10, 5, /*die=*/true); });
  Result<Channel> channel = Status::NotFound("");
  for (int i = 0; i < 1000 && !channel.ok(); ++i) {
    channel = Channel::Open(name);
    if (!channel.ok()) std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(subscriber.ok());
  for (int i = 0; i < 5; ++i) {
    auto sample = subscriber->Receive(seconds(5));
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    EXPECT_TRUE(AllBytesAre(*sample, static_cast<uint8_t>(10 + i)));
  }
  EXPECT_EQ(first.ExitCode(), 128 + SIGKILL);
  // The death is reported, at once, and says what comes next.
  const auto asked = std::chrono::steady_clock::now();
  auto died = subscriber->Receive(seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, milliseconds(500));
  ASSERT_EQ(died.status().code(), ErrorCode::kPeerGone);
  EXPECT_NE(died.status().message().find("wait for a publisher restarted"), std::string::npos)
      << died.status().message();
  EXPECT_TRUE(subscriber->awaiting_restart());
  EXPECT_TRUE(channel->publisher_died());

  // The restarted producer creates the channel again: the name is its now.
  Child second([&] { return Produce(name, 20, 5, /*die=*/false); });
  for (int i = 0; i < 5; ++i) {
    auto sample = subscriber->Receive(seconds(10));
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    EXPECT_TRUE(AllBytesAre(*sample, static_cast<uint8_t>(20 + i)));
    EXPECT_EQ(sample->sequence(), static_cast<uint64_t>(i)) << "a new channel";
  }
  EXPECT_EQ(subscriber->restarts_followed(), 1u);
  EXPECT_EQ(second.ExitCode(), 0);
  auto closed = subscriber->Receive(seconds(5));
  ASSERT_EQ(closed.status().code(), ErrorCode::kPeerGone);
  EXPECT_NE(closed.status().message().find("closed"), std::string::npos);
}

TEST(ResilienceTest, WithoutFollowRestartsADeathEndsTheSubscriber) {
  const std::string name = UniqueName("no-follow");
  Child first([&] { return Produce(name, 1, 1, /*die=*/true); });
  Result<Channel> channel = Status::NotFound("");
  for (int i = 0; i < 1000 && !channel.ok(); ++i) {
    channel = Channel::Open(name);
    if (!channel.ok()) std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_TRUE(channel.ok());
  auto subscriber = channel->CreateSubscriber({.follow_restarts = false});
  ASSERT_TRUE(subscriber.ok());
  ASSERT_TRUE(subscriber->Receive(seconds(5)).ok());
  EXPECT_EQ(first.ExitCode(), 128 + SIGKILL);
  for (int i = 0; i < 2; ++i) {
    auto died = subscriber->Receive(seconds(1));
    EXPECT_EQ(died.status().code(), ErrorCode::kPeerGone);
  }
  EXPECT_FALSE(subscriber->awaiting_restart());
}

}  // namespace
}  // namespace quiver
