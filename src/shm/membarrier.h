// An asymmetric memory barrier across processes, over membarrier(2): a process that does
// something often (the publisher) registers once and then needs only a compiler barrier
// where a full fence would go; a process that does something rarely (a subscriber joining
// with from_oldest) calls HeavyBarrier(), which makes every running thread of every
// registered process execute a full memory barrier before it returns.
#pragma once

#include "quiver/status.h"

namespace quiver::shm {

/// Registers this process for the expedited global membarrier (again: a no-op). False if
/// the kernel or a seccomp filter does not allow it: then the caller must use full fences
/// itself.
bool RegisterForHeavyBarrier();

/// Runs the heavy side: a full barrier on every running thread of every registered
/// process (~1 us). kIoError if the kernel does not offer it.
Status HeavyBarrier();

}  // namespace quiver::shm
