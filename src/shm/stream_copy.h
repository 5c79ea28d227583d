// Large copies into shared memory that bypass the writer's caches.
#pragma once

#include <cstddef>

namespace quiver::shm {

/// Copies `n` bytes to `dst`, shared memory that another process reads next. `total` is the
/// size of the whole copy this is part of (all buffers of one sample): from StreamThreshold()
/// up, the bytes are written with non-temporal stores on x86-64, so the destination's lines
/// are neither read first nor left to evict the writer's cache; smaller copies (which the
/// caches hold and the reader finds there) and other CPUs use memcpy. glibc's memcpy streams
/// only above a share of the last-level cache the CPU reports, which a VM may report as
/// hundreds of MiB.
void CopyToShared(void* dst, const void* src, size_t n, size_t total);
inline void CopyToShared(void* dst, const void* src, size_t n) { CopyToShared(dst, src, n, n); }

/// The copy size from which CopyToShared streams: the size of a core's own cache (its L2),
/// at least 1 MiB.
size_t StreamThreshold();

}  // namespace quiver::shm
