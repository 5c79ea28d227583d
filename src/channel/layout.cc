#include "channel/layout.h"

#include <string>

namespace quiver::channel {

Result<Layout> ComputeLayout(size_t capacity, uint32_t max_samples, uint32_t max_subscribers,
                             size_t registry_bytes) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    return Status::InvalidArgument("capacity must be 1 byte to 1 TiB, got " +
                                   std::to_string(capacity));
  }
  if (max_samples < 2 || max_samples > kMaxSamples) {
    return Status::InvalidArgument("max_samples must be 2 to " + std::to_string(kMaxSamples) +
                                   ", got " + std::to_string(max_samples));
  }
  if (max_subscribers < 1 || max_subscribers > kMaxSubscribers) {
    return Status::InvalidArgument("max_subscribers must be 1 to " +
                                   std::to_string(kMaxSubscribers) + ", got " +
                                   std::to_string(max_subscribers));
  }
  if (registry_bytes > (size_t{64} << 20)) {
    return Status::InvalidArgument("type registry must be at most 64 MiB, got " +
                                   std::to_string(registry_bytes));
  }
  Layout l;
  l.descs_offset = AlignUp(sizeof(ChannelHeader), 64);
  l.slots_offset = AlignUp(l.descs_offset + uint64_t{max_samples} * sizeof(SampleDesc), 64);
  l.rings_offset = AlignUp(l.slots_offset + uint64_t{max_subscribers} * sizeof(SubscriberSlot), 64);
  l.registry_offset = AlignUp(l.rings_offset + uint64_t{max_subscribers} * max_samples * 8, 64);
  l.registry_bytes = AlignUp(registry_bytes, 64);
  l.data_offset = AlignUp(l.registry_offset + sizeof(TypeRegistry) + l.registry_bytes, kPageSize);
  l.data_capacity = AlignUp(capacity, kSampleAlignment);
  l.segment_bytes = AlignUp(l.data_offset + l.data_capacity, kPageSize);
  return l;
}

Status ValidateConfig(const ChannelConfig& h, size_t segment_bytes) {
  auto corrupt = [](std::string what) {
    return Status::ShmCorruption("channel header: " + std::move(what));
  };
  if (segment_bytes < sizeof(ChannelHeader)) return corrupt("segment smaller than its header");
  if (h.magic != kMagic) return corrupt("bad magic (not a Quiver channel)");
  if (h.layout_version != kLayoutVersion) {
    return corrupt("layout version " + std::to_string(h.layout_version) + ", this build reads " +
                   std::to_string(kLayoutVersion));
  }
  if (h.overflow_policy > 1) return corrupt("unknown overflow policy");
  auto layout = ComputeLayout(h.data_capacity, h.max_samples, h.max_subscribers, h.registry_bytes);
  if (!layout.ok()) return layout.status().Wrap(ErrorCode::kShmCorruption, "channel header");
  const Layout& l = *layout;
  if (l.descs_offset != h.descs_offset || l.slots_offset != h.slots_offset ||
      l.rings_offset != h.rings_offset || l.registry_offset != h.registry_offset ||
      l.registry_bytes != h.registry_bytes || l.data_offset != h.data_offset ||
      l.data_capacity != h.data_capacity || l.segment_bytes != h.segment_bytes) {
    return corrupt("region offsets disagree with its sizes");
  }
  if (h.segment_bytes > segment_bytes) {
    return corrupt("claims " + std::to_string(h.segment_bytes) + " bytes but the segment has " +
                   std::to_string(segment_bytes));
  }
  return Status::OK();
}

}  // namespace quiver::channel
