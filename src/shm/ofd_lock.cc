#include "shm/ofd_lock.h"

#include <fcntl.h>

#include <cerrno>

namespace quiver::shm {
namespace {

struct flock MakeLock(uint64_t byte, short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(byte);
  fl.l_len = 1;
  fl.l_pid = 0;  // required to be 0 for OFD locks
  return fl;
}

short TypeOf(LockKind kind) { return kind == LockKind::kShared ? F_RDLCK : F_WRLCK; }

}  // namespace

Status TryLockByte(int fd, uint64_t byte, LockKind kind) {
  struct flock fl = MakeLock(byte, TypeOf(kind));
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return Status::OK();
  if (errno == EAGAIN || errno == EACCES) return Status::Busy("byte lock held by another");
  return Status::FromErrno("fcntl(F_OFD_SETLK)", errno);
}

Status LockByte(int fd, uint64_t byte, LockKind kind) {
  struct flock fl = MakeLock(byte, TypeOf(kind));
  while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
    if (errno != EINTR) return Status::FromErrno("fcntl(F_OFD_SETLKW)", errno);
  }
  return Status::OK();
}

void UnlockByte(int fd, uint64_t byte) {
  struct flock fl = MakeLock(byte, F_UNLCK);
  (void)fcntl(fd, F_OFD_SETLK, &fl);
}

bool IsByteLockedByOthers(int fd, uint64_t byte) {
  // Asking about an exclusive lock reports any conflicting lock, shared or exclusive.
  struct flock fl = MakeLock(byte, F_WRLCK);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;  // cannot tell: assume alive
  return fl.l_type != F_UNLCK;
}

}  // namespace quiver::shm
