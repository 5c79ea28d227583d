#include <sys/random.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "channel/channel_state.h"
#include "shm/ofd_lock.h"

namespace quiver {
namespace internal {

using channel::ChannelHeader;
using channel::kLayoutVersion;
using channel::kMagic;

Result<std::byte*> ChannelState::DataReadWrite() {
  std::lock_guard lock(mu);
  if (data_rw.data() == nullptr) {
    QUIVER_ASSIGN_OR_RETURN(data_rw,
                            segment.Map(data_offset, capacity, shm::Protection::kReadWrite));
  }
  return data_rw.data();
}

Result<const std::byte*> ChannelState::DataReadOnly() {
  std::lock_guard lock(mu);
  if (data_ro.data() == nullptr) {
    QUIVER_ASSIGN_OR_RETURN(data_ro,
                            segment.Map(data_offset, capacity, shm::Protection::kReadOnly));
  }
  return static_cast<const std::byte*>(data_ro.data());
}

Result<std::shared_ptr<ChannelState>> AttachSegment(shm::Segment segment) {
  // Read the header through a first small mapping, validate it against the real segment
  // size, and only then map the regions it describes.
  if (segment.size() < channel::kPageSize) {
    return Status::ShmCorruption("segment of " + std::to_string(segment.size()) +
                                 " bytes is too small to be a channel");
  }
  channel::ChannelConfig copy;
  {
    QUIVER_ASSIGN_OR_RETURN(shm::Mapping first,
                            segment.Map(0, channel::kPageSize, shm::Protection::kReadOnly));
    std::memcpy(&copy, first.data(), sizeof(copy));
  }
  QUIVER_RETURN_IF_ERROR(channel::ValidateConfig(copy, segment.size()));
  auto state = std::make_shared<ChannelState>(std::move(segment));
  state->name.assign(copy.name, strnlen(copy.name, sizeof(copy.name)));
  state->capacity = copy.data_capacity;
  state->max_samples = copy.max_samples;
  state->max_subscribers = copy.max_subscribers;
  state->stall_timeout = std::chrono::nanoseconds(copy.stall_timeout_ns);
  state->slot_bits =
      copy.max_subscribers >= 64 ? ~uint64_t{0} : (uint64_t{1} << copy.max_subscribers) - 1;
  state->data_offset = copy.data_offset;
  state->nonce = copy.nonce;
  state->overflow = static_cast<OverflowPolicy>(copy.overflow_policy);
  QUIVER_ASSIGN_OR_RETURN(state->control,
                          state->segment.Map(0, copy.data_offset, shm::Protection::kReadWrite));
  std::byte* base = state->control.data();
  state->header = reinterpret_cast<ChannelHeader*>(base);
  state->descs = reinterpret_cast<channel::SampleDesc*>(base + copy.descs_offset);
  state->slots = reinterpret_cast<channel::SubscriberSlot*>(base + copy.slots_offset);
  state->rings = reinterpret_cast<std::atomic<uint64_t>*>(base + copy.rings_offset);
  state->registry = reinterpret_cast<channel::TypeRegistry*>(base + copy.registry_offset);
  state->registry_bytes = base + copy.registry_offset + sizeof(channel::TypeRegistry);
  state->registry_capacity = copy.registry_bytes;
  return state;
}

Result<uint32_t> AppendType(channel::TypeRegistry* registry, std::byte* bytes, uint64_t capacity,
                            std::string_view descriptor) {
  const uint32_t count = registry->count.load(std::memory_order_acquire);
  if (count >= channel::kMaxTypeVersions) {
    return Status::CapacityExceeded("the channel's type registry already holds the maximum of " +
                                    std::to_string(channel::kMaxTypeVersions) + " versions");
  }
  const uint64_t used = registry->used_bytes;
  if (used > capacity || descriptor.size() > capacity - used) {
    return Status::CapacityExceeded("a type descriptor of " + std::to_string(descriptor.size()) +
                                    " bytes does not fit the channel's type registry (" +
                                    std::to_string(capacity - std::min(used, capacity)) +
                                    " bytes free; see ChannelOptions::type_registry_bytes)");
  }
  std::memcpy(bytes + used, descriptor.data(), descriptor.size());
  registry->entries[count] = {used, descriptor.size()};
  registry->used_bytes = used + channel::AlignUp(descriptor.size(), 8);
  // The entry and its bytes are visible before the count that announces them.
  registry->count.store(count + 1, std::memory_order_release);
  return count + 1;
}

namespace {

Status InitializeHeader(shm::Segment& segment, std::string_view name, const ChannelOptions& o,
                        const channel::Layout& layout) {
  QUIVER_ASSIGN_OR_RETURN(shm::Mapping m,
                          segment.Map(0, layout.data_offset, shm::Protection::kReadWrite));
  // The file is fresh and zero-filled, which is the initial value of every atomic field.
  auto* h = &reinterpret_cast<ChannelHeader*>(m.data())->config;
  h->layout_version = kLayoutVersion;
  h->overflow_policy = static_cast<uint32_t>(o.overflow);
  h->segment_bytes = layout.segment_bytes;
  h->descs_offset = layout.descs_offset;
  h->slots_offset = layout.slots_offset;
  h->rings_offset = layout.rings_offset;
  h->registry_offset = layout.registry_offset;
  h->registry_bytes = layout.registry_bytes;
  h->data_offset = layout.data_offset;
  h->data_capacity = layout.data_capacity;
  h->max_samples = o.max_samples;
  h->max_subscribers = o.max_subscribers;
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
    return Status::FromErrno("getrandom", errno);
  }
  h->nonce = nonce;
  if (o.stall_timeout) {
    if (o.stall_timeout->count() <= 0 || *o.stall_timeout > kMaxStallTimeout) {
      return Status::InvalidArgument("stall_timeout must be more than 0 and at most 86400 s, got " +
                                     std::to_string(o.stall_timeout->count()) + " ms");
    }
    h->stall_timeout_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(*o.stall_timeout).count());
  }
  std::memcpy(h->name, name.data(), std::min(name.size(), sizeof(h->name) - 1));
  if (!o.type_descriptor.empty()) {
    auto* registry = reinterpret_cast<channel::TypeRegistry*>(m.data() + layout.registry_offset);
    auto appended = AppendType(registry, m.data() + layout.registry_offset + sizeof(*registry),
                               layout.registry_bytes, o.type_descriptor);
    if (!appended.ok()) return appended.status();
  }
  h->magic = kMagic;
  return Status::OK();
}

}  // namespace

