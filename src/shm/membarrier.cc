#include "shm/membarrier.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace quiver::shm {

namespace {
long Membarrier(int command) { return syscall(SYS_membarrier, command, 0, 0); }
}  // namespace

bool RegisterForHeavyBarrier() {
  const long supported = Membarrier(MEMBARRIER_CMD_QUERY);
  return supported > 0 && (supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
         Membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

Status HeavyBarrier() {
  if (Membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) return Status::OK();
  return Status::FromErrno("membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)", errno);
}

}  // namespace quiver::shm
