#include "supervisor/output_relay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace quiver::supervisor {
namespace {

// Everything written so far to a pipe's write end, read without blocking.
std::string Drain(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

class OutputRelayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC), 0); }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fds_[2];
};

TEST_F(OutputRelayTest, PrefixesWholeLinesOnlyAndJoinsPieces) {
  OutputRelay relay("node", fds_[1], 0);
  relay.Feed("hel");
  EXPECT_EQ(Drain(fds_[0]), "");
  relay.Feed("lo\nwor");
  EXPECT_EQ(Drain(fds_[0]), "[node] hello\n");
  relay.Feed("ld\r\n\nlast");
  EXPECT_EQ(Drain(fds_[0]), "[node] world\n[node] \n");
  relay.Finish();
  EXPECT_EQ(Drain(fds_[0]), "[node] last\n");
  relay.Finish();  // idempotent
  EXPECT_EQ(Drain(fds_[0]), "");
}

TEST_F(OutputRelayTest, KeepsTheLastLines) {
  OutputRelay relay("n", -1, 3);
  for (int i = 0; i < 10; ++i) relay.Feed("line " + std::to_string(i) + "\n");
  ASSERT_EQ(relay.tail().size(), 3u);
  EXPECT_EQ(relay.tail().front(), "line 7");
  EXPECT_EQ(relay.tail().back(), "line 9");
}

TEST_F(OutputRelayTest, EndlessLineIsRelayedInBoundedPieces) {
  OutputRelay relay("n", -1, 2);
  const std::string chunk(1 << 10, 'x');
  for (int i = 0; i < 200; ++i) relay.Feed(chunk);
  ASSERT_FALSE(relay.tail().empty());
  EXPECT_LE(relay.tail().back().size(), size_t{64} << 10);
}

TEST_F(OutputRelayTest, ClosedOutputDoesNotKillOrStopTheTail) {
  ::close(fds_[0]);
  fds_[0] = ::open("/dev/null", O_RDONLY);
  // EPIPE instead of SIGPIPE needs SIGPIPE blocked or ignored, as the supervisor does.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  OutputRelay relay("n", fds_[1], 2);
  relay.Feed("a\nb\nc\n");
  const timespec zero{};
  ::sigtimedwait(&set, nullptr, &zero);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_EQ(relay.tail().size(), 2u);
  EXPECT_EQ(relay.tail().back(), "c");
}

}  // namespace
}  // namespace quiver::supervisor
