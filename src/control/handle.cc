#include "control/handle.h"

#include <string>

namespace quiver::control {

Result<HandleView> ResolveHandle(const ShmHandle& handle) {
  const std::string what = "shm_handle for segment '" + handle.segment_id + "'";
  Result<Channel> channel = Channel::Attach(handle.segment_id);
  if (!channel.ok()) {
    return channel.status().Wrap(channel.status().code(), "cannot resolve " + what);
  }
  Result<std::span<const std::byte>> bytes = channel->DataRange(handle.offset, handle.size);
  if (!bytes.ok()) {
    return bytes.status().Wrap(bytes.status().code(),
                               what + " does not fit channel '" + handle.segment_id + "'");
  }
  return HandleView(std::move(channel).value(), handle, *bytes);
}

}  // namespace quiver::control
