// The byte layout of a channel segment: a wire format between processes (and, later,
// languages). Everything here lives in shared memory; each field says who writes it.
// Any change to a struct below bumps kLayoutVersion.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::channel {

inline constexpr uint64_t kMagic = 0x31305245'56495551;  // "QUIVER01" little-endian
inline constexpr uint32_t kLayoutVersion = 5;
inline constexpr uint32_t kMaxSubscribers = quiver::kMaxSubscribers;  // a bit each in holders
inline constexpr uint32_t kMaxSamples = quiver::kMaxSamples;
inline constexpr size_t kSampleAlignment = 64;
inline constexpr size_t kPageSize = 4096;
inline constexpr uint32_t kMaxTypeVersions = 64;

enum class PublisherLifecycle : uint32_t { kNone = 0, kActive = 1, kClosed = 2 };
enum class SlotState : uint32_t { kFree = 0, kActive = 1, kClosing = 2 };
enum class DescState : uint32_t { kFree = 0, kLoaned = 1, kPublished = 2 };

/// The immutable part of a channel's header: written once by the creator before the
/// segment becomes reachable, never changed. Validated (ValidateConfig) before any use.
struct ChannelConfig {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t overflow_policy;  // OverflowPolicy
  uint64_t segment_bytes;
  uint64_t descs_offset;     // SampleDesc[max_samples]
  uint64_t slots_offset;     // SubscriberSlot[max_subscribers]
  uint64_t rings_offset;     // std::atomic<uint32_t>[max_subscribers][max_samples]
  uint64_t registry_offset;  // TypeRegistry, followed by registry_bytes of descriptors
  uint64_t registry_bytes;
  uint64_t data_offset;  // page aligned; the sample bytes
  uint64_t data_capacity;
  uint32_t max_samples;
  uint32_t max_subscribers;
  uint64_t nonce;  // random per channel; names notification sockets
  // A subscriber that keeps a `block` channel full this long is evicted (0: never).
  uint64_t stall_timeout_ns;
  char name[72];  // a name is at most 64 bytes
};
static_assert(std::is_trivially_copyable_v<ChannelConfig> && sizeof(ChannelConfig) == 176);

/// Segment offset 0.
struct alignas(64) ChannelHeader {
  ChannelConfig config;

  // Read on every poll and every publish, written seldom (a publisher attaching or
  // leaving, a subscriber joining or leaving): a line of their own, so that the counters
  // below, written on every loan and publish, do not take it from the subscribers' caches.
  alignas(64) std::atomic<uint32_t> publisher_lifecycle;  // publisher-written
  std::atomic<uint32_t> publisher_epoch;                  // +1 per publisher that attached
  std::atomic<uint64_t> active_mask;                      // slots samples are delivered to

  // Publisher-written; others read.
  alignas(64) std::atomic<uint64_t> samples_in_use;  // loaned, queued or held
  std::atomic<uint64_t> bytes_in_use;
  std::atomic<uint64_t> published;
  std::atomic<uint64_t> published_bytes;
  std::atomic<uint64_t> dropped;
  std::atomic<uint64_t> publisher_stalls;
  std::atomic<uint64_t> reclaimed_subscribers;  // also bumped by a joiner that takes over
  std::atomic<uint64_t> evicted_subscribers;    // by the stall policy
  // CLOCK_MONOTONIC ns since the publisher has been waiting for room, 0 while it is not.
  std::atomic<int64_t> waiting_since_ns;
  // The sequence counter: 2 * the publish sequence of the next sample, + 1 while Publish
  // runs (from before it reads active_mask until its ring pushes are done). A subscriber
  // joining with `from_oldest` waits for an even value: from then on every publish
  // delivers to it, and every sample without its bit is fixed (ClaimBacklog).
  std::atomic<uint64_t> publish_state;
  // 1: the publisher orders its publish_state store before its active_mask load with only a
  // compiler barrier, and a joining subscriber must run shm::HeavyBarrier() (membarrier) in
  // between its own two steps; 0: the publisher uses a seq_cst store. Written (seq_cst)
  // once by each publisher before it publishes.
  std::atomic<uint32_t> publish_barrier;

  // Subscriber-written: slots that detached and await reclaim by the publisher.
  alignas(64) std::atomic<uint64_t> closing_mask;
  // Backpressure handshake: a releasing subscriber bumps space_word when the publisher
  // says it is waiting.
  alignas(64) std::atomic<uint32_t> space_word;
  std::atomic<uint32_t> publisher_waiting;
};

/// One in-flight sample. Written by the publisher before the sample is pushed to any ring
/// (published by the ring's release store); `holders` is cleared bit by bit by subscribers.
/// A subscriber joining with `from_oldest` may also set its bit in a published sample that
/// other subscribers still hold (never in one whose mask is 0: that one is the publisher's).
struct alignas(64) SampleDesc {
  std::atomic<uint64_t> holders;  // bit i: subscriber slot i has it queued or held
  std::atomic<uint32_t> state;    // DescState
  uint32_t reserved0;
  uint64_t reserved1;
  std::atomic<uint64_t> offset;    // into the data area, kSampleAlignment aligned
  std::atomic<uint64_t> size;      // bytes the publisher loaned
  std::atomic<uint64_t> span;      // bytes reserved, incl. alignment padding
  std::atomic<uint64_t> sequence;  // publish sequence; written before holders (release)
};

