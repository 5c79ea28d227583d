#include "supervisor/fd_passing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace quiver::supervisor {
namespace {

TEST(FdPassingTest, AnFdAndItsLineCrossASocket) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd pr(p[0]), pw(p[1]);

  ASSERT_TRUE(SendWithFd(a.get(), "ok\n", pr.get()).ok());
  auto got = ReceiveLineWithFd(b.get(), 64);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->line, "ok");
  ASSERT_TRUE(got->fd.valid());
  EXPECT_NE(got->fd.get(), pr.get());
  EXPECT_EQ(::fcntl(got->fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // The received fd is the same pipe: what goes in one end comes out of it.
  ASSERT_EQ(::write(pw.get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(got->fd.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(FdPassingTest, LineWithoutFdAndPeerGone) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_TRUE(SendWithFd(a.get(), "error nope\n", -1).ok());
  auto got = ReceiveLineWithFd(b.get(), 64);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->line, "error nope");
  EXPECT_FALSE(got->fd.valid());
  a.Reset();
  auto gone = ReceiveLineWithFd(b.get(), 64);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), ErrorCode::kPeerGone);
}

TEST(FdPassingTest, AbstractSocketListensConnectsAndKnowsItsPeer) {
  const std::string address = "@quiver-fd-passing-test-" + std::to_string(::getpid());
  auto listener = ListenUnix(address);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  auto client = ConnectUnix(address);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());
  auto uid = PeerUid(server.get());
  ASSERT_TRUE(uid.ok());
  EXPECT_EQ(*uid, ::geteuid());
  // A second listener on the same name is refused, and nothing is left once it closes.
  EXPECT_FALSE(ListenUnix(address).ok());
  listener->Reset();
  EXPECT_EQ(ConnectUnix(address).status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace quiver::supervisor
