// Process-local state behind the public Channel / Publisher / Subscriber handles.
// Internal; see include/quiver/channel.h for the contracts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channel/extent_allocator.h"
#include "channel/layout.h"
#include "channel/notifier.h"
#include "common/coarse_clock.h"
#include "quiver/channel.h"
#include "shm/segment.h"

namespace quiver::internal {

/// One process's attachment to a channel segment. Shared by every handle made from it.
struct ChannelState {
  explicit ChannelState(shm::Segment s) : segment(std::move(s)) {}

  shm::Segment segment;
  shm::Mapping control;  // [0, data_offset), read-write: indices, counters, descriptors
  channel::ChannelHeader* header = nullptr;
  channel::SampleDesc* descs = nullptr;
  channel::SubscriberSlot* slots = nullptr;
  std::atomic<uint64_t>* rings = nullptr;  // RingEntry values
  channel::TypeRegistry* registry = nullptr;
  std::byte* registry_bytes = nullptr;  // the descriptor bytes after *registry
  uint64_t registry_capacity = 0;

  // Copies of the immutable header fields, validated once: the hot path trusts these,
  // never values re-read from shared memory.
  std::string name;
  uint64_t capacity = 0;
  uint32_t max_samples = 0;
  uint32_t max_subscribers = 0;
  uint64_t data_offset = 0;
  uint64_t nonce = 0;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  uint64_t slot_bits = 0;  // one bit per subscriber slot that exists (max_subscribers)
  std::chrono::nanoseconds stall_timeout{0};  // 0: no stall policy

  std::mutex mu;         // guards the lazily made data mappings and the masks below
  shm::Mapping data_rw;  // publisher's view of the sample bytes
  shm::Mapping data_ro;  // subscribers' view (PROT_READ)
  bool holds_publisher = false;
  uint64_t own_slots = 0;  // subscriber slots held through this attachment

  std::atomic<uint64_t>* ring(uint32_t slot) const {
    return rings + static_cast<size_t>(slot) * max_samples;
  }
  Result<std::byte*> DataReadWrite();
  Result<const std::byte*> DataReadOnly();
};

/// One entry of a supervisor's environment list.
struct EnvEntry {
  std::string_view name;
  std::string_view value;
};
/// The entries of environment variable `variable`, "name=value,name=value" (QUIVER_CHANNELS,
/// QUIVER_SUBSCRIBERS), viewing the environment; empty if unset or empty. kInvalidArgument
/// naming the variable for an entry without '='.
Result<std::vector<EnvEntry>> ReadEnvList(const char* variable);

/// OK unless `ch` was attached by the parent of this process before it forked (its
/// segment is inherited): then kInvalidArgument saying that `what` belongs to the parent and
/// how to get one of the child's own.
Status CheckNotInherited(const ChannelState& ch, std::string_view what);

/// Appends a type descriptor to `registry` (the caller is its only writer). Returns its
/// version.
Result<uint32_t> AppendType(channel::TypeRegistry* registry, std::byte* bytes, uint64_t capacity,
                            std::string_view descriptor);

/// Attaches `segment` (already created or opened) as a channel: validates and maps it.
Result<std::shared_ptr<ChannelState>> AttachSegment(shm::Segment segment);

/// True if `segment` is a channel whose publisher died (attached, then its lock vanished):
/// Channel::Create may give its name to a new channel.
bool PublisherDied(const shm::Segment& segment);

struct PublisherState {
  PublisherState(std::shared_ptr<ChannelState> ch, std::byte* data, PublisherOptions options);
  ~PublisherState();

  /// Frees published samples nobody references any longer: the oldest ones only, or (if
  /// `all`) every one. Returns true if it freed anything.
  bool Reclaim(bool all);
  /// Returns a descriptor index for a loan of `bytes`, or nullopt if there is no room now.
  std::optional<uint32_t> TryAllocate(size_t bytes);
  /// Takes back every reference of subscriber `slot` (closed or dead; its lock is ours) and
  /// frees it.
  void ReclaimSlot(uint32_t slot);
  /// Reclaims slots whose subscribers closed, and (if `probe`) every slot in use whose lock
  /// nobody holds.
  void ReclaimGoneSubscribers(bool probe);
  /// kDropOldest: takes the oldest queued (not yet received) sample off the rings that
  /// queue it. Returns true if it dropped anything.
  bool DropOldest();
  /// True if only the publisher's own unpublished loans are in flight.
  bool OnlyOwnLoansInFlight() const;
  /// Gives back a loan that was never published.
  void Abandon(uint32_t desc);
  /// Marks loan `desc` published (both copies); its holders are stored by the caller.
  void MarkPublished(uint32_t desc);
  /// The stall policy: evicts the subscribers that hold the oldest published sample, the
  /// publisher having waited `waited` for room. Returns how many it evicted.
  int EvictStalled(std::chrono::nanoseconds waited);

