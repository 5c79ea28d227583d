#include "shm/segment.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "shm/ofd_lock.h"
#include "test_support.h"

namespace quiver::shm {
namespace {

using testing::UniqueName;

std::string PathOf(const std::string& name) { return Segment::PathOf(name); }
Status Nothing(Segment&) { return Status::OK(); }

TEST(SegmentTest, NamedSegmentIsPrivateToItsUser) {
  const std::string name = UniqueName("mode");
  auto segment = Segment::CreateNamed(name, 8192, Nothing);
  ASSERT_TRUE(segment.ok()) << segment.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(PathOf(name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(static_cast<size_t>(st.st_size), 8192u);
}

TEST(SegmentTest, InitializerRunsBeforeTheNameAppears) {
  const std::string name = UniqueName("init");
  bool existed_during_init = true;
  auto segment = Segment::CreateNamed(name, 4096, [&](Segment&) {
    existed_during_init = std::filesystem::exists(PathOf(name));
    return Status::OK();
  });
  ASSERT_TRUE(segment.ok());
  EXPECT_FALSE(existed_during_init);
  EXPECT_TRUE(std::filesystem::exists(PathOf(name)));
}

TEST(SegmentTest, FailingInitializerLeavesNothingBehind) {
  const std::string name = UniqueName("initfail");
  auto segment =
      Segment::CreateNamed(name, 4096, [](Segment&) { return Status::InvalidArgument("no"); });
  EXPECT_EQ(segment.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(PathOf(name)));
}

TEST(SegmentTest, SymlinkPlantedUnderTheNameIsNeverFollowed) {
  const std::string name = UniqueName("symlink");
  const std::string target = "/tmp/quiver-symlink-target-" + std::to_string(getpid());
  { std::ofstream(target) << "precious"; }
  mkdir(Segment::Directory().c_str(), 0700);  // as the first CreateNamed would
  ASSERT_EQ(symlink(target.c_str(), PathOf(name).c_str()), 0);
  auto open = Segment::OpenNamed(name);
  EXPECT_EQ(open.status().code(), ErrorCode::kPermissionDenied) << open.status().ToString();
  auto create = Segment::CreateNamed(name, 4096, Nothing);
  EXPECT_EQ(create.status().code(), ErrorCode::kPermissionDenied) << create.status().ToString();
  std::ifstream in(target);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
  unlink(PathOf(name).c_str());
  unlink(target.c_str());
}

TEST(SegmentTest, SegmentOthersCanReadIsRefused) {
  const std::string name = UniqueName("loosemode");
  auto segment = Segment::CreateNamed(name, 4096, Nothing);
  ASSERT_TRUE(segment.ok());
  ASSERT_EQ(chmod(PathOf(name).c_str(), 0644), 0);
  auto open = Segment::OpenNamed(name);
  EXPECT_EQ(open.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(open.status().message().find("0600"), std::string::npos);
}

TEST(SegmentTest, CreateReplacesAStaleSegmentOfADeadOwner) {
  const std::string name = UniqueName("replace");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto segment = Segment::CreateNamed(name, 4096, Nothing);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(std::filesystem::exists(PathOf(name)));
  auto segment = Segment::CreateNamed(name, 4096, Nothing);
  EXPECT_TRUE(segment.ok()) << segment.status().ToString();
}

TEST(SegmentTest, RemoveIfStaleSparesLiveSegments) {
  const std::string name = UniqueName("spare");
  auto segment = Segment::CreateNamed(name, 4096, Nothing);
  ASSERT_TRUE(segment.ok());
  auto removed = Segment::RemoveIfStale(name);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
  EXPECT_TRUE(std::filesystem::exists(PathOf(name)));
}

TEST(SegmentTest, FromFdTakesItsOwnLivenessLocks) {
  auto segment = Segment::CreateMemfd(UniqueName("ownlocks"), 4096, Nothing);
  ASSERT_TRUE(segment.ok()) << segment.status().ToString();
  auto attached = Segment::FromFd(segment->fd());
  ASSERT_TRUE(attached.ok()) << attached.status().ToString();
  ASSERT_TRUE(TryLockByte(attached->fd(), 7, LockKind::kExclusive).ok());
  EXPECT_TRUE(IsByteLockedByOthers(segment->fd(), 7)) << "two descriptions, two owners";
  EXPECT_FALSE(IsByteLockedByOthers(attached->fd(), 7)) << "own locks never count";
  EXPECT_EQ(TryLockByte(segment->fd(), 7, LockKind::kExclusive).code(), ErrorCode::kBusy);
}

TEST(SegmentTest, MemfdIsSealedAgainstResizing) {
  auto segment = Segment::CreateMemfd(UniqueName("sealed"), 4096, Nothing);
  ASSERT_TRUE(segment.ok());
  EXPECT_NE(ftruncate(segment->fd(), 0), 0) << "shrinking would SIGBUS every mapping";
  EXPECT_NE(ftruncate(segment->fd(), 1 << 20), 0);
}

TEST(SegmentTest, MappingOutsideTheSegmentIsRefused) {
  auto segment = Segment::CreateMemfd(UniqueName("bounds"), 8192, Nothing);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->Map(4096, 8192, Protection::kReadOnly).status().code(),
            ErrorCode::kShmCorruption);
  EXPECT_TRUE(segment->Map(4096, 4096, Protection::kReadOnly).ok());
}

TEST(SegmentTest, IsStaleTellsWithoutRemovingAndListNamedFindsIt) {
  const std::string name = UniqueName("probe");
  {
    auto live = Segment::CreateNamed(name, 4096, Nothing);
    ASSERT_TRUE(live.ok());
    EXPECT_FALSE(*Segment::IsStale(name));
    const auto names = *Segment::ListNamed();
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
  }
  pid_t child = fork();
  if (child == 0) {
    auto segment = Segment::CreateNamed(name, 4096, Nothing);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(*Segment::IsStale(name));
  EXPECT_TRUE(std::filesystem::exists(PathOf(name))) << "asking removed it";
  EXPECT_TRUE(*Segment::RemoveIfStale(name));
  EXPECT_FALSE(*Segment::IsStale(name)) << "gone is not stale";
}

}  // namespace
}  // namespace quiver::shm
