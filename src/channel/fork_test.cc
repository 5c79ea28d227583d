// A child of fork() inherits its parent's channel handles: using one is a clear error, and
// dropping one leaves the parent's publisher, subscriber slot, held samples and name alone.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;
using testing::SegmentFileExists;
using testing::UniqueName;

Status PublishByte(Publisher& publisher, uint8_t value) {
  auto loan = publisher.Loan(1);
  if (!loan.ok()) return loan.status();
  loan->data()[0] = std::byte{value};
  return publisher.Publish(*std::move(loan));
}

// What the child checks, one exit bit each (0: all as expected).
int ChildChecks(std::optional<Channel>& channel, std::optional<Publisher>& publisher,
                std::optional<Subscriber>& subscriber, std::optional<Sample>& held,
                const std::string& name) {
  int failures = 0;
  Result<LoanedSample> loan = publisher->Loan(1);
  if (loan.status().code() != ErrorCode::kInvalidArgument ||
      loan.status().message().find("forked") == std::string::npos) {
    failures |= 1;
  }
  if (subscriber->Receive(milliseconds(10)).status().code() != ErrorCode::kInvalidArgument) {
    failures |= 2;
  }
  if (channel->CreateSubscriber().status().code() != ErrorCode::kInvalidArgument) failures |= 4;
  // The held sample's bytes are still readable (the mapping is inherited); dropping it, and
  // every other inherited handle, must not touch the parent's shared state.
  if (held->data()[0] != std::byte{7}) failures |= 8;
  held.reset();
  subscriber.reset();
  publisher.reset();
  channel.reset();
  // The child's own attachment works.
  Result<Channel> mine = Channel::Open(name);
  if (!mine.ok() || !mine->CreateSubscriber().ok()) failures |= 16;
  return failures;
}

TEST(ForkTest, AChildCannotUseItsParentsHandlesAndDroppingThemLeavesTheParentAlone) {
  const std::string name = UniqueName("fork");
  std::optional<Channel> channel(*Channel::Create(name, {.capacity = 4096}));
  std::optional<Publisher> publisher(*channel->CreatePublisher());
  std::optional<Subscriber> subscriber(*channel->CreateSubscriber());
  ASSERT_TRUE(PublishByte(*publisher, 7).ok());
  std::optional<Sample> held(*subscriber->Receive(milliseconds(1000)));
  const uint64_t received_before = channel->Stats().subscribers.at(0).received;

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(ChildChecks(channel, publisher, subscriber, held, name));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child check bits failed: " << WEXITSTATUS(status)
                                    << " (1 loan, 2 receive, 4 new subscriber, 8 held bytes, "
                                       "16 own attachment)";

  // The parent's publisher is alive, its subscriber keeps its slot and its held sample, and
  // the name is still there.
  EXPECT_TRUE(SegmentFileExists(name));
  EXPECT_EQ(held->data()[0], std::byte{7});
  ASSERT_TRUE(PublishByte(*publisher, 8).ok());
  Result<Sample> next = subscriber->Receive(milliseconds(1000));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->data()[0], std::byte{8});
  const ChannelStats stats = channel->Stats();
  EXPECT_EQ(stats.subscribers.size(), 1u);
  EXPECT_EQ(stats.subscribers.at(0).received, received_before + 1);
  EXPECT_EQ(stats.subscribers.at(0).held, 2u);
}

}  // namespace
}  // namespace quiver
