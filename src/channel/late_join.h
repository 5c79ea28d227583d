// The late-joiner protocol, both ends: how a publish marks itself under way, how a subscriber
// joining with `from_oldest` waits for a publish boundary, and how it claims the backlog.
// Internal to the channel layer; the publisher's half runs on its publish path only.
#pragma once

#include <atomic>
#include <cstdint>

#include "channel/channel_state.h"

namespace quiver::internal {

/// The publisher, starting the publish of `sequence`: says a publish runs before reading
/// whom it goes to. A joiner sets its active bit, then waits for an even publish_state:
/// either the publisher sees its bit in the active_mask load that follows, or the joiner
/// waits until this sample is in every ring. The store must be ordered before that load: by
/// the joiner's membarrier when this process registered for it (`asymmetric`: a compiler
/// barrier suffices here), else by a seq_cst store, which costs ~10 ns.
inline void BeginPublish(channel::ChannelHeader& h, uint64_t sequence, bool asymmetric) {
  if (asymmetric) {
    h.publish_state.store(2 * sequence + 1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    h.publish_state.store(2 * sequence + 1, std::memory_order_seq_cst);
  }
}

/// The publisher, once the sample of `sequence` is in every ring it goes to.
inline void EndPublish(channel::ChannelHeader& h, uint64_t sequence) {
  h.publish_state.store(2 * (sequence + 1), std::memory_order_release);
}

/// The sequence the next publish gets. Even between publishes: a publisher killed inside
/// one leaves it odd, but its channel takes no successor.
inline uint64_t NextSequence(const channel::ChannelHeader& h) {
  return h.publish_state.load(std::memory_order_relaxed) / 2;
}

/// Waits until no publish is under way on `ch` (the header's publish_state is even), running
/// the barrier the publisher relies on first (see ChannelHeader::publish_barrier). After it,
/// every publish that starts delivers by an active_mask read later than the caller's own
/// earlier writes. Returns the publish_state seen. A dead publisher counts as done; a live
/// one stuck inside a publish for a second gives kTimeout; kIoError if the barrier fails.
Result<uint64_t> AwaitPublishBoundary(ChannelState& ch);

/// The joiner, right after its active bit is set: claims the backlog of subscriber `sub`
/// into sub.backlog (see SubscriberOptions::from_oldest). kTimeout if a publish never
/// finished within a second while its publisher stayed alive (stopped, say).
Status ClaimBacklog(SubscriberState& sub);

}  // namespace quiver::internal