bool PublisherDied(const shm::Segment& segment) {
  // Its subscribers may still be draining it; they keep their mapping, and follow the name
  // to the new channel once they have (SubscriberOptions::follow_restarts).
  Result<shm::Mapping> first = segment.Map(0, channel::kPageSize, shm::Protection::kReadOnly);
  if (!first.ok() || segment.size() < sizeof(ChannelHeader)) return false;
  const auto* h = reinterpret_cast<const ChannelHeader*>(first->data());
  if (h->config.magic != kMagic || h->config.layout_version != kLayoutVersion) return false;
  return h->publisher_lifecycle.load(std::memory_order_acquire) ==
             static_cast<uint32_t>(channel::PublisherLifecycle::kActive) &&
         !shm::IsByteLockedByOthers(segment.fd(), shm::kPublisherLockByte);
}

}  // namespace internal

Channel::Channel(std::shared_ptr<internal::ChannelState> state) : state_(std::move(state)) {}

Status internal::CheckNotInherited(const ChannelState& ch, std::string_view what) {
  if (!ch.segment.inherited()) return Status::OK();
  return Status::InvalidArgument(
      std::string(what) + " of channel '" + ch.name +
      "' was made before this process was forked from its parent, and belongs to the parent; "
      "in the child, open the channel again (by name, or from its fd) and make a new one");
}

