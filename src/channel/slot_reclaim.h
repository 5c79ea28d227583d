// Subscriber slots whose subscriber is gone: taken back by whoever finds them, proven by the
// slot's lock. A slot is in use (Active or Closing) exactly while some process holds its lock
// or its references are not yet cleared; whoever takes the lock of an in-use slot that
// nobody holds owns it and clears it. Internal to the channel layer.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "channel/channel_state.h"

namespace quiver::internal {

/// If slot `i` is in use but nobody holds its lock (its subscriber died, or closed and left
/// it for reclaim), takes the lock and returns the state it found: kActive for a death,
/// kClosing for a clean close. nullopt if the slot is free, this process's own, or held.
/// The slot then counts as this process's own (ChannelState::own_slots), so another thread
/// of this process (whose lock attempts the byte lock cannot tell apart) cannot adopt it
/// too; FreeSlot drops that mark.
std::optional<channel::SlotState> TryAdoptGoneSlot(ChannelState& ch, uint32_t i);

/// Clears every reference of slot `i`, whose lock the caller holds: it leaves active_mask,
/// its ring is emptied and its bit leaves every sample. The publisher passes its samples in
/// flight (`in_flight`; no publish runs meanwhile); anyone else passes nullptr, waits out a
/// publish under way, and clears every descriptor. kTimeout as AwaitPublishBoundary
/// (channel/late_join.h): then
/// the slot stays in use for the publisher to reclaim.
Status ClearSlot(ChannelState& ch, uint32_t i, const std::vector<uint32_t>* in_flight);

/// Marks slot `i` free and drops its lock (the caller held it and cleared the slot).
void FreeSlot(ChannelState& ch, uint32_t i);

/// Returns true once the publisher of `ch` closed or died (its lock is gone).
bool PublisherGoneNow(ChannelState& ch);

}  // namespace quiver::internal
