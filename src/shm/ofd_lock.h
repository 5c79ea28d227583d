// Open-file-description byte locks (fcntl F_OFD_*): Quiver's liveness signal.
// A lock lives exactly as long as the open file description that took it, so the kernel
// drops it when its process dies, however it dies; no pid is ever compared.
#pragma once

#include <cstdint>

#include "quiver/status.h"

namespace quiver::shm {

enum class LockKind { kShared, kExclusive };

/// Takes a lock on byte `byte` of `fd` without waiting. Returns kBusy if another open file
/// description holds a conflicting lock.
Status TryLockByte(int fd, uint64_t byte, LockKind kind);

/// Takes a lock on byte `byte`, sleeping until no conflicting lock is held.
Status LockByte(int fd, uint64_t byte, LockKind kind);

/// Releases this description's lock on `byte` (no-op if it holds none).
void UnlockByte(int fd, uint64_t byte);

/// Returns true if another open file description holds any lock on `byte`.
/// This description's own locks never count.
bool IsByteLockedByOthers(int fd, uint64_t byte);

}  // namespace quiver::shm