Result<Channel> Channel::Create(std::string_view name, const ChannelOptions& options) {
  QUIVER_RETURN_IF_ERROR(shm::Segment::ValidateName(name));
  QUIVER_ASSIGN_OR_RETURN(
      channel::Layout layout,
      channel::ComputeLayout(options.capacity, options.max_samples, options.max_subscribers,
                             options.type_registry_bytes));
  auto init = [&](shm::Segment& segment) {
    return internal::InitializeHeader(segment, name, options, layout);
  };
  Result<shm::Segment> segment =
      options.backing == Backing::kMemfd
          ? shm::Segment::CreateMemfd(name, layout.segment_bytes, init)
          : shm::Segment::CreateNamed(name, layout.segment_bytes, init, internal::PublisherDied);
  if (!segment.ok()) return segment.status();
  QUIVER_ASSIGN_OR_RETURN(auto state, internal::AttachSegment(std::move(segment).value()));
  return Channel(std::move(state));
}

Result<Channel> Channel::Open(std::string_view name) {
  Result<shm::Segment> segment = shm::Segment::OpenNamed(name);
  if (!segment.ok() && segment.status().code() == ErrorCode::kNotFound) {
    // Under `quiver run` a pipeline's channels are memfds named in QUIVER_CHANNELS: a node
    // that opens one by name gets it (Attach), and one that names another is told what it has.
    Result<std::vector<internal::EnvEntry>> entries = internal::ReadEnvList("QUIVER_CHANNELS");
    if (!entries.ok()) return entries.status();
    if (!entries->empty()) {
      std::string names;
      for (const internal::EnvEntry& entry : *entries) {
        if (entry.name == name) return Attach(name);
        names += (names.empty() ? "" : ", ") + std::string(entry.name);
      }
      return segment.status().Wrap(ErrorCode::kNotFound,
                                   "no channel '" + std::string(name) +
                                       "': not a named channel, nor one of this pipeline node's (" +
                                       names + ", from QUIVER_CHANNELS)");
    }
  }
  if (!segment.ok()) return segment.status();
  QUIVER_ASSIGN_OR_RETURN(auto state, internal::AttachSegment(std::move(segment).value()));
  return Channel(std::move(state));
}

std::string Channel::NamedDirectory() { return shm::Segment::Directory(); }

Status Channel::ValidateName(std::string_view name) { return shm::Segment::ValidateName(name); }

Result<std::vector<std::string>> Channel::ListNamed() { return shm::Segment::ListNamed(); }

Result<bool> Channel::IsStale(std::string_view name) { return shm::Segment::IsStale(name); }

Result<bool> Channel::RemoveIfStale(std::string_view name) {
  return shm::Segment::RemoveIfStale(name);
}

void Channel::ReleaseNamesHeldOnlyByThisProcess() { shm::Segment::ReleaseNamesOfLastHolder(); }

uint32_t Channel::LayoutVersion() { return channel::kLayoutVersion; }

Status CheckDataRange(uint64_t offset, uint64_t size, uint64_t capacity) {
  // `offset > capacity - size` rather than `offset + size > capacity`: the sum may wrap.
  if (size == 0 || size > capacity || offset > capacity - size) {
    return Status::HandleOutOfRange("range [" + std::to_string(offset) + ", +" +
                                    std::to_string(size) + ") is outside the " +
                                    std::to_string(capacity) + "-byte data area");
  }
  return Status::OK();
}

Result<std::span<const std::byte>> Channel::DataRange(uint64_t offset, uint64_t size) const {
  QUIVER_RETURN_IF_ERROR(CheckDataRange(offset, size, state_->capacity));
  QUIVER_ASSIGN_OR_RETURN(const std::byte* data, state_->DataReadOnly());
  return std::span<const std::byte>(data + offset, size);
}

