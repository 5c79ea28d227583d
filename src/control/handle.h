// shm_handle resolution: checks a handle against the bounds of the channel it names, then
// gives the bytes it covers (read-only). Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "control/envelope.h"
#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::control {

/// The bytes an shm_handle names, read-only. Keeps the channel attached while it lives.
/// Movable, not copyable.
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
  HandleView(Channel channel, ShmHandle handle, std::span<const std::byte> bytes)
      : channel_(std::move(channel)), handle_(std::move(handle)), bytes_(bytes) {}
  HandleView(const HandleView&) = delete;
  HandleView& operator=(const HandleView&) = delete;

  Channel channel_;  // keeps bytes_ mapped
  ShmHandle handle_;
  std::span<const std::byte> bytes_;
};

/// Resolves `handle` against channel `handle.segment_id` (attached as Channel::Attach does:
/// an fd its supervisor handed down, else by name). `offset` counts from the start of the
/// channel's data area. Attaching validates the channel's header against the segment's
/// real (fstat) size; the range is then checked against the data area (Channel::DataRange).
/// Errors: kNotFound (no such channel), kShmCorruption (its header does not fit the
/// segment), kHandleOutOfRange (the range leaves the data area); each wraps its cause.
Result<HandleView> ResolveHandle(const ShmHandle& handle);

}  // namespace quiver::control
