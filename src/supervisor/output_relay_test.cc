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
  OutputSink sink(fds_[1]);
  OutputRelay relay("node", &sink, 0);
  auto written = [&] {
    sink.Flush();
    return Drain(fds_[0]);
  };
  relay.Feed("hel");
  EXPECT_EQ(written(), "");
  relay.Feed("lo\nwor");
  EXPECT_EQ(written(), "[node] hello\n");
  relay.Feed("ld\r\n\nlast");
  EXPECT_EQ(written(), "[node] world\n[node] \n");
  relay.Finish();
  EXPECT_EQ(written(), "[node] last\n");
  relay.Finish();  // idempotent
  EXPECT_EQ(written(), "");
}

TEST_F(OutputRelayTest, KeepsTheLastLines) {
  OutputRelay relay("n", nullptr, 3);
  for (int i = 0; i < 10; ++i) relay.Feed("line " + std::to_string(i) + "\n");
  ASSERT_EQ(relay.tail().size(), 3u);
  EXPECT_EQ(relay.tail().front(), "line 7");
  EXPECT_EQ(relay.tail().back(), "line 9");
}

TEST_F(OutputRelayTest, EndlessLineIsRelayedInBoundedPieces) {
  OutputRelay relay("n", nullptr, 2);
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
  OutputSink sink(fds_[1]);
  OutputRelay relay("n", &sink, 2);
  relay.Feed("a\nb\nc\n");
  sink.Flush();
  EXPECT_EQ(sink.dropped_lines(), 3u);  // the output is gone: counted, not written
  const timespec zero{};
  ::sigtimedwait(&set, nullptr, &zero);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_EQ(relay.tail().size(), 2u);
  EXPECT_EQ(relay.tail().back(), "c");
}

// A reader that never reads: the pipe fills, Flush returns at once instead of blocking, and
// what does not fit in the queue is dropped and counted.
TEST_F(OutputRelayTest, AnUnreadOutputNeverBlocksAndDropsPastItsBound) {
  OutputSink sink(fds_[1], 256 << 10);
  OutputRelay relay("chatty", &sink, 0);
  const std::string line(99, 'x');
  for (int i = 0; i < 20000; ++i) {  // 2.1 MB: beyond the pipe (64 KiB) and the queue
    relay.Feed(line + "\n");
    sink.Flush();
  }
  EXPECT_FALSE(sink.empty());
  EXPECT_GT(sink.dropped_lines(), 10000u);
  const size_t dropped = sink.dropped_lines();
  // The reader wakes up: what was queued goes out as it makes room, whole lines in order.
  std::string read;
  for (int i = 0; i < 1000 && !sink.empty(); ++i) {
    read += Drain(fds_[0]);
    sink.Flush();
  }
  read += Drain(fds_[0]);
  EXPECT_TRUE(sink.empty());
  EXPECT_EQ(sink.Abandon(), dropped) << "nothing dropped that the reader took";
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read.size() % (9 + 99 + 1), 0u) << "whole lines only";
  EXPECT_EQ(read.substr(0, 9), "[chatty] ");
}

}  // namespace
}  // namespace quiver::supervisor
