// shm_handle resolution: checks a handle against the real bounds of the channel segment it
// names, then maps exactly the bytes it covers (read-only). Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "control/envelope.h"
#include "quiver/channel.h"
#include "quiver/status.h"
#include "shm/segment.h"

namespace quiver::control {

/// Returns OK if [offset, offset + size) lies inside [0, bound), computed without overflow;
/// kHandleOutOfRange otherwise (also for size 0).
Status CheckHandleBounds(uint64_t offset, uint64_t size, uint64_t bound);

/// The bytes an shm_handle names, mapped read-only. Keeps the channel attached while it
/// lives. Movable, not copyable.
class HandleView {
 public:
  HandleView(HandleView&&) noexcept = default;
  HandleView& operator=(HandleView&&) noexcept = default;

  std::span<const std::byte> bytes() const { return bytes_; }
  const ShmHandle& handle() const { return handle_; }
  /// The channel the handle points into.
  const Channel& channel() const { return channel_; }

 private:
  friend Result<HandleView> ResolveHandle(const ShmHandle& handle);
  HandleView(Channel channel, shm::Segment segment, shm::Mapping mapping, ShmHandle handle,
             std::span<const std::byte> bytes)
      : channel_(std::move(channel)),
        segment_(std::move(segment)),
        mapping_(std::move(mapping)),
        handle_(std::move(handle)),
        bytes_(bytes) {}

  // Declared in attach order, so they are released in reverse.
  Channel channel_;
  shm::Segment segment_;
  shm::Mapping mapping_;
  ShmHandle handle_;
  std::span<const std::byte> bytes_;
};

/// Resolves `handle` against channel `handle.segment_id` (attached as Channel::Attach does:
/// an fd its supervisor handed down, else by name). `offset` counts from the start of the
/// channel's data area. The channel's header is re-read and validated against the segment's
/// real (fstat) size, then the range is checked against the data area before any byte of
/// it is mapped.
/// Errors: kNotFound (no such channel), kShmCorruption (its header does not fit the
/// segment), kHandleOutOfRange (the range leaves the data area); each wraps its cause.
Result<HandleView> ResolveHandle(const ShmHandle& handle);

}  // namespace quiver::control
