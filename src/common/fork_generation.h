// Which side of a fork this process is on. A child of fork() inherits its parent's
// attachments to channels (mappings, fds, and the open file descriptions that carry their
// liveness locks), but they stay the parent's: a child that used or dropped one would
// release the parent's locks, samples and slots. Objects that own shared state record
// ForkGeneration() when made; when it has changed they refuse to be used and do nothing
// to shared memory when dropped. Thread-safe.
#pragma once

#include <cstdint>

namespace quiver {

/// The number of forks this process is a child of, counted from when Quiver was loaded into
/// it or an ancestor (a pthread_atfork child handler, registered at load, counts them).
/// Costs one load.
uint64_t ForkGeneration();

}  // namespace quiver
