#include "control/handle.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "channel/layout.h"

namespace quiver::control {

Status CheckHandleBounds(uint64_t offset, uint64_t size, uint64_t bound) {
  // `offset > bound - size` rather than `offset + size > bound`: the sum may wrap.
  if (size == 0 || size > bound || offset > bound - size) {
    return Status::HandleOutOfRange("range [" + std::to_string(offset) + ", +" +
                                    std::to_string(size) + ") is outside the " +
                                    std::to_string(bound) + "-byte data area");
  }
  return Status::OK();
}

Result<HandleView> ResolveHandle(const ShmHandle& handle) {
  const std::string what = "shm_handle for segment '" + handle.segment_id + "'";
  Result<Channel> channel = Channel::Attach(handle.segment_id);
  if (!channel.ok()) {
    return channel.status().Wrap(channel.status().code(), "cannot resolve " + what);
  }
  // An attachment of our own gives the segment's real size (fstat), independent of what
  // the header claims.
  Result<shm::Segment> segment = shm::Segment::FromFd(channel->fd());
  if (!segment.ok())
    return segment.status().Wrap(segment.status().code(), "cannot resolve " + what);
  if (segment->size() < channel::kPageSize) {
    return Status::ShmCorruption(what + ": segment is too small to be a channel");
  }
  channel::ChannelConfig config;
  {
    QUIVER_ASSIGN_OR_RETURN(shm::Mapping first,
                            segment->Map(0, channel::kPageSize, shm::Protection::kReadOnly));
    std::memcpy(&config, first.data(), sizeof(config));
  }
  if (Status st = channel::ValidateConfig(config, segment->size()); !st.ok()) {
    return st.Wrap(ErrorCode::kShmCorruption, "cannot resolve " + what);
  }
  if (Status st = CheckHandleBounds(handle.offset, handle.size, config.data_capacity); !st.ok()) {
    return st.Wrap(ErrorCode::kHandleOutOfRange,
                   what + " does not fit channel '" + handle.segment_id + "'");
  }
  // Map whole pages around the range; the view starts `skip` bytes into them.
  const uint64_t first_page = handle.offset / channel::kPageSize * channel::kPageSize;
  const uint64_t skip = handle.offset - first_page;
  const uint64_t length = std::min<uint64_t>(
      channel::AlignUp(skip + handle.size, channel::kPageSize), config.data_capacity - first_page);
  QUIVER_ASSIGN_OR_RETURN(shm::Mapping mapping, segment->Map(config.data_offset + first_page,
                                                             length, shm::Protection::kReadOnly));
  const std::span<const std::byte> bytes(mapping.data() + skip, handle.size);
  return HandleView(std::move(channel).value(), std::move(segment).value(), std::move(mapping),
                    handle, bytes);
}

}  // namespace quiver::control