  /// The bytes of loan `desc` (from the publisher's own record, never from shared memory).
  std::byte* LoanData(uint32_t desc) const { return data + local_[desc].offset; }
  /// Masks `bits` (read from shared memory) to real subscriber slots.
  uint64_t ValidSlots(uint64_t bits) const { return bits & channel->slot_bits; }

  std::shared_ptr<ChannelState> channel;
  std::byte* data = nullptr;
  PublisherOptions options;
  channel::NotifySender notifier;
  CoarseClock::time_point last_liveness_check;  // on every loan: a clock without a counter read
  // The wait for room under way, kept across loans that time out and are retried at once
  // (LoanImpl): when it began, and when the last attempt gave up.
  std::optional<std::chrono::steady_clock::time_point> stalled_since;
  std::chrono::steady_clock::time_point last_wait_end;
  // Registered for shm::HeavyBarrier(): Publish needs no fence of its own (see
  // ChannelHeader::publish_barrier).
  bool asymmetric_barrier = false;
  // The sample published last (Publisher::last_published).
  std::optional<PublishedSample> last_published;

 private:
  // What the publisher itself wrote into each descriptor. Any attached process can write the
  // shared copy, so the publisher never reads an offset, a span or a state back from it: a
  // scribbled descriptor cannot make it write outside its mapping or free what it loaned.
  struct LocalDesc {
    uint64_t offset = 0;
    uint64_t span = 0;
    bool published = false;
  };

  void Free(uint32_t desc);
  bool Freeable(uint32_t desc) const;
  /// Records an allocation of `span` bytes at `offset` in descriptor `desc`, in both copies.
  void Record(uint32_t desc, uint64_t offset, uint64_t size, uint64_t span);

  channel::ExtentAllocator extents_;
  std::vector<LocalDesc> local_;  // [max_samples]
  std::vector<uint32_t> free_descs_;
  std::vector<uint32_t> in_flight_;  // loaned or published, oldest first
};

struct SubscriberState {
  std::shared_ptr<ChannelState> channel;
  const std::byte* data = nullptr;
  uint32_t slot = 0;
  uint64_t bit = 0;
  SubscriberOptions options;
  std::optional<channel::NotifyReceiver> notify;
  std::chrono::steady_clock::time_point last_publisher_check;
  uint32_t empty_polls = 0;
  bool told_death = false;  // kPeerGone for a publisher that died was returned once
  uint32_t restarts_followed = 0;

  // from_oldest: descriptors of the backlog this subscriber claimed, oldest first; the ones
  // from backlog_next on are not delivered yet (their bit is ours until then).
  std::vector<uint32_t> backlog;
  size_t backlog_next = 0;

  ~SubscriberState();
  /// Takes the next sample, backlog first, if any.
  Result<std::optional<Sample>> Take(const std::shared_ptr<SubscriberState>& self);
  /// True if neither the backlog nor the ring has a sample left.
  bool NothingQueued() const;
  /// kEvicted saying why, once the stall policy evicted this subscriber; else OK.
  Status Evicted() const;
  /// True once the publisher closed or died. Reads the lifecycle word every time; probes
  /// the publisher's lock (a system call) at most every 20 ms.
  bool PublisherGone();
  /// As PublisherGone, for a busy-polling caller: the clock is read only every 256th call,
  /// so an empty poll costs two loads, not a clock read.
  bool PublisherGoneCheap();
  void Release(uint32_t desc);

 private:
  Result<std::optional<Sample>> Deliver(const std::shared_ptr<SubscriberState>& self,
                                        uint32_t desc);
};

}  // namespace quiver::internal