/// An entry of a subscriber's ring (rings_offset): the descriptor index in the low 32 bits,
/// tagged in the high 32 with the low 32 bits of (its position + 1). A subscriber polls the
/// entry at its read_index and sees a new sample when the tag matches, without reading
/// write_index, whose cache line then stays with the publisher: one line fewer moves
/// between the two CPUs per message. A zeroed ring matches no position (the tag of position
/// p is p + 1), and an entry left from an earlier lap carries a tag max_samples behind.
inline constexpr uint64_t RingEntry(uint64_t position, uint32_t index) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(position + 1)) << 32) | index;
}
inline constexpr uint32_t RingIndex(uint64_t entry) { return static_cast<uint32_t>(entry); }
inline constexpr bool RingEntryIsAt(uint64_t entry, uint64_t position) {
  return static_cast<uint32_t>(entry >> 32) == static_cast<uint32_t>(position + 1);
}

/// One subscriber slot. The ring of descriptor indices is a separate array (rings_offset).
struct alignas(64) SubscriberSlot {
  std::atomic<uint32_t> state;       // SlotState; Free->Active by the subscriber holding
                                     // its lock, Closing->Free only by the publisher
  std::atomic<uint32_t> generation;  // +1 per attach
  // Ring indices: the publisher alone advances write_index, after it wrote the entry (so a
  // subscriber may find an entry, by its tag, before write_index says so: read_index can be
  // one past write_index for that moment); read_index is advanced by CAS, by the subscriber
  // (receive) or the publisher (drop-oldest), so an entry is taken once.
  std::atomic<uint64_t> read_index;
  alignas(64) std::atomic<uint64_t> write_index;
  std::atomic<uint32_t> wake_word;     // futex: bumped by the publisher to wake a sleeper
  std::atomic<uint32_t> sleeping;      // set by a subscriber about to sleep on wake_word
  std::atomic<uint32_t> notify_armed;  // set by a subscriber waiting on its notify fd
  // Publisher-written: not 0 once the stall policy evicted this subscriber, the ms the
  // publisher had waited for room when it did. Reset by the next subscriber of the slot.
  std::atomic<uint32_t> evicted_after_ms;
  std::atomic<uint64_t> missed;                // publisher-written (drops)
  alignas(64) std::atomic<uint64_t> received;  // subscriber-written
  std::atomic<uint64_t> received_bytes;
  char notify_name[48];  // abstract socket name, NUL-padded; "" if none
};

/// Append-only list of type descriptors (opaque bytes; the payload layer stores Arrow
/// schemas). Entries are written by the creator or the publisher, then made visible by a
/// release store of `count`; they never change afterwards. Version v is entries[v - 1].
struct TypeRegistry {
  struct Entry {
    uint64_t offset;  // into the descriptor bytes that follow this struct
    uint64_t length;
  };
  std::atomic<uint32_t> count;
  uint32_t reserved;
  uint64_t used_bytes;  // written before count
  Entry entries[kMaxTypeVersions];
};

static_assert(std::is_standard_layout_v<ChannelHeader> && alignof(ChannelHeader) == 64);
static_assert(std::is_standard_layout_v<TypeRegistry> && sizeof(TypeRegistry) == 16 + 16 * 64);
static_assert(std::is_standard_layout_v<SampleDesc> && sizeof(SampleDesc) == 64);
static_assert(std::is_standard_layout_v<SubscriberSlot> && sizeof(SubscriberSlot) == 192);
static_assert(sizeof(ChannelHeader) <= kPageSize);
static_assert(std::atomic<uint64_t>::is_always_lock_free &&
              std::atomic<uint32_t>::is_always_lock_free);

/// Where each region of a channel segment lives, derived from its options.
struct Layout {
  uint64_t descs_offset = 0;
  uint64_t slots_offset = 0;
  uint64_t rings_offset = 0;
  uint64_t registry_offset = 0;
  uint64_t registry_bytes = 0;
  uint64_t data_offset = 0;
  uint64_t data_capacity = 0;
  uint64_t segment_bytes = 0;
};

/// Computes the layout for `capacity` data bytes and `registry_bytes` of type descriptors.
/// Fails on out-of-range options.
Result<Layout> ComputeLayout(size_t capacity, uint32_t max_samples, uint32_t max_subscribers,
                             size_t registry_bytes);

/// Checks a config read from a segment of `segment_bytes` bytes: magic, version, and that
/// every region recomputes to the same offsets and fits the segment. kShmCorruption if not.
Status ValidateConfig(const ChannelConfig& config, size_t segment_bytes);

inline constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace quiver::channel