std::string_view OverflowPolicyName(OverflowPolicy policy) {
  return policy == OverflowPolicy::kBlock ? "block" : "drop-oldest";
}

Result<std::chrono::milliseconds> StallTimeoutFromSeconds(double seconds) {
  if (!(seconds > 0) || seconds > 86400) {  // !(> 0): NaN too
    return Status::InvalidArgument("stall_timeout must be more than 0 and at most 86400 s, got " +
                                   std::to_string(seconds) + " s");
  }
  return std::chrono::milliseconds(std::max<int64_t>(1, std::llround(seconds * 1000)));
}

Result<OverflowPolicy> ParseOverflowPolicy(std::string_view name) {
  if (name == "block") return OverflowPolicy::kBlock;
  if (name == "drop-oldest") return OverflowPolicy::kDropOldest;
  return Status::InvalidArgument("overflow policy must be \"block\" or \"drop-oldest\", got \"" +
                                 std::string(name.substr(0, 80)) + "\"");
}

std::string Channel::NamedPath(std::string_view name) { return shm::Segment::PathOf(name); }

Result<Channel> Channel::FromFd(int fd) {
  QUIVER_ASSIGN_OR_RETURN(shm::Segment segment, shm::Segment::FromFd(fd));
  QUIVER_ASSIGN_OR_RETURN(auto state, internal::AttachSegment(std::move(segment)));
  return Channel(std::move(state));
}

uint32_t Channel::type_versions() const {
  return std::min(state_->registry->count.load(std::memory_order_acquire),
                  channel::kMaxTypeVersions);
}

Result<std::string_view> Channel::TypeDescriptor(uint32_t version) const {
  const internal::ChannelState& s = *state_;
  if (version == 0 || version > type_versions()) {
    return Status::NotFound("channel '" + s.name + "' has no type version " +
                            std::to_string(version) + " (it has " +
                            std::to_string(type_versions()) + ")");
  }
  const channel::TypeRegistry::Entry entry = s.registry->entries[version - 1];
  if (entry.offset > s.registry_capacity || entry.length > s.registry_capacity - entry.offset) {
    return Status::ShmCorruption("type version " + std::to_string(version) + " of channel '" +
                                 s.name + "' lies outside its registry");
  }
  return std::string_view(reinterpret_cast<const char*>(s.registry_bytes + entry.offset),
                          entry.length);
}

Result<std::vector<internal::EnvEntry>> internal::ReadEnvList(const char* variable) {
  const char* env = std::getenv(variable);
  std::string_view list = env != nullptr ? env : "";
  std::vector<EnvEntry> entries;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view entry = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(std::string(variable) + " entry '" + std::string(entry) +
                                     "' is not name=value");
    }
    entries.push_back({entry.substr(0, eq), entry.substr(eq + 1)});
  }
  return entries;
}

Result<Channel> Channel::Attach(std::string_view name) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<internal::EnvEntry> entries,
                          internal::ReadEnvList("QUIVER_CHANNELS"));
  for (const internal::EnvEntry& entry : entries) {
    int fd = -1;
    if (std::from_chars(entry.value.data(), entry.value.data() + entry.value.size(), fd).ec !=
            std::errc() ||
        fd < 0) {
      return Status::InvalidArgument("QUIVER_CHANNELS entry '" + std::string(entry.name) + "=" +
                                     std::string(entry.value) + "' is not name=fd");
    }
    if (entry.name == name) {
      QUIVER_ASSIGN_OR_RETURN(Channel channel, FromFd(fd));
      if (channel.name() != name) {
        return Status::InvalidArgument("QUIVER_CHANNELS says fd " + std::to_string(fd) +
                                       " is channel '" + std::string(name) + "' but it is '" +
                                       channel.name() + "'");
      }
      return channel;
    }
  }
  return Open(name);
}

