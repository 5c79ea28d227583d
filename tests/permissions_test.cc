// Who may touch a channel: only its user, only through files it made itself, and a
// subscriber only reads. (0600 segments and planted symlinks: src/shm/segment_test.cc.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "other_user.h"
#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using testing::Have;
using testing::OtherUser;
using testing::Shell;
using testing::UniqueName;

TEST(PermissionsTest, AnotherUserCannotOpenOrMapAChannel) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a second user (useradd); not root";
  for (const char* tool : {"useradd", "userdel", "setpriv"}) {
    if (!Have(tool)) GTEST_SKIP() << tool << " is not installed";
  }
  const std::string name = UniqueName("perm-other-user");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  OtherUser other;
  ASSERT_TRUE(other.created()) << "useradd failed: " << other.output();

  const std::string path = shm::Segment::PathOf(name);
  const std::string peer = std::string(QUIVER_TEST_PEER_DIR) + "/permissions_peer_main";
  int status = 0;
  const std::string out = Shell("setpriv --reuid=" + other.name() + " --regid=" + other.name() +
                                    " --clear-groups " + peer + " " + path + " " + name,
                                &status);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "another user reached the channel:\n" << out;
  EXPECT_NE(out.find("open(O_RDONLY): Permission denied"), std::string::npos) << out;
  EXPECT_NE(out.find("open(O_RDWR): Permission denied"), std::string::npos) << out;
  EXPECT_NE(out.find("Channel::Open: NOT_FOUND"), std::string::npos) << out;

  // The same peer as this user reaches it: the refusal above is the permission, not the peer.
  const std::string own = Shell(peer + " " + path + " " + name, &status);
  EXPECT_NE(own.find("open(O_RDWR) succeeded; mmap succeeded"), std::string::npos) << own;
}

constexpr int kWriteFaulted = 77;

TEST(PermissionsTest, SubscriberWritingIntoTheSampleGetsSigsegv) {
  const std::string name = UniqueName("perm-readonly");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  testing::Signal ready;

  testing::Child child([&] {
    // The subscriber role maps the data area PROT_READ: a write faults. Our own handler
    // (not a sanitizer's) turns the fault into a distinct exit code.
    struct sigaction action {};
    action.sa_handler = [](int) { _exit(kWriteFaulted); };
    sigaction(SIGSEGV, &action, nullptr);
    auto opened = Channel::Open(name);
    if (!opened.ok()) return 1;
    auto subscriber = opened->CreateSubscriber();
    if (!subscriber.ok()) return 2;
    ready.Notify();
    auto sample = subscriber->Receive(std::chrono::seconds(10));
    if (!sample.ok()) return 3;
    auto* bytes = const_cast<volatile std::byte*>(sample->data().data());
    bytes[0] = std::byte{0x66};  // must fault
    return 0;
  });
  ready.Await();
  const std::string text = "the publisher's data";
  ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(text))).ok());
  const int status = child.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kWriteFaulted) << "the write did not fault";

  // And the bytes are the publisher's still.
  auto subscriber = channel->CreateSubscriber();
  ASSERT_TRUE(subscriber.ok());
  ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(text))).ok());
  auto sample = subscriber->Receive(std::chrono::seconds(1));
  ASSERT_TRUE(sample.ok());
  EXPECT_EQ(std::memcmp(sample->data().data(), text.data(), text.size()), 0);
}

}  // namespace
}  // namespace quiver