const std::string& Channel::name() const { return state_->name; }
size_t Channel::capacity() const { return state_->capacity; }
OverflowPolicy Channel::overflow() const { return state_->overflow; }
int Channel::fd() const { return state_->segment.fd(); }
bool Channel::named() const { return state_->segment.named(); }

uint64_t Channel::generation() const { return state_->nonce; }

bool Channel::publisher_died() const {
  {
    std::lock_guard lock(state_->mu);
    if (state_->holds_publisher) return false;
  }
  return internal::PublisherDied(state_->segment);
}

ChannelStats Channel::Stats() const {
  const internal::ChannelState& s = *state_;
  const channel::ChannelHeader& h = *s.header;
  constexpr auto r = std::memory_order_relaxed;
  ChannelStats out;
  out.name = s.name;
  out.capacity = s.capacity;
  out.bytes_in_use = h.bytes_in_use.load(r);
  out.samples_in_use = static_cast<uint32_t>(h.samples_in_use.load(r));
  out.max_samples = s.max_samples;
  out.max_subscribers = s.max_subscribers;
  out.overflow = s.overflow;
  {
    std::lock_guard lock(state_->mu);
    out.publisher_alive =
        (s.holds_publisher || shm::IsByteLockedByOthers(s.segment.fd(), shm::kPublisherLockByte)) &&
        h.publisher_lifecycle.load(r) ==
            static_cast<uint32_t>(channel::PublisherLifecycle::kActive);
  }
  out.published = h.published.load(r);
  out.published_bytes = h.published_bytes.load(r);
  out.dropped = h.dropped.load(r);
  out.publisher_stalls = h.publisher_stalls.load(r);
  out.reclaimed_subscribers = h.reclaimed_subscribers.load(r);
  out.evicted_subscribers = h.evicted_subscribers.load(r);
  if (s.stall_timeout.count() > 0) {
    out.stall_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.stall_timeout);
  }
  if (const int64_t since = h.waiting_since_ns.load(r); since > 0) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    out.publisher_waiting = std::chrono::milliseconds(std::max<int64_t>(0, now - since) / 1000000);
  }
  // Per slot, the published samples that name it as a holder: one pass over the descriptors.
  std::array<uint64_t, kMaxSubscribers> unreleased{};
  for (uint32_t d = 0; d < s.max_samples; ++d) {
    const channel::SampleDesc& desc = s.descs[d];
    if (desc.state.load(r) != static_cast<uint32_t>(channel::DescState::kPublished)) continue;
    for (uint64_t bits = desc.holders.load(r) & s.slot_bits; bits != 0; bits &= bits - 1) {
      ++unreleased[static_cast<size_t>(std::countr_zero(bits))];
    }
  }
  for (uint32_t i = 0; i < s.max_subscribers; ++i) {
    const channel::SubscriberSlot& slot = s.slots[i];
    if (slot.state.load(r) != static_cast<uint32_t>(channel::SlotState::kActive)) continue;
    SubscriberStats sub;
    sub.slot = i;
    sub.received = slot.received.load(r);
    sub.received_bytes = slot.received_bytes.load(r);
    sub.missed = slot.missed.load(r);
    const uint64_t read = slot.read_index.load(r), written = slot.write_index.load(r);
    sub.queued = written > read ? written - read : 0;  // read may pass it for a moment
    // Samples that name it as a holder are queued for it or held by it: the rest are held.
    sub.held = unreleased[i] > sub.queued ? unreleased[i] - sub.queued : 0;
    sub.evicted_after = std::chrono::milliseconds(slot.evicted_after_ms.load(r));
    {
      std::lock_guard lock(state_->mu);
      sub.alive = (s.own_slots & (uint64_t{1} << i)) != 0 ||
                  shm::IsByteLockedByOthers(s.segment.fd(), shm::kFirstSubscriberLockByte + i);
    }
    out.subscribers.push_back(sub);
  }
  return out;
}

}  // namespace quiver
